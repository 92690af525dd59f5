package shopify

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/csvrows"
	"github.com/clvd/clvd/internal/money"
)

// exportRefundSuffix turns an order id into the id of the refund its Refunded Amount stands for.
const exportRefundSuffix = ":export-refunded"

// Column names as the export writes them; matched case-insensitively.
const (
	exportColName      = "Name"
	exportColEmail     = "Email"
	exportColFinancial = "Financial Status"
	exportColCurrency  = "Currency"
	exportColTotal     = "Total"
	exportColCreated   = "Created at"
	exportColID        = "Id"
	exportColCancelled = "Cancelled at"
	exportColRefunded  = "Refunded Amount"
)

var exportRequired = []string{exportColName, exportColEmail, exportColFinancial, exportColCurrency, exportColTotal, exportColCreated}

var exportOptional = []string{exportColID, exportColCancelled, exportColRefunded}

// ExportReader streams orders, one event per order (not per row), from Shopify admin's "Export
// orders" CSV, for backfills (`clvd import`). The export has one row per line item; the order's own
// columns are filled on its first row only, and the rows of one order are consecutive and share its
// Name (and Id, when the row has one). Of the export's ~80 columns these are read (names matched
// case-insensitively, in any order; the rest are ignored):
//
//	Name              required   the order's name, e.g. #1001: groups the rows; the order id when Id is empty
//	Email             required   the order's email, normalised; an order without a usable one is a guest order
//	Financial Status  required   paid, partially_refunded, refunded, voided, pending, ...
//	Currency          required   ISO 4217 code
//	Total             required   the gross total charged
//	Created at        required   e.g. 2024-01-15 10:23:45 -0500
//	Id                optional   the order's numeric id, the same as the webhook's; preferred as the order id
//	Cancelled at      optional   set when the order was cancelled
//	Refunded Amount   optional   money given back
//
// Decisions, following the webhook parser (ParseEvent) where the export carries the same facts:
//
//   - OrderID is Id, so an order that also arrives by webhook is the same stored order. Only exports
//     without an Id column fall back to Name; such orders stay separate from their webhook copies.
//   - CustomerExternalID is empty: the export has no customer id. Customers are matched by email.
//   - Name (the customer's) is left empty. The export has only the billing and shipping address
//     names, which are not always the customer's, and exports list the newest order first, so taking
//     them would leave every customer named after their oldest address.
//   - CreatedAt is Created at: the export has no processed_at column.
//   - UpdatedAt, the version, is also Created at. An export is a snapshot without the orders' real
//     updated_at, so an imported order carries the oldest version it can: a webhook delivery, whose
//     updated_at is never before the order's creation, replaces it, and re-importing changes nothing.
//     The flip side: a change the webhook already stored is not undone, and one the export shows but
//     the store missed (a cancellation after an earlier webhook) is not applied.
//   - Status is mapped as the webhook's: Cancelled at set or "voided" → cancelled; "refunded" →
//     refunded; "paid", "partially_refunded", "partially_paid" → paid; else open.
//   - TotalMinor is Total, the gross total (refunds are stored apart and subtracted later).
//   - A Refunded Amount above zero becomes one refund with RefundID "<order id>:export-refunded", in the
//     order's currency and dated at Created at (the export has no refund date). Refunds are stored once
//     per id, so a re-import adds nothing; but the webhook's refunds have Shopify's refund ids, so an
//     order whose refunds were also delivered by webhook counts them twice.
//
// Rows whose cells are all empty are skipped. Continuation rows are not checked beyond their Name and
// Id: line items carry nothing clvd stores.
//
// Create it with NewExportReader.
type ExportReader struct {
	r    *csv.Reader
	col  map[string]int // lower-cased known column → index
	line int

	peek *exportRow // the row read past the end of the previous order
	// After a broken row inside an order, the rows that follow it may still be that order's line
	// items; skipKey makes Next pass over them instead of reading each as an order without totals.
	skipKey  bool
	lastName string
	lastID   string
}

type exportRow struct {
	rec  []string
	line int
	err  error
}

// IsExportHeader reports whether header (a file's first row) is a Shopify orders export header: it
// has every column this reader needs, each once.
func IsExportHeader(header []string) bool {
	col, err := csvrows.HeaderIndex(header, append(append([]string(nil), exportRequired...), exportOptional...))
	return err == nil && len(exportMissing(col)) == 0
}

