package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/store"
)

func TestOutreachRulesFire(t *testing.T) {
	def := DefaultOutreach()
	sc := func(tier, band string) *store.Score { return &store.Score{Tier: tier, ChurnBand: band} }
	for _, c := range []struct {
		name      string
		prev, cur *store.Score
		want      []string
	}{
		{"platinum turns high", sc("platinum", "medium"), sc("platinum", "high"), []string{"valuable_at_risk"}},
		{"gold turns high", sc("gold", "low"), sc("gold", "high"), []string{"valuable_at_risk"}},
		{"already at risk", sc("platinum", "high"), sc("platinum", "high"), nil},
		{"silver turns high", sc("silver", "medium"), sc("silver", "high"), nil},
		{"first score at risk", nil, sc("gold", "high"), []string{"valuable_at_risk"}},
		{"two tiers down", sc("platinum", "low"), sc("silver", "low"), []string{"tier_drop"}},
		{"one tier down", sc("platinum", "low"), sc("gold", "low"), nil},
		{"both", sc("platinum", "low"), sc("silver", "high"), []string{"tier_drop"}},
		{"gold at risk after platinum at risk", sc("platinum", "high"), sc("gold", "high"), nil},
		{"new is not ranked", sc("new", "low"), sc("bronze", "low"), nil},
		{"first score cannot drop", nil, sc("bronze", "low"), nil},
	} {
		if got := def.Fired(c.prev, c.cur); !slices.Equal(got, c.want) {
			t.Errorf("%s: fired %v, want %v", c.name, got, c.want)
		}
	}
	off := def
	off.Enabled = false
	if got := off.Fired(sc("gold", "low"), sc("gold", "high")); got != nil {
		t.Errorf("disabled outreach fired %v", got)
	}
	rise, err := ParseSettings([]byte(`{"outreach":{"rules":[{"name":"jump","churn_rise":2}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := rise.Outreach.Fired(sc("bronze", "low"), sc("bronze", "high")); !slices.Equal(got, []string{"jump"}) {
		t.Errorf("churn_rise rule fired %v", got)
	}
}

func TestOutreachSettingsRefused(t *testing.T) {
	for body, want := range map[string]string{
		`{"outreach":{"cooldown_days":0}}`:                                               "cooldown_days",
		`{"outreach":{"rules":[{"name":"x"}]}}`:                                          "no condition",
		`{"outreach":{"rules":[{"name":"x","tiers":["diamond"]}]}}`:                      "diamond",
		`{"outreach":{"rules":[{"name":"x","tier_drop":1},{"name":"x","tier_drop":2}]}}`: "twice",
		`{"outreach":{"zendesk_ticket":{"group_id":"abc"}}}`:                             "group_id",
		`{"outreach":{"zendesk_ticket":{"priority":"asap"}}}`:                            "priority",
		`{"outreach":{"webhook":{"url":"ftp://x.example"}}}`:                             "https",
		`{"outreach":{"webhok":{}}}`:                                                     "webhok",
		`{"write":{"tags":["tier","tier"]}}`:                                             "twice",
		`{"write":{"user_fields":["clv_mood"]}}`:                                         "clv_mood",
		`{"currency":"euro"}`:                                                            "currency",
	} {
		if _, err := ParseSettings([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("settings %s: error %v, want one naming %q", body, err, want)
		}
	}
	s, err := ParseSettings([]byte(`{"outreach":{"dry_run":true,"zendesk_ticket":{"group_id":"360001"}},"currency":"eur"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Outreach.DryRun || s.Outreach.Ticket.GroupID != "360001" || !s.Outreach.Ticket.Enabled || len(s.Outreach.Rules) != 2 || s.Currency != "EUR" {
		t.Fatalf("partial outreach settings must keep the other defaults: %+v", s)
	}
	raw, _ := json.Marshal(s)
	back, err := ParseSettings(raw)
	if err != nil || !slices.EqualFunc(back.Outreach.Rules, s.Outreach.Rules, func(a, b OutreachRule) bool { return a.Name == b.Name }) || back.Outreach.Ticket != s.Outreach.Ticket {
		t.Fatalf("round trip: %v\n%s", err, raw)
	}
}

// atRisk stores a platinum, high-risk score for the fixture's customer and returns the outreach task
// payload a rescore would have queued.
func (f *fixture) atRisk(t *testing.T) outreachPayload {
	t.Helper()
	ctx := context.Background()
	c, err := f.db.GetCustomer(ctx, f.tenantID, f.customer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SaveScore(ctx, f.tenantID, f.customer, c.DataVersion, store.Score{Model: "bgnbd", Tier: "platinum", ChurnBand: "high",
		ChurnProbability: 0.81, ChurnReasons: []string{"no order for 3x the usual gap", "2 open tickets"}, PredictedCLV: 1234.5,
		HistoricMinor: 98000, Currency: "EUR", Segment: "cant_lose", ScoredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return outreachPayload{TenantID: f.tenantID, CustomerID: f.customer, Rules: []string{"valuable_at_risk"}, PreviousTier: "platinum", PreviousBand: "medium"}
}

func (f *fixture) setSettings(t *testing.T, h *Handlers, raw string) {
	t.Helper()
	if err := f.db.SetTenantSettings(context.Background(), f.tenantID, json.RawMessage(raw)); err != nil {
		t.Fatal(err)
	}
	h.tenants.mu.Lock()
	delete(h.tenants.entries, f.tenantID)
	h.tenants.mu.Unlock()
}

func outreachTask(p outreachPayload) *asynq.Task {
	raw, _ := json.Marshal(p)
	return asynq.NewTask(TypeOutreach, raw)
}

func (f *fixture) outreach(t *testing.T) []store.Outreach {
	t.Helper()
	list, _, err := f.db.ListOutreach(context.Background(), f.tenantID, store.OutreachFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestOutreachOneTicketUnderRetriesAndTwoWorkers: a platinum customer turning high-risk gets exactly
// one retention ticket although Zendesk fails first, two workers run the task at once (with and
// without the Redis lease between them), and a worker crashes between Zendesk's answer and the record.
func TestOutreachOneTicketUnderRetriesAndTwoWorkers(t *testing.T) {
	ctx := context.Background()
	for _, withLease := range []bool{true, false} {
		name := "lease"
		if !withLease {
			name = "no lease (expired): the idempotency key holds"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			p := f.atRisk(t)
			second := NewHandlers(f.db, f.h.queue, f.h.helpdesk, f.h.log)
			if withLease {
				m := miniredis.RunT(t)
				rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
				t.Cleanup(func() { rc.Close() })
				f.h.UseRedis(rc, time.Minute)
				second.UseRedis(rc, time.Minute)
			}
			// Zendesk fails the first call: the task is retried, the attempt is recorded.
			f.fz.FailNext(1, http.StatusInternalServerError)
			if err := f.h.handleOutreach(ctx, outreachTask(p)); err == nil {
				t.Fatal("outreach succeeded through a 500")
			}
			list := f.outreach(t)
			if len(list) != 1 || list[0].Status != store.OutreachPending || list[0].Attempts != 1 || !strings.Contains(list[0].Error, "500") {
				t.Fatalf("after a failed attempt: %+v", list)
			}
			// The retry crashes after Zendesk created the ticket, before it is recorded.
			crashing := &crashOnce{Store: f.db}
			crashed := NewHandlers(crashing, f.h.queue, f.h.helpdesk, f.h.log)
			if err := crashed.handleOutreach(ctx, outreachTask(p)); err == nil || !crashing.crashed.Load() {
				t.Fatalf("the simulated crash did not happen: %v", err)
			}
			// Two workers retry at once until both are done.
			var wg sync.WaitGroup
			for _, h := range []*Handlers{f.h, second} {
				wg.Go(func() {
					for i := 0; ; i++ {
						err := h.handleOutreach(ctx, outreachTask(p))
						if err == nil {
							return
						}
						if i > 100 {
							t.Errorf("outreach never finished: %v", err)
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				})
			}
			wg.Wait()
			created := f.fz.CreatedTickets()
			if len(created) != 1 {
				t.Fatalf("%d tickets created, want exactly 1: %+v", len(created), created)
			}
			tk := created[0]
			if tk.RequesterID != "9001" || tk.Public || tk.Priority != "high" || !slices.Equal(tk.Tags, []string{"clv_retention_outreach"}) ||
				!strings.Contains(tk.Subject, "platinum") || !strings.Contains(tk.Body, "EUR") || !strings.Contains(tk.Body, "2 open tickets") ||
				!strings.Contains(tk.Body, "81%") || !strings.HasPrefix(tk.IdempotencyKey, "clvd-outreach-") {
				t.Fatalf("ticket %+v", tk)
			}
			list = f.outreach(t)
			if len(list) != 1 || list[0].Status != store.OutreachSent || list[0].ZendeskTicketID != tk.ID || list[0].CompletedAt == nil {
				t.Fatalf("record %+v, want one sent with ticket %s", list, tk.ID)
			}

			// The cooldown holds: the customer turns at risk again next week, nothing is sent.
			f.h.now = func() time.Time { return time.Now().Add(7 * 24 * time.Hour) }
			if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
				t.Fatal(err)
			}
			if n := len(f.fz.CreatedTickets()); n != 1 || len(f.outreach(t)) != 1 {
				t.Fatalf("within the cooldown: %d tickets, %d records", n, len(f.outreach(t)))
			}
			// After it, a new outreach.
			f.h.now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
			if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
				t.Fatal(err)
			}
			if n := len(f.fz.CreatedTickets()); n != 2 {
				t.Fatalf("after the cooldown: %d tickets, want 2", n)
			}
		})
	}
}

// TestOutreachWaitsForADownHelpdesk: while the breaker holds Zendesk calls back, outreach waits
// without using up its attempts (30 of them would otherwise run out in a long outage).
func TestOutreachWaitsForADownHelpdesk(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.atRisk(t)
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rc.Close() })
	f.h.UseRedis(rc, time.Minute)
	tenantID := p.TenantID
	for range breakerThreshold {
		f.h.breaker.record(ctx, tenantID, &zendesk.RateLimitError{RetryAfter: time.Minute})
	}
	for range 3 {
		err := f.h.handleOutreach(ctx, outreachTask(p))
		if !errors.Is(err, ErrHelpdeskDown) || IsFailure(err) {
			t.Fatalf("outreach with the helpdesk down: %v (failure: %v)", err, IsFailure(err))
		}
	}
	list := f.outreach(t)
	if len(list) != 1 || list[0].Status != store.OutreachPending || list[0].Attempts != 0 {
		t.Fatalf("after waiting for the breaker: %+v, want one pending record with no attempt", list)
	}
	if n := len(f.fz.CreatedTickets()); n != 0 {
		t.Fatalf("%d tickets created while the breaker was open", n)
	}
	m.FastForward(time.Minute + time.Second)
	if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fz.CreatedTickets()); n != 1 {
		t.Fatalf("%d tickets after the breaker closed, want 1", n)
	}
}

// crashOnce fails the first record of a created ticket, as a worker dying right after Zendesk
// answered would.
type crashOnce struct {
	Store
	crashed atomic.Bool
}

func (c *crashOnce) UpdateOutreach(ctx context.Context, tenantID string, id int64, p store.OutreachProgress) error {
	if p.ZendeskTicketID != "" && c.crashed.CompareAndSwap(false, true) {
		return errors.New("worker killed")
	}
	return c.Store.UpdateOutreach(ctx, tenantID, id, p)
}

func TestOutreachDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.atRisk(t)
	f.setSettings(t, f.h, `{"outreach":{"dry_run":true}}`)
	before := len(f.fz.Requests())
	tags := f.fz.TicketTags("42")
	if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
		t.Fatal(err)
	}
	if extra := f.fz.Requests()[before:]; len(extra) != 0 {
		t.Fatalf("a dry run called Zendesk: %+v", extra)
	}
	if !slices.Equal(f.fz.TicketTags("42"), tags) {
		t.Fatal("a dry run changed tags")
	}
	list := f.outreach(t)
	if len(list) != 1 || list[0].Status != store.OutreachDryRun || list[0].Tier != "platinum" || list[0].Email != "jon@example.com" {
		t.Fatalf("dry run record %+v", list)
	}
	// Turning the dry run off contacts the customer for real: a dry run starts no real cooldown.
	f.setSettings(t, f.h, `{}`)
	if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fz.CreatedTickets()); n != 1 {
		t.Fatalf("%d tickets after the dry run was turned off, want 1", n)
	}
}

func TestOutreachWebhook(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.atRisk(t)
	tenant, err := f.db.GetTenant(ctx, f.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	tenant.OrdersSecret = "orders-secret"
	if err := f.db.UpdateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	status := []int{http.StatusBadGateway, http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, body)
		w.WriteHeader(status[min(len(got)-1, len(status)-1)])
	}))
	t.Cleanup(srv.Close)
	f.h.AllowLocalTargets = true
	f.setSettings(t, f.h, `{"outreach":{"zendesk_ticket":{"enabled":false},"webhook":{"url":"`+srv.URL+`/hook?key=abc"}}}`)

	if err := f.h.handleOutreach(ctx, outreachTask(p)); err == nil {
		t.Fatal("a 502 from the webhook did not ask for a retry")
	}
	if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(f.fz.CreatedTickets()) != 0 {
		t.Fatalf("%d deliveries, %d tickets; want 2 and 0", len(got), len(f.fz.CreatedTickets()))
	}
	for i, r := range got {
		if err := orders.VerifySignature([]byte("orders-secret"), r.Header.Get(orders.HeaderTimestamp), bodies[i], r.Header.Get(orders.HeaderSignature),
			time.Now(), orders.DefaultTolerance); err != nil {
			t.Fatalf("delivery %d: signature: %v", i, err)
		}
		if r.URL.Query().Get("key") != "abc" || r.Header.Get(HeaderOutreachID) == "" || r.Header.Get(HeaderOutreachID) != got[0].Header.Get(HeaderOutreachID) {
			t.Fatalf("delivery %d: query %q, event id %q", i, r.URL.RawQuery, r.Header.Get(HeaderOutreachID))
		}
	}
	if string(bodies[0]) != string(bodies[1]) {
		t.Fatal("a retry sent another body")
	}
	var ev OutreachEvent
	if err := json.Unmarshal(bodies[1], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "clvd.retention_outreach" || ev.Customer.Email != "jon@example.com" || ev.Tier != "platinum" || ev.HistoricCLV != "980.00" || ev.PreviousBand != "medium" {
		t.Fatalf("event %+v", ev)
	}
	if list := f.outreach(t); len(list) != 1 || list[0].Status != store.OutreachSent || list[0].WebhookStatus != 200 {
		t.Fatalf("record %+v", list)
	}

	// A URL that refuses (4xx) fails the outreach for good, with the reason recorded.
	status = []int{http.StatusGone}
	mu.Lock()
	got = nil
	mu.Unlock()
	f.h.now = func() time.Time { return time.Now().Add(40 * 24 * time.Hour) }
	if err := f.h.handleOutreach(ctx, outreachTask(p)); err != nil {
		t.Fatalf("a permanent failure must not be retried: %v", err)
	}
	if list := f.outreach(t); list[0].Status != store.OutreachFailed || !strings.Contains(list[0].Error, "410") {
		t.Fatalf("record after 410: %+v", list[0])
	}
}

