package orders

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/money"
)

func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

func TestExampleParses(t *testing.T) {
	ev, err := ParseOrder([]byte(Example))
	if err != nil {
		t.Fatalf("Example does not parse: %v", err)
	}
	want := integrations.OrderEvent{
		Topic:   "order",
		EventID: "evt_8f14e45f",
		Order: &integrations.Order{
			Source:             integrations.SourceOrders,
			OrderID:            "1001",
			CustomerExternalID: "cus_42",
			Email:              "ada@example.com",
			Name:               "Ada Lovelace",
			CreatedAt:          utc(t, "2025-03-14T09:26:53Z"),
			UpdatedAt:          utc(t, "2025-03-20T10:00:00Z"),
			Currency:           "EUR",
			TotalMinor:         5990,
			Status:             integrations.OrderPaid,
		},
		Refunds: []integrations.Refund{{
			Source: integrations.SourceOrders, OrderID: "1001", RefundID: "1001-r1",
			AmountMinor: 1000, Currency: "EUR", CreatedAt: utc(t, "2025-03-20T10:00:00Z"),
		}},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("Example\n got %+v %+v\nwant %+v %+v", ev, *ev.Order, want, *want.Order)
	}
}

// TestReadmeShowsExample keeps the sender documentation and the tested example identical.
func TestReadmeShowsExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```json\n"+Example+"\n```") {
		t.Fatal("README.md does not show Example verbatim in a json code block; copy it from orders.go")
	}
}

// body builds a valid order with overrides; a nil value deletes the field.
func body(t *testing.T, overrides map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"order_id":   "A-1001",
		"email":      "ana@example.com",
		"created_at": "2026-11-01T10:00:00Z",
		"amount":     "59.90",
		"currency":   "EUR",
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

func TestParseOrderGood(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name      string
		overrides map[string]any
		check     func(t *testing.T, ev integrations.OrderEvent)
	}{
		{"minimal: defaults", nil, func(t *testing.T, ev integrations.OrderEvent) {
			o := ev.Order
			if o.Status != integrations.OrderPaid || !o.UpdatedAt.Equal(o.CreatedAt) || o.CustomerExternalID != "" ||
				ev.EventID != "" || ev.Topic != Topic || len(ev.Refunds) != 0 || o.Source != integrations.SourceOrders {
				t.Fatalf("got %+v %+v", ev, *o)
			}
		}},
		{"customer_id without email", map[string]any{"email": nil, "customer_id": "c-1"}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.CustomerExternalID != "c-1" || ev.Order.Email != "" {
				t.Fatalf("got %+v", *ev.Order)
			}
		}},
		{"email normalised", map[string]any{"email": "  Ana@Example.COM "}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.Email != "ana@example.com" {
				t.Fatalf("got %q", ev.Order.Email)
			}
		}},
		{"null optional fields", map[string]any{"customer_id": raw("null"), "name": raw("null"), "status": raw("null"), "refunds": raw("null"), "updated_at": raw("null"), "event_id": raw("null")},
			func(t *testing.T, ev integrations.OrderEvent) {
				if ev.Order.Status != integrations.OrderPaid || len(ev.Refunds) != 0 {
					t.Fatalf("got %+v", *ev.Order)
				}
			}},
		{"amount 0.1 exact", map[string]any{"amount": "0.1"}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.TotalMinor != 10 {
				t.Fatalf("got %d", ev.Order.TotalMinor)
			}
		}},
		{"amount zero", map[string]any{"amount": "0"}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.TotalMinor != 0 {
				t.Fatalf("got %d", ev.Order.TotalMinor)
			}
		}},
		{"JPY has no decimals", map[string]any{"amount": "1500", "currency": "jpy"}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.TotalMinor != 1500 || ev.Order.Currency != "JPY" {
				t.Fatalf("got %d %s", ev.Order.TotalMinor, ev.Order.Currency)
			}
		}},
		{"every status", nil, func(t *testing.T, _ integrations.OrderEvent) {
			for _, s := range []integrations.OrderStatus{integrations.OrderOpen, integrations.OrderPaid, integrations.OrderCancelled, integrations.OrderRefunded} {
				ev, err := ParseOrder(body(t, map[string]any{"status": string(s)}))
				if err != nil || ev.Order.Status != s {
					t.Fatalf("status %s: %v %+v", s, err, ev.Order)
				}
			}
		}},
		{"time zones normalised to UTC", map[string]any{"created_at": "2026-11-01T10:00:00+02:00", "updated_at": "2026-11-01T09:00:00.5Z"},
			func(t *testing.T, ev integrations.OrderEvent) {
				if !ev.Order.CreatedAt.Equal(utc(t, "2026-11-01T08:00:00Z")) || ev.Order.CreatedAt.Location() != time.UTC ||
					!ev.Order.UpdatedAt.Equal(utc(t, "2026-11-01T09:00:00.5Z")) {
					t.Fatalf("got %v / %v", ev.Order.CreatedAt, ev.Order.UpdatedAt)
				}
			}},
		{"refunds equal to the total", map[string]any{"amount": "20.00", "refunds": []map[string]any{
			{"refund_id": "r1", "amount": "5.00", "created_at": "2026-11-02T10:00:00Z"},
			{"refund_id": "r2", "amount": "15", "created_at": "2026-11-03T10:00:00Z"}}},
			func(t *testing.T, ev integrations.OrderEvent) {
				if len(ev.Refunds) != 2 || ev.Refunds[0].AmountMinor != 500 || ev.Refunds[1].AmountMinor != 1500 ||
					ev.Refunds[1].Currency != "EUR" || ev.Refunds[1].OrderID != "A-1001" || ev.Refunds[1].Source != integrations.SourceOrders {
					t.Fatalf("got %+v", ev.Refunds)
				}
			}},
		{"unknown fields ignored", map[string]any{"channel": "pos", "line_items": []int{1, 2}, "Amount": 5}, func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.TotalMinor != 5990 {
				t.Fatalf("got %d", ev.Order.TotalMinor)
			}
		}},
		{"id of 255 bytes", map[string]any{"order_id": strings.Repeat("9", 255)}, func(t *testing.T, ev integrations.OrderEvent) {
			if len(ev.Order.OrderID) != 255 {
				t.Fatalf("got %d bytes", len(ev.Order.OrderID))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseOrder(body(t, c.overrides))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, ev)
		})
	}
}

