package clv

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mathext"
)

// The analytic gradients against central finite differences, at random points around and away
// from the optimum, with and without the penaliser.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	sums := summaries(readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv"))
	gd, _ := newGGData(sums)
	rng := rand.New(rand.NewPCG(7, 7))
	check := func(name string, obj objective, center []float64) {
		for trial := range 20 {
			theta := make([]float64, len(center))
			for i := range theta {
				theta[i] = center[i] + rng.NormFloat64()
			}
			grad := make([]float64, len(theta))
			obj(theta, grad)
			for i := range theta {
				const h = 1e-5
				tp := append([]float64(nil), theta...)
				tm := append([]float64(nil), theta...)
				tp[i] += h
				tm[i] -= h
				fd := (obj(tp, nil) - obj(tm, nil)) / (2 * h)
				if d := math.Abs(fd - grad[i]); d > 1e-6*math.Max(1, math.Abs(fd)) {
					t.Errorf("%s trial %d θ=%v: ∂/∂θ%d analytic %.10g, finite difference %.10g", name, trial, theta, i, grad[i], fd)
				}
			}
		}
	}
	for _, pen := range []float64{0, 0.05} {
		// Several workers too, so the split sum is checked.
		for _, workers := range []int{1, 3} {
			e := newBGEval(newBGData(sums, true), pen, workers)
			e.workers = workers
			check("bgnbd", e.objective, []float64{math.Log(0.24), math.Log(4.4), math.Log(0.8), math.Log(2.4)})
		}
		check("gammagamma", func(theta, grad []float64) float64 {
			m := GammaGamma{P: math.Exp(theta[0]), Q: math.Exp(theta[1]), V: math.Exp(theta[2])}
			var g [3]float64
			ll := gd.logLik(m, &g)
			nat := [3]float64{m.P, m.Q, m.V}
			f := -ll / gd.sumW
			for i, v := range nat {
				f += pen * v * v
				if grad != nil {
					grad[i] = v * (-g[i]/gd.sumW + 2*pen*v)
				}
			}
			return f
		}, []float64{math.Log(6), math.Log(3.7), math.Log(15)})
	}
}

// The merged likelihood equals the per-customer sum of LogLikelihood.
func TestMergedLikelihoodEqualsPerCustomerSum(t *testing.T) {
	sums := sampleSummaries(t)
	p := BGNBD{R: 0.3, Alpha: 5, A: 0.9, B: 2}
	var want float64
	for _, s := range sums {
		want += p.LogLikelihood(s.Frequency, s.Recency, s.T)
	}
	d := newBGData(sums, true)
	if d.rows() >= len(sums) {
		t.Fatalf("no merging: %d rows for %d customers", d.rows(), len(sums))
	}
	got := newBGEval(d, 0, 1).logLik(p, nil)
	if math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("merged LL %.12g, per-customer %.12g", got, want)
	}
	gg := GammaGamma{P: 6, Q: 3.5, V: 16}
	want = 0
	for _, s := range sums {
		if s.Frequency > 0 && s.MonetaryValue > 0 {
			want += gg.LogLikelihood(s.Frequency, s.MonetaryValue)
		}
	}
	gd, _ := newGGData(sums)
	if got := gd.logLik(gg, nil); math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("merged GG LL %.12g, per-customer %.12g", got, want)
	}
}

