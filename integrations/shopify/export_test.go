package shopify

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/clvd/clvd/integrations"
)

func exportTestTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// exportTestReadAll reads every order, failing on any error; it returns the events and the line Line
// reported after each.
func exportTestReadAll(t *testing.T, r io.Reader) ([]integrations.OrderEvent, []int) {
	t.Helper()
	er, err := NewExportReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var evs []integrations.OrderEvent
	var lines []int
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return evs, lines
		}
		if err != nil {
			t.Fatalf("order %d: %v", len(evs)+1, err)
		}
		evs = append(evs, ev)
		lines = append(lines, er.Line())
	}
}

// The fixture follows the export's real 79-column header: five orders over eight rows (newest first,
// as Shopify lists them), with two multi-row orders, a note spanning two lines, a partial and a full
// refund, a voided and cancelled order, and a point-of-sale order without email.
func TestExportReaderFixture(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "orders_export.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, lines := exportTestReadAll(t, f)
	if want := []int{2, 3, 4, 5, 8}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines %v, want %v", lines, want)
	}
	order := func(id, email, created string, total int64, st integrations.OrderStatus) *integrations.Order {
		c := exportTestTime(t, created)
		return &integrations.Order{Source: integrations.SourceShopify, OrderID: id, Email: email, CreatedAt: c, UpdatedAt: c,
			Currency: "USD", TotalMinor: total, Status: st}
	}
	refund := func(id, created string, amount int64) []integrations.Refund {
		return []integrations.Refund{{Source: integrations.SourceShopify, OrderID: id, RefundID: id + ":export-refunded",
			AmountMinor: amount, Currency: "USD", CreatedAt: exportTestTime(t, created)}}
	}
	want := []integrations.OrderEvent{
		{Topic: "orders/export", Order: order("5104371106005", "", "2024-03-02T21:05:00Z", 1500, integrations.OrderOpen)},
		{Topic: "orders/export", Order: order("5104371106004", "linus@example.com", "2024-02-20T16:00:00Z", 8000, integrations.OrderCancelled)},
		{Topic: "orders/export", Order: order("5104371106003", "ada@example.com", "2024-02-03T12:00:00Z", 3500, integrations.OrderRefunded),
			Refunds: refund("5104371106003", "2024-02-03T12:00:00Z", 3500)},
		{Topic: "orders/export", Order: order("5104371106002", "grace@example.com", "2024-01-20T19:15:30Z", 11000, integrations.OrderPaid),
			Refunds: refund("5104371106002", "2024-01-20T19:15:30Z", 2000)},
		{Topic: "orders/export", Order: order("5104371106001", "ada@example.com", "2024-01-15T15:23:45Z", 5950, integrations.OrderPaid)},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d orders, want %d", len(evs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(evs[i], want[i]) {
			t.Errorf("order %d:\n got %+v %+v\nwant %+v %+v", i+1, evs[i], *evs[i].Order, want[i], *want[i].Order)
		}
	}
}

// exportTestHeader is a trimmed export header, in the export's own column order.
const exportTestHeader = "Name,Email,Financial Status,Currency,Total,Created at,Lineitem quantity,Lineitem name,Cancelled at,Refunded Amount,Id\n"

func TestExportReaderGrouping(t *testing.T) {
	cases := []struct {
		name    string
		rows    string
		wantIDs []string
		lines   []int
	}{
		{"rows with the name only", "" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,\n" +
			"#1,a@x.io,,,,,1,B,,,\n" +
			"#1,,,,,,1,C,,,\n" +
			"#2,b@x.io,paid,EUR,5.00,2024-01-02 10:00:00 +0000,1,A,,,\n",
			[]string{"#1", "#2"}, []int{2, 5}},
		{"ids decide over names", "" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,11\n" +
			"#1,,,,,,1,B,,,11\n" +
			"#1,b@x.io,paid,EUR,5.00,2024-01-02 10:00:00 +0000,1,A,,,12\n" +
			"#1,,,,,,1,B,,,\n",
			[]string{"11", "12"}, []int{2, 4}},
		{"continuation row with the id only", "" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,11\n" +
			",,,,,,1,B,,,11\n" +
			"#2,b@x.io,paid,EUR,5.00,2024-01-02 10:00:00 +0000,1,A,,,12\n",
			[]string{"11", "12"}, []int{2, 4}},
		{"the same name later is another delivery of it", "" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,\n" +
			"#2,b@x.io,paid,EUR,5.00,2024-01-02 10:00:00 +0000,1,A,,,\n" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,\n",
			[]string{"#1", "#2", "#1"}, []int{2, 3, 4}},
		{"blank rows skipped", "" +
			"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,\n" +
			",,,,,,,,,,\n" +
			"#1,,,,,,1,B,,,\n" +
			",,,,,,,,,,\n",
			[]string{"#1"}, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, lines := exportTestReadAll(t, strings.NewReader(exportTestHeader+c.rows))
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.Order.OrderID)
			}
			if !reflect.DeepEqual(ids, c.wantIDs) || !reflect.DeepEqual(lines, c.lines) {
				t.Fatalf("got ids %v at lines %v, want %v at %v", ids, lines, c.wantIDs, c.lines)
			}
		})
	}
}