func TestParseOrderBad(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	refund := func(amount any) map[string]any {
		return map[string]any{"refund_id": "r1", "amount": amount, "created_at": "2026-11-02T10:00:00Z"}
	}
	cases := []struct {
		name    string
		body    []byte
		wantMsg string // the error must contain it; it names the field
	}{
		{"not JSON", []byte(`{"order_id":`), "not valid JSON"},
		{"trailing garbage", []byte(`{"order_id":"1"} x`), "not valid JSON"},
		{"array", []byte(`[]`), "must be a JSON object"},
		{"null", []byte(`null`), "must be a JSON object"},
		{"missing order_id", body(t, map[string]any{"order_id": nil}), "order_id is missing"},
		{"blank order_id", body(t, map[string]any{"order_id": "  "}), "order_id is missing"},
		{"numeric order_id", body(t, map[string]any{"order_id": 1001}), "order_id must be a string, not a number"},
		{"order_id too long", body(t, map[string]any{"order_id": strings.Repeat("x", 256)}), "order_id is longer than 255"},
		{"order_id with NUL", body(t, map[string]any{"order_id": "a\u0000b"}), "order_id contains control characters"},
		{"customer_id object", body(t, map[string]any{"customer_id": map[string]any{}}), "customer_id must be a string, not an object"},
		{"customer_id too long", body(t, map[string]any{"customer_id": strings.Repeat("x", 256)}), "customer_id is longer"},
		{"missing both customer_id and email", body(t, map[string]any{"email": nil}), "customer_id and email are both missing"},
		{"empty email and no customer_id", body(t, map[string]any{"email": ""}), "customer_id and email are both missing"},
		{"invalid email", body(t, map[string]any{"email": "ana.example.com"}), "email \"ana.example.com\" is not a valid address"},
		{"email boolean", body(t, map[string]any{"email": true}), "email must be a string, not a boolean"},
		{"name number", body(t, map[string]any{"name": 7}), "name must be a string"},
		{"name too long", body(t, map[string]any{"name": strings.Repeat("é", 256)}), "name is longer than 255"},
		{"missing created_at", body(t, map[string]any{"created_at": nil}), "created_at is missing"},
		{"created_at not RFC 3339", body(t, map[string]any{"created_at": "2026-11-01 10:00:00"}), "created_at \"2026-11-01 10:00:00\" is not an RFC 3339"},
		{"created_at unix number", body(t, map[string]any{"created_at": 1762000000}), "created_at must be a string"},
		{"updated_at bad", body(t, map[string]any{"updated_at": "soon"}), "updated_at"},
		{"updated_at before created_at", body(t, map[string]any{"updated_at": "2026-10-01T10:00:00Z"}), "updated_at 2026-10-01T10:00:00Z is before created_at"},
		{"missing amount", body(t, map[string]any{"amount": nil}), "amount is missing"},
		{"number amount", body(t, map[string]any{"amount": raw("59.90")}), "amount must be a decimal string such as \"59.90\", not the JSON number 59.90"},
		{"integer number amount", body(t, map[string]any{"amount": raw("60")}), "not the JSON number"},
		{"amount object", body(t, map[string]any{"amount": map[string]any{"value": "1"}}), "amount must be a decimal string such as \"59.90\", not an object"},
		{"negative amount", body(t, map[string]any{"amount": "-1.00"}), "amount is negative"},
		{"amount too many decimals", body(t, map[string]any{"amount": "59.901"}), "amount: amount \"59.901\" has more decimals"},
		{"amount with comma", body(t, map[string]any{"amount": "59,90"}), "amount:"},
		{"amount exponent", body(t, map[string]any{"amount": "1e3"}), "amount:"},
		{"amount empty", body(t, map[string]any{"amount": ""}), "amount:"},
		{"missing currency", body(t, map[string]any{"currency": nil}), "currency is missing"},
		{"currency symbol", body(t, map[string]any{"currency": "€"}), "currency \"€\" is not an ISO 4217"},
		{"currency number", body(t, map[string]any{"currency": 978}), "currency must be a string"},
		{"unknown status", body(t, map[string]any{"status": "shipped"}), "status \"shipped\" is not one of"},
		{"status number", body(t, map[string]any{"status": 1}), "status must be a string"},
		{"refunds object", body(t, map[string]any{"refunds": map[string]any{}}), "refunds must be an array, not an object"},
		{"refund not object", body(t, map[string]any{"refunds": []any{"r1"}}), "refunds[0] must be an object, not a string"},
		{"refund null", body(t, map[string]any{"refunds": raw("[null]")}), "refunds[0] must be an object"},
		{"refund missing id", body(t, map[string]any{"refunds": []any{map[string]any{"amount": "1.00", "created_at": "2026-11-02T10:00:00Z"}}}), "refunds[0].refund_id is missing"},
		{"refund numeric id", body(t, map[string]any{"refunds": []any{map[string]any{"refund_id": 5, "amount": "1.00", "created_at": "2026-11-02T10:00:00Z"}}}), "refunds[0].refund_id must be a string"},
		{"refund number amount", body(t, map[string]any{"refunds": []any{refund(raw("1.00"))}}), "refunds[0].amount must be a decimal string"},
		{"refund zero", body(t, map[string]any{"refunds": []any{refund("0.00")}}), "refunds[0].amount must be greater than zero"},
		{"refund negative", body(t, map[string]any{"refunds": []any{refund("-1.00")}}), "refunds[0].amount must be greater than zero"},
		{"refund missing amount", body(t, map[string]any{"refunds": []any{refund(nil)}}), "refunds[0].amount is missing"},
		{"refund missing created_at", body(t, map[string]any{"refunds": []any{map[string]any{"refund_id": "r1", "amount": "1.00"}}}), "refunds[0].created_at is missing"},
		{"refund bad created_at", body(t, map[string]any{"refunds": []any{map[string]any{"refund_id": "r1", "amount": "1.00", "created_at": "x"}}}), "refunds[0].created_at"},
		{"refund ids repeated", body(t, map[string]any{"refunds": []any{refund("1.00"), refund("2.00")}}), "refunds[1].refund_id \"r1\" appears twice"},
		{"refunds exceeding total", body(t, map[string]any{"amount": "10.00", "refunds": []any{
			map[string]any{"refund_id": "r1", "amount": "6.00", "created_at": "2026-11-02T10:00:00Z"},
			map[string]any{"refund_id": "r2", "amount": "4.01", "created_at": "2026-11-02T10:00:00Z"}}}),
			"refunds total more than the order amount 10.00 EUR (at refunds[1])"},
		{"refund on a free order", body(t, map[string]any{"amount": "0", "refunds": []any{refund("0.01")}}), "refunds total more than the order amount"},
		{"event_id number", body(t, map[string]any{"event_id": 12}), "event_id must be a string"},
		{"event_id too long", body(t, map[string]any{"event_id": strings.Repeat("e", 256)}), "event_id is longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseOrder(c.body)
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("got %+v, %v; want ErrMalformed", ev, err)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, c.wantMsg)
			}
		})
	}
}

