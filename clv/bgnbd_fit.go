package clv

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mathext"
)

// bgData is the BG/NBD likelihood's data with identical (x, t_x, T) rows merged into weights.
// Rows are sorted by x; the x-only terms (log-gammas, digammas) are evaluated once per distinct x
// and the logs of α+T and α+t_x once per distinct T and t_x, so the per-row work of an evaluation
// is one exp and one log1p. That, more than the merging, is what makes 10^6 customers cheap.
type bgData struct {
	xs   []float64 // distinct x, ascending
	xw   []float64 // total weight of each distinct x
	rx   []int32   // row → index into xs
	rT   []int32   // row → index into Ts
	rtx  []int32   // row → index into txs
	w    []float64 // row weights
	Ts   []float64 // distinct T
	txs  []float64 // distinct t_x
	sumW float64
}

type bgKey struct{ x, tx, T float64 }

// newBGData builds the likelihood data. With compress false every customer stays its own row
// (used by tests to show that merging does not move the optimum).
func newBGData(ss []Summary, compress bool) *bgData {
	type row struct {
		k bgKey
		w float64
	}
	var rows []row
	if compress {
		idx := make(map[bgKey]int32, min(len(ss), 1<<16))
		for _, s := range ss {
			k := bgKey{s.Frequency, s.Recency, s.T}
			if k.x == 0 {
				k.tx = 0 // t_x does not enter the likelihood when x = 0
			}
			if i, ok := idx[k]; ok {
				rows[i].w++
				continue
			}
			idx[k] = int32(len(rows))
			rows = append(rows, row{k, 1})
		}
	} else {
		rows = make([]row, len(ss))
		for i, s := range ss {
			rows[i] = row{bgKey{s.Frequency, s.Recency, s.T}, 1}
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.k.x, b.k.x), cmp.Compare(a.k.T, b.k.T), cmp.Compare(a.k.tx, b.k.tx))
	})
	d := &bgData{
		rx: make([]int32, len(rows)), rT: make([]int32, len(rows)), rtx: make([]int32, len(rows)),
		w: make([]float64, len(rows)),
	}
	tIdx := map[float64]int32{}
	txIdx := map[float64]int32{}
	lookup := func(m map[float64]int32, vals *[]float64, v float64) int32 {
		if i, ok := m[v]; ok {
			return i
		}
		i := int32(len(*vals))
		m[v] = i
		*vals = append(*vals, v)
		return i
	}
	for i, r := range rows {
		if len(d.xs) == 0 || d.xs[len(d.xs)-1] != r.k.x {
			d.xs = append(d.xs, r.k.x)
			d.xw = append(d.xw, 0)
		}
		g := len(d.xs) - 1
		d.xw[g] += r.w
		d.rx[i] = int32(g)
		d.rT[i] = lookup(tIdx, &d.Ts, r.k.T)
		d.rtx[i] = lookup(txIdx, &d.txs, r.k.tx)
		d.w[i] = r.w
		d.sumW += r.w
	}
	return d
}

// rows is the number of (merged) likelihood rows.
func (d *bgData) rows() int { return len(d.w) }

// bgEval holds scratch space for repeated evaluations on one data set.
type bgEval struct {
	d       *bgData
	pen     float64
	workers int
	// per distinct value, refreshed per evaluation
	lnT, invT, lnTx, invTx []float64
	rpx, l4c, ib1          []float64
}

func newBGEval(d *bgData, pen float64, workers int) *bgEval {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Goroutines only pay off once a pass costs well over their start-up (~µs).
	if n := d.rows() / 16384; n < workers {
		workers = max(n, 1)
	}
	return &bgEval{
		d: d, pen: pen, workers: workers,
		lnT: make([]float64, len(d.Ts)), invT: make([]float64, len(d.Ts)),
		lnTx: make([]float64, len(d.txs)), invTx: make([]float64, len(d.txs)),
		rpx: make([]float64, len(d.xs)), l4c: make([]float64, len(d.xs)), ib1: make([]float64, len(d.xs)),
	}
}

// logLik returns Σ w·LL and its gradient with respect to (r, α, a, b) (natural scale).
func (e *bgEval) logLik(p BGNBD, grad *[4]float64) float64 {
	d := e.d
	r, al, a, b := p.R, p.Alpha, p.A, p.B
	for i, t := range d.Ts {
		e.lnT[i] = math.Log(al + t)
		e.invT[i] = 1 / (al + t)
	}
	for i, t := range d.txs {
		e.lnTx[i] = math.Log(al + t)
		e.invTx[i] = 1 / (al + t)
	}
	// x-only part: Σ_x W_x [lnΓ(r+x) − lnΓ(r) + r ln α + ln B(a, b+x) − ln B(a, b)]
	lgr, _ := math.Lgamma(r)
	lgab, _ := math.Lgamma(a + b)
	lgb, _ := math.Lgamma(b)
	psr, psab, psb := mathext.Digamma(r), mathext.Digamma(a+b), mathext.Digamma(b)
	lna, lnal := math.Log(a), math.Log(al)
	var ll float64
	var g [4]float64
	for i, x := range d.xs {
		W := d.xw[i]
		lgrx, _ := math.Lgamma(r + x)
		lgbx, _ := math.Lgamma(b + x)
		lgabx, _ := math.Lgamma(a + b + x)
		ll += W * (lgrx - lgr + r*lnal + lgab + lgbx - lgb - lgabx)
		psabx := mathext.Digamma(a + b + x)
		g[0] += W * (mathext.Digamma(r+x) - psr + lnal)
		g[1] += W * r / al
		g[2] += W * (psab - psabx)
		g[3] += W * (psab + mathext.Digamma(b+x) - psb - psabx)
		e.rpx[i] = r + x
		if x > 0 {
			e.l4c[i] = lna - math.Log(b+x-1)
			e.ib1[i] = 1 / (b + x - 1)
		}
	}
	// Row part: Σ w ln(A3 + A4), split over workers.
	n := d.rows()
	parts := make([][5]float64, e.workers)
	if e.workers == 1 {
		parts[0] = e.rowsPart(0, n)
	} else {
		var wg sync.WaitGroup
		for k := range e.workers {
			lo, hi := n*k/e.workers, n*(k+1)/e.workers
			wg.Go(func() { parts[k] = e.rowsPart(lo, hi) })
		}
		wg.Wait()
	}
	var sw4, sw4b float64
	for _, pt := range parts {
		ll += pt[0]
		g[0] += pt[1]
		g[1] += pt[2]
		sw4 += pt[3]
		sw4b += pt[4]
	}
	g[2] += sw4 / a
	g[3] -= sw4b
	if grad != nil {
		*grad = g
	}
	return ll
}

