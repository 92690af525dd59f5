// Package orders is clvd's own, documented order format, for shops that are not on Shopify: one JSON
// object per order, sent signed (see Sign) to the orders webhook whenever an order is placed or changes.
// README.md in this directory is the sender's documentation; keep the two in step.
//
// Fields (unknown fields are ignored, so senders may add their own; known fields of the wrong type are
// rejected):
//
//	order_id     string, required      the shop's order id, ≤ 255 characters
//	customer_id  string, optional      the shop's customer id, ≤ 255 characters
//	email        string, optional      the customer's email; at least one of customer_id and email is required
//	name         string, optional      the customer's name
//	created_at   string, required      RFC 3339 time the order was placed
//	updated_at   string, optional      RFC 3339 version of this order; defaults to created_at
//	amount       string, required      decimal total charged, ≥ 0, before refunds, e.g. "59.90"
//	currency     string, required      ISO 4217 code, e.g. "EUR"
//	status       string, optional      open | paid | cancelled | refunded; default paid
//	refunds      array, optional       [{"refund_id": string, "amount": decimal string > 0, "created_at": RFC 3339}]
//	event_id     string, optional      the sender's delivery id, ≤ 255 characters
//
// Versioning: clvd keeps, per order, the delivery with the newest updated_at and ignores older ones, so
// deliveries may arrive out of order or twice. A change (of status, amount or refunds) must therefore
// carry an updated_at later than the previous delivery's, or it is ignored as a stale copy.
//
// Amounts are strings because a JSON number is a float to most parsers, and floats lose cents.
package orders

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/jsonscan"
	"github.com/clvd/clvd/internal/money"
)

// Topic is the OrderEvent topic of every generic order delivery: the format has one kind of message.
const Topic = "order"

// MaxIDLength bounds order_id, customer_id, refund_id and event_id, in bytes.
const MaxIDLength = 255

// maxNameLength bounds name, in characters.
const maxNameLength = 255

// Example is a valid body, printed verbatim in README.md; a test parses it and checks the README.
const Example = `{
  "order_id": "1001",
  "customer_id": "cus_42",
  "email": "ada@example.com",
  "name": "Ada Lovelace",
  "created_at": "2025-03-14T09:26:53Z",
  "updated_at": "2025-03-20T10:00:00Z",
  "amount": "59.90",
  "currency": "EUR",
  "status": "paid",
  "refunds": [
    {"refund_id": "1001-r1", "amount": "10.00", "created_at": "2025-03-20T10:00:00Z"}
  ],
  "event_id": "evt_8f14e45f"
}`