func FuzzParseOrder(f *testing.F) {
	f.Add([]byte(Example))
	f.Add([]byte(vectorBody))
	f.Add([]byte(`{"order_id":"1","customer_id":"c","created_at":"2026-01-01T00:00:00Z","amount":"0","currency":"kwd","refunds":[]}`))
	f.Add([]byte(`{"order_id":"1","email":"a@b","created_at":"2026-01-01T00:00:00Z","amount":59.9,"currency":"EUR"}`))
	f.Add([]byte(`{"order_id":"1","email":"a@b","created_at":"2026-01-01T00:00:00Z","amount":"999999999999999.99","currency":"EUR","refunds":[{"refund_id":"a","amount":"999999999999999.99","created_at":"2026-01-01T00:00:00Z"},{"refund_id":"b","amount":"0.01","created_at":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"ORDER_ID":"1"}`))
	f.Add([]byte(`"x"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseOrder(b)
		if err != nil {
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		o := ev.Order
		if ev.Topic != Topic || o == nil || o.OrderID == "" || (o.CustomerExternalID == "" && o.Email == "") ||
			o.TotalMinor < 0 || !money.ValidCurrency(o.Currency) || o.Currency != strings.ToUpper(o.Currency) ||
			!o.Status.Valid() || o.CreatedAt.IsZero() || o.UpdatedAt.Before(o.CreatedAt) {
			t.Fatalf("invalid order accepted: %+v", o)
		}
		var sum int64
		for _, r := range ev.Refunds {
			if r.AmountMinor <= 0 || r.OrderID != o.OrderID || r.Currency != o.Currency || r.RefundID == "" {
				t.Fatalf("invalid refund accepted: %+v", r)
			}
			sum += r.AmountMinor
		}
		if sum > o.TotalMinor {
			t.Fatalf("refunds %d exceed total %d", sum, o.TotalMinor)
		}
	})
}
