package store

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func TestCohortRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid, other := mustTenant(t, db), mustTenant(t, db)
		n := 0
		buy := func(tenant string, cust int64, created string, status integrations.OrderStatus, total int64) {
			t.Helper()
			n++
			o := purchase(fmt.Sprint("o", n), day(created), status, total, "EUR")
			if _, err := db.ApplyOrder(ctx, tenant, cust, o); err != nil {
				t.Fatal(err)
			}
		}
		cust := func(tenant, name string) int64 {
			return mustResolve(t, db, tenant, Identity{Email: name + "@example.com"})
		}
		c1, c2, c3, c4, c5, c6 := cust(tid, "c1"), cust(tid, "c2"), cust(tid, "c3"), cust(tid, "c4"), cust(tid, "c5"), cust(tid, "c6")
		buy(tid, c1, "2023-12-10", paid, 100) // first purchase before the table: in no cohort
		buy(tid, c1, "2024-02-01", paid, 100)
		buy(tid, c2, "2024-01-05", paid, 100) // January cohort
		buy(tid, c2, "2024-01-20", paid, 100) // same month again
		buy(tid, c2, "2024-03-31T23:59:59.999999Z", paid, 100)
		buy(tid, c2, "2024-05-02", paid, 100) // after the table
		buy(tid, c3, "2024-01-31T23:59:59.999999Z", paid, 100)
		buy(tid, c3, "2024-02-01T00:00:00Z", open, 100) // open orders are purchases
		buy(tid, c4, "2024-01-10", cancelled, 100)      // not a purchase: c4's first is in February
		buy(tid, c4, "2024-02-15", paid, 100)
		buy(tid, c4, "2024-04-01", paid, 100)
		buy(tid, c5, "2024-04-30T23:00:00Z", paid, 100)
		buy(tid, c6, "2024-03-03", refunded, 100) // no purchase at all
		buy(tid, 0, "2024-01-03", paid, 100)      // a guest
		buy(other, cust(other, "c2"), "2024-01-05", paid, 100)

		got, err := db.CohortRetention(ctx, tid, day("2024-01-17"), 4)
		if err != nil {
			t.Fatal(err)
		}
		month := func(s string) time.Time { return day(s + "-01") }
		want := CohortTable{Start: month("2024-01"), Months: 4, Cohorts: []Cohort{
			{Month: month("2024-01"), Customers: 2, Active: []int64{2, 1, 1, 0}},
			{Month: month("2024-02"), Customers: 1, Active: []int64{1, 0, 1}},
			{Month: month("2024-03"), Customers: 0, Active: []int64{0, 0}},
			{Month: month("2024-04"), Customers: 1, Active: []int64{1}},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("CohortRetention =\n%+v\nwant\n%+v", got, want)
		}

		// One month: the January cohort only.
		got, err = db.CohortRetention(ctx, tid, day("2024-01-01"), 1)
		if err != nil || len(got.Cohorts) != 1 || got.Cohorts[0].Customers != 2 || !slices.Equal(got.Cohorts[0].Active, []int64{2}) {
			t.Errorf("one month: %+v, %v", got, err)
		}
		// Another tenant's table has its own customer only; an empty tenant has empty cohorts.
		got, err = db.CohortRetention(ctx, other, day("2024-01-01"), 2)
		if err != nil || got.Cohorts[0].Customers != 1 || got.Cohorts[1].Customers != 0 {
			t.Errorf("other tenant: %+v, %v", got, err)
		}
		got, err = db.CohortRetention(ctx, mustTenant(t, db), day("2024-01-01"), 3)
		if err != nil || len(got.Cohorts) != 3 || got.Cohorts[0].Customers != 0 || len(got.Cohorts[2].Active) != 1 {
			t.Errorf("empty tenant: %+v, %v", got, err)
		}
		for _, m := range []int{0, -1, MaxCohortMonths + 1} {
			if _, err := db.CohortRetention(ctx, tid, day("2024-01-01"), m); err == nil {
				t.Errorf("CohortRetention(%d months) succeeded", m)
			}
		}

		// The KPI series is CustomerKPIs month by month, cut at until.
		series, err := db.KPISeries(ctx, tid, day("2024-01-20"), 4, day("2024-03-15"))
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 3 {
			t.Fatalf("KPISeries cut at 2024-03-15: %d months, want 3", len(series))
		}
		for i, k := range series {
			from, to := month("2024-01").AddDate(0, i, 0), month("2024-01").AddDate(0, i+1, 0)
			if i == 2 {
				to = day("2024-03-15")
			}
			want, err := db.CustomerKPIs(ctx, tid, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(k, want) {
				t.Errorf("month %d: %+v, want %+v", i, k, want)
			}
		}
		if series[0].Buyers != 2 || series[0].Orders != 3 || series[0].NewCustomers != 2 || series[1].Buyers != 3 {
			t.Errorf("series figures: %+v / %+v", series[0], series[1])
		}
		if all, err := db.KPISeries(ctx, tid, day("2024-01-01"), 12, time.Time{}); err != nil || len(all) != 12 {
			t.Errorf("uncut series: %d months, %v", len(all), err)
		}
		if _, err := db.KPISeries(ctx, tid, day("2024-01-01"), 0, time.Time{}); err == nil {
			t.Error("KPISeries(0 months) succeeded")
		}

		// The summary counts every customer, the purchases and when they were made.
		sum, err := db.DashboardSummary(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Customers != 6 || sum.Scored != 0 || sum.Stale != 6 || sum.Purchases != 11 || len(sum.Currencies) != 0 ||
			sum.FirstPurchase == nil || !sum.FirstPurchase.Equal(day("2023-12-10")) ||
			sum.LastPurchase == nil || !sum.LastPurchase.Equal(day("2024-05-02")) {
			t.Errorf("summary %+v", sum)
		}
		empty, err := db.DashboardSummary(ctx, mustTenant(t, db))
		if err != nil || empty.Customers != 0 || empty.FirstPurchase != nil || empty.LastPurchase != nil {
			t.Errorf("empty summary %+v, %v", empty, err)
		}
	})
}

