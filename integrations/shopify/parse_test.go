package shopify

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/testdata"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/money"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// checkCancelledFixture holds what both copies of the go-shopify fixture must give: its quirks are
// customer.id null, customer.email differing from the order's email, processed_at null,
// current_total_price below total_price, and an order both cancelled and voided.
func checkCancelledFixture(t *testing.T, ev integrations.OrderEvent) {
	t.Helper()
	o := ev.Order
	if o == nil {
		t.Fatal("Order is nil")
	}
	want := integrations.Order{
		Source:             integrations.SourceShopify,
		OrderID:            "123456",
		CustomerExternalID: "",                                  // customer.id is null
		Email:              "john@test.com",                     // customer.email wins over the order's jon@doe.ca
		Name:               "John Smith",                        // customer first + last name
		CreatedAt:          mustTime(t, "2016-05-17T04:14:36Z"), // processed_at null → created_at ("-00:00" is UTC)
		UpdatedAt:          mustTime(t, "2016-05-17T08:14:36Z"), // updated_at, "-04:00"
		Currency:           "USD",
		TotalMinor:         1000, // total_price "10.00", not current_total_price "9.50"
		Status:             integrations.OrderCancelled,
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("order\n got %+v\nwant %+v", *o, want)
	}
	if len(ev.Refunds) != 0 {
		t.Fatalf("refunds: got %+v, want none (the payload's refunds is [])", ev.Refunds)
	}
}

func TestParseEventCancelledFixture(t *testing.T) {
	for _, topic := range []string{TopicOrdersCreate, TopicOrdersUpdated, TopicOrdersPaid, TopicOrdersCancelled} {
		t.Run(topic, func(t *testing.T) {
			ev, err := ParseEvent(topic, readFixture(t, "order-cancelled.json"), "evt-1")
			if err != nil {
				t.Fatal(err)
			}
			if ev.Topic != topic || ev.EventID != "evt-1" {
				t.Fatalf("topic/event id: got %q/%q", ev.Topic, ev.EventID)
			}
			checkCancelledFixture(t, ev)
		})
	}
}

