package clv

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// The published CDNOW results (Fader, Hardie & Lee 2005) on the 2,357-customer sample with the
// 39-week calibration ending 1997-09-30.
var (
	pubBG  = BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	pubLL  = -9582.4
	pubGG  = GammaGamma{P: 6.25, Q: 3.74, V: 15.44}
	pubEY  = 1.226 // E[Y(39) | x=2, t_x=30.43, T=38.86]
	calEnd = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
)

func within(t *testing.T, name string, got, want, rel float64) {
	t.Helper()
	if d := math.Abs(got-want) / math.Abs(want); !(d <= rel) {
		t.Errorf("%s = %.6g, want %.6g ± %.2g%% (off by %.3g%%)", name, got, want, 100*rel, 100*d)
	}
}

// sampleSummaries summarises CDNOW_sample.txt (keyed by the sample id, column 2) at the
// calibration end, in weeks, in sample-id order.
func sampleSummaries(t *testing.T) []Summary {
	t.Helper()
	tx, _ := readCDNOWTransactions(t, "CDNOW_sample.txt", false, 1, 2, 4)
	out := make([]Summary, 0, len(tx))
	for i := 1; i <= len(tx); i++ {
		s, ok := Summarize(tx[strconv.Itoa(i)], calEnd, Week)
		if !ok {
			t.Fatalf("sample customer %d has no purchase before the calibration end", i)
		}
		out = append(out, s)
	}
	return out
}

func TestCDNOWPublishedResults(t *testing.T) {
	paths := []struct {
		name  string
		sums  func(*testing.T) []Summary
		hasGG bool
	}{
		{"summary with transactions", func(t *testing.T) []Summary {
			return summaries(readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv"))
		}, true},
		{"summary", func(t *testing.T) []Summary { return summaries(readSummaryCSV(t, "cdnow_customers_summary.csv")) }, false},
		{"transactions", sampleSummaries, true},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			sums := p.sums(t)
			if len(sums) != 2357 {
				t.Fatalf("%d customers, want 2357", len(sums))
			}
			m, rep, err := Fit(sums, Week, FitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.BGNBD.Converged {
				t.Errorf("BG/NBD not reported converged: %+v", rep.BGNBD)
			}
			within(t, "r", m.BGNBD.R, pubBG.R, 0.005)
			within(t, "alpha", m.BGNBD.Alpha, pubBG.Alpha, 0.005)
			within(t, "a", m.BGNBD.A, pubBG.A, 0.005)
			within(t, "b", m.BGNBD.B, pubBG.B, 0.005)
			within(t, "loglik", m.LogLik, pubLL, 0.005)
			if m.Customers != 2357 || m.RepeatCustomers != 946 {
				t.Errorf("customers %d (%d repeat), want 2357 (946)", m.Customers, m.RepeatCustomers)
			}
			ey, err := m.BGNBD.ConditionalExpectedPurchases(39, 2, 30.43, 38.86)
			if err != nil {
				t.Fatal(err)
			}
			within(t, "E[Y(39)|2,30.43,38.86]", ey, pubEY, 0.005)
			if !p.hasGG {
				if m.GammaGamma != nil || rep.GammaGamma.Usable {
					t.Errorf("gamma-gamma fitted without monetary values: %+v", rep.GammaGamma)
				}
				return
			}
			if m.GammaGamma == nil {
				t.Fatalf("no gamma-gamma: %s", rep.GammaGamma.Problem)
			}
			if rep.GammaGamma.Customers != 946 {
				t.Errorf("gamma-gamma on %d customers, want 946", rep.GammaGamma.Customers)
			}
			within(t, "p", m.GammaGamma.P, pubGG.P, 0.005)
			within(t, "q", m.GammaGamma.Q, pubGG.Q, 0.005)
			within(t, "v", m.GammaGamma.V, pubGG.V, 0.005)
		})
	}
}

// The likelihood itself, at the published parameters, independent of the optimiser.
func TestCDNOWLogLikelihoodAtPublishedParams(t *testing.T) {
	var ll float64
	for _, s := range summaries(readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv")) {
		ll += pubBG.LogLikelihood(s.Frequency, s.Recency, s.T)
	}
	within(t, "LL(published params)", ll, pubLL, 1e-4)
	ey, _ := pubBG.ConditionalExpectedPurchases(39, 2, 30.43, 38.86)
	within(t, "E[Y] at published params", ey, pubEY, 1e-3)
}

// Summarize must reproduce the published summaries from the raw sample: same-day purchases
// merged, t_x and T from the first purchase day, T to the calibration end day.
func TestSummarizeReproducesPublishedSummaries(t *testing.T) {
	pub := readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv")
	got := sampleSummaries(t)
	for i, p := range pub {
		g := got[i]
		if g.Frequency != p.Frequency || math.Abs(g.Recency-p.Recency) > 0.0051 ||
			math.Abs(g.T-p.T) > 0.0051 || math.Abs(g.MonetaryValue-p.MonetaryValue) > 0.0051 {
			t.Errorf("customer %s: got x=%v t_x=%.4f T=%.4f zbar=%.4f, published %v %v %v %v",
				p.ID, g.Frequency, g.Recency, g.T, g.MonetaryValue, p.Frequency, p.Recency, p.T, p.MonetaryValue)
		}
	}
	// Customer 1 exactly: first purchase 1997-01-01, last (in calibration) 1997-08-02.
	c1 := got[0]
	if c1.Frequency != 2 || c1.Recency != 213.0/7 || c1.T != 272.0/7 || c1.Transactions != 3 {
		t.Errorf("customer 1: %+v, want x=2 t_x=213/7 T=272/7", c1)
	}
	if !c1.First.Equal(time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC)) || !c1.Last.Equal(time.Date(1997, 8, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("customer 1 first/last %v %v", c1.First, c1.Last)
	}
	if math.Abs(c1.MonetaryValue-(29.73+14.96)/2) > 1e-9 || math.Abs(c1.Total-(29.33+29.73+14.96)) > 1e-9 {
		t.Errorf("customer 1 zbar %v total %v", c1.MonetaryValue, c1.Total)
	}
}

// The full master file: 23,570 customers, $0 rows, several rows a day; must fit.
func TestCDNOWMasterFits(t *testing.T) {
	tx, order := readCDNOWTransactions(t, "CDNOW_master.txt", true, 0, 1, 3)
	sums := make([]Summary, 0, len(order))
	zeroValue := 0
	for _, id := range order {
		s, ok := Summarize(tx[id], calEnd, Week)
		if !ok {
			continue // every customer's first purchase is in Q1 1997, so this does not happen
		}
		if s.Frequency > 0 && s.MonetaryValue <= 0 {
			zeroValue++
		}
		sums = append(sums, s)
	}
	if len(sums) != 23570 {
		t.Fatalf("%d customers, want 23570", len(sums))
	}
	m, rep, err := Fit(sums, Week, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.GammaGamma == nil || rep.GammaGamma.Excluded != zeroValue || zeroValue == 0 {
		t.Errorf("gamma-gamma %+v: excluded %d, want the %d zero-value repeat customers", m.GammaGamma, rep.GammaGamma.Excluded, zeroValue)
	}
	// The full cohort is ten times the sample from the same process: parameters close to it.
	within(t, "master r", m.BGNBD.R, pubBG.R, 0.15)
	within(t, "master a", m.BGNBD.A, pubBG.A, 0.15)
	t.Logf("master: %+v, gg %+v, %d unique rows, %.1f ms", m.BGNBD, *m.GammaGamma, rep.UniqueRows, rep.Seconds*1e3)
}
