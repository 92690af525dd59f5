package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clvd/clvd/integrations"
)

// OrderRecord is a stored order with its refunds applied.
type OrderRecord struct {
	Source, OrderID      string
	CustomerID           int64
	CreatedAt, UpdatedAt time.Time
	Currency             string
	TotalMinor           int64
	RefundedMinor        int64 // sum of its refunds
	NetMinor             int64 // 0 when cancelled or refunded, else max(0, Total - Refunded)
	Status               integrations.OrderStatus
}

// statusRank orders statuses of the same order version: a terminal state is never undone by a
// late, less final delivery carrying the same UpdatedAt.
func statusRank(s integrations.OrderStatus) int {
	switch s {
	case integrations.OrderPaid:
		return 1
	case integrations.OrderRefunded, integrations.OrderCancelled:
		return 2
	}
	return 0
}

// netMinor is what an order is worth after refunds.
func netMinor(status integrations.OrderStatus, total, refunded int64) int64 {
	if status == integrations.OrderCancelled || status == integrations.OrderRefunded {
		return 0
	}
	return max(0, total-refunded)
}

func validateOrder(o integrations.Order) error {
	switch {
	case o.Source == "":
		return integrations.Malformed("order without source")
	case o.OrderID == "":
		return integrations.Malformed("order without id")
	case !o.Status.Valid():
		return integrations.Malformed("order %s: unknown status %q", o.OrderID, o.Status)
	case o.Currency == "":
		return integrations.Malformed("order %s: no currency", o.OrderID)
	case o.TotalMinor < 0:
		return integrations.Malformed("order %s: negative total %d", o.OrderID, o.TotalMinor)
	case o.CreatedAt.IsZero():
		return integrations.Malformed("order %s: no creation time", o.OrderID)
	case o.UpdatedAt.IsZero():
		// UpdatedAt is the version; without it a stale redelivery could not be told from a new one.
		return integrations.Malformed("order %s: no update time", o.OrderID)
	}
	return nil
}

