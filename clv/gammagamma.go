package clv

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mathext"
)

// ErrMeanUndefined says a Gamma-Gamma model has q ≤ 1: the mean of its spend distribution, and so
// every expected order value, is infinite. Such a model must not be used for CLV.
var ErrMeanUndefined = errors.New("clv: gamma-gamma q <= 1: expected order value undefined")

// GammaGamma holds the Gamma-Gamma spend model: transaction values z ~ Gamma(P, ν) with the
// customer's ν ~ Gamma(Q, V).
type GammaGamma struct {
	P float64 `json:"p"`
	Q float64 `json:"q"`
	V float64 `json:"v"`
}

// Validate reports non-finite or non-positive parameters, and ErrMeanUndefined when Q ≤ 1.
func (g GammaGamma) Validate() error {
	for _, v := range [...]float64{g.P, g.Q, g.V} {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("clv: invalid gamma-gamma parameters %+v", g)
		}
	}
	if g.Q <= 1 {
		return ErrMeanUndefined
	}
	return nil
}

// ConditionalMean is E[M | x, zbar] = p(v + x·zbar)/(px + q − 1), the expected value of a future
// order of a customer with x repeat orders of mean value zbar: a weighted average of the
// population mean pv/(q−1) and the customer's zbar. A non-positive zbar (refunds) is outside the
// model and counts as 0. It returns ErrMeanUndefined when q ≤ 1.
func (g GammaGamma) ConditionalMean(x, zbar float64) (float64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	return g.conditionalMean(x, zbar), nil
}

func (g GammaGamma) conditionalMean(x, zbar float64) float64 {
	if !(zbar > 0) || x <= 0 {
		zbar = 0
	}
	if x < 0 {
		x = 0
	}
	return g.P * (g.V + x*zbar) / (g.P*x + g.Q - 1)
}

// LogLikelihood is the log density of a customer's mean repeat value zbar given x > 0:
// Γ(px+q)/(Γ(px)Γ(q)) · v^q zbar^(px−1) x^(px) / (v + x·zbar)^(px+q).
func (g GammaGamma) LogLikelihood(x, zbar float64) float64 {
	p, q, v := g.P, g.Q, g.V
	a, _ := math.Lgamma(p*x + q)
	b, _ := math.Lgamma(p * x)
	c, _ := math.Lgamma(q)
	return a - b - c + q*math.Log(v) + (p*x-1)*math.Log(zbar) + p*x*math.Log(x) - (p*x+q)*math.Log(x*zbar+v)
}

// ggData is the Gamma-Gamma likelihood's data: identical (x, zbar) merged, grouped by x, with the
// parameter-free sums precomputed so an evaluation costs one log and one division per row.
type ggData struct {
	xs    []float64 // distinct x
	xw    []float64 // weight per x
	sLnZ  []float64 // Σ w ln zbar per x
	start []int     // rows of x group i are [start[i], start[i+1])
	xz    []float64 // x·zbar per row
	w     []float64
	rg    []int32 // row → x group
	sumW  float64
	// workers splits the per-row sums of an evaluation over goroutines (large data only).
	workers int
}

func newGGData(ss []Summary) (*ggData, int) {
	type row struct{ x, z, w float64 }
	rows := make([]row, 0, len(ss)/2)
	excluded := 0
	for _, s := range ss {
		if s.Frequency <= 0 {
			continue
		}
		if !(s.MonetaryValue > 0) || math.IsInf(s.MonetaryValue, 0) {
			excluded++ // outside the model's support (zero-value or refunded orders)
			continue
		}
		rows = append(rows, row{s.Frequency, s.MonetaryValue, 1})
	}
	// Sort, then merge equal neighbours: mean values are mostly distinct, so a hash map would
	// cost more than it saves; sorting by x is needed for the grouping anyway.
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(a.x, b.x), cmp.Compare(a.z, b.z)) })
	merged := rows[:0]
	for _, r := range rows {
		if n := len(merged); n > 0 && merged[n-1].x == r.x && merged[n-1].z == r.z {
			merged[n-1].w += r.w
			continue
		}
		merged = append(merged, r)
	}
	rows = merged
	d := &ggData{xz: make([]float64, len(rows)), w: make([]float64, len(rows)), rg: make([]int32, len(rows))}
	for i, r := range rows {
		if len(d.xs) == 0 || d.xs[len(d.xs)-1] != r.x {
			d.xs = append(d.xs, r.x)
			d.xw = append(d.xw, 0)
			d.sLnZ = append(d.sLnZ, 0)
			d.start = append(d.start, i)
		}
		g := len(d.xs) - 1
		d.xw[g] += r.w
		d.sLnZ[g] += r.w * math.Log(r.z)
		d.xz[i] = r.x * r.z
		d.w[i] = r.w
		d.rg[i] = int32(g)
		d.sumW += r.w
	}
	d.start = append(d.start, len(rows))
	return d, excluded
}

