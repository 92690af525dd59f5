package clv

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Population is a tenant's distribution of customer scores, reduced to the cut-points that tiers
// and RFM segments need. It is built in one streaming pass over all customers
// (NewPopulationBuilder, Add, Build) and stored as JSON. Rebuild it after a refit or a change of
// TierConfig shares: the cut-points are in the units of the scores it was built from.
//
// The zero Population (a tenant with none yet) is valid: Tier then gives "new" or "bronze" and
// Segment uses fixed default cut-points (see Segment).
type Population struct {
	// Customers is the number of customers (with at least one purchase) that were added.
	Customers int `json:"customers"`
	// Sampled is true when the cut-points come from a uniform random sample of SampleSize
	// customers (tenants larger than that); the rank error is then about 0.1 percentage points.
	Sampled bool `json:"sampled"`
	// Model is the Score.Model of most added customers.
	Model string `json:"model"`
	// Tier cut-points on PredictedCLV: platinum needs ≥ Platinum, gold ≥ Gold, silver ≥ Silver.
	Platinum float64 `json:"platinum"`
	Gold     float64 `json:"gold"`
	Silver   float64 `json:"silver"`
	// RFM quintile cut-points (the 20th, 40th, 60th and 80th percentiles) of days since the last
	// order, number of transactions, and total net spend.
	RecencyDays [4]float64 `json:"recency_days"`
	Frequency   [4]float64 `json:"frequency"`
	Monetary    [4]float64 `json:"monetary"`
}

// SampleSize bounds a PopulationBuilder's memory (about 8 MB): past it, Add keeps a uniform
// reservoir sample of this many customers.
const SampleSize = 1 << 18

type popRow struct{ clv, rec, freq, mon float64 }

// PopulationBuilder collects scores for Build. Not safe for concurrent use.
type PopulationBuilder struct {
	n      int
	rows   []popRow
	rng    *rand.Rand
	models map[string]int
}

// NewPopulationBuilder starts an empty population. Its sampling is seeded, so the same scores
// in the same order always give the same Population.
func NewPopulationBuilder() *PopulationBuilder {
	return &PopulationBuilder{rng: rand.New(rand.NewPCG(1, 2)), models: map[string]int{}}
}

// Add records one customer's score. Customers without purchases are ignored.
func (b *PopulationBuilder) Add(s Score) {
	if s.Summary.Transactions == 0 {
		return
	}
	clv := s.PredictedCLV
	if math.IsNaN(clv) || math.IsInf(clv, 0) {
		clv = 0
	}
	r := popRow{
		clv:  clv,
		rec:  float64(daysBetween(s.Summary.Last, s.ScoredAt)),
		freq: float64(s.Summary.Transactions),
		mon:  finiteOr0(s.Summary.Total),
	}
	b.n++
	b.models[s.Model]++
	if len(b.rows) < SampleSize {
		b.rows = append(b.rows, r)
		return
	}
	// Reservoir sampling (Algorithm R): every customer ends up in the sample with equal probability.
	if j := b.rng.IntN(b.n); j < SampleSize {
		b.rows[j] = r
	}
}

// Build computes the cut-points, with the tier shares of cfg.Tiers.
func (b *PopulationBuilder) Build(cfg Config) Population {
	p := Population{Customers: b.n, Sampled: b.n > len(b.rows)}
	if len(b.rows) == 0 {
		return p
	}
	for m, c := range b.models {
		if c > b.models[p.Model] || (c == b.models[p.Model] && m < p.Model) {
			p.Model = m
		}
	}
	col := make([]float64, len(b.rows))
	get := func(f func(popRow) float64) []float64 {
		for i, r := range b.rows {
			col[i] = f(r)
		}
		slices.Sort(col)
		return col
	}
	t := cfg.Tiers
	v := get(func(r popRow) float64 { return r.clv })
	p.Platinum = topCut(v, t.PlatinumShare)
	p.Gold = topCut(v, t.PlatinumShare+t.GoldShare)
	p.Silver = topCut(v, t.PlatinumShare+t.GoldShare+t.SilverShare)
	p.RecencyDays = quintiles(get(func(r popRow) float64 { return r.rec }))
	p.Frequency = quintiles(get(func(r popRow) float64 { return r.freq }))
	p.Monetary = quintiles(get(func(r popRow) float64 { return r.mon }))
	return p
}

// topCut is the value that the top ⌈share·n⌉ of sorted v reach: v[n−⌈share·n⌉].
func topCut(v []float64, share float64) float64 {
	k := int(math.Ceil(share * float64(len(v))))
	k = min(max(k, 1), len(v))
	return v[len(v)-k]
}

