package clv

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Scorer scores customers against one model and config. It precomputes what depends only on the
// model, the config and a customer's x, so that scoring a customer costs a few logarithms and two
// short polynomial evaluations. Build one per (model, config) with NewScorer and share it: it is
// safe for concurrent use.
//
// Why tables: the discounted CLV is Σ_k disc_k·(E[Y(t_k)] − E[Y(t_{k−1})]) over every model period
// of the horizon (52 weekly or 365 daily steps for a year), and each E[Y] is a hypergeometric
// function; summing that per customer costs tens of microseconds. Given alive, the sum depends
// on the customer only through x and β = α+T, and is smooth in ln β, so for each distinct x the
// scorer tabulates β·DET(β) as a Chebyshev series in ln β (to 1e-12 relative), built from a
// Chebyshev series of E[Y(t) | alive] in ln(1 + t/β). Tables are built lazily, once per x, the
// first time a customer with that x is scored (about a millisecond each).
type Scorer struct {
	cfg     Config
	unit    Unit
	perDays float64
	// heuristic is set when there is no usable model; note says why.
	heuristic bool
	note      string

	bg      BGNBD
	gg      *GammaGamma // nil: use the customer's own mean order value
	ggNote  string
	n       float64 // horizon in model periods
	ends    []float64
	disc    []float64
	sMax    float64 // largest t/β needed: n/α
	uLo     float64 // ln β table range
	uHi     float64
	lnA     float64
	hEnds   []float64 // heuristic steps, in days
	hDisc   []float64
	horizon float64 // horizon in years

	small [smallX]atomic.Pointer[xEntry]
	mu    sync.Mutex
	big   map[float64]*xEntry
}

const (
	smallX = 1024 // integer x below this get a lock-free table slot
	maxBig = 4096 // other x values cached; beyond, computed directly (slow but exact)
	// tableYears is how old a customer can be and still use the tables; older ones are
	// computed directly.
	tableYears = 50
	chebTol    = 1e-13
)

// xEntry holds the per-x precomputation.
type xEntry struct {
	x     float64
	lnB1  float64 // ln(b+x−1), for P(alive)
	g     cheb    // G_x(s) = E[Y(sβ) | alive], over w = ln(1+s) ∈ [0, ln(1+sMax)]
	det   cheb    // β·DET_x(β), over u = ln β ∈ [uLo, uHi]
	sNext float64 // G_x(sNext) = 1; +Inf when beyond sMax
	err   error   // tables failed: compute directly
}

// NewScorer prepares scoring with model m (nil: the cold-start heuristics) and cfg. An invalid
// cfg is an error; an invalid model gives a heuristic scorer whose scores say why.
func NewScorer(m *Model, cfg Config) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scorer{cfg: cfg, horizon: cfg.Horizon.Hours() / 24 / DaysPerYear}
	s.hEnds, s.hDisc = cfg.discountSteps(1)
	if m == nil {
		s.useHeuristic("no fitted model yet")
		return s, nil
	}
	if err := m.Unit.Validate(); err != nil {
		s.useHeuristic(err.Error())
		return s, nil
	}
	if err := m.BGNBD.Validate(); err != nil {
		s.useHeuristic(err.Error())
		return s, nil
	}
	s.unit, s.perDays, s.bg = m.Unit, m.Unit.Days(), m.BGNBD
	if m.GammaGamma != nil {
		if err := m.GammaGamma.Validate(); err != nil {
			s.ggNote = fmt.Sprintf("gamma-gamma not used (%v): expected order value is the customer's own mean", err)
		} else {
			gg := *m.GammaGamma
			s.gg = &gg
		}
	} else {
		s.ggNote = "no gamma-gamma model: expected order value is the customer's own mean"
	}
	s.n = cfg.Horizon.Hours() / 24 / s.perDays
	s.ends, s.disc = cfg.discountSteps(s.perDays)
	s.sMax = s.n / s.bg.Alpha
	s.lnA = math.Log(s.bg.A)
	s.uLo = math.Log(s.bg.Alpha)
	s.uHi = math.Log(s.bg.Alpha + tableYears*DaysPerYear/s.perDays)
	// Fail early, not per customer, if the horizon is beyond what the series can sum.
	if _, err := s.bg.expectedIfAlive(0, s.sMax); err != nil {
		s.useHeuristic(fmt.Sprintf("horizon of %.0f periods too long for α = %.3g", s.n, s.bg.Alpha))
	}
	return s, nil
}

// Validate reports whether u is Day or Week, as an error.
func (u Unit) Validate() error {
	if !u.Valid() {
		return fmt.Errorf("clv: invalid unit %v", u)
	}
	return nil
}

