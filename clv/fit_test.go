package clv

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
)

func TestColdStartNotEnoughData(t *testing.T) {
	sums := cdnowLike(2000, 9).summaries(Week)
	var oneTimers, repeaters []Summary
	for _, s := range sums {
		if s.Frequency == 0 {
			oneTimers = append(oneTimers, s)
		} else {
			repeaters = append(repeaters, s)
		}
	}
	cases := []struct {
		name string
		sums []Summary
		opts FitOptions
		ok   bool
	}{
		{"no customers", nil, FitOptions{}, false},
		{"49 customers", sums[:49], FitOptions{}, false},
		{"many customers, 19 repeat", append(append([]Summary{}, oneTimers[:200]...), repeaters[:19]...), FitOptions{}, false},
		{"many customers, 20 repeat", append(append([]Summary{}, oneTimers[:200]...), repeaters[:20]...), FitOptions{}, true},
		{"custom threshold", sums[:500], FitOptions{MinCustomers: 1000}, false},
		{"no minimum", append(append([]Summary{}, oneTimers[:20]...), repeaters[:10]...), FitOptions{MinCustomers: -1, MinRepeatCustomers: -1}, true},
	}
	for _, c := range cases {
		_, _, err := Fit(c.sums, Week, c.opts)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrNotEnoughData) {
			t.Errorf("%s: err = %v, want ErrNotEnoughData", c.name, err)
		}
	}
}

func TestFitRejectsInvalidSummaries(t *testing.T) {
	base := cdnowLike(200, 1).summaries(Week)
	for _, bad := range []Summary{
		{Frequency: -1, T: 3},
		{Frequency: 2, Recency: 5, T: 4},
		{Frequency: math.NaN(), T: 3},
		{Frequency: 1, Recency: 1, T: math.Inf(1)},
		{Frequency: 1, Recency: 1, T: 2, MonetaryValue: math.NaN()},
	} {
		sums := append(append([]Summary{}, base...), bad)
		if _, _, err := Fit(sums, Week, FitOptions{}); !errors.Is(err, ErrInvalidSummary) {
			t.Errorf("%+v: err = %v, want ErrInvalidSummary", bad, err)
		}
	}
	if _, _, err := Fit(base, Unit(0), FitOptions{}); err == nil {
		t.Error("invalid unit accepted")
	}
}

// An optimiser stopped early is an error, not a model.
func TestFitReportsNonConvergence(t *testing.T) {
	sums := summaries(readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv"))
	m, rep, err := Fit(sums, Week, FitOptions{MaxIterations: 3})
	if !errors.Is(err, ErrNotConverged) || m != nil {
		t.Fatalf("err = %v, model %v; want ErrNotConverged and no model", err, m)
	}
	if rep.BGNBD.Converged || rep.BGNBD.GradNorm <= gradTolerance {
		t.Errorf("report claims convergence: %+v", rep.BGNBD)
	}
}

// Data drawn from the BG/NBD process recover its parameters.
func TestFitRecoversSimulatedParameters(t *testing.T) {
	c := cdnowLike(50000, 21)
	m, rep, err := Fit(c.summaries(Day), Day, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The day rounding of simulated times is a small misspecification; 50,000 customers pin
	// the parameters to several percent.
	within(t, "r", m.BGNBD.R, c.bg.R, 0.1)
	within(t, "alpha", m.BGNBD.Alpha, c.bg.Alpha, 0.1)
	within(t, "a", m.BGNBD.A, c.bg.A, 0.15)
	within(t, "b", m.BGNBD.B, c.bg.B, 0.2)
	within(t, "p", m.GammaGamma.P, c.gg.P, 0.15)
	within(t, "q", m.GammaGamma.Q, c.gg.Q, 0.15)
	t.Logf("%d customers → %d rows, %+v", rep.Customers, rep.UniqueRows, m.BGNBD)
}

func TestModelJSONRoundTrip(t *testing.T) {
	m := &Model{Unit: Week, BGNBD: pubBG, GammaGamma: &pubGG, FittedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Customers: 2357, RepeatCustomers: 946, LogLik: -9582.4}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Model
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Unit != Week || back.BGNBD != m.BGNBD || *back.GammaGamma != *m.GammaGamma || !back.FittedAt.Equal(m.FittedAt) ||
		back.Customers != 2357 || back.LogLik != m.LogLik {
		t.Errorf("round trip: %s → %+v", b, back)
	}
	if err := json.Unmarshal([]byte(`{"unit":"fortnight"}`), &back); err == nil {
		t.Error("bad unit accepted")
	}
	if _, err := json.Marshal(Model{}); err == nil {
		t.Error("zero unit encoded silently")
	}
}

func TestUnit(t *testing.T) {
	for s, want := range map[string]Unit{"day": Day, "Week": Week, " weeks ": Week, "d": Day} {
		if u, err := ParseUnit(s); err != nil || u != want {
			t.Errorf("ParseUnit(%q) = %v, %v", s, u, err)
		}
	}
	if _, err := ParseUnit("month"); err == nil {
		t.Error("month accepted")
	}
	if Day.Days() != 1 || Week.Days() != 7 || Unit(0).Days() != 0 || Week.String() != "week" {
		t.Error("unit lengths or names")
	}
}
