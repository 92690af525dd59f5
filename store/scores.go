package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Score is a customer's computed value and churn risk.
type Score struct {
	Model             string // "bgnbd" or "heuristic"
	Currency          string
	HistoricMinor     int64   // exact net spend
	SimpleCLV         float64 // major units
	PredictedCLV      float64 // major units
	PAlive            float64
	ChurnProbability  float64
	ChurnBand         string // low|medium|high
	ChurnReasons      []string
	Tier              string // platinum|gold|silver|bronze|new
	Segment           string // RFM segment
	ExpectedPurchases float64
	ExpectedNextOrder *time.Time
	Orders            int
	LastOrder         *time.Time
	Tags              []string // managed tags the customer should carry; stored as a set (sorted, de-duplicated)
	// UserFields are the helpdesk user field values the customer's user should carry, by field key:
	// numbers, strings or nil (clears the field). Stored as canonical JSON (keys sorted), so equal
	// values are equal text. nil/empty: no fields written.
	UserFields map[string]any
	ScoredAt   time.Time
}

// scoreColumns are the score's columns, aliased s, in scoreRow.dest order.
const scoreColumns = `s.model, s.currency, s.historic_minor, s.simple_clv, s.predicted_clv, s.p_alive,
	s.churn_probability, s.churn_band, s.churn_reasons, s.tier, s.segment, s.expected_purchases,
	s.expected_next_order, s.orders, s.last_order, s.tags, s.user_fields, s.scored_at`

// scoreRow scans scoreColumns, which are all NULL when a LEFT JOIN found no score.
type scoreRow struct {
	model, currency, band, reasons, tier, segment, tags sql.NullString
	fields                                              sql.NullString
	historic, orders                                    sql.NullInt64
	simple, predicted, pAlive, churn, expected          sql.NullFloat64
	next, last                                          *time.Time
	scoredAt                                            time.Time
}

func (r *scoreRow) dest() []any {
	return []any{&r.model, &r.currency, &r.historic, &r.simple, &r.predicted, &r.pAlive, &r.churn,
		&r.band, &r.reasons, &r.tier, &r.segment, &r.expected, nullTimeCol{&r.next}, &r.orders,
		nullTimeCol{&r.last}, &r.tags, &r.fields, timeCol{&r.scoredAt}}
}

// score returns the scanned score, or nil when there was none.
func (r *scoreRow) score() (*Score, error) {
	if !r.model.Valid {
		return nil, nil
	}
	s := &Score{
		Model: r.model.String, Currency: r.currency.String, HistoricMinor: r.historic.Int64,
		SimpleCLV: r.simple.Float64, PredictedCLV: r.predicted.Float64, PAlive: r.pAlive.Float64,
		ChurnProbability: r.churn.Float64, ChurnBand: r.band.String, Tier: r.tier.String,
		Segment: r.segment.String, ExpectedPurchases: r.expected.Float64, ExpectedNextOrder: r.next,
		Orders: int(r.orders.Int64), LastOrder: r.last, ScoredAt: r.scoredAt,
	}
	if err := json.Unmarshal([]byte(r.reasons.String), &s.ChurnReasons); err != nil {
		return nil, fmt.Errorf("score churn reasons: %w", err)
	}
	tags, err := decodeTagSet(r.tags)
	if err != nil {
		return nil, fmt.Errorf("score tags: %w", err)
	}
	s.Tags = tags
	if s.UserFields, err = decodeFields(r.fields); err != nil {
		return nil, fmt.Errorf("score user fields: %w", err)
	}
	return s, nil
}

// encodeFields is the canonical text of a user field set: a JSON object with sorted keys ("{}" for
// none), so that equal sets are equal text in SQL too.
func encodeFields(f map[string]any) (string, error) {
	if len(f) == 0 {
		return "{}", nil
	}
	for k, v := range f {
		switch x := v.(type) {
		case nil, string, bool, int, int64:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return "", fmt.Errorf("user field %s is %v, want a finite number", k, x)
			}
		default:
			return "", fmt.Errorf("user field %s has type %T, want a number, string, bool or nil", k, v)
		}
	}
	b, err := json.Marshal(f) // encoding/json sorts map keys
	if err != nil {
		return "", fmt.Errorf("user fields: %w", err)
	}
	return string(b), nil
}

