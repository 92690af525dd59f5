package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func order(id string, updated time.Duration, status integrations.OrderStatus, total int64) integrations.Order {
	return integrations.Order{Source: integrations.SourceShopify, OrderID: id, CreatedAt: at(0), UpdatedAt: at(updated),
		Currency: "USD", TotalMinor: total, Status: status}
}

func TestApplyOrderVersioning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cust := mustResolve(t, db, tid, Identity{Email: "a@example.com"})

		steps := []struct {
			name        string
			o           integrations.Order
			changed     bool
			wantStatus  integrations.OrderStatus
			wantTotal   int64
			wantVersion int64 // customer's DataVersion after the step
		}{
			{"new order", order("1", 0, open, 1000), true, open, 1000, 1},
			{"identical redelivery", order("1", 0, open, 1000), false, open, 1000, 1},
			{"sub-microsecond difference is the same version", order("1", 100*time.Nanosecond, open, 1000), false, open, 1000, 1},
			{"newer: paid", order("1", time.Minute, paid, 1000), true, paid, 1000, 2},
			{"older: ignored", order("1", 0, open, 999), false, paid, 1000, 2},
			{"same version, lower rank (open after paid): ignored", order("1", time.Minute, open, 1000), false, paid, 1000, 2},
			{"same version, higher rank: cancelled applies", order("1", time.Minute, cancelled, 1000), true, cancelled, 1000, 3},
			{"same version, late paid never undoes cancelled", order("1", time.Minute, paid, 1000), false, cancelled, 1000, 3},
			{"same version, equal rank (refunded vs cancelled) applies", order("1", time.Minute, refunded, 1000), true, refunded, 1000, 4},
			{"newer version may go back to paid", order("1", 2*time.Minute, paid, 1200), true, paid, 1200, 5},
			{"same version, same status, other total applies", order("1", 2*time.Minute, paid, 1300), true, paid, 1300, 6},
		}
		for _, st := range steps {
			changed, err := db.ApplyOrder(ctx, tid, cust, st.o)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if changed != st.changed {
				t.Errorf("%s: changed = %v, want %v", st.name, changed, st.changed)
			}
			orders, err := db.CustomerOrders(ctx, tid, cust)
			if err != nil || len(orders) != 1 {
				t.Fatalf("%s: CustomerOrders = %v, %v", st.name, orders, err)
			}
			if orders[0].Status != st.wantStatus || orders[0].TotalMinor != st.wantTotal {
				t.Errorf("%s: stored %s %d, want %s %d", st.name, orders[0].Status, orders[0].TotalMinor, st.wantStatus, st.wantTotal)
			}
			c := mustCustomer(t, db, tid, cust)
			if c.DataVersion != st.wantVersion {
				t.Errorf("%s: DataVersion = %d, want %d", st.name, c.DataVersion, st.wantVersion)
			}
		}
		o := mustOrders(t, db, tid, cust)[0]
		if !o.CreatedAt.Equal(utcMicro(t0)) || !o.UpdatedAt.Equal(utcMicro(at(2*time.Minute))) || o.Currency != "USD" ||
			o.Source != integrations.SourceShopify || o.OrderID != "1" || o.CustomerID != cust {
			t.Errorf("stored order = %+v", o)
		}
		if o.CreatedAt.Location() != time.UTC {
			t.Errorf("times not UTC: %v", o.CreatedAt.Location())
		}

		// The order moves to another customer: both customers' data changed.
		other := mustResolve(t, db, tid, Identity{Email: "b@example.com"})
		before := mustCustomer(t, db, tid, cust)
		if changed, err := db.ApplyOrder(ctx, tid, other, order("1", 3*time.Minute, paid, 1300)); err != nil || !changed {
			t.Fatalf("move: %v %v", changed, err)
		}
		afterA, afterB := mustCustomer(t, db, tid, cust), mustCustomer(t, db, tid, other)
		if afterA.DataVersion != before.DataVersion+1 || afterB.DataVersion != 1 || afterA.DataChangedAt.Before(before.DataChangedAt) {
			t.Errorf("move: versions %d→%d and %d", before.DataVersion, afterA.DataVersion, afterB.DataVersion)
		}
		if len(mustOrders(t, db, tid, cust)) != 0 || len(mustOrders(t, db, tid, other)) != 1 {
			t.Error("order did not move")
		}
		// ... and to a guest: the previous customer is bumped, the order is nobody's.
		if changed, err := db.ApplyOrder(ctx, tid, 0, order("1", 4*time.Minute, paid, 1300)); err != nil || !changed {
			t.Fatalf("to guest: %v %v", changed, err)
		}
		if c := mustCustomer(t, db, tid, other); c.DataVersion != 2 || len(mustOrders(t, db, tid, other)) != 0 {
			t.Errorf("to guest: version %d", c.DataVersion)
		}

		// Guest orders are stored and change nobody.
		if changed, err := db.ApplyOrder(ctx, tid, 0, order("g", 0, paid, 500)); err != nil || !changed {
			t.Errorf("guest order: %v %v", changed, err)
		}

		// Bad input and unknown references.
		bad := []integrations.Order{
			{OrderID: "x", CreatedAt: t0, UpdatedAt: t0, Currency: "USD", Status: paid},
			{Source: "shopify", CreatedAt: t0, UpdatedAt: t0, Currency: "USD", Status: paid},
			{Source: "shopify", OrderID: "x", CreatedAt: t0, UpdatedAt: t0, Currency: "USD", Status: "weird"},
			{Source: "shopify", OrderID: "x", CreatedAt: t0, Currency: "USD", Status: paid},
			{Source: "shopify", OrderID: "x", CreatedAt: t0, UpdatedAt: t0, Currency: "USD", Status: paid, TotalMinor: -1},
		}
		for _, o := range bad {
			if _, err := db.ApplyOrder(ctx, tid, cust, o); !errors.Is(err, integrations.ErrMalformed) {
				t.Errorf("ApplyOrder(%+v) = %v, want ErrMalformed", o, err)
			}
		}
		if _, err := db.ApplyOrder(ctx, tid, 999999, order("2", 0, paid, 1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown customer: %v", err)
		}
		otherTenant := mustTenant(t, db)
		if _, err := db.ApplyOrder(ctx, otherTenant, cust, order("2", 0, paid, 1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant's customer: %v", err)
		}
		if _, err := db.ApplyOrder(ctx, "no-such-tenant", 0, order("2", 0, paid, 1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown tenant: %v", err)
		}
		// The same order id from another source is another order.
		o2 := order("1", 0, paid, 100)
		o2.Source = integrations.SourceOrders
		if changed, err := db.ApplyOrder(ctx, tid, cust, o2); err != nil || !changed {
			t.Errorf("same id, other source: %v %v", changed, err)
		}
	})
}

