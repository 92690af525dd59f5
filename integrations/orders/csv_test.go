package orders

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/clvd/clvd/integrations"
)

func csvTestTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// csvTestReadAll reads every row, failing the test on any error; it returns the events and the line
// Line reported after each.
func csvTestReadAll(t *testing.T, input string) ([]integrations.OrderEvent, []int) {
	t.Helper()
	r, err := NewCSVReader(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	var evs []integrations.OrderEvent
	var lines []int
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs, lines
		}
		if err != nil {
			t.Fatalf("row %d: %v", len(evs)+1, err)
		}
		evs = append(evs, ev)
		lines = append(lines, r.Line())
	}
}

func TestCSVReaderGood(t *testing.T) {
	// Columns in another order and case, extra columns, a BOM, CRLF line ends, quoted cells with a
	// comma and with a line break, a blank row, and stray spaces: all things spreadsheets produce.
	input := "\ufeffCurrency,ORDER_ID, Amount ,created_at,Email,channel,customer_id,name,updated_at,status,refunded_amount,note\r\n" +
		"EUR,1001,59.90,2025-03-14T09:26:53+02:00,Ada@Example.com,web,,\"Lovelace, Ada\",2025-03-20T10:00:00Z,paid,10.00,\"gift\nwrap\"\r\n" +
		",,,,,,,,,,,\r\n" +
		"jpy, 1002 ,1500,2025-03-15,,pos,cus_7,,,Cancelled,,\r\n" +
		"EUR,1003,0,20250316,ada@example.com,,,, 20250317 ,,0,\r\n" +
		"KWD,1004,12.345,2025-03-18T00:00:00.5Z,kw@example.com,,,,,refunded,12.345,\r\n"
	evs, lines := csvTestReadAll(t, input)
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4", len(evs))
	}
	// Line numbers count the header and the line break inside the quoted note, and skip the blank row.
	if want := []int{2, 5, 6, 7}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines %v, want %v", lines, want)
	}
	want := []integrations.OrderEvent{
		{Topic: Topic, Order: &integrations.Order{Source: integrations.SourceOrders, OrderID: "1001", Email: "ada@example.com",
			Name: "Lovelace, Ada", CreatedAt: csvTestTime(t, "2025-03-14T07:26:53Z"), UpdatedAt: csvTestTime(t, "2025-03-20T10:00:00Z"),
			Currency: "EUR", TotalMinor: 5990, Status: integrations.OrderPaid},
			Refunds: []integrations.Refund{{Source: integrations.SourceOrders, OrderID: "1001", RefundID: "1001:refunded", AmountMinor: 1000,
				Currency: "EUR", CreatedAt: csvTestTime(t, "2025-03-20T10:00:00Z")}}},
		{Topic: Topic, Order: &integrations.Order{Source: integrations.SourceOrders, OrderID: "1002", CustomerExternalID: "cus_7",
			CreatedAt: csvTestTime(t, "2025-03-15T00:00:00Z"), UpdatedAt: csvTestTime(t, "2025-03-15T00:00:00Z"),
			Currency: "JPY", TotalMinor: 1500, Status: integrations.OrderCancelled}},
		{Topic: Topic, Order: &integrations.Order{Source: integrations.SourceOrders, OrderID: "1003", Email: "ada@example.com",
			CreatedAt: csvTestTime(t, "2025-03-16T00:00:00Z"), UpdatedAt: csvTestTime(t, "2025-03-17T00:00:00Z"),
			Currency: "EUR", TotalMinor: 0, Status: integrations.OrderPaid}},
		{Topic: Topic, Order: &integrations.Order{Source: integrations.SourceOrders, OrderID: "1004", Email: "kw@example.com",
			CreatedAt: csvTestTime(t, "2025-03-18T00:00:00.5Z"), UpdatedAt: csvTestTime(t, "2025-03-18T00:00:00.5Z"),
			Currency: "KWD", TotalMinor: 12345, Status: integrations.OrderRefunded},
			Refunds: []integrations.Refund{{Source: integrations.SourceOrders, OrderID: "1004", RefundID: "1004:refunded", AmountMinor: 12345,
				Currency: "KWD", CreatedAt: csvTestTime(t, "2025-03-18T00:00:00.5Z")}}},
	}
	for i := range want {
		if !reflect.DeepEqual(evs[i], want[i]) {
			t.Errorf("row %d:\n got %+v %+v\nwant %+v %+v", i+1, evs[i], *evs[i].Order, want[i], *want[i].Order)
		}
		if evs[i].Order.CreatedAt.Location() != time.UTC {
			t.Errorf("row %d: CreatedAt not in UTC", i+1)
		}
	}
}

