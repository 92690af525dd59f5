package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Outreach statuses.
const (
	OutreachPending = "pending" // claimed; its actions are not all done yet
	OutreachSent    = "sent"    // every configured action succeeded
	OutreachFailed  = "failed"  // an action failed for good (Error says why)
	OutreachDryRun  = "dry_run" // would have been contacted; nothing was sent
	OutreachCapped  = "capped"  // over the tenant's daily limit; nothing was sent
)

// Outreach is one retention outreach to a customer.
type Outreach struct {
	ID               int64
	TenantID         string
	CustomerID       int64
	Status           string
	Rules            []string // the rules that matched
	Reasons          []string // the customer's churn reasons at the time
	Tier             string
	ChurnBand        string
	PreviousTier     string
	PreviousBand     string
	PredictedCLV     float64
	HistoricMinor    int64
	Currency         string
	ChurnProbability float64
	ZendeskTicketID  string // the ticket opened for the retention team ("" until opened)
	WebhookStatus    int    // the outbound webhook's HTTP status (0: not sent)
	Attempts         int
	Error            string
	CreatedAt        time.Time
	CompletedAt      *time.Time
	// Email and Name are the customer's, filled by ListOutreach.
	Email, Name string
}

// OutreachClaim asks for an outreach to a customer, within limits.
type OutreachClaim struct {
	Outreach       // the record to create: CustomerID, Rules, Reasons, Tier, ... (ID, Status, CreatedAt are set by the claim)
	DryRun    bool // record as dry_run: nothing is sent
	Cooldown  time.Duration
	MaxPerDay int // real (or dry-run) outreach the tenant may start in 24 h; 0: no limit
	Now       time.Time
}

const outreachColumns = `o.id, o.tenant_id, o.customer_id, o.status, o.rules, o.reasons, o.tier, o.churn_band,
	o.previous_tier, o.previous_band, o.predicted_clv, o.historic_minor, o.currency, o.churn_probability,
	o.zendesk_ticket_id, o.webhook_status, o.attempts, o.error, o.created_at, o.completed_at`

func scanOutreach(sc interface{ Scan(...any) error }, extra ...any) (*Outreach, error) {
	var o Outreach
	var rules, reasons string
	dest := append([]any{&o.ID, &o.TenantID, &o.CustomerID, &o.Status, &rules, &reasons, &o.Tier, &o.ChurnBand,
		&o.PreviousTier, &o.PreviousBand, &o.PredictedCLV, &o.HistoricMinor, &o.Currency, &o.ChurnProbability,
		&o.ZendeskTicketID, &o.WebhookStatus, &o.Attempts, &o.Error, timeCol{&o.CreatedAt}, nullTimeCol{&o.CompletedAt}}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(rules), &o.Rules); err != nil {
		return nil, fmt.Errorf("outreach %d rules: %w", o.ID, err)
	}
	if err := json.Unmarshal([]byte(reasons), &o.Reasons); err != nil {
		return nil, fmt.Errorf("outreach %d reasons: %w", o.ID, err)
	}
	return &o, nil
}

