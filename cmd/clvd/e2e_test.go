package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

const (
	e2eZendeskEmail  = "agent@acme.test"
	e2eZendeskToken  = "api-token-123"
	e2eZendeskSecret = "zendesk-webhook-secret"
	e2eShopifySecret = "shopify-secret"
)

// testConfig is a service configuration for tests: loopback only, fast polling and short debounce.
func testConfig(t testing.TB, b backend) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = b.dbURL
	cfg.RedisURL = b.redisURL
	cfg.AllowLocalTargets = true
	cfg.RescoreDebounce = 100 * time.Millisecond
	cfg.QueuePoll = 20 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogFormat, cfg.LogLevel = "text", "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startTestService(t *testing.T, cfg *config.Config) *service {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := startService(context.Background(), cfg, parts{api: true, worker: true, embeddedRedis: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// testWriter sends the service's logs to the test log, so a failure shows what the service said.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func postShopify(t testing.TB, base, tenant, topic, eventID string, body []byte) string {
	t.Helper()
	m := hmac.New(sha256.New, []byte(e2eShopifySecret))
	m.Write(body)
	return post(t, base+"/webhooks/"+tenant+"/shopify", body, map[string]string{
		"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": base64.StdEncoding.EncodeToString(m.Sum(nil)), "X-Shopify-Event-Id": eventID,
	})
}

func postZendesk(t testing.TB, base, tenant string, body []byte) string {
	t.Helper()
	ts := time.Now().UTC().Format(time.RFC3339)
	m := hmac.New(sha256.New, []byte(e2eZendeskSecret))
	m.Write([]byte(ts))
	m.Write(body)
	return post(t, base+"/webhooks/"+tenant+"/zendesk", body, map[string]string{
		"X-Zendesk-Webhook-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil)), "X-Zendesk-Webhook-Signature-Timestamp": ts,
	})
}

func post(t testing.TB, url string, body []byte, headers map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, out)
	}
	return string(out)
}

func shopifyOrderJSON(id int64, email string, created time.Time, updated time.Time, total, financial string, cancelled bool) []byte {
	cancelledAt := "null"
	if cancelled {
		cancelledAt = `"` + updated.Format(time.RFC3339) + `"`
	}
	return []byte(fmt.Sprintf(`{"id":%d,"email":%q,"created_at":%q,"updated_at":%q,"total_price":%q,"currency":"USD",`+
		`"financial_status":%q,"cancelled_at":%s,"customer":{"id":7001,"email":%q,"first_name":"Jon","last_name":"Doe"},"refunds":[]}`,
		id, email, created.Format(time.RFC3339), updated.Format(time.RFC3339), total, financial, cancelledAt, email))
}