// TestParseEventSharedPayload runs the shared, unedited payload. It lives outside this package, so it
// is optional locally and mandatory in CI.
func TestParseEventSharedPayload(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(testdata.PayloadsDir(t), "shopify-order.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvent(TopicOrdersUpdated, body, "")
	if err != nil {
		t.Fatal(err)
	}
	checkCancelledFixture(t, ev)
}

func TestParseEventRefundedOrder(t *testing.T) {
	ev, err := ParseEvent(TopicOrdersUpdated, readFixture(t, "order-refunded.json"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := integrations.Order{
		Source:             integrations.SourceShopify,
		OrderID:            "820982911946154508", // beyond 2^53: a float64 would give ...4500
		CustomerExternalID: "115310627314723954",
		Email:              "jon@example.com", // customer.email null → order email, normalised
		Name:               "Jon Snow",
		CreatedAt:          mustTime(t, "2021-07-04T13:30:00Z"), // processed_at (an imported order), not created_at
		UpdatedAt:          mustTime(t, "2024-03-05T07:15:30.123Z"),
		Currency:           "USD", // "usd" upper-cased
		TotalMinor:         19900,
		Status:             integrations.OrderPaid, // partially_refunded
	}
	if !reflect.DeepEqual(*ev.Order, want) {
		t.Fatalf("order\n got %+v\nwant %+v", *ev.Order, want)
	}
	wantRefunds := []integrations.Refund{
		// 41.94 + 10 from the successful refund transactions; the failed refund and the void are not
		// money returned, and the 195.67 line-item subtotal is ignored when transactions exist.
		{Source: integrations.SourceShopify, OrderID: "820982911946154508", RefundID: "929361464",
			AmountMinor: 5194, Currency: "USD", CreatedAt: mustTime(t, "2024-03-05T07:15:30Z")},
		// 929361465 has transactions: [] — no money moved — so it is left out.
		// 929361466 has no transactions field: estimated from line items, 0.1 (a JSON number) + "0.1".
		{Source: integrations.SourceShopify, OrderID: "820982911946154508", RefundID: "929361466",
			AmountMinor: 20, Currency: "USD", CreatedAt: mustTime(t, "2024-03-05T09:00:00Z")},
	}
	if !reflect.DeepEqual(ev.Refunds, wantRefunds) {
		t.Fatalf("refunds\n got %+v\nwant %+v", ev.Refunds, wantRefunds)
	}
}

func TestParseEventRefundCreate(t *testing.T) {
	ev, err := ParseEvent(TopicRefundsCreate, readFixture(t, "refund-create.json"), "wh-9")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Order != nil {
		t.Fatalf("Order: got %+v, want nil for a refund", ev.Order)
	}
	want := integrations.OrderEvent{
		Topic:   TopicRefundsCreate,
		EventID: "wh-9",
		Refunds: []integrations.Refund{{
			Source: integrations.SourceShopify, OrderID: "820982911946154508", RefundID: "890088186047892319",
			AmountMinor: 19900, Currency: "USD", CreatedAt: mustTime(t, "2024-03-06T15:00:01Z"), // processed_at
		}},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("event\n got %+v\nwant %+v", ev, want)
	}
}

func TestParseEventRefundCreateCases(t *testing.T) {
	cases := []struct {
		name, body string
		amount     int64 // 0: no refund expected
		currency   string
	}{
		{"pending transaction only",
			`{"id":1,"order_id":2,"created_at":"2024-01-01T00:00:00Z","transactions":[{"kind":"refund","status":"pending","amount":"5.00","currency":"EUR"}]}`,
			0, ""},
		{"restock only, transactions empty",
			`{"id":1,"order_id":2,"created_at":"2024-01-01T00:00:00Z","transactions":[],"refund_line_items":[{"subtotal":5.0,"subtotal_set":{"shop_money":{"amount":"5.00","currency_code":"EUR"}}}]}`,
			0, ""},
		{"no transactions field, line items in shop money",
			`{"id":1,"order_id":2,"created_at":"2024-01-01T00:00:00Z","refund_line_items":[{"subtotal_set":{"shop_money":{"amount":"12.5","currency_code":"eur"}}},{"subtotal_set":{"shop_money":{"amount":"0.1","currency_code":"EUR"}}}]}`,
			1260, "EUR"},
		{"zero-decimal currency",
			`{"id":1,"order_id":2,"created_at":"2024-01-01T00:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"1500","currency":"JPY"}]}`,
			1500, "JPY"},
		{"ids as digit strings",
			`{"id":"1","order_id":"2","created_at":"2024-01-01T00:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"1.00","currency":"USD"}]}`,
			100, "USD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent(TopicRefundsCreate, []byte(c.body), "")
			if err != nil {
				t.Fatal(err)
			}
			if c.amount == 0 {
				if len(ev.Refunds) != 0 {
					t.Fatalf("got %+v, want no refund", ev.Refunds)
				}
				return
			}
			if len(ev.Refunds) != 1 || ev.Refunds[0].AmountMinor != c.amount || ev.Refunds[0].Currency != c.currency ||
				ev.Refunds[0].RefundID != "1" || ev.Refunds[0].OrderID != "2" {
				t.Fatalf("got %+v, want one refund of %d %s", ev.Refunds, c.amount, c.currency)
			}
		})
	}
}

// order builds a minimal order body with overrides; a nil value deletes the field.
func order(t *testing.T, overrides map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"id":               json.Number("450789469"),
		"email":            "bob.norman@mail.example.com",
		"created_at":       "2008-01-10T11:00:00-05:00",
		"updated_at":       "2008-01-10T11:00:00-05:00",
		"currency":         "USD",
		"total_price":      "598.94",
		"financial_status": "paid",
		"customer":         map[string]any{"id": json.Number("207119551"), "email": "bob.norman@mail.example.com", "first_name": "Bob", "last_name": "Norman"},
	}
	for k, v := range overrides {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEventOrderFields(t *testing.T) {
	cases := []struct {
		name      string
		overrides map[string]any
		check     func(t *testing.T, o *integrations.Order)
	}{
		{"null customer", map[string]any{"customer": json.RawMessage("null"), "email": "Guest@Example.COM"},
			func(t *testing.T, o *integrations.Order) {
				if o.CustomerExternalID != "" || o.Name != "" || o.Email != "guest@example.com" {
					t.Fatalf("got id %q name %q email %q", o.CustomerExternalID, o.Name, o.Email)
				}
			}},
		{"customer without id", map[string]any{"customer": map[string]any{"email": "c@example.com"}},
			func(t *testing.T, o *integrations.Order) {
				if o.CustomerExternalID != "" || o.Email != "c@example.com" {
					t.Fatalf("got id %q email %q", o.CustomerExternalID, o.Email)
				}
			}},
		{"big ids exact", map[string]any{"id": json.Number("820982911946154508"), "customer": map[string]any{"id": json.Number("9007199254740993")}},
			func(t *testing.T, o *integrations.Order) {
				if o.OrderID != "820982911946154508" || o.CustomerExternalID != "9007199254740993" {
					t.Fatalf("got %q / %q", o.OrderID, o.CustomerExternalID)
				}
			}},
		{"price 0.1", map[string]any{"total_price": "0.1"},
			func(t *testing.T, o *integrations.Order) {
				if o.TotalMinor != 10 {
					t.Fatalf("got %d, want 10", o.TotalMinor)
				}
			}},
		{"price 199.00", map[string]any{"total_price": "199.00"},
			func(t *testing.T, o *integrations.Order) {
				if o.TotalMinor != 19900 {
					t.Fatalf("got %d, want 19900", o.TotalMinor)
				}
			}},
		{"price as JSON number parsed from its text", map[string]any{"total_price": json.Number("0.3")},
			func(t *testing.T, o *integrations.Order) {
				if o.TotalMinor != 30 {
					t.Fatalf("got %d, want 30", o.TotalMinor)
				}
			}},
		{"three-decimal currency", map[string]any{"currency": "KWD", "total_price": "1.234"},
			func(t *testing.T, o *integrations.Order) {
				if o.TotalMinor != 1234 || o.Currency != "KWD" {
					t.Fatalf("got %d %s", o.TotalMinor, o.Currency)
				}
			}},
		{"email falls back to contact_email", map[string]any{"customer": json.RawMessage("null"), "email": "", "contact_email": " X@Y.org "},
			func(t *testing.T, o *integrations.Order) {
				if o.Email != "x@y.org" {
					t.Fatalf("got %q", o.Email)
				}
			}},
		{"invalid customer email skipped", map[string]any{"customer": map[string]any{"id": json.Number("1"), "email": "not-an-address"}, "email": "o@example.com"},
			func(t *testing.T, o *integrations.Order) {
				if o.Email != "o@example.com" {
					t.Fatalf("got %q", o.Email)
				}
			}},
		{"no email at all", map[string]any{"customer": json.RawMessage("null"), "email": nil},
			func(t *testing.T, o *integrations.Order) {
				if o.Email != "" {
					t.Fatalf("got %q", o.Email)
				}
			}},
		{"control characters dropped from name", map[string]any{"customer": map[string]any{"id": json.Number("1"), "first_name": "A\u0000na", "last_name": nil}},
			func(t *testing.T, o *integrations.Order) {
				if o.Name != "Ana" {
					t.Fatalf("got %q", o.Name)
				}
			}},
		{"missing updated_at falls back to created_at", map[string]any{"updated_at": nil, "processed_at": "2007-01-01T00:00:00Z"},
			func(t *testing.T, o *integrations.Order) {
				if !o.UpdatedAt.Equal(mustTime(t, "2008-01-10T16:00:00Z")) || !o.CreatedAt.Equal(mustTime(t, "2007-01-01T00:00:00Z")) {
					t.Fatalf("got created %v updated %v", o.CreatedAt, o.UpdatedAt)
				}
			}},
		{"empty cancelled_at is not cancelled", map[string]any{"cancelled_at": ""},
			func(t *testing.T, o *integrations.Order) {
				if o.Status != integrations.OrderPaid {
					t.Fatalf("got %s", o.Status)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent(TopicOrdersCreate, order(t, c.overrides), "")
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, ev.Order)
		})
	}
}

func TestParseEventStatus(t *testing.T) {
	cases := []struct {
		financial   any
		cancelledAt any
		want        integrations.OrderStatus
	}{
		{"paid", nil, integrations.OrderPaid},
		{"partially_refunded", nil, integrations.OrderPaid},
		{"partially_paid", nil, integrations.OrderPaid},
		{"refunded", nil, integrations.OrderRefunded},
		{"voided", nil, integrations.OrderCancelled},
		{"pending", nil, integrations.OrderOpen},
		{"authorized", nil, integrations.OrderOpen},
		{"expired", nil, integrations.OrderOpen},
		{nil, nil, integrations.OrderOpen},
		{"paid", "2008-01-11T11:00:00-05:00", integrations.OrderCancelled},
		{"refunded", "2008-01-11T11:00:00-05:00", integrations.OrderCancelled},
		{"pending", "2008-01-11T11:00:00-05:00", integrations.OrderCancelled},
	}
	for _, c := range cases {
		ev, err := ParseEvent(TopicOrdersUpdated, order(t, map[string]any{"financial_status": c.financial, "cancelled_at": c.cancelledAt}), "")
		if err != nil {
			t.Fatalf("%v/%v: %v", c.financial, c.cancelledAt, err)
		}
		if ev.Order.Status != c.want {
			t.Errorf("financial_status %v, cancelled_at %v: got %s, want %s", c.financial, c.cancelledAt, ev.Order.Status, c.want)
		}
	}
}

func TestParseEventUnsupportedTopic(t *testing.T) {
	for _, topic := range []string{"", "orders/fulfilled", "products/update", "ORDERS/CREATE", "app/uninstalled"} {
		if Supported(topic) {
			t.Errorf("Supported(%q) = true", topic)
		}
		_, err := ParseEvent(topic, order(t, nil), "")
		if !errors.Is(err, ErrUnsupportedTopic) || errors.Is(err, integrations.ErrMalformed) {
			t.Errorf("topic %q: got %v, want only ErrUnsupportedTopic", topic, err)
		}
	}
	for _, topic := range []string{TopicOrdersCreate, TopicOrdersUpdated, TopicOrdersPaid, TopicOrdersCancelled, TopicRefundsCreate} {
		if !Supported(topic) {
			t.Errorf("Supported(%q) = false", topic)
		}
	}
}

func TestParseEventMalformed(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name  string
		topic string
		body  []byte
		field string // the error must name it
	}{
		{"not JSON", TopicOrdersCreate, []byte(`{"id":`), "JSON"},
		{"array body", TopicOrdersCreate, []byte(`[1]`), "object"},
		{"null body", TopicOrdersCreate, []byte(`null`), "object"},
		{"missing id", TopicOrdersCreate, order(t, map[string]any{"id": nil}), "id"},
		{"null id", TopicOrdersCreate, order(t, map[string]any{"id": raw("null")}), "id"},
		{"fractional id", TopicOrdersCreate, order(t, map[string]any{"id": raw("1.5")}), "id"},
		{"negative id", TopicOrdersCreate, order(t, map[string]any{"id": raw("-4")}), "id"},
		{"exponent id", TopicOrdersCreate, order(t, map[string]any{"id": raw("1e18")}), "id"},
		{"non-numeric string id", TopicOrdersCreate, order(t, map[string]any{"id": "gid://shopify/Order/1"}), "id"},
		{"object id", TopicOrdersCreate, order(t, map[string]any{"id": raw(`{}`)}), "id"},
		{"customer id text", TopicOrdersCreate, order(t, map[string]any{"customer": raw(`{"id":"abc"}`)}), "customer.id"},
		{"customer not object", TopicOrdersCreate, order(t, map[string]any{"customer": raw(`"bob"`)}), "customer"},
		{"customer email number", TopicOrdersCreate, order(t, map[string]any{"customer": raw(`{"email":5}`)}), "customer.email"},
		{"missing total_price", TopicOrdersCreate, order(t, map[string]any{"total_price": nil}), "total_price"},
		{"total_price words", TopicOrdersCreate, order(t, map[string]any{"total_price": "ten"}), "total_price"},
		{"total_price too many decimals", TopicOrdersCreate, order(t, map[string]any{"total_price": "1.001"}), "total_price"},
		{"total_price exponent", TopicOrdersCreate, order(t, map[string]any{"total_price": raw("1e2")}), "total_price"},
		{"total_price boolean", TopicOrdersCreate, order(t, map[string]any{"total_price": true}), "total_price"},
		{"total_price negative", TopicOrdersCreate, order(t, map[string]any{"total_price": "-1.00"}), "total_price"},
		{"total_price thousands separator", TopicOrdersCreate, order(t, map[string]any{"total_price": "1,000.00"}), "total_price"},
		{"missing currency", TopicOrdersCreate, order(t, map[string]any{"currency": nil}), "currency"},
		{"currency format", TopicOrdersCreate, order(t, map[string]any{"currency": "US$"}), "currency"},
		{"currency number", TopicOrdersCreate, order(t, map[string]any{"currency": 840}), "currency"},
		{"missing created_at", TopicOrdersCreate, order(t, map[string]any{"created_at": nil}), "created_at"},
		{"created_at unparsable", TopicOrdersCreate, order(t, map[string]any{"created_at": "yesterday"}), "created_at"},
		{"created_at without zone", TopicOrdersCreate, order(t, map[string]any{"created_at": "2008-01-10T11:00:00"}), "created_at"},
		{"updated_at unparsable", TopicOrdersCreate, order(t, map[string]any{"updated_at": "2008-13-10T11:00:00Z"}), "updated_at"},
		{"processed_at number", TopicOrdersCreate, order(t, map[string]any{"processed_at": 1200000000}), "processed_at"},
		{"cancelled_at unparsable", TopicOrdersCancelled, order(t, map[string]any{"cancelled_at": "now"}), "cancelled_at"},
		{"financial_status number", TopicOrdersPaid, order(t, map[string]any{"financial_status": 1}), "financial_status"},
		{"refunds not array", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`{}`)}), "refunds"},
		{"refund not object", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[1]`)}), "refunds[0]"},
		{"refund missing id", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"created_at":"2008-01-10T11:00:00Z"}]`)}), "refunds[0].id"},
		{"refund of another order", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"order_id":99,"created_at":"2008-01-10T11:00:00Z"}]`)}), "refunds[0].order_id"},
		{"refund missing created_at", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"transactions":[]}]`)}), "refunds[0].created_at"},
		{"refund transaction amount bad", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"x"}]}]`)}),
			"refunds[0].transactions[0].amount"},
		{"refund transaction amount missing", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":[{"kind":"refund","status":"success"}]}]`)}),
			"refunds[0].transactions[0].amount"},
		{"refund transaction negative", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"-1.00"}]}]`)}),
			"refunds[0].transactions[0].amount"},
		{"refund transactions mixed currencies", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"1","currency":"USD"},{"kind":"refund","status":"success","amount":"1","currency":"EUR"}]}]`)}),
			"refunds[0].transactions[1].currency"},
		{"refund transaction not object", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":["x"]}]`)}),
			"refunds[0].transactions[0]"},
		{"refund line item subtotal bad", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","refund_line_items":[{"subtotal":"abc"}]}]`)}),
			"refunds[0].refund_line_items[0].subtotal"},
		{"refund line item subtotal missing", TopicOrdersUpdated, order(t, map[string]any{"refunds": raw(`[{"id":1,"created_at":"2008-01-10T11:00:00Z","refund_line_items":[{"quantity":1}]}]`)}),
			"refunds[0].refund_line_items[0].subtotal"},
		{"refunds/create missing order_id", TopicRefundsCreate, []byte(`{"id":1,"created_at":"2008-01-10T11:00:00Z","transactions":[]}`), "order_id"},
		{"refunds/create missing id", TopicRefundsCreate, []byte(`{"order_id":1,"created_at":"2008-01-10T11:00:00Z"}`), "id"},
		{"refunds/create transaction without currency", TopicRefundsCreate,
			[]byte(`{"id":1,"order_id":2,"created_at":"2008-01-10T11:00:00Z","transactions":[{"kind":"refund","status":"success","amount":"1.00"}]}`),
			"transactions[0].currency"},
		{"refunds/create line item without currency", TopicRefundsCreate,
			[]byte(`{"id":1,"order_id":2,"created_at":"2008-01-10T11:00:00Z","refund_line_items":[{"subtotal":1.0}]}`),
			"refund_line_items[0]"},
		{"refunds/create not JSON", TopicRefundsCreate, []byte(`nope`), "JSON"},
		{"refunds/create array", TopicRefundsCreate, []byte(`[]`), "object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent(c.topic, c.body, "")
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("got event %+v, error %v; want ErrMalformed", ev, err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %q", err, c.field)
			}
		})
	}
}

