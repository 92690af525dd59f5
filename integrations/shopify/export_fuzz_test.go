package shopify

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/clvd/clvd/integrations"
)

// FuzzExportReader: any input gives events or errors that wrap ErrMalformed, never a panic or an
// endless loop.
func FuzzExportReader(f *testing.F) {
	if b, err := os.ReadFile("testdata/orders_export.csv"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"Name,Email,Financial Status,Currency,Total,Created at\n#1,a@b.co,paid,USD,10.00,2024-01-15 10:23:45 -0500\n#1,,,,,\n",
		"Name,Email,Financial Status,Currency,Total,Created at,Cancelled at,Refunded Amount,Id\n#2,x@y.z,refunded,EUR,5,2024-01-15T10:23:45Z,,5,99\n",
		"Name\n", "", "Name,Email,Financial Status,Currency,Total,Created at\n\"#3\n,,,,,\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := NewExportReader(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("header error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		for i := 0; i <= len(s)+1; i++ { // each Next consumes at least a byte
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("row error does not wrap ErrMalformed: %v", err)
			}
		}
		t.Fatal("reader did not reach the end of a small input")
	})
}
