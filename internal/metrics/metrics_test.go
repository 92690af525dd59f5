package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNewTwice: every Metrics has its own registry, so several services can run in one process.
func TestNewTwice(t *testing.T) {
	a, b := New(), New()
	if a.Registry() == b.Registry() {
		t.Fatal("two Metrics share a registry")
	}
	a.rateLimitWaits.Inc()
	want(t, b.Registry(), "clvd_rate_limit_waits_total", nil, 0)
	want(t, a.Registry(), "clvd_rate_limit_waits_total", nil, 1)
}

func TestHandler(t *testing.T) {
	m := New()
	m.apiCalls.WithLabelValues("200").Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	for _, s := range []string{`clvd_helpdesk_api_calls_total{status="200"} 1`, "go_goroutines", "process_", "clvd_rate_limit_waits_total 0"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}
}
