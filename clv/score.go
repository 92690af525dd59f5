package clv

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// SupportSignals are a customer's helpdesk signals, counted by the service.
type SupportSignals struct {
	OpenTickets   int `json:"open_tickets"`   // tickets not solved or closed
	RecentTickets int `json:"recent_tickets"` // tickets created in the last ChurnConfig.RecentTicketDays days
	BadRatings    int `json:"bad_ratings"`    // "bad" satisfaction ratings (the service picks the window)
	UrgentOpen    int `json:"urgent_open"`    // open tickets with urgent priority
}

// ChurnResult is the churn risk with its explanation.
type ChurnResult struct {
	Probability float64  `json:"probability"` // after the support-signal adjustment
	Base        float64  `json:"base"`        // 1 − P(alive) from the model or heuristic
	Band        string   `json:"band"`        // low | medium | high
	Reasons     []string `json:"reasons"`     // what raised it, most important first
}

// Score is everything the service writes for one customer.
type Score struct {
	// Model is "bgnbd" or "heuristic" (cold start, or the model could not be used: see Notes).
	Model    string    `json:"model"`
	Unit     Unit      `json:"unit"` // of Summary's durations
	ScoredAt time.Time `json:"scored_at"`
	Summary  Summary   `json:"summary"`
	// HistoricCLV is the net spend so far. SimpleCLV is the stakeholders' formula: mean order value
	// × orders per year × ExpectedLifetimeYears × margin, where mean order value = Total /
	// Transactions (not below 0) and orders per year = Transactions / max(years since the first
	// purchase, Heuristic.MinYears). PredictedCLV is the discounted margin of the purchases
	// expected within the horizon (BG/NBD × Gamma-Gamma, or the heuristic).
	HistoricCLV  float64 `json:"historic_clv"`
	SimpleCLV    float64 `json:"simple_clv"`
	PredictedCLV float64 `json:"predicted_clv"`

	PAlive            float64 `json:"p_alive"`
	ExpectedPurchases float64 `json:"expected_purchases"` // within the horizon
	ExpectedAvgValue  float64 `json:"expected_avg_value"`
	ValueModel        string  `json:"value_model"` // gammagamma | customer_mean | heuristic

	Churn ChurnResult `json:"churn"`
	// ExpectedNextOrder is the expected date (UTC midnight) of the next order; zero when none is
	// expected within the horizon, the customer is in the high churn band, or it is not meaningful.
	ExpectedNextOrder time.Time `json:"expected_next_order"`
	// Notes explain fallbacks (why the heuristic or the customer's own mean was used).
	Notes []string `json:"notes,omitempty"`
}

// scorerCache keeps Scorers for ScoreCustomer so callers that pass the same model and config for
// every customer pay the per-model precomputation once.
var scorerCache struct {
	sync.Mutex
	m map[scorerKey]*Scorer
}

type scorerKey struct {
	unit  Unit
	bg    BGNBD
	hasGG bool
	gg    GammaGamma
	nilM  bool
	cfg   Config
}

const scorerCacheSize = 64

func cachedScorer(m *Model, cfg Config) (*Scorer, error) {
	k := scorerKey{nilM: m == nil, cfg: cfg}
	if m != nil {
		k.unit, k.bg = m.Unit, m.BGNBD
		if m.GammaGamma != nil {
			k.hasGG, k.gg = true, *m.GammaGamma
		}
	}
	scorerCache.Lock()
	s, ok := scorerCache.m[k]
	scorerCache.Unlock()
	if ok {
		return s, nil
	}
	s, err := NewScorer(m, cfg)
	if err != nil {
		return nil, err
	}
	scorerCache.Lock()
	defer scorerCache.Unlock()
	if scorerCache.m == nil || len(scorerCache.m) >= scorerCacheSize {
		scorerCache.m = map[scorerKey]*Scorer{} // models change rarely: start over, no LRU needed
	}
	if prev, ok := scorerCache.m[k]; ok {
		return prev, nil
	}
	scorerCache.m[k] = s
	return s, nil
}

// ScoreCustomer scores one customer from their purchases (any order) up to now. m == nil scores
// with the cold-start heuristics, and says so (Model "heuristic"). An invalid cfg is replaced by
// DefaultConfig, with a note. For bulk scoring, NewScorer + Scorer.Score avoids the cache lookup.
func ScoreCustomer(purchases []Purchase, sig SupportSignals, m *Model, cfg Config, now time.Time) Score {
	s, err := cachedScorer(m, cfg)
	var note string
	if err != nil {
		note = fmt.Sprintf("config invalid, defaults used: %v", err)
		s, _ = cachedScorer(m, DefaultConfig())
	}
	sc := s.Score(purchases, sig, now)
	if note != "" {
		sc.Notes = append(sc.Notes, note)
	}
	return sc
}

// Score scores one customer from their purchases up to now.
func (s *Scorer) Score(purchases []Purchase, sig SupportSignals, now time.Time) Score {
	sum, ok := Summarize(purchases, now, s.unit)
	return s.ScoreSummary(sum, ok, sig, now)
}

