package shopify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/clvd/clvd/integrations"
)

// Topics this package understands. The four order topics all carry the full Order resource, so they
// parse alike: the topic says what happened, the payload says what the order is now.
const (
	TopicOrdersCreate    = "orders/create"
	TopicOrdersUpdated   = "orders/updated"
	TopicOrdersPaid      = "orders/paid"
	TopicOrdersCancelled = "orders/cancelled"
	TopicRefundsCreate   = "refunds/create"
)

// ErrUnsupportedTopic marks a delivery for a topic clvd does not use. It is not the sender's fault
// (a shop may subscribe the endpoint to more topics than needed), so the webhook acknowledges and drops it.
var ErrUnsupportedTopic = errors.New("unsupported Shopify topic")

// Supported reports whether ParseEvent handles topic.
func Supported(topic string) bool {
	switch topic {
	case TopicOrdersCreate, TopicOrdersUpdated, TopicOrdersPaid, TopicOrdersCancelled, TopicRefundsCreate:
		return true
	}
	return false
}

// ParseEvent turns one delivery into the neutral event. topic is the X-Shopify-Topic header; deliveryID
// is X-Shopify-Event-Id, else X-Shopify-Webhook-Id, else "" (the caller chooses; it is copied as is).
//
// Order topics give an event with Order set and the order's refunds; refunds/create gives Order == nil
// and the one refund (none when the refund moved no money, see below). Errors wrap ErrUnsupportedTopic
// or integrations.ErrMalformed, the latter naming the offending field.
//
// Decisions, each following Shopify's Order and Refund resource documentation:
//
//   - CreatedAt is processed_at, falling back to created_at. Shopify documents processed_at as the
//     order's date in its own reports and lets importers set it to the original purchase time, while
//     created_at is when the record was made: for an order imported from another platform created_at is
//     the import day, which would bunch a customer's whole history into one purchase date.
//   - UpdatedAt (the version) is updated_at, falling back to created_at.
//   - TotalMinor is total_price, the gross total, not current_total_price: refunds are stored as their
//     own rows and subtracted later, and current_total_price already has them taken off.
//   - Status: cancelled_at set or financial_status "voided" → cancelled; "refunded" → refunded; "paid",
//     "partially_refunded", "partially_paid" → paid; anything else ("pending", "authorized", "expired",
//     absent) → open.
//   - A refund's amount is the sum of its transactions of kind "refund" with status "success": Shopify
//     notes that a Refund record alone does not mean money went back (its transactions may be pending
//     or failed), and the transactions include refunded shipping, which line items do not. Only when
//     the payload has no transactions field at all (a webhook trimmed with include_fields, say) is the
//     amount estimated from refund_line_items subtotals (subtotal_set.shop_money, else subtotal), which
//     leaves out tax and shipping. A refund whose amount is not positive (transactions: [], or all
//     pending/failed, or a restock-only refund) is left out rather than stored as zero: refunds are
//     deduplicated by id, so a zero row stored now would hide the money once a later orders/updated
//     shows the transaction succeeded.
//   - A refund's currency is its transactions' currency, which in a multi-currency shop can be the
//     presentment currency and differ from the order's (shop) currency; consumers must compare the two.
func ParseEvent(topic string, body []byte, deliveryID string) (integrations.OrderEvent, error) {
	ev := integrations.OrderEvent{Topic: topic, EventID: deliveryID}
	switch topic {
	case TopicOrdersCreate, TopicOrdersUpdated, TopicOrdersPaid, TopicOrdersCancelled:
		o, refunds, err := parseOrder(body)
		if err != nil {
			return integrations.OrderEvent{}, err
		}
		ev.Order, ev.Refunds = o, refunds
	case TopicRefundsCreate:
		if !json.Valid(body) { // a scan, no allocation: parseRefund decodes once
			return integrations.OrderEvent{}, integrations.Malformed("body is not valid JSON")
		}
		r, ok, err := parseRefund(body, "", "", "")
		if err != nil {
			return integrations.OrderEvent{}, err
		}
		if ok {
			ev.Refunds = []integrations.Refund{r}
		}
	default:
		return integrations.OrderEvent{}, fmt.Errorf("%w: %q", ErrUnsupportedTopic, integrations.Clip(topic))
	}
	return ev, nil
}