func (s *Scorer) useHeuristic(why string) {
	s.heuristic, s.note = true, why
	s.unit, s.perDays = Day, 1
}

// Heuristic reports whether the scorer uses the cold-start heuristics, and why.
func (s *Scorer) Heuristic() (bool, string) { return s.heuristic, s.note }

// Unit is the period of the summaries the scorer expects (Day for heuristic scorers).
func (s *Scorer) Unit() Unit { return s.unit }

// entry returns the per-x tables, building them on first use.
func (s *Scorer) entry(x float64) *xEntry {
	small := x >= 0 && x < smallX && x == math.Trunc(x)
	if small {
		if e := s.small[int(x)].Load(); e != nil {
			return e
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if small {
		if e := s.small[int(x)].Load(); e != nil {
			return e
		}
		e := s.buildEntry(x)
		s.small[int(x)].Store(e)
		return e
	}
	if e, ok := s.big[x]; ok {
		return e
	}
	e := s.buildEntry(x)
	if s.big == nil {
		s.big = map[float64]*xEntry{}
	}
	if len(s.big) < maxBig {
		s.big[x] = e
	}
	return e
}

func (s *Scorer) buildEntry(x float64) *xEntry {
	e := &xEntry{x: x, lnB1: math.Log(s.bg.B + x - 1), sNext: math.Inf(1)}
	var err error
	e.g, err = fitCheb(func(w float64) (float64, error) {
		return s.bg.expectedIfAlive(x, math.Expm1(w))
	}, 0, math.Log1p(s.sMax), chebTol, 512)
	if err != nil {
		e.err = err
		return e
	}
	e.det, err = fitCheb(func(u float64) (float64, error) {
		beta := math.Exp(u)
		return beta * s.detFromCheb(e, beta), nil
	}, s.uLo, s.uHi, chebTol, 512)
	if err != nil {
		e.err = err
		return e
	}
	// Time to one expected purchase given alive, as a multiple of β: G is increasing in s.
	wHi := math.Log1p(s.sMax)
	if e.g.eval(wHi) >= 1 {
		lo, hi := 0.0, wHi
		for range 100 {
			mid := 0.5 * (lo + hi)
			if e.g.eval(mid) < 1 {
				lo = mid
			} else {
				hi = mid
			}
		}
		e.sNext = math.Expm1(0.5 * (lo + hi))
	}
	return e
}

// detFromCheb is DET_x(β) = Σ_k disc_k (G(t_k/β) − G(t_{k−1}/β)) from the G table.
func (s *Scorer) detFromCheb(e *xEntry, beta float64) float64 {
	var sum, prev float64
	for k, t := range s.ends {
		g := e.g.eval(math.Log1p(t / beta))
		sum += s.disc[k] * (g - prev)
		prev = g
	}
	return sum
}

// detDirect is the same sum from the exact series, for customers outside the tables.
func (s *Scorer) detDirect(x, beta float64) (float64, error) {
	var sum, prev float64
	for k, t := range s.ends {
		g, err := s.bg.expectedIfAlive(x, t/beta)
		if err != nil {
			return 0, err
		}
		sum += s.disc[k] * (g - prev)
		prev = g
	}
	return sum, nil
}

// Prediction is the model's forecast for one customer summary.
type Prediction struct {
	PAlive float64 `json:"p_alive"`
	// ExpectedPurchases over the horizon; ExpectedAvgValue per future order.
	ExpectedPurchases float64 `json:"expected_purchases"`
	ExpectedAvgValue  float64 `json:"expected_avg_value"`
	// CLV is the discounted margin of the horizon's expected purchases.
	CLV float64 `json:"clv"`
	// NextOrderDays is the expected number of days from the summary's end to the next order
	// (given alive for the BG/NBD; from the usual gap for the heuristic); negative when none is
	// expected within the horizon or it is not meaningful (e.g. an overdue heuristic customer).
	NextOrderDays float64 `json:"next_order_days"`
	// ValueModel is "gammagamma", "customer_mean" or "heuristic".
	ValueModel string `json:"value_model"`
}

// Predict forecasts from a summary in the scorer's Unit. It never returns NaN or ±Inf. It returns
// ErrInvalidSummary (wrapped) for an inconsistent summary, and another error only for a
// model-based forecast that cannot be computed exactly (the caller should then fall back to the
// heuristics, as Score does).
func (s *Scorer) Predict(sum Summary) (Prediction, error) {
	if err := checkSummary(sum); err != nil {
		return Prediction{}, fmt.Errorf("%w: %v", ErrInvalidSummary, err)
	}
	if s.heuristic {
		return s.predictHeuristic(sum), nil
	}
	x, tx, T := sum.Frequency, sum.Recency, sum.T
	bg := s.bg
	beta := bg.Alpha + T
	lnBeta := math.Log(beta)
	e := s.entry(x)
	var p Prediction
	p.PAlive = 1
	if x > 0 {
		lodds := s.lnA - e.lnB1 + (bg.R+x)*(lnBeta-math.Log(bg.Alpha+tx))
		p.PAlive = 1 / (1 + math.Exp(lodds))
	}
	var gH, det float64
	if e.err == nil && lnBeta <= s.uHi {
		gH = e.g.eval(math.Log1p(s.n / beta))
		det = e.det.eval(lnBeta) / beta
	} else {
		var err error
		if gH, err = bg.expectedIfAlive(x, s.n/beta); err != nil {
			return p, err
		}
		if det, err = s.detDirect(x, beta); err != nil {
			return p, err
		}
	}
	p.ExpectedPurchases = p.PAlive * gH
	p.NextOrderDays = -1
	if t := e.sNext * beta; t <= s.n {
		p.NextOrderDays = t * s.perDays
	}
	if s.gg != nil {
		p.ExpectedAvgValue = s.gg.conditionalMean(x, sum.MonetaryValue)
		p.ValueModel = "gammagamma"
	} else {
		p.ExpectedAvgValue = customerMean(sum)
		p.ValueModel = "customer_mean"
	}
	p.CLV = p.PAlive * det * p.ExpectedAvgValue * s.cfg.Margin
	return p, nil
}

// customerMean is the customer's own mean order value (net, not below 0): Total/Transactions, or
// the mean repeat value for summaries without totals.
func customerMean(sum Summary) float64 {
	v := 0.0
	switch {
	case sum.Transactions > 0 && sum.Total != 0:
		v = sum.Total / float64(sum.Transactions)
	case sum.Frequency > 0:
		v = sum.MonetaryValue
	}
	return math.Max(v, 0)
}

// predictHeuristic is the cold-start forecast (summary in days):
//
//	P(alive) = exp(−days since last order / (GapMultiple × usual gap)), usual gap = the customer's
//	mean days between orders (t_x/x, at least MinGapDays), or DefaultGapDays with one order;
//	expected purchases = P(alive) × orders per year × horizon years, orders per year =
//	Transactions / max(age in years, MinYears);
//	CLV = Σ_steps P(alive) × orders per year × step years × mean order value × margin × discount.
//
// The next order is expected one usual gap after the last; none when that date has passed or
// with a single order.
func (s *Scorer) predictHeuristic(sum Summary) Prediction {
	h := s.cfg.Heuristic
	since, gap := s.heuristicGap(sum)
	var p Prediction
	p.PAlive = math.Exp(-since / (h.GapMultiple * gap))
	tx := float64(sum.Transactions)
	if tx == 0 {
		tx = sum.Frequency + 1
	}
	perYear := tx / math.Max(sum.T*s.perDays/DaysPerYear, h.MinYears)
	p.ExpectedPurchases = p.PAlive * perYear * s.horizon
	p.ExpectedAvgValue = customerMean(sum)
	p.ValueModel = "heuristic"
	prev := 0.0
	for k, end := range s.hEnds {
		p.CLV += p.PAlive * perYear * (end - prev) / DaysPerYear * s.hDisc[k]
		prev = end
	}
	p.CLV *= p.ExpectedAvgValue * s.cfg.Margin
	p.NextOrderDays = -1
	if sum.Frequency > 0 && gap-since > 0 && gap-since <= s.cfg.Horizon.Hours()/24 {
		p.NextOrderDays = gap - since
	}
	return p
}

// heuristicGap returns the days since the last order and the customer's usual gap in days.
func (s *Scorer) heuristicGap(sum Summary) (since, gap float64) {
	h := s.cfg.Heuristic
	since = (sum.T - sum.Recency) * s.perDays
	gap = h.DefaultGapDays
	if sum.Frequency > 0 {
		gap = math.Max(sum.Recency*s.perDays/sum.Frequency, h.MinGapDays)
	}
	return since, gap
}

// heuristicPAlive is the recency heuristic's P(alive) for a summary in the scorer's unit.
func (s *Scorer) heuristicPAlive(sum Summary) float64 {
	since, gap := s.heuristicGap(sum)
	return math.Exp(-since / (s.cfg.Heuristic.GapMultiple * gap))
}
