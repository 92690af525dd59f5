package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/internal/logctx"
	"github.com/clvd/clvd/store"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type fakeTenants map[string]*store.Tenant

func (f fakeTenants) GetTenant(_ context.Context, id string) (*store.Tenant, error) {
	if t, ok := f[id]; ok {
		return t, nil
	}
	return nil, store.ErrNotFound
}

type fakeQueue struct {
	mu      sync.Mutex
	orders  []integrations.OrderEvent
	tickets []integrations.TicketEvent
	seen    map[string]bool
	fail    error
	reqIDs  []string // the request id each enqueue's context carried
}

func (q *fakeQueue) dup(key string) bool {
	if q.seen == nil {
		q.seen = map[string]bool{}
	}
	d := q.seen[key]
	q.seen[key] = true
	return d
}

func (q *fakeQueue) EnqueueOrder(_ context.Context, tenantID string, ev integrations.OrderEvent) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return false, q.fail
	}
	q.orders = append(q.orders, ev)
	key := ev.EventID
	if ev.Order != nil {
		key += ev.Order.OrderID + ev.Order.UpdatedAt.String()
	}
	return q.dup(tenantID + key), nil
}

func (q *fakeQueue) EnqueueTicket(ctx context.Context, tenantID string, ev integrations.TicketEvent) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reqIDs = append(q.reqIDs, logctx.RequestID(ctx))
	if q.fail != nil {
		return false, q.fail
	}
	q.tickets = append(q.tickets, ev)
	return q.dup(tenantID + ev.EventID), nil
}

const (
	zendeskSecret = "zendesk-secret"
	shopifySecret = "shopify-secret"
	ordersSecret  = "orders-secret"
)