// NewExportReader reads and checks the header row. Errors about the data wrap
// integrations.ErrMalformed and name the line (and column).
func NewExportReader(r io.Reader) (*ExportReader, error) {
	cr := csv.NewReader(csvrows.SkipBOM(r))
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &csvrows.Error{Line: 1, Reason: "the file is empty: the first row must be the export's header (Name,Email,Financial Status,...)"}
	}
	if err != nil {
		return nil, csvrows.ReadError(err)
	}
	col, err := csvrows.HeaderIndex(header, append(append([]string(nil), exportRequired...), exportOptional...))
	if err != nil {
		return nil, err
	}
	if missing := exportMissing(col); len(missing) > 0 {
		return nil, &csvrows.Error{Line: 1, Reason: fmt.Sprintf("the header lacks the column(s) %s: is this Shopify's \"Export orders\" CSV?",
			strings.Join(missing, ", "))}
	}
	return &ExportReader{r: cr, col: col, line: 1}, nil
}

// Line is the line number (1 = the header) where the order last returned by Next starts, or where the
// error it returned was found. Notes may span lines, so this is not a count of rows.
func (r *ExportReader) Line() int { return r.line }

// Next returns the next order, io.EOF after the last. An order whose first row breaks a rule gives an
// error wrapping integrations.ErrMalformed naming the line and column; its other rows are passed
// over, so reading may go on with the next order. Other errors come from the underlying reader.
func (r *ExportReader) Next() (integrations.OrderEvent, error) {
	var first exportRow
	for {
		first = r.take()
		if first.err != nil {
			if !errors.Is(first.err, io.EOF) {
				r.line = first.line
			}
			return integrations.OrderEvent{}, first.err
		}
		if r.skipKey && r.sameOrder(r.lastName, r.lastID, first.rec) {
			continue
		}
		r.skipKey = false
		break
	}
	r.line = first.line
	name, id := r.cell(first.rec, exportColName), r.cell(first.rec, exportColID)
	ev, evErr := r.parse(first.rec, name, id)
	if name == "" && id == "" {
		return ev, evErr // nothing to group its other rows by
	}
	r.lastName, r.lastID = name, id
	for {
		next := r.read()
		if next.err != nil {
			r.peek = &next
			r.skipKey = !errors.Is(next.err, io.EOF)
			break
		}
		if !r.sameOrder(name, id, next.rec) {
			r.peek = &next
			break
		}
	}
	return ev, evErr
}

// take returns the row read ahead, if any, else reads one.
func (r *ExportReader) take() exportRow {
	if p := r.peek; p != nil {
		r.peek = nil
		return *p
	}
	return r.read()
}

// read returns the next row that is not blank, with its line.
func (r *ExportReader) read() exportRow {
	for {
		rec, err := r.r.Read()
		if errors.Is(err, io.EOF) {
			return exportRow{err: io.EOF}
		}
		if err != nil {
			line := r.line
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return exportRow{line: line, err: csvrows.ReadError(err)}
		}
		line, _ := r.r.FieldPos(0)
		if !csvrows.Blank(rec) {
			return exportRow{rec: rec, line: line}
		}
	}
}

// sameOrder reports whether rec is another row of the order named name with id. Ids decide when both
// rows have one (Shopify lets two orders share a name); otherwise the names do.
func (r *ExportReader) sameOrder(name, id string, rec []string) bool {
	rn, ri := r.cell(rec, exportColName), r.cell(rec, exportColID)
	if id != "" && ri != "" {
		return id == ri
	}
	return rn != "" && rn == name
}

