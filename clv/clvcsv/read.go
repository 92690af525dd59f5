// Package clvcsv reads transaction and summary files for the clv models and runs the logic of
// `clvd model fit` and `clvd model predict` on readers and writers (it opens no files itself).
package clvcsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/clvd/clvd/clv"
)

// Columns says where the transaction fields are. Each is a header name (matched without regard to
// case) or a 1-based column index. An empty Amount means the file has no amounts (all 0).
type Columns struct {
	Customer string
	Date     string
	Amount   string
	// NoHeader: the first line is data; columns must then be given by index.
	NoHeader bool
}

// DefaultColumns are the flags' defaults.
var DefaultColumns = Columns{Customer: "customer_id", Date: "date", Amount: "amount"}

// Input is one file to load.
type Input struct {
	Name string    // for messages
	R    io.Reader // the file's contents
	// Summary: the file holds per-customer summaries (frequency|x, recency|t_x, T, optional
	// monetary_value|zbar and id|customer_id) in Unit, instead of transactions.
	Summary bool
	Columns Columns
	// CalibrationEnd: transactions after this UTC day are ignored; summaries are taken at it.
	CalibrationEnd time.Time
	Unit           clv.Unit
	// SkipBad: count and report bad rows instead of failing on the first.
	SkipBad bool
}

// Customer is one customer's summary (and, from a transaction file, their purchases).
type Customer struct {
	ID        string
	Summary   clv.Summary
	Purchases []clv.Purchase
}

// Loaded is the outcome of Load.
type Loaded struct {
	Customers []Customer // in order of first appearance
	Rows      int        // data rows read
	Skipped   int        // bad rows skipped (SkipBad)
	AfterEnd  int        // transactions after the calibration end, ignored
	// Problems holds the first few bad-row messages when SkipBad.
	Problems []string
}

const maxProblems = 10

// RowError is a bad row: which file, line and column, and why.
type RowError struct {
	File   string
	Line   int
	Column int    // 1-based; 0 when the whole row is bad
	Name   string // the column's header name, if any
	Err    error
}

func (e *RowError) Error() string {
	col := ""
	if e.Column > 0 {
		col = fmt.Sprintf(" column %d", e.Column)
		if e.Name != "" {
			col += fmt.Sprintf(" (%s)", e.Name)
		}
		col += ":"
	}
	return fmt.Sprintf("%s:%d:%s %v", e.File, e.Line, col, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// rowReader yields the fields of each line, whatever the delimiter.
type rowReader struct {
	next func() ([]string, int, error) // fields, 1-based line, io.EOF at the end
}

// newRowReader detects the delimiter from the first non-empty line: a comma, tab or semicolon if
// present (quoted CSV, read by encoding/csv), else runs of blanks (as in the CDNOW files). CRLF
// line ends and a UTF-8 byte-order mark are accepted.
func newRowReader(r io.Reader) (*rowReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	head, _ := br.Peek(64 << 10)
	first := head
	for len(first) > 0 {
		line := first
		if i := bytes.IndexByte(first, '\n'); i >= 0 {
			line, first = first[:i], first[i+1:]
		} else {
			first = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			first = line
			break
		}
	}
	var delim rune
	for _, d := range []rune{',', '\t', ';'} {
		if bytes.ContainsRune(first, d) {
			delim = d
			break
		}
	}
	if delim != 0 {
		cr := csv.NewReader(br)
		cr.Comma = delim
		cr.FieldsPerRecord = -1
		cr.TrimLeadingSpace = true
		cr.ReuseRecord = true
		return &rowReader{next: func() ([]string, int, error) {
			rec, err := cr.Read()
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return nil, pe.Line, err
				}
				return nil, 0, err
			}
			line, _ := cr.FieldPos(0)
			for i := range rec {
				rec[i] = strings.TrimSpace(rec[i])
			}
			return rec, line, nil
		}}, nil
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	return &rowReader{next: func() ([]string, int, error) {
		for sc.Scan() {
			line++
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				return f, line, nil
			}
		}
		if err := sc.Err(); err != nil {
			return nil, line, err
		}
		return nil, line, io.EOF
	}}, nil
}

