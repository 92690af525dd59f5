package orders

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/csvrows"
	"github.com/clvd/clvd/internal/money"
)

// csvRefundSuffix turns an order id into the id of the refund its refunded_amount stands for.
const csvRefundSuffix = ":refunded"

// csvColumns lists the known columns in the order a row is validated, so the first problem
// reported is the leftmost one in the documentation.
var csvColumns = []string{"order_id", "customer_id", "email", "name", "created_at", "updated_at",
	"amount", "currency", "status", "refunded_amount"}

var csvRequired = []string{"order_id", "created_at", "amount", "currency"}

// CSVReader streams orders from the generic order CSV: the same orders as the JSON format, one row
// per order, for backfilling a shop's history with `clvd import`. The first row is the header; column
// names are matched case-insensitively and in any order, and columns not listed are ignored (so a
// spreadsheet may keep its own columns):
//
//	order_id         required   the shop's order id, ≤ 255 bytes
//	customer_id      optional   the shop's customer id, ≤ 255 bytes
//	email            optional   the customer's email; at least one of customer_id and email per row
//	name             optional   the customer's name
//	created_at       required   when the order was placed: RFC 3339, YYYY-MM-DD or YYYYMMDD (the latter two UTC midnight)
//	updated_at       optional   the version, same formats; defaults to created_at; not before created_at
//	amount           required   decimal total charged, ≥ 0, before refunds, e.g. 59.90
//	currency         required   ISO 4217 code, any case
//	status           optional   open | paid | cancelled | refunded (any case); default paid
//	refunded_amount  optional   decimal money given back, ≥ 0, at most amount
//
// The rules are the JSON format's (see the package documentation), with two allowances for files
// that pass through spreadsheets: every cell is trimmed, and status is matched case-insensitively.
// Rows whose cells are all empty are skipped (spreadsheets leave them at the end).
//
// A refunded_amount above zero becomes one refund with RefundID "<order_id>:refunded", dated at the
// row's updated_at (the latest moment the row describes). Refunds are stored once per id, so
// re-importing the file changes nothing, but neither does a later file with a different
// refunded_amount for the same order: send such changes through the JSON webhook, whose refunds have
// ids of their own. For the same reason, refunds of one order must not be sent both ways, or they
// count twice.
//
// Create it with NewCSVReader.
type CSVReader struct {
	r    *csv.Reader
	col  map[string]int // known column → index in the row
	line int
}

// NewCSVReader reads and checks the header row. Unknown columns are ignored; a header without the
// required columns is an error wrapping integrations.ErrMalformed that names the missing ones.
func NewCSVReader(r io.Reader) (*CSVReader, error) {
	cr := csv.NewReader(csvrows.SkipBOM(r))
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &csvrows.Error{Line: 1, Reason: "the file is empty: the first row must be the header, e.g. " + strings.Join(csvColumns, ",")}
	}
	if err != nil {
		return nil, csvrows.ReadError(err)
	}
	col, err := csvrows.HeaderIndex(header, csvColumns)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range csvRequired {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, &csvrows.Error{Line: 1, Reason: fmt.Sprintf("the header lacks the required column(s) %s (required: %s)",
			strings.Join(missing, ", "), strings.Join(csvRequired, ", "))}
	}
	// The csv package then insists every row has as many fields as the header: a row with fewer or more
	// is a broken line (an unquoted comma in a name, say), not something to guess about.
	return &CSVReader{r: cr, col: col, line: 1}, nil
}

// IsCSVHeader reports whether header (a file's first row) is a generic order CSV header: it names
// every required column, each once.
func IsCSVHeader(header []string) bool {
	col, err := csvrows.HeaderIndex(header, csvColumns)
	if err != nil {
		return false
	}
	for _, c := range csvRequired {
		if _, ok := col[c]; !ok {
			return false
		}
	}
	return true
}

// Line is the line number (1 = the header) where the row last returned by Next, or its error,
// starts. A quoted cell may span lines, so this is not a count of rows.
func (r *CSVReader) Line() int { return r.line }

// Next returns the next row's order, io.EOF after the last row. A row that breaks a rule gives an
// error wrapping integrations.ErrMalformed that names its line and column; reading may go on after
// it. Other errors come from the underlying reader.
func (r *CSVReader) Next() (integrations.OrderEvent, error) {
	for {
		rec, err := r.r.Read()
		if errors.Is(err, io.EOF) {
			return integrations.OrderEvent{}, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				r.line = pe.StartLine
			}
			return integrations.OrderEvent{}, csvrows.ReadError(err)
		}
		r.line, _ = r.r.FieldPos(0)
		if csvrows.Blank(rec) {
			continue
		}
		return r.parse(rec)
	}
}