func (r *ExportReader) cell(rec []string, column string) string {
	if i, ok := r.col[strings.ToLower(column)]; ok {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// parse builds the order from its first row.
func (r *ExportReader) parse(rec []string, name, id string) (integrations.OrderEvent, error) {
	bad := func(column, format string, args ...any) error {
		return &csvrows.Error{Line: r.line, Column: column, Reason: fmt.Sprintf(format, args...)}
	}
	o := &integrations.Order{Source: integrations.SourceShopify}
	switch {
	case id != "":
		// The webhook's rule for ids: a whole number, so the imported order is the webhook's order.
		if len(id) > maxIDLen || strings.TrimLeft(id, "0123456789") != "" {
			return integrations.OrderEvent{}, bad(exportColID, "Id %q is not a Shopify order id (a whole number)", integrations.Clip(id))
		}
		o.OrderID = id
	case name == "":
		return integrations.OrderEvent{}, bad(exportColName, "Name and Id are both empty: the row belongs to no order")
	case len(name) > maxIDLen:
		return integrations.OrderEvent{}, bad(exportColName, "Name is longer than %d bytes", maxIDLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return integrations.OrderEvent{}, bad(exportColName, "Name contains control characters")
	default:
		o.OrderID = name
	}
	// An address that does not normalise is no address, as in the webhook: the order still counts.
	o.Email = email(r.cell(rec, exportColEmail))

	created := r.cell(rec, exportColCreated)
	if created == "" {
		return integrations.OrderEvent{}, bad(exportColCreated, "Created at is empty: is this the order's first row? (rows of one order must be consecutive)")
	}
	var ok bool
	if o.CreatedAt, ok = exportTime(created); !ok {
		return integrations.OrderEvent{}, bad(exportColCreated, "Created at %q is not a time such as \"2024-01-15 10:23:45 -0500\" (was the file re-saved by a spreadsheet?)", integrations.Clip(created))
	}
	o.UpdatedAt = o.CreatedAt
	cancelled := false
	if c := r.cell(rec, exportColCancelled); c != "" {
		if _, ok := exportTime(c); !ok {
			return integrations.OrderEvent{}, bad(exportColCancelled, "Cancelled at %q is not a time such as \"2024-01-15 10:23:45 -0500\"", integrations.Clip(c))
		}
		cancelled = true
	}
	o.Status = status(cancelled, r.cell(rec, exportColFinancial))

	cur := r.cell(rec, exportColCurrency)
	if cur == "" {
		return integrations.OrderEvent{}, bad(exportColCurrency, "Currency is empty")
	}
	if !money.ValidCurrency(cur) {
		return integrations.OrderEvent{}, bad(exportColCurrency, "Currency %q is not an ISO 4217 code", integrations.Clip(cur))
	}
	o.Currency = strings.ToUpper(cur)
	total := r.cell(rec, exportColTotal)
	if total == "" {
		return integrations.OrderEvent{}, bad(exportColTotal, "Total is empty")
	}
	var err error
	if o.TotalMinor, err = money.ParseMinor(total, o.Currency); err != nil {
		return integrations.OrderEvent{}, bad(exportColTotal, "%v", err)
	}
	if o.TotalMinor < 0 {
		return integrations.OrderEvent{}, bad(exportColTotal, "Total is negative")
	}

	// Not a webhook topic: it says where the event came from, for logs.
	ev := integrations.OrderEvent{Topic: "orders/export", Order: o}
	if ra := r.cell(rec, exportColRefunded); ra != "" {
		v, err := money.ParseMinor(ra, o.Currency)
		switch {
		case err != nil:
			return integrations.OrderEvent{}, bad(exportColRefunded, "%v", err)
		case v < 0:
			return integrations.OrderEvent{}, bad(exportColRefunded, "Refunded Amount is negative")
		case v > o.TotalMinor:
			return integrations.OrderEvent{}, bad(exportColRefunded, "Refunded Amount %s is more than the Total %s %s",
				money.Format(v, o.Currency), money.Format(o.TotalMinor, o.Currency), o.Currency)
		case v > 0:
			ev.Refunds = []integrations.Refund{{Source: integrations.SourceShopify, OrderID: o.OrderID,
				RefundID: o.OrderID + exportRefundSuffix, AmountMinor: v, Currency: o.Currency, CreatedAt: o.CreatedAt}}
		}
	}
	return ev, nil
}

func exportMissing(col map[string]int) []string {
	var missing []string
	for _, c := range exportRequired {
		if _, ok := col[strings.ToLower(c)]; !ok {
			missing = append(missing, c)
		}
	}
	return missing
}

// exportTime parses the export's times ("2024-01-15 10:23:45 -0500"), returned in UTC. RFC 3339 is
// accepted too, for exports passed through tools that rewrite times in it.
func exportTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 -07:00", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
