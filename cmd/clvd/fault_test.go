package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

// faultProxy forwards TCP connections to a server. Cut drops every connection and refuses new ones,
// as a crashed or unreachable server would look to clvd; Restore lets them through again. The
// server itself keeps its data, as a restarted Redis with persistence or PostgreSQL does.
type faultProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *faultProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut drops every open connection and refuses new ones until Restore.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *faultProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// withHost returns rawURL with its host:port replaced.
func withHost(t *testing.T, rawURL, hostPort string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostPort
	return u.String()
}

// faultLoad is a set of customers, each with a Zendesk user and an open ticket in the fake Zendesk,
// and the signed deliveries a sender makes for them. Every delivery is retried by the "sender" until
// clvd acknowledges it (as Shopify and Zendesk do on non-2xx), so the audit can demand that every
// event ends up stored exactly once.
type faultLoad struct {
	t       *testing.T
	base    string
	tenant  string
	fz      *zendesktest.Server
	nextID  int
	orders  map[string]int // email -> orders acknowledged (distinct ids)
	acked   int
	refused map[int]int // status -> count of refused attempts
}

func newFaultLoad(t *testing.T, base, tenant string, fz *zendesktest.Server, customers int) *faultLoad {
	l := &faultLoad{t: t, base: base, tenant: tenant, fz: fz, orders: map[string]int{}, refused: map[int]int{}}
	for i := range customers {
		fz.AddUser(strconv.Itoa(9100+i), l.email(i), "Customer "+strconv.Itoa(i))
		fz.AddTicket(strconv.Itoa(500+i), "open", "agent_own_tag")
	}
	return l
}

func (l *faultLoad) email(i int) string { return fmt.Sprintf("c%03d@example.com", i) }