// rowsPart sums rows [lo, hi): ll, ∂/∂r, ∂/∂α, Σ w·w4 (for ∂/∂a) and Σ w·w4/(b+x−1) (for ∂/∂b),
// where w3, w4 are the shares of A3 and A4 in A3+A4.
func (e *bgEval) rowsPart(lo, hi int) (out [5]float64) {
	d := e.d
	var ll, gr, gal, s4, s4b float64
	for i := lo; i < hi; i++ {
		gi := d.rx[i]
		wi := d.w[i]
		rp := e.rpx[gi]
		jT := d.rT[i]
		lT := e.lnT[jT]
		l3 := -rp * lT
		if d.xs[gi] == 0 {
			ll += wi * l3
			gr -= wi * lT
			gal -= wi * rp * e.invT[jT]
			continue
		}
		jx := d.rtx[i]
		lx := e.lnTx[jx]
		l4 := e.l4c[gi] - rp*lx
		// log-sum-exp with q = e^(smaller−larger) ∈ (0, 1]. math.Log(1+q) instead of Log1p: for
		// tiny q it is off by at most ~1e-16 absolute, nothing in a sum of log-likelihoods, and
		// Go's Log1p is pure Go and several times slower than the assembly Log. The gradient
		// weights use q itself, so they keep full precision.
		var L, w4 float64
		if l3 >= l4 {
			q := math.Exp(l4 - l3)
			L = l3 + math.Log(1+q)
			w4 = q / (1 + q)
		} else {
			q := math.Exp(l3 - l4)
			L = l4 + math.Log(1+q)
			w4 = 1 / (1 + q)
		}
		w3 := 1 - w4
		ll += wi * L
		gr -= wi * (w3*lT + w4*lx)
		gal -= wi * rp * (w3*e.invT[jT] + w4*e.invTx[jx])
		s4 += wi * w4
		s4b += wi * w4 * e.ib1[gi]
	}
	return [5]float64{ll, gr, gal, s4, s4b}
}

// objective is the mean penalised negative log-likelihood over θ = ln(r, α, a, b):
// −Σ w·LL / Σ w + penalizer·(r²+α²+a²+b²), the penaliser on the natural scale as in `lifetimes`.
func (e *bgEval) objective(theta, grad []float64) float64 {
	for _, t := range theta {
		if math.Abs(t) > 60 {
			return math.Inf(1) // exp would overflow or vanish: outside any sensible model
		}
	}
	p := BGNBD{R: math.Exp(theta[0]), Alpha: math.Exp(theta[1]), A: math.Exp(theta[2]), B: math.Exp(theta[3])}
	var g [4]float64
	ll := e.logLik(p, &g)
	nat := [4]float64{p.R, p.Alpha, p.A, p.B}
	f := -ll / e.d.sumW
	for i, v := range nat {
		f += e.pen * v * v
		if grad != nil {
			// chain rule through θ = ln(param): ∂f/∂θ = param·∂f/∂param
			grad[i] = v * (-g[i]/e.d.sumW + 2*e.pen*v)
		}
	}
	return f
}

// fitBGNBD fits the BG/NBD by maximum likelihood over log-parameters.
func fitBGNBD(d *bgData, pen float64, workers, maxIter int) (BGNBD, OptimReport, error) {
	e := newBGEval(d, pen, workers)
	// Start at r = a = b = 1 and the α that matches the mean purchase rate (E[λ] = r/α ≈ Σx/ΣT),
	// which scales with the time unit, so fits in days and in weeks follow the same path.
	var sx, sT float64
	for i := range d.w {
		sx += d.w[i] * d.xs[d.rx[i]]
		sT += d.w[i] * d.Ts[d.rT[i]]
	}
	alpha0 := 1.0
	if sx > 0 && sT > 0 {
		alpha0 = sT / sx
	} else if sT > 0 {
		alpha0 = sT / d.sumW
	}
	theta, rep, err := minimize(e.objective, []float64{0, math.Log(alpha0), 0, 0}, maxIter)
	if err != nil {
		return BGNBD{}, rep, err
	}
	p := BGNBD{R: math.Exp(theta[0]), Alpha: math.Exp(theta[1]), A: math.Exp(theta[2]), B: math.Exp(theta[3])}
	rep.LogLik = e.logLik(p, nil)
	return p, rep, nil
}