// column resolves a column spec against the header (nil when there is none). It returns the
// 0-based index and the header name.
func column(spec string, header []string, what string) (int, string, error) {
	spec = strings.TrimSpace(spec)
	if n, err := strconv.Atoi(spec); err == nil {
		if n < 1 {
			return 0, "", fmt.Errorf("%s column index %d: indices start at 1", what, n)
		}
		name := ""
		if n <= len(header) {
			name = header[n-1]
		}
		return n - 1, name, nil
	}
	if header == nil {
		return 0, "", fmt.Errorf("%s column %q: a file without a header needs column numbers", what, spec)
	}
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(h), spec) {
			return i, h, nil
		}
	}
	return 0, "", fmt.Errorf("%s column %q not in header %q", what, spec, header)
}

// dateLayouts are the accepted date forms; those without a zone are UTC.
var dateLayouts = []string{"2006-01-02", "20060102", time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// ParseDate reads YYYY-MM-DD, YYYYMMDD, RFC 3339, or "YYYY-MM-DD HH:MM:SS" (UTC).
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if len(l) != len(s) && l != time.RFC3339Nano {
			continue
		}
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %q (want YYYY-MM-DD, YYYYMMDD or RFC 3339)", s)
}

// Load reads the input and summarises every customer at the calibration end.
func Load(in Input) (*Loaded, error) {
	if !in.Unit.Valid() {
		return nil, fmt.Errorf("invalid unit %v", in.Unit)
	}
	if in.Summary {
		rr, err := newRowReader(in.R)
		if err != nil {
			return nil, err
		}
		return loadSummaries(in, rr)
	}
	return loadTransactions(in)
}

// problem records a bad row, or returns it as the error when not skipping.
func (l *Loaded) problem(in Input, e *RowError) error {
	if !in.SkipBad {
		return e
	}
	l.Skipped++
	if len(l.Problems) < maxProblems {
		l.Problems = append(l.Problems, e.Error())
	}
	return nil
}

// Transaction is one row of a transaction file.
type Transaction struct {
	Customer string
	Time     time.Time
	Amount   float64 // 0 when the file has no amount column
	Line     int     // 1-based
}

// TransactionReader reads a transaction file row by row (CSV, TSV, semicolons or blank-separated
// columns, as newRowReader detects), with the columns cols names.
type TransactionReader struct {
	name                string
	rr                  *rowReader
	ci, di, ai          int
	cname, dname, aname string
	rows                int
}

// Rows is the number of data rows read so far (bad ones included, unreadable lines not).
func (tr *TransactionReader) Rows() int { return tr.rows }