// ClaimOutreach decides, atomically, whether the customer is contacted now, and records it:
//   - an outreach of the customer still pending (a retry, or a second worker) is returned as it is,
//     so its actions are resumed, never started twice;
//   - one of the same kind (real or dry run) created within the cooldown returns nil: nothing to do;
//   - over the tenant's daily limit, a "capped" record is returned (it does not start a cooldown);
//   - otherwise a new "pending" (or "dry_run") record is returned.
//
// Claims of one tenant are serialised (the tenant row is locked on PostgreSQL; SQLite has one
// writer), so two workers cannot both start an outreach or both slip under the limit.
func (db *DB) ClaimOutreach(ctx context.Context, tenantID string, c OutreachClaim) (*Outreach, error) {
	if c.Now.IsZero() {
		c.Now = now()
	}
	c.Now = utcMicro(c.Now)
	rules, err := json.Marshal(nonNil(c.Rules))
	if err != nil {
		return nil, err
	}
	reasons, err := json.Marshal(nonNil(c.Reasons))
	if err != nil {
		return nil, err
	}
	if err := checkFinite(map[string]float64{"PredictedCLV": c.PredictedCLV, "ChurnProbability": c.ChurnProbability}); err != nil {
		return nil, fmt.Errorf("claim outreach: %w", err)
	}
	var out *Outreach
	err = db.inWriteTx(ctx, func(tx runner) error {
		out = nil
		var tid string
		err := tx.queryRow(ctx, `SELECT id FROM tenants WHERE id = ?`+tx.d.forUpdate(), tenantID).Scan(&tid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		row := tx.queryRow(ctx, `SELECT `+outreachColumns+` FROM outreach o
			WHERE o.tenant_id = ? AND o.customer_id = ? AND o.status = ? ORDER BY o.id LIMIT 1`,
			tenantID, c.CustomerID, OutreachPending)
		pending, err := scanOutreach(row)
		switch {
		case err == nil:
			out = pending
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read pending outreach: %w", err)
		}
		kinds := []any{OutreachPending, OutreachSent, OutreachFailed}
		status := OutreachPending
		if c.DryRun {
			kinds = []any{OutreachDryRun, OutreachDryRun, OutreachDryRun}
			status = OutreachDryRun
		}
		var n int64
		args := append([]any{tenantID, c.CustomerID, tx.d.ts(c.Now.Add(-c.Cooldown))}, kinds...)
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM outreach WHERE tenant_id = ? AND customer_id = ?
			AND created_at > ? AND status IN (?, ?, ?)`, args...).Scan(&n); err != nil {
			return fmt.Errorf("read cooldown: %w", err)
		}
		if n > 0 {
			return nil
		}
		if c.MaxPerDay > 0 {
			args := append([]any{tenantID, tx.d.ts(c.Now.Add(-24 * time.Hour))}, kinds...)
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM outreach WHERE tenant_id = ? AND created_at > ?
				AND status IN (?, ?, ?)`, args...).Scan(&n); err != nil {
				return fmt.Errorf("read daily count: %w", err)
			}
			if n >= int64(c.MaxPerDay) {
				status = OutreachCapped
			}
		}
		o := c.Outreach
		o.TenantID, o.Status, o.CreatedAt = tenantID, status, c.Now
		o.ZendeskTicketID, o.WebhookStatus, o.Attempts, o.Error, o.CompletedAt = "", 0, 0, "", nil
		var completed any
		if status != OutreachPending {
			t := c.Now
			o.CompletedAt = &t
			completed = tx.d.ts(t)
		}
		err = tx.queryRow(ctx, `INSERT INTO outreach (tenant_id, customer_id, status, rules, reasons, tier, churn_band,
			previous_tier, previous_band, predicted_clv, historic_minor, currency, churn_probability, created_at, completed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			tenantID, o.CustomerID, status, string(rules), string(reasons), o.Tier, o.ChurnBand, o.PreviousTier,
			o.PreviousBand, o.PredictedCLV, o.HistoricMinor, o.Currency, o.ChurnProbability, tx.d.ts(c.Now), completed).Scan(&o.ID)
		if isForeignKeyViolation(err) {
			return fmt.Errorf("customer %d of tenant %s: %w", o.CustomerID, tenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert outreach: %w", err)
		}
		out = &o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim outreach for customer %d: %w", c.CustomerID, err)
	}
	return out, nil
}

// OutreachProgress is what an outreach's actions did; zero fields are left as they are.
type OutreachProgress struct {
	ZendeskTicketID string
	WebhookStatus   int
	Error           string // replaces the recorded error when Attempt or Status is set
	Attempt         bool   // count one more attempt
	Status          string // a final status (sent or failed) completes the outreach
}

// UpdateOutreach records progress on a pending outreach. It refuses (ErrNotFound) an outreach that
// does not exist or is no longer pending, so a late retry cannot overwrite a final record.
func (db *DB) UpdateOutreach(ctx context.Context, tenantID string, id int64, p OutreachProgress) error {
	set := "attempts = attempts + ?"
	attempt := 0
	if p.Attempt {
		attempt = 1
	}
	args := []any{attempt}
	if p.ZendeskTicketID != "" {
		set += ", zendesk_ticket_id = ?"
		args = append(args, p.ZendeskTicketID)
	}
	if p.WebhookStatus != 0 {
		set += ", webhook_status = ?"
		args = append(args, p.WebhookStatus)
	}
	if p.Attempt || p.Status != "" {
		set += ", error = ?"
		args = append(args, p.Error)
	}
	switch p.Status {
	case "":
	case OutreachSent, OutreachFailed:
		set += ", status = ?, completed_at = ?"
		args = append(args, p.Status, db.d.ts(now()))
	default:
		return fmt.Errorf("update outreach %d: status %q is not final", id, p.Status)
	}
	args = append(args, tenantID, id, OutreachPending)
	res, err := db.writer().exec(ctx, `UPDATE outreach SET `+set+` WHERE tenant_id = ? AND id = ? AND status = ?`, args...)
	if err != nil {
		return fmt.Errorf("update outreach %d: %w", id, err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("update outreach %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("update outreach %d of tenant %s: not pending: %w", id, tenantID, ErrNotFound)
	}
	return nil
}

// GetOutreach returns one outreach record.
func (db *DB) GetOutreach(ctx context.Context, tenantID string, id int64) (*Outreach, error) {
	o, err := scanOutreach(db.reader().queryRow(ctx, `SELECT `+outreachColumns+` FROM outreach o WHERE o.tenant_id = ? AND o.id = ?`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("outreach %d of tenant %s: %w", id, tenantID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get outreach %d: %w", id, err)
	}
	return o, nil
}

// OutreachFilter selects outreach records for ListOutreach.
type OutreachFilter struct {
	CustomerID int64  // 0: every customer
	Status     string // "": every status
	Limit      int    // default 50, at most 1000
	Cursor     string // next_cursor of the previous page
}

// ListOutreach returns the tenant's outreach records, newest first, one page at a time.
func (db *DB) ListOutreach(ctx context.Context, tenantID string, f OutreachFilter) ([]Outreach, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	q := `SELECT ` + outreachColumns + `, COALESCE(c.email, ''), c.name FROM outreach o
		JOIN customers c ON c.tenant_id = o.tenant_id AND c.id = o.customer_id WHERE o.tenant_id = ?`
	args := []any{tenantID}
	if f.CustomerID != 0 {
		q += ` AND o.customer_id = ?`
		args = append(args, f.CustomerID)
	}
	if f.Status != "" {
		q += ` AND o.status = ?`
		args = append(args, f.Status)
	}
	if f.Cursor != "" {
		before, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || before <= 0 {
			return nil, "", ErrBadCursor
		}
		q += ` AND o.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY o.id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list outreach: %w", err)
	}
	defer rows.Close()
	var out []Outreach
	for rows.Next() {
		var email, name string
		o, err := scanOutreach(rows, &email, &name)
		if err != nil {
			return nil, "", fmt.Errorf("list outreach: %w", err)
		}
		o.Email, o.Name = email, name
		out = append(out, *o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list outreach: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = strconv.FormatInt(out[len(out)-1].ID, 10)
	}
	return out, next, nil
}

// PendingOutreach returns outreach still pending that was created before olderThan, oldest first,
// at most limit: the recovery scan for outreach whose task the queue lost.
func (db *DB) PendingOutreach(ctx context.Context, olderThan time.Time, limit int) ([]Outreach, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("pending outreach: limit %d must be positive", limit)
	}
	rows, err := db.reader().query(ctx, `SELECT `+outreachColumns+` FROM outreach o
		WHERE o.status = ? AND o.created_at < ? ORDER BY o.created_at, o.id LIMIT ?`, OutreachPending, db.d.ts(olderThan), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outreach: %w", err)
	}
	defer rows.Close()
	var out []Outreach
	for rows.Next() {
		o, err := scanOutreach(rows)
		if err != nil {
			return nil, fmt.Errorf("pending outreach: %w", err)
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}
