// Package csvrows holds what the vendor CSV readers (generic orders, Shopify's order export) share:
// errors that name the line and column, header indexing, and the spreadsheet quirks of CSV files.
package csvrows

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/clvd/clvd/integrations"
)

// bom is the byte order mark spreadsheet programs put at the start of "CSV UTF-8" files.
var bom = []byte("\ufeff")

// Error is a bad row or header. It wraps integrations.ErrMalformed, so callers can tell data that
// must be fixed from a failing reader, and reads "line 7, column amount: ...".
type Error struct {
	Line   int
	Column string
	Reason string
}

func (e *Error) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d, column %s: %s", e.Line, e.Column, e.Reason)
}

func (e *Error) Unwrap() error { return integrations.ErrMalformed }

// ReadError turns the csv package's syntax errors into malformed-row errors naming the line and
// character; anything else (a failing disk, a closed pipe) is returned as it is.
func ReadError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &Error{Line: pe.StartLine, Reason: "the row does not have as many fields as the header (an unquoted comma or a missing one?)"}
	}
	return &Error{Line: pe.StartLine, Reason: fmt.Sprintf("%v (line %d, character %d)", pe.Err, pe.Line, pe.Column)}
}

// HeaderIndex maps the known columns of a header row to their index, keyed by lower-cased name.
// Names are trimmed and matched case-insensitively; a known column named twice is an error, since
// which one holds the data is a guess.
func HeaderIndex(header []string, known []string) (map[string]int, error) {
	display := make(map[string]string, len(known))
	for _, c := range known {
		display[strings.ToLower(c)] = c
	}
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, string(bom))
		}
		h = strings.ToLower(strings.TrimSpace(h))
		name, ok := display[h]
		if !ok {
			continue
		}
		if _, dup := col[h]; dup {
			return nil, &Error{Line: 1, Column: name, Reason: fmt.Sprintf("column %s appears twice in the header", name)}
		}
		col[h] = i
	}
	return col, nil
}

// SkipBOM drops a leading byte order mark.
func SkipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, _ := br.Peek(len(bom)); bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
	}
	return br
}

// Blank reports whether every cell of a row is empty (spreadsheets leave such rows at the end).
func Blank(rec []string) bool {
	for _, c := range rec {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}