func TestParseEventAmountOverflow(t *testing.T) {
	// Each amount is within money.ParseMinor's range; their sum is not.
	big := `"999999999999999.99"`
	tx := `{"kind":"refund","status":"success","amount":` + big + `,"currency":"USD"}`
	body := `{"id":1,"order_id":2,"created_at":"2008-01-10T11:00:00Z","transactions":[` + strings.Repeat(tx+",", 99) + tx + `]}`
	_, err := ParseEvent(TopicRefundsCreate, []byte(body), "")
	if !errors.Is(err, integrations.ErrMalformed) || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("got %v, want an overflow error", err)
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, name := range []string{"order-cancelled.json", "order-refunded.json", "refund-create.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(TopicOrdersUpdated, b)
		f.Add(TopicRefundsCreate, b)
	}
	f.Add(TopicOrdersCreate, []byte(`{"id":1,"currency":"USD","total_price":"0.1","created_at":"2020-01-01T00:00:00Z","customer":null}`))
	f.Add(TopicRefundsCreate, []byte(`{"id":1,"order_id":2,"created_at":"2020-01-01T00:00:00Z","refund_line_items":[{"subtotal":1e400}]}`))
	f.Add("products/update", []byte(`{}`))
	f.Add(TopicOrdersPaid, []byte(`{"id":"0","total_price":-0,"currency":"jpy","created_at":"2020-01-01T00:00:00+24:00"}`))
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		ev, err := ParseEvent(topic, body, "d")
		if err != nil {
			if !errors.Is(err, integrations.ErrMalformed) && !errors.Is(err, ErrUnsupportedTopic) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupportedTopic: %v", err)
			}
			return
		}
		if !Supported(topic) || ev.Topic != topic || ev.EventID != "d" {
			t.Fatalf("unexpected event for topic %q: %+v", topic, ev)
		}
		if topic == TopicRefundsCreate {
			if ev.Order != nil || len(ev.Refunds) > 1 {
				t.Fatalf("refunds/create gave %+v", ev)
			}
		} else {
			o := ev.Order
			if o == nil || o.OrderID == "" || o.TotalMinor < 0 || !money.ValidCurrency(o.Currency) ||
				o.Currency != strings.ToUpper(o.Currency) || !o.Status.Valid() || o.CreatedAt.IsZero() || o.UpdatedAt.IsZero() {
				t.Fatalf("invalid order: %+v", o)
			}
		}
		for _, r := range ev.Refunds {
			if r.RefundID == "" || r.OrderID == "" || r.AmountMinor <= 0 || !money.ValidCurrency(r.Currency) || r.CreatedAt.IsZero() {
				t.Fatalf("invalid refund: %+v", r)
			}
		}
	})
}
