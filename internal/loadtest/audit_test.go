package loadtest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// TestAudit: the audit passes when the store and the fake Zendesk agree with what was sent, and
// names what differs when an order is counted twice, a ticket carries other tags than the store
// says, an agent's tag was removed, or an acknowledged ticket is missing.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	box, err := secretbox.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "", t.TempDir(), box)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tn := &store.Tenant{Name: "audit"}
	if err := db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	fz, err := StartFakeZendesk(FakeZendeskOptions{Email: "a@b.test", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer fz.Close()

	// What the run sent: one customer with an order and a ticket, two customers never used.
	g := newGenerator("http://clvd.test", tn.ID, "s", "z", Mix{Customers: 3}, 0, 1)
	g.onNewTicket = func(id string) { fz.Fake.AddTicket(id, "new", agentTag) }
	c := &g.customers[0]
	fz.Fake.AddUser(c.userID, c.email, "Load Tester")
	g.orderEvent(0)
	g.ticketEvent(0)
	for _, e := range g.events {
		e.sends, e.acked, e.answeredQueued = 1, 1, 1
	}
	o, ticket := g.orders[0], g.events[1].ticket

	// What the service made of it.
	cid, _, err := db.ResolveCustomer(ctx, tn.ID, store.Identity{Email: c.email, ZendeskUserID: c.userID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyOrder(ctx, tn.ID, cid, integrations.Order{Source: integrations.SourceShopify, OrderID: "1",
		CreatedAt: o.created, UpdatedAt: o.created, Currency: "USD", TotalMinor: o.totalMinor, Status: integrations.OrderPaid}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyTicketEvent(ctx, tn.ID, cid, integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: "e1",
		Type: integrations.TicketCreated, TicketID: ticket, Status: "new", OccurredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tags := []string{"clv_churn_low", "clv_tier_gold"}
	score := func(orders int, minor int64) {
		t.Helper()
		cust, err := db.GetCustomer(ctx, tn.ID, cid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SaveScore(ctx, tn.ID, cid, cust.DataVersion, store.Score{Model: "heuristic", Currency: "USD",
			HistoricMinor: minor, Orders: orders, ChurnBand: "low", Tier: "gold", Segment: "new", Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	score(1, o.totalMinor)
	for _, k := range []struct{ kind, id string }{{store.TagTargetUser, c.userID}, {store.TagTargetTicket, ticket}} {
		if err := db.MarkTagsPushed(ctx, tn.ID, cid, k.kind, k.id, tags); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkUserFieldsPushed(ctx, tn.ID, cid, c.userID, nil); err != nil {
		t.Fatal(err)
	}
	zendeskPut(t, fz, "/api/v2/users/"+c.userID+"/tags.json", `{"tags":["clv_churn_low","clv_tier_gold"]}`)
	zendeskPut(t, fz, "/api/v2/tickets/update_many.json?ids="+ticket, `{"ticket":{"additional_tags":["clv_churn_low","clv_tier_gold"]}}`)

	settings, err := worker.ParseSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	audit := func(wantUnique int) *Audit {
		t.Helper()
		a := newAuditor(&Options{Tenant: tn.ID, Store: db, Zendesk: fz}, g, settings, store.TenantDataCounts{Customers: 0})
		var ev EventCounts
		a.summarise(&ev)
		if ev.Unique != wantUnique || ev.UniqueAcknowledged != wantUnique || ev.Orders != 1 || ev.TicketEvents != wantUnique-1 {
			t.Fatalf("events %+v", ev)
		}
		res, err := a.run(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := audit(2); !res.Pass || !res.Drained || res.TicketsChecked != 1 || res.UsersChecked != 1 || res.CustomersChecked != 1 {
		t.Fatalf("consistent run: %+v", res)
	}
	if _, ok := fz.FirstTagCall(ticket); !ok {
		t.Fatal("the tag call on the ticket was not recorded")
	}

	// The ticket loses a managed tag and the agent's tag; the score counts the order twice.
	zendeskPut(t, fz, "/api/v2/tickets/update_many.json?ids="+ticket, `{"ticket":{"remove_tags":["clv_tier_gold","agent_own_tag"]}}`)
	score(2, 2*o.totalMinor)
	res := audit(2)
	if res.Pass || res.MismatchCount != 4 {
		t.Fatalf("want 4 mismatches, got %+v", res)
	}
	for i, want := range []string{"score counts 2 orders, want 1", "historic value", "ticket " + ticket + " has [clv_churn_low]", "lost the agent's own tag"} {
		if !strings.Contains(res.Mismatches[i], want) {
			t.Errorf("mismatch %d: %q, want it to say %q", i, res.Mismatches[i], want)
		}
	}

	// A second acknowledged ticket that the store does not have.
	g.ticketEvent(0)
	for g.events[len(g.events)-1].ticket == ticket {
		g.ticketEvent(0)
	}
	last := g.events[len(g.events)-1]
	last.sends, last.acked = 1, 1
	for _, e := range g.events[2 : len(g.events)-1] {
		e.sends = 0 // updates of the first ticket: never sent
	}
	if res := audit(3); !strings.Contains(strings.Join(res.Mismatches, "\n"), "acknowledged ticket "+last.ticket+" is not stored") ||
		!strings.Contains(res.Mismatches[0], "stored tickets: 1, want 2") {
		t.Fatalf("missing ticket not reported: %q", res.Mismatches)
	}
}

func zendeskPut(t *testing.T, fz *FakeZendesk, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fz.URL+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("a@b.test/token", "tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %d", path, resp.StatusCode)
	}
}