// decodeObject decodes a body that must be one JSON object into v (whose fields are raw messages, so
// only the body's shape can fail), in a single pass, with a message for people rather than the Go
// type names encoding/json would mention.
func decodeObject(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return integrations.Malformed("body is not valid JSON: %v", err)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); err != nil || len(t) == 0 || t[0] != '{' {
		return integrations.Malformed("body must be a JSON object")
	}
	return nil
}

// orderPayload holds the Order resource fields clvd reads.
type orderPayload struct {
	ID              json.RawMessage `json:"id"`
	Email           json.RawMessage `json:"email"`
	ContactEmail    json.RawMessage `json:"contact_email"`
	CreatedAt       json.RawMessage `json:"created_at"`
	ProcessedAt     json.RawMessage `json:"processed_at"`
	UpdatedAt       json.RawMessage `json:"updated_at"`
	CancelledAt     json.RawMessage `json:"cancelled_at"`
	Currency        json.RawMessage `json:"currency"`
	TotalPrice      json.RawMessage `json:"total_price"`
	FinancialStatus json.RawMessage `json:"financial_status"`
	Customer        json.RawMessage `json:"customer"`
	Refunds         json.RawMessage `json:"refunds"`
}

type customerPayload struct {
	ID        json.RawMessage `json:"id"`
	Email     json.RawMessage `json:"email"`
	FirstName json.RawMessage `json:"first_name"`
	LastName  json.RawMessage `json:"last_name"`
}

func parseOrder(body []byte) (*integrations.Order, []integrations.Refund, error) {
	var p orderPayload
	if err := decodeObject(body, &p); err != nil {
		return nil, nil, err
	}
	o := &integrations.Order{Source: integrations.SourceShopify}
	var err error
	if o.OrderID, err = jsonID(p.ID, "id"); err != nil {
		return nil, nil, err
	}
	if o.OrderID == "" {
		return nil, nil, integrations.Malformed("id is missing")
	}
	if o.Currency, err = jsonCurrency(p.Currency, "currency"); err != nil {
		return nil, nil, err
	}
	if o.Currency == "" {
		return nil, nil, integrations.Malformed("currency is missing")
	}
	total, present, err := jsonAmount(p.TotalPrice, o.Currency, "total_price")
	if err != nil {
		return nil, nil, err
	}
	if !present {
		return nil, nil, integrations.Malformed("total_price is missing")
	}
	if total < 0 {
		return nil, nil, integrations.Malformed("total_price is negative")
	}
	o.TotalMinor = total

	created, err := jsonTime(p.CreatedAt, "created_at")
	if err != nil {
		return nil, nil, err
	}
	if created.IsZero() {
		return nil, nil, integrations.Malformed("created_at is missing")
	}
	processed, err := jsonTime(p.ProcessedAt, "processed_at")
	if err != nil {
		return nil, nil, err
	}
	o.CreatedAt = created
	if !processed.IsZero() {
		o.CreatedAt = processed
	}
	if o.UpdatedAt, err = jsonTime(p.UpdatedAt, "updated_at"); err != nil {
		return nil, nil, err
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = created
	}
	cancelled, err := jsonTime(p.CancelledAt, "cancelled_at")
	if err != nil {
		return nil, nil, err
	}
	financial, err := jsonString(p.FinancialStatus, "financial_status")
	if err != nil {
		return nil, nil, err
	}
	o.Status = status(!cancelled.IsZero(), financial)

	// Email preference: the customer record's address identifies the person across orders, while the
	// order's email and contact_email are what was typed at this checkout (often the same, not always).
	var emails []string
	var c customerPayload
	hasCustomer, err := jsonObject(p.Customer, "customer", &c)
	if err != nil {
		return nil, nil, err
	}
	if hasCustomer {
		if o.CustomerExternalID, err = jsonID(c.ID, "customer.id"); err != nil {
			return nil, nil, err
		}
		e, err := jsonString(c.Email, "customer.email")
		if err != nil {
			return nil, nil, err
		}
		emails = append(emails, e)
		first, err := jsonString(c.FirstName, "customer.first_name")
		if err != nil {
			return nil, nil, err
		}
		last, err := jsonString(c.LastName, "customer.last_name")
		if err != nil {
			return nil, nil, err
		}
		o.Name = cleanText(cleanText(first) + " " + cleanText(last))
	}
	for _, f := range []struct {
		raw   json.RawMessage
		field string
	}{{p.Email, "email"}, {p.ContactEmail, "contact_email"}} {
		e, err := jsonString(f.raw, f.field)
		if err != nil {
			return nil, nil, err
		}
		emails = append(emails, e)
	}
	for _, e := range emails {
		// An address that does not normalise (Shopify allows odd ones) is skipped, not an error: the
		// order is still worth counting.
		if o.Email = email(e); o.Email != "" {
			break
		}
	}

	items, err := jsonArray(p.Refunds, "refunds")
	if err != nil {
		return nil, nil, err
	}
	var refunds []integrations.Refund
	seen := map[string]bool{}
	for i, raw := range items {
		r, ok, err := parseRefund(raw, fmt.Sprintf("refunds[%d].", i), o.OrderID, o.Currency)
		if err != nil {
			return nil, nil, err
		}
		if ok && !seen[r.RefundID] {
			seen[r.RefundID] = true
			refunds = append(refunds, r)
		}
	}
	return o, refunds, nil
}