func mustOrders(t *testing.T, db *DB, tid string, cust int64) []OrderRecord {
	t.Helper()
	orders, err := db.CustomerOrders(t.Context(), tid, cust)
	if err != nil {
		t.Fatal(err)
	}
	return orders
}

func refund(orderID, refundID string, amount int64) integrations.Refund {
	return integrations.Refund{Source: integrations.SourceShopify, OrderID: orderID, RefundID: refundID,
		AmountMinor: amount, Currency: "USD", CreatedAt: at(time.Hour)}
}

func TestRefunds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cust := mustResolve(t, db, tid, Identity{Email: "a@example.com"})

		// A refund before its order: kept, nobody to bump yet.
		if cid, changed, err := db.ApplyRefund(ctx, tid, refund("early", "r1", 300)); err != nil || !changed || cid != 0 {
			t.Fatalf("refund before order = %d, %v, %v", cid, changed, err)
		}
		if c := mustCustomer(t, db, tid, cust); c.DataVersion != 0 {
			t.Errorf("refund of an unknown order bumped a customer: %d", c.DataVersion)
		}
		if _, err := db.ApplyOrder(ctx, tid, cust, order("early", 0, paid, 1000)); err != nil {
			t.Fatal(err)
		}
		// After its order: counted, customer bumped; duplicates change nothing.
		v := mustCustomer(t, db, tid, cust).DataVersion
		if cid, changed, err := db.ApplyRefund(ctx, tid, refund("early", "r2", 200)); err != nil || !changed || cid != cust {
			t.Fatalf("refund after order = %d, %v, %v", cid, changed, err)
		}
		if cid, changed, err := db.ApplyRefund(ctx, tid, refund("early", "r2", 200)); err != nil || changed || cid != cust {
			t.Fatalf("duplicate refund = %d, %v, %v", cid, changed, err)
		}
		if got := mustCustomer(t, db, tid, cust).DataVersion; got != v+1 {
			t.Errorf("DataVersion %d → %d, want one bump", v, got)
		}

		if _, err := db.ApplyOrder(ctx, tid, cust, order("cancelled", 0, cancelled, 800)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyOrder(ctx, tid, cust, order("refunded", 0, refunded, 700)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ApplyRefund(ctx, tid, refund("refunded", "r3", 700)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyOrder(ctx, tid, cust, order("over", 0, paid, 100)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ApplyRefund(ctx, tid, refund("over", "r4", 150)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyOrder(ctx, tid, cust, order("plain", 0, open, 50)); err != nil {
			t.Fatal(err)
		}
		// Same refund id from another source is another refund (of another order).
		r := refund("plain", "r1", 10)
		r.Source = integrations.SourceOrders
		if _, changed, err := db.ApplyRefund(ctx, tid, r); err != nil || !changed {
			t.Errorf("same refund id, other source: %v %v", changed, err)
		}

		want := map[string][2]int64{ // refunded, net
			"cancelled": {0, 0},
			"early":     {500, 500},
			"over":      {150, 0},
			"plain":     {0, 50},
			"refunded":  {700, 0},
		}
		orders := mustOrders(t, db, tid, cust)
		if len(orders) != len(want) {
			t.Fatalf("orders = %+v", orders)
		}
		for i, o := range orders {
			if i > 0 && orders[i-1].OrderID > o.OrderID { // same CreatedAt: by OrderID
				t.Errorf("orders not sorted: %s before %s", orders[i-1].OrderID, o.OrderID)
			}
			w := want[o.OrderID]
			if o.RefundedMinor != w[0] || o.NetMinor != w[1] {
				t.Errorf("order %s: refunded %d net %d, want %d %d", o.OrderID, o.RefundedMinor, o.NetMinor, w[0], w[1])
			}
		}

		// Guest order refunds: applied, no customer.
		if _, err := db.ApplyOrder(ctx, tid, 0, order("guest", 0, paid, 100)); err != nil {
			t.Fatal(err)
		}
		if cid, changed, err := db.ApplyRefund(ctx, tid, refund("guest", "r9", 10)); err != nil || !changed || cid != 0 {
			t.Errorf("guest refund = %d %v %v", cid, changed, err)
		}
		if _, _, err := db.ApplyRefund(ctx, tid, integrations.Refund{Source: "shopify", OrderID: "x"}); !errors.Is(err, integrations.ErrMalformed) {
			t.Errorf("refund without id: %v", err)
		}
		if _, _, err := db.ApplyRefund(ctx, "no-such-tenant", refund("x", "y", 1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("refund for unknown tenant: %v", err)
		}
	})
}

const (
	open      = integrations.OrderOpen
	paid      = integrations.OrderPaid
	refunded  = integrations.OrderRefunded
	cancelled = integrations.OrderCancelled
)

func TestForEachCustomerOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		other := mustTenant(t, db)
		want := map[int64][]string{}
		var withOrders []int64
		for i := range 7 {
			cid := mustResolve(t, db, tid, Identity{Email: fmt.Sprintf("c%d@example.com", i)})
			if i == 3 {
				continue // a customer without orders is not visited
			}
			withOrders = append(withOrders, cid)
			for j := range i%3 + 1 {
				o := order(fmt.Sprintf("c%d-o%d", i, j), 0, paid, int64(100*(j+1)))
				o.CreatedAt = at(time.Duration(3-j) * time.Hour) // later ids are earlier orders
				if _, err := db.ApplyOrder(ctx, tid, cid, o); err != nil {
					t.Fatal(err)
				}
				want[cid] = append([]string{o.OrderID}, want[cid]...)
			}
		}
		if _, err := db.ApplyOrder(ctx, tid, 0, order("guest", 0, paid, 1)); err != nil {
			t.Fatal(err)
		}
		oc := mustResolve(t, db, other, Identity{Email: "x@example.com"})
		if _, err := db.ApplyOrder(ctx, other, oc, order("elsewhere", 0, paid, 1)); err != nil {
			t.Fatal(err)
		}

		for _, batch := range []int{1, 2, 4, 100} {
			var visited []int64
			err := db.ForEachCustomerOrders(ctx, tid, batch, func(cid int64, orders []OrderRecord) error {
				visited = append(visited, cid)
				var got []string
				for _, o := range orders {
					if o.CustomerID != cid {
						t.Errorf("batch %d: customer %d got order of %d", batch, cid, o.CustomerID)
					}
					got = append(got, o.OrderID)
				}
				if fmt.Sprint(got) != fmt.Sprint(want[cid]) {
					t.Errorf("batch %d: customer %d orders %v, want %v", batch, cid, got, want[cid])
				}
				// Writing from the callback must not deadlock (no read transaction is held).
				if _, err := db.SaveScore(ctx, tid, cid, 0, Score{Model: "heuristic"}); err != nil {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("batch %d: %v", batch, err)
			}
			if fmt.Sprint(visited) != fmt.Sprint(withOrders) {
				t.Errorf("batch %d: visited %v, want %v", batch, visited, withOrders)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := db.ForEachCustomerOrders(ctx, tid, 2, func(int64, []OrderRecord) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("callback error: %v after %d calls", err, calls)
		}
		if err := db.ForEachCustomerOrders(ctx, tid, 0, nil); err == nil {
			t.Error("batch 0 accepted")
		}
	})
}

// TestConcurrentWriters hammers one database from two handles (as two processes would) with eight
// goroutines doing the full ingest path. On SQLite this proves writers queue instead of failing with
// SQLITE_BUSY; on PostgreSQL that row locks and retries keep the counts exact.
func TestConcurrentWriters(t *testing.T) {
	forEachBackendDSN(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		h1, h2 := openDSN(t, dsn), openDSN(t, dsn)
		if err := h1.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		tid := mustTenant(t, h1)
		const workers, perWorker = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			db := h1
			if w%2 == 1 {
				db = h2
			}
			wg.Go(func() {
				for i := range perWorker {
					// Workers share customers (w%4), so rows are contended, not just the lock.
					cid, _, err := db.ResolveCustomer(ctx, tid, Identity{Email: fmt.Sprintf("c%d@example.com", w%4)})
					if err != nil {
						errs <- fmt.Errorf("resolve: %w", err)
						return
					}
					id := fmt.Sprintf("w%d-%d", w, i)
					if _, err := db.ApplyOrder(ctx, tid, cid, order(id, 0, paid, 100)); err != nil {
						errs <- fmt.Errorf("order: %w", err)
						return
					}
					if _, _, err := db.ApplyRefund(ctx, tid, refund(id, "r-"+id, 10)); err != nil {
						errs <- fmt.Errorf("refund: %w", err)
						return
					}
					// Reads interleave with the writes.
					if _, err := db.CustomerOrders(ctx, tid, cid); err != nil {
						errs <- fmt.Errorf("read: %w", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var orders, versions int64
		for i := range 4 {
			c, err := h2.CustomerByEmail(ctx, tid, fmt.Sprintf("c%d@example.com", i))
			if err != nil {
				t.Fatal(err)
			}
			got := mustOrders(t, h2, tid, c.ID)
			orders += int64(len(got))
			versions += c.DataVersion
			for _, o := range got {
				if o.NetMinor != 90 {
					t.Errorf("order %s net %d", o.OrderID, o.NetMinor)
				}
			}
		}
		if orders != workers*perWorker || versions != 2*workers*perWorker {
			t.Errorf("%d orders and %d version bumps, want %d and %d", orders, versions, workers*perWorker, 2*workers*perWorker)
		}
	})
}
