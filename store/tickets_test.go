package store

import (
	"errors"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func ticketEvent(eventID, ticketID string, occurred time.Duration) integrations.TicketEvent {
	return integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: eventID, Type: integrations.TicketUpdated,
		TicketID: ticketID, OccurredAt: at(occurred)}
}

func TestApplyTicketEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		a := mustResolve(t, db, tid, Identity{Email: "a@example.com"})
		b := mustResolve(t, db, tid, Identity{Email: "b@example.com"})
		m := time.Minute

		with := func(ev integrations.TicketEvent, f func(*integrations.TicketEvent)) integrations.TicketEvent {
			f(&ev)
			return ev
		}
		type state struct {
			customer                                           int64
			status, priority, satisfaction, subject, requester string
			created, updated                                   time.Duration // -1: zero
		}
		steps := []struct {
			name     string
			customer int64
			ev       integrations.TicketEvent
			changed  bool
			want     state
			va, vb   int64 // DataVersion of a and b afterwards
		}{
			{"created", a, with(ticketEvent("e1", "100", 10*m), func(e *integrations.TicketEvent) {
				e.Type, e.Status, e.Subject, e.RequesterID, e.TicketCreatedAt = integrations.TicketCreated, "new", "Help", "zd-1", at(0)
			}), true, state{a, "new", "", "", "Help", "zd-1", 0, 10 * m}, 1, 0},
			{"same event id again: nothing", a, with(ticketEvent("e1", "100", 50*m), func(e *integrations.TicketEvent) { e.Status = "solved" }),
				false, state{a, "new", "", "", "Help", "zd-1", 0, 10 * m}, 1, 0},
			{"older event fills only empty fields", a, with(ticketEvent("e2", "100", 5*m), func(e *integrations.TicketEvent) {
				e.Status, e.Priority, e.Subject = "open", "high", "Other"
			}), true, state{a, "new", "high", "", "Help", "zd-1", 0, 10 * m}, 2, 0},
			{"older event does not move the ticket", b, with(ticketEvent("e3", "100", 6*m), func(e *integrations.TicketEvent) {
				e.Priority, e.Satisfaction = "low", "good"
			}), true, state{a, "new", "high", "good", "Help", "zd-1", 0, 10 * m}, 3, 0},
			{"newer event overwrites non-empty fields and moves", b, with(ticketEvent("e4", "100", 20*m), func(e *integrations.TicketEvent) {
				e.Status = "pending"
			}), true, state{b, "pending", "high", "good", "Help", "zd-1", 0, 20 * m}, 4, 1},
			{"equal time counts as newer", 0, with(ticketEvent("e5", "100", 20*m), func(e *integrations.TicketEvent) {
				e.Status, e.TicketCreatedAt = "solved", at(-m)
			}), true, state{b, "solved", "high", "good", "Help", "zd-1", -m, 20 * m}, 4, 2},
			{"newer event without fields still advances updated_at", 0, ticketEvent("e6", "100", 30*m),
				true, state{b, "solved", "high", "good", "Help", "zd-1", -m, 30 * m}, 4, 3},
			{"older event with nothing new: unchanged", b, with(ticketEvent("e7", "100", 1*m), func(e *integrations.TicketEvent) {
				e.Status, e.Subject = "open", "Old"
			}), false, state{b, "solved", "high", "good", "Help", "zd-1", -m, 30 * m}, 4, 3},
			{"event without id: merged", 0, with(ticketEvent("", "100", 40*m), func(e *integrations.TicketEvent) { e.Priority = "urgent" }),
				true, state{b, "solved", "urgent", "good", "Help", "zd-1", -m, 40 * m}, 4, 4},
			{"event without id again: idempotent", 0, with(ticketEvent("", "100", 40*m), func(e *integrations.TicketEvent) { e.Priority = "urgent" }),
				false, state{b, "solved", "urgent", "good", "Help", "zd-1", -m, 40 * m}, 4, 4},
		}
		for _, st := range steps {
			changed, err := db.ApplyTicketEvent(ctx, tid, st.customer, st.ev)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if changed != st.changed {
				t.Errorf("%s: changed = %v", st.name, changed)
			}
			tk, err := db.GetTicket(ctx, tid, integrations.SourceZendesk, "100")
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			var created time.Time
			if st.want.created != -1 {
				created = utcMicro(at(st.want.created))
			}
			got := state{tk.CustomerID, tk.Status, tk.Priority, tk.Satisfaction, tk.Subject, tk.RequesterID, st.want.created, st.want.updated}
			if got != st.want || !tk.CreatedAt.Equal(created) || !tk.UpdatedAt.Equal(utcMicro(at(st.want.updated))) {
				t.Errorf("%s: ticket = %+v, want %+v", st.name, tk, st.want)
			}
			if va, vb := mustCustomer(t, db, tid, a).DataVersion, mustCustomer(t, db, tid, b).DataVersion; va != st.va || vb != st.vb {
				t.Errorf("%s: versions a=%d b=%d, want %d %d", st.name, va, vb, st.va, st.vb)
			}
		}
		// e7 was recorded although it changed nothing: redelivery is still a no-op.
		if changed, err := db.ApplyTicketEvent(ctx, tid, b, ticketEvent("e7", "100", 100*m)); err != nil || changed {
			t.Errorf("e7 redelivered: %v %v", changed, err)
		}

		// A ticket first seen without a customer gets one from a later (even older) event.
		if changed, err := db.ApplyTicketEvent(ctx, tid, 0, ticketEvent("f1", "200", 10*m)); err != nil || !changed {
			t.Fatalf("customerless ticket: %v %v", changed, err)
		}
		if tk, _ := db.GetTicket(ctx, tid, integrations.SourceZendesk, "200"); tk == nil || tk.CustomerID != 0 || !tk.CreatedAt.IsZero() {
			t.Fatalf("customerless ticket = %+v", tk)
		}
		if changed, err := db.ApplyTicketEvent(ctx, tid, a, ticketEvent("f2", "200", 1*m)); err != nil || !changed {
			t.Fatalf("attach: %v %v", changed, err)
		}
		// A third ticket with a known creation time sorts before the unknown one.
		if _, err := db.ApplyTicketEvent(ctx, tid, a, with(ticketEvent("g1", "300", m), func(e *integrations.TicketEvent) { e.TicketCreatedAt = at(0) })); err != nil {
			t.Fatal(err)
		}
		ts, err := db.CustomerTickets(ctx, tid, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].TicketID != "300" || ts[1].TicketID != "200" || ts[1].TenantID != tid || ts[0].Source != integrations.SourceZendesk {
			t.Errorf("CustomerTickets = %+v", ts)
		}
		if ts[0].TagsPushed != nil {
			t.Errorf("fresh ticket TagsPushed = %v, want nil", ts[0].TagsPushed)
		}

		if _, err := db.GetTicket(ctx, tid, integrations.SourceZendesk, "404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTicket(unknown): %v", err)
		}
		if _, err := db.ApplyTicketEvent(ctx, tid, 0, integrations.TicketEvent{Source: "zendesk", TicketID: "1"}); !errors.Is(err, integrations.ErrMalformed) {
			t.Errorf("event without time: %v", err)
		}
		if _, err := db.ApplyTicketEvent(ctx, tid, 999999, ticketEvent("h1", "400", m)); !errors.Is(err, ErrNotFound) {
			t.Errorf("event for unknown customer: %v", err)
		}
		// The failed event was rolled back with its change: it can be delivered again.
		if changed, err := db.ApplyTicketEvent(ctx, tid, a, ticketEvent("h1", "400", m)); err != nil || !changed {
			t.Errorf("retry after failure: %v %v", changed, err)
		}

		// Pruning forgets old event ids only.
		n, err := db.PruneTicketEvents(ctx, time.Now().Add(-time.Hour))
		if err != nil || n != 0 {
			t.Errorf("prune nothing: %d %v", n, err)
		}
		n, err = db.PruneTicketEvents(ctx, time.Now().Add(time.Minute))
		if err != nil || n != 11 { // e1..e7, f1, f2, g1, h1
			t.Errorf("prune all: %d %v", n, err)
		}
	})
}
