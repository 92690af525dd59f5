package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
)

// FakeZendeskOptions configure the built-in Zendesk.
type FakeZendeskOptions struct {
	// Addr is where the fake listens, e.g. 127.0.0.1:0 (any free port) or :9090.
	Addr string
	// Email and Token are the API credentials the fake accepts (Basic "{email}/token:{token}").
	Email, Token string
	// Rate429 and Rate5xx are the shares of requests answered 429 (with Retry-After) and 503.
	Rate429, Rate5xx float64
	// RetryAfter is what a 429 asks for (rounded up to whole seconds).
	RetryAfter time.Duration
	// Seed makes the injected faults reproducible.
	Seed uint64
}

// FakeZendesk is zendesktest's fake Zendesk API served on a chosen address. It records when each
// ticket first received a successful tag call, for the end-to-end latency, and counts what it
// answered.
type FakeZendesk struct {
	// URL is the base URL the service reaches the fake at (the tenant's Zendesk URL).
	URL string
	// Fake holds the state: users, tickets and their tags, and every request received.
	Fake *zendesktest.Server

	srv *http.Server
	ln  net.Listener

	mu           sync.Mutex
	outage       zendesktest.Outage
	outageCalls  map[int]int          // status → calls that arrived during an outage (0: held, no answer)
	firstTagCall map[string]time.Time // ticket id → arrival of the first successful update_many naming it
	byStatus     map[int]int
	tagCalls     int // successful calls that write tags (tickets and users)
	lookups      int // GET /api/v2/users/{id}.json answered 200
	created      int // tickets created (retention outreach)
}

// StartFakeZendesk starts the fake on o.Addr. A wildcard address (":9090", "0.0.0.0:9090") is
// announced as 127.0.0.1 in URL. Close it when done.
func StartFakeZendesk(o FakeZendeskOptions) (*FakeZendesk, error) {
	if o.Email == "" || o.Token == "" {
		return nil, errors.New("fake Zendesk: email and token are required")
	}
	if o.Rate429 < 0 || o.Rate5xx < 0 || o.Rate429+o.Rate5xx > 1 {
		return nil, fmt.Errorf("fake Zendesk: fault rates %.3f (429) and %.3f (5xx) must be ≥ 0 and add up to at most 1", o.Rate429, o.Rate5xx)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("fake Zendesk: listen on %s: %w", o.Addr, err)
	}
	fake := zendesktest.New(nil, o.Email, o.Token)
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	fake.SetFaults(o.Rate429, o.Rate5xx, o.RetryAfter)
	if o.Seed != 0 {
		fake.SetSeed(o.Seed)
	}
	backend, err := url.Parse(fake.URL)
	if err != nil {
		ln.Close()
		fake.Close()
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	proxy.Transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	// The backend gave no answer (a DownHang outage dropped the call, or the service gave up on it):
	// give none either, rather than a 502 the real Zendesk would not send.
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		if rec, ok := w.(*statusRecorder); ok {
			rec.dropped = true
		}
	}
	f := &FakeZendesk{
		URL:          "http://" + announce(ln.Addr().(*net.TCPAddr)),
		Fake:         fake,
		ln:           ln,
		firstTagCall: map[string]time.Time{},
		byStatus:     map[int]int{},
		outageCalls:  map[int]int{},
	}
	f.srv = &http.Server{Handler: f.handler(proxy), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// announce turns a listener address into one a local client can dial.
func announce(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP == nil || a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(a.Port))
}

type statusRecorder struct {
	http.ResponseWriter
	status  int
	dropped bool // no answer: the connection is dropped
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (f *FakeZendesk) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		f.mu.Lock()
		during := f.outage != zendesktest.Up
		f.mu.Unlock()
		next.ServeHTTP(rec, r)
		if rec.dropped {
			rec.status = 0
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.byStatus[rec.status]++
		if during {
			f.outageCalls[rec.status]++
		}
		if rec.dropped {
			defer panic(http.ErrAbortHandler) // after the counts, with the lock released
		}
		path := r.URL.Path
		if rec.status == http.StatusCreated && r.Method == http.MethodPost && path == "/api/v2/tickets.json" {
			f.created++
		}
		if rec.status != http.StatusOK {
			return
		}
		switch {
		case r.Method == http.MethodPut && path == "/api/v2/tickets/update_many.json":
			f.tagCalls++
			for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
				if _, seen := f.firstTagCall[id]; !seen && id != "" {
					f.firstTagCall[id] = arrived
				}
			}
		case r.Method == http.MethodPut && strings.HasPrefix(path, "/api/v2/tickets/"):
			f.tagCalls++
			id := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v2/tickets/"), ".json")
			if _, seen := f.firstTagCall[id]; !seen {
				f.firstTagCall[id] = arrived
			}
		case strings.HasPrefix(path, "/api/v2/users/") && strings.HasSuffix(path, "/tags.json"):
			f.tagCalls++
		case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v2/users/"):
			f.lookups++
		}
	})
}

// SetOutage puts the fake in (or, with zendesktest.Up, out of) an outage: every call answered 429 or
// 500, or held without an answer; see zendesktest.Server.SetOutage. Calls arriving during it are
// counted apart.
func (f *FakeZendesk) SetOutage(o zendesktest.Outage) {
	f.mu.Lock()
	f.outage = o
	f.mu.Unlock()
	f.Fake.SetOutage(o)
}

// FirstTagCall returns when the ticket first received a successful tag call, and whether it has.
func (f *FakeZendesk) FirstTagCall(ticketID string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.firstTagCall[ticketID]
	return t, ok
}

// FakeZendeskStats is what the fake answered.
type FakeZendeskStats struct {
	URL         string         `json:"url"`
	Requests    int            `json:"requests"`
	ByStatus    map[string]int `json:"by_status"`
	TagCalls    int            `json:"tag_calls"`    // successful ticket and user tag writes
	UserLookups int            `json:"user_lookups"` // successful GET of a user
	// TicketsCreated are tickets the service opened (retention outreach for customers turning at risk).
	TicketsCreated int `json:"tickets_created"`
	// OutageCalls are the calls that arrived during an outage, by status ("0": held, no answer).
	OutageCalls map[string]int `json:"outage_calls,omitempty"`
}

// Stats returns the counts so far.
func (f *FakeZendesk) Stats() FakeZendeskStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := FakeZendeskStats{URL: f.URL, ByStatus: map[string]int{}, TagCalls: f.tagCalls, UserLookups: f.lookups, TicketsCreated: f.created}
	for code, n := range f.byStatus {
		s.Requests += n
		s.ByStatus[fmt.Sprint(code)] += n
	}
	for code, n := range f.outageCalls {
		if s.OutageCalls == nil {
			s.OutageCalls = map[string]int{}
		}
		s.OutageCalls[fmt.Sprint(code)] += n
	}
	return s
}

// Close stops the listener and the fake.
func (f *FakeZendesk) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
	f.Fake.Close()
}

// DumpRequests writes every request the fake received, in arrival order, to path: one JSON object
// a line with method, path, query, status, time and body.
func (f *FakeZendesk) DumpRequests(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for _, r := range f.Fake.Requests() {
		if err := enc.Encode(map[string]any{"time": r.Time.Format(time.RFC3339Nano), "method": r.Method, "path": r.Path,
			"query": r.RawQuery, "status": r.Status, "body": string(r.Body)}); err != nil {
			out.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
