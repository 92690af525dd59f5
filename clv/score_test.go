package clv

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2025, 6, 1, 14, 30, 0, 0, time.UTC)

// every returns n purchases of amount, gap days apart, the last one `last` days before now.
func every(n int, gap, last int, amount float64) []Purchase {
	ps := make([]Purchase, n)
	for i := range ps {
		ps[i] = Purchase{Time: now.AddDate(0, 0, -last-gap*(n-1-i)), Amount: amount}
	}
	return ps
}

func TestHeuristicScores(t *testing.T) {
	cfg := DefaultConfig()
	// Five orders of 40, 30 days apart, the last 60 days ago: two gaps overdue.
	sc := ScoreCustomer(every(5, 30, 60, 40), SupportSignals{}, nil, cfg, now)
	if sc.Model != "heuristic" || sc.ValueModel != "heuristic" || len(sc.Notes) == 0 || !strings.Contains(sc.Notes[0], "no fitted model") {
		t.Fatalf("not marked heuristic: %+v", sc)
	}
	if want := math.Exp(-60.0 / (2 * 30)); math.Abs(sc.PAlive-want) > 1e-12 {
		t.Errorf("P(alive) %v, want %v", sc.PAlive, want)
	}
	if sc.HistoricCLV != 200 {
		t.Errorf("historic %v", sc.HistoricCLV)
	}
	// Age 180 days < 1 year floor → 5 orders/year; 40 × 5 × 3 years.
	if math.Abs(sc.SimpleCLV-40*5*3) > 1e-9 {
		t.Errorf("simple CLV %v, want 600", sc.SimpleCLV)
	}
	// Predicted: P(alive) × 5/yr × 40 over one year, discounted day by day at 10%/yr.
	undisc := sc.PAlive * 5 * 40 * 365 / DaysPerYear
	if !(sc.PredictedCLV < undisc && sc.PredictedCLV > undisc/1.1) {
		t.Errorf("predicted %v, undiscounted %v", sc.PredictedCLV, undisc)
	}
	if math.Abs(sc.ExpectedPurchases-sc.PAlive*5*365/DaysPerYear) > 1e-9 {
		t.Errorf("expected purchases %v", sc.ExpectedPurchases)
	}
	if !sc.ExpectedNextOrder.IsZero() {
		t.Errorf("overdue customer has next order %v", sc.ExpectedNextOrder)
	}
	// On schedule: last order 10 days ago → next in 20 days.
	on := ScoreCustomer(every(5, 30, 10, 40), SupportSignals{}, nil, cfg, now)
	if want := time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC); !on.ExpectedNextOrder.Equal(want) {
		t.Errorf("next order %v, want %v", on.ExpectedNextOrder, want)
	}
	// A single order uses the default gap.
	one := ScoreCustomer(every(1, 0, 45, 40), SupportSignals{}, nil, cfg, now)
	if want := math.Exp(-45.0 / (2 * 90)); math.Abs(one.PAlive-want) > 1e-12 || !one.ExpectedNextOrder.IsZero() {
		t.Errorf("single order: P(alive) %v (want %v), next %v", one.PAlive, want, one.ExpectedNextOrder)
	}
}

