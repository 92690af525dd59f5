package loadtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Mix shapes the generated traffic.
type Mix struct {
	// Customers is how many distinct customers events are spread over.
	Customers int
	// BurstShare is the share of new events that belong to a burst: BurstLength events in a row for
	// one customer (a shopper placing several orders and writing in at once).
	BurstShare float64
	// BurstLength is the number of events in one burst (default 10).
	BurstLength int
	// DuplicateShare is the share of requests that re-send an earlier event: the same delivery id and
	// the same body, as a sender retrying would.
	DuplicateShare float64
	// TicketShare is the share of new events that are Zendesk ticket events; the rest are Shopify
	// orders. A ticket event is only generated for a customer who already has an order.
	TicketShare float64
}

const (
	sourceShopify = "shopify"
	sourceZendesk = "zendesk"

	// headerEvent carries the event index from the targeter to the recording transport, which removes
	// it before the request leaves.
	headerEvent = "X-Loadtest-Event"
	headerSeq   = "X-Vegeta-Seq"

	// recentForDuplicates is how far back a duplicate reaches: recent deliveries are what a sender
	// retries, and some of them are still queued, so both duplicate paths get exercised.
	recentForDuplicates = 64
	// orderUpdateShare is the share of order events that update an order sent before (orders/updated,
	// same total, later updated_at): a new delivery that must not count the order twice.
	orderUpdateShare = 0.1
	// newTicketShare is the share of ticket events that open a new ticket when the customer has one.
	newTicketShare = 0.4
)

// customer is one generated shopper, who is also a user of the fake Zendesk.
type customer struct {
	email     string
	first     string
	last      string
	userID    string // Zendesk user id
	shopifyID int64
	orders    []int    // indices into generator.orders
	tickets   []string // Zendesk ticket ids
}

// order is one generated Shopify order.
type order struct {
	id         int64
	cust       int
	created    time.Time
	totalMinor int64
}

// event is one unique delivery; duplicates re-send it.
type event struct {
	source string
	topic  string // Shopify topic, or the Zendesk event type without its prefix
	id     string // Shopify X-Shopify-Event-Id / Zendesk event id
	hookID string // Shopify X-Shopify-Webhook-Id
	body   []byte
	cust   int
	order  int    // index into generator.orders, -1 for ticket events
	ticket string // ticket id of a ticket event

	// Filled from the results.
	sends int
	acked int // 202 answers
	// answeredQueued and answeredDuplicate count the 202 bodies. A re-send may overtake its
	// original, so which send got which answer does not matter, only how many of each.
	answeredQueued, answeredDuplicate int
	firstSent                         time.Time
}

// generator makes signed, unique webhook requests. It is a vegeta.Targeter (Next) and safe for
// concurrent use.
type generator struct {
	mu sync.Mutex

	base           string // service base URL
	tenant         string
	shopifySecret  []byte
	zendeskSecret  []byte
	mix            Mix
	burstStart     float64 // probability that a new event starts a burst
	limit          int     // requests to make; 0 = unlimited
	rng            *rand.Rand
	idBase         int64  // makes numeric ids unique per run
	run            string // makes emails unique per run
	now            func() time.Time
	onNewTicket    func(id string) // registers a ticket with the fake Zendesk before it is sent
	customers      []customer
	orders         []order
	events         []*event
	made           int // requests handed out
	duplicates     int
	burstLeft      int
	burstCust      int
	nextOrderSeq   int64
	nextTicketSeq  int64
	ticketCreated  map[string]time.Time
	shopifyURL     string
	zendeskURL     string
	zendeskUA      string
	shopifyUA      string
	shopDomain     string
	shopifyVersion string
}

func newGenerator(base, tenant, shopifySecret, zendeskSecret string, mix Mix, limit int, seed uint64) *generator {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if mix.BurstLength <= 0 {
		mix.BurstLength = 10
	}
	if mix.Customers <= 0 {
		mix.Customers = 1
	}
	g := &generator{
		base: base, tenant: tenant, shopifySecret: []byte(shopifySecret), zendeskSecret: []byte(zendeskSecret),
		mix: mix, limit: limit, rng: rng, now: time.Now,
		shopifyURL: base + "/webhooks/" + tenant + "/shopify", zendeskURL: base + "/webhooks/" + tenant + "/zendesk",
		shopifyUA: "Shopify-Captain-Hook", zendeskUA: "Zendesk Webhook", shopDomain: "clvd-loadtest.myshopify.com",
		shopifyVersion: "2025-01", ticketCreated: map[string]time.Time{},
	}
	// A non-burst decision gives 1 event, a burst BurstLength: q·L / (q·L + 1 − q) = share.
	if s, l := mix.BurstShare, float64(mix.BurstLength); s > 0 && s < 1 {
		g.burstStart = s / (l*(1-s) + s)
	} else if s >= 1 {
		g.burstStart = 1
	}
	// Numeric ids below 9.2e18, unique per run: a random prefix times 1e10, then a sequence.
	prefix := 1 + rng.Int64N(900_000)
	g.idBase = prefix * 10_000_000_000
	g.run = strconv.FormatInt(prefix, 36)
	for i := range mix.Customers {
		g.customers = append(g.customers, customer{
			email:     fmt.Sprintf("lt-%s-%d@loadtest.example.com", g.run, i),
			first:     "Load",
			last:      fmt.Sprintf("Tester %d", i),
			userID:    strconv.FormatInt(g.idBase+int64(i)+1, 10),
			shopifyID: g.idBase + int64(i) + 1,
		})
	}
	return g
}