// status maps Shopify's cancellation and financial_status onto clvd's value lifecycle.
func status(cancelled bool, financial string) integrations.OrderStatus {
	switch f := strings.ToLower(strings.TrimSpace(financial)); {
	case cancelled || f == "voided":
		return integrations.OrderCancelled
	case f == "refunded":
		return integrations.OrderRefunded
	case f == "paid" || f == "partially_refunded" || f == "partially_paid":
		return integrations.OrderPaid
	default:
		return integrations.OrderOpen
	}
}

// refundPayload holds the Refund resource fields clvd reads.
type refundPayload struct {
	ID              json.RawMessage `json:"id"`
	OrderID         json.RawMessage `json:"order_id"`
	CreatedAt       json.RawMessage `json:"created_at"`
	ProcessedAt     json.RawMessage `json:"processed_at"`
	Transactions    json.RawMessage `json:"transactions"`
	RefundLineItems json.RawMessage `json:"refund_line_items"`
}

type transactionPayload struct {
	Kind     json.RawMessage `json:"kind"`
	Status   json.RawMessage `json:"status"`
	Amount   json.RawMessage `json:"amount"`
	Currency json.RawMessage `json:"currency"`
}

type lineItemPayload struct {
	Subtotal    json.RawMessage `json:"subtotal"`
	SubtotalSet json.RawMessage `json:"subtotal_set"`
}

type moneySetPayload struct {
	ShopMoney json.RawMessage `json:"shop_money"`
}

type moneyPayload struct {
	Amount       json.RawMessage `json:"amount"`
	CurrencyCode json.RawMessage `json:"currency_code"`
}

// parseRefund reads one Refund resource. prefix names its place in the payload for error messages
// ("refunds[2]." inside an order, "" for a refunds/create body). orderID and orderCurrency are the
// enclosing order's, or "" for a bare refund. ok is false when the refund returned no money.
func parseRefund(raw json.RawMessage, prefix, orderID, orderCurrency string) (r integrations.Refund, ok bool, err error) {
	var p refundPayload
	name := strings.TrimSuffix(prefix, ".")
	if name == "" {
		name = "refund"
	}
	if err := requireObject(raw, name, &p); err != nil {
		return r, false, err
	}
	r.Source = integrations.SourceShopify
	if r.RefundID, err = jsonID(p.ID, prefix+"id"); err != nil {
		return r, false, err
	}
	if r.RefundID == "" {
		return r, false, integrations.Malformed("%sid is missing", prefix)
	}
	if r.OrderID, err = jsonID(p.OrderID, prefix+"order_id"); err != nil {
		return r, false, err
	}
	switch {
	case orderID == "" && r.OrderID == "":
		return r, false, integrations.Malformed("%sorder_id is missing", prefix)
	case orderID != "" && r.OrderID != "" && r.OrderID != orderID:
		return r, false, integrations.Malformed("%sorder_id %s is not the order's id %s", prefix, r.OrderID, orderID)
	case orderID != "":
		r.OrderID = orderID
	}
	// Same choice as for orders: processed_at is the business time and can be back-dated by imports.
	created, err := jsonTime(p.CreatedAt, prefix+"created_at")
	if err != nil {
		return r, false, err
	}
	processed, err := jsonTime(p.ProcessedAt, prefix+"processed_at")
	if err != nil {
		return r, false, err
	}
	r.CreatedAt = processed
	if r.CreatedAt.IsZero() {
		r.CreatedAt = created
	}
	if r.CreatedAt.IsZero() {
		return r, false, integrations.Malformed("%screated_at is missing", prefix)
	}

	if isNull(p.Transactions) {
		r.AmountMinor, r.Currency, err = lineItemsAmount(p.RefundLineItems, prefix, orderCurrency)
	} else {
		r.AmountMinor, r.Currency, err = transactionsAmount(p.Transactions, prefix, orderCurrency)
	}
	if err != nil {
		return r, false, err
	}
	return r, r.AmountMinor > 0, nil
}