func TestChurnAdjustment(t *testing.T) {
	s, _ := NewScorer(nil, DefaultConfig())
	// A summary with base = 1 − P(alive) = 0.2: P(alive) 0.8.
	sum := Summary{Frequency: 4, Recency: 120, T: 125, Transactions: 5}
	logit := func(p float64) float64 { return math.Log(p / (1 - p)) }
	sig := func(p float64) float64 { return 1 / (1 + math.Exp(-p)) }

	r := s.churn(0.8, sum, SupportSignals{})
	if math.Abs(r.Base-0.2) > 1e-15 || r.Probability != r.Base || r.Band != "low" || len(r.Reasons) != 0 {
		t.Errorf("no signals: %+v", r)
	}
	r = s.churn(0.8, sum, SupportSignals{BadRatings: 1})
	if want := sig(logit(0.2) + 0.8); math.Abs(r.Probability-want) > 1e-12 || r.Band != "medium" ||
		!slices.Equal(r.Reasons, []string{"bad satisfaction rating"}) {
		t.Errorf("one bad rating: %+v, want %v", r, want)
	}
	r = s.churn(0.8, sum, SupportSignals{OpenTickets: 2, UrgentOpen: 1, RecentTickets: 2})
	want := sig(logit(0.2) + 2*0.4 + 0.6 + 2*0.2)
	if math.Abs(r.Probability-want) > 1e-12 || r.Band != "high" ||
		!slices.Equal(r.Reasons, []string{"2 open tickets", "1 urgent ticket open", "2 tickets in the last 30 days"}) {
		t.Errorf("tickets: %+v, want %v", r, want)
	}
	// Counts are capped, and the result stays in (0, 1) for any input.
	capped := s.churn(0.8, sum, SupportSignals{OpenTickets: 50})
	three := s.churn(0.8, sum, SupportSignals{OpenTickets: 3})
	if capped.Probability != three.Probability {
		t.Errorf("cap: %v vs %v", capped.Probability, three.Probability)
	}
	for _, pa := range []float64{0, 1e-300, 0.5, 1} {
		r := s.churn(pa, sum, SupportSignals{OpenTickets: 100, BadRatings: 100, UrgentOpen: 100, RecentTickets: -5})
		if !(r.Probability >= 0 && r.Probability <= 1) || r.Probability < r.Base {
			t.Errorf("P(alive) %v: %+v", pa, r)
		}
	}
	// Overdue repeat customer: bought every 30 days, nothing for 143.
	od := Summary{Frequency: 3, Recency: 90, T: 233, Transactions: 4}
	r = s.churn(0.1, od, SupportSignals{})
	if len(r.Reasons) != 1 || r.Reasons[0] != "no order in 143 days (usually every 30)" {
		t.Errorf("overdue reasons %q", r.Reasons)
	}
	// Weights are configurable: zero weight, no effect and no reason.
	cfg := DefaultConfig()
	cfg.Churn.BadRatingWeight = 0
	s0, _ := NewScorer(nil, cfg)
	if r := s0.churn(0.8, sum, SupportSignals{BadRatings: 2}); r.Probability != r.Base || len(r.Reasons) != 0 {
		t.Errorf("zero weight: %+v", r)
	}
}

func TestScoreWithModel(t *testing.T) {
	m := &Model{Unit: Week, BGNBD: pubBG, GammaGamma: &pubGG}
	cfg := DefaultConfig()
	// CDNOW customer 1 at the calibration end.
	ps := []Purchase{{Time: time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC), Amount: 29.33},
		{Time: time.Date(1997, 1, 18, 0, 0, 0, 0, time.UTC), Amount: 29.73},
		{Time: time.Date(1997, 8, 2, 0, 0, 0, 0, time.UTC), Amount: 14.96},
		{Time: time.Date(1997, 12, 12, 0, 0, 0, 0, time.UTC), Amount: 26.48}} // after: ignored
	sc := ScoreCustomer(ps, SupportSignals{OpenTickets: 1}, m, cfg, calEnd)
	if sc.Model != "bgnbd" || sc.ValueModel != "gammagamma" || sc.Unit != Week || len(sc.Notes) != 0 {
		t.Fatalf("%+v", sc)
	}
	x, tx, T := 2.0, 213.0/7, 272.0/7
	if pa := pubBG.PAlive(x, tx, T); math.Abs(sc.PAlive-pa) > 1e-12 {
		t.Errorf("P(alive) %v, want %v", sc.PAlive, pa)
	}
	ey, _ := pubBG.ConditionalExpectedPurchases(365/7.0, x, tx, T)
	if math.Abs(sc.ExpectedPurchases-ey) > 1e-9 {
		t.Errorf("expected purchases %v, want %v", sc.ExpectedPurchases, ey)
	}
	if em, _ := pubGG.ConditionalMean(x, (29.73+14.96)/2); math.Abs(sc.ExpectedAvgValue-em) > 1e-9 {
		t.Errorf("avg value %v want %v", sc.ExpectedAvgValue, em)
	}
	if math.Abs(sc.HistoricCLV-(29.33+29.73+14.96)) > 1e-9 || !(sc.PredictedCLV > 0) {
		t.Errorf("historic %v predicted %v", sc.HistoricCLV, sc.PredictedCLV)
	}
	if math.Abs(sc.Churn.Base-(1-sc.PAlive)) > 1e-12 || !(sc.Churn.Probability > sc.Churn.Base) ||
		!slices.Contains(sc.Churn.Reasons, "1 open ticket") {
		t.Errorf("churn %+v", sc.Churn)
	}
	if sc.ExpectedNextOrder.IsZero() || !sc.ExpectedNextOrder.After(calEnd) {
		t.Errorf("next order %v", sc.ExpectedNextOrder)
	}
}

