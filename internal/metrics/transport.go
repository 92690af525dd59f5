package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// InstrumentTransport wraps rt (http.DefaultTransport when nil), the helpdesk client's transport, to
// count its calls by status code ("error" when the call got no answer) and time them.
func (m *Metrics) InstrumentTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &transport{next: rt, m: m}
}

type transport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.m.apiDuration.Observe(time.Since(start).Seconds())
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.m.apiCalls.WithLabelValues(status).Inc()
	return resp, err
}

// CloseIdleConnections passes on to the wrapped transport, so http.Client.CloseIdleConnections still works.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
