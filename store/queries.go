package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file holds the read models of the admin API: tenant settings, the filtered and sorted
// customer list, and the tenant KPIs. Everything is aggregated in SQL; nothing loads a tenant's
// orders into memory.

// CheckTenant returns nil when the tenant exists, else an error wrapping ErrNotFound. It reads no
// secrets, so it needs no cipher.
func (db *DB) CheckTenant(ctx context.Context, tenantID string) error {
	var one int
	err := db.reader().queryRow(ctx, `SELECT 1 FROM tenants WHERE id = ?`, tenantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("check tenant %s: %w", tenantID, err)
	}
	return nil
}

// TenantSettings returns the tenant's stored settings document ("{}" when unset); ErrNotFound.
func (db *DB) TenantSettings(ctx context.Context, tenantID string) (json.RawMessage, error) {
	var s string
	err := db.reader().queryRow(ctx, `SELECT settings FROM tenants WHERE id = ?`, tenantID).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("tenant settings of %s: %w", tenantID, err)
	}
	return json.RawMessage(s), nil
}

// SetTenantSettings replaces only the tenant's settings document (empty: "{}"), leaving its name
// and secrets alone, so a concurrent change of those is never overwritten; ErrNotFound. The document
// must be valid JSON; what it means is the caller's business (worker.ParseSettings).
func (db *DB) SetTenantSettings(ctx context.Context, tenantID string, settings json.RawMessage) error {
	doc, err := jsonDoc("tenant settings", settings)
	if err != nil {
		return fmt.Errorf("set settings of tenant %s: %w", tenantID, err)
	}
	res, err := db.writer().exec(ctx, `UPDATE tenants SET settings = ? WHERE id = ?`, doc, tenantID)
	if err != nil {
		return fmt.Errorf("set settings of tenant %s: %w", tenantID, err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("set settings of tenant %s: %w", tenantID, err)
	}
	if n == 0 {
		return fmt.Errorf("set settings of tenant %s: %w", tenantID, ErrNotFound)
	}
	return nil
}

// Customer list sort keys.
const (
	SortPredictedCLV = "predicted_clv" // Score.PredictedCLV
	SortHistoric     = "historic"      // Score.HistoricMinor (in each customer's own main currency)
	SortChurn        = "churn"         // Score.ChurnProbability
	SortLastOrder    = "last_order"    // Score.LastOrder; customers without one sort as the oldest
)

// MaxCustomerPage is the largest page ListCustomers returns.
const MaxCustomerPage = 500

// ErrBadCursor is returned (wrapped) for a cursor that ListCustomers did not produce, or that it
// produced for another sort or direction.
var ErrBadCursor = errors.New("invalid cursor")

// CustomerFilter selects, orders and pages ListCustomers. Empty Tier, Segment and ChurnBand match
// everything; values are compared exactly (an unknown value matches nothing).
type CustomerFilter struct {
	Tier, Segment, ChurnBand string
	Sort                     string // one of the Sort* constants; "" = SortPredictedCLV
	Asc                      bool   // ascending; the default is descending
	Limit                    int    // 1..MaxCustomerPage
	Cursor                   string // "" = first page; else the nextCursor of the previous page
}

// CustomerRow is one customer of a list, with its score.
type CustomerRow struct {
	ID            int64
	Email         string
	ExternalID    string
	ZendeskUserID string
	Name          string
	CreatedAt     time.Time
	Score         Score
}

// sortKey is how one sort key is written in SQL and carried in a cursor.
type sortKey struct {
	expr    string // SQL over the score row s; "?" is the NULL sentinel of lastOrderSentinel
	integer bool   // the key is an integer (or a time, as unix microseconds) rather than a float
	time    bool   // the key is a time
}

var sortKeys = map[string]sortKey{
	SortPredictedCLV: {expr: "s.predicted_clv"},
	SortHistoric:     {expr: "s.historic_minor", integer: true},
	SortChurn:        {expr: "s.churn_probability"},
	SortLastOrder:    {expr: "COALESCE(s.last_order, ?)", integer: true, time: true},
}

// lastOrderSentinel stands in for "no last order", before every real time.
var lastOrderSentinel = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)

// customerCursor is the position after the last row of a page: the row's sort value and id. It is
// tied to the sort and direction it was made for.
type customerCursor struct {
	Sort string  `json:"s"`
	Asc  bool    `json:"a,omitempty"`
	F    float64 `json:"f,omitempty"` // float keys
	I    int64   `json:"i,omitempty"` // integer keys; times as unix microseconds
	ID   int64   `json:"id"`
}

func (c customerCursor) encode() string {
	b, _ := json.Marshal(c) // plain fields: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCustomerCursor(s string) (customerCursor, error) {
	var c customerCursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, ErrBadCursor
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() || c.ID <= 0 {
		return c, ErrBadCursor
	}
	return c, nil
}