// logLik returns Σ w·LL and its gradient in (p, q, v).
func (d *ggData) logLik(m GammaGamma, grad *[3]float64) float64 {
	p, q, v := m.P, m.Q, m.V
	// Per group: Σ w ln(x·zbar+v) and Σ w/(x·zbar+v), the only per-row work.
	s1, s2 := d.rowSums(v)
	lgq, _ := math.Lgamma(q)
	psq := mathext.Digamma(q)
	lnv := math.Log(v)
	var ll float64
	var g [3]float64
	for i, x := range d.xs {
		W := d.xw[i]
		px := p * x
		lga, _ := math.Lgamma(px + q)
		lgb, _ := math.Lgamma(px)
		lnx := math.Log(x)
		ll += W*(lga-lgb-lgq+q*lnv+px*lnx) + (px-1)*d.sLnZ[i] - (px+q)*s1[i]
		psa := mathext.Digamma(px + q)
		g[0] += x * (W*(psa-mathext.Digamma(px)+lnx) + d.sLnZ[i] - s1[i])
		g[1] += W*(psa-psq+lnv) - s1[i]
		g[2] += W*q/v - (px+q)*s2[i]
	}
	if grad != nil {
		*grad = g
	}
	return ll
}

// rowSums computes the per-group sums over rows, split over d.workers goroutines.
func (d *ggData) rowSums(v float64) (s1, s2 []float64) {
	n, G := len(d.w), len(d.xs)
	part := func(lo, hi int, a, b []float64) {
		for j := lo; j < hi; j++ {
			u := d.xz[j] + v
			g := d.rg[j]
			a[g] += d.w[j] * math.Log(u)
			b[g] += d.w[j] / u
		}
	}
	workers := max(1, min(d.workers, n/16384))
	if workers == 1 {
		s1, s2 = make([]float64, G), make([]float64, G)
		part(0, n, s1, s2)
		return s1, s2
	}
	parts := make([][2][]float64, workers)
	var wg sync.WaitGroup
	for k := range workers {
		parts[k] = [2][]float64{make([]float64, G), make([]float64, G)}
		wg.Go(func() { part(n*k/workers, n*(k+1)/workers, parts[k][0], parts[k][1]) })
	}
	wg.Wait()
	s1, s2 = parts[0][0], parts[0][1]
	for _, pt := range parts[1:] {
		for g := range G {
			s1[g] += pt[0][g]
			s2[g] += pt[1][g]
		}
	}
	return s1, s2
}

// fitGammaGamma fits the spend model by maximum likelihood over log-parameters, with an optional
// L2 penaliser on (p, q, v) as in `lifetimes`.
func fitGammaGamma(d *ggData, pen float64, maxIter int) (GammaGamma, OptimReport, error) {
	obj := func(theta, grad []float64) float64 {
		for _, t := range theta {
			if math.Abs(t) > 60 {
				return math.Inf(1)
			}
		}
		m := GammaGamma{P: math.Exp(theta[0]), Q: math.Exp(theta[1]), V: math.Exp(theta[2])}
		var g [3]float64
		ll := d.logLik(m, &g)
		nat := [3]float64{m.P, m.Q, m.V}
		f := -ll / d.sumW
		for i, v := range nat {
			f += pen * v * v
			if grad != nil {
				grad[i] = v * (-g[i]/d.sumW + 2*pen*v)
			}
		}
		return f
	}
	// Start at p = 1, q = 2, where the population mean order value pv/(q−1) = v; take v as the
	// observed mean, so the start scales with the currency.
	var sz float64
	for i, x := range d.xs {
		for j := d.start[i]; j < d.start[i+1]; j++ {
			sz += d.w[j] * d.xz[j] / x
		}
	}
	v0 := sz / d.sumW
	theta, rep, err := minimize(obj, []float64{0, math.Log(2), math.Log(v0)}, maxIter)
	if err != nil {
		return GammaGamma{}, rep, err
	}
	m := GammaGamma{P: math.Exp(theta[0]), Q: math.Exp(theta[1]), V: math.Exp(theta[2])}
	rep.LogLik = d.logLik(m, nil)
	return m, rep, nil
}
