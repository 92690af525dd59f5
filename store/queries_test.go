package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func TestTenantSettingsQueries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tn := &Tenant{Name: "Shop", OrdersSecret: "orders-secret", ShopifySecret: "shp"}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		other := mustTenant(t, db)
		if err := db.CheckTenant(ctx, tn.ID); err != nil {
			t.Errorf("CheckTenant(existing) = %v", err)
		}
		if err := db.CheckTenant(ctx, "t_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("CheckTenant(unknown) = %v, want ErrNotFound", err)
		}
		if s, err := db.TenantSettings(ctx, tn.ID); err != nil || string(s) != "{}" {
			t.Errorf("TenantSettings(new) = %s, %v", s, err)
		}
		if err := db.SetTenantSettings(ctx, tn.ID, json.RawMessage(`{"tag_prefix":"ltv_"}`)); err != nil {
			t.Fatal(err)
		}
		if s, err := db.TenantSettings(ctx, tn.ID); err != nil || string(s) != `{"tag_prefix":"ltv_"}` {
			t.Errorf("TenantSettings = %s, %v", s, err)
		}
		// Only the settings changed: name and secrets are intact, the other tenant untouched.
		got, err := db.GetTenant(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Shop" || got.OrdersSecret != "orders-secret" || got.ShopifySecret != "shp" {
			t.Errorf("SetTenantSettings changed other fields: %+v", got)
		}
		if s, _ := db.TenantSettings(ctx, other); string(s) != "{}" {
			t.Errorf("other tenant's settings = %s", s)
		}
		if err := db.SetTenantSettings(ctx, tn.ID, json.RawMessage(`{"broken`)); err == nil {
			t.Error("invalid JSON stored")
		}
		if err := db.SetTenantSettings(ctx, tn.ID, nil); err != nil {
			t.Fatal(err)
		}
		if s, _ := db.TenantSettings(ctx, tn.ID); string(s) != "{}" {
			t.Errorf("empty settings stored as %s, want {}", s)
		}
		if err := db.SetTenantSettings(ctx, "t_nope", json.RawMessage(`{}`)); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetTenantSettings(unknown) = %v", err)
		}
		if _, err := db.TenantSettings(ctx, "t_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TenantSettings(unknown) = %v", err)
		}
	})
}

// listFixture is a scored customer of TestListCustomers with the values it sorts on.
type listFixture struct {
	id        int64
	predicted float64
	historic  int64
	churn     float64
	last      *time.Time
	tier, seg string
	band      string
}

