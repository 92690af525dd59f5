package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

// TestMetrics: a signed and a badly signed webhook show in /metrics by route pattern (never the tenant
// id), the bad one as a signature failure; the queued event's task and its helpdesk calls are counted.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	fz := zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken)
	fz.AddUser("9001", "jon@example.com", "Jon Doe")
	fz.AddTicket("42", "new")
	s := startTestService(t, testConfig(t, backend{}))
	tenant := &store.Tenant{Name: "Acme", Zendesk: store.ZendeskAccount{BaseURL: fz.URL, Email: e2eZendeskEmail,
		APIToken: e2eZendeskToken, WebhookSecret: e2eZendeskSecret}}
	if err := s.db.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	base := s.URL()
	now := time.Now().UTC()
	postZendesk(t, base, tenant.ID, ticketEventJSON("zev-1", "ticket.created", "42", "9001", "NEW", now))

	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/"+tenant.ID+"/zendesk",
		bytes.NewReader(ticketEventJSON("zev-2", "ticket.created", "42", "9001", "NEW", now)))
	req.Header.Set("X-Zendesk-Webhook-Signature", "bm90IHRoZSBzaWduYXR1cmU=")
	req.Header.Set("X-Zendesk-Webhook-Signature-Timestamp", now.Format(time.RFC3339))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature answered %d, want 401", resp.StatusCode)
	}

	var body string
	waitFor(t, "the ticket event ingested", 15*time.Second, func() bool {
		body = scrape(t, base)
		return metricValue(body, `clvd_tasks_total{outcome="ok",type="ingest:ticket"}`) == 1
	})
	for series, want := range map[string]float64{
		`clvd_http_requests_total{method="POST",route="/webhooks/:tenant/zendesk",status="202"}`: 1,
		`clvd_http_requests_total{method="POST",route="/webhooks/:tenant/zendesk",status="401"}`: 1,
		`clvd_webhook_signature_failures_total{source="zendesk"}`:                                1,
		`clvd_http_request_duration_seconds_count{route="/webhooks/:tenant/zendesk"}`:            2,
		`clvd_queue_up`: 1,
	} {
		if got := metricValue(body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(body, `clvd_helpdesk_api_calls_total{status="200"}`); got < 1 {
		t.Errorf("helpdesk calls with status 200: %v, want the requester lookup at least", got)
	}
	for _, s := range []string{`clvd_queue_tasks{queue="ingest",state="pending"}`, `clvd_queue_latency_seconds{queue="ingest"}`, "go_goroutines", "process_cpu_seconds_total"} {
		if metricValue(body, s) < 0 {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	if strings.Contains(body, tenant.ID) {
		t.Error("/metrics names the tenant id")
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// metricValue is the value of one series in the text exposition, or -1 when it is absent.
func metricValue(body, series string) float64 {
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