func TestScoreAggregates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid, other := mustTenant(t, db), mustTenant(t, db)
		tiers := []string{"platinum", "gold", "silver", "bronze", "new"}
		segs := []string{"champions", "loyal", "at_risk", "lost"}
		bands := []string{"low", "medium", "high"}
		type agg struct {
			n, high, hist int64
			pred          float64
		}
		wantTiers := map[[2]string]*agg{}
		wantSegs := map[string]*struct {
			n             int64
			churn, pAlive float64
		}{}
		save := func(tenant, email string, s Score) {
			t.Helper()
			cid := mustResolve(t, db, tenant, Identity{Email: email})
			if _, err := db.SaveScore(ctx, tenant, cid, 0, s); err != nil {
				t.Fatal(err)
			}
		}
		// 100 customers valued in EUR at 1..100, one at −1 (a value below zero goes in the first
		// bin), three in USD.
		for i := -1; i <= 100; i++ {
			if i == 0 {
				continue
			}
			k := i + 1
			s := Score{Model: "bgnbd", Currency: "EUR", HistoricMinor: int64(100 * k), PredictedCLV: float64(i),
				ChurnProbability: float64(k%10) / 10, PAlive: 1 - float64(k%10)/10, ChurnBand: bands[k%3],
				Tier: tiers[k%5], Segment: segs[k%4], ScoredAt: t0}
			save(tid, fmt.Sprint("e", i, "@example.com"), s)
			a := wantTiers[[2]string{s.Tier, "EUR"}]
			if a == nil {
				a = &agg{}
				wantTiers[[2]string{s.Tier, "EUR"}] = a
			}
			a.n++
			a.hist += s.HistoricMinor
			a.pred += s.PredictedCLV
			if s.ChurnBand == "high" {
				a.high++
			}
			g := wantSegs[s.Segment]
			if g == nil {
				g = &struct {
					n             int64
					churn, pAlive float64
				}{}
				wantSegs[s.Segment] = g
			}
			g.n++
			g.churn += s.ChurnProbability
			g.pAlive += s.PAlive
		}
		for i, v := range []float64{1000, 2000, 3000} {
			save(tid, fmt.Sprint("u", i, "@example.com"), Score{Model: "bgnbd", Currency: "USD", HistoricMinor: 5, PredictedCLV: v,
				ChurnBand: "high", Tier: "platinum", Segment: "champions", ChurnProbability: 0.7, PAlive: 0.3, ScoredAt: t0})
			wantSegs["champions"].n++
			wantSegs["champions"].churn += 0.7
			wantSegs["champions"].pAlive += 0.3
		}
		wantTiers[[2]string{"platinum", "USD"}] = &agg{n: 3, high: 3, hist: 15, pred: 6000}
		save(other, "x@example.com", Score{Model: "bgnbd", Currency: "EUR", PredictedCLV: 1e6, Tier: "gold", Segment: "lost", ChurnBand: "low", ScoredAt: t0})
		mustResolve(t, db, tid, Identity{Email: "unscored@example.com"})

		byTier, err := db.TierBreakdown(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		if len(byTier) != len(wantTiers) {
			t.Errorf("TierBreakdown: %d rows, want %d: %+v", len(byTier), len(wantTiers), byTier)
		}
		for i, r := range byTier {
			w := wantTiers[[2]string{r.Tier, r.Currency}]
			if w == nil || r.Customers != w.n || r.HighChurn != w.high || r.HistoricMinor != w.hist || math.Abs(r.PredictedCLV-w.pred) > 1e-9 {
				t.Errorf("tier row %+v, want %+v", r, w)
			}
			if i > 0 && (byTier[i-1].Tier > r.Tier || (byTier[i-1].Tier == r.Tier && byTier[i-1].Currency >= r.Currency)) {
				t.Errorf("tier rows out of order: %+v", byTier)
			}
		}

		segsGot, err := db.SegmentSizes(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		if len(segsGot) != len(wantSegs) {
			t.Errorf("SegmentSizes: %+v", segsGot)
		}
		for i, r := range segsGot {
			w := wantSegs[r.Segment]
			if w == nil || r.Customers != w.n || math.Abs(r.AvgChurnProbability-w.churn/float64(w.n)) > 1e-9 ||
				math.Abs(r.AvgPAlive-w.pAlive/float64(w.n)) > 1e-9 {
				t.Errorf("segment row %+v, want %+v", r, w)
			}
			if i > 0 && segsGot[i-1].Segment >= r.Segment {
				t.Errorf("segments out of order: %+v", segsGot)
			}
		}

		h, err := db.PredictedCLVHistogram(ctx, tid, "EUR", 10)
		if err != nil {
			t.Fatal(err)
		}
		// The 99th percentile is 99 (rank ⌊0.99·100⌋ of 101 values): ten bins of 10 cover it, and 100
		// is in the open bin.
		if h.Currency != "EUR" || h.Customers != 101 || h.Min != -1 || h.Max != 100 || h.Sum != 5049 || h.P50 != 50 || h.P99 != 99 || h.Width != 10 {
			t.Errorf("histogram %+v", h)
		}
		wantBins := []HistogramBin{{0, 10, 10, false}}
		for i := 1; i < 10; i++ {
			wantBins = append(wantBins, HistogramBin{float64(10 * i), float64(10 * (i + 1)), 10, false})
		}
		wantBins = append(wantBins, HistogramBin{100, 100, 1, true})
		if !reflect.DeepEqual(h.Bins, wantBins) {
			t.Errorf("bins %+v\nwant %+v", h.Bins, wantBins)
		}
		var total int64
		for _, b := range h.Bins {
			total += b.Count
		}
		if total != h.Customers {
			t.Errorf("bins count %d customers, want %d", total, h.Customers)
		}

		// USD: 1000, 2000, 3000; the 99th percentile is 2000 (rank 1): four bins of 500 end at 2000, so
		// 2000 and 3000 are in the open bin.
		h, err = db.PredictedCLVHistogram(ctx, tid, "USD", 4)
		if err != nil {
			t.Fatal(err)
		}
		if h.Customers != 3 || h.Width != 500 || len(h.Bins) != 5 || h.Bins[2].Count != 1 || h.Bins[4].Count != 2 || !h.Bins[4].Open || h.Bins[4].Lo != 2000 {
			t.Errorf("USD histogram %+v", h)
		}
		// Nothing valued in GBP; every value zero.
		h, err = db.PredictedCLVHistogram(ctx, tid, "GBP", 10)
		if err != nil || h.Customers != 0 || len(h.Bins) != 0 {
			t.Errorf("GBP histogram %+v, %v", h, err)
		}
		zeros := mustTenant(t, db)
		save(zeros, "z@example.com", Score{Model: "heuristic", Currency: "EUR", Tier: "new", Segment: "new", ChurnBand: "low", ScoredAt: t0})
		h, err = db.PredictedCLVHistogram(ctx, zeros, "EUR", 10)
		if err != nil || h.Customers != 1 || h.Bins[0].Count != 1 || h.Width <= 0 {
			t.Errorf("all-zero histogram %+v, %v", h, err)
		}
		for _, bins := range []int{0, 1, MaxHistogramBins + 1} {
			if _, err := db.PredictedCLVHistogram(ctx, tid, "EUR", bins); err == nil {
				t.Errorf("%d bins accepted", bins)
			}
		}

		sum, err := db.DashboardSummary(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		want := []CurrencyCount{{"EUR", 101}, {"USD", 3}}
		if sum.Customers != 105 || sum.Scored != 104 || sum.Purchases != 0 || !reflect.DeepEqual(sum.Currencies, want) {
			t.Errorf("summary %+v", sum)
		}
	})
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{9.9, 10}, {10, 10}, {10.1, 20}, {0.3, 0.5}, {2.2, 2.5}, {1, 1}, {1234, 2000}, {0, 1}, {-5, 1}, {math.NaN(), 1}, {0.011, 0.02},
	} {
		if got := niceStep(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
