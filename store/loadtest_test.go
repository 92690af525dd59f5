package store

import (
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func TestCountTenantData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		other := mustTenant(t, db)
		a := mustResolve(t, db, tid, Identity{Email: "a@example.com", ZendeskUserID: "901"})
		b := mustResolve(t, db, tid, Identity{Email: "b@example.com"})
		mustResolve(t, db, other, Identity{Email: "a@example.com"})
		for i, c := range []int64{a, a, b} {
			if _, err := db.ApplyOrder(ctx, tid, c, order(string(rune('1'+i)), 0, paid, 100)); err != nil {
				t.Fatal(err)
			}
		}
		ev := ticketEvent("e1", "100", time.Minute)
		ev.Status = "open"
		if _, err := db.ApplyTicketEvent(ctx, tid, a, ev); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ApplyRefund(ctx, tid, integrations.Refund{Source: integrations.SourceShopify, RefundID: "r1", OrderID: "1",
			AmountMinor: 10, Currency: "USD", CreatedAt: at(time.Hour)}); err != nil {
			t.Fatal(err)
		}

		got, err := db.CountTenantData(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		want := TenantDataCounts{Customers: 2, Orders: 3, Refunds: 1, Tickets: 1, TicketEvents: 1, Stale: 2}
		if got != want {
			t.Fatalf("before scoring: %+v, want %+v", got, want)
		}

		// Scored: a has a user and an open ticket that do not carry its tags yet; b has neither.
		for _, c := range []int64{a, b} {
			cust := mustCustomer(t, db, tid, c)
			if _, err := db.SaveScore(ctx, tid, c, cust.DataVersion, sampleScore("clv_tier_gold")); err != nil {
				t.Fatal(err)
			}
		}
		want.Scored, want.Stale, want.Unsynced = 2, 0, 1
		if got, err = db.CountTenantData(ctx, tid); err != nil || got != want {
			t.Fatalf("after scoring: %+v, %v; want %+v", got, err, want)
		}
		for _, target := range []string{TagTargetUser, TagTargetTicket} {
			id := "901"
			if target == TagTargetTicket {
				id = "100"
			}
			if err := db.MarkTagsPushed(ctx, tid, a, target, id, []string{"clv_tier_gold"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.MarkUserFieldsPushed(ctx, tid, a, "901", nil); err != nil {
			t.Fatal(err)
		}
		want.Unsynced = 0
		if got, err = db.CountTenantData(ctx, tid); err != nil || got != want {
			t.Fatalf("after pushing: %+v, %v; want %+v", got, err, want)
		}

		if got, err := db.CountTenantData(ctx, "t_unknown"); err != nil || got != (TenantDataCounts{}) {
			t.Fatalf("unknown tenant: %+v, %v", got, err)
		}
	})
}
