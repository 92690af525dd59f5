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

// ModelRecord is one model fit of a tenant; the history is kept.
type ModelRecord struct {
	ID              int64
	TenantID        string
	Kind            string // e.g. "bgnbd+gammagamma" or "heuristic"
	FittedAt        time.Time
	Params          json.RawMessage
	Customers       int
	RepeatCustomers int
	LogLik          float64 // NaN is kept (a failed fit has none)
	Converged       bool
	Seconds         float64
	Quality         json.RawMessage // free-form fit diagnostics
}

// SaveModel inserts a model record and sets m.ID. FittedAt defaults to now; empty Params and Quality
// are stored as "{}".
func (db *DB) SaveModel(ctx context.Context, m *ModelRecord) error {
	if m.Kind == "" {
		return errors.New("save model: empty kind")
	}
	params, err := jsonDoc("model params", m.Params)
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	quality, err := jsonDoc("model quality", m.Quality)
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if math.IsNaN(m.Seconds) || math.IsInf(m.Seconds, 0) {
		return fmt.Errorf("save model: seconds is %v", m.Seconds)
	}
	fitted := utcMicro(m.FittedAt)
	if fitted.IsZero() {
		fitted = now()
	}
	// SQLite cannot store NaN (it would become NULL silently); make that explicit in both dialects.
	var logLik any = m.LogLik
	if math.IsNaN(m.LogLik) {
		logLik = nil
	}
	var id int64
	err = db.writer().queryRow(ctx, `INSERT INTO models (tenant_id, kind, fitted_at, params, customers,
		repeat_customers, log_lik, converged, seconds, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		m.TenantID, m.Kind, db.d.ts(fitted), params, m.Customers, m.RepeatCustomers, logLik, m.Converged,
		m.Seconds, quality).Scan(&id)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("save model: tenant %s: %w", m.TenantID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("save model of tenant %s: %w", m.TenantID, err)
	}
	m.ID, m.FittedAt, m.Params, m.Quality = id, fitted, json.RawMessage(params), json.RawMessage(quality)
	return nil
}

const modelSelect = `SELECT id, tenant_id, kind, fitted_at, params, customers, repeat_customers, log_lik,
	converged, seconds, quality FROM models`

// modelOrder is newest first; id breaks ties between fits stamped with the same time.
const modelOrder = ` ORDER BY fitted_at DESC, id DESC`

func scanModel(sc interface{ Scan(...any) error }) (*ModelRecord, error) {
	var m ModelRecord
	var params, quality string
	var logLik sql.NullFloat64
	if err := sc.Scan(&m.ID, &m.TenantID, &m.Kind, timeCol{&m.FittedAt}, &params, &m.Customers,
		&m.RepeatCustomers, &logLik, &m.Converged, &m.Seconds, &quality); err != nil {
		return nil, err
	}
	m.LogLik = math.NaN()
	if logLik.Valid {
		m.LogLik = logLik.Float64
	}
	m.Params, m.Quality = json.RawMessage(params), json.RawMessage(quality)
	return &m, nil
}

// LatestModel returns the tenant's newest model; ErrNotFound if it has none.
func (db *DB) LatestModel(ctx context.Context, tenantID string) (*ModelRecord, error) {
	m, err := scanModel(db.reader().queryRow(ctx, modelSelect+` WHERE tenant_id = ?`+modelOrder+` LIMIT 1`, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("latest model of tenant %s: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("latest model of tenant %s: %w", tenantID, err)
	}
	return m, nil
}

// ListModels returns the tenant's models, newest first, at most limit.
func (db *DB) ListModels(ctx context.Context, tenantID string, limit int) ([]ModelRecord, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list models: limit %d must be positive", limit)
	}
	rows, err := db.reader().query(ctx, modelSelect+` WHERE tenant_id = ?`+modelOrder+` LIMIT ?`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("list models of tenant %s: %w", tenantID, err)
	}
	defer rows.Close()
	var out []ModelRecord
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, fmt.Errorf("list models of tenant %s: %w", tenantID, err)
		}
		out = append(out, *m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list models of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// PutTenantState stores a small JSON value under key for the tenant (e.g. tier cut-points),
// replacing any previous value.
func (db *DB) PutTenantState(ctx context.Context, tenantID, key string, value json.RawMessage) error {
	if key == "" {
		return errors.New("put tenant state: empty key")
	}
	if !json.Valid(value) {
		return fmt.Errorf("put tenant state %s: value is not valid JSON", key)
	}
	_, err := db.writer().exec(ctx, `INSERT INTO tenant_state (tenant_id, state_key, state_value, updated_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, state_key) DO UPDATE
		SET state_value = excluded.state_value, updated_at = excluded.updated_at`,
		tenantID, key, string(value), db.d.ts(now()))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("put tenant state %s: tenant %s: %w", key, tenantID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put tenant state %s of tenant %s: %w", key, tenantID, err)
	}
	return nil
}

// GetTenantState returns the value stored under key and when it was stored; ErrNotFound.
func (db *DB) GetTenantState(ctx context.Context, tenantID, key string) (json.RawMessage, time.Time, error) {
	var value string
	var at time.Time
	err := db.reader().queryRow(ctx, `SELECT state_value, updated_at FROM tenant_state
		WHERE tenant_id = ? AND state_key = ?`, tenantID, key).Scan(&value, timeCol{&at})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("tenant state %s of tenant %s: %w", key, tenantID, ErrNotFound)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("get tenant state %s of tenant %s: %w", key, tenantID, err)
	}
	return json.RawMessage(value), at, nil
}
