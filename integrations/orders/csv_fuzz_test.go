package orders

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/clvd/clvd/integrations"
)

// FuzzCSVReader: any input gives events or errors that wrap ErrMalformed, never a panic or an
// endless loop (each Next consumes at least one row).
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"order_id,email,created_at,amount,currency\nA-1,a@b.co,2026-01-02,10.00,EUR\n",
		"order_id,customer_id,created_at,amount,currency,status,refunded_amount\n1,c1,20260102,5,USD,paid,1.5\n2,c2,2026-01-02T10:00:00Z,0,JPY,cancelled,\n",
		"\ufefforder_id,email,created_at,amount,currency\n\"A,1\",x@y.z,2026-01-02,\"1\",eur\n",
		"order_id\n", "", ",,,\n,,,\n", "order_id,email,created_at,amount,currency\nA,a@b.co,2026-13-45,1e9,EURO\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := NewCSVReader(strings.NewReader(s))
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
