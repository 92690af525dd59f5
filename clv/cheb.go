package clv

import (
	"errors"
	"math"
)

// cheb is a Chebyshev series on [lo, hi]: Σ c_k T_k(y), y = (2u − lo − hi)/(hi − lo).
type cheb struct {
	lo, hi float64
	c      []float64
}

// eval sums the series by Clenshaw's recurrence; u outside [lo, hi] is clamped (callers check the
// domain themselves and only clamp rounding-level excursions).
func (ch *cheb) eval(u float64) float64 {
	y := (2*u - ch.lo - ch.hi) / (ch.hi - ch.lo)
	y = math.Max(-1, math.Min(1, y))
	y2 := 2 * y
	var b1, b2 float64
	for k := len(ch.c) - 1; k >= 1; k-- {
		b1, b2 = y2*b1-b2+ch.c[k], b1
	}
	return y*b1 - b2 + ch.c[0]
}

var errChebDiverged = errors.New("clv: chebyshev approximation did not converge")

// fitCheb interpolates f at Chebyshev–Lobatto points on [lo, hi], doubling the degree from 16 up
// to maxN until the last coefficients are below tol relative to max|f| (values from a coarser
// grid are reused: its points are every other point of the finer one). Trailing coefficients
// that together weigh less than tol/4 are dropped, so evaluation costs only what the function's
// smoothness needs. A non-finite f value or no convergence is an error, never a wrong table.
func fitCheb(f func(u float64) (float64, error), lo, hi, tol float64, maxN int) (cheb, error) {
	var vals []float64 // vals[j] = f at cos(πj/N), for the current N
	N := 16
	for {
		nv := make([]float64, N+1)
		for j := 0; j <= N; j++ {
			if vals != nil && j%2 == 0 {
				nv[j] = vals[j/2]
				continue
			}
			y := math.Cos(math.Pi * float64(j) / float64(N))
			v, err := f(0.5*(lo+hi) + 0.5*(hi-lo)*y)
			if err != nil {
				return cheb{}, err
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return cheb{}, errChebDiverged
			}
			nv[j] = v
		}
		vals = nv
		scale := 0.0
		for _, v := range vals {
			scale = math.Max(scale, math.Abs(v))
		}
		cosTab := make([]float64, 2*N) // cos(πm/N); cos(πjk/N) = cosTab[jk mod 2N]
		for m := range cosTab {
			cosTab[m] = math.Cos(math.Pi * float64(m) / float64(N))
		}
		c := make([]float64, N+1)
		for k := 0; k <= N; k++ {
			s := 0.0
			for j := 0; j <= N; j++ {
				t := vals[j] * cosTab[j*k%(2*N)]
				if j == 0 || j == N {
					t /= 2
				}
				s += t
			}
			c[k] = 2 * s / float64(N)
		}
		c[0] /= 2
		c[N] /= 2
		if scale == 0 {
			return cheb{lo: lo, hi: hi, c: []float64{0}}, nil
		}
		tail := 0.0
		for k := N - 3; k <= N; k++ {
			tail = math.Max(tail, math.Abs(c[k]))
		}
		if tail <= tol*scale {
			// Drop trailing terms while their summed magnitude stays under tol/4.
			cut, acc := N, 0.0
			for cut > 0 && acc+math.Abs(c[cut]) <= tol*scale/4 {
				acc += math.Abs(c[cut])
				cut--
			}
			return cheb{lo: lo, hi: hi, c: c[:cut+1]}, nil
		}
		if N >= maxN {
			return cheb{}, errChebDiverged
		}
		N *= 2
	}
}