func TestCSVReaderOnlyRequiredColumns(t *testing.T) {
	evs, _ := csvTestReadAll(t, "order_id,email,created_at,amount,currency\nA-1,x@example.com,2025-01-02,1.5,usd\n")
	o := evs[0].Order
	if len(evs) != 1 || o.Status != integrations.OrderPaid || o.TotalMinor != 150 || o.Currency != "USD" ||
		!o.UpdatedAt.Equal(o.CreatedAt) || len(evs[0].Refunds) != 0 {
		t.Fatalf("got %+v", *o)
	}
}

func TestCSVReaderBadRows(t *testing.T) {
	const header = "order_id,customer_id,email,name,created_at,updated_at,amount,currency,status,refunded_amount\n"
	cases := []struct {
		name, row, want string // want: the error must contain it
	}{
		{"empty order_id", ",c1,,,2025-01-01,,1.00,EUR,,", "line 2, column order_id: order_id is missing"},
		{"order_id too long", strings.Repeat("9", 256) + ",c1,,,2025-01-01,,1.00,EUR,,", "line 2, column order_id: order_id is longer than 255 bytes"},
		{"order_id control char", "a\x01b,c1,,,2025-01-01,,1.00,EUR,,", "line 2, column order_id: order_id contains control characters"},
		{"customer_id too long", "1," + strings.Repeat("c", 256) + ",,,2025-01-01,,1.00,EUR,,", "line 2, column customer_id: customer_id is longer"},
		{"no customer", "1,,,,2025-01-01,,1.00,EUR,,", "line 2, column customer_id: customer_id and email are both empty"},
		{"bad email", "1,,ada.example.com,,2025-01-01,,1.00,EUR,,", "line 2, column email: email \"ada.example.com\" is not a valid address"},
		{"name with a line break", "1,c1,,\"Ada\nLovelace\",2025-01-01,,1.00,EUR,,", "line 2, column name: name contains control characters"},
		{"name too long", "1,c1,,\"" + strings.Repeat("é", 256) + "\",2025-01-01,,1.00,EUR,,", "line 2, column name: name is longer than 255"},
		{"empty created_at", "1,c1,,,,,1.00,EUR,,", "line 2, column created_at: created_at is empty"},
		{"created_at US format", "1,c1,,,03/14/2025,,1.00,EUR,,", "line 2, column created_at: created_at \"03/14/2025\" is not a date"},
		{"created_at without zone", "1,c1,,,2025-03-14 10:00:00,,1.00,EUR,,", "line 2, column created_at: created_at \"2025-03-14 10:00:00\" is not a date"},
		{"impossible date", "1,c1,,,20250230,,1.00,EUR,,", "line 2, column created_at"},
		{"bad updated_at", "1,c1,,,2025-01-01,soon,1.00,EUR,,", "line 2, column updated_at: updated_at \"soon\" is not a date"},
		{"updated before created", "1,c1,,,2025-01-02,2025-01-01,1.00,EUR,,", "line 2, column updated_at: updated_at 2025-01-01T00:00:00Z is before created_at 2025-01-02T00:00:00Z"},
		{"empty currency", "1,c1,,,2025-01-01,,1.00,,,", "line 2, column currency: currency is empty"},
		{"currency symbol", "1,c1,,,2025-01-01,,1.00,€,,", "line 2, column currency: currency \"€\" is not an ISO 4217"},
		{"empty amount", "1,c1,,,2025-01-01,,,EUR,,", "line 2, column amount: amount is empty"},
		{"amount comma decimal", "1,c1,,,2025-01-01,,\"59,90\",EUR,,", "line 2, column amount: amount \"59,90\" is not a decimal number"},
		{"amount too many decimals", "1,c1,,,2025-01-01,,59.901,EUR,,", "line 2, column amount: amount \"59.901\" has more decimals than EUR allows"},
		{"decimals in JPY", "1,c1,,,2025-01-01,,15.5,JPY,,", "line 2, column amount: amount \"15.5\" has more decimals than JPY allows (0)"},
		{"negative amount", "1,c1,,,2025-01-01,,-1.00,EUR,,", "line 2, column amount: amount is negative"},
		{"unknown status", "1,c1,,,2025-01-01,,1.00,EUR,shipped,", "line 2, column status: status \"shipped\" is not one of"},
		{"refund not a number", "1,c1,,,2025-01-01,,1.00,EUR,,x", "line 2, column refunded_amount: amount \"x\" is not a decimal number"},
		{"refund negative", "1,c1,,,2025-01-01,,1.00,EUR,,-0.50", "line 2, column refunded_amount: refunded_amount is negative"},
		{"refund above amount", "1,c1,,,2025-01-01,,10.00,EUR,,10.01", "line 2, column refunded_amount: refunded_amount 10.01 is more than the order amount 10.00 EUR"},
		{"too few fields", "1,c1,,,2025-01-01,,1.00,EUR", "line 2: the row does not have as many fields as the header"},
		{"bare quote", "1,c\"1,,,2025-01-01,,1.00,EUR,,", "line 2: bare \" in non-quoted-field (line 2, character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewCSVReader(strings.NewReader(header + c.row + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := r.Next()
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("got %+v, %v; want ErrMalformed", ev, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if r.Line() != 2 {
				t.Fatalf("Line() = %d, want 2", r.Line())
			}
		})
	}
}