// ListCustomers returns one page of the tenant's scored customers (customers not scored yet have
// no tier, segment or churn band to filter or sort on, and are not listed), filtered by f, sorted by
// f.Sort then customer id (both in the chosen direction), after f.Cursor. nextCursor is "" on the
// last page. Keyset pagination: a page costs the same however deep it is, and rows inserted or
// rescored meanwhile never make a page repeat or skip a row that kept its sort value.
func (db *DB) ListCustomers(ctx context.Context, tenantID string, f CustomerFilter) (rows []CustomerRow, nextCursor string, err error) {
	if f.Sort == "" {
		f.Sort = SortPredictedCLV
	}
	key, ok := sortKeys[f.Sort]
	if !ok {
		return nil, "", fmt.Errorf("list customers: unknown sort %q", f.Sort)
	}
	if f.Limit < 1 || f.Limit > MaxCustomerPage {
		return nil, "", fmt.Errorf("list customers: limit %d: want 1 to %d", f.Limit, MaxCustomerPage)
	}
	keyExpr := key.expr
	var keyArgs []any
	if key.time {
		keyArgs = []any{db.d.ts(lastOrderSentinel)}
	}

	where := []string{"s.tenant_id = ?"}
	args := []any{tenantID}
	for _, eq := range []struct{ col, v string }{{"s.tier", f.Tier}, {"s.segment", f.Segment}, {"s.churn_band", f.ChurnBand}} {
		if eq.v != "" {
			where = append(where, eq.col+" = ?")
			args = append(args, eq.v)
		}
	}
	cmp, dir := "<", "DESC"
	if f.Asc {
		cmp, dir = ">", "ASC"
	}
	if f.Cursor != "" {
		c, err := decodeCustomerCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list customers: %w", err)
		}
		if c.Sort != f.Sort || c.Asc != f.Asc {
			return nil, "", fmt.Errorf("list customers: %w: it was made for another sort or order", ErrBadCursor)
		}
		var v any = c.F
		switch {
		case key.time:
			v = db.d.ts(time.UnixMicro(c.I))
		case key.integer:
			v = c.I
		}
		where = append(where, "("+keyExpr+", s.customer_id) "+cmp+" (?, ?)")
		args = append(args, keyArgs...)
		args = append(args, v, c.ID)
	}
	// The select list repeats the key so the cursor can be built from what the database compared.
	q := `SELECT c.id, COALESCE(c.email, ''), COALESCE(c.external_id, ''), COALESCE(c.zendesk_user_id, ''),
		c.name, c.created_at, ` + keyExpr + `, ` + scoreColumns + `
		FROM scores s JOIN customers c ON c.tenant_id = s.tenant_id AND c.id = s.customer_id
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY ` + keyExpr + ` ` + dir + `, s.customer_id ` + dir + ` LIMIT ?`
	allArgs := append(append([]any{}, keyArgs...), args...) // the key in the select list comes first
	allArgs = append(allArgs, keyArgs...)                   // then the one in ORDER BY
	allArgs = append(allArgs, f.Limit+1)

	type keyed struct {
		row CustomerRow
		f   float64
		i   int64
	}
	var got []keyed
	err = func() error {
		rs, err := db.reader().query(ctx, q, allArgs...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var k keyed
			var sr scoreRow
			var t time.Time
			dest := []any{&k.row.ID, &k.row.Email, &k.row.ExternalID, &k.row.ZendeskUserID, &k.row.Name,
				timeCol{&k.row.CreatedAt}}
			switch {
			case key.time:
				dest = append(dest, timeCol{&t})
			case key.integer:
				dest = append(dest, &k.i)
			default:
				dest = append(dest, &k.f)
			}
			if err := rs.Scan(append(dest, sr.dest()...)...); err != nil {
				return err
			}
			if key.time {
				k.i = t.UnixMicro()
			}
			s, err := sr.score()
			if err != nil {
				return fmt.Errorf("customer %d: %w", k.row.ID, err)
			}
			k.row.Score = *s
			got = append(got, k)
		}
		return rs.Err()
	}()
	if err != nil {
		return nil, "", fmt.Errorf("list customers of tenant %s: %w", tenantID, err)
	}
	if len(got) > f.Limit {
		got = got[:f.Limit]
		last := got[len(got)-1]
		nextCursor = customerCursor{Sort: f.Sort, Asc: f.Asc, F: last.f, I: last.i, ID: last.row.ID}.encode()
	}
	rows = make([]CustomerRow, len(got))
	for i, k := range got {
		rows[i] = k.row
	}
	return rows, nextCursor, nil
}

// ActiveWindow is how far back a purchase keeps a customer active for the KPIs: a customer is
// active at instant T when they have at least one purchase in [T − ActiveWindow, T).
const ActiveWindow = 365 * 24 * time.Hour

