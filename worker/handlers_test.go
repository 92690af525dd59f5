package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

type fixture struct {
	db       *store.DB
	fz       *zendesktest.Server
	h        *Handlers
	insp     *asynq.Inspector
	tenantID string
	customer int64
}

// newFixture builds handlers on a SQLite store, an in-process Redis and a fake Zendesk, with one
// customer (Zendesk user 9001) who has open ticket 42 and closed ticket 43.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	box, err := secretbox.New(make([]byte, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "", t.TempDir(), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fz := zendesktest.New(t, "agent@acme.test", "tok")
	fz.AddUser("9001", "jon@example.com", "Jon")
	fz.AddTicket("42", "open", "agent_tag")
	fz.AddTicket("43", "closed")
	tenant := &store.Tenant{Name: "Acme", Zendesk: store.ZendeskAccount{BaseURL: fz.URL, Email: "agent@acme.test", APIToken: "tok", WebhookSecret: "s"}}
	if err := db.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rc.Close() })
	q := NewQueue(asynq.NewClientFromRedisClient(rc), 0)
	h := NewHandlers(db, q, ZendeskFactory(http.DefaultClient), slog.New(slog.NewTextHandler(io.Discard, nil)))
	cid, _, err := db.ResolveCustomer(ctx, tenant.ID, store.Identity{Email: "jon@example.com", ZendeskUserID: "9001"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, tk := range []struct{ id, status string }{{"42", "open"}, {"43", "closed"}} {
		ev := integrations.TicketEvent{Source: "zendesk", EventID: "e" + tk.id, Type: integrations.TicketCreated, TicketID: tk.id, RequesterID: "9001",
			Status: tk.status, OccurredAt: now.Add(time.Duration(i) * time.Millisecond)}
		if _, err := db.ApplyTicketEvent(ctx, tenant.ID, cid, ev); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{db: db, fz: fz, h: h, insp: asynq.NewInspectorFromRedisClient(rc), tenantID: tenant.ID, customer: cid}
}

// score stores a score carrying tags, as a rescore would.
func (f *fixture) score(t *testing.T, tags ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := f.db.GetCustomer(ctx, f.tenantID, f.customer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SaveScore(ctx, f.tenantID, f.customer, c.DataVersion, store.Score{Model: "heuristic", Tier: "gold", ChurnBand: "low",
		Segment: "loyal", Tags: tags, ScoredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestPushTagsSurvivesRateLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.score(t, "clv_churn_low", "clv_tier_gold")

	f.fz.FailNextWith(1, zendesktest.Fault{Status: 429, Header: http.Header{"Retry-After": {"7"}}})
	err := f.h.pushTags(ctx, f.tenantID, f.customer)
	if err == nil {
		t.Fatal("push succeeded through a 429")
	}
	if IsFailure(err) {
		t.Fatalf("a rate limit counted as a failure: %v", err)
	}
	if d := RetryDelay(1, err, nil); d < 7*time.Second || d > 8*time.Second {
		t.Fatalf("retry in %s, want Zendesk's Retry-After (7s)", d)
	}
	plan, err := f.db.TagPlan(ctx, f.tenantID, f.customer)
	if err != nil || len(plan.Targets) == 0 {
		t.Fatalf("the rate-limited change was recorded as pushed: %+v %v", plan, err)
	}

	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if got := f.fz.TicketTags("42"); !slices.Equal(got, []string{"agent_tag", "clv_churn_low", "clv_tier_gold"}) {
		t.Fatalf("ticket 42 tags %v", got)
	}
	if got := f.fz.UserTags("9001"); !slices.Equal(got, []string{"clv_churn_low", "clv_tier_gold"}) {
		t.Fatalf("user tags %v", got)
	}
	for _, r := range f.fz.Requests() {
		if r.RawQuery == "ids=43" || r.RawQuery == "ids=42,43" {
			t.Fatalf("closed ticket 43 was sent an update: %+v", r)
		}
	}

	// A tier change removes the stale managed tag and keeps the agent's.
	f.score(t, "clv_churn_high", "clv_tier_gold")
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if got := f.fz.TicketTags("42"); !slices.Equal(got, []string{"agent_tag", "clv_churn_high", "clv_tier_gold"}) {
		t.Fatalf("ticket 42 tags after change %v", got)
	}

	// Nothing changed since: no call at all.
	n := len(f.fz.Requests())
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if len(f.fz.Requests()) != n {
		t.Fatalf("push without a change called Zendesk: %+v", f.fz.Requests()[n:])
	}
}

func TestPushTagsServerErrorIsRetried(t *testing.T) {
	f := newFixture(t)
	f.score(t, "clv_churn_low", "clv_tier_gold")
	f.fz.FailNext(1, 503)
	err := f.h.pushTags(context.Background(), f.tenantID, f.customer)
	if err == nil || !IsFailure(err) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("a 503 must fail and be retried: %v", err)
	}
}

// TestReconcileRecoversLostWork: a score whose push task was lost, and data whose rescore was lost,
// are found again from the store.
func TestReconcileRecoversLostWork(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.score(t, "clv_churn_low", "clv_tier_gold") // scored, never pushed: as if the push task was lost
	o := integrations.Order{Source: "shopify", OrderID: "1", Email: "jon@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now(),
		Currency: "USD", TotalMinor: 1000, Status: integrations.OrderPaid}
	if _, err := StoreOrderEvent(ctx, f.db, f.tenantID, integrations.OrderEvent{Order: &o}, false); err != nil {
		t.Fatal(err) // stored, rescore never queued: as if the ingest task died after the write
	}
	f.h.now = func() time.Time { return time.Now().Add(time.Minute) }
	if err := f.h.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	pushes, err := f.insp.ListPendingTasks(queuePush)
	if err != nil || len(pushes) != 1 {
		t.Fatalf("pending pushes %d (%v), want 1", len(pushes), err)
	}
	rescores, err := f.insp.ListPendingTasks(queueScore)
	if err != nil || len(rescores) != 1 {
		t.Fatalf("pending rescores %d (%v), want 1", len(rescores), err)
	}
	// Running the found work brings the helpdesk in line; reconciling again finds nothing.
	if err := f.h.rescore(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	stale, _ := f.db.StaleScores(ctx, time.Now().Add(time.Minute), 10)
	unsynced, _ := f.db.UnsyncedTags(ctx, 0, 10)
	if len(stale)+len(unsynced) != 0 {
		t.Fatalf("still stale %v / unsynced %v", stale, unsynced)
	}
}

// TestReconcileReachesEveryTenant: customers that can never be pushed (their tenant has no helpdesk
// credentials) stay unsynced; a scan page full of them must not hide another tenant's lost push, also
// when consecutive runs go to different worker processes.
func TestReconcileReachesEveryTenant(t *testing.T) {
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d processes", processes), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			runners := []*Handlers{f.h}
			var m *miniredis.Miniredis
			if processes == 2 {
				m = miniredis.RunT(t)
				rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
				t.Cleanup(func() { rc.Close() })
				second := NewHandlers(f.db, f.h.queue, f.h.helpdesk, f.h.log)
				f.h.UseRedis(rc, time.Minute)
				second.UseRedis(rc, time.Minute)
				runners = append(runners, second)
			}
			for _, h := range runners {
				h.reconcileBatch = 2
			}
			saveScore := func(tenantID string, cid int64) {
				t.Helper()
				if _, err := f.db.SaveScore(ctx, tenantID, cid, 0, store.Score{Model: "heuristic", Tier: "gold", ChurnBand: "low",
					Segment: "loyal", Tags: []string{"clv_tier_gold"}, ScoredAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			noHelpdesk := &store.Tenant{Name: "No Zendesk"}
			if err := f.db.CreateTenant(ctx, noHelpdesk); err != nil {
				t.Fatal(err)
			}
			for i := range 4 { // lower ids than the customer below: the first pages are all theirs
				cid, _, err := f.db.ResolveCustomer(ctx, noHelpdesk.ID, store.Identity{Email: fmt.Sprintf("n%d@example.com", i), ZendeskUserID: fmt.Sprintf("77%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				saveScore(noHelpdesk.ID, cid)
			}
			lost, _, err := f.db.ResolveCustomer(ctx, f.tenantID, store.Identity{Email: "lost@example.com", ZendeskUserID: "9002"})
			if err != nil {
				t.Fatal(err)
			}
			saveScore(f.tenantID, lost) // scored, push task lost

			for run := 1; run <= 3; run++ {
				if m != nil {
					m.FastForward(time.Minute) // the previous run's lease has expired: the next period
				}
				if err := runners[(run-1)%len(runners)].Reconcile(ctx); err != nil {
					t.Fatal(err)
				}
				pushes, err := f.insp.ListPendingTasks(queuePush)
				if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) { // not found: nothing was ever queued
					t.Fatal(err)
				}
				if run < 3 && len(pushes) != 0 {
					t.Fatalf("run %d queued %d pushes, want none (its page holds only the tenant without credentials)", run, len(pushes))
				}
				if run == 3 {
					var p customerPayload
					if len(pushes) != 1 || json.Unmarshal(pushes[0].Payload, &p) != nil || p.CustomerID != lost {
						t.Fatalf("run 3: pushes %v, want one for customer %d", pushes, lost)
					}
				}
			}
			if got := runners[0].unsyncedCursor(ctx); got != 0 {
				t.Fatalf("after the last page the scan starts over: cursor %d, want 0", got)
			}
		})
	}
}

// TestPrefixChangeRemovesOldTags: tags written under an earlier prefix are removed with the next push.
func TestPrefixChangeRemovesOldTags(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.score(t, "clv_churn_low", "clv_tier_gold")
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	tenant, err := f.db.GetTenant(ctx, f.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	tenant.Settings = []byte(`{"tag_prefix":"v2_"}`)
	if err := f.db.UpdateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	f.h.tenants.put(tenant)
	f.score(t, "v2_churn_low", "v2_tier_gold")
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if got := f.fz.TicketTags("42"); !slices.Equal(got, []string{"agent_tag", "v2_churn_low", "v2_tier_gold"}) {
		t.Fatalf("ticket tags after the prefix change: %v", got)
	}
	if got := f.fz.UserTags("9001"); !slices.Equal(got, []string{"v2_churn_low", "v2_tier_gold"}) {
		t.Fatalf("user tags after the prefix change: %v", got)
	}
}

// TestFailedFitKeepsPreviousModel: a fit that fails is recorded, but scoring keeps the model before it.
func TestFailedFitKeepsPreviousModel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := &store.ModelRecord{TenantID: f.tenantID, Kind: modelKindBGNBD, FittedAt: time.Now().Add(-time.Hour), Converged: true,
		Params: []byte(`{"unit":"week","bgnbd":{"r":0.243,"alpha":4.414,"a":0.793,"b":2.426}}`), Quality: []byte(`{}`)}
	if err := f.db.SaveModel(ctx, good); err != nil {
		t.Fatal(err)
	}
	failed := &store.ModelRecord{TenantID: f.tenantID, Kind: modelKindFailed, FittedAt: time.Now(), Params: []byte(`{}`), Quality: []byte(`{"error":"did not converge"}`)}
	if err := f.db.SaveModel(ctx, failed); err != nil {
		t.Fatal(err)
	}
	sc, err := f.h.models.get(ctx, f.db, f.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if sc.model == nil || sc.modelID != good.ID || sc.model.BGNBD.R != 0.243 {
		t.Fatalf("scoring uses %+v (model id %d), want the last good model %d", sc.model, sc.modelID, good.ID)
	}
}

// failingRemoves is a helpdesk whose user tag removals fail while fail is set, as a 503 on
// Zendesk's DELETE after its PUT succeeded would.
type failingRemoves struct {
	Helpdesk
	fail bool
}

func (f *failingRemoves) UpdateUserTags(ctx context.Context, userID string, add, remove []string) error {
	if len(remove) > 0 && f.fail {
		if err := f.Helpdesk.UpdateUserTags(ctx, userID, add, nil); err != nil { // the add goes through
			return err
		}
		return &zendesk.APIError{Status: http.StatusServiceUnavailable}
	}
	return f.Helpdesk.UpdateUserTags(ctx, userID, add, remove)
}

// TestUserTagRemoveFailsThenScoreGoesBack: the add of a user's new tags succeeds, the removal of the
// old ones fails, and the score goes back to the old tags. The user must end with exactly the old
// tags, not keep the new one because the store still had the old ones as last written.
func TestUserTagRemoveFailsThenScoreGoesBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hd := &failingRemoves{}
	f.h.helpdesk = func(tn *store.Tenant) (Helpdesk, error) {
		c, err := ZendeskFactory(http.DefaultClient)(tn)
		hd.Helpdesk = c
		return hd, err
	}
	f.score(t, "clv_churn_low", "clv_tier_gold")
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	f.score(t, "clv_churn_high", "clv_tier_gold")
	hd.fail = true
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err == nil {
		t.Fatal("the failed removal was not reported")
	}
	if got := f.fz.UserTags("9001"); !slices.Equal(got, []string{"clv_churn_high", "clv_churn_low", "clv_tier_gold"}) {
		t.Fatalf("test setup: user tags %v after the add only", got)
	}
	hd.fail = false
	f.score(t, "clv_churn_low", "clv_tier_gold") // back to what was written before
	plan, err := f.db.TagPlan(ctx, f.tenantID, f.customer)
	if err != nil {
		t.Fatal(err)
	}
	userTarget := false
	for _, tg := range plan.Targets {
		userTarget = userTarget || tg.Kind == "user"
	}
	if !userTarget {
		t.Fatalf("the user carries clv_churn_high but the tag plan has nothing for it: %+v", plan)
	}
	if err := f.h.pushTags(ctx, f.tenantID, f.customer); err != nil {
		t.Fatal(err)
	}
	if got := f.fz.UserTags("9001"); !slices.Equal(got, []string{"clv_churn_low", "clv_tier_gold"}) {
		t.Fatalf("user tags %v, want exactly the score's", got)
	}
}