// ScoreSummary scores a customer from a summary taken at now in the scorer's Unit; hasPurchases
// false means the customer has no purchase yet.
func (s *Scorer) ScoreSummary(sum Summary, hasPurchases bool, sig SupportSignals, now time.Time) Score {
	sc := Score{Model: "bgnbd", Unit: s.unit, ScoredAt: now, Summary: sum}
	if s.heuristic {
		sc.Model = "heuristic"
		sc.Notes = append(sc.Notes, "heuristic scores: "+s.note)
	}
	if !hasPurchases {
		sc.Churn = ChurnResult{Band: "low", Reasons: []string{"no orders yet"}}
		return sc
	}
	pred, err := s.Predict(sum)
	if err != nil && (s.heuristic || errors.Is(err, ErrInvalidSummary)) {
		sc.Notes = append(sc.Notes, "cannot score: "+err.Error())
		sc.Churn = ChurnResult{Band: "low", Reasons: []string{}}
		return sc
	}
	if err != nil {
		// The model cannot be evaluated exactly for this customer: say so and use the heuristics,
		// re-summarised in days.
		hs := &Scorer{cfg: s.cfg, horizon: s.horizon, hEnds: s.hEnds, hDisc: s.hDisc}
		hs.useHeuristic(err.Error())
		return hs.ScoreSummary(resummarize(sum, s.perDays), true, sig, now)
	}
	if pred.ValueModel == "customer_mean" && s.ggNote != "" {
		sc.Notes = append(sc.Notes, s.ggNote)
	}
	sc.HistoricCLV = sum.Total
	sc.SimpleCLV = s.simpleCLV(sum)
	sc.PredictedCLV = pred.CLV
	sc.PAlive = pred.PAlive
	sc.ExpectedPurchases = pred.ExpectedPurchases
	sc.ExpectedAvgValue = pred.ExpectedAvgValue
	sc.ValueModel = pred.ValueModel
	churnAlive := pred.PAlive
	if !s.heuristic && sum.Frequency == 0 {
		// The BG/NBD lets customers drop out only after a repeat purchase, so a one-time buyer is
		// "alive" (P = 1) however long ago they bought. For churn that is useless, so one-time
		// buyers get the recency heuristic's P(alive) with the default gap instead.
		churnAlive = s.heuristicPAlive(sum)
	}
	sc.Churn = s.churn(churnAlive, sum, sig)
	if pred.NextOrderDays >= 0 && sc.Churn.Band != "high" {
		day := time.Unix(dayNumber(now)*86400, 0).UTC()
		sc.ExpectedNextOrder = day.AddDate(0, 0, int(math.Round(pred.NextOrderDays)))
	}
	return sc
}

// resummarize converts a summary's durations from periods of perDays days to days.
func resummarize(sum Summary, perDays float64) Summary {
	sum.Recency *= perDays
	sum.T *= perDays
	return sum
}

// simpleCLV is the stakeholders' formula (see Score.SimpleCLV).
func (s *Scorer) simpleCLV(sum Summary) float64 {
	tx := float64(sum.Transactions)
	if tx == 0 {
		tx = sum.Frequency + 1
	}
	perYear := tx / math.Max(sum.T*s.perDays/DaysPerYear, s.cfg.Heuristic.MinYears)
	return customerMean(sum) * perYear * s.cfg.ExpectedLifetimeYears * s.cfg.Margin
}

// churn combines the base probability with the support signals (see ChurnConfig).
func (s *Scorer) churn(pAlive float64, sum Summary, sig SupportSignals) ChurnResult {
	c := s.cfg.Churn
	base := math.Min(1, math.Max(0, 1-pAlive))
	r := ChurnResult{Base: base, Reasons: []string{}}
	// Clamp so the logit is finite; 1e-9 is far below any band threshold.
	const eps = 1e-9
	b := math.Min(1-eps, math.Max(eps, base))
	logit := math.Log(b / (1 - b))

	since := (sum.T - sum.Recency) * s.perDays
	switch {
	case sum.Frequency > 0 && sum.Recency > 0:
		gap := sum.Recency * s.perDays / sum.Frequency
		if since > c.OverdueFactor*gap {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no order in %.0f days (usually every %.0f)", since, gap))
		} else if base >= c.MediumThreshold {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%.0f%% chance still active", 100*pAlive))
		}
	case base >= c.MediumThreshold:
		r.Reasons = append(r.Reasons, fmt.Sprintf("only one order, %.0f days ago", since))
	}

	capN := func(n int) float64 { return float64(min(max(n, 0), c.MaxSignalCount)) }
	type signal struct {
		n           int
		w           float64
		one, many   string // reason for one, and for n (a format with %d)
		recentTotal bool   // the recent-tickets reason also names the window
	}
	signals := [...]signal{
		{sig.BadRatings, c.BadRatingWeight, "bad satisfaction rating", "%d bad satisfaction ratings", false},
		{sig.UrgentOpen, c.UrgentWeight, "1 urgent ticket open", "%d urgent tickets open", false},
		{sig.OpenTickets, c.OpenTicketWeight, "1 open ticket", "%d open tickets", false},
		{sig.RecentTickets, c.RecentTicketWeight, "1 ticket", "%d tickets", true},
	}
	raised := false
	// Reasons in order of how much each signal added (ties in the order above).
	for range signals {
		best := -1
		for i, sg := range signals {
			if sg.n > 0 && sg.w > 0 && (best < 0 || capN(sg.n)*sg.w > capN(signals[best].n)*signals[best].w) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		sg := signals[best]
		logit += capN(sg.n) * sg.w
		raised = true
		reason := sg.one
		if sg.n != 1 {
			reason = fmt.Sprintf(sg.many, sg.n)
		}
		if sg.recentTotal {
			reason = fmt.Sprintf("%s in the last %d days", reason, c.RecentTicketDays)
		}
		r.Reasons = append(r.Reasons, reason)
		signals[best].n = 0
	}
	// Signals only ever raise the risk; max() keeps that exact where the clamp above rounds.
	r.Probability = math.Max(base, 1/(1+math.Exp(-logit)))
	if !raised {
		r.Probability = base // no signal: exactly the base, not its clamped round trip
	}
	switch {
	case r.Probability < c.MediumThreshold:
		r.Band = "low"
	case r.Probability < c.HighThreshold:
		r.Band = "medium"
	default:
		r.Band = "high"
	}
	return r
}