func seedListCustomers(t *testing.T, db *DB, tid, prefix string, n int) []listFixture {
	t.Helper()
	ctx := t.Context()
	// Ties in every key, values that are not exact in decimal, and two customers without a last order.
	pred := []float64{100.5, 100.5, 0, 1.0 / 3, 2.0 / 3, 1e-9, 250, 250, 99.99, 0.1 + 0.2, 7, 100.5}
	hist := []int64{500, 500, 0, 100, 100, 2500, 9, 9, 500, 1, 77, 500}
	churn := []float64{0.1, 0.9, 0.5, 0.5, 0.3, 0.3, 0.61, 0.2, 0.2, 0.99, 0.01, 0.5}
	tiers := []string{"gold", "silver", "bronze", "new", "platinum"}
	segs := []string{"champions", "loyal", "lost"}
	var out []listFixture
	for i := range n {
		cid := mustResolve(t, db, tid, Identity{Email: fmt.Sprintf("%s%d@example.com", prefix, i), Name: fmt.Sprint("Customer ", i)})
		f := listFixture{id: cid, predicted: pred[i%len(pred)], historic: hist[i%len(hist)], churn: churn[i%len(churn)],
			tier: tiers[i%len(tiers)], seg: segs[i%len(segs)]}
		switch {
		case f.churn < 0.3:
			f.band = "low"
		case f.churn < 0.6:
			f.band = "medium"
		default:
			f.band = "high"
		}
		if i%len(pred) != 2 && i%len(pred) != 5 {
			day := i
			if i == 8 {
				day = 7 // a tie in last order
			}
			l := utcMicro(at(time.Duration(day) * 24 * time.Hour))
			f.last = &l
		}
		s := Score{Model: "heuristic", Currency: "EUR", HistoricMinor: f.historic, PredictedCLV: f.predicted,
			SimpleCLV: f.predicted / 2, PAlive: 1 - f.churn, ChurnProbability: f.churn, ChurnBand: f.band,
			ChurnReasons: []string{"r"}, Tier: f.tier, Segment: f.seg, Orders: i, LastOrder: f.last,
			Tags: []string{"clv_tier_" + f.tier}, ScoredAt: utcMicro(at(time.Hour))}
		if _, err := db.SaveScore(ctx, tid, cid, 0, s); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func TestListCustomers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid, other := mustTenant(t, db), mustTenant(t, db)
		fx := seedListCustomers(t, db, tid, "a", 12)
		seedListCustomers(t, db, other, "b", 5)                          // another tenant: never listed
		mustResolve(t, db, tid, Identity{Email: "unscored@example.com"}) // no score: not listed

		// expected is the order the database must produce: by key, then id, in the direction.
		expected := func(sort string, asc bool, keep func(listFixture) bool) []int64 {
			var sel []listFixture
			for _, f := range fx {
				if keep == nil || keep(f) {
					sel = append(sel, f)
				}
			}
			slices.SortFunc(sel, func(a, b listFixture) int {
				var c int
				switch sort {
				case SortPredictedCLV, "":
					c = cmp.Compare(a.predicted, b.predicted)
				case SortHistoric:
					c = cmp.Compare(a.historic, b.historic)
				case SortChurn:
					c = cmp.Compare(a.churn, b.churn)
				case SortLastOrder:
					lt := func(f listFixture) int64 {
						if f.last == nil {
							return -1 << 62
						}
						return f.last.UnixMicro()
					}
					c = cmp.Compare(lt(a), lt(b))
				}
				if c == 0 {
					c = cmp.Compare(a.id, b.id)
				}
				if !asc {
					c = -c
				}
				return c
			})
			ids := []int64{}
			for _, f := range sel {
				ids = append(ids, f.id)
			}
			return ids
		}
		// walk pages through the whole list and checks every page's size and the cursor's presence.
		walk := func(f CustomerFilter) []int64 {
			t.Helper()
			ids := []int64{}
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("pagination does not end")
				}
				rows, next, err := db.ListCustomers(ctx, tid, f)
				if err != nil {
					t.Fatalf("ListCustomers(%+v): %v", f, err)
				}
				if len(rows) > f.Limit || (next != "" && len(rows) != f.Limit) {
					t.Fatalf("page of %d rows (limit %d), next %q", len(rows), f.Limit, next)
				}
				for _, r := range rows {
					ids = append(ids, r.ID)
				}
				if next == "" {
					return ids
				}
				f.Cursor = next
			}
		}
		for _, sort := range []string{"", SortPredictedCLV, SortHistoric, SortChurn, SortLastOrder} {
			for _, asc := range []bool{false, true} {
				for _, limit := range []int{1, 5, 12, MaxCustomerPage} {
					got := walk(CustomerFilter{Sort: sort, Asc: asc, Limit: limit})
					if want := expected(sort, asc, nil); !slices.Equal(got, want) {
						t.Errorf("sort %q asc=%v limit %d:\n got %v\nwant %v", sort, asc, limit, got, want)
					}
				}
			}
		}
		// Filters, alone and combined.
		for _, c := range []struct {
			f    CustomerFilter
			keep func(listFixture) bool
		}{
			{CustomerFilter{Tier: "gold"}, func(f listFixture) bool { return f.tier == "gold" }},
			{CustomerFilter{Segment: "lost"}, func(f listFixture) bool { return f.seg == "lost" }},
			{CustomerFilter{ChurnBand: "medium"}, func(f listFixture) bool { return f.band == "medium" }},
			{CustomerFilter{Tier: "silver", ChurnBand: "high"}, func(f listFixture) bool { return f.tier == "silver" && f.band == "high" }},
			{CustomerFilter{Tier: "diamond"}, func(listFixture) bool { return false }},
		} {
			f := c.f
			f.Sort, f.Limit = SortChurn, 2
			got := walk(f)
			if want := expected(SortChurn, false, c.keep); !slices.Equal(got, want) {
				t.Errorf("filter %+v: got %v, want %v", c.f, got, want)
			}
		}

		// A row carries the customer and the whole stored score.
		rows, _, err := db.ListCustomers(ctx, tid, CustomerFilter{Sort: SortHistoric, Limit: 1})
		if err != nil || len(rows) != 1 {
			t.Fatalf("ListCustomers = %v, %v", rows, err)
		}
		c := mustCustomer(t, db, tid, rows[0].ID)
		if rows[0].Email != c.Email || rows[0].Name != c.Name || !rows[0].CreatedAt.Equal(c.CreatedAt) ||
			!reflect.DeepEqual(rows[0].Score, *c.Score) {
			t.Errorf("row %+v\nwant customer %+v score %+v", rows[0], c, *c.Score)
		}

		// Keyset pagination: a customer inserted before the cursor's position does not shift the next page.
		first, next, err := db.ListCustomers(ctx, tid, CustomerFilter{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		newcomer := mustResolve(t, db, tid, Identity{Email: "whale@example.com"})
		if _, err := db.SaveScore(ctx, tid, newcomer, 0, Score{Model: "heuristic", PredictedCLV: 1e6, ChurnBand: "low", Tier: "platinum"}); err != nil {
			t.Fatal(err)
		}
		second, _, err := db.ListCustomers(ctx, tid, CustomerFilter{Limit: 4, Cursor: next})
		if err != nil {
			t.Fatal(err)
		}
		want := expected(SortPredictedCLV, false, nil)
		var got []int64
		for _, r := range append(first, second...) {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, want[:8]) {
			t.Errorf("pages around an insert = %v, want %v", got, want[:8])
		}

		// Bad arguments.
		for _, f := range []CustomerFilter{
			{Limit: 0}, {Limit: MaxCustomerPage + 1}, {Limit: 5, Sort: "name"},
		} {
			if _, _, err := db.ListCustomers(ctx, tid, f); err == nil {
				t.Errorf("ListCustomers(%+v) succeeded", f)
			}
		}
		for _, f := range []CustomerFilter{
			{Limit: 5, Cursor: "garbage!"},
			{Limit: 5, Cursor: "e30"}, // {}: no id
			{Limit: 5, Cursor: next, Asc: true},
			{Limit: 5, Cursor: next, Sort: SortChurn},
		} {
			if _, _, err := db.ListCustomers(ctx, tid, f); !errors.Is(err, ErrBadCursor) {
				t.Errorf("ListCustomers(cursor %q, asc=%v, sort %q) = %v, want ErrBadCursor", f.Cursor, f.Asc, f.Sort, err)
			}
		}
	})
}

