package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/clvd/clvd/clv/clvcsv"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/internal/money"
)

// transactionSource reads a plain transaction file (customer, date, amount per row, as the CDNOW
// files and most analysts' exports are) as paid orders of the generic orders source. An order's id
// is the customer id and the row's rank among that customer's rows ("C-3" is customer C's third
// row), so importing the same file again finds the same orders.
type transactionSource struct {
	tr       *clvcsv.TransactionReader
	currency string
	seen     map[string]int
	line     int
}

func newTransactionSource(name string, r io.Reader, cols clvcsv.Columns, currency string) (*transactionSource, error) {
	tr, err := clvcsv.NewTransactionReader(name, r, cols)
	if err != nil {
		return nil, err
	}
	return &transactionSource{tr: tr, currency: currency, seen: map[string]int{}}, nil
}

func (s *transactionSource) Line() int { return s.line }

func (s *transactionSource) Next() (integrations.OrderEvent, error) {
	t, err := s.tr.Next()
	var re *clvcsv.RowError
	switch {
	case errors.Is(err, io.EOF):
		return integrations.OrderEvent{}, io.EOF
	case errors.As(err, &re):
		// The import names the file; the message names the line and column, as the CSV readers do.
		s.line = re.Line
		where := fmt.Sprintf("line %d", re.Line)
		if re.Column > 0 {
			where += fmt.Sprintf(", column %d", re.Column)
			if re.Name != "" {
				where += " (" + re.Name + ")"
			}
		}
		return integrations.OrderEvent{}, fmt.Errorf("%w: %s: %v", integrations.ErrMalformed, where, re.Err)
	case err != nil:
		return integrations.OrderEvent{}, err
	}
	s.line = t.Line
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: line %d: %s", integrations.ErrMalformed, t.Line, fmt.Sprintf(format, a...))
	}
	if len(t.Customer) > orders.MaxIDLength-8 {
		return integrations.OrderEvent{}, bad("customer id longer than %d bytes", orders.MaxIDLength-8)
	}
	if t.Amount < 0 {
		return integrations.OrderEvent{}, bad("negative amount %v: import refunds with the generic order CSV's refunded_amount", t.Amount)
	}
	total, err := money.ParseMinor(strconv.FormatFloat(t.Amount, 'f', -1, 64), s.currency)
	if err != nil {
		return integrations.OrderEvent{}, bad("amount %v: %v", t.Amount, err)
	}
	s.seen[t.Customer]++
	o := &integrations.Order{Source: integrations.SourceOrders, OrderID: t.Customer + "-" + strconv.Itoa(s.seen[t.Customer]),
		CustomerExternalID: t.Customer, CreatedAt: t.Time.UTC(), UpdatedAt: t.Time.UTC(), Currency: s.currency,
		TotalMinor: total, Status: integrations.OrderPaid}
	return integrations.OrderEvent{Topic: orders.Topic, Order: o}, nil
}

// transactionColumns reads the --customer-col, --date-col and --amount-col flags.
func transactionColumns(customer, date, amount string, noHeader bool) clvcsv.Columns {
	return clvcsv.Columns{Customer: strings.TrimSpace(customer), Date: strings.TrimSpace(date), Amount: strings.TrimSpace(amount), NoHeader: noHeader}
}