// Next implements vegeta.Targeter.
func (g *generator) Next(t *vegeta.Target) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limit > 0 && g.made >= g.limit {
		return vegeta.ErrNoTargets
	}
	g.made++
	var idx int
	dup := false
	if n := len(g.events); n > 0 && g.mix.DuplicateShare > 0 && g.rng.Float64() < g.mix.DuplicateShare {
		idx = n - 1 - g.rng.IntN(min(n, recentForDuplicates))
		dup = true
		g.duplicates++
	} else {
		idx = g.newEvent()
	}
	g.target(t, idx, dup)
	return nil
}

// target fills t with the signed request for event idx. Zendesk deliveries are signed when sent,
// as Zendesk does; a Shopify signature covers only the body, so a re-sent one is byte-identical.
func (g *generator) target(t *vegeta.Target, idx int, dup bool) {
	ev := g.events[idx]
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	mark := strconv.Itoa(idx)
	if dup {
		mark += "d"
	}
	h.Set(headerEvent, mark)
	switch ev.source {
	case sourceShopify:
		h.Set("User-Agent", g.shopifyUA)
		h.Set("X-Shopify-Topic", ev.topic)
		h.Set("X-Shopify-Hmac-Sha256", signShopify(g.shopifySecret, ev.body))
		h.Set("X-Shopify-Shop-Domain", g.shopDomain)
		h.Set("X-Shopify-API-Version", g.shopifyVersion)
		h.Set("X-Shopify-Webhook-Id", ev.hookID)
		h.Set("X-Shopify-Event-Id", ev.id)
		h.Set("X-Shopify-Triggered-At", g.now().UTC().Format(time.RFC3339Nano))
		t.URL = g.shopifyURL
	case sourceZendesk:
		ts := g.now().UTC().Format(time.RFC3339)
		h.Set("User-Agent", g.zendeskUA)
		h.Set("X-Zendesk-Webhook-Signature", signZendesk(g.zendeskSecret, ts, ev.body))
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
		h.Set("X-Zendesk-Webhook-Id", "01LOADTEST"+strconv.FormatInt(g.idBase/10_000_000_000, 36))
		h.Set("X-Zendesk-Webhook-Invocation-Id", strconv.FormatInt(g.idBase+int64(idx), 10))
		t.URL = g.zendeskURL
	}
	t.Method = http.MethodPost
	t.Body = ev.body
	t.Header = h
}

