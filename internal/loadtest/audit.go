package loadtest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// maxMismatches is how many mismatches a report lists (all are counted).
const maxMismatches = 10

// expectation is what the store must hold of one generated customer after the run.
type expectation struct {
	sent, acked               bool // any event sent / acknowledged
	ticketAcked               bool // any ticket event acknowledged: the customer must be linked to its user
	ordersSent, ordersAcked   int
	minorSent, minorAcked     int64
	ticketsSent, ticketsAcked map[string]bool
}

// auditor compares the store and the fake Zendesk with what the run sent.
type auditor struct {
	o       *Options
	g       *generator
	managed map[string]bool // every tag clvd may write for the tenant
	before  store.TenantDataCounts
	want    []expectation // by customer index
	stored  []StoredCount // expected ranges; got is filled per audit
}

func newAuditor(o *Options, g *generator, settings worker.Settings, before store.TenantDataCounts) *auditor {
	a := &auditor{o: o, g: g, before: before, managed: map[string]bool{}}
	for _, t := range settings.AllManagedTags() {
		a.managed[t] = true
	}
	return a
}

// summarise works out, from the events and their answers, what the store must now hold, and fills
// the event counts of the report.
func (a *auditor) summarise(ev *EventCounts) {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	a.want = make([]expectation, len(g.customers))
	orderAcked := make([]bool, len(g.orders))
	orderSent := make([]bool, len(g.orders))
	var ticketEvSent, ticketEvAcked int
	for _, e := range g.events {
		if e.sends == 0 {
			continue // handed out, but the attack stopped before it left
		}
		ev.Unique++
		if e.acked > 0 {
			ev.UniqueAcknowledged++
		}
		// Of an event's sends, one is the delivery and the rest are repeats, whichever arrived first:
		// a repeat is answered "duplicate" (still queued) or "queued" again (re-ingested).
		ev.DuplicatesAnswered += e.answeredDuplicate
		ev.DuplicatesReingested += max(0, e.answeredQueued-1)
		w := &a.want[e.cust]
		w.sent = true
		w.acked = w.acked || e.acked > 0
		switch e.source {
		case sourceShopify:
			ev.Orders++
			orderSent[e.order] = true
			orderAcked[e.order] = orderAcked[e.order] || e.acked > 0
		case sourceZendesk:
			ev.TicketEvents++
			ticketEvSent++
			if w.ticketsSent == nil {
				w.ticketsSent, w.ticketsAcked = map[string]bool{}, map[string]bool{}
			}
			w.ticketsSent[e.ticket] = true
			if e.acked > 0 {
				ticketEvAcked++
				w.ticketAcked = true
				w.ticketsAcked[e.ticket] = true
			}
		}
	}
	ev.NotAcknowledged = ev.Unique - ev.UniqueAcknowledged
	var ordersSent, ordersAcked, ticketsSent, ticketsAcked, custSent, custAcked int
	for i, o := range g.orders {
		w := &a.want[o.cust]
		if orderSent[i] {
			ordersSent++
			w.ordersSent++
			w.minorSent += o.totalMinor
		}
		if orderAcked[i] {
			ordersAcked++
			w.ordersAcked++
			w.minorAcked += o.totalMinor
		}
	}
	for _, w := range a.want {
		ticketsSent += len(w.ticketsSent)
		ticketsAcked += len(w.ticketsAcked)
		if w.sent {
			custSent++
		}
		if w.acked {
			custAcked++
		}
	}
	a.stored = []StoredCount{
		{What: "orders", Min: ordersAcked, Max: ordersSent},
		{What: "tickets", Min: ticketsAcked, Max: ticketsSent},
		{What: "ticket events", Min: ticketEvAcked, Max: ticketEvSent},
		{What: "customers", Min: custAcked, Max: custSent},
		{What: "refunds", Min: 0, Max: 0},
	}
}

// run audits once. When final is false and the store has plainly not caught up yet (counts short,
// scores stale, tags unpushed), it returns nil without the per-customer checks.
func (a *auditor) run(ctx context.Context, final bool) (*Audit, error) {
	now, err := a.o.Store.CountTenantData(ctx, a.o.Tenant)
	if err != nil {
		return nil, err
	}
	res := &Audit{Stale: now.Stale, Unsynced: now.Unsynced}
	d := []int64{now.Orders - a.before.Orders, now.Tickets - a.before.Tickets, now.TicketEvents - a.before.TicketEvents,
		now.Customers - a.before.Customers, now.Refunds - a.before.Refunds}
	countsOK := true
	for i, c := range a.stored {
		c.Got = int(d[i])
		c.OK = c.Got >= c.Min && c.Got <= c.Max
		countsOK = countsOK && c.OK
		res.Stored = append(res.Stored, c)
	}
	res.Drained = countsOK && now.Stale == 0 && now.Unsynced == 0
	if !res.Drained && !final {
		return nil, nil
	}
	for _, c := range res.Stored {
		if !c.OK {
			res.mismatch("stored %s: %d, want %s", c.What, c.Got, c.want())
		}
	}
	if now.Stale > 0 {
		res.mismatch("%d customers of the tenant have a score older than their data", now.Stale)
	}
	if now.Unsynced > 0 {
		res.mismatch("%d customers of the tenant have tags or user fields not yet written to the helpdesk (store.TagPlan has targets)", now.Unsynced)
	}
	for i := range a.want {
		if err := a.customer(ctx, i, res); err != nil {
			return nil, err
		}
	}
	res.Pass = res.MismatchCount == 0
	return res, nil
}

