package clv

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/testdata"
)

// idSummary is one row of a published summary file.
type idSummary struct {
	ID string
	Summary
}

// readSummaryCSV reads cdnow_customers_summary*.csv: ID, x, t_x, T[, zbar].
func readSummaryCSV(t testing.TB, name string) []idSummary {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata.CDNOWDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []idSummary
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue
		}
		fs := strings.Split(strings.TrimSpace(sc.Text()), ",")
		var v [4]float64
		for i := 1; i < len(fs) && i <= 4; i++ {
			if v[i-1], err = strconv.ParseFloat(fs[i], 64); err != nil {
				t.Fatalf("%s:%d: %v", name, line+1, err)
			}
		}
		out = append(out, idSummary{fs[0], Summary{Frequency: v[0], Recency: v[1], T: v[2], MonetaryValue: v[3], Transactions: int(v[0]) + 1}})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readCDNOWTransactions reads a CDNOW transaction file (master: header, id date cds dollars;
// sample: no header, master-id sample-id date cds dollars) keyed by idCol (0-based).
func readCDNOWTransactions(t testing.TB, name string, header bool, idCol, dateCol, amtCol int) (map[string][]Purchase, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata.CDNOWDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	m := map[string][]Purchase{}
	var order []string
	for line := 0; sc.Scan(); line++ {
		if header && line == 0 {
			continue
		}
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		d, err := time.Parse("20060102", fs[dateCol])
		if err != nil {
			t.Fatalf("%s:%d: %v", name, line+1, err)
		}
		a, err := strconv.ParseFloat(fs[amtCol], 64)
		if err != nil {
			t.Fatalf("%s:%d: %v", name, line+1, err)
		}
		id := strings.TrimLeft(fs[idCol], "0")
		if _, ok := m[id]; !ok {
			order = append(order, id)
		}
		m[id] = append(m[id], Purchase{Time: d, Amount: a})
	}
	return m, order
}

func summaries(rows []idSummary) []Summary {
	out := make([]Summary, len(rows))
	for i, r := range rows {
		out[i] = r.Summary
	}
	return out
}