func signShopify(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func signZendesk(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// pickCustomer chooses the next event's customer: the current burst's, or a new burst's, or any.
func (g *generator) pickCustomer() int {
	if g.burstLeft > 0 {
		g.burstLeft--
		return g.burstCust
	}
	c := g.rng.IntN(len(g.customers))
	if g.burstStart > 0 && g.rng.Float64() < g.burstStart {
		g.burstCust, g.burstLeft = c, g.mix.BurstLength-1
	}
	return c
}

// newEvent makes a new unique event and returns its index.
func (g *generator) newEvent() int {
	ci := g.pickCustomer()
	c := &g.customers[ci]
	if len(c.orders) > 0 && g.rng.Float64() < g.mix.TicketShare {
		return g.ticketEvent(ci)
	}
	return g.orderEvent(ci)
}

func (g *generator) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

func (g *generator) orderEvent(ci int) int {
	c := &g.customers[ci]
	now := g.now().UTC().Truncate(time.Second)
	topic := "orders/create"
	var oi int
	if len(c.orders) > 0 && g.rng.Float64() < orderUpdateShare {
		topic = "orders/updated"
		oi = c.orders[g.rng.IntN(len(c.orders))]
	} else {
		g.nextOrderSeq++
		// Orders spread over the last two years, so the models have histories to fit.
		created := now.Add(-time.Duration(g.rng.Int64N(int64(730 * 24 * time.Hour)))).Truncate(time.Second)
		g.orders = append(g.orders, order{id: g.idBase + g.nextOrderSeq, cust: ci, created: created,
			totalMinor: 500 + g.rng.Int64N(30_000)})
		oi = len(g.orders) - 1
		c.orders = append(c.orders, oi)
	}
	o := g.orders[oi]
	updated := o.created
	if topic == "orders/updated" {
		updated = now
	}
	ev := &event{source: sourceShopify, topic: topic, id: g.uuid(), hookID: g.uuid(), cust: ci, order: oi,
		body: shopifyOrderJSON(o, c, updated)}
	g.events = append(g.events, ev)
	return len(g.events) - 1
}

func (g *generator) ticketEvent(ci int) int {
	c := &g.customers[ci]
	now := g.now().UTC()
	ev := &event{source: sourceZendesk, cust: ci, order: -1}
	if len(c.tickets) == 0 || g.rng.Float64() < newTicketShare {
		g.nextTicketSeq++
		ev.ticket = strconv.FormatInt(g.idBase+g.nextTicketSeq, 10)
		c.tickets = append(c.tickets, ev.ticket)
		g.ticketCreated[ev.ticket] = now
		if g.onNewTicket != nil {
			g.onNewTicket(ev.ticket)
		}
		ev.topic = "ticket.created"
		ev.id = g.uuid()
		ev.body = ticketEventJSON(ev.id, ev.topic, ev.ticket, c.userID, "NEW", "NORMAL", now, now, `{}`)
	} else {
		ev.ticket = c.tickets[g.rng.IntN(len(c.tickets))]
		ev.id = g.uuid()
		created := g.ticketCreated[ev.ticket]
		switch g.rng.IntN(3) {
		case 0:
			ev.topic = "ticket.comment_added"
			ev.body = ticketEventJSON(ev.id, ev.topic, ev.ticket, c.userID, "OPEN", "NORMAL", created, now,
				`{"comment":{"id":"`+strconv.FormatInt(g.rng.Int64N(1<<40), 10)+`","body":"Any news on my order?","is_public":true}}`)
		case 1:
			ev.topic = "ticket.status_changed"
			ev.body = ticketEventJSON(ev.id, ev.topic, ev.ticket, c.userID, "PENDING", "NORMAL", created, now,
				`{"current":"PENDING","previous":"OPEN"}`)
		default:
			ev.topic = "ticket.priority_changed"
			ev.body = ticketEventJSON(ev.id, ev.topic, ev.ticket, c.userID, "OPEN", "HIGH", created, now,
				`{"current":"HIGH","previous":"NORMAL"}`)
		}
	}
	g.events = append(g.events, ev)
	return len(g.events) - 1
}

// shopifyOrderJSON renders an order webhook body in Shopify's shape (the fields clvd reads, and a
// few it does not, as a real delivery has them).
func shopifyOrderJSON(o order, c *customer, updated time.Time) []byte {
	total := fmt.Sprintf("%d.%02d", o.totalMinor/100, o.totalMinor%100)
	return fmt.Appendf(nil, `{"id":%d,"admin_graphql_api_id":"gid://shopify/Order/%d","name":"#%d","order_number":%d,`+
		`"email":%q,"contact_email":%q,"created_at":%q,"updated_at":%q,"processed_at":%q,"currency":"USD","presentment_currency":"USD",`+
		`"total_price":%q,"subtotal_price":%q,"total_tax":"0.00","financial_status":"paid","fulfillment_status":null,"cancelled_at":null,`+
		`"customer":{"id":%d,"email":%q,"first_name":%q,"last_name":%q,"verified_email":true},`+
		`"line_items":[{"id":%d,"title":"Load test item","quantity":1,"price":%q,"sku":"LT-1"}],"refunds":[]}`,
		o.id, o.id, o.id%100000, o.id%100000, c.email, c.email, o.created.Format(time.RFC3339), updated.Format(time.RFC3339),
		o.created.Format(time.RFC3339), total, total, c.shopifyID, c.email, c.first, c.last, o.id+1, total)
}

// ticketEventJSON renders a Zendesk event-subscription body (zen:event-type:ticket.*).
func ticketEventJSON(eventID, typ, ticketID, requesterID, status, priority string, created, at time.Time, detailEvent string) []byte {
	return fmt.Appendf(nil, `{"type":"zen:event-type:%s","account_id":24188345,"id":%q,"time":%q,"subject":"zen:ticket:%s",`+
		`"zendesk_event_version":"2022-11-06","detail":{"actor_id":%q,"assignee_id":null,"brand_id":"360001","created_at":%q,`+
		`"description":"My order has not arrived yet","external_id":null,"form_id":"360002","group_id":null,"id":%q,"is_public":true,`+
		`"organization_id":null,"priority":%q,"requester_id":%q,"status":%q,"subject":"Where is my order?","submitter_id":%q,`+
		`"tags":["agent_own_tag"],"type":"QUESTION","updated_at":%q,"via":{"channel":"web_form"}},"event":%s}`,
		typ, eventID, at.Format(time.RFC3339Nano), ticketID, requesterID, created.Format(time.RFC3339), ticketID, priority,
		requesterID, status, requesterID, at.Format(time.RFC3339), detailEvent)
}
