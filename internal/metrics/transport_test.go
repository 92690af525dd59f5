package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestInstrumentTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/limited" {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	m := New()
	client := &http.Client{Transport: m.InstrumentTransport(srv.Client().Transport)}
	for _, p := range []string{"/ok", "/ok", "/limited"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	srv.Close()
	if _, err := client.Get(srv.URL + "/ok"); err == nil {
		t.Fatal("a call to a closed server succeeded")
	}

	reg := m.Registry()
	want(t, reg, "clvd_helpdesk_api_calls_total", map[string]string{"status": "200"}, 2)
	want(t, reg, "clvd_helpdesk_api_calls_total", map[string]string{"status": "429"}, 1)
	want(t, reg, "clvd_helpdesk_api_calls_total", map[string]string{"status": "error"}, 1)
	want(t, reg, "clvd_helpdesk_api_call_duration_seconds", nil, 4)
}

func TestInstrumentTransportNil(t *testing.T) {
	if rt := New().InstrumentTransport(nil).(*transport); rt.next != http.DefaultTransport {
		t.Fatal("a nil transport is not http.DefaultTransport")
	}
}