// A bad row does not end the file: the next row is read as usual, with its own line number.
func TestCSVReaderContinuesAfterBadRow(t *testing.T) {
	input := "order_id,email,created_at,amount,currency\n" +
		"1,a@example.com,2025-01-01,oops,EUR\n" +
		"2,b@example.com,2025-01-01,1,EUR,extra\n" +
		"3,c@example.com,2025-01-01,2.00,EUR\n"
	r, err := NewCSVReader(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"line 2, column amount", "line 3: the row does not have as many fields"} {
		if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want an error containing %q", err, want)
		}
	}
	ev, err := r.Next()
	if err != nil || ev.Order.OrderID != "3" || ev.Order.TotalMinor != 200 || r.Line() != 4 {
		t.Fatalf("got %+v, %v at line %d", ev.Order, err, r.Line())
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestNewCSVReaderHeader(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"empty file", "", "line 1: the file is empty"},
		{"missing columns", "order_id,email,created_at\n", "line 1: the header lacks the required column(s) amount, currency"},
		{"no known columns", "Name,Email,Total\n", "lacks the required column(s) order_id, created_at, amount, currency"},
		{"duplicate column", "order_id,amount,currency,created_at,Amount\n", "line 1, column amount: column amount appears twice"},
		{"bad quoting", "order_id,\"amount\"x,currency,created_at\n", "line 1:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewCSVReader(strings.NewReader(c.input))
			if !errors.Is(err, integrations.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
}

// A failing reader is not the file's fault: the error must not pass for a bad row, or --skip-bad
// would skip the rest of the file as bad rows.
func TestCSVReaderReadFailureIsNotMalformed(t *testing.T) {
	boom := errors.New("disk on fire")
	r, err := NewCSVReader(io.MultiReader(strings.NewReader("order_id,email,created_at,amount,currency\n"), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) || errors.Is(err, integrations.ErrMalformed) {
		t.Fatalf("got %v, want the read error and not ErrMalformed", err)
	}
}

func TestIsCSVHeader(t *testing.T) {
	cases := []struct {
		header []string
		want   bool
	}{
		{[]string{"order_id", "customer_id", "email", "name", "created_at", "updated_at", "amount", "currency", "status", "refunded_amount"}, true},
		{[]string{"\ufeffOrder_ID", " CURRENCY ", "amount", "created_at", "whatever"}, true},
		{[]string{"order_id", "created_at", "amount"}, false},
		{[]string{"order_id", "created_at", "amount", "currency", "amount"}, false},
		{[]string{"Name", "Email", "Financial Status", "Currency", "Total", "Created at"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsCSVHeader(c.header); got != c.want {
			t.Errorf("IsCSVHeader(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}

func TestCSVTimeFormats(t *testing.T) {
	cases := []struct {
		in   string
		want string // RFC 3339 in UTC; "" = rejected
	}{
		{"2025-03-14T09:26:53Z", "2025-03-14T09:26:53Z"},
		{"2025-03-14T09:26:53-05:00", "2025-03-14T14:26:53Z"},
		{"2025-03-14T09:26:53.123+01:00", "2025-03-14T08:26:53.123Z"},
		{"2025-03-14", "2025-03-14T00:00:00Z"},
		{"20250314", "2025-03-14T00:00:00Z"},
		{"2025-3-14", ""},
		{"14.03.2025", ""},
		{"2025031", ""},
		{"2025-03-14T09:26:53", ""},
		{"1741944413", ""},
	}
	for _, c := range cases {
		got, ok := csvTime(c.in)
		switch {
		case c.want == "" && ok:
			t.Errorf("csvTime(%q) = %v, want rejected", c.in, got)
		case c.want != "" && (!ok || !got.Equal(csvTestTime(t, c.want)) || got.Location() != time.UTC):
			t.Errorf("csvTime(%q) = %v, %v; want %s", c.in, got, ok, c.want)
		}
	}
}
