package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Identity is what an event tells about a person. ExternalID is source-qualified ("shopify:123",
// "orders:c-42").
type Identity struct{ Email, ExternalID, ZendeskUserID, Name string }

// Customer is one person of a tenant, as matched across shop and helpdesk.
type Customer struct {
	TenantID       string
	ID             int64
	Email          string
	ExternalID     string
	ZendeskUserID  string
	Name           string
	CreatedAt      time.Time
	DataVersion    int64     // bumped by every stored change to the customer's orders, refunds or tickets
	DataChangedAt  time.Time // when DataVersion last changed (CreatedAt until then)
	ScoredVersion  int64     // the DataVersion the stored score was computed from
	Score          *Score    // nil until first scored
	UserTagsPushed []string  // managed tags last written to the helpdesk user; nil = never pushed
}

// normEmail is the store's matching form of an address. Callers normalise with
// integrations.NormalizeEmail already; lower-casing again here keeps lookups exact even for a caller
// that forgot, without rejecting anything.
func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// identityCols are the identity columns in matching precedence.
var identityCols = [...]string{"email", "external_id", "zendesk_user_id"}

// ResolveCustomer finds the tenant's customer matching the identity — by Email first, then
// ExternalID, then ZendeskUserID — creating one when none matches. It links the identity's other
// non-empty fields onto the matched row where that row's field is empty, unless another customer
// already owns that value (customers are never merged or stolen from), and updates Name when the
// identity has one. An identity without email, external id and zendesk user id is a guest: (0,
// false, nil).
//
// Concurrency: the partial unique indexes on the three identity columns are the arbiter. A
// transaction that loses an insert (or link) race to a concurrent one fails with a unique violation,
// is rolled back and runs again, and then finds the winner's row: two resolutions of the same new
// email end with one customer.
func (db *DB) ResolveCustomer(ctx context.Context, tenantID string, id Identity) (customerID int64, created bool, err error) {
	vals := [...]string{normEmail(id.Email), strings.TrimSpace(id.ExternalID), strings.TrimSpace(id.ZendeskUserID)}
	if vals[0] == "" && vals[1] == "" && vals[2] == "" {
		return 0, false, nil
	}
	name := strings.TrimSpace(id.Name)
	err = db.inWriteTx(ctx, func(tx runner) error {
		customerID, created = 0, false
		var cur [3]string
		var curName string
		for i, col := range identityCols {
			if vals[i] == "" {
				continue
			}
			var e, x, z sql.NullString
			err := tx.queryRow(ctx, `SELECT id, email, external_id, zendesk_user_id, name FROM customers
				WHERE tenant_id = ? AND `+col+` = ?`+tx.d.forUpdate(), tenantID, vals[i]).
				Scan(&customerID, &e, &x, &z, &curName)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("find customer by %s: %w", col, err)
			}
			cur = [3]string{e.String, x.String, z.String}
			break
		}

		if customerID == 0 {
			at := tx.d.ts(now())
			err := tx.queryRow(ctx, `INSERT INTO customers (tenant_id, email, external_id, zendesk_user_id, name,
				created_at, data_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				tenantID, nullStr(vals[0]), nullStr(vals[1]), nullStr(vals[2]), name, at, at).Scan(&customerID)
			if isForeignKeyViolation(err) {
				return fmt.Errorf("create customer: tenant %s: %w", tenantID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("create customer: %w", retryOnUnique(err))
			}
			created = true
			return nil
		}

		// Link what the matched row lacks. A value another customer owns stays with that customer:
		// e.g. an order whose email matches A but whose shop customer id is B's does not re-home B's id.
		var sets []string
		var args []any
		for i, col := range identityCols {
			if vals[i] == "" || cur[i] != "" {
				continue
			}
			var other int64
			err := tx.queryRow(ctx, `SELECT id FROM customers WHERE tenant_id = ? AND `+col+` = ?`,
				tenantID, vals[i]).Scan(&other)
			if err == nil {
				continue // owned by another customer
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("check %s owner: %w", col, err)
			}
			sets = append(sets, col+" = ?")
			args = append(args, vals[i])
		}
		if name != "" && name != curName {
			sets = append(sets, "name = ?")
			args = append(args, name)
		}
		if len(sets) == 0 {
			return nil
		}
		args = append(args, tenantID, customerID)
		if _, err := tx.exec(ctx, `UPDATE customers SET `+strings.Join(sets, ", ")+
			` WHERE tenant_id = ? AND id = ?`, args...); err != nil {
			// A concurrent transaction linked the same value to another customer after our check.
			return fmt.Errorf("link identity to customer %d: %w", customerID, retryOnUnique(err))
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("resolve customer of tenant %s: %w", tenantID, err)
	}
	return customerID, created, nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// customerSelect reads a customer with its score (LEFT JOIN: score columns are NULL until scored).
const customerSelect = `SELECT c.tenant_id, c.id, COALESCE(c.email, ''), COALESCE(c.external_id, ''),
	COALESCE(c.zendesk_user_id, ''), c.name, c.created_at, c.data_version, c.data_changed_at,
	c.scored_version, c.user_tags_pushed, ` + scoreColumns + `
	FROM customers c LEFT JOIN scores s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id`

func scanCustomer(sc interface{ Scan(...any) error }) (*Customer, error) {
	var c Customer
	var pushed sql.NullString
	var s scoreRow
	dest := append([]any{&c.TenantID, &c.ID, &c.Email, &c.ExternalID, &c.ZendeskUserID, &c.Name,
		timeCol{&c.CreatedAt}, &c.DataVersion, timeCol{&c.DataChangedAt}, &c.ScoredVersion, &pushed},
		s.dest()...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	var err error
	if c.UserTagsPushed, err = decodeTagSet(pushed); err != nil {
		return nil, fmt.Errorf("customer %d: user tags pushed: %w", c.ID, err)
	}
	if c.Score, err = s.score(); err != nil {
		return nil, fmt.Errorf("customer %d: %w", c.ID, err)
	}
	return &c, nil
}

func (db *DB) customerWhere(ctx context.Context, what, where string, args ...any) (*Customer, error) {
	c, err := scanCustomer(db.reader().queryRow(ctx, customerSelect+` WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("customer %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get customer %s: %w", what, err)
	}
	return c, nil
}

// GetCustomer returns a customer with its score; ErrNotFound.
func (db *DB) GetCustomer(ctx context.Context, tenantID string, customerID int64) (*Customer, error) {
	return db.customerWhere(ctx, fmt.Sprintf("%d of tenant %s", customerID, tenantID),
		`c.tenant_id = ? AND c.id = ?`, tenantID, customerID)
}

// CustomerByZendeskUser returns the customer linked to a helpdesk user; ErrNotFound.
func (db *DB) CustomerByZendeskUser(ctx context.Context, tenantID, zendeskUserID string) (*Customer, error) {
	zendeskUserID = strings.TrimSpace(zendeskUserID)
	if zendeskUserID == "" {
		return nil, fmt.Errorf("customer with empty zendesk user id: %w", ErrNotFound)
	}
	return db.customerWhere(ctx, fmt.Sprintf("with zendesk user %s of tenant %s", zendeskUserID, tenantID),
		`c.tenant_id = ? AND c.zendesk_user_id = ?`, tenantID, zendeskUserID)
}

// CustomerByEmail returns the customer with that email (matched case-insensitively); ErrNotFound.
func (db *DB) CustomerByEmail(ctx context.Context, tenantID, email string) (*Customer, error) {
	email = normEmail(email)
	if email == "" {
		return nil, fmt.Errorf("customer with empty email: %w", ErrNotFound)
	}
	// The address itself is personal data: keep it out of the error text, which ends up in logs.
	return db.customerWhere(ctx, "with that email of tenant "+tenantID,
		`c.tenant_id = ? AND c.email = ?`, tenantID, email)
}

// CustomerIDs returns the tenant's customer ids greater than afterID, ascending, at most limit.
func (db *DB) CustomerIDs(ctx context.Context, tenantID string, afterID int64, limit int) ([]int64, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("customer ids: limit %d must be positive", limit)
	}
	rows, err := db.reader().query(ctx, `SELECT id FROM customers WHERE tenant_id = ? AND id > ?
		ORDER BY id LIMIT ?`, tenantID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("customer ids of tenant %s: %w", tenantID, err)
	}
	defer rows.Close()
	ids := make([]int64, 0, limit)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("customer ids of tenant %s: %w", tenantID, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("customer ids of tenant %s: %w", tenantID, err)
	}
	return ids, nil
}

// tagSet is the stored form of a set of tags: sorted, de-duplicated, without empty strings.
func tagSet(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// encodeTagSet gives the canonical JSON text of a tag set. Equal sets give equal text, which lets
// SQL compare sets with "=". nil encodes as SQL NULL ("never pushed"), distinct from "[]".
func encodeTagSet(tags []string) (any, error) {
	if tags == nil {
		return nil, nil
	}
	b, err := json.Marshal(tagSet(tags))
	if err != nil {
		return nil, fmt.Errorf("encode tags: %w", err)
	}
	return string(b), nil
}

func decodeTagSet(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	out := []string{}
	if err := json.Unmarshal([]byte(s.String), &out); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	return out, nil
}

// sameTags compares two tag lists as sets; nil and empty are the same set.
func sameTags(a, b []string) bool {
	return slices.Equal(tagSet(a), tagSet(b))
}