// KPIs are a tenant's customer figures for the period [From, To). A purchase is an order of an
// identified customer (not a guest) whose status is open or paid: cancelled and refunded orders are
// not purchases, as in the scores. An order counts in the period of its creation time; its net value
// is its total minus all its refunds (never below 0), whenever those were made.
type KPIs struct {
	From, To time.Time

	// Retention. ActiveAtStart: customers active at From. Retained: those of them still active at
	// To. ActiveAtEnd: customers active at To (retained or won). NewCustomers: customers whose first
	// purchase ever is in the period.
	ActiveAtStart, Retained, ActiveAtEnd, NewCustomers int64

	// The period's purchases. Buyers: customers with at least one; RepeatBuyers: with at least two.
	Buyers, RepeatBuyers, Orders int64
	GuestOrders                  int64 // open or paid orders without a customer: in no other figure

	Revenue       []CurrencyRevenue // per currency, by currency code
	RevenueByTier []TierRevenue     // by tier, then currency

	// Satisfaction ratings of tickets (guests' included) last updated in the period.
	RatingsGood, RatingsBad int64
}

// CurrencyRevenue is the net value of the period's purchases in one currency.
type CurrencyRevenue struct {
	Currency string
	Orders   int64
	NetMinor int64
}

// TierRevenue is the net value of the period's purchases by customers currently in Tier ("" for
// customers not scored yet), in one currency.
type TierRevenue struct {
	Tier      string
	Currency  string
	Customers int64
	Orders    int64
	NetMinor  int64
}

// ratio returns n/d, and false when d is 0.
func ratio(n, d int64) (float64, bool) {
	if d == 0 {
		return 0, false
	}
	return float64(n) / float64(d), true
}

// RetentionRate is Retained / ActiveAtStart; false when nobody was active at the start. Customers
// won during the period are not in it.
func (k KPIs) RetentionRate() (float64, bool) { return ratio(k.Retained, k.ActiveAtStart) }

// ChurnRate is 1 − RetentionRate: the share of the customers active at the start who were no longer
// active at the end (computed as lost / ActiveAtStart, so it is exact).
func (k KPIs) ChurnRate() (float64, bool) {
	return ratio(k.ActiveAtStart-k.Retained, k.ActiveAtStart)
}

// RepeatPurchaseRate is RepeatBuyers / Buyers.
func (k KPIs) RepeatPurchaseRate() (float64, bool) { return ratio(k.RepeatBuyers, k.Buyers) }

// PurchaseFrequency is Orders / Buyers: purchases per buying customer in the period.
func (k KPIs) PurchaseFrequency() (float64, bool) { return ratio(k.Orders, k.Buyers) }

// CSAT is RatingsGood / (RatingsGood + RatingsBad).
func (k KPIs) CSAT() (float64, bool) { return ratio(k.RatingsGood, k.RatingsGood+k.RatingsBad) }

// purchaseWhere restricts orders o to purchases of identified customers.
const purchaseWhere = `o.tenant_id = ? AND o.customer_id IS NOT NULL AND o.status IN ('open', 'paid')`

// periodPurchases is the period's purchases with their refunds summed (an indexed correlated
// subquery per order, as in orderSelect).
const periodPurchases = `SELECT o.customer_id, o.currency, o.total_minor,
	COALESCE((SELECT CAST(SUM(r.amount_minor) AS BIGINT) FROM refunds r
		WHERE r.tenant_id = o.tenant_id AND r.source = o.source AND r.order_id = o.order_id), 0) AS refunded
	FROM orders o WHERE ` + purchaseWhere + ` AND o.created_at >= ? AND o.created_at < ?`

// netExpr is a periodPurchases row's net value.
const netExpr = `CASE WHEN p.total_minor - p.refunded > 0 THEN p.total_minor - p.refunded ELSE 0 END`

