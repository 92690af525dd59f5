package shopify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

// TestParseEventTrickyBodies pins what the encoding/json reader accepted and refused, for the cases
// where a hand-written reader could differ: key case and duplicates (struct-field lookup), null
// against absent, values of the wrong kind, escapes and invalid UTF-8, number literals, and bodies
// that are not one JSON object. Every expectation was checked against the encoding/json version.
func TestParseEventTrickyBodies(t *testing.T) {
	const base = `"currency":"USD","total_price":"1.00","created_at":"2020-01-01T00:00:00Z"`
	orderBody := func(fields string) string { return `{` + base + `,` + fields + `}` }
	const refundBase = `"id":5,"order_id":7,"created_at":"2020-01-01T00:00:00Z"`
	refundBody := func(fields string) string { return `{` + refundBase + `,` + fields + `}` }
	inOrder := func(refund string) string { return orderBody(`"id":7,"refunds":[` + refund + `]`) }

	cases := []struct {
		name, topic, body string
		// wantErr is the whole message after "malformed payload: ", or, ending in "…", its start.
		wantErr string
		check   func(t *testing.T, ev integrations.OrderEvent)
	}{
		// Bodies that are not one JSON object.
		{name: "empty body", topic: TopicOrdersCreate, body: ``, wantErr: "body is not valid JSON: …"},
		{name: "blank body", topic: TopicOrdersCreate, body: " \n", wantErr: "body is not valid JSON: …"},
		{name: "trailing garbage", topic: TopicOrdersCreate, body: orderBody(`"id":1`) + `x`, wantErr: "body is not valid JSON: …"},
		{name: "second value", topic: TopicOrdersCreate, body: orderBody(`"id":1`) + ` {}`, wantErr: "body is not valid JSON: …"},
		{name: "invalid JSON in an unread field", topic: TopicOrdersCreate, body: orderBody(`"id":1,"note_attributes":[1,]`), wantErr: "body is not valid JSON: …"},
		{name: "nesting beyond encoding/json's limit in an unread field", topic: TopicOrdersCreate,
			body: orderBody(`"id":1,"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001)), wantErr: "body is not valid JSON: …"},
		{name: "top-level array", topic: TopicOrdersCreate, body: `[{"id":1}]`, wantErr: "body must be a JSON object"},
		{name: "top-level null", topic: TopicOrdersCreate, body: ` null `, wantErr: "body must be a JSON object"},
		{name: "top-level string", topic: TopicOrdersCreate, body: `"{}"`, wantErr: "body must be a JSON object"},
		{name: "refund: empty body", topic: TopicRefundsCreate, body: ``, wantErr: "body is not valid JSON"},
		{name: "refund: trailing garbage", topic: TopicRefundsCreate, body: refundBody(`"x":1`) + `]`, wantErr: "body is not valid JSON"},
		{name: "refund: top-level array", topic: TopicRefundsCreate, body: `[]`, wantErr: "refund must be an object"},
		{name: "refund: top-level null", topic: TopicRefundsCreate, body: `null`, wantErr: "refund must be an object"},
		{name: "surrounding whitespace", topic: TopicOrdersCreate, body: "\r\n\t " + orderBody(`"id":1`) + " \n",
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "1") }},

		// Keys are matched as encoding/json matched struct fields: any case, the last match winning.
		{name: "keys in other case", topic: TopicOrdersCreate,
			body: `{"ID":3,"Currency":"eur","TOTAL_PRICE":"2.50","Created_At":"2020-01-01T00:00:00Z","CUSTOMER":{"Email":"A@B.co"}}`,
			check: func(t *testing.T, ev integrations.OrderEvent) {
				o := ev.Order
				if o.OrderID != "3" || o.Currency != "EUR" || o.TotalMinor != 250 || o.Email != "a@b.co" {
					t.Fatalf("got %+v", o)
				}
			}},
		{name: "Unicode case folding (Kelvin sign, long s)", topic: TopicRefundsCreate,
			body:  refundBody(`"transactions":[{"\u212aind":"refund","ſtatus":"success","amount":"1.00","currency":"USD"}]`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 100, "USD") }},
		{name: "escaped key", topic: TopicOrdersCreate, body: orderBody(`"\u0069d":4`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "4") }},
		{name: "invalid UTF-8 in a key matches nothing", topic: TopicOrdersCreate, body: orderBody("\"i\xffd\":4"), wantErr: "id is missing"},
		{name: "duplicate keys: the last wins", topic: TopicOrdersCreate, body: orderBody(`"id":1,"id":2`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "2") }},
		{name: "duplicate keys in other case: the last wins", topic: TopicOrdersCreate, body: orderBody(`"Id":1,"iD":2`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "2") }},
		{name: "a later null removes a field", topic: TopicOrdersCreate, body: orderBody(`"id":1,"ID":null`), wantErr: "id is missing"},
		{name: "a later bad value is read", topic: TopicOrdersCreate, body: orderBody(`"id":1,"id":"x"`), wantErr: `id must be a whole number, got "x"`},

		// Null and absent alike; values of the wrong kind.
		{name: "null customer", topic: TopicOrdersCreate, body: orderBody(`"id":1,"customer":null,"email":"e@x.io"`),
			check: func(t *testing.T, ev integrations.OrderEvent) {
				if o := ev.Order; o.CustomerExternalID != "" || o.Name != "" || o.Email != "e@x.io" {
					t.Fatalf("got %+v", o)
				}
			}},
		{name: "customer as a string", topic: TopicOrdersCreate, body: orderBody(`"id":1,"customer":"bob"`), wantErr: "customer must be an object"},
		{name: "customer as an array", topic: TopicOrdersCreate, body: orderBody(`"id":1,"customer":[{}]`), wantErr: "customer must be an object"},
		{name: "empty customer", topic: TopicOrdersCreate, body: orderBody(`"id":1,"customer":{}`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "1") }},
		{name: "refunds as an object", topic: TopicOrdersUpdated, body: orderBody(`"id":1,"refunds":{"id":1}`), wantErr: "refunds must be an array"},
		{name: "refunds as a string", topic: TopicOrdersUpdated, body: orderBody(`"id":1,"refunds":"[]"`), wantErr: "refunds must be an array"},
		{name: "refunds null", topic: TopicOrdersUpdated, body: orderBody(`"id":1,"refunds":null`),
			check: func(t *testing.T, ev integrations.OrderEvent) {
				if ev.Refunds != nil {
					t.Fatalf("got %+v", ev.Refunds)
				}
			}},
		{name: "null refund", topic: TopicOrdersUpdated, body: inOrder(`null`), wantErr: "refunds[0] must be an object"},
		{name: "transactions as an object", topic: TopicRefundsCreate, body: refundBody(`"transactions":{}`), wantErr: "transactions must be an array"},
		{name: "null transaction", topic: TopicOrdersUpdated, body: inOrder(refundBody(`"transactions":[{"kind":"void"},null]`)),
			wantErr: "refunds[0].transactions[1] must be an object"},
		{name: "transaction kind a number", topic: TopicRefundsCreate, body: refundBody(`"transactions":[{"kind":1}]`), wantErr: "transactions[0].kind must be a string"},
		{name: "transaction status checked even for another kind", topic: TopicRefundsCreate, body: refundBody(`"transactions":[{"kind":"void","status":true}]`),
			wantErr: "transactions[0].status must be a string"},
		{name: "null transactions: estimated from line items", topic: TopicRefundsCreate,
			body:  refundBody(`"transactions":null,"refund_line_items":[{"subtotal_set":{"shop_money":{"amount":"3.00","currency_code":"CAD"}}}]`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 300, "CAD") }},
		{name: "subtotal_set as a string", topic: TopicRefundsCreate, body: refundBody(`"refund_line_items":[{"subtotal":1,"subtotal_set":"1.00"}]`),
			wantErr: "refund_line_items[0].subtotal_set must be an object"},
		{name: "null shop_money: the bare subtotal in the order's currency", topic: TopicOrdersUpdated,
			body:  inOrder(refundBody(`"refund_line_items":[{"subtotal":0.5,"subtotal_set":{"shop_money":null}}]`)),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 50, "USD") }},
		{name: "deepest name", topic: TopicOrdersUpdated,
			body:    inOrder(refundBody(`"refund_line_items":[{"subtotal":1},{"subtotal_set":{"shop_money":{"amount":true}}}]`)),
			wantErr: "refunds[0].refund_line_items[1].subtotal_set.shop_money.amount must be a decimal amount, got true"},
		{name: "empty shop_money", topic: TopicOrdersUpdated,
			body:    inOrder(refundBody(`"refund_line_items":[{"subtotal_set":{"shop_money":{}}}]`)),
			wantErr: "refunds[0].refund_line_items[0].subtotal_set.shop_money.amount is missing"},

		// Strings: escapes are decoded, invalid UTF-8 is replaced, case is ignored where it was.
		{name: "escaped strings", topic: TopicRefundsCreate,
			body:  refundBody(`"transactions":[{"kind":"\u0072efund","status":"succ\u0065ss","amount":"\u0031.00","currency":"\u0075sd"}]`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 100, "USD") }},
		{name: "kind and status in other case", topic: TopicRefundsCreate,
			body:  refundBody(`"transactions":[{"kind":"REFUND","status":"Success","amount":"2","currency":"USD"}]`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 200, "USD") }},
		{name: "kind with invalid UTF-8 is another kind", topic: TopicRefundsCreate,
			body:  refundBody("\"transactions\":[{\"kind\":\"refund\xff\",\"status\":\"success\",\"amount\":\"2\",\"currency\":\"USD\"}]"),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 0, "") }},
		{name: "invalid UTF-8 in a name is replaced", topic: TopicOrdersCreate,
			body: orderBody("\"id\":1,\"customer\":{\"first_name\":\"Jo\xffn\",\"last_name\":\"Sn\\u00f6w\\n\"}"),
			check: func(t *testing.T, ev integrations.OrderEvent) {
				if ev.Order.Name != "Jo\uFFFDn Snöw" {
					t.Fatalf("got %q", ev.Order.Name)
				}
			}},
		{name: "escaped string in an error", topic: TopicOrdersCreate, body: orderBody(`"id":1,"cancelled_at":"\u0074oday"`),
			wantErr: `cancelled_at: "today" is not an RFC 3339 time`},

		// Numbers keep their literal text.
		{name: "id beyond 2^53", topic: TopicOrdersCreate, body: orderBody(`"id":820982911946154509`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "820982911946154509") }},
		{name: "id as a string of digits", topic: TopicOrdersCreate, body: orderBody(`"id":"0012"`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantOrderID(t, ev, "0012") }},
		{name: "id with a fraction", topic: TopicOrdersCreate, body: orderBody(`"id":1.0`), wantErr: "id must be a whole number, got 1.0"},
		{name: "id an empty string", topic: TopicOrdersCreate, body: orderBody(`"id":""`), wantErr: `id must be a whole number, got ""`},
		{name: "id an array", topic: TopicOrdersCreate, body: orderBody(`"id":[1]`), wantErr: "id must be a whole number, got [1]"},
		{name: "amount as a number literal", topic: TopicRefundsCreate,
			body:  refundBody(`"transactions":[{"kind":"refund","status":"success","amount":0.10,"currency":"USD"}]`),
			check: func(t *testing.T, ev integrations.OrderEvent) { wantRefund(t, ev, 10, "USD") }},
		{name: "amount an object", topic: TopicRefundsCreate,
			body:    refundBody(`"transactions":[{"kind":"refund","status":"success","amount":{"x":1},"currency":"USD"}]`),
			wantErr: `transactions[0].amount must be a decimal amount, got {"x":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent(c.topic, []byte(c.body), "")
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, ev)
				return
			}
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("got %+v, %v; want ErrMalformed", ev, err)
			}
			msg := strings.TrimPrefix(err.Error(), integrations.ErrMalformed.Error()+": ")
			if prefix, ok := strings.CutSuffix(c.wantErr, "…"); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Fatalf("error %q, want it to start with %q", msg, prefix)
				}
			} else if msg != c.wantErr {
				t.Fatalf("error %q, want %q", msg, c.wantErr)
			}
		})
	}
}

func wantOrderID(t *testing.T, ev integrations.OrderEvent, id string) {
	t.Helper()
	if ev.Order == nil || ev.Order.OrderID != id {
		t.Fatalf("got order %+v, want id %s", ev.Order, id)
	}
}

// wantRefund expects the one refund of the tricky bodies (id 5 of order 7), or none when amount is 0.
func wantRefund(t *testing.T, ev integrations.OrderEvent, amount int64, currency string) {
	t.Helper()
	var want []integrations.Refund
	if amount != 0 {
		want = []integrations.Refund{{Source: integrations.SourceShopify, OrderID: "7", RefundID: "5",
			AmountMinor: amount, Currency: currency, CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}
	}
	if !reflect.DeepEqual(ev.Refunds, want) {
		t.Fatalf("refunds %+v, want %+v", ev.Refunds, want)
	}
}