// The BG/NBD never lets a one-time buyer drop out; churn uses the recency heuristic for them.
func TestOneTimeBuyerChurn(t *testing.T) {
	m := &Model{Unit: Day, BGNBD: BGNBD{R: 0.243, Alpha: 30.9, A: 0.793, B: 2.426}, GammaGamma: &pubGG}
	sc := ScoreCustomer(every(1, 0, 400, 30), SupportSignals{}, m, DefaultConfig(), now)
	if sc.PAlive != 1 {
		t.Errorf("model P(alive) %v, want 1", sc.PAlive)
	}
	if want := 1 - math.Exp(-400.0/180); math.Abs(sc.Churn.Base-want) > 1e-12 || sc.Churn.Band != "high" ||
		!slices.Equal(sc.Churn.Reasons, []string{"only one order, 400 days ago"}) {
		t.Errorf("churn %+v, base want %v", sc.Churn, want)
	}
	if !sc.ExpectedNextOrder.IsZero() {
		t.Errorf("next order %v for a churned one-time buyer", sc.ExpectedNextOrder)
	}
}

func TestScoreFallbacks(t *testing.T) {
	// No purchases.
	sc := ScoreCustomer(nil, SupportSignals{OpenTickets: 2}, nil, DefaultConfig(), now)
	if sc.PredictedCLV != 0 || sc.Churn.Band != "low" || sc.Churn.Reasons[0] != "no orders yet" || sc.Summary.Transactions != 0 {
		t.Errorf("no purchases: %+v", sc)
	}
	// An invalid model is not used, and the score says why.
	bad := &Model{Unit: Week, BGNBD: BGNBD{R: -1, Alpha: 1, A: 1, B: 1}}
	sc = ScoreCustomer(every(3, 20, 5, 10), SupportSignals{}, bad, DefaultConfig(), now)
	if sc.Model != "heuristic" || len(sc.Notes) == 0 || !strings.Contains(sc.Notes[0], "invalid BG/NBD") {
		t.Errorf("invalid model: %+v", sc)
	}
	// An invalid config is replaced by the defaults, with a note.
	cfg := DefaultConfig()
	cfg.Margin = 7
	sc = ScoreCustomer(every(3, 20, 5, 10), SupportSignals{}, nil, cfg, now)
	if len(sc.Notes) < 2 || !strings.Contains(sc.Notes[len(sc.Notes)-1], "margin") {
		t.Errorf("invalid config: %+v", sc.Notes)
	}
	if _, err := NewScorer(nil, cfg); err == nil {
		t.Error("NewScorer accepted an invalid config")
	}
	// No gamma-gamma: the customer's own mean, noted.
	sc = ScoreCustomer(every(3, 20, 5, 10), SupportSignals{}, &Model{Unit: Week, BGNBD: pubBG}, DefaultConfig(), now)
	if sc.ValueModel != "customer_mean" || sc.ExpectedAvgValue != 10 || len(sc.Notes) != 1 {
		t.Errorf("no gamma-gamma: %+v", sc)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"horizon":   func(c *Config) { c.Horizon = 0 },
		"discount":  func(c *Config) { c.AnnualDiscountRate = -0.1 },
		"margin":    func(c *Config) { c.Margin = 0 },
		"lifetime":  func(c *Config) { c.ExpectedLifetimeYears = math.NaN() },
		"bands":     func(c *Config) { c.Churn.MediumThreshold = 0.7 },
		"weight":    func(c *Config) { c.Churn.OpenTicketWeight = -1 },
		"shares":    func(c *Config) { c.Tiers.SilverShare = 0.9 },
		"gap":       func(c *Config) { c.Heuristic.DefaultGapDays = 0 },
		"max count": func(c *Config) { c.Churn.MaxSignalCount = 0 },
	} {
		c := DefaultConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func TestScoreInvalidSummaryIsNotGarbage(t *testing.T) {
	s, _ := NewScorer(&Model{Unit: Week, BGNBD: pubBG, GammaGamma: &pubGG}, DefaultConfig())
	for _, sum := range []Summary{{Frequency: 1, Recency: 5, T: 3, Transactions: 2}, {T: -1, Transactions: 1}, {Frequency: math.NaN(), Transactions: 1}} {
		if _, err := s.Predict(sum); !errors.Is(err, ErrInvalidSummary) {
			t.Errorf("%+v: err = %v", sum, err)
		}
		sc := s.ScoreSummary(sum, true, SupportSignals{}, now)
		if sc.PredictedCLV != 0 || len(sc.Notes) == 0 || !strings.Contains(sc.Notes[0], "cannot score") {
			t.Errorf("%+v: %+v", sum, sc)
		}
	}
}
