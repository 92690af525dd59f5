package store

import (
	"context"
	"fmt"

	"github.com/clvd/clvd/integrations"
)

// TenantDataCounts are row counts of one tenant's data, read in one snapshot. `clvd loadtest` uses
// them to audit a run: what was stored against what was sent, and whether the pipeline has drained.
type TenantDataCounts struct {
	Customers    int64
	Orders       int64
	Refunds      int64
	Tickets      int64
	TicketEvents int64 // processed ticket event ids (deduplication records)
	Scored       int64 // customers with a score
	// Stale counts customers whose score is behind their data (DataVersion > ScoredVersion).
	Stale int64
	// Unsynced counts scored customers whose TagPlan has targets: their helpdesk user or an unresolved
	// Zendesk ticket does not carry the desired tags (the condition of UnsyncedTags, for one tenant).
	Unsynced int64
}

// CountTenantData counts the tenant's customers, orders, refunds, tickets and processed ticket
// events, and how many customers are scored, stale or not yet in step with the helpdesk. It only
// reads. An unknown tenant has all zeros.
func (db *DB) CountTenantData(ctx context.Context, tenantID string) (TenantDataCounts, error) {
	var c TenantDataCounts
	err := db.inReadTx(ctx, func(tx runner) error {
		return tx.queryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM customers WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM orders WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM refunds WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM tickets WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM ticket_events WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM scores WHERE tenant_id = ?),
			(SELECT COUNT(*) FROM customers WHERE tenant_id = ? AND data_version > scored_version),
			(SELECT COUNT(*) FROM customers c JOIN scores s ON s.tenant_id = c.tenant_id AND s.customer_id = c.id
				WHERE c.tenant_id = ? AND (
					(c.zendesk_user_id IS NOT NULL AND (COALESCE(c.user_tags_pushed, '[]') <> s.tags
					                                    OR COALESCE(c.user_fields_pushed, '{}') <> s.user_fields))
					OR EXISTS (SELECT 1 FROM tickets t WHERE t.tenant_id = c.tenant_id AND t.customer_id = c.id
					           AND t.source = ? AND `+unresolvedTicket+` AND COALESCE(t.tags_pushed, '[]') <> s.tags)))`,
			tenantID, tenantID, tenantID, tenantID, tenantID, tenantID, tenantID, tenantID, integrations.SourceZendesk).
			Scan(&c.Customers, &c.Orders, &c.Refunds, &c.Tickets, &c.TicketEvents, &c.Scored, &c.Stale, &c.Unsynced)
	})
	if err != nil {
		return TenantDataCounts{}, fmt.Errorf("count data of tenant %s: %w", tenantID, err)
	}
	return c, nil
}