// deliver POSTs once; it reports the status (0: no answer).
func (l *faultLoad) deliver(path string, body []byte, headers map[string]string) int {
	req, _ := http.NewRequest(http.MethodPost, l.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// until retries a delivery, as its sender would, until clvd acknowledges it.
func (l *faultLoad) until(path string, body []byte, headers func() map[string]string) {
	l.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := l.deliver(path, body, headers())
		if st == http.StatusAccepted {
			l.acked++
			return
		}
		l.refused[st]++
		if st != http.StatusServiceUnavailable && st != 0 {
			l.t.Fatalf("POST %s: status %d: only 202 or 503 are acceptable", path, st)
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("POST %s never acknowledged", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// order sends a new order of customer i (and, sometimes, its duplicate delivery).
func (l *faultLoad) order(i int, duplicate bool) {
	l.nextID++
	id := 70000 + l.nextID
	created := time.Now().UTC().AddDate(0, 0, -l.nextID%200).Truncate(time.Second)
	body := []byte(fmt.Sprintf(`{"id":%d,"email":%q,"created_at":%q,"updated_at":%q,"total_price":"%d.50","currency":"USD",`+
		`"financial_status":"paid","cancelled_at":null,"customer":{"id":%d,"email":%q},"refunds":[]}`,
		id, l.email(i), created.Format(time.RFC3339), created.Format(time.RFC3339), 10+l.nextID%90, 8000+i, l.email(i)))
	m := hmac.New(sha256.New, []byte(e2eShopifySecret))
	m.Write(body)
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	headers := func() map[string]string {
		return map[string]string{"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Event-Id": "ev-" + strconv.Itoa(id)}
	}
	l.until("/webhooks/"+l.tenant+"/shopify", body, headers)
	if duplicate {
		l.until("/webhooks/"+l.tenant+"/shopify", body, headers)
	}
	l.orders[l.email(i)]++
}

// ticket sends a ticket event for customer i's ticket.
func (l *faultLoad) ticket(i int) {
	l.nextID++
	body := ticketEventJSON("zev-"+strconv.Itoa(l.nextID), "ticket.comment_added", strconv.Itoa(500+i), strconv.Itoa(9100+i), "OPEN",
		time.Now().Add(time.Duration(l.nextID)*time.Millisecond))
	headers := func() map[string]string {
		ts := time.Now().UTC().Format(time.RFC3339)
		m := hmac.New(sha256.New, []byte(e2eZendeskSecret))
		m.Write([]byte(ts))
		m.Write(body)
		return map[string]string{"X-Zendesk-Webhook-Signature": base64.StdEncoding.EncodeToString(m.Sum(nil)), "X-Zendesk-Webhook-Signature-Timestamp": ts}
	}
	l.until("/webhooks/"+l.tenant+"/zendesk", body, headers)
}

// audit waits until every acknowledged event is stored exactly once, every customer is scored on its
// latest data, and the fake Zendesk holds exactly the tags the store says each user and ticket
// should have; it fails with what is missing.
func (l *faultLoad) audit(ctx context.Context, db *store.DB, customers int, timeout time.Duration) {
	l.t.Helper()
	var problem string
	check := func() bool {
		for i := range customers {
			c, err := db.CustomerByEmail(ctx, l.tenant, l.email(i))
			if err != nil {
				problem = fmt.Sprintf("customer %s: %v", l.email(i), err)
				return false
			}
			orders, err := db.CustomerOrders(ctx, l.tenant, c.ID)
			if err != nil || len(orders) != l.orders[l.email(i)] {
				problem = fmt.Sprintf("customer %s: %d orders stored, %d acknowledged (%v)", l.email(i), len(orders), l.orders[l.email(i)], err)
				return false
			}
			if c.Score == nil || c.ScoredVersion != c.DataVersion || c.Score.Orders != len(orders) {
				problem = fmt.Sprintf("customer %s: not scored on its latest data (version %d/%d)", l.email(i), c.ScoredVersion, c.DataVersion)
				return false
			}
			plan, err := db.TagPlan(ctx, l.tenant, c.ID)
			if err != nil || len(plan.Targets) > 0 {
				problem = fmt.Sprintf("customer %s: tags not pushed yet: %+v %v", l.email(i), plan, err)
				return false
			}
			want := c.Score.Tags
			if got := managed(l.fz.UserTags(c.ZendeskUserID)); !slices.Equal(got, want) {
				problem = fmt.Sprintf("user %s of %s has %v, the store says %v", c.ZendeskUserID, l.email(i), got, want)
				return false
			}
			if got := managed(l.fz.TicketTags(strconv.Itoa(500 + i))); !slices.Equal(got, want) {
				problem = fmt.Sprintf("ticket %d of %s has %v, the store says %v", 500+i, l.email(i), got, want)
				return false
			}
			if tags := l.fz.TicketTags(strconv.Itoa(500 + i)); !slices.Contains(tags, "agent_own_tag") {
				problem = fmt.Sprintf("ticket %d lost the agent's tag: %v", 500+i, tags)
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			l.t.Fatalf("audit after %s: %s (acknowledged %d, refused %v)", timeout, problem, l.acked, l.refused)
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.t.Logf("audit passed: %d deliveries acknowledged, refused attempts by status %v, %d customers' tags right", l.acked, l.refused, customers)
}

// startFaultService starts the service on b (reconciling every second, helpdesk calls timing out
// after 1 s) with a tenant whose Zendesk is fz, and the load of that many customers.
func startFaultService(t *testing.T, b backend, fz *zendesktest.Server, customers int) (*service, *faultLoad) {
	t.Helper()
	cfg := testConfig(t, b)
	cfg.ReconcileEvery = time.Second
	cfg.HelpdeskTimeout = time.Second
	s := startTestService(t, cfg)
	tenant := &store.Tenant{Name: "Faults", ShopifySecret: e2eShopifySecret, OrdersSecret: "x",
		Zendesk: store.ZendeskAccount{BaseURL: fz.URL, Email: e2eZendeskEmail, APIToken: e2eZendeskToken, WebhookSecret: e2eZendeskSecret}}
	if err := s.db.CreateTenant(context.Background(), tenant); err != nil {
		t.Fatal(err)
	}
	return s, newFaultLoad(t, s.URL(), tenant.ID, fz, customers)
}

// TestFaultRedisOutage: Redis goes away in the middle of the traffic and comes back. While it is away
// the intake answers 503 (so senders retry) and the workers' tasks fail; afterwards the work resumes
// by itself, and the audit finds every acknowledged event stored once and every tag right, with
// Zendesk answering 429 and 5xx to a share of the calls throughout.
func TestFaultRedisOutage(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			var redisTarget string
			if b.redisURL == "" {
				m := miniredis.RunT(t) // a Redis of the test's own, so it can be taken away
				redisTarget = m.Addr()
				b.redisURL = "redis://" + m.Addr()
			} else {
				u, _ := url.Parse(b.redisURL)
				redisTarget = u.Host
			}
			proxy := newFaultProxy(t, redisTarget)
			b.redisURL = withHost(t, b.redisURL, proxy.Addr())

			fz := zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken)
			fz.SetFaults(0.15, 0.10, time.Second)
			const customers = 12
			s, l := startFaultService(t, b, fz, customers)
			for i := range customers {
				l.order(i, i%4 == 0)
				l.ticket(i)
			}
			proxy.Cut()
			// While Redis is away: deliveries get 503 and are retried by their senders until it is back.
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(1500 * time.Millisecond)
				proxy.Restore()
			}()
			for i := range customers {
				l.order(i, i%3 == 0)
			}
			<-done
			if l.refused[http.StatusServiceUnavailable] == 0 {
				t.Fatalf("no delivery was refused while Redis was away: %v", l.refused)
			}
			for i := range customers {
				l.ticket(i)
				l.order(i, false)
			}
			fz.SetFaults(0, 0, 0)
			l.audit(ctx, s.db, customers, 60*time.Second)
		})
	}
}

// TestFaultDatabaseOutage: PostgreSQL is unreachable for a few seconds while events are being
// processed. Tasks fail and are retried; nothing acknowledged is lost or counted twice.
func TestFaultDatabaseOutage(t *testing.T) {
	b := preferredBackend(t)
	if b.dbURL == "" {
		t.Skip("needs PostgreSQL (CLVD_TEST_DATABASE_URL): an embedded SQLite file cannot become unreachable")
	}
	ctx := context.Background()
	u, _ := url.Parse(b.dbURL)
	proxy := newFaultProxy(t, u.Host)
	b.dbURL = withHost(t, b.dbURL, proxy.Addr())

	const customers = 10
	s, l := startFaultService(t, b, zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken), customers)
	for i := range customers {
		l.order(i, false)
	}
	proxy.Cut()
	go func() {
		time.Sleep(3 * time.Second)
		proxy.Restore()
	}()
	// The intake does not need the database for a known tenant (it is cached): these are
	// acknowledged and queued while the workers fail to store them.
	for i := range customers {
		l.order(i, i%2 == 0)
		l.ticket(i)
	}
	l.audit(ctx, s.db, customers, 60*time.Second)
}

// TestFaultHelpdeskOutage: Zendesk is down while events keep coming: it answers every call 429 (a
// rate limit that does not lift), 500, or nothing at all until clvd's call times out. When it is back
// the tags catch up by themselves, and the audit finds them right. The outage lasts seconds here;
// `clvd loadtest --zendesk-outage` runs it for minutes (docs/PERFORMANCE.md).
func TestFaultHelpdeskOutage(t *testing.T) {
	b := preferredBackend(t)
	for _, outage := range []zendesktest.Outage{zendesktest.Down429, zendesktest.Down500, zendesktest.DownHang} {
		t.Run(outage.String(), func(t *testing.T) {
			ctx := context.Background()
			fz := zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken)
			const customers = 8
			s, l := startFaultService(t, b, fz, customers)
			for i := range customers {
				l.order(i, false)
				l.ticket(i)
			}
			l.audit(ctx, s.db, customers, 30*time.Second)

			fz.SetOutage(outage)
			fz.ResetRequests()
			for round := range 3 { // new orders move customers between tiers: tags to write while Zendesk is down
				for i := range customers {
					l.order(i, round == 0 && i%2 == 0)
				}
				l.ticket(round % customers)
				time.Sleep(2 * time.Second)
			}
			during := fz.Requests()
			fz.SetOutage(zendesktest.Up)
			back := time.Now()
			l.audit(ctx, s.db, customers, 45*time.Second)
			t.Logf("%s outage of about 6 s: Zendesk got %d calls during it (%s); tags right %v after it ended",
				outage, len(during), statusCounts(during), time.Since(back).Round(100*time.Millisecond))
			// Without the breaker such an outage drew 194-203 calls (429, 500) and 40 (hang); with it 5-10.
			if len(during) > 30 {
				t.Errorf("Zendesk got %d calls while it was down: the breaker should hold them back", len(during))
			}
		})
	}
}

func statusCounts(reqs []zendesktest.RecordedRequest) string {
	n := map[int]int{}
	for _, r := range reqs {
		n[r.Status]++
	}
	keys := slices.Sorted(maps.Keys(n))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d: %d", k, n[k])
	}
	return strings.Join(parts, ", ")
}