// ParseOrder parses one generic order body into an OrderEvent with Topic "order" and Source
// integrations.SourceOrders on the order and its refunds. Errors wrap integrations.ErrMalformed and
// name the field.
func ParseOrder(body []byte) (integrations.OrderEvent, error) {
	// Keys are matched exactly (Fields.Get, not Fold): the format is documented with exact,
	// lower-case names. One pass validates the whole body and cuts out the fields.
	fields, err := jsonscan.Object(body, make(jsonscan.Fields, 0, 16))
	var kind *jsonscan.KindError
	switch {
	case errors.As(err, &kind):
		return integrations.OrderEvent{}, integrations.Malformed("body must be a JSON object, not %s", kindOf(body))
	case err != nil:
		return integrations.OrderEvent{}, integrations.Malformed("body is not valid JSON: %v", err)
	}
	m := func(name string) []byte { v, _ := fields.Get(name); return v }

	o := &integrations.Order{Source: integrations.SourceOrders}
	if o.OrderID, err = id(m("order_id"), "order_id", true); err != nil {
		return integrations.OrderEvent{}, err
	}
	if o.CustomerExternalID, err = id(m("customer_id"), "customer_id", false); err != nil {
		return integrations.OrderEvent{}, err
	}
	rawEmail, err := str(m("email"), "email")
	if err != nil {
		return integrations.OrderEvent{}, err
	}
	if strings.TrimSpace(rawEmail) != "" {
		if strings.IndexFunc(rawEmail, unicode.IsControl) >= 0 {
			return integrations.OrderEvent{}, integrations.Malformed("email contains control characters")
		}
		if o.Email = integrations.NormalizeEmail(rawEmail); o.Email == "" {
			return integrations.OrderEvent{}, integrations.Malformed("email %q is not a valid address", integrations.Clip(rawEmail))
		}
	}
	if o.CustomerExternalID == "" && o.Email == "" {
		return integrations.OrderEvent{}, integrations.Malformed("customer_id and email are both missing: at least one is needed to know whose order this is")
	}
	name, err := str(m("name"), "name")
	if err != nil {
		return integrations.OrderEvent{}, err
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return integrations.OrderEvent{}, integrations.Malformed("name contains control characters")
	}
	if o.Name = strings.TrimSpace(name); utf8.RuneCountInString(o.Name) > maxNameLength {
		return integrations.OrderEvent{}, integrations.Malformed("name is longer than %d characters", maxNameLength)
	}

	if o.CreatedAt, err = timestamp(m("created_at"), "created_at", true); err != nil {
		return integrations.OrderEvent{}, err
	}
	if o.UpdatedAt, err = timestamp(m("updated_at"), "updated_at", false); err != nil {
		return integrations.OrderEvent{}, err
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	// A version older than the order itself is a sender bug that would make every later fix look stale.
	if o.UpdatedAt.Before(o.CreatedAt) {
		return integrations.OrderEvent{}, integrations.Malformed("updated_at %s is before created_at %s",
			o.UpdatedAt.Format(time.RFC3339), o.CreatedAt.Format(time.RFC3339))
	}

	if o.Currency, err = str(m("currency"), "currency"); err != nil {
		return integrations.OrderEvent{}, err
	}
	if o.Currency == "" {
		return integrations.OrderEvent{}, integrations.Malformed("currency is missing")
	}
	if !money.ValidCurrency(o.Currency) {
		return integrations.OrderEvent{}, integrations.Malformed("currency %q is not an ISO 4217 code such as \"EUR\"", integrations.Clip(o.Currency))
	}
	o.Currency = strings.ToUpper(o.Currency)
	if o.TotalMinor, err = amount(m("amount"), o.Currency, "amount"); err != nil {
		return integrations.OrderEvent{}, err
	}
	if o.TotalMinor < 0 {
		return integrations.OrderEvent{}, integrations.Malformed("amount is negative; send refunds in refunds, not as a negative order")
	}

	st, err := str(m("status"), "status")
	if err != nil {
		return integrations.OrderEvent{}, err
	}
	o.Status = integrations.OrderPaid
	if st != "" {
		if o.Status = integrations.OrderStatus(st); !o.Status.Valid() {
			return integrations.OrderEvent{}, integrations.Malformed("status %q is not one of open, paid, cancelled, refunded", integrations.Clip(st))
		}
	}

	refunds, err := parseRefunds(m("refunds"), o)
	if err != nil {
		return integrations.OrderEvent{}, err
	}
	eventID, err := id(m("event_id"), "event_id", false)
	if err != nil {
		return integrations.OrderEvent{}, err
	}
	return integrations.OrderEvent{Topic: Topic, EventID: eventID, Order: o, Refunds: refunds}, nil
}

func parseRefunds(raw []byte, o *integrations.Order) ([]integrations.Refund, error) {
	if jsonscan.IsNull(raw) {
		return nil, nil
	}
	items, err := jsonscan.Array(raw, nil)
	if err != nil {
		return nil, integrations.Malformed("refunds must be an array, not %s", kindOf(raw))
	}
	var refunds []integrations.Refund
	seen := map[string]bool{}
	var total int64
	for i, item := range items {
		f := fmt.Sprintf("refunds[%d]", i)
		fields, err := jsonscan.Object(item, nil)
		if err != nil {
			return nil, integrations.Malformed("%s must be an object, not %s", f, kindOf(item))
		}
		m := func(name string) []byte { v, _ := fields.Get(name); return v }
		r := integrations.Refund{Source: integrations.SourceOrders, OrderID: o.OrderID, Currency: o.Currency}
		if r.RefundID, err = id(m("refund_id"), f+".refund_id", true); err != nil {
			return nil, err
		}
		if seen[r.RefundID] {
			return nil, integrations.Malformed("%s.refund_id %q appears twice", f, integrations.Clip(r.RefundID))
		}
		seen[r.RefundID] = true
		if r.AmountMinor, err = amount(m("amount"), o.Currency, f+".amount"); err != nil {
			return nil, err
		}
		if r.AmountMinor <= 0 {
			return nil, integrations.Malformed("%s.amount must be greater than zero", f)
		}
		if r.CreatedAt, err = timestamp(m("created_at"), f+".created_at", true); err != nil {
			return nil, err
		}
		// Comparing against what is left, rather than adding first, cannot overflow.
		if r.AmountMinor > o.TotalMinor-total {
			return nil, integrations.Malformed("refunds total more than the order amount %s %s (at %s)",
				money.Format(o.TotalMinor, o.Currency), o.Currency, f)
		}
		total += r.AmountMinor
		refunds = append(refunds, r)
	}
	return refunds, nil
}

// kindOf names a JSON value's type for error messages: "an object", "a number", "null", ….
func kindOf(raw []byte) string {
	switch k := jsonscan.KindOf(raw); k {
	case jsonscan.Invalid:
		return "empty"
	case jsonscan.Null:
		return "null"
	case jsonscan.ObjectKind, jsonscan.ArrayKind:
		return "an " + k.String()
	default:
		return "a " + k.String()
	}
}

// str returns a string field; "" when null or absent.
func str(raw []byte, field string) (string, error) {
	if jsonscan.IsNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", integrations.Malformed("%s must be a string, not %s", field, kindOf(raw))
	}
	s, err := jsonscan.StringValue(raw)
	if err != nil {
		return "", integrations.Malformed("%s: %v", field, err)
	}
	return s, nil
}