// transactionsAmount sums the successful refund transactions: the money that actually went back.
func transactionsAmount(raw json.RawMessage, prefix, orderCurrency string) (int64, string, error) {
	items, err := jsonArray(raw, prefix+"transactions")
	if err != nil {
		return 0, "", err
	}
	var sum int64
	currency := ""
	for i, item := range items {
		field := fmt.Sprintf("%stransactions[%d]", prefix, i)
		var t transactionPayload
		if err := requireObject(item, field, &t); err != nil {
			return 0, "", err
		}
		kind, err := jsonString(t.Kind, field+".kind")
		if err != nil {
			return 0, "", err
		}
		st, err := jsonString(t.Status, field+".status")
		if err != nil {
			return 0, "", err
		}
		// Sales, captures, voids and pending or failed refunds returned nothing to the customer.
		if !strings.EqualFold(kind, "refund") || !strings.EqualFold(st, "success") {
			continue
		}
		c, err := jsonCurrency(t.Currency, field+".currency")
		if err != nil {
			return 0, "", err
		}
		if c == "" {
			c = orderCurrency
		}
		if c == "" {
			return 0, "", integrations.Malformed("%s.currency is missing", field)
		}
		if currency != "" && c != currency {
			return 0, "", integrations.Malformed("%s.currency %s differs from the refund's other transactions (%s)", field, c, currency)
		}
		currency = c
		amount, present, err := jsonAmount(t.Amount, c, field+".amount")
		if err != nil {
			return 0, "", err
		}
		if !present {
			return 0, "", integrations.Malformed("%s.amount is missing", field)
		}
		if amount < 0 {
			return 0, "", integrations.Malformed("%s.amount is negative", field)
		}
		if sum, err = addMinor(sum, amount, field+".amount"); err != nil {
			return 0, "", err
		}
	}
	if currency == "" {
		currency = orderCurrency
	}
	return sum, currency, nil
}

// lineItemsAmount estimates a refund from its line items, for payloads that carry no transactions.
// subtotal_set.shop_money is preferred because it states its currency and is a string; the bare
// subtotal (a JSON number in Shopify's payloads) is in the shop currency, known only inside an order.
func lineItemsAmount(raw json.RawMessage, prefix, orderCurrency string) (int64, string, error) {
	items, err := jsonArray(raw, prefix+"refund_line_items")
	if err != nil {
		return 0, "", err
	}
	var sum int64
	currency := ""
	for i, item := range items {
		field := fmt.Sprintf("%srefund_line_items[%d]", prefix, i)
		var li lineItemPayload
		if err := requireObject(item, field, &li); err != nil {
			return 0, "", err
		}
		amountRaw, amountField, c := li.Subtotal, field+".subtotal", orderCurrency
		var set moneySetPayload
		var shop moneyPayload
		if ok, err := jsonObject(li.SubtotalSet, field+".subtotal_set", &set); err != nil {
			return 0, "", err
		} else if ok {
			if ok, err := jsonObject(set.ShopMoney, field+".subtotal_set.shop_money", &shop); err != nil {
				return 0, "", err
			} else if ok {
				sc, err := jsonCurrency(shop.CurrencyCode, field+".subtotal_set.shop_money.currency_code")
				if err != nil {
					return 0, "", err
				}
				if sc != "" {
					c = sc
				}
				amountRaw, amountField = shop.Amount, field+".subtotal_set.shop_money.amount"
			}
		}
		if c == "" {
			return 0, "", integrations.Malformed("%s has no currency (subtotal_set.shop_money.currency_code)", field)
		}
		if currency != "" && c != currency {
			return 0, "", integrations.Malformed("%s currency %s differs from the refund's other line items (%s)", field, c, currency)
		}
		currency = c
		amount, present, err := jsonAmount(amountRaw, c, amountField)
		if err != nil {
			return 0, "", err
		}
		if !present {
			return 0, "", integrations.Malformed("%s is missing", amountField)
		}
		if amount < 0 {
			return 0, "", integrations.Malformed("%s is negative", amountField)
		}
		if sum, err = addMinor(sum, amount, amountField); err != nil {
			return 0, "", err
		}
	}
	if currency == "" {
		currency = orderCurrency
	}
	return sum, currency, nil
}