func (r *CSVReader) parse(rec []string) (integrations.OrderEvent, error) {
	cell := func(c string) string {
		if i, ok := r.col[c]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	bad := func(c, format string, args ...any) error {
		return &csvrows.Error{Line: r.line, Column: c, Reason: fmt.Sprintf(format, args...)}
	}
	// helper converts the JSON format's error for column c into this row's, keeping its wording.
	helper := func(c string, err error) error {
		return &csvrows.Error{Line: r.line, Column: c, Reason: strings.TrimPrefix(err.Error(), integrations.ErrMalformed.Error()+": ")}
	}

	o := &integrations.Order{Source: integrations.SourceOrders}
	var err error
	// The JSON format's id rules (length, control characters) apply as they are: the cell is handed
	// over as the JSON string it would have been.
	if o.OrderID, err = id(csvJSON(cell("order_id")), "order_id", true); err != nil {
		return integrations.OrderEvent{}, helper("order_id", err)
	}
	if o.CustomerExternalID, err = id(csvJSON(cell("customer_id")), "customer_id", false); err != nil {
		return integrations.OrderEvent{}, helper("customer_id", err)
	}
	if e := cell("email"); e != "" {
		if strings.IndexFunc(e, unicode.IsControl) >= 0 {
			return integrations.OrderEvent{}, bad("email", "email contains control characters")
		}
		if o.Email = integrations.NormalizeEmail(e); o.Email == "" {
			return integrations.OrderEvent{}, bad("email", "email %q is not a valid address", integrations.Clip(e))
		}
	}
	if o.CustomerExternalID == "" && o.Email == "" {
		return integrations.OrderEvent{}, bad("customer_id", "customer_id and email are both empty: at least one is needed to know whose order this is")
	}
	o.Name = cell("name")
	if strings.IndexFunc(o.Name, unicode.IsControl) >= 0 {
		return integrations.OrderEvent{}, bad("name", "name contains control characters")
	}
	if utf8.RuneCountInString(o.Name) > maxNameLength {
		return integrations.OrderEvent{}, bad("name", "name is longer than %d characters", maxNameLength)
	}

	created, updated := cell("created_at"), cell("updated_at")
	if created == "" {
		return integrations.OrderEvent{}, bad("created_at", "created_at is empty")
	}
	var ok bool
	if o.CreatedAt, ok = csvTime(created); !ok {
		return integrations.OrderEvent{}, bad("created_at", "created_at %q is not a date: use RFC 3339 (2025-03-14T09:26:53Z), YYYY-MM-DD or YYYYMMDD", integrations.Clip(created))
	}
	o.UpdatedAt = o.CreatedAt
	if updated != "" {
		if o.UpdatedAt, ok = csvTime(updated); !ok {
			return integrations.OrderEvent{}, bad("updated_at", "updated_at %q is not a date: use RFC 3339 (2025-03-14T09:26:53Z), YYYY-MM-DD or YYYYMMDD", integrations.Clip(updated))
		}
	}
	// As in the JSON format: a version older than the order would make every later fix look stale.
	if o.UpdatedAt.Before(o.CreatedAt) {
		return integrations.OrderEvent{}, bad("updated_at", "updated_at %s is before created_at %s",
			o.UpdatedAt.Format(time.RFC3339), o.CreatedAt.Format(time.RFC3339))
	}

	// Currency before amount: how many decimals an amount may have depends on it.
	cur := cell("currency")
	if cur == "" {
		return integrations.OrderEvent{}, bad("currency", "currency is empty")
	}
	if !money.ValidCurrency(cur) {
		return integrations.OrderEvent{}, bad("currency", "currency %q is not an ISO 4217 code such as \"EUR\"", integrations.Clip(cur))
	}
	o.Currency = strings.ToUpper(cur)
	amt := cell("amount")
	if amt == "" {
		return integrations.OrderEvent{}, bad("amount", "amount is empty")
	}
	if o.TotalMinor, err = money.ParseMinor(amt, o.Currency); err != nil {
		return integrations.OrderEvent{}, bad("amount", "%v", err)
	}
	if o.TotalMinor < 0 {
		return integrations.OrderEvent{}, bad("amount", "amount is negative; put money given back in refunded_amount, not in a negative order")
	}

	o.Status = integrations.OrderPaid
	if st := cell("status"); st != "" {
		if o.Status = integrations.OrderStatus(strings.ToLower(st)); !o.Status.Valid() {
			return integrations.OrderEvent{}, bad("status", "status %q is not one of open, paid, cancelled, refunded", integrations.Clip(st))
		}
	}

	ev := integrations.OrderEvent{Topic: Topic, Order: o}
	if ra := cell("refunded_amount"); ra != "" {
		v, err := money.ParseMinor(ra, o.Currency)
		switch {
		case err != nil:
			return integrations.OrderEvent{}, bad("refunded_amount", "%v", err)
		case v < 0:
			return integrations.OrderEvent{}, bad("refunded_amount", "refunded_amount is negative; give the money returned as a positive amount")
		case v > o.TotalMinor:
			return integrations.OrderEvent{}, bad("refunded_amount", "refunded_amount %s is more than the order amount %s %s",
				money.Format(v, o.Currency), money.Format(o.TotalMinor, o.Currency), o.Currency)
		case v > 0:
			ev.Refunds = []integrations.Refund{{Source: integrations.SourceOrders, OrderID: o.OrderID,
				RefundID: o.OrderID + csvRefundSuffix, AmountMinor: v, Currency: o.Currency, CreatedAt: o.UpdatedAt}}
		}
	}
	return ev, nil
}

// csvJSON is a cell as the JSON string the same value would be in the JSON format; an empty cell is
// an absent field.
func csvJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// csvTime parses RFC 3339 (any offset, returned in UTC), or a bare date YYYY-MM-DD or YYYYMMDD,
// taken as midnight UTC: order exports often have only the day.
func csvTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02", "20060102"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
