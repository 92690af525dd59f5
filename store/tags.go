package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/clvd/clvd/integrations"
)

// Tag target kinds.
const (
	TagTargetUser   = "user"
	TagTargetTicket = "ticket"
)

// TagTarget is one helpdesk object that should carry the customer's managed tags.
type TagTarget struct {
	Kind   string   // "user" or "ticket"
	ID     string   // zendesk user id or ticket id
	Pushed []string // what was last pushed (nil = never)
	Status string   // tickets only
	// TagsDiffer says the tags need writing; for a user target the fields may differ instead.
	TagsDiffer bool
	// FieldsDiffer (users only) says the user fields need writing.
	FieldsDiffer bool
}

// TagPlan is what the tag pusher still has to write for one customer.
type TagPlan struct {
	CustomerID    int64
	ZendeskUserID string
	Desired       []string       // Score.Tags (nil if never scored → plan is empty)
	DesiredFields map[string]any // Score.UserFields, written to the user only
	Targets       []TagTarget    // only those whose Pushed differs from Desired (as sets), or (user) whose fields differ; the user target only when ZendeskUserID != ""
}

// unresolvedTicket is the SQL form of !integrations.TicketResolved(status); "" counts as unresolved.
const unresolvedTicket = `t.status NOT IN ('solved', 'closed')`

