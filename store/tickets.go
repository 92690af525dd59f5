package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clvd/clvd/integrations"
)

// Ticket is the merged state of a helpdesk ticket.
type Ticket struct {
	TenantID, Source, TicketID string
	CustomerID                 int64
	RequesterID                string
	Subject                    string
	Status                     string
	Priority                   string
	Satisfaction               string
	CreatedAt                  time.Time // ticket creation (from the event), zero if unknown
	UpdatedAt                  time.Time // OccurredAt of the newest applied event
	TagsPushed                 []string  // managed tags last written to this ticket; nil = never
}

// ApplyTicketEvent merges one ticket event into the stored ticket, keyed by (tenant, Source,
// TicketID), and records (tenant, Source, EventID) as processed in the same transaction: an event id
// seen before changes nothing (changed=false).
//
// Merge rule: if ev.OccurredAt is at or after the ticket's UpdatedAt, every non-empty field of the
// event (Status, Priority, Satisfaction, Subject, RequesterID, TicketCreatedAt) overwrites and
// UpdatedAt becomes ev.OccurredAt; an older event only fills fields that are still empty. customerID
// is set when non-zero, except that an older event does not move a ticket that already has a
// customer. When the stored ticket changed, the DataVersion of its customer (and of the previous one,
// if it moved) is bumped.
//
// An event without EventID cannot be deduplicated; it is merged anyway, which is safe because the
// merge is idempotent (applying the same event twice leaves the same state).
func (db *DB) ApplyTicketEvent(ctx context.Context, tenantID string, customerID int64, ev integrations.TicketEvent) (changed bool, err error) {
	switch {
	case ev.Source == "" || ev.TicketID == "":
		return false, integrations.Malformed("ticket event needs source and ticket id (got %q, %q)", ev.Source, ev.TicketID)
	case ev.OccurredAt.IsZero():
		// OccurredAt orders events; without it a late delivery could not be told from a new one.
		return false, integrations.Malformed("ticket %s event %s: no occurrence time", ev.TicketID, ev.EventID)
	}
	occurred := utcMicro(ev.OccurredAt)
	ticketCreated := utcMicro(ev.TicketCreatedAt)

	err = db.inWriteTx(ctx, func(tx runner) error {
		changed = false
		at := tx.d.ts(now())
		if ev.EventID != "" {
			res, err := tx.exec(ctx, `INSERT INTO ticket_events (tenant_id, source, event_id, processed_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, source, event_id) DO NOTHING`,
				tenantID, ev.Source, ev.EventID, at)
			if isForeignKeyViolation(err) {
				return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("record event: %w", err)
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			if n == 0 {
				return nil // seen before
			}
		}

		cur, err := scanTicket(tx.queryRow(ctx, ticketSelect+` WHERE tenant_id = ? AND source = ? AND ticket_id = ?`+
			tx.d.forUpdate(), tenantID, ev.Source, ev.TicketID))
		if errors.Is(err, sql.ErrNoRows) {
			if err := bumpCustomers(ctx, tx, tenantID, customerID); err != nil {
				return err
			}
			_, err := tx.exec(ctx, `INSERT INTO tickets (tenant_id, source, ticket_id, customer_id, requester_id,
				subject, status, priority, satisfaction, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				tenantID, ev.Source, ev.TicketID, nullID(customerID), ev.RequesterID, ev.Subject, ev.Status,
				ev.Priority, ev.Satisfaction, tx.d.nullTS(ticketCreated), tx.d.ts(occurred))
			if isForeignKeyViolation(err) {
				return fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("insert ticket: %w", retryOnUnique(err))
			}
			changed = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stored ticket: %w", err)
		}

		next := *cur
		newer := !occurred.Before(cur.UpdatedAt)
		merge := func(dst *string, v string) {
			if v != "" && (newer || *dst == "") {
				*dst = v
			}
		}
		merge(&next.Status, ev.Status)
		merge(&next.Priority, ev.Priority)
		merge(&next.Satisfaction, ev.Satisfaction)
		merge(&next.Subject, ev.Subject)
		merge(&next.RequesterID, ev.RequesterID)
		if !ticketCreated.IsZero() && (newer || next.CreatedAt.IsZero()) {
			next.CreatedAt = ticketCreated
		}
		if customerID != 0 && (newer || next.CustomerID == 0) {
			next.CustomerID = customerID
		}
		if newer {
			next.UpdatedAt = occurred
		}
		if next.Status == cur.Status && next.Priority == cur.Priority && next.Satisfaction == cur.Satisfaction &&
			next.Subject == cur.Subject && next.RequesterID == cur.RequesterID && next.CreatedAt.Equal(cur.CreatedAt) &&
			next.CustomerID == cur.CustomerID && next.UpdatedAt.Equal(cur.UpdatedAt) {
			return nil
		}
		if err := bumpCustomers(ctx, tx, tenantID, next.CustomerID, cur.CustomerID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE tickets SET customer_id = ?, requester_id = ?, subject = ?, status = ?,
			priority = ?, satisfaction = ?, created_at = ?, updated_at = ?
			WHERE tenant_id = ? AND source = ? AND ticket_id = ?`,
			nullID(next.CustomerID), next.RequesterID, next.Subject, next.Status, next.Priority, next.Satisfaction,
			tx.d.nullTS(next.CreatedAt), tx.d.ts(next.UpdatedAt), tenantID, ev.Source, ev.TicketID); err != nil {
			return fmt.Errorf("update ticket: %w", err)
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply ticket event %s on %s/%s of tenant %s: %w", ev.EventID, ev.Source, ev.TicketID, tenantID, err)
	}
	return changed, nil
}

const ticketSelect = `SELECT tenant_id, source, ticket_id, COALESCE(customer_id, 0), requester_id, subject, status,
	priority, satisfaction, created_at, updated_at, tags_pushed FROM tickets`

func scanTicket(sc interface{ Scan(...any) error }) (*Ticket, error) {
	var t Ticket
	var pushed sql.NullString
	if err := sc.Scan(&t.TenantID, &t.Source, &t.TicketID, &t.CustomerID, &t.RequesterID, &t.Subject, &t.Status,
		&t.Priority, &t.Satisfaction, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}, &pushed); err != nil {
		return nil, err
	}
	var err error
	if t.TagsPushed, err = decodeTagSet(pushed); err != nil {
		return nil, fmt.Errorf("ticket %s: tags pushed: %w", t.TicketID, err)
	}
	return &t, nil
}

// GetTicket returns a stored ticket; ErrNotFound.
func (db *DB) GetTicket(ctx context.Context, tenantID, source, ticketID string) (*Ticket, error) {
	t, err := scanTicket(db.reader().queryRow(ctx, ticketSelect+` WHERE tenant_id = ? AND source = ? AND ticket_id = ?`,
		tenantID, source, ticketID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ticket %s/%s of tenant %s: %w", source, ticketID, tenantID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get ticket %s/%s: %w", source, ticketID, err)
	}
	return t, nil
}

// ticketOrder sorts tickets by creation time with unknown creation times last, then by id.
const ticketOrder = ` ORDER BY (created_at IS NULL), created_at, ticket_id`

// CustomerTickets returns the customer's tickets by CreatedAt (unknown last), then TicketID.
func (db *DB) CustomerTickets(ctx context.Context, tenantID string, customerID int64) ([]Ticket, error) {
	rows, err := db.reader().query(ctx, ticketSelect+` WHERE tenant_id = ? AND customer_id = ?`+ticketOrder,
		tenantID, customerID)
	if err != nil {
		return nil, fmt.Errorf("tickets of customer %d: %w", customerID, err)
	}
	defer rows.Close()
	var out []Ticket
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("tickets of customer %d: %w", customerID, err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tickets of customer %d: %w", customerID, err)
	}
	return out, nil
}

// PruneTicketEvents forgets processed ticket event ids recorded before olderThan and returns how
// many it removed. Event ids exist only to drop redeliveries, which webhook senders stop after a
// few days; without pruning the table grows with every event forever. Keep a generous margin.
// It deletes in small batches so that no single transaction holds SQLite's write lock for long.
func (db *DB) PruneTicketEvents(ctx context.Context, olderThan time.Time) (int64, error) {
	const batch = 5000
	var total int64
	for {
		res, err := db.writer().exec(ctx, `DELETE FROM ticket_events WHERE (tenant_id, source, event_id) IN (
			SELECT tenant_id, source, event_id FROM ticket_events WHERE processed_at < ? LIMIT ?)`,
			db.d.ts(olderThan), batch)
		if err != nil {
			return total, fmt.Errorf("prune ticket events: %w", err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return total, fmt.Errorf("prune ticket events: %w", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}