func TestCompressionGivesSameOptimum(t *testing.T) {
	sums := cdnowLike(20000, 3).summaries(Week)
	merged := newBGData(sums, true)
	plain := newBGData(sums, false)
	if merged.rows() >= plain.rows()/2 {
		t.Fatalf("merging left %d of %d rows", merged.rows(), plain.rows())
	}
	pm, rm, err := fitBGNBD(merged, 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pp, rp, err := fitBGNBD(plain, 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range [][2]float64{{pm.R, pp.R}, {pm.Alpha, pp.Alpha}, {pm.A, pp.A}, {pm.B, pp.B}} {
		if math.Abs(v[0]-v[1]) > 1e-5*v[1] {
			t.Errorf("param %d: merged %.8g, unmerged %.8g", i, v[0], v[1])
		}
	}
	if math.Abs(rm.LogLik-rp.LogLik) > 1e-9*math.Abs(rp.LogLik) {
		t.Errorf("loglik merged %.10g, unmerged %.10g", rm.LogLik, rp.LogLik)
	}
}

func TestPenalizerShrinksParameters(t *testing.T) {
	sums := summaries(readSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv"))
	prev := math.Inf(1)
	var prevLL float64
	for i, pen := range []float64{0, 0.001, 0.01, 0.1} {
		m, _, err := Fit(sums, Week, FitOptions{Penalizer: pen})
		if err != nil {
			t.Fatalf("penalizer %v: %v", pen, err)
		}
		b := m.BGNBD
		ss := b.R*b.R + b.Alpha*b.Alpha + b.A*b.A + b.B*b.B
		if !(ss < prev) {
			t.Errorf("penalizer %v: Σθ² = %.6g, not below %.6g of the weaker penaliser", pen, ss, prev)
		}
		// Shrinking costs likelihood: the unpenalised fit has the highest.
		if i > 0 && !(m.LogLik < prevLL) {
			t.Errorf("penalizer %v: loglik %.6g not below %.6g", pen, m.LogLik, prevLL)
		}
		prev, prevLL = ss, m.LogLik
	}
}

// paramSets are realistic parameter ranges (α in days) plus extremes: a at, near and far from 1,
// tiny and huge shapes.
func paramSets(rng *rand.Rand, n int) []BGNBD {
	u := func(lo, hi float64) float64 {
		return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	}
	ps := []BGNBD{
		{R: 0.243, Alpha: 30.9, A: 0.793, B: 2.426},
		{R: 0.243, Alpha: 30.9, A: 1, B: 2.426},
		{R: 0.243, Alpha: 30.9, A: 1 + 1e-12, B: 2.426},
		{R: 0.01, Alpha: 0.5, A: 0.01, B: 0.01},
		{R: 50, Alpha: 2000, A: 20, B: 500},
		{R: 5, Alpha: 1, A: 0.05, B: 100},
		{R: 0.05, Alpha: 500, A: 8, B: 0.2},
	}
	for range n {
		ps = append(ps, BGNBD{R: u(0.05, 5), Alpha: u(0.5, 500), A: u(0.05, 5), B: u(0.1, 20)})
	}
	return ps
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// No NaN/Inf, P(alive) in [0, 1], E[Y(t)] non-decreasing in t, for x up to 10,000 and T up to ten
// years in days.
func TestBGNBDNumericalProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	xs := []float64{0, 1, 2, 5, 30, 100, 1000, 10000}
	Ts := []float64{0, 1, 30, 365, 3652}
	ts := []float64{0, 0.5, 1, 7, 30, 90, 365, 1095, 3652}
	for _, p := range paramSets(rng, 40) {
		for _, x := range xs {
			for _, T := range Ts {
				if x > 0 && T == 0 {
					continue // repeat purchases need time
				}
				for _, tx := range []float64{0, T / 3, T} {
					if x > 0 && tx == 0 {
						continue
					}
					if x == 0 && tx > 0 {
						continue
					}
					if ll := p.LogLikelihood(x, tx, T); !finite(ll) {
						t.Errorf("%+v LL(%v,%v,%v) = %v", p, x, tx, T, ll)
					}
					pa := p.PAlive(x, tx, T)
					if !(pa >= 0 && pa <= 1) {
						t.Errorf("%+v P(alive|%v,%v,%v) = %v", p, x, tx, T, pa)
					}
					prev := 0.0
					for _, h := range ts {
						e, err := p.ConditionalExpectedPurchases(h, x, tx, T)
						if err != nil {
							t.Fatalf("%+v E[Y(%v)|%v,%v,%v]: %v", p, h, x, tx, T, err)
						}
						if !finite(e) || e < 0 || e < prev*(1-1e-12) {
							t.Errorf("%+v E[Y(%v)|%v,%v,%v] = %v after %v", p, h, x, tx, T, e, prev)
						}
						prev = e
					}
				}
			}
		}
	}
}

// E[Y(t) | alive] three independent ways: our transformed series; FHL's original form through
// gonum's 2F1 (where that is reliable: small x); and the model's definition summed directly,
// E = Σ_n P(N(t) = n) Σ_{j≤n} E[(1−p)^{j−1}], N the NBD count of purchase opportunities, which
// has only positive terms and no hypergeometric function at all (so it also covers x = 10,000).
func TestExpectedIfAliveIndependentChecks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for _, p := range paramSets(rng, 15) {
		for _, x := range []float64{0, 1, 3, 20, 10000} {
			for _, s := range []float64{0.01, 0.3, 1, 4} {
				got, err := p.expectedIfAlive(x, s)
				if err != nil {
					t.Fatal(err)
				}
				want := directExpectedIfAlive(p, x, s)
				if math.Abs(got-want) > 1e-8*math.Max(want, 1e-3) {
					t.Errorf("%+v x=%v s=%v: series %.12g, direct sum %.12g", p, x, s, got, want)
				}
				if x <= 3 && p.A > 1.05 && s <= 1 {
					// FHL eq. 10's bracket via gonum's Hypergeo: only well-conditioned for a away from 1.
					z := s / (1 + s)
					c := p.A + p.B + x - 1
					h := mathext.Hypergeo(p.R+x, p.B+x, c, z)
					fhl := c / (p.A - 1) * (1 - math.Pow(1-z, p.R+x)*h)
					if math.Abs(got-fhl) > 1e-7*math.Max(fhl, 1e-3) {
						t.Errorf("%+v x=%v s=%v: series %.12g, FHL via Hypergeo %.12g", p, x, s, got, fhl)
					}
				}
			}
		}
	}
}

// directExpectedIfAlive sums Σ_n π_n R_n with π_n = NBD(r+x, z) pmf in log space and
// R_n = Σ_{j=1..n} Π_{i<j−1} (b+x+i)/(a+b+x+i).
func directExpectedIfAlive(p BGNBD, x, s float64) float64 {
	rp, bp := p.R+x, p.B+x
	z := s / (1 + s)
	lz, l1z := math.Log(z), -math.Log1p(s)
	lgr, _ := math.Lgamma(rp)
	var sum, R, rho float64
	rho = 1
	mean := rp * s
	for n := 1.0; ; n++ {
		R += rho
		rho *= (bp + n - 1) / (p.A + bp + n - 1)
		lg, _ := math.Lgamma(rp + n)
		lf, _ := math.Lgamma(n + 1)
		pi := math.Exp(lg - lgr - lf + rp*l1z + n*lz)
		sum += pi * R
		if n > mean+10 && pi*R < 1e-18*sum {
			return sum
		}
	}
}

// P(X(t)=n) is a distribution whose mean is E[X(t)].
func TestProbPurchasesIsADistribution(t *testing.T) {
	for _, p := range []BGNBD{pubBG, {R: 2, Alpha: 3, A: 1.5, B: 4}, {R: 0.5, Alpha: 10, A: 0.3, B: 0.8}} {
		for _, tt := range []float64{1, 10, 39, 100} {
			var tot, mean float64
			for n := 0; n < 5000; n++ {
				pn := p.ProbPurchases(n, tt)
				if !(pn >= 0 && pn <= 1) {
					t.Fatalf("%+v P(X(%v)=%d) = %v", p, tt, n, pn)
				}
				tot += pn
				mean += float64(n) * pn
			}
			ex, _ := p.ExpectedPurchases(tt)
			if math.Abs(tot-1) > 1e-9 {
				t.Errorf("%+v t=%v: Σ P = %.12g", p, tt, tot)
			}
			// Heavy tails (a < 1) leave some mean beyond n = 5000; allow for it.
			if math.Abs(mean-ex) > 1e-6*ex+p.tailAllowance() {
				t.Errorf("%+v t=%v: Σ n·P = %.10g, E[X(t)] = %.10g", p, tt, mean, ex)
			}
		}
	}
}

func (p BGNBD) tailAllowance() float64 {
	if p.A < 1 {
		return 1e-3
	}
	return 0
}

func TestExtremeHorizonIsAnErrorNotGarbage(t *testing.T) {
	p := BGNBD{R: 0.2, Alpha: 1e-4, A: 0.5, B: 1}
	_, err := p.ConditionalExpectedPurchases(1e4, 0, 0, 0) // t/(α+T) = 10^8
	if !errors.Is(err, errSeries) {
		t.Fatalf("err = %v, want errSeries", err)
	}
}