// TestRescoreQueuesOutreach: the rescore that finds a customer turned at risk queues the outreach
// task; before the tenant's first population, and without any way to reach out, it does not.
func TestRescoreQueuesOutreach(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.setSettings(t, f.h, `{"outreach":{"rules":[{"name":"any_high","churn_bands":["high"]}]}}`)
	now := time.Now()
	for i, amount := range []int64{5000, 7000} {
		o := integrations.Order{Source: "shopify", OrderID: string(rune('a' + i)), Email: "jon@example.com", CreatedAt: now.AddDate(0, 0, -20+10*i),
			UpdatedAt: now.AddDate(0, 0, -20+10*i), Currency: "EUR", TotalMinor: amount, Status: integrations.OrderPaid}
		if _, err := f.db.ApplyOrder(ctx, f.tenantID, f.customer, o); err != nil {
			t.Fatal(err)
		}
	}
	outreachTasks := func() []outreachPayload {
		t.Helper()
		tasks, err := f.insp.ListPendingTasks(queuePush)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		var out []outreachPayload
		for _, tk := range tasks {
			if tk.Type == TypeOutreach {
				var p outreachPayload
				if err := json.Unmarshal(tk.Payload, &p); err != nil {
					t.Fatal(err)
				}
				out = append(out, p)
			}
		}
		return out
	}
	rescoreAt := func(at time.Time) *store.Score {
		t.Helper()
		f.h.now = func() time.Time { return at }
		f.h.models.invalidate(f.tenantID)
		if err := f.h.rescore(ctx, f.tenantID, f.customer); err != nil {
			t.Fatal(err)
		}
		c, _ := f.db.GetCustomer(ctx, f.tenantID, f.customer)
		return c.Score
	}
	if s := rescoreAt(now); s.ChurnBand == "high" {
		t.Fatalf("test setup: churn band %s with recent orders", s.ChurnBand)
	}
	// Two years on the customer is lost, but the tenant has no population yet: no outreach.
	if s := rescoreAt(now.AddDate(2, 0, 0)); s.ChurnBand != "high" {
		t.Fatalf("test setup: churn band %s two years on", s.ChurnBand)
	}
	if got := outreachTasks(); len(got) != 0 {
		t.Fatalf("outreach before the first population: %+v", got)
	}
	// Once armed, the same turn to high risk (from a score computed after arming) queues it.
	if err := f.h.armOutreach(ctx, f.tenantID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	rescoreAt(time.Now())
	rescoreAt(time.Now().AddDate(2, 0, 0))
	got := outreachTasks()
	if len(got) != 1 || !slices.Equal(got[0].Rules, []string{"any_high"}) || got[0].CustomerID != f.customer || got[0].PreviousBand == "high" {
		t.Fatalf("outreach tasks %+v, want one for any_high", got)
	}
	// The same score again: no transition, nothing more queued.
	rescoreAt(time.Now().AddDate(2, 0, 1))
	if n := len(outreachTasks()); n != 1 {
		t.Fatalf("%d outreach tasks, want 1", n)
	}

	// Without Zendesk credentials and without a webhook nothing could be sent: nothing is queued.
	g := newFixture(t)
	tenant, _ := g.db.GetTenant(ctx, g.tenantID)
	tenant.Zendesk = store.ZendeskAccount{}
	if err := g.db.UpdateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	g.setSettings(t, g.h, `{"outreach":{"rules":[{"name":"any_high","churn_bands":["high"]}]}}`)
	if err := g.h.armOutreach(ctx, g.tenantID); err != nil {
		t.Fatal(err)
	}
	prev := &store.Score{Tier: "gold", ChurnBand: "low", ScoredAt: time.Now().Add(time.Hour)}
	sc := scoring{outreachArmedAt: time.Now()}
	settings, _ := ParseSettings(json.RawMessage(`{"outreach":{"rules":[{"name":"any_high","churn_bands":["high"]}]}}`))
	if err := g.h.maybeOutreach(ctx, tenant, g.customer, settings, sc, prev, store.Score{Tier: "gold", ChurnBand: "high"}); err != nil {
		t.Fatal(err)
	}
	if tasks, _ := g.insp.ListPendingTasks(queuePush); len(tasks) != 0 {
		t.Fatalf("outreach queued for a tenant that cannot be reached: %d tasks", len(tasks))
	}
	dry, _ := ParseSettings(json.RawMessage(`{"outreach":{"dry_run":true,"rules":[{"name":"any_high","churn_bands":["high"]}]}}`))
	if err := g.h.maybeOutreach(ctx, tenant, g.customer, dry, sc, prev, store.Score{Tier: "gold", ChurnBand: "high"}); err != nil {
		t.Fatal(err)
	}
	if tasks, _ := g.insp.ListPendingTasks(queuePush); len(tasks) != 1 {
		t.Fatalf("a dry run must still record who would be contacted: %d tasks", len(tasks))
	}
}

// TestReconcileResumesPendingOutreach: an outreach whose task the queue lost is resumed.
func TestReconcileResumesPendingOutreach(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.atRisk(t)
	o, err := f.db.ClaimOutreach(ctx, f.tenantID, store.OutreachClaim{Outreach: store.Outreach{CustomerID: f.customer, Rules: []string{"valuable_at_risk"},
		Tier: "platinum", ChurnBand: "high", Currency: "EUR"}, Cooldown: time.Hour, Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.h.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	tasks, err := f.insp.ListPendingTasks(queuePush)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.Type != TypeOutreach {
			continue
		}
		if err := f.h.handleOutreach(ctx, asynq.NewTask(tk.Type, tk.Payload)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.db.GetOutreach(ctx, f.tenantID, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.OutreachSent || len(f.fz.CreatedTickets()) != 1 {
		t.Fatalf("resumed outreach %+v, %d tickets", got, len(f.fz.CreatedTickets()))
	}
}

// TestPushWritesUserFields: the user's clv_* fields follow the score, written only when they change.
func TestPushWritesUserFields(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.atRisk(t)
	_ = p
	c, _ := f.db.GetCustomer(ctx, f.tenantID, f.customer)
	s := *c.Score
	next := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	s.ExpectedNextOrder = &next
	s.UserFields = userFields(s, UserFieldKeys)
	if _, err := f.db.SaveScore(ctx, f.tenantID, f.customer, c.DataVersion, s); err != nil {
		t.Fatal(err)
	}
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"clv_predicted": 1235.0, "clv_historic": 980.0, "clv_churn_probability": 0.81, "clv_expected_next_order": "2026-12-24"}
	if got := f.fz.UserFields("9001"); !mapsEqual(got, want) {
		t.Fatalf("user fields %v, want %v", got, want)
	}
	n := len(f.fz.Requests())
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if len(f.fz.Requests()) != n {
		t.Fatal("unchanged fields were written again")
	}
	// A prediction moving by cents rounds to the same value: nothing to write.
	s.PredictedCLV += 0.02
	s.UserFields = userFields(s, UserFieldKeys)
	if _, err := f.db.SaveScore(ctx, f.tenantID, f.customer, c.DataVersion, s); err != nil {
		t.Fatal(err)
	}
	if plan, _ := f.db.TagPlan(ctx, f.tenantID, f.customer); len(plan.Targets) != 0 {
		t.Fatalf("a cent's change needs a push: %+v", plan)
	}
}

func mapsEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
