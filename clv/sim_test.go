package clv

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// simConfig describes a synthetic cohort drawn from the BG/NBD process (rates per day) with
// Gamma-Gamma spend, observed at day granularity like real orders.
type simConfig struct {
	n          int
	bg         BGNBD // Alpha in days
	gg         GammaGamma
	cohortDays int // first purchases uniform over days [0, cohortDays)
	endDay     int // calibration end, days from the cohort start
	seed       uint64
}

// cdnowLike mimics the CDNOW cohort: first purchases over 12 weeks, 39 weeks of calibration, the
// published parameters (α converted to days).
func cdnowLike(n int, seed uint64) simConfig {
	return simConfig{n: n, bg: BGNBD{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426},
		gg: GammaGamma{P: 6.25, Q: 3.74, V: 15.44}, cohortDays: 84, endDay: 273, seed: seed}
}

var simEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// simulate calls emit for each customer's purchase sequence: day offsets from simEpoch (first
// purchase first) and amounts. Purchases after endDay are not emitted.
func (c simConfig) simulate(emit func(days []float64, amounts []float64)) {
	src := rand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15)
	rng := rand.New(src)
	lam := distuv.Gamma{Alpha: c.bg.R, Beta: c.bg.Alpha, Src: src}
	ga := distuv.Gamma{Alpha: c.bg.A, Beta: 1, Src: src}
	gb := distuv.Gamma{Alpha: c.bg.B, Beta: 1, Src: src}
	nu := distuv.Gamma{Alpha: c.gg.Q, Beta: c.gg.V, Src: src}
	var days, amts []float64
	for range c.n {
		l := lam.Rand()
		x1 := ga.Rand()
		p := x1 / (x1 + gb.Rand())
		spend := distuv.Gamma{Alpha: c.gg.P, Beta: nu.Rand(), Src: src}
		first := float64(rng.IntN(c.cohortDays))
		days = append(days[:0], first)
		amts = append(amts[:0], spend.Rand())
		t := first
		for {
			t += rng.ExpFloat64() / l
			if t >= float64(c.endDay+1) {
				break
			}
			days = append(days, t)
			amts = append(amts, spend.Rand())
			if rng.Float64() < p {
				break // dropped out after this purchase
			}
		}
		emit(days, amts)
	}
}

// purchases returns each customer's purchases as times.
func (c simConfig) purchases() [][]Purchase {
	var out [][]Purchase
	c.simulate(func(days, amts []float64) {
		ps := make([]Purchase, len(days))
		for i, d := range days {
			ps[i] = Purchase{Time: simEpoch.Add(time.Duration(d * float64(24*time.Hour))), Amount: amts[i]}
		}
		out = append(out, ps)
	})
	return out
}

// end is the calibration end as a time.
func (c simConfig) end() time.Time { return simEpoch.AddDate(0, 0, c.endDay) }

// summaries summarises every customer at endDay directly (same result as Summarize, without
// building Purchase slices, so a million customers take well under a second).
func (c simConfig) summaries(unit Unit) []Summary {
	out := make([]Summary, 0, c.n)
	per := unit.Days()
	c.simulate(func(days, amts []float64) {
		first := math.Floor(days[0])
		var s Summary
		s.Transactions = 1
		cur, total, repeat, dayTotal := first, 0.0, 0.0, 0.0
		for i, d := range days {
			day := math.Floor(d)
			total += amts[i]
			if day != cur {
				if cur != first {
					repeat += dayTotal
				}
				s.Transactions++
				cur, dayTotal = day, 0
			}
			dayTotal += amts[i]
		}
		if cur != first {
			repeat += dayTotal
		}
		x := s.Transactions - 1
		s.Frequency = float64(x)
		s.Recency = (cur - first) / per
		s.T = (float64(c.endDay) - first) / per
		if x > 0 {
			s.MonetaryValue = repeat / float64(x)
		}
		s.Total = total
		out = append(out, s)
	})
	return out
}

var simCache struct {
	sync.Mutex
	m map[[2]int][]Summary
}

// cachedSummaries keeps benchmark data across the benchmark's repeated invocations.
func cachedSummaries(n int, unit Unit) []Summary {
	simCache.Lock()
	defer simCache.Unlock()
	k := [2]int{n, int(unit)}
	if s, ok := simCache.m[k]; ok {
		return s
	}
	if simCache.m == nil {
		simCache.m = map[[2]int][]Summary{}
	}
	s := cdnowLike(n, 42).summaries(unit)
	simCache.m[k] = s
	return s
}