// quintiles are the nearest-rank 20/40/60/80th percentiles of sorted v.
func quintiles(v []float64) (q [4]float64) {
	for i := range q {
		k := int(math.Ceil(float64(i+1) / 5 * float64(len(v))))
		q[i] = v[min(max(k, 1), len(v))-1]
	}
	return q
}

// Tier ranks a customer among the tenant's predicted CLVs:
//
//   - "new": no purchase yet, or exactly one purchase made within cfg.Tiers.NewCustomerDays of
//     now (too early to rank);
//   - "platinum", "gold", "silver": PredictedCLV > 0 and at least the tier's cut-point, i.e. among
//     the top 5%, the next 15%, the next 30% with the default shares (ties go up);
//   - "bronze": everyone else, including every ranked customer while the population is empty.
func (p Population) Tier(s Score, cfg Config, now time.Time) string {
	sum := s.Summary
	if sum.Transactions == 0 ||
		(sum.Transactions == 1 && daysBetween(sum.First, now) <= int64(cfg.Tiers.NewCustomerDays)) {
		return "new"
	}
	clv := s.PredictedCLV
	if p.Customers == 0 || !(clv > 0) {
		return "bronze"
	}
	switch {
	case clv >= p.Platinum:
		return "platinum"
	case clv >= p.Gold:
		return "gold"
	case clv >= p.Silver:
		return "silver"
	}
	return "bronze"
}

// Default RFM cut-points for a tenant without a population: recency in days and number of
// transactions. Spend has no currency-free default, so M is taken equal to F.
var (
	defaultRecencyCuts   = [4]float64{30, 90, 180, 365}
	defaultFrequencyCuts = [4]float64{1, 2, 3, 5}
)

// Segment places a customer in an RFM segment. Each of recency R (days since the last order, fewer
// is better), frequency F (transactions) and monetary M (total net spend) is scored 1–5 by the
// population's quintile cut-points (5 = best fifth; a value equal to a cut-point gets the lower
// score for F and M and the better score for R). With FM = round((F+M)/2), half up:
//
//	new                 exactly one purchase and R ≥ 4 (also: no purchase at all)
//	champions           R = 5, FM ≥ 4
//	loyal               R 3–4, FM ≥ 4
//	potential_loyalist  R ≥ 4, FM ≤ 3
//	at_risk             R = 3, FM = 3; or R ≤ 2, FM 3–4
//	cant_lose           R ≤ 2, FM = 5
//	hibernating         R = 3, FM ≤ 2; or R = 2, FM ≤ 2
//	lost                R = 1, FM ≤ 2
//
// This is the common R×F segment grid (as in Putler's and most RFM guides) collapsed to eight
// segments, with "about to sleep" folded into hibernating and "need attention" into at_risk.
func (p Population) Segment(s Score, now time.Time) string {
	sum := s.Summary
	if sum.Transactions == 0 {
		return "new"
	}
	recCuts, freqCuts, monCuts := p.RecencyDays, p.Frequency, p.Monetary
	if p.Customers == 0 {
		recCuts, freqCuts = defaultRecencyCuts, defaultFrequencyCuts
	}
	days := float64(daysBetween(sum.Last, now))
	R := 5 - above(days, recCuts)
	F := 1 + above(float64(sum.Transactions), freqCuts)
	M := F
	if p.Customers > 0 {
		M = 1 + above(finiteOr0(sum.Total), monCuts)
	}
	FM := (F + M + 1) / 2
	switch {
	case sum.Transactions == 1 && R >= 4:
		return "new"
	case R == 5 && FM >= 4:
		return "champions"
	case R >= 3 && FM >= 4:
		return "loyal"
	case R >= 4:
		return "potential_loyalist"
	case R == 3 && FM == 3:
		return "at_risk"
	case R == 3:
		return "hibernating"
	case FM == 5:
		return "cant_lose"
	case FM >= 3:
		return "at_risk"
	case R == 2:
		return "hibernating"
	}
	return "lost"
}

// above counts the cut-points strictly below v.
func above(v float64, cuts [4]float64) int {
	n := 0
	for _, c := range cuts {
		if v > c {
			n++
		}
	}
	return n
}

// daysBetween is the number of UTC calendar days from a's day to b's day.
func daysBetween(a, b time.Time) int64 { return dayNumber(b) - dayNumber(a) }

func finiteOr0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