// TagPlan returns where the customer's desired tags (Score.Tags) are not yet written: the
// customer's helpdesk user, if linked, and its unresolved helpdesk tickets, each only when what was
// last pushed differs from the desired set. "Never pushed" counts as the empty set, so a customer
// whose desired set is empty needs nothing written anywhere. A customer never scored has an empty
// plan. ErrNotFound if the customer does not exist.
func (db *DB) TagPlan(ctx context.Context, tenantID string, customerID int64) (*TagPlan, error) {
	plan := &TagPlan{CustomerID: customerID}
	err := db.inReadTx(ctx, func(tx runner) error {
		plan.Targets = nil
		var zendeskUser, userPushed, desired, fieldsPushed, fields sql.NullString
		err := tx.queryRow(ctx, `SELECT c.zendesk_user_id, c.user_tags_pushed, s.tags, c.user_fields_pushed, s.user_fields
			FROM customers c LEFT JOIN scores s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id
			WHERE c.tenant_id = ? AND c.id = ?`, tenantID, customerID).Scan(&zendeskUser, &userPushed, &desired, &fieldsPushed, &fields)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("customer %d of tenant %s: %w", customerID, tenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read customer: %w", err)
		}
		plan.ZendeskUserID = zendeskUser.String
		if !desired.Valid {
			return nil // never scored
		}
		if plan.Desired, err = decodeTagSet(desired); err != nil {
			return err
		}
		if plan.DesiredFields, err = decodeFields(fields); err != nil {
			return fmt.Errorf("user fields: %w", err)
		}
		if plan.ZendeskUserID != "" {
			pushed, err := decodeTagSet(userPushed)
			if err != nil {
				return fmt.Errorf("user tags pushed: %w", err)
			}
			// Both sides are canonical text ("never pushed" counts as no fields), as in UnsyncedTags.
			want := fields.String
			if want == "" {
				want = "{}"
			}
			got := fieldsPushed.String
			if !fieldsPushed.Valid || got == "" {
				got = "{}"
			}
			tt := TagTarget{Kind: TagTargetUser, ID: plan.ZendeskUserID, Pushed: pushed,
				TagsDiffer: !sameTags(pushed, plan.Desired), FieldsDiffer: got != want}
			if tt.TagsDiffer || tt.FieldsDiffer {
				plan.Targets = append(plan.Targets, tt)
			}
		}
		rows, err := tx.query(ctx, `SELECT t.ticket_id, t.status, t.tags_pushed FROM tickets t
			WHERE t.tenant_id = ? AND t.customer_id = ? AND t.source = ? AND `+unresolvedTicket+ticketOrder,
			tenantID, customerID, integrations.SourceZendesk)
		if err != nil {
			return fmt.Errorf("read tickets: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var tt TagTarget
			var pushed sql.NullString
			if err := rows.Scan(&tt.ID, &tt.Status, &pushed); err != nil {
				return fmt.Errorf("read tickets: %w", err)
			}
			if tt.Pushed, err = decodeTagSet(pushed); err != nil {
				return fmt.Errorf("ticket %s tags pushed: %w", tt.ID, err)
			}
			if !sameTags(tt.Pushed, plan.Desired) {
				tt.Kind, tt.TagsDiffer = TagTargetTicket, true
				plan.Targets = append(plan.Targets, tt)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read tickets: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tag plan of customer %d: %w", customerID, err)
	}
	return plan, nil
}

// MarkTagsPushed records the tags just written to a helpdesk object: for kind "user" the customer's
// UserTagsPushed (id must be the customer's zendesk user id), for kind "ticket" the TagsPushed of
// Zendesk ticket id (whichever customer it belongs to now: the record is about the ticket). nil is
// recorded as the empty set — something was pushed, and it was nothing. ErrNotFound if the target
// does not exist.
func (db *DB) MarkTagsPushed(ctx context.Context, tenantID string, customerID int64, kind, id string, tags []string) error {
	enc, err := encodeTagSet(nonNil(tags))
	if err != nil {
		return fmt.Errorf("mark tags pushed: %w", err)
	}
	var res sql.Result
	switch kind {
	case TagTargetUser:
		res, err = db.writer().exec(ctx, `UPDATE customers SET user_tags_pushed = ?
			WHERE tenant_id = ? AND id = ? AND zendesk_user_id = ?`, enc, tenantID, customerID, id)
	case TagTargetTicket:
		res, err = db.writer().exec(ctx, `UPDATE tickets SET tags_pushed = ?
			WHERE tenant_id = ? AND source = ? AND ticket_id = ?`, enc, tenantID, integrations.SourceZendesk, id)
	default:
		return fmt.Errorf("mark tags pushed: unknown target kind %q", kind)
	}
	if err != nil {
		return fmt.Errorf("mark tags pushed on %s %s: %w", kind, id, err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("mark tags pushed on %s %s: %w", kind, id, err)
	}
	if n == 0 {
		if kind == TagTargetUser {
			return fmt.Errorf("mark tags pushed: customer %d of tenant %s with zendesk user %s: %w", customerID, tenantID, id, ErrNotFound)
		}
		return fmt.Errorf("mark tags pushed: zendesk ticket %s of tenant %s: %w", id, tenantID, ErrNotFound)
	}
	return nil
}

// MarkUserFieldsPushed records the user field values just written to the customer's helpdesk user
// (id must be the customer's zendesk user id). ErrNotFound if the customer does not have that user.
func (db *DB) MarkUserFieldsPushed(ctx context.Context, tenantID string, customerID int64, userID string, fields map[string]any) error {
	enc, err := encodeFields(fields)
	if err != nil {
		return fmt.Errorf("mark user fields pushed: %w", err)
	}
	res, err := db.writer().exec(ctx, `UPDATE customers SET user_fields_pushed = ?
		WHERE tenant_id = ? AND id = ? AND zendesk_user_id = ?`, enc, tenantID, customerID, userID)
	if err != nil {
		return fmt.Errorf("mark user fields pushed on user %s: %w", userID, err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("mark user fields pushed on user %s: %w", userID, err)
	}
	if n == 0 {
		return fmt.Errorf("mark user fields pushed: customer %d of tenant %s with zendesk user %s: %w", customerID, tenantID, userID, ErrNotFound)
	}
	return nil
}

// MarkTicketClosed records that a ticket is closed (the helpdesk refused an update because it is),
// so it leaves the tag plan. It bumps the customer's DataVersion when the status changed: the open
// ticket the last score saw is gone. ErrNotFound if the ticket does not exist.
func (db *DB) MarkTicketClosed(ctx context.Context, tenantID, source, ticketID string) error {
	err := db.inWriteTx(ctx, func(tx runner) error {
		var status string
		var cust sql.NullInt64
		err := tx.queryRow(ctx, `SELECT status, customer_id FROM tickets WHERE tenant_id = ? AND source = ? AND ticket_id = ?`+
			tx.d.forUpdate(), tenantID, source, ticketID).Scan(&status, &cust)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ticket %s/%s of tenant %s: %w", source, ticketID, tenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read ticket: %w", err)
		}
		if status == "closed" {
			return nil
		}
		if _, err := tx.exec(ctx, `UPDATE tickets SET status = 'closed' WHERE tenant_id = ? AND source = ? AND ticket_id = ?`,
			tenantID, source, ticketID); err != nil {
			return fmt.Errorf("update ticket: %w", err)
		}
		return bumpCustomers(ctx, tx, tenantID, cust.Int64)
	})
	if err != nil {
		return fmt.Errorf("mark ticket %s/%s closed: %w", source, ticketID, err)
	}
	return nil
}

// UnsyncedTags returns scored customers whose TagPlan has targets: their helpdesk user or an
// unresolved Zendesk ticket does not carry the desired tags, by customer id after afterID, at most
// limit (a scan goes through them page by page, passing the last id it got). It is the recovery scan for tag pushes a lost queue message would otherwise never make. Tag sets are stored
// as canonical JSON text, so set equality is text equality here; "never pushed" counts as "[]", as in
// TagPlan.
func (db *DB) UnsyncedTags(ctx context.Context, afterID int64, limit int) ([]CustomerRef, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("unsynced tags: limit %d must be positive", limit)
	}
	refs, err := db.customerRefs(ctx, `SELECT c.tenant_id, c.id FROM customers c
		JOIN scores s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id
		WHERE c.id > ? AND (
		     (c.zendesk_user_id IS NOT NULL AND (COALESCE(c.user_tags_pushed, '[]') <> s.tags
		                                        OR COALESCE(c.user_fields_pushed, '{}') <> s.user_fields))
		   OR EXISTS (SELECT 1 FROM tickets t WHERE t.tenant_id = c.tenant_id AND t.customer_id = c.id
		              AND t.source = ? AND `+unresolvedTicket+` AND COALESCE(t.tags_pushed, '[]') <> s.tags))
		ORDER BY c.id LIMIT ?`, afterID, integrations.SourceZendesk, limit)
	if err != nil {
		return nil, fmt.Errorf("unsynced tags: %w", err)
	}
	return refs, nil
}
