package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// This file holds the aggregates of the admin dashboard (admin/dashboard_api.go): a tenant summary,
// customers and value by tier, RFM segment sizes, the predicted-CLV histogram, the cohort retention
// table and a monthly KPI series. Like the other read models, every figure is counted or summed by
// the database; no order or score is loaded into memory to be counted here.

// DashboardSummary is the headline of a tenant's dashboard.
type DashboardSummary struct {
	Customers int64 // every customer, scored or not
	Scored    int64 // customers with a score
	Stale     int64 // customers whose data changed after their last score (rescore pending)
	Purchases int64 // open or paid orders of identified customers (see KPIs)
	// FirstPurchase and LastPurchase are the creation times of the tenant's first and latest
	// purchase; nil when it has none.
	FirstPurchase, LastPurchase *time.Time
	// Currencies are the currencies of the scores (the currency each customer's value is counted
	// in), the most common first.
	Currencies []CurrencyCount
}

// CurrencyCount is how many scored customers have their value counted in Currency.
type CurrencyCount struct {
	Currency  string
	Customers int64
}

// DashboardSummary returns the tenant's headline figures in one read snapshot.
func (db *DB) DashboardSummary(ctx context.Context, tenantID string) (DashboardSummary, error) {
	var out DashboardSummary
	err := db.inReadTx(ctx, func(tx runner) error {
		out = DashboardSummary{}
		err := tx.queryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN data_version > scored_version THEN 1 ELSE 0 END), 0) AS BIGINT)
			FROM customers WHERE tenant_id = ?`, tenantID).Scan(&out.Customers, &out.Stale)
		if err != nil {
			return fmt.Errorf("customers: %w", err)
		}
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM scores WHERE tenant_id = ?`, tenantID).Scan(&out.Scored); err != nil {
			return fmt.Errorf("scored customers: %w", err)
		}
		var first, last *time.Time
		err = tx.queryRow(ctx, `SELECT COUNT(*), MIN(o.created_at), MAX(o.created_at) FROM orders o WHERE `+purchaseWhere,
			tenantID).Scan(&out.Purchases, nullTimeCol{&first}, nullTimeCol{&last})
		if err != nil {
			return fmt.Errorf("purchases: %w", err)
		}
		out.FirstPurchase, out.LastPurchase = first, last
		rows, err := tx.query(ctx, `SELECT currency, COUNT(*) FROM scores WHERE tenant_id = ?
			GROUP BY currency ORDER BY COUNT(*) DESC, currency`, tenantID)
		if err != nil {
			return fmt.Errorf("currencies: %w", err)
		}
		for rows.Next() {
			var c CurrencyCount
			if err := rows.Scan(&c.Currency, &c.Customers); err != nil {
				rows.Close()
				return fmt.Errorf("currencies: %w", err)
			}
			out.Currencies = append(out.Currencies, c)
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("currencies: %w", err)
		}
		return nil
	})
	if err != nil {
		return DashboardSummary{}, fmt.Errorf("dashboard summary of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// TierStats are the scored customers of one tier whose value is counted in one currency.
type TierStats struct {
	Tier          string
	Currency      string
	Customers     int64
	HistoricMinor int64   // their net spend to date, minor units
	PredictedCLV  float64 // the sum of their predicted CLV, major units
	HighChurn     int64   // those in churn band "high"
}

// TierBreakdown returns the tenant's scored customers by tier and currency, ordered by tier name
// then currency (the caller ranks tiers).
func (db *DB) TierBreakdown(ctx context.Context, tenantID string) ([]TierStats, error) {
	rows, err := db.reader().query(ctx, `SELECT s.tier, s.currency, COUNT(*),
		CAST(COALESCE(SUM(s.historic_minor), 0) AS BIGINT), COALESCE(SUM(s.predicted_clv), 0),
		CAST(COALESCE(SUM(CASE WHEN s.churn_band = 'high' THEN 1 ELSE 0 END), 0) AS BIGINT)
		FROM scores s WHERE s.tenant_id = ? GROUP BY s.tier, s.currency ORDER BY s.tier, s.currency`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tier breakdown of tenant %s: %w", tenantID, err)
	}
	var out []TierStats
	for rows.Next() {
		var s TierStats
		if err := rows.Scan(&s.Tier, &s.Currency, &s.Customers, &s.HistoricMinor, &s.PredictedCLV, &s.HighChurn); err != nil {
			rows.Close()
			return nil, fmt.Errorf("tier breakdown of tenant %s: %w", tenantID, err)
		}
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("tier breakdown of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// SegmentStats are the scored customers of one RFM segment.
type SegmentStats struct {
	Segment             string
	Customers           int64
	AvgChurnProbability float64
	AvgPAlive           float64
}

// SegmentSizes returns the tenant's scored customers by RFM segment, ordered by segment name.
func (db *DB) SegmentSizes(ctx context.Context, tenantID string) ([]SegmentStats, error) {
	rows, err := db.reader().query(ctx, `SELECT s.segment, COUNT(*), COALESCE(AVG(s.churn_probability), 0),
		COALESCE(AVG(s.p_alive), 0) FROM scores s WHERE s.tenant_id = ? GROUP BY s.segment ORDER BY s.segment`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("segment sizes of tenant %s: %w", tenantID, err)
	}
	var out []SegmentStats
	for rows.Next() {
		var s SegmentStats
		if err := rows.Scan(&s.Segment, &s.Customers, &s.AvgChurnProbability, &s.AvgPAlive); err != nil {
			rows.Close()
			return nil, fmt.Errorf("segment sizes of tenant %s: %w", tenantID, err)
		}
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("segment sizes of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// Histogram bounds.
const (
	MinHistogramBins = 2
	MaxHistogramBins = 100
)

// CLVHistogram is the distribution of the predicted CLV of a tenant's customers whose value is
// counted in one currency (values in different currencies are never mixed).
type CLVHistogram struct {
	Currency  string
	Customers int64
	Sum       float64 // of the predicted CLVs
	Min, Max  float64
	P50, P99  float64 // the values at ranks ⌊q·(n−1)⌋ of the sorted values
	// Bins cover [0, Width·k) in k bins of Width (the lowest also takes values below 0), then, when
	// some values reach Width·k, one open bin [Width·k, ∞) (Open set): the long tail above the 99th
	// percentile would otherwise squash every other bin into the first one.
	Width float64
	Bins  []HistogramBin
}

// HistogramBin is one bin [Lo, Hi) of a histogram; an Open bin is [Lo, ∞) and its Hi is Max.
type HistogramBin struct {
	Lo, Hi float64
	Count  int64
	Open   bool
}

// niceStep returns the smallest step of the form {1, 2, 2.5, 5}·10^k that is at least x (> 0).
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if s := m * p; s >= x*(1-1e-12) {
			return s
		}
	}
	return 10 * p
}

// PredictedCLVHistogram returns the histogram of the predicted CLV of the tenant's scored customers
// valued in currency, in at most bins regular bins (MinHistogramBins..MaxHistogramBins) plus the open
// one. The bin width is a round number covering the 99th percentile.
func (db *DB) PredictedCLVHistogram(ctx context.Context, tenantID, currency string, bins int) (CLVHistogram, error) {
	if bins < MinHistogramBins || bins > MaxHistogramBins {
		return CLVHistogram{}, fmt.Errorf("predicted CLV histogram: %d bins, want %d to %d", bins, MinHistogramBins, MaxHistogramBins)
	}
	var h CLVHistogram
	err := db.inReadTx(ctx, func(tx runner) error {
		h = CLVHistogram{Currency: currency, Bins: []HistogramBin{}}
		var minV, maxV, sum *float64
		err := tx.queryRow(ctx, `SELECT COUNT(*), MIN(predicted_clv), MAX(predicted_clv), SUM(predicted_clv)
			FROM scores WHERE tenant_id = ? AND currency = ?`, tenantID, currency).Scan(&h.Customers, &minV, &maxV, &sum)
		if err != nil {
			return fmt.Errorf("range: %w", err)
		}
		if h.Customers == 0 {
			return nil
		}
		h.Min, h.Max, h.Sum = *minV, *maxV, *sum
		rank := func(q float64) (float64, error) {
			var v float64
			err := tx.queryRow(ctx, `SELECT predicted_clv FROM scores WHERE tenant_id = ? AND currency = ?
				ORDER BY predicted_clv LIMIT 1 OFFSET ?`, tenantID, currency, int64(q*float64(h.Customers-1))).Scan(&v)
			return v, err
		}
		if h.P50, err = rank(0.5); err != nil {
			return fmt.Errorf("median: %w", err)
		}
		if h.P99, err = rank(0.99); err != nil {
			return fmt.Errorf("99th percentile: %w", err)
		}
		top := h.P99
		if top <= 0 {
			top = h.Max
		}
		if top <= 0 {
			top = 1
		}
		h.Width = niceStep(top / float64(bins))
		k := int(math.Ceil(top/h.Width - 1e-9))
		k = max(1, min(k, bins))
		if float64(k)*h.Width <= top { // the top value belongs in a regular bin
			k = min(k+1, bins)
		}
		// One pass: each value's bin by comparison with the edges (portable: no FLOOR or casts
		// whose rounding differs between SQLite and PostgreSQL).
		var cases strings.Builder
		args := make([]any, 0, k+2)
		cases.WriteString("CASE")
		for i := 1; i <= k; i++ {
			cases.WriteString(" WHEN predicted_clv < ? THEN " + fmt.Sprint(i-1))
			args = append(args, float64(i)*h.Width)
		}
		cases.WriteString(" ELSE " + fmt.Sprint(k) + " END")
		args = append(args, tenantID, currency)
		counts := make([]int64, k+1)
		rows, err := tx.query(ctx, `SELECT b.bin, COUNT(*) FROM (SELECT `+cases.String()+` AS bin FROM scores
			WHERE tenant_id = ? AND currency = ?) b GROUP BY b.bin`, args...)
		if err != nil {
			return fmt.Errorf("bins: %w", err)
		}
		for rows.Next() {
			var bin int
			var n int64
			if err := rows.Scan(&bin, &n); err != nil {
				rows.Close()
				return fmt.Errorf("bins: %w", err)
			}
			if bin >= 0 && bin <= k {
				counts[bin] = n
			}
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("bins: %w", err)
		}
		for i := range k {
			h.Bins = append(h.Bins, HistogramBin{Lo: float64(i) * h.Width, Hi: float64(i+1) * h.Width, Count: counts[i]})
		}
		if counts[k] > 0 {
			h.Bins = append(h.Bins, HistogramBin{Lo: float64(k) * h.Width, Hi: h.Max, Count: counts[k], Open: true})
		}
		return nil
	})
	if err != nil {
		return CLVHistogram{}, fmt.Errorf("predicted CLV histogram of tenant %s: %w", tenantID, err)
	}
	return h, nil
}

// MaxCohortMonths bounds a cohort table and a KPI series.
const MaxCohortMonths = 36

// CohortTable is the retention of customers by the month of their first purchase: of the customers
// whose first purchase ever (a purchase as in KPIs) falls in a month, how many made a purchase in
// each later month. Months are calendar months in UTC.
type CohortTable struct {
	Start  time.Time // the first cohort's month (its first day, 00:00 UTC)
	Months int       // cohorts: Start and the Months−1 months after it
	// Cohorts has one row per month, oldest first. Active[k] counts the cohort's customers with a
	// purchase in the k-th month after their first (Active[0] = Customers); a cohort has a column for
	// every month up to the table's end, so the last cohort has one.
	Cohorts []Cohort
}

// Cohort is one row of a CohortTable.
type Cohort struct {
	Month     time.Time
	Customers int64
	Active    []int64
}

// monthStart returns the first instant of t's month in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// monthIndexCase is SQL mapping col, known to lie in [Start, Start+months), to its month index; its
// arguments are the month boundaries.
func monthIndexCase(d dialect, col string, start time.Time, months int) (string, []any) {
	if months == 1 {
		return "0", nil
	}
	var b strings.Builder
	args := make([]any, 0, months)
	b.WriteString("CASE")
	for i := 1; i < months; i++ {
		b.WriteString(" WHEN " + col + " < ? THEN " + fmt.Sprint(i-1))
		args = append(args, d.ts(start.AddDate(0, i, 0)))
	}
	b.WriteString(" ELSE " + fmt.Sprint(months-1) + " END")
	return b.String(), args
}

// CohortRetention returns the cohort table of the months cohorts starting with start's month.
func (db *DB) CohortRetention(ctx context.Context, tenantID string, start time.Time, months int) (CohortTable, error) {
	if months < 1 || months > MaxCohortMonths {
		return CohortTable{}, fmt.Errorf("cohort retention: %d months, want 1 to %d", months, MaxCohortMonths)
	}
	start = monthStart(start)
	end := start.AddDate(0, months, 0)
	t := CohortTable{Start: start, Months: months, Cohorts: make([]Cohort, months)}
	for i := range t.Cohorts {
		t.Cohorts[i] = Cohort{Month: start.AddDate(0, i, 0), Active: make([]int64, months-i)}
	}
	ts := db.d.ts
	cohortCase, cohortArgs := monthIndexCase(db.d, "f.first_at", start, months)
	orderCase, orderArgs := monthIndexCase(db.d, "o.created_at", start, months)
	// Per (cohort, month of purchase): distinct customers. f is every customer's first purchase ever,
	// restricted to the cohorts' months; o their purchases in the table's months.
	q := `SELECT x.c, x.m, COUNT(DISTINCT x.customer_id) FROM (
		SELECT o.customer_id, ` + cohortCase + ` AS c, ` + orderCase + ` AS m
		FROM orders o JOIN (
			SELECT o.customer_id, MIN(o.created_at) AS first_at FROM orders o WHERE ` + purchaseWhere + `
			GROUP BY o.customer_id) f ON f.customer_id = o.customer_id
		WHERE ` + purchaseWhere + ` AND f.first_at >= ? AND f.first_at < ? AND o.created_at >= ? AND o.created_at < ?
	) x GROUP BY x.c, x.m`
	args := append(append(cohortArgs, orderArgs...), tenantID, tenantID, ts(start), ts(end), ts(start), ts(end))
	rows, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return CohortTable{}, fmt.Errorf("cohort retention of tenant %s: %w", tenantID, err)
	}
	for rows.Next() {
		var c, m int
		var n int64
		if err := rows.Scan(&c, &m, &n); err != nil {
			rows.Close()
			return CohortTable{}, fmt.Errorf("cohort retention of tenant %s: %w", tenantID, err)
		}
		if c < 0 || c >= months || m < c || m >= months {
			continue // cannot happen: a purchase is never before its customer's first
		}
		t.Cohorts[c].Active[m-c] = n
		if m == c {
			t.Cohorts[c].Customers = n
		}
	}
	if err := closeRows(rows); err != nil {
		return CohortTable{}, fmt.Errorf("cohort retention of tenant %s: %w", tenantID, err)
	}
	return t, nil
}

// KPISeries returns the tenant's KPIs (CustomerKPIs) for months consecutive calendar months, the
// first being start's month; the last period ends at until instead of its month's end when until
// is earlier (a month to date), and a period that would start at or after until is not computed.
// until zero means no cut.
func (db *DB) KPISeries(ctx context.Context, tenantID string, start time.Time, months int, until time.Time) ([]KPIs, error) {
	if months < 1 || months > MaxCohortMonths {
		return nil, fmt.Errorf("KPI series: %d months, want 1 to %d", months, MaxCohortMonths)
	}
	start = monthStart(start)
	out := make([]KPIs, 0, months)
	for i := range months {
		from, to := start.AddDate(0, i, 0), start.AddDate(0, i+1, 0)
		if !until.IsZero() {
			if !from.Before(until) {
				break
			}
			if until.Before(to) {
				to = until
			}
		}
		k, err := db.CustomerKPIs(ctx, tenantID, from, to)
		if err != nil {
			return nil, fmt.Errorf("KPI series: %w", err)
		}
		out = append(out, k)
	}
	return out, nil
}