// ApplyOrder upserts the order by (tenant, Source, OrderID) for customer customerID (0: guest).
//
// Version rule: a delivery with an UpdatedAt older than the stored one changes nothing; at an equal
// UpdatedAt it applies only if its status ranks at least as high as the stored one (open < paid <
// refunded = cancelled), so a late "paid" never undoes a "cancelled" of the same version. An identical
// redelivery changes nothing. A delivery that applies replaces every field, customer included (the
// caller resolves the customer from the same payload). When something changed, the DataVersion of
// the order's customer is bumped, and that of the previous customer if the order moved.
//
// Invalid orders are rejected with an error wrapping integrations.ErrMalformed; an unknown customer
// or tenant with one wrapping ErrNotFound.
func (db *DB) ApplyOrder(ctx context.Context, tenantID string, customerID int64, o integrations.Order) (changed bool, err error) {
	if err := validateOrder(o); err != nil {
		return false, err
	}
	o.CreatedAt, o.UpdatedAt = utcMicro(o.CreatedAt), utcMicro(o.UpdatedAt)
	err = db.inWriteTx(ctx, func(tx runner) error {
		changed = false
		var (
			cur      OrderRecord
			curCust  sql.NullInt64
			curState string
		)
		err := tx.queryRow(ctx, `SELECT customer_id, created_at, updated_at, currency, total_minor, status
			FROM orders WHERE tenant_id = ? AND source = ? AND order_id = ?`+tx.d.forUpdate(),
			tenantID, o.Source, o.OrderID).Scan(&curCust, timeCol{&cur.CreatedAt}, timeCol{&cur.UpdatedAt},
			&cur.Currency, &cur.TotalMinor, &curState)
		if errors.Is(err, sql.ErrNoRows) {
			// Bump first: it also proves the customer exists (ErrNotFound rather than an FK error).
			if err := bumpCustomers(ctx, tx, tenantID, customerID); err != nil {
				return err
			}
			_, err := tx.exec(ctx, `INSERT INTO orders (tenant_id, source, order_id, customer_id, created_at,
				updated_at, currency, total_minor, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				tenantID, o.Source, o.OrderID, nullID(customerID), tx.d.ts(o.CreatedAt), tx.d.ts(o.UpdatedAt),
				o.Currency, o.TotalMinor, string(o.Status))
			if isForeignKeyViolation(err) {
				return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("insert: %w", retryOnUnique(err))
			}
			changed = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stored order: %w", err)
		}
		cur.Status = integrations.OrderStatus(curState)
		cur.CustomerID = curCust.Int64

		switch {
		case o.UpdatedAt.Before(cur.UpdatedAt):
			return nil // an older version
		case o.UpdatedAt.Equal(cur.UpdatedAt) && statusRank(o.Status) < statusRank(cur.Status):
			return nil // same version, less final status: a late delivery
		case cur.CustomerID == customerID && cur.CreatedAt.Equal(o.CreatedAt) && cur.UpdatedAt.Equal(o.UpdatedAt) &&
			cur.Currency == o.Currency && cur.TotalMinor == o.TotalMinor && cur.Status == o.Status:
			return nil // identical redelivery
		}
		if err := bumpCustomers(ctx, tx, tenantID, customerID, cur.CustomerID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE orders SET customer_id = ?, created_at = ?, updated_at = ?, currency = ?,
			total_minor = ?, status = ? WHERE tenant_id = ? AND source = ? AND order_id = ?`,
			nullID(customerID), tx.d.ts(o.CreatedAt), tx.d.ts(o.UpdatedAt), o.Currency, o.TotalMinor,
			string(o.Status), tenantID, o.Source, o.OrderID); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply order %s/%s of tenant %s: %w", o.Source, o.OrderID, tenantID, err)
	}
	return changed, nil
}

// ApplyRefund records a refund once, keyed by (tenant, Source, RefundID); a refund already present
// changes nothing. Refunds may arrive before their order: they are kept and count once the order
// exists. It returns the order's customer (0 if the order is not known yet or is a guest order) and
// bumps that customer's DataVersion when the refund was new.
func (db *DB) ApplyRefund(ctx context.Context, tenantID string, r integrations.Refund) (customerID int64, changed bool, err error) {
	switch {
	case r.Source == "" || r.OrderID == "" || r.RefundID == "":
		return 0, false, integrations.Malformed("refund needs source, order id and refund id (got %q, %q, %q)", r.Source, r.OrderID, r.RefundID)
	case r.AmountMinor < 0:
		return 0, false, integrations.Malformed("refund %s: negative amount %d", r.RefundID, r.AmountMinor)
	}
	created := utcMicro(r.CreatedAt)
	if created.IsZero() {
		created = now()
	}
	err = db.inWriteTx(ctx, func(tx runner) error {
		customerID, changed = 0, false
		res, err := tx.exec(ctx, `INSERT INTO refunds (tenant_id, source, refund_id, order_id, amount_minor,
			currency, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, source, refund_id) DO NOTHING`,
			tenantID, r.Source, r.RefundID, r.OrderID, r.AmountMinor, r.Currency, tx.d.ts(created))
		if isForeignKeyViolation(err) {
			return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return err
		}
		changed = n == 1
		var cust sql.NullInt64
		err = tx.queryRow(ctx, `SELECT customer_id FROM orders WHERE tenant_id = ? AND source = ? AND order_id = ?`,
			tenantID, r.Source, r.OrderID).Scan(&cust)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read order: %w", err)
		}
		customerID = cust.Int64
		if changed {
			return bumpCustomers(ctx, tx, tenantID, customerID)
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("apply refund %s/%s of tenant %s: %w", r.Source, r.RefundID, tenantID, err)
	}
	return customerID, changed, nil
}

// orderSelect reads orders with the sum of their refunds (an indexed correlated subquery: only the
// order's own refunds are summed).
const orderSelect = `SELECT o.source, o.order_id, COALESCE(o.customer_id, 0), o.created_at, o.updated_at,
	o.currency, o.total_minor, o.status,
	COALESCE((SELECT CAST(SUM(r.amount_minor) AS BIGINT) FROM refunds r
		WHERE r.tenant_id = o.tenant_id AND r.source = o.source AND r.order_id = o.order_id), 0)
	FROM orders o`

func scanOrders(rows *sql.Rows) ([]OrderRecord, error) {
	defer rows.Close()
	var out []OrderRecord
	for rows.Next() {
		var o OrderRecord
		var status string
		if err := rows.Scan(&o.Source, &o.OrderID, &o.CustomerID, timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt},
			&o.Currency, &o.TotalMinor, &status, &o.RefundedMinor); err != nil {
			return nil, err
		}
		o.Status = integrations.OrderStatus(status)
		o.NetMinor = netMinor(o.Status, o.TotalMinor, o.RefundedMinor)
		out = append(out, o)
	}
	return out, rows.Err()
}

// CustomerOrders returns the customer's orders by CreatedAt, then OrderID.
func (db *DB) CustomerOrders(ctx context.Context, tenantID string, customerID int64) ([]OrderRecord, error) {
	rows, err := db.reader().query(ctx, orderSelect+` WHERE o.tenant_id = ? AND o.customer_id = ?
		ORDER BY o.created_at, o.order_id`, tenantID, customerID)
	if err != nil {
		return nil, fmt.Errorf("orders of customer %d: %w", customerID, err)
	}
	orders, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("orders of customer %d: %w", customerID, err)
	}
	return orders, nil
}

// ForEachCustomerOrders calls fn for every customer of the tenant that has at least one order, in
// customer id order, with its orders (as CustomerOrders). It reads batch customers at a time by keyset
// pagination, so memory is bounded by one batch's orders and no query scans past what it returns. fn
// runs with no database resources held, so it may write (e.g. SaveScore); batches are separate
// snapshots. An error from fn stops the walk and is returned.
func (db *DB) ForEachCustomerOrders(ctx context.Context, tenantID string, batch int, fn func(customerID int64, orders []OrderRecord) error) error {
	if batch <= 0 {
		return fmt.Errorf("for each customer's orders: batch %d must be positive", batch)
	}
	after := int64(0)
	for {
		var orders []OrderRecord
		var ids []int64
		err := db.inReadTx(ctx, func(tx runner) error {
			rows, err := tx.query(ctx, `SELECT DISTINCT customer_id FROM orders
				WHERE tenant_id = ? AND customer_id > ? ORDER BY customer_id LIMIT ?`, tenantID, after, batch)
			if err != nil {
				return err
			}
			ids = ids[:0]
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			// The ids are consecutive among customers with orders, so the range holds exactly their orders.
			rows, err = tx.query(ctx, orderSelect+` WHERE o.tenant_id = ? AND o.customer_id BETWEEN ? AND ?
				ORDER BY o.customer_id, o.created_at, o.order_id`, tenantID, ids[0], ids[len(ids)-1])
			if err != nil {
				return err
			}
			orders, err = scanOrders(rows)
			return err
		})
		if err != nil {
			return fmt.Errorf("for each customer's orders of tenant %s: %w", tenantID, err)
		}
		for start := 0; start < len(orders); {
			end := start + 1
			for end < len(orders) && orders[end].CustomerID == orders[start].CustomerID {
				end++
			}
			if err := fn(orders[start].CustomerID, orders[start:end:end]); err != nil {
				return err
			}
			start = end
		}
		if len(ids) < batch {
			return nil
		}
		after = ids[len(ids)-1]
	}
}