func (res *Audit) mismatch(format string, args ...any) {
	res.MismatchCount++
	if len(res.Mismatches) < maxMismatches {
		res.Mismatches = append(res.Mismatches, fmt.Sprintf(format, args...))
	}
}

// customer checks one generated customer: stored once, with exactly the orders and tickets sent,
// scored from its latest data, its tag plan empty, and the fake Zendesk's user and tickets carrying
// the score's tags.
func (a *auditor) customer(ctx context.Context, i int, res *Audit) error {
	w := a.want[i]
	if !w.sent {
		return nil
	}
	c := &a.g.customers[i] // the attack is over: the generator no longer changes
	who := fmt.Sprintf("customer %d (%s)", i, c.email)
	cust, err := a.o.Store.CustomerByEmail(ctx, a.o.Tenant, c.email)
	if errors.Is(err, store.ErrNotFound) {
		if w.acked {
			res.mismatch("%s: not stored", who)
		}
		return nil
	}
	if err != nil {
		return err
	}
	res.CustomersChecked++
	who = fmt.Sprintf("customer %d (%s, id %d)", i, c.email, cust.ID)
	if cust.Score == nil {
		res.mismatch("%s: never scored", who)
		return nil
	}
	if cust.ScoredVersion != cust.DataVersion {
		res.mismatch("%s: scored version %d, data version %d", who, cust.ScoredVersion, cust.DataVersion)
	}
	if n := cust.Score.Orders; n < w.ordersAcked || n > w.ordersSent {
		res.mismatch("%s: score counts %d orders, want %s", who, n, rangeText(w.ordersAcked, w.ordersSent))
	}
	if m := cust.Score.HistoricMinor; m < w.minorAcked || m > w.minorSent {
		res.mismatch("%s: historic value %d (minor units), want %s", who, m, rangeText64(w.minorAcked, w.minorSent))
	}
	if w.ticketAcked && cust.ZendeskUserID != c.userID {
		res.mismatch("%s: linked to Zendesk user %q, want %s", who, cust.ZendeskUserID, c.userID)
	}
	tickets, err := a.o.Store.CustomerTickets(ctx, a.o.Tenant, cust.ID)
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, t := range tickets {
		stored[t.TicketID] = true
		if t.Source != integrations.SourceZendesk || !w.ticketsSent[t.TicketID] {
			res.mismatch("%s: has ticket %s/%s that was never sent for it", who, t.Source, t.TicketID)
		}
	}
	for id := range w.ticketsAcked {
		if !stored[id] {
			res.mismatch("%s: acknowledged ticket %s is not stored with it", who, id)
		}
	}
	plan, err := a.o.Store.TagPlan(ctx, a.o.Tenant, cust.ID)
	if err != nil {
		return err
	}
	for _, t := range plan.Targets {
		res.mismatch("%s: %s %s still to be written (tags differ %v, fields differ %v)", who, t.Kind, t.ID, t.TagsDiffer, t.FieldsDiffer)
	}
	fz := a.o.Zendesk
	if fz == nil {
		return nil
	}
	want := cust.Score.Tags
	if cust.ZendeskUserID != "" {
		res.UsersChecked++
		if got := a.managedOf(fz.Fake.UserTags(cust.ZendeskUserID)); !slices.Equal(got, want) {
			res.mismatch("%s: Zendesk user %s has %v, the store says %v", who, cust.ZendeskUserID, got, want)
		}
	}
	for _, t := range tickets {
		if integrations.TicketResolved(t.Status) {
			continue // solved and closed tickets keep the tags they had
		}
		res.TicketsChecked++
		all := fz.Fake.TicketTags(t.TicketID)
		if got := a.managedOf(all); !slices.Equal(got, want) {
			res.mismatch("%s: Zendesk ticket %s has %v, the store says %v", who, t.TicketID, got, want)
		}
		if !slices.Contains(all, agentTag) {
			res.mismatch("%s: Zendesk ticket %s lost the agent's own tag %q: %v", who, t.TicketID, agentTag, all)
		}
	}
	return nil
}

// managedOf keeps the tags clvd manages, sorted (the fake returns them sorted); never nil.
func (a *auditor) managedOf(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if a.managed[t] {
			out = append(out, t)
		}
	}
	return out
}

func rangeText(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

func rangeText64(lo, hi int64) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}