// decodeFields reads what encodeFields wrote; NULL or "{}" give nil.
func decodeFields(s sql.NullString) (map[string]any, error) {
	if !s.Valid || s.String == "" || s.String == "{}" {
		return nil, nil
	}
	var f map[string]any
	if err := json.Unmarshal([]byte(s.String), &f); err != nil {
		return nil, err
	}
	return f, nil
}

// checkFinite rejects NaN and ±Inf: SQLite would store NaN as NULL, and a non-finite value in a
// sorted column would poison every ranking built on it. A model that produces one has a bug the
// scorer must see.
func checkFinite(fields map[string]float64) error {
	for name, v := range fields {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s is %v, want a finite number", name, v)
		}
	}
	return nil
}

// SaveScore stores s as the customer's score computed from data version basedOnVersion. A score
// older than the stored one (basedOnVersion < ScoredVersion) is not written and stale is true, so a
// slow rescore never overwrites a newer one; an equal version replaces the score (e.g. after a model
// refit). A version the customer's data has not reached yet is an error: it would hide the next real
// change from StaleScores. ScoredAt defaults to now.
func (db *DB) SaveScore(ctx context.Context, tenantID string, customerID int64, basedOnVersion int64, s Score) (stale bool, err error) {
	if err := checkFinite(map[string]float64{"SimpleCLV": s.SimpleCLV, "PredictedCLV": s.PredictedCLV,
		"PAlive": s.PAlive, "ChurnProbability": s.ChurnProbability, "ExpectedPurchases": s.ExpectedPurchases}); err != nil {
		return false, fmt.Errorf("save score of customer %d: %w", customerID, err)
	}
	if s.Model == "" {
		return false, fmt.Errorf("save score of customer %d: empty model", customerID)
	}
	reasons, err := json.Marshal(s.ChurnReasons)
	if err != nil {
		return false, fmt.Errorf("save score of customer %d: churn reasons: %w", customerID, err)
	}
	tags, err := encodeTagSet(nonNil(s.Tags))
	if err != nil {
		return false, fmt.Errorf("save score of customer %d: %w", customerID, err)
	}
	fields, err := encodeFields(s.UserFields)
	if err != nil {
		return false, fmt.Errorf("save score of customer %d: %w", customerID, err)
	}
	scoredAt := s.ScoredAt
	if scoredAt.IsZero() {
		scoredAt = now()
	}
	var next, last time.Time
	if s.ExpectedNextOrder != nil {
		next = *s.ExpectedNextOrder
	}
	if s.LastOrder != nil {
		last = *s.LastOrder
	}

	err = db.inWriteTx(ctx, func(tx runner) error {
		stale = false
		var dataVersion, scoredVersion int64
		err := tx.queryRow(ctx, `SELECT data_version, scored_version FROM customers WHERE tenant_id = ? AND id = ?`+
			tx.d.forUpdate(), tenantID, customerID).Scan(&dataVersion, &scoredVersion)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("customer %d of tenant %s: %w", customerID, tenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read versions: %w", err)
		}
		if basedOnVersion < scoredVersion {
			stale = true
			return nil
		}
		if basedOnVersion > dataVersion {
			return fmt.Errorf("score based on version %d, but the customer's data is only at version %d", basedOnVersion, dataVersion)
		}
		_, err = tx.exec(ctx, `INSERT INTO scores (tenant_id, customer_id, model, currency, historic_minor,
			simple_clv, predicted_clv, p_alive, churn_probability, churn_band, churn_reasons, tier, segment,
			expected_purchases, expected_next_order, orders, last_order, tags, user_fields, scored_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, customer_id) DO UPDATE SET model = excluded.model,
			currency = excluded.currency, historic_minor = excluded.historic_minor,
			simple_clv = excluded.simple_clv, predicted_clv = excluded.predicted_clv,
			p_alive = excluded.p_alive, churn_probability = excluded.churn_probability,
			churn_band = excluded.churn_band, churn_reasons = excluded.churn_reasons, tier = excluded.tier,
			segment = excluded.segment, expected_purchases = excluded.expected_purchases,
			expected_next_order = excluded.expected_next_order, orders = excluded.orders,
			last_order = excluded.last_order, tags = excluded.tags, user_fields = excluded.user_fields,
			scored_at = excluded.scored_at`,
			tenantID, customerID, s.Model, s.Currency, s.HistoricMinor, s.SimpleCLV, s.PredictedCLV, s.PAlive,
			s.ChurnProbability, s.ChurnBand, string(reasons), s.Tier, s.Segment, s.ExpectedPurchases,
			tx.d.nullTS(next), s.Orders, tx.d.nullTS(last), tags, fields, tx.d.ts(scoredAt))
		if err != nil {
			return fmt.Errorf("write score: %w", err)
		}
		if _, err := tx.exec(ctx, `UPDATE customers SET scored_version = ? WHERE tenant_id = ? AND id = ?`,
			basedOnVersion, tenantID, customerID); err != nil {
			return fmt.Errorf("write scored version: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("save score of customer %d: %w", customerID, err)
	}
	return stale, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ForEachScore calls fn with every scored customer's score of the tenant, in customer id order,
// reading batch scores at a time (keyset pagination). fn runs with no database resources held, so it
// may write; scores saved meanwhile may or may not be seen. An error from fn stops the walk and is
// returned.
func (db *DB) ForEachScore(ctx context.Context, tenantID string, batch int, fn func(customerID int64, s Score) error) error {
	if batch <= 0 {
		return fmt.Errorf("for each score: batch %d must be positive", batch)
	}
	type item struct {
		id int64
		s  Score
	}
	after := int64(0)
	for {
		items := make([]item, 0, batch)
		err := func() error {
			rows, err := db.reader().query(ctx, `SELECT s.customer_id, `+scoreColumns+` FROM scores s
				WHERE s.tenant_id = ? AND s.customer_id > ? ORDER BY s.customer_id LIMIT ?`, tenantID, after, batch)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var it item
				var r scoreRow
				if err := rows.Scan(append([]any{&it.id}, r.dest()...)...); err != nil {
					return err
				}
				s, err := r.score()
				if err != nil {
					return fmt.Errorf("customer %d: %w", it.id, err)
				}
				it.s = *s
				items = append(items, it)
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("for each score of tenant %s: %w", tenantID, err)
		}
		for _, it := range items {
			if err := fn(it.id, it.s); err != nil {
				return err
			}
		}
		if len(items) < batch {
			return nil
		}
		after = items[len(items)-1].id
	}
}

// CustomerRef names a customer across tenants.
type CustomerRef struct {
	TenantID   string
	CustomerID int64
}

// StaleScores returns customers whose data changed after their score was computed (DataVersion >
// ScoredVersion) and before changedBefore, oldest change first, at most limit: rescoring work a
// lost queue message must not lose. changedBefore lets the recovery skip changes whose own rescore
// is probably still queued.
func (db *DB) StaleScores(ctx context.Context, changedBefore time.Time, limit int) ([]CustomerRef, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("stale scores: limit %d must be positive", limit)
	}
	// The predicate repeats customers_stale_idx's WHERE clause so the partial index is used.
	refs, err := db.customerRefs(ctx, `SELECT tenant_id, id FROM customers
		WHERE data_version > scored_version AND data_changed_at < ?
		ORDER BY data_changed_at, id LIMIT ?`, db.d.ts(changedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("stale scores: %w", err)
	}
	return refs, nil
}

func (db *DB) customerRefs(ctx context.Context, q string, args ...any) ([]CustomerRef, error) {
	rows, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CustomerRef
	for rows.Next() {
		var r CustomerRef
		if err := rows.Scan(&r.TenantID, &r.CustomerID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
