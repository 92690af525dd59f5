package loadtest

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/clvd/clvd/integrations/shopify"
	"github.com/clvd/clvd/integrations/zendesk"
)

// TestGenerator: every request is signed the way the service checks it and parses as a real delivery;
// events are unique except the deliberate duplicates, which repeat an earlier delivery exactly; the mix
// matches what was asked; ticket events only concern customers with orders; the count is honoured.
func TestGenerator(t *testing.T) {
	const n = 4000
	mix := Mix{Customers: 200, BurstShare: 0.3, BurstLength: 10, DuplicateShare: 0.05, TicketShare: 0.3}
	var tickets []string
	g := newGenerator("http://clvd.test", "t_abc", "shp-secret", "zd-secret", mix, n, 7)
	g.onNewTicket = func(id string) { tickets = append(tickets, id) }

	seen := map[string][]byte{} // delivery id → body
	var dups, zendeskEvents, sameAsPrevious int
	prevCust := -1
	for i := range n + 1 {
		var tgt vegeta.Target
		err := g.Next(&tgt)
		if i == n {
			if err != vegeta.ErrNoTargets {
				t.Fatalf("request %d: %v, want ErrNoTargets", i, err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mark := tgt.Header.Get(headerEvent)
		idx, _ := strconv.Atoi(strings.TrimSuffix(mark, "d"))
		dup := strings.HasSuffix(mark, "d")
		ev := g.events[idx]
		var id string
		switch {
		case strings.HasSuffix(tgt.URL, "/webhooks/t_abc/shopify"):
			if err := shopify.VerifySignature([]byte("shp-secret"), tgt.Body, tgt.Header.Get(shopify.HeaderHmac)); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			id = tgt.Header.Get(shopify.HeaderEventID)
			oe, err := shopify.ParseEvent(tgt.Header.Get(shopify.HeaderTopic), tgt.Body, id)
			if err != nil || oe.Order == nil {
				t.Fatalf("request %d: %v %+v\n%s", i, err, oe, tgt.Body)
			}
			o := g.orders[ev.order]
			if oe.Order.TotalMinor != o.totalMinor || oe.Order.Email != g.customers[ev.cust].email || oe.Order.Status != "paid" {
				t.Fatalf("request %d: parsed %+v, generated %+v", i, oe.Order, o)
			}
		case strings.HasSuffix(tgt.URL, "/webhooks/t_abc/zendesk"):
			if !dup {
				zendeskEvents++
			}
			if err := zendesk.VerifySignature([]byte("zd-secret"), tgt.Header.Get(zendesk.HeaderTimestamp), tgt.Body,
				tgt.Header.Get(zendesk.HeaderSignature), time.Now(), time.Minute); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			te, ok, err := zendesk.ParseEvent(tgt.Body, time.Now())
			if err != nil || !ok {
				t.Fatalf("request %d: %v %v\n%s", i, ok, err, tgt.Body)
			}
			id = te.EventID
			c := g.customers[ev.cust]
			if te.TicketID != ev.ticket || te.RequesterID != c.userID || te.Status == "solved" || te.Status == "closed" {
				t.Fatalf("request %d: parsed %+v", i, te)
			}
			if len(c.orders) == 0 {
				t.Fatalf("request %d: ticket event for customer %d who has no order", i, ev.cust)
			}
		default:
			t.Fatalf("request %d: URL %s", i, tgt.URL)
		}
		if body, ok := seen[id]; ok {
			if !dup {
				t.Fatalf("request %d: delivery id %s reused by a new event", i, id)
			}
			if string(body) != string(tgt.Body) {
				t.Fatalf("request %d: duplicate of %s with a different body", i, id)
			}
			dups++
		} else if dup {
			t.Fatalf("request %d: marked duplicate but new", i)
		}
		seen[id] = tgt.Body
		if !dup {
			if ev.cust == prevCust {
				sameAsPrevious++
			}
			prevCust = ev.cust
		}
	}
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s: %.3f, want %.3f ± %.3f", what, got, want, tol)
		}
	}
	near("duplicate share", float64(dups)/n, mix.DuplicateShare, 0.015)
	near("ticket share", float64(zendeskEvents)/float64(n-dups), mix.TicketShare, 0.05)
	// Consecutive events of one customer come from bursts (9 of every 10 burst events follow their
	// customer's previous one); random picks of 200 customers rarely repeat.
	near("events following their customer's previous one", float64(sameAsPrevious)/float64(n-dups), mix.BurstShare*0.9, 0.05)
	if len(tickets) == 0 || len(g.orders) == 0 {
		t.Fatalf("%d tickets, %d orders", len(tickets), len(g.orders))
	}
	for _, id := range tickets {
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			t.Fatalf("ticket id %q is not numeric", id)
		}
	}

	// Another run does not reuse ids or emails.
	h := newGenerator("http://clvd.test", "t_abc", "s", "z", mix, 1, 8)
	if h.idBase == g.idBase || h.customers[0].email == g.customers[0].email {
		t.Fatalf("two runs share ids: %d %s", h.idBase, h.customers[0].email)
	}
}