func newTestRouter(t *testing.T, q *fakeQueue, ready ...Check) http.Handler {
	t.Helper()
	gin.SetMode(gin.TestMode)
	tenants := fakeTenants{
		"t1": {ID: "t1", Name: "Acme", Zendesk: store.ZendeskAccount{WebhookSecret: zendeskSecret}, ShopifySecret: shopifySecret, OrdersSecret: ordersSecret},
		"t2": {ID: "t2", Name: "No secrets"},
		"t3": {ID: "t3", Name: "Two Zendesk webhooks", Zendesk: store.ZendeskAccount{WebhookSecret: "trigger-secret, " + zendeskSecret}},
	}
	return NewRouter(Options{Tenants: tenants, Queue: q, Ready: ready, MaxBodyBytes: 64 << 10, SignatureTolerance: 5 * time.Minute,
		Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func zendeskTicketCreated(id, ticket string) []byte {
	return []byte(`{"type":"zen:event-type:ticket.created","account_id":123,"id":"` + id + `","time":"2026-11-23T11:59:00Z",` +
		`"subject":"zen:ticket:` + ticket + `","zendesk_event_version":"2022-11-06","detail":{"id":"` + ticket + `","requester_id":"9001",` +
		`"status":"NEW","priority":"HIGH","subject":"Where is my order?","created_at":"2026-11-23T11:59:00Z","updated_at":"2026-11-23T11:59:00Z","tags":[]},"event":{}}`)
}

func signZendesk(secret string, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func signShopify(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

const shopifyOrder = `{"id":820982911946154508,"email":"Jon@Example.com","created_at":"2026-11-20T10:00:00-05:00","updated_at":"2026-11-20T10:05:00-05:00",` +
	`"total_price":"199.00","currency":"USD","financial_status":"paid","cancelled_at":null,"customer":{"id":115310627314723954,"email":"jon@example.com","first_name":"Jon","last_name":"Doe"},"refunds":[]}`

type req struct {
	name     string
	path     string
	body     []byte
	headers  map[string]string
	status   int
	contains string
}

func do(t *testing.T, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	hr := httptest.NewRequest(http.MethodPost, r.path, bytes.NewReader(r.body))
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	if w.Code != r.status {
		t.Fatalf("%s: status %d, want %d; body %s", r.name, w.Code, r.status, w.Body.String())
	}
	if r.contains != "" && !strings.Contains(w.Body.String(), r.contains) {
		t.Fatalf("%s: body %s does not contain %q", r.name, w.Body.String(), r.contains)
	}
	if w.Code == http.StatusAccepted {
		var a struct{ Status string }
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || a.Status == "" || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s: 202 answer is not JSON with a status (%s): %s", r.name, w.Header().Get("Content-Type"), w.Body.String())
		}
	}
	if w.Code >= 400 {
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s: error answer is not JSON with an error message: %s", r.name, w.Body.String())
		}
	}
	return w
}

func TestZendeskWebhook(t *testing.T) {
	q := &fakeQueue{}
	h := newTestRouter(t, q)
	ts := testNow.Add(-30 * time.Second).Format(time.RFC3339)
	body := zendeskTicketCreated("evt-1", "42")
	good := map[string]string{"X-Zendesk-Webhook-Signature": signZendesk(zendeskSecret, ts, body), "X-Zendesk-Webhook-Signature-Timestamp": ts}
	stale := testNow.Add(-6 * time.Minute).Format(time.RFC3339)
	malformed := []byte(`{"type":"zen:event-type:ticket.created","id":"x","time":"2026-11-23T11:59:00Z","detail":{"requester_id":"1"}}`)
	notJSON := []byte(`{"type":`)
	for _, r := range []req{
		{"good", "/webhooks/t1/zendesk", body, good, 202, "queued"},
		{"duplicate", "/webhooks/t1/zendesk", body, good, 202, "duplicate"},
		{"unknown tenant", "/webhooks/nope/zendesk", body, good, 404, "unknown tenant"},
		{"no signature", "/webhooks/t1/zendesk", body, map[string]string{"X-Zendesk-Webhook-Signature-Timestamp": ts}, 401, ""},
		{"wrong signature", "/webhooks/t1/zendesk", body, map[string]string{"X-Zendesk-Webhook-Signature": signZendesk("other", ts, body), "X-Zendesk-Webhook-Signature-Timestamp": ts}, 401, ""},
		{"tampered body", "/webhooks/t1/zendesk", append([]byte(" "), body...), good, 401, ""},
		{"stale timestamp", "/webhooks/t1/zendesk", body, map[string]string{"X-Zendesk-Webhook-Signature": signZendesk(zendeskSecret, stale, body), "X-Zendesk-Webhook-Signature-Timestamp": stale}, 401, ""},
		{"malformed", "/webhooks/t1/zendesk", malformed, map[string]string{"X-Zendesk-Webhook-Signature": signZendesk(zendeskSecret, ts, malformed), "X-Zendesk-Webhook-Signature-Timestamp": ts}, 400, ""},
		{"not json", "/webhooks/t1/zendesk", notJSON, map[string]string{"X-Zendesk-Webhook-Signature": signZendesk(zendeskSecret, ts, notJSON), "X-Zendesk-Webhook-Signature-Timestamp": ts}, 400, ""},
		{"secret not set", "/webhooks/t2/zendesk", body, good, 401, "no signing secret"},
		{"second of two secrets", "/webhooks/t3/zendesk", body, good, 202, "queued"},
		{"too large", "/webhooks/t1/zendesk", bytes.Repeat([]byte("x"), 65<<10), good, 413, "limit"},
	} {
		do(t, h, r)
	}
	if len(q.tickets) != 3 {
		t.Fatalf("queued %d ticket events, want 3 (the good one, its duplicate, the other tenant's)", len(q.tickets))
	}
	ev := q.tickets[0]
	if ev.TicketID != "42" || ev.RequesterID != "9001" || ev.Type != integrations.TicketCreated || ev.EventID != "evt-1" {
		t.Fatalf("queued event %+v", ev)
	}
}

func TestShopifyWebhook(t *testing.T) {
	q := &fakeQueue{}
	h := newTestRouter(t, q)
	body := []byte(shopifyOrder)
	hdr := func(topic, sig string) map[string]string {
		return map[string]string{"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Event-Id": "e-1", "X-Shopify-Webhook-Id": "w-1"}
	}
	sig := signShopify(shopifySecret, body)
	bad := []byte(`{"id":"not-a-number","total_price":12}`)
	for _, r := range []req{
		{"good", "/webhooks/t1/shopify", body, hdr("orders/create", sig), 202, "queued"},
		{"duplicate", "/webhooks/t1/shopify", body, hdr("orders/create", sig), 202, "duplicate"},
		{"unsupported topic", "/webhooks/t1/shopify", body, hdr("products/create", sig), 202, "ignored"},
		{"missing topic", "/webhooks/t1/shopify", body, hdr("", sig), 400, "X-Shopify-Topic"},
		{"bad hmac", "/webhooks/t1/shopify", body, hdr("orders/create", signShopify("wrong", body)), 401, ""},
		{"no hmac", "/webhooks/t1/shopify", body, hdr("orders/create", ""), 401, ""},
		{"malformed", "/webhooks/t1/shopify", bad, hdr("orders/create", signShopify(shopifySecret, bad)), 400, ""},
		{"unknown tenant", "/webhooks/zzz/shopify", body, hdr("orders/create", sig), 404, ""},
		{"secret not set", "/webhooks/t2/shopify", body, hdr("orders/create", sig), 401, ""},
	} {
		do(t, h, r)
	}
	if len(q.orders) != 2 {
		t.Fatalf("queued %d orders, want 2", len(q.orders))
	}
	o := q.orders[0].Order
	if o == nil || o.OrderID != "820982911946154508" || o.TotalMinor != 19900 || o.Email != "jon@example.com" || o.CustomerExternalID != "115310627314723954" {
		t.Fatalf("queued order %+v", o)
	}
}

func TestOrdersWebhook(t *testing.T) {
	q := &fakeQueue{}
	h := newTestRouter(t, q)
	body := []byte(orders.Example)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	hdr := func(ts, sig string) map[string]string {
		return map[string]string{"X-CLV-Timestamp": ts, "X-CLV-Signature": sig}
	}
	sig := orders.Sign([]byte(ordersSecret), ts, body)
	old := strconv.FormatInt(testNow.Add(-10*time.Minute).Unix(), 10)
	bad := []byte(`{"order_id":"A-1","amount":59.9,"currency":"EUR","created_at":"2026-11-01T10:00:00Z","email":"a@b.co"}`)
	for _, r := range []req{
		{"good", "/webhooks/t1/orders", body, hdr(ts, sig), 202, "queued"},
		{"duplicate", "/webhooks/t1/orders", body, hdr(ts, sig), 202, "duplicate"},
		{"bad signature", "/webhooks/t1/orders", body, hdr(ts, orders.Sign([]byte("x"), ts, body)), 401, ""},
		{"stale", "/webhooks/t1/orders", body, hdr(old, orders.Sign([]byte(ordersSecret), old, body)), 401, ""},
		{"float amount", "/webhooks/t1/orders", bad, hdr(ts, orders.Sign([]byte(ordersSecret), ts, bad)), 400, "amount"},
		{"too large", "/webhooks/t1/orders", bytes.Repeat([]byte("x"), 65<<10), hdr(ts, sig), 413, ""},
	} {
		do(t, h, r)
	}
}

func TestQueueDownAnswers503(t *testing.T) {
	q := &fakeQueue{fail: errors.New("dial tcp 127.0.0.1:6379: connection refused")}
	h := newTestRouter(t, q)
	body := []byte(orders.Example)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	w := do(t, h, req{"queue down", "/webhooks/t1/orders", body, map[string]string{"X-CLV-Timestamp": ts, "X-CLV-Signature": orders.Sign([]byte(ordersSecret), ts, body)}, 503, "retry"})
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if strings.Contains(w.Body.String(), "6379") {
		t.Fatal("internal error details leaked to the sender")
	}
}

func TestHealthAndReady(t *testing.T) {
	var down error
	h := newTestRouter(t, &fakeQueue{}, Check{Name: "redis", Ping: func(context.Context) error { return down }})
	for _, c := range []struct {
		path   string
		down   error
		status int
	}{{"/healthz", nil, 200}, {"/readyz", nil, 200}, {"/readyz", errors.New("connection refused"), 503}, {"/healthz", errors.New("x"), 200}} {
		down = c.down
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.path, nil))
		if w.Code != c.status {
			t.Fatalf("%s with dependency error %v: %d, want %d", c.path, c.down, w.Code, c.status)
		}
	}
}

// TestRequestID: every answer names its request id (the caller's, when it is a plain token), and the
// queued task is given the same id, so the worker's log lines can be joined to the request's.
func TestRequestID(t *testing.T) {
	q := &fakeQueue{}
	h := newTestRouter(t, q)
	body := zendeskTicketCreated("ev-rid", "7")
	ts := testNow.Format(time.RFC3339)
	headers := func(id string) map[string]string {
		m := map[string]string{"X-Zendesk-Webhook-Signature": signZendesk(zendeskSecret, ts, body), "X-Zendesk-Webhook-Signature-Timestamp": ts}
		if id != "" {
			m["X-Request-Id"] = id
		}
		return m
	}
	w := do(t, h, req{name: "given id", path: "/webhooks/t1/zendesk", body: body, headers: headers("lb-42.a"), status: http.StatusAccepted})
	if got := w.Header().Get("X-Request-Id"); got != "lb-42.a" || q.reqIDs[0] != "lb-42.a" {
		t.Fatalf("answer id %q, queued with %q; want the caller's lb-42.a", got, q.reqIDs[0])
	}
	for _, bad := range []string{"", "two words", strings.Repeat("x", 65)} {
		w := do(t, h, req{name: "id " + bad, path: "/webhooks/t1/zendesk", body: body, headers: headers(bad), status: http.StatusAccepted})
		got := w.Header().Get("X-Request-Id")
		if len(got) != 16 || got == bad || q.reqIDs[len(q.reqIDs)-1] != got {
			t.Fatalf("caller id %q: answered %q, queued with %q; want a new 16-digit id on both", bad, got, q.reqIDs[len(q.reqIDs)-1])
		}
	}
	w = do(t, h, req{name: "error", path: "/webhooks/nope/zendesk", body: body, headers: headers(""), status: http.StatusNotFound})
	if w.Header().Get("X-Request-Id") == "" {
		t.Fatal("an error answer has no request id")
	}
}