func TestExportReaderFields(t *testing.T) {
	cases := []struct {
		name  string
		row   string
		check func(t *testing.T, ev integrations.OrderEvent)
	}{
		{"name is the id without an Id", "#A-7,a@x.io,paid,eur,10.00,2024-01-01 10:00:00 +0000,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.OrderID != "#A-7" || ev.Order.Currency != "EUR" {
				t.Fatalf("got %+v", *ev.Order)
			}
		}},
		{"odd email is a guest order", "#1,not-an-address,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.Email != "" || ev.Order.CustomerExternalID != "" {
				t.Fatalf("got %+v", *ev.Order)
			}
		}},
		{"cancelled at wins over paid", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,2024-01-02 10:00:00 +0000,,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.Status != integrations.OrderCancelled {
				t.Fatalf("got %s", ev.Order.Status)
			}
		}},
		{"status case-insensitive", "#1,a@x.io,Partially_Refunded,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,4.00,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.Status != integrations.OrderPaid || len(ev.Refunds) != 1 || ev.Refunds[0].AmountMinor != 400 {
				t.Fatalf("got %s %+v", ev.Order.Status, ev.Refunds)
			}
		}},
		{"unknown financial status is open", "#1,a@x.io,authorized,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.Status != integrations.OrderOpen {
				t.Fatalf("got %s", ev.Order.Status)
			}
		}},
		{"zero refunded amount is no refund", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,0.00,", func(t *testing.T, ev integrations.OrderEvent) {
			if len(ev.Refunds) != 0 {
				t.Fatalf("got %+v", ev.Refunds)
			}
		}},
		{"zero-decimal currency", "#1,a@x.io,paid,CLP,194038,2024-01-01 10:00:00 +0000,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if ev.Order.TotalMinor != 194038 {
				t.Fatalf("got %d", ev.Order.TotalMinor)
			}
		}},
		{"offset with a colon", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +05:30,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if !ev.Order.CreatedAt.Equal(exportTestTime(t, "2024-01-01T04:30:00Z")) || ev.Order.CreatedAt.Location() != time.UTC {
				t.Fatalf("got %v", ev.Order.CreatedAt)
			}
		}},
		{"RFC 3339", "#1,a@x.io,paid,EUR,10.00,2024-01-01T10:00:00-05:00,1,A,,,", func(t *testing.T, ev integrations.OrderEvent) {
			if !ev.Order.CreatedAt.Equal(exportTestTime(t, "2024-01-01T15:00:00Z")) || !ev.Order.UpdatedAt.Equal(ev.Order.CreatedAt) {
				t.Fatalf("got %v / %v", ev.Order.CreatedAt, ev.Order.UpdatedAt)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, _ := exportTestReadAll(t, strings.NewReader(exportTestHeader+c.row+"\n"))
			if len(evs) != 1 {
				t.Fatalf("got %d orders", len(evs))
			}
			c.check(t, evs[0])
		})
	}
}

func TestExportReaderBadRows(t *testing.T) {
	cases := []struct {
		name, row, want string
	}{
		{"no name nor id", ",a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Name: Name and Id are both empty"},
		{"id not a number", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,gid://shopify/Order/1", "line 2, column Id: Id \"gid://shopify/Order/1\" is not a Shopify order id"},
		{"name with control character", "#1\x01,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Name: Name contains control characters"},
		{"continuation row first", "#1,,,,,,1,B,,,", "line 2, column Created at: Created at is empty: is this the order's first row?"},
		{"spreadsheet date", "#1,a@x.io,paid,EUR,10.00,1/15/2024 10:23,1,A,,,", "line 2, column Created at: Created at \"1/15/2024 10:23\" is not a time"},
		{"date without offset", "#1,a@x.io,paid,EUR,10.00,2024-01-15 10:23:45,1,A,,,", "line 2, column Created at"},
		{"bad cancelled at", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,yesterday,,", "line 2, column Cancelled at: Cancelled at \"yesterday\""},
		{"no currency", "#1,a@x.io,paid,,10.00,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Currency: Currency is empty"},
		{"bad currency", "#1,a@x.io,paid,$,10.00,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Currency: Currency \"$\" is not an ISO 4217 code"},
		{"no total", "#1,a@x.io,paid,EUR,,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Total: Total is empty"},
		{"total with thousands separator", "#1,a@x.io,paid,EUR,\"1,200.00\",2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Total: amount \"1,200.00\" is not a decimal number"},
		{"negative total", "#1,a@x.io,paid,EUR,-1.00,2024-01-01 10:00:00 +0000,1,A,,,", "line 2, column Total: Total is negative"},
		{"refund above total", "#1,a@x.io,refunded,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,10.50,", "line 2, column Refunded Amount: Refunded Amount 10.50 is more than the Total 10.00 EUR"},
		{"negative refund", "#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,-1,", "line 2, column Refunded Amount: Refunded Amount is negative"},
		{"wrong field count", "#1,a@x.io,paid,EUR,10.00", "line 2: the row does not have as many fields as the header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewExportReader(strings.NewReader(exportTestHeader + c.row + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := r.Next()
			if !errors.Is(err, integrations.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %+v, %v; want ErrMalformed containing %q", ev, err, c.want)
			}
			if r.Line() != 2 {
				t.Fatalf("Line() = %d, want 2", r.Line())
			}
		})
	}
}