// id returns an identifier. Ids must be strings: a numeric id beyond 2^53 loses digits in any sender or
// tool that reads JSON numbers as floats, and two orders would then share an id.
func id(raw []byte, field string, required bool) (string, error) {
	if !jsonscan.IsNull(raw) && raw[0] != '"' {
		return "", integrations.Malformed("%s must be a string, not %s (quote numeric ids so no digit is lost)", field, kindOf(raw))
	}
	s, err := str(raw, field)
	if err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(s) == "":
		if required {
			return "", integrations.Malformed("%s is missing", field)
		}
		return "", nil
	case len(s) > MaxIDLength:
		return "", integrations.Malformed("%s is longer than %d bytes", field, MaxIDLength)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		// NUL in particular: PostgreSQL TEXT refuses it, so the order could never be stored.
		return "", integrations.Malformed("%s contains control characters", field)
	}
	return s, nil
}

// timestamp parses an RFC 3339 time, returned in UTC; the zero time when optional and absent.
func timestamp(raw []byte, field string, required bool) (time.Time, error) {
	s, err := str(raw, field)
	if err != nil {
		return time.Time{}, err
	}
	if s == "" {
		if required {
			return time.Time{}, integrations.Malformed("%s is missing", field)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, integrations.Malformed("%s %q is not an RFC 3339 time such as \"2025-03-14T09:26:53Z\"", field, integrations.Clip(s))
	}
	return t.UTC(), nil
}

// amount parses a required decimal string into minor units of currency.
func amount(raw []byte, currency, field string) (int64, error) {
	if jsonscan.IsNull(raw) {
		return 0, integrations.Malformed("%s is missing", field)
	}
	if raw[0] != '"' {
		if jsonscan.KindOf(raw) == jsonscan.Number {
			return 0, integrations.Malformed("%s must be a decimal string such as \"59.90\", not the JSON number %s: numbers are floats to most JSON tools and lose cents",
				field, integrations.Clip(string(raw)))
		}
		return 0, integrations.Malformed("%s must be a decimal string such as \"59.90\", not %s", field, kindOf(raw))
	}
	s, err := str(raw, field)
	if err != nil {
		return 0, err
	}
	v, err := money.ParseMinor(s, currency)
	if err != nil {
		return 0, integrations.Malformed("%s: %v", field, err)
	}
	return v, nil
}
