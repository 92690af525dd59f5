// Package integrations holds the vocabulary every vendor package translates into: orders, refunds
// and ticket events as the rest of clvd sees them. Vendor knowledge (payload shapes, signatures, API
// clients) lives in the vendor's own sub-package; nothing here knows a vendor.
package integrations

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sources of events. A source names where an order or ticket id comes from, so the same id from two
// sources never collides.
const (
	SourceShopify = "shopify"
	SourceOrders  = "orders" // the generic, documented order JSON
	SourceZendesk = "zendesk"
)

// OrderStatus is the lifecycle state of an order as far as value is concerned.
type OrderStatus string

const (
	OrderOpen      OrderStatus = "open"      // placed, not (yet) known to be paid
	OrderPaid      OrderStatus = "paid"      // paid or partially refunded
	OrderRefunded  OrderStatus = "refunded"  // fully refunded: worth nothing
	OrderCancelled OrderStatus = "cancelled" // cancelled or voided: worth nothing
)

// Valid reports whether s is one of the known statuses.
func (s OrderStatus) Valid() bool {
	switch s {
	case OrderOpen, OrderPaid, OrderRefunded, OrderCancelled:
		return true
	}
	return false
}

// Order is one shop order. Amounts are integer minor units of Currency (cents for USD), never floats.
type Order struct {
	Source             string      `json:"source"`
	OrderID            string      `json:"order_id"`
	CustomerExternalID string      `json:"customer_external_id,omitempty"` // the shop's customer id; "" when unknown
	Email              string      `json:"email,omitempty"`                // normalised with NormalizeEmail; "" when unknown
	Name               string      `json:"name,omitempty"`                 // customer's name, when the payload has it
	CreatedAt          time.Time   `json:"created_at"`                     // when the order was placed: the purchase time
	UpdatedAt          time.Time   `json:"updated_at"`                     // the version: a delivery older than the stored one changes nothing
	Currency           string      `json:"currency"`                       // ISO 4217, upper case
	TotalMinor         int64       `json:"total_minor"`                    // gross total charged, before refunds
	Status             OrderStatus `json:"status"`
}

// Refund is money given back on an order. Refunds are keyed by their own id, so a refund delivered
// twice (or once inside an order payload and once on its own) counts once.
type Refund struct {
	Source      string    `json:"source"`
	OrderID     string    `json:"order_id"`
	RefundID    string    `json:"refund_id"`
	AmountMinor int64     `json:"amount_minor"` // positive: the amount returned
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"created_at"`
}

// OrderEvent is what one order webhook delivers: an order (nil for a bare refund) and any refunds.
type OrderEvent struct {
	Topic   string   `json:"topic"`           // e.g. orders/create, refunds/create, or "order" for the generic format
	EventID string   `json:"event_id"`        // the sender's delivery/event id, "" when it has none
	Order   *Order   `json:"order,omitempty"` // nil for a refund-only event
	Refunds []Refund `json:"refunds,omitempty"`
}

// Ticket event types, vendor-neutral.
const (
	TicketCreated             = "ticket.created"
	TicketUpdated             = "ticket.updated" // a trigger payload or any other change: fields carry the state
	TicketStatusChanged       = "ticket.status_changed"
	TicketPriorityChanged     = "ticket.priority_changed"
	TicketCommentAdded        = "ticket.comment_added"
	TicketSatisfactionChanged = "ticket.satisfaction_changed"
)

// TicketEvent is one change to a helpdesk ticket. Empty fields mean "not said by this event", never
// "cleared"; the store merges events by OccurredAt so late deliveries do not undo newer state.
type TicketEvent struct {
	Source          string    `json:"source"`
	EventID         string    `json:"event_id"` // unique per delivery of a change; duplicates change nothing
	Type            string    `json:"type"`     // one of the Ticket* constants
	TicketID        string    `json:"ticket_id"`
	RequesterID     string    `json:"requester_id,omitempty"`    // the helpdesk's user id
	RequesterEmail  string    `json:"requester_email,omitempty"` // normalised; "" when the payload has none
	RequesterName   string    `json:"requester_name,omitempty"`
	Subject         string    `json:"subject,omitempty"`
	Status          string    `json:"status,omitempty"`       // new|open|pending|hold|solved|closed
	Priority        string    `json:"priority,omitempty"`     // low|normal|high|urgent
	Satisfaction    string    `json:"satisfaction,omitempty"` // good|bad|offered|unoffered
	Tags            []string  `json:"tags,omitempty"`         // the ticket's tags, when the payload lists them
	OccurredAt      time.Time `json:"occurred_at"`
	TicketCreatedAt time.Time `json:"ticket_created_at,omitempty"`
}

// Ticket statuses after which a ticket counts as resolved.
func TicketResolved(status string) bool { return status == "solved" || status == "closed" }

// ErrMalformed marks a payload that can never be processed: the sender must fix it, retrying is useless.
// Parsers wrap it with a message that says what is wrong (the webhook answers 400 with that message).
var ErrMalformed = errors.New("malformed payload")

// Malformed returns an error wrapping ErrMalformed with a human-readable reason.
func Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ErrBadSignature marks a request whose signature is missing, wrong or stale (401).
var ErrBadSignature = errors.New("bad signature")

// NormalizeEmail is how customers are matched across shop and helpdesk: trimmed and lower-cased.
// An address without exactly one "@" and a non-empty local part and domain gives "".
func NormalizeEmail(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n<>,") {
		return ""
	}
	return s
}

// Clip shortens a value quoted in an error message: the message goes back to the sender and into logs.
func Clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) { // never split a character
		cut--
	}
	return s[:cut] + "…"
}
