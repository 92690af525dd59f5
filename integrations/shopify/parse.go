package shopify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/jsonscan"
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
		// One pass validates the whole body and splits the refund.
		fields, err := jsonscan.Object(body, make(jsonscan.Fields, 0, fieldsBuf))
		if err != nil {
			if notObject(err) {
				return integrations.OrderEvent{}, integrations.Malformed("refund must be an object")
			}
			return integrations.OrderEvent{}, integrations.Malformed("body is not valid JSON")
		}
		r, ok, err := parseRefund(&object{fields: fields}, "", "")
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

// notObject reports whether jsonscan.Object's error is about valid JSON of another kind (an array,
// null, …) rather than invalid JSON.
func notObject(err error) bool {
	var kind *jsonscan.KindError
	return errors.As(err, &kind)
}

func parseOrder(body []byte) (*integrations.Order, []integrations.Refund, error) {
	// One pass validates the whole body and splits the order; nested values are cut from it.
	fields, err := jsonscan.Object(body, make(jsonscan.Fields, 0, orderFieldsBuf))
	if err != nil {
		if notObject(err) {
			return nil, nil, integrations.Malformed("body must be a JSON object")
		}
		return nil, nil, integrations.Malformed("body is not valid JSON: %v", err)
	}
	p := object{fields: fields}
	o := &integrations.Order{Source: integrations.SourceShopify}
	if o.OrderID, err = p.id("id"); err != nil {
		return nil, nil, err
	}
	if o.OrderID == "" {
		return nil, nil, integrations.Malformed("id is missing")
	}
	if o.Currency, err = p.currency("currency"); err != nil {
		return nil, nil, err
	}
	if o.Currency == "" {
		return nil, nil, integrations.Malformed("currency is missing")
	}
	total, present, err := p.amount("total_price", o.Currency)
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

	created, err := p.time("created_at")
	if err != nil {
		return nil, nil, err
	}
	if created.IsZero() {
		return nil, nil, integrations.Malformed("created_at is missing")
	}
	processed, err := p.time("processed_at")
	if err != nil {
		return nil, nil, err
	}
	o.CreatedAt = created
	if !processed.IsZero() {
		o.CreatedAt = processed
	}
	if o.UpdatedAt, err = p.time("updated_at"); err != nil {
		return nil, nil, err
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = created
	}
	cancelled, err := p.time("cancelled_at")
	if err != nil {
		return nil, nil, err
	}
	financial, err := p.string("financial_status")
	if err != nil {
		return nil, nil, err
	}
	o.Status = status(!cancelled.IsZero(), financial)

	// Email preference: the customer record's address identifies the person across orders, while the
	// order's email and contact_email are what was typed at this checkout (often the same, not always).
	var emails [3]string
	c, hasCustomer, err := p.object("customer", make(jsonscan.Fields, 0, fieldsBuf))
	if err != nil {
		return nil, nil, err
	}
	if hasCustomer {
		if o.CustomerExternalID, err = c.id("id"); err != nil {
			return nil, nil, err
		}
		if emails[0], err = c.string("email"); err != nil {
			return nil, nil, err
		}
		first, err := c.string("first_name")
		if err != nil {
			return nil, nil, err
		}
		last, err := c.string("last_name")
		if err != nil {
			return nil, nil, err
		}
		o.Name = cleanText(cleanText(first) + " " + cleanText(last))
	}
	if emails[1], err = p.string("email"); err != nil {
		return nil, nil, err
	}
	if emails[2], err = p.string("contact_email"); err != nil {
		return nil, nil, err
	}
	for _, e := range emails {
		// An address that does not normalise (Shopify allows odd ones) is skipped, not an error: the
		// order is still worth counting.
		if o.Email = email(e); o.Email != "" {
			break
		}
	}

	items, err := p.array("refunds", make([][]byte, 0, itemsBuf))
	if err != nil {
		return nil, nil, err
	}
	var refunds []integrations.Refund
	seen := map[string]bool{}
	buf := make(jsonscan.Fields, 0, fieldsBuf) // one refund at a time
	for i := range items.items {
		ro, err := items.object(i, buf[:0])
		if err != nil {
			return nil, nil, err
		}
		r, ok, err := parseRefund(&ro, o.OrderID, o.Currency)
		if err != nil {
			return nil, nil, err
		}
		if ok && !seen[r.RefundID] {
			seen[r.RefundID] = true
			if refunds == nil { // nil, as before, when no refund counts
				refunds = make([]integrations.Refund, 0, len(items.items)-i)
			}
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

// parseRefund reads one Refund resource: p is the body of a refunds/create delivery, or an item of
// an order's refunds, whose path names it in error messages ("refunds[2].id"; "id" for a body).
// orderID and orderCurrency are the enclosing order's, or "" for a bare refund. ok is false when the
// refund returned no money.
func parseRefund(p *object, orderID, orderCurrency string) (r integrations.Refund, ok bool, err error) {
	r.Source = integrations.SourceShopify
	if r.RefundID, err = p.id("id"); err != nil {
		return r, false, err
	}
	if r.RefundID == "" {
		return r, false, integrations.Malformed("%s is missing", p.name("id"))
	}
	if r.OrderID, err = p.id("order_id"); err != nil {
		return r, false, err
	}
	switch {
	case orderID == "" && r.OrderID == "":
		return r, false, integrations.Malformed("%s is missing", p.name("order_id"))
	case orderID != "" && r.OrderID != "" && r.OrderID != orderID:
		return r, false, integrations.Malformed("%s %s is not the order's id %s", p.name("order_id"), r.OrderID, orderID)
	case orderID != "":
		r.OrderID = orderID
	}
	// Same choice as for orders: processed_at is the business time and can be back-dated by imports.
	created, err := p.time("created_at")
	if err != nil {
		return r, false, err
	}
	processed, err := p.time("processed_at")
	if err != nil {
		return r, false, err
	}
	r.CreatedAt = processed
	if r.CreatedAt.IsZero() {
		r.CreatedAt = created
	}
	if r.CreatedAt.IsZero() {
		return r, false, integrations.Malformed("%s is missing", p.name("created_at"))
	}

	if p.raw("transactions") == nil {
		r.AmountMinor, r.Currency, err = lineItemsAmount(p, orderCurrency)
	} else {
		r.AmountMinor, r.Currency, err = transactionsAmount(p, orderCurrency)
	}
	if err != nil {
		return r, false, err
	}
	return r, r.AmountMinor > 0, nil
}

// transactionsAmount sums the successful refund transactions: the money that actually went back.
func transactionsAmount(refund *object, orderCurrency string) (int64, string, error) {
	items, err := refund.array("transactions", make([][]byte, 0, itemsBuf))
	if err != nil {
		return 0, "", err
	}
	var sum int64
	currency := ""
	buf := make(jsonscan.Fields, 0, fieldsBuf) // one transaction at a time
	for i := range items.items {
		t, err := items.object(i, buf[:0])
		if err != nil {
			return 0, "", err
		}
		isRefund, err := t.is("kind", "refund")
		if err != nil {
			return 0, "", err
		}
		succeeded, err := t.is("status", "success")
		if err != nil {
			return 0, "", err
		}
		// Sales, captures, voids and pending or failed refunds returned nothing to the customer.
		if !isRefund || !succeeded {
			continue
		}
		c, err := t.currency("currency")
		if err != nil {
			return 0, "", err
		}
		if c == "" {
			c = orderCurrency
		}
		if c == "" {
			return 0, "", integrations.Malformed("%s is missing", t.name("currency"))
		}
		if currency != "" && c != currency {
			return 0, "", integrations.Malformed("%s %s differs from the refund's other transactions (%s)", t.name("currency"), c, currency)
		}
		currency = c
		amount, present, err := t.amount("amount", c)
		if err != nil {
			return 0, "", err
		}
		if !present {
			return 0, "", integrations.Malformed("%s is missing", t.name("amount"))
		}
		if amount < 0 {
			return 0, "", integrations.Malformed("%s is negative", t.name("amount"))
		}
		var ok bool
		if sum, ok = addMinor(sum, amount); !ok {
			return 0, "", integrations.Malformed("%s: amounts overflow", t.name("amount"))
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
func lineItemsAmount(refund *object, orderCurrency string) (int64, string, error) {
	items, err := refund.array("refund_line_items", make([][]byte, 0, itemsBuf))
	if err != nil {
		return 0, "", err
	}
	var sum int64
	currency := ""
	// One line item at a time; a money set and a money have a handful of fields.
	buf, setBuf, shopBuf := make(jsonscan.Fields, 0, fieldsBuf), make(jsonscan.Fields, 0, 8), make(jsonscan.Fields, 0, 8)
	for i := range items.items {
		li, err := items.object(i, buf[:0])
		if err != nil {
			return 0, "", err
		}
		amountIn, amountField, c := &li, "subtotal", orderCurrency
		set, ok, err := li.object("subtotal_set", setBuf[:0])
		if err != nil {
			return 0, "", err
		}
		var shop object
		if ok {
			if shop, ok, err = set.object("shop_money", shopBuf[:0]); err != nil {
				return 0, "", err
			}
			if ok {
				sc, err := shop.currency("currency_code")
				if err != nil {
					return 0, "", err
				}
				if sc != "" {
					c = sc
				}
				amountIn, amountField = &shop, "amount"
			}
		}
		if c == "" {
			return 0, "", integrations.Malformed("%s has no currency (subtotal_set.shop_money.currency_code)", li.path.String())
		}
		if currency != "" && c != currency {
			return 0, "", integrations.Malformed("%s currency %s differs from the refund's other line items (%s)", li.path.String(), c, currency)
		}
		currency = c
		amount, present, err := amountIn.amount(amountField, c)
		if err != nil {
			return 0, "", err
		}
		if !present {
			return 0, "", integrations.Malformed("%s is missing", amountIn.name(amountField))
		}
		if amount < 0 {
			return 0, "", integrations.Malformed("%s is negative", amountIn.name(amountField))
		}
		if sum, ok = addMinor(sum, amount); !ok {
			return 0, "", integrations.Malformed("%s: amounts overflow", amountIn.name(amountField))
		}
	}
	if currency == "" {
		currency = orderCurrency
	}
	return sum, currency, nil
}