// NewTransactionReader reads the header (unless cols.NoHeader) and resolves the columns. name is
// the file's name for messages.
func NewTransactionReader(name string, r io.Reader, cols Columns) (*TransactionReader, error) {
	rr, err := newRowReader(r)
	if err != nil {
		return nil, err
	}
	var header []string
	if !cols.NoHeader {
		h, _, err := rr.next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty file", name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		header = append([]string(nil), h...)
	}
	tr := &TransactionReader{name: name, rr: rr, ai: -1}
	if tr.ci, tr.cname, err = column(cols.Customer, header, "customer"); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if tr.di, tr.dname, err = column(cols.Date, header, "date"); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if strings.TrimSpace(cols.Amount) != "" {
		if tr.ai, tr.aname, err = column(cols.Amount, header, "amount"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return tr, nil
}

// Next returns the next row, io.EOF at the end, or a *RowError for a bad row (reading may go on
// after one; an error of the file itself is returned as it is, and ends the reading).
func (tr *TransactionReader) Next() (Transaction, error) {
	rec, line, err := tr.rr.next()
	if err == io.EOF {
		return Transaction{}, io.EOF
	}
	if err != nil {
		if line == 0 {
			return Transaction{}, fmt.Errorf("%s: %w", tr.name, err)
		}
		return Transaction{}, &RowError{File: tr.name, Line: line, Err: err}
	}
	tr.rows++
	if need := max(tr.ci, tr.di, tr.ai) + 1; len(rec) < need {
		return Transaction{}, &RowError{File: tr.name, Line: line, Err: fmt.Errorf("%d fields, need at least %d", len(rec), need)}
	}
	t := Transaction{Customer: rec[tr.ci], Line: line}
	if t.Customer == "" {
		return Transaction{}, &RowError{File: tr.name, Line: line, Column: tr.ci + 1, Name: tr.cname, Err: errors.New("empty customer id")}
	}
	if t.Time, err = ParseDate(rec[tr.di]); err != nil {
		return Transaction{}, &RowError{File: tr.name, Line: line, Column: tr.di + 1, Name: tr.dname, Err: err}
	}
	if tr.ai >= 0 {
		t.Amount, err = strconv.ParseFloat(rec[tr.ai], 64)
		if err != nil || math.IsNaN(t.Amount) || math.IsInf(t.Amount, 0) {
			return Transaction{}, &RowError{File: tr.name, Line: line, Column: tr.ai + 1, Name: tr.aname, Err: fmt.Errorf("bad amount %q", rec[tr.ai])}
		}
	}
	return t, nil
}

func loadTransactions(in Input) (*Loaded, error) {
	tr, err := NewTransactionReader(in.Name, in.R, in.Columns)
	if err != nil {
		return nil, err
	}
	endDay := in.CalibrationEnd.UTC().Truncate(24 * time.Hour)
	l := &Loaded{}
	idx := map[string]int{}
	for {
		t, err := tr.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			if e := l.problem(in, re); e != nil {
				return nil, e
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if t.Time.UTC().Truncate(24 * time.Hour).After(endDay) {
			l.AfterEnd++
			continue
		}
		i, ok := idx[t.Customer]
		if !ok {
			i = len(l.Customers)
			idx[t.Customer] = i
			l.Customers = append(l.Customers, Customer{ID: t.Customer})
		}
		l.Customers[i].Purchases = append(l.Customers[i].Purchases, clv.Purchase{Time: t.Time, Amount: t.Amount})
	}
	l.Rows = tr.Rows()
	for i := range l.Customers {
		c := &l.Customers[i]
		c.Summary, _ = clv.Summarize(c.Purchases, in.CalibrationEnd, in.Unit)
	}
	return l, nil
}

// summary column names, lower case; the first of each list that is present is used.
var (
	freqNames   = []string{"frequency", "x"}
	recNames    = []string{"recency", "t_x"}
	ageNames    = []string{"t"}
	moneyNames  = []string{"monetary_value", "zbar"}
	idColNames  = []string{"id", "customer_id"}
	summaryHelp = "frequency|x, recency|t_x, T, optional monetary_value|zbar and id|customer_id"
)

func loadSummaries(in Input, rr *rowReader) (*Loaded, error) {
	h, _, err := rr.next()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file", in.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	header := append([]string(nil), h...)
	find := func(names []string) int {
		for _, n := range names {
			for i, c := range header {
				if strings.ToLower(strings.TrimSpace(c)) == n {
					return i
				}
			}
		}
		return -1
	}
	fi, ri, ti, mi, ii := find(freqNames), find(recNames), find(ageNames), find(moneyNames), find(idColNames)
	if fi < 0 || ri < 0 || ti < 0 {
		return nil, fmt.Errorf("%s: header %q needs %s", in.Name, header, summaryHelp)
	}
	l := &Loaded{}
	for {
		rec, line, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := l.problem(in, &RowError{File: in.Name, Line: line, Err: err}); e != nil {
				return nil, e
			}
			if line == 0 {
				return nil, fmt.Errorf("%s: %w", in.Name, err)
			}
			continue
		}
		l.Rows++
		var v [4]float64
		bad := false
		for k, col := range []int{fi, ri, ti, mi} {
			if col < 0 {
				continue
			}
			var rerr *RowError
			if col >= len(rec) {
				rerr = &RowError{File: in.Name, Line: line, Column: col + 1, Name: header[col], Err: errors.New("missing")}
			} else if x, err := strconv.ParseFloat(rec[col], 64); err != nil || math.IsNaN(x) || math.IsInf(x, 0) || (x < 0 && k < 3) {
				rerr = &RowError{File: in.Name, Line: line, Column: col + 1, Name: header[col], Err: fmt.Errorf("bad number %q", rec[col])}
			} else {
				v[k] = x
				continue
			}
			if e := l.problem(in, rerr); e != nil {
				return nil, e
			}
			bad = true
			break
		}
		if bad {
			continue
		}
		if v[1] > v[2] {
			rerr := &RowError{File: in.Name, Line: line, Column: ri + 1, Name: header[ri], Err: fmt.Errorf("recency %v > T %v", v[1], v[2])}
			if e := l.problem(in, rerr); e != nil {
				return nil, e
			}
			continue
		}
		id := strconv.Itoa(l.Rows)
		if ii >= 0 && ii < len(rec) && rec[ii] != "" {
			id = rec[ii]
		}
		s := clv.Summary{Frequency: v[0], Recency: v[1], T: v[2], Transactions: int(v[0]) + 1}
		if v[0] > 0 {
			s.MonetaryValue = v[3]
		}
		l.Customers = append(l.Customers, Customer{ID: id, Summary: s})
	}
	return l, nil
}