// CustomerKPIs computes the tenant's KPIs for [from, to) in one read snapshot. Every figure is an
// aggregate computed by the database. to must not be before from.
func (db *DB) CustomerKPIs(ctx context.Context, tenantID string, from, to time.Time) (KPIs, error) {
	from, to = utcMicro(from), utcMicro(to)
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return KPIs{}, fmt.Errorf("customer KPIs: period [%v, %v) is not a period", from, to)
	}
	k := KPIs{From: from, To: to}
	err := db.inReadTx(ctx, func(tx runner) error {
		k = KPIs{From: from, To: to}
		ts := tx.d.ts
		// One pass over the purchases in [from − window, to): per customer, active at the start and
		// at the end.
		err := tx.queryRow(ctx, `SELECT CAST(COALESCE(SUM(a.at_start), 0) AS BIGINT),
			CAST(COALESCE(SUM(a.at_start * a.at_end), 0) AS BIGINT), CAST(COALESCE(SUM(a.at_end), 0) AS BIGINT)
			FROM (SELECT o.customer_id,
				MAX(CASE WHEN o.created_at >= ? AND o.created_at < ? THEN 1 ELSE 0 END) AS at_start,
				MAX(CASE WHEN o.created_at >= ? AND o.created_at < ? THEN 1 ELSE 0 END) AS at_end
				FROM orders o WHERE `+purchaseWhere+` AND o.created_at >= ? AND o.created_at < ?
				GROUP BY o.customer_id) a`,
			ts(from.Add(-ActiveWindow)), ts(from), ts(to.Add(-ActiveWindow)), ts(to),
			tenantID, ts(from.Add(-ActiveWindow)), ts(to)).Scan(&k.ActiveAtStart, &k.Retained, &k.ActiveAtEnd)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		err = tx.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT o.customer_id, MIN(o.created_at) AS first_at
			FROM orders o WHERE `+purchaseWhere+` AND o.created_at < ? GROUP BY o.customer_id) f
			WHERE f.first_at >= ?`, tenantID, ts(to), ts(from)).Scan(&k.NewCustomers)
		if err != nil {
			return fmt.Errorf("new customers: %w", err)
		}
		err = tx.queryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(b.n), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN b.n >= 2 THEN 1 ELSE 0 END), 0) AS BIGINT)
			FROM (SELECT o.customer_id, COUNT(*) AS n FROM orders o
				WHERE `+purchaseWhere+` AND o.created_at >= ? AND o.created_at < ? GROUP BY o.customer_id) b`,
			tenantID, ts(from), ts(to)).Scan(&k.Buyers, &k.Orders, &k.RepeatBuyers)
		if err != nil {
			return fmt.Errorf("buyers: %w", err)
		}
		err = tx.queryRow(ctx, `SELECT COUNT(*) FROM orders o WHERE o.tenant_id = ? AND o.customer_id IS NULL
			AND o.status IN ('open', 'paid') AND o.created_at >= ? AND o.created_at < ?`,
			tenantID, ts(from), ts(to)).Scan(&k.GuestOrders)
		if err != nil {
			return fmt.Errorf("guest orders: %w", err)
		}

		rows, err := tx.query(ctx, `SELECT p.currency, COUNT(*), CAST(COALESCE(SUM(`+netExpr+`), 0) AS BIGINT)
			FROM (`+periodPurchases+`) p GROUP BY p.currency ORDER BY p.currency`, tenantID, ts(from), ts(to))
		if err != nil {
			return fmt.Errorf("revenue: %w", err)
		}
		for rows.Next() {
			var r CurrencyRevenue
			if err := rows.Scan(&r.Currency, &r.Orders, &r.NetMinor); err != nil {
				rows.Close()
				return fmt.Errorf("revenue: %w", err)
			}
			k.Revenue = append(k.Revenue, r)
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("revenue: %w", err)
		}

		rows, err = tx.query(ctx, `SELECT COALESCE(s.tier, ''), p.currency, COUNT(DISTINCT p.customer_id), COUNT(*),
			CAST(COALESCE(SUM(`+netExpr+`), 0) AS BIGINT)
			FROM (`+periodPurchases+`) p
			LEFT JOIN scores s ON s.tenant_id = ? AND s.customer_id = p.customer_id
			GROUP BY COALESCE(s.tier, ''), p.currency ORDER BY COALESCE(s.tier, ''), p.currency`,
			tenantID, ts(from), ts(to), tenantID)
		if err != nil {
			return fmt.Errorf("revenue by tier: %w", err)
		}
		for rows.Next() {
			var r TierRevenue
			if err := rows.Scan(&r.Tier, &r.Currency, &r.Customers, &r.Orders, &r.NetMinor); err != nil {
				rows.Close()
				return fmt.Errorf("revenue by tier: %w", err)
			}
			k.RevenueByTier = append(k.RevenueByTier, r)
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("revenue by tier: %w", err)
		}

		err = tx.queryRow(ctx, `SELECT CAST(COALESCE(SUM(CASE WHEN t.satisfaction = 'good' THEN 1 ELSE 0 END), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN t.satisfaction = 'bad' THEN 1 ELSE 0 END), 0) AS BIGINT)
			FROM tickets t WHERE t.tenant_id = ? AND t.updated_at >= ? AND t.updated_at < ?
			AND t.satisfaction IN ('good', 'bad')`, tenantID, ts(from), ts(to)).Scan(&k.RatingsGood, &k.RatingsBad)
		if err != nil {
			return fmt.Errorf("satisfaction: %w", err)
		}
		return nil
	})
	if err != nil {
		return KPIs{}, fmt.Errorf("customer KPIs of tenant %s: %w", tenantID, err)
	}
	return k, nil
}

// closeRows closes rows and reports the iteration's error, if any.
func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}