// purchase is an order of the KPI fixtures, created (and versioned) at created.
func purchase(id string, created time.Time, status integrations.OrderStatus, total int64, currency string) integrations.Order {
	return integrations.Order{Source: integrations.SourceOrders, OrderID: id, CreatedAt: created, UpdatedAt: created,
		Currency: currency, TotalMinor: total, Status: status}
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
		if err != nil {
			panic(err)
		}
	}
	return t
}

func TestCustomerKPIs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid, other := mustTenant(t, db), mustTenant(t, db)
		// The period is 2024 (to is exclusive). Active at the start: a purchase in
		// [2023-01-01, 2024-01-01); at the end: in [2024-01-02, 2025-01-01) (2024 has 366 days).
		from, to := day("2024-01-01"), day("2025-01-01")
		n := 0
		buy := func(tenant string, cust int64, created string, status integrations.OrderStatus, total int64, currency string) string {
			t.Helper()
			n++
			id := fmt.Sprint("o", n)
			if _, err := db.ApplyOrder(ctx, tenant, cust, purchase(id, day(created), status, total, currency)); err != nil {
				t.Fatal(err)
			}
			return id
		}
		refund := func(orderID string, amount int64) {
			t.Helper()
			n++
			if _, _, err := db.ApplyRefund(ctx, tid, integrations.Refund{Source: integrations.SourceOrders, OrderID: orderID,
				RefundID: fmt.Sprint("r", n), AmountMinor: amount, Currency: "EUR", CreatedAt: day("2025-02-01")}); err != nil {
				t.Fatal(err)
			}
		}
		cust := func(name string) int64 { return mustResolve(t, db, tid, Identity{Email: name + "@example.com"}) }

		// Ten customers active at the start.
		s := make([]int64, 11)
		for i := 1; i <= 10; i++ {
			s[i] = cust(fmt.Sprint("s", i))
			buy(tid, s[i], "2023-06-15", paid, 1000, "EUR")
		}
		// Eight of them buy again during the period and are active at its end.
		refund(buy(tid, s[1], "2024-03-10", paid, 10000, "EUR"), 2500) // net 7500
		refund(buy(tid, s[2], "2024-04-01", paid, 4000, "EUR"), 4000)  // fully refunded, still paid: a purchase worth 0
		buy(tid, s[3], "2024-05-01", paid, 3000, "USD")
		buy(tid, s[4], "2024-06-01", paid, 1000, "EUR")
		buy(tid, s[4], "2024-08-01", open, 2000, "EUR") // open counts
		buy(tid, s[5], "2024-02-01", paid, 500, "EUR")
		buy(tid, s[6], "2024-12-31T23:59:59Z", paid, 700, "EUR") // the period's last second
		buy(tid, s[7], "2024-09-09", paid, 900, "EUR")
		buy(tid, s[8], "2024-10-10", paid, 1100, "EUR")
		// Two are lost: s9 bought on the period's first day, more than 365 days before its end;
		// s10's only order in the period was cancelled.
		buy(tid, s[9], "2024-01-01T10:00:00Z", paid, 1300, "EUR")
		buy(tid, s[10], "2024-05-05", cancelled, 5000, "EUR")
		// Four new customers.
		n1, n2, n3, n4 := cust("n1"), cust("n2"), cust("n3"), cust("n4")
		buy(tid, n1, "2024-03-03", paid, 200, "EUR")
		buy(tid, n1, "2024-04-04", paid, 300, "EUR")
		buy(tid, n2, "2024-11-11", paid, 400, "EUR")
		buy(tid, n2, "2025-01-01", paid, 99999, "EUR") // after the period
		buy(tid, n3, "2024-07-07", paid, 600, "EUR")
		buy(tid, n4, "2024-08-08", paid, 800, "EUR")
		buy(tid, n4, "2024-09-09", refunded, 999, "EUR") // not a purchase
		// A reactivated customer: active at the end, neither at the start nor new.
		re := cust("react")
		buy(tid, re, "2022-01-01", paid, 100, "EUR")
		buy(tid, re, "2024-07-01", paid, 150, "EUR")
		// A customer of long ago, and a guest order.
		buy(tid, cust("old"), "2021-05-05", paid, 100, "EUR")
		buy(tid, 0, "2024-06-06", paid, 9999, "EUR")

		// Current tiers: s1, s2 gold; s4, n1 silver; s3 bronze; the rest not scored yet.
		for id, tier := range map[int64]string{s[1]: "gold", s[2]: "gold", s[4]: "silver", n1: "silver", s[3]: "bronze"} {
			c := mustCustomer(t, db, tid, id)
			if _, err := db.SaveScore(ctx, tid, id, c.DataVersion, Score{Model: "heuristic", Tier: tier, ChurnBand: "low"}); err != nil {
				t.Fatal(err)
			}
		}
		// Ratings: two good and one bad on tickets updated in the period.
		for i, r := range []struct {
			rating, at string
		}{{"good", "2024-05-01"}, {"bad", "2024-06-01"}, {"good", "2024-07-01"}, {"good", "2023-12-31"}, {"offered", "2024-03-01"}, {"", "2024-03-02"}} {
			ev := integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: fmt.Sprint("e", i), TicketID: fmt.Sprint(100 + i),
				Status: "solved", Satisfaction: r.rating, OccurredAt: day(r.at)}
			if _, err := db.ApplyTicketEvent(ctx, tid, 0, ev); err != nil {
				t.Fatal(err)
			}
		}
		// The other tenant: a customer active throughout, bad ratings. None of it may show.
		ob := mustResolve(t, db, other, Identity{Email: "s1@example.com"})
		buy(other, ob, "2023-03-03", paid, 5000, "EUR")
		buy(other, ob, "2024-03-03", paid, 5000, "EUR")
		buy(other, 0, "2024-03-03", paid, 5000, "EUR")
		if _, err := db.ApplyTicketEvent(ctx, other, 0, integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: "x",
			TicketID: "1", Satisfaction: "bad", OccurredAt: day("2024-05-05")}); err != nil {
			t.Fatal(err)
		}

		k, err := db.CustomerKPIs(ctx, tid, from, to)
		if err != nil {
			t.Fatal(err)
		}
		want := KPIs{From: from, To: to,
			ActiveAtStart: 10, Retained: 8, ActiveAtEnd: 13, NewCustomers: 4,
			Buyers: 14, RepeatBuyers: 2, Orders: 16, GuestOrders: 1,
			Revenue: []CurrencyRevenue{{"EUR", 15, 17450}, {"USD", 1, 3000}},
			RevenueByTier: []TierRevenue{
				{"", "EUR", 9, 9, 6450},
				{"bronze", "USD", 1, 1, 3000},
				{"gold", "EUR", 2, 2, 7500},
				{"silver", "EUR", 2, 4, 3500},
			},
			RatingsGood: 2, RatingsBad: 1,
		}
		if !reflect.DeepEqual(k, want) {
			t.Fatalf("KPIs:\n got %+v\nwant %+v", k, want)
		}
		// 10 at the start, 2 lost, 4 new: retention is 80 %, not 120 %.
		if r, ok := k.RetentionRate(); !ok || r != 0.8 {
			t.Errorf("RetentionRate = %v, %v; want 0.8", r, ok)
		}
		if r, ok := k.ChurnRate(); !ok || r != 0.2 {
			t.Errorf("ChurnRate = %v, %v; want 0.2", r, ok)
		}
		if r, ok := k.RepeatPurchaseRate(); !ok || r != 2.0/14 {
			t.Errorf("RepeatPurchaseRate = %v", r)
		}
		if r, ok := k.PurchaseFrequency(); !ok || r != 16.0/14 {
			t.Errorf("PurchaseFrequency = %v", r)
		}
		if r, ok := k.CSAT(); !ok || r != 2.0/3 {
			t.Errorf("CSAT = %v", r)
		}

		// A period with nothing in it: zeros, and no rate.
		k, err = db.CustomerKPIs(ctx, tid, day("2010-01-01"), day("2010-02-01"))
		if err != nil {
			t.Fatal(err)
		}
		if k.ActiveAtStart != 0 || k.Buyers != 0 || k.Revenue != nil || k.RevenueByTier != nil || k.RatingsGood+k.RatingsBad != 0 {
			t.Errorf("empty period: %+v", k)
		}
		for name, f := range map[string]func() (float64, bool){"retention": k.RetentionRate, "churn": k.ChurnRate,
			"repeat": k.RepeatPurchaseRate, "frequency": k.PurchaseFrequency, "csat": k.CSAT} {
			if _, ok := f(); ok {
				t.Errorf("%s rate defined for an empty period", name)
			}
		}
		// The other tenant sees only its own.
		k, err = db.CustomerKPIs(ctx, other, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if k.ActiveAtStart != 1 || k.Retained != 1 || k.Buyers != 1 || k.GuestOrders != 1 || k.RatingsBad != 1 || k.RatingsGood != 0 ||
			!reflect.DeepEqual(k.Revenue, []CurrencyRevenue{{"EUR", 1, 5000}}) {
			t.Errorf("other tenant: %+v", k)
		}
		if _, err := db.CustomerKPIs(ctx, tid, to, from); err == nil {
			t.Error("a period ending before it starts was accepted")
		}
	})
}