// After a bad order, its other rows are passed over rather than read as orders of their own: one
// mistake is one bad order, and the next order reads as usual.
func TestExportReaderRecoversAfterBadOrder(t *testing.T) {
	input := exportTestHeader +
		"#1,a@x.io,paid,EUR,oops,2024-01-01 10:00:00 +0000,1,A,,,\n" + // line 2: bad total
		"#1,,,,,,1,B,,,\n" +
		"#2,b@x.io,paid,EUR,5.00,2024-01-02 10:00:00 +0000,1,A,,,\n" + // line 4
		"#2,,,\n" + // line 5: broken line item of #2
		"#2,,,,,,1,C,,,\n" + // still #2: passed over
		"#3,c@x.io,paid,EUR,7.00,2024-01-03 10:00:00 +0000,1,A,,,\n" // line 7
	r, err := NewExportReader(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		id   string // "" = an error is expected
		err  string
		line int
	}
	for i, want := range []step{
		{err: "line 2, column Total", line: 2},
		{id: "#2", line: 4},
		{err: "line 5: the row does not have as many fields", line: 5},
		{id: "#3", line: 7},
	} {
		ev, err := r.Next()
		switch {
		case want.id == "" && (err == nil || !strings.Contains(err.Error(), want.err)):
			t.Fatalf("step %d: got %v, want an error containing %q", i, err, want.err)
		case want.id != "" && (err != nil || ev.Order.OrderID != want.id):
			t.Fatalf("step %d: got %+v, %v; want order %s", i, ev.Order, err, want.id)
		case r.Line() != want.line:
			t.Fatalf("step %d: Line() = %d, want %d", i, r.Line(), want.line)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestExportReaderReadFailureIsNotMalformed(t *testing.T) {
	boom := errors.New("connection reset")
	r, err := NewExportReader(io.MultiReader(strings.NewReader(exportTestHeader+"#1,a@x.io,paid,EUR,10.00,2024-01-01 10:00:00 +0000,1,A,,,\n"),
		iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	// The order before the failure is whole only if the failure comes after its last row: its
	// continuation rows are read before it is returned, so the failure surfaces on the next call.
	if ev, err := r.Next(); err != nil || ev.Order.OrderID != "#1" {
		t.Fatalf("got %+v, %v", ev.Order, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) || errors.Is(err, integrations.ErrMalformed) {
		t.Fatalf("got %v, want the read error and not ErrMalformed", err)
	}
}

func TestNewExportReaderHeader(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"empty", "", "line 1: the file is empty"},
		{"generic order CSV", "order_id,email,created_at,amount,currency\n", "lacks the column(s) Name, Financial Status, Total, Created at"},
		{"no Total", "Name,Email,Financial Status,Currency,Created at\n", "lacks the column(s) Total"},
		{"duplicate", "Name,Email,Financial Status,Currency,Total,Created at,total\n", "line 1, column Total: column Total appears twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewExportReader(strings.NewReader(c.input))
			if !errors.Is(err, integrations.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
}

func TestIsExportHeader(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "orders_export.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	realHeader, err := csv.NewReader(f).Read()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		header []string
		want   bool
	}{
		{realHeader, true},
		{strings.Split(strings.TrimSpace(exportTestHeader), ","), true},
		{[]string{"\ufeffname", " EMAIL ", "financial status", "currency", "total", "created at"}, true},
		{[]string{"Name", "Email", "Financial Status", "Currency", "Subtotal", "Created at"}, false},
		{[]string{"order_id", "customer_id", "email", "name", "created_at", "amount", "currency"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsExportHeader(c.header); got != c.want {
			t.Errorf("IsExportHeader(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}

// A file re-saved as "CSV UTF-8" starts with a byte order mark; with a quoted first name it would
// otherwise be a syntax error.
func TestExportReaderBOM(t *testing.T) {
	input := "\ufeff\"Name\",Email,Financial Status,Currency,Total,Created at\n#1,a@x.io,paid,EUR,1.00,2024-01-01 10:00:00 +0000\n"
	evs, _ := exportTestReadAll(t, strings.NewReader(input))
	if len(evs) != 1 || evs[0].Order.OrderID != "#1" {
		t.Fatalf("got %+v", evs)
	}
}