func ticketEventJSON(eventID, typ, ticketID, requesterID, status string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"type":"zen:event-type:%s","account_id":1,"id":%q,"time":%q,"subject":"zen:ticket:%s",`+
		`"zendesk_event_version":"2022-11-06","detail":{"id":%q,"requester_id":%q,"status":%q,"priority":"NORMAL","subject":"Where is my order?",`+
		`"created_at":%q,"updated_at":%q,"tags":["agent_own_tag"]},"event":{}}`,
		typ, eventID, at.Format(time.RFC3339Nano), ticketID, ticketID, requesterID, status, at.Format(time.RFC3339), at.Format(time.RFC3339)))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func managed(tags []string) []string {
	var out []string
	for _, tag := range tags {
		if strings.HasPrefix(tag, "clv_") {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

// TestEndToEnd: signed Shopify orders and a signed Zendesk ticket.created for the same customer end
// with the ticket's (and the user's) tags updated on a fake Zendesk that checks requests as Zendesk's
// API would, on the embedded defaults and on real PostgreSQL and Redis.
func TestEndToEnd(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b.name, func(t *testing.T) { testEndToEnd(t, b) })
	}
}

func testEndToEnd(t *testing.T, b backend) {
	ctx := context.Background()
	fz := zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken)
	fz.AddUser("9001", "Jon@Example.com", "Jon Doe")
	fz.AddTicket("42", "new", "agent_own_tag")

	s := startTestService(t, testConfig(t, b))
	tenant := &store.Tenant{Name: "Acme", ShopifySecret: e2eShopifySecret, OrdersSecret: "x",
		Zendesk: store.ZendeskAccount{BaseURL: fz.URL, Email: e2eZendeskEmail, APIToken: e2eZendeskToken, WebhookSecret: e2eZendeskSecret}}
	if err := s.db.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	base := s.URL()
	now := time.Now().UTC().Truncate(time.Second)
	first, second := now.AddDate(0, 0, -60), now.AddDate(0, 0, -20)
	postShopify(t, base, tenant.ID, "orders/create", "ev-1", shopifyOrderJSON(1001, "jon@example.com", first, first, "120.00", "paid", false))
	postShopify(t, base, tenant.ID, "orders/create", "ev-2", shopifyOrderJSON(1002, "JON@example.com", second, second, "80.50", "paid", false))

	// The ticket event names only the requester's id: the worker must look the user up in Zendesk.
	start := time.Now()
	postZendesk(t, base, tenant.ID, ticketEventJSON("zev-1", "ticket.created", "42", "9001", "NEW", now))
	waitFor(t, "managed tags on ticket 42", 30*time.Second, func() bool { return len(managed(fz.TicketTags("42"))) == 2 })
	var firstTagCall time.Time
	for _, r := range fz.Requests() {
		if r.Path == "/api/v2/tickets/update_many.json" && r.RawQuery == "ids=42" && r.Method == http.MethodPut && r.Status == http.StatusOK {
			firstTagCall = r.Time
			break
		}
	}
	t.Logf("end-to-end latency (ticket webhook sent -> first tag call on the ticket): %s (debounce %s)", firstTagCall.Sub(start), s.cfg.RescoreDebounce)

	tags := fz.TicketTags("42")
	if !slices.Contains(tags, "agent_own_tag") {
		t.Fatalf("the agent's own tag was removed: %v", tags)
	}
	got := managed(tags)
	if !strings.HasPrefix(got[0], "clv_churn_") || !strings.HasPrefix(got[1], "clv_tier_") {
		t.Fatalf("managed tags %v, want one clv_churn_* and one clv_tier_*", got)
	}
	waitFor(t, "user 9001 tagged", 10*time.Second, func() bool { return slices.Equal(managed(fz.UserTags("9001")), got) })

	cust, err := s.db.CustomerByEmail(ctx, tenant.ID, "jon@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if cust.ZendeskUserID != "9001" || cust.ExternalID != "shopify:7001" {
		t.Fatalf("customer not linked across shop and helpdesk: %+v", cust)
	}
	waitFor(t, "score of both orders", 10*time.Second, func() bool {
		c, err := s.db.GetCustomer(ctx, tenant.ID, cust.ID)
		return err == nil && c.Score != nil && c.Score.HistoricMinor == 20050 && c.ScoredVersion == c.DataVersion
	})

	lookups := 0
	for _, r := range fz.Requests() {
		if r.Method == http.MethodGet && r.Path == "/api/v2/users/9001.json" {
			lookups++
		}
	}
	if lookups != 1 {
		t.Fatalf("Zendesk user looked up %d times, want exactly 1 (then from the store)", lookups)
	}

	// The tenant's first events started a bootstrap refit, which ranks the customer against the
	// population and may change the tier once more: wait until that has settled.
	waitFor(t, "bootstrap refit rescored and pushed", 20*time.Second, func() bool {
		m, err := s.db.LatestModel(ctx, tenant.ID)
		if err != nil {
			return false
		}
		c, err := s.db.GetCustomer(ctx, tenant.ID, cust.ID)
		if err != nil || c.Score == nil || c.Score.ScoredAt.Before(m.FittedAt) {
			return false
		}
		plan, err := s.db.TagPlan(ctx, tenant.ID, cust.ID)
		return err == nil && len(plan.Targets) == 0 && slices.Equal(managed(fz.TicketTags("42")), c.Score.Tags)
	})

	// A duplicate delivery and an event that changes nothing make no helpdesk calls.
	before := len(fz.Requests())
	postShopify(t, base, tenant.ID, "orders/create", "ev-1", shopifyOrderJSON(1001, "jon@example.com", first, first, "120.00", "paid", false))
	postZendesk(t, base, tenant.ID, ticketEventJSON("zev-2", "ticket.comment_added", "42", "9001", "OPEN", now.Add(time.Second)))
	waitFor(t, "comment event stored and rescored", 10*time.Second, func() bool {
		tk, err := s.db.GetTicket(ctx, tenant.ID, "zendesk", "42")
		c, err2 := s.db.GetCustomer(ctx, tenant.ID, cust.ID)
		return err == nil && err2 == nil && tk.Status == "open" && c.ScoredVersion == c.DataVersion
	})
	time.Sleep(3 * s.cfg.RescoreDebounce)
	if extra := fz.Requests()[before:]; len(extra) != 0 {
		t.Fatalf("helpdesk called although no tag changed: %+v", extra)
	}
	c, _ := s.db.GetCustomer(ctx, tenant.ID, cust.ID)
	if c.Score.HistoricMinor != 20050 || c.Score.Orders != 2 {
		t.Fatalf("duplicate delivery changed the score: %+v", c.Score)
	}

	// A cancellation (a newer version of order 1001) reduces value; an older re-delivery does not undo it.
	postShopify(t, base, tenant.ID, "orders/cancelled", "ev-3", shopifyOrderJSON(1001, "jon@example.com", first, now, "120.00", "voided", true))
	postShopify(t, base, tenant.ID, "orders/updated", "ev-4", shopifyOrderJSON(1001, "jon@example.com", first, first.Add(time.Hour), "120.00", "paid", false))
	waitFor(t, "cancellation applied", 10*time.Second, func() bool {
		c, err := s.db.GetCustomer(ctx, tenant.ID, cust.ID)
		return err == nil && c.Score != nil && c.Score.HistoricMinor == 8050 && c.ScoredVersion == c.DataVersion
	})
}

// TestAdminAPIMounted: the service serves the admin API; a token from `clvd token` reads the customer
// the webhooks created, and a token for another tenant cannot.
func TestAdminAPIMounted(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, backend{})
	s := startTestService(t, cfg)
	mk := func(name string) *store.Tenant {
		tn := &store.Tenant{Name: name, OrdersSecret: "x"}
		if err := s.db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	a, b := mk("A"), mk("B")
	now := time.Now().UTC()
	o := integrations.Order{Source: "orders", OrderID: "1", Email: "ana@example.com", CreatedAt: now.AddDate(0, 0, -3), UpdatedAt: now.AddDate(0, 0, -3),
		Currency: "EUR", TotalMinor: 5990, Status: integrations.OrderPaid}
	if _, err := worker.StoreOrderEvent(ctx, s.db, a.ID, integrations.OrderEvent{Order: &o}, false); err != nil {
		t.Fatal(err)
	}
	c, err := s.db.CustomerByEmail(ctx, a.ID, "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.queue.EnqueueRescore(ctx, a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "customer scored", 10*time.Second, func() bool {
		c, err := s.db.GetCustomer(ctx, a.ID, c.ID)
		return err == nil && c.Score != nil
	})
	token := func(tenant string) string {
		code, out, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": cfg.DataDir}, "token", "--tenant", tenant, "--role", "admin", "--ttl", "1h")
		if code != 0 {
			t.Fatalf("clvd token: %d %s", code, stderr)
		}
		return strings.TrimSpace(out)
	}
	get := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/api/v1/customers/ana@example.com", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(token(a.ID)); code != http.StatusOK || !strings.Contains(body, "ana@example.com") || !strings.Contains(body, `"tier"`) {
		t.Fatalf("tenant A reading its customer: %d %s", code, body)
	}
	if code, body := get(token(b.ID)); code != http.StatusNotFound {
		t.Fatalf("tenant B reading A's customer: %d %s, want 404", code, body)
	}
	if code, _ := get("not-a-token"); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d, want 401", code)
	}
}

// TestReconcilerKeepsRunning: on the in-process Redis the reconciler runs every period, not once (a
// lease that never expired once stopped it), and picks up a refit requested after its first run, as
// `clvd import` does from another process.
func TestReconcilerKeepsRunning(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, backend{})
	cfg.ReconcileEvery = time.Second
	s := startTestService(t, cfg)
	tn := &store.Tenant{Name: "Imported", OrdersSecret: "x"}
	if err := s.db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the reconciler has run at least once
	if err := worker.RequestRefit(ctx, s.db, tn.ID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the requested refit", 15*time.Second, func() bool {
		_, err := s.db.LatestModel(ctx, tn.ID)
		return err == nil
	})
}
