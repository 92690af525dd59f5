package clv

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// BGNBD holds the four BG/NBD parameters. Purchase rates λ ~ Gamma(R, Alpha) (Alpha in model
// periods) and drop-out probabilities p ~ Beta(A, B); after each repeat purchase a customer drops
// out with probability p.
type BGNBD struct {
	R     float64 `json:"r"`
	Alpha float64 `json:"alpha"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

// Validate reports whether all parameters are finite and positive.
func (m BGNBD) Validate() error {
	for _, v := range [...]float64{m.R, m.Alpha, m.A, m.B} {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("clv: invalid BG/NBD parameters %+v", m)
		}
	}
	return nil
}

// LogLikelihood is the log-likelihood of one customer's (x, t_x, T), FHL (2005) eq. 6, computed in
// log space: ln A1 + ln A2 + ln(A3 + [x>0]·A4), the last term as a log-sum-exp so that large x and
// long T neither overflow nor underflow.
func (m BGNBD) LogLikelihood(x, tx, T float64) float64 {
	r, al, a, b := m.R, m.Alpha, m.A, m.B
	lgrx, _ := math.Lgamma(r + x)
	lgr, _ := math.Lgamma(r)
	k := lgrx - lgr + r*math.Log(al) + mathext.Lbeta(a, b+x) - mathext.Lbeta(a, b)
	l3 := -(r + x) * math.Log(al+T)
	if x == 0 {
		return k + l3
	}
	l4 := math.Log(a) - math.Log(b+x-1) - (r+x)*math.Log(al+tx)
	return k + logAddExp(l3, l4)
}

// PAlive is the probability that a customer with (x, t_x, T) is still active at T (FHL 2005 eq. 11),
// evaluated as a logistic of the log odds so it stays in [0, 1] for any x and T.
func (m BGNBD) PAlive(x, tx, T float64) float64 {
	if x == 0 {
		// In the BG/NBD a customer can only drop out right after a repeat purchase.
		return 1
	}
	return 1 / (1 + math.Exp(m.logDeadOdds(x, tx, T)))
}

// logDeadOdds is ln[(a/(b+x-1))·((α+T)/(α+t_x))^(r+x)], the log odds of having dropped out.
func (m BGNBD) logDeadOdds(x, tx, T float64) float64 {
	return math.Log(m.A) - math.Log(m.B+x-1) + (m.R+x)*(math.Log(m.Alpha+T)-math.Log(m.Alpha+tx))
}

// ConditionalExpectedPurchases is E[Y(t) | x, t_x, T], the expected number of purchases in
// (T, T+t] (FHL 2005 eq. 10). It returns an error only where the hypergeometric series cannot be
// summed to full precision (t more than about 10^5 times α+T); it never returns NaN or ±Inf.
func (m BGNBD) ConditionalExpectedPurchases(t, x, tx, T float64) (float64, error) {
	g, err := m.expectedIfAlive(x, t/(m.Alpha+T))
	if err != nil {
		return 0, err
	}
	return m.PAlive(x, tx, T) * g, nil
}

// ExpectedPurchases is E[X(t)], the expected number of repeat purchases in the first t periods
// after a customer's first purchase (FHL 2005 eq. 9). Errors as ConditionalExpectedPurchases.
func (m BGNBD) ExpectedPurchases(t float64) (float64, error) {
	// A customer just after the first purchase is alive with no history: x = t_x = T = 0.
	return m.expectedIfAlive(0, t/m.Alpha)
}

// ProbPurchases is P(X(t) = n), the probability of exactly n repeat purchases in the first t
// periods (FHL 2005 eq. 8). The partial NBD sum in the paper, 1 − Σ_{j<n} NBD(j), is replaced by
// its equal, the regularised incomplete beta I_{t/(α+t)}(n, r), which has no cancellation for large n.
func (m BGNBD) ProbPurchases(n int, t float64) float64 {
	if n < 0 {
		return 0
	}
	r, al, a, b := m.R, m.Alpha, m.A, m.B
	fn := float64(n)
	if t <= 0 {
		if n == 0 {
			return 1
		}
		return 0
	}
	lbab := mathext.Lbeta(a, b)
	lgrn, _ := math.Lgamma(r + fn)
	lgr, _ := math.Lgamma(r)
	lgn1, _ := math.Lgamma(fn + 1)
	lp := mathext.Lbeta(a, b+fn) - lbab + lgrn - lgr - lgn1 +
		r*(math.Log(al)-math.Log(al+t)) + fn*(math.Log(t)-math.Log(al+t))
	p := math.Exp(lp)
	if n > 0 {
		tail := mathext.RegIncBeta(fn, r, t/(al+t))
		p += math.Exp(mathext.Lbeta(a+1, b+fn-1)-lbab) * tail
	}
	return p
}

// errSeries reports a hypergeometric series that would need too many terms.
var errSeries = errors.New("clv: horizon too long relative to α+T for the hypergeometric series")

// maxSeriesTerms bounds the series below: about 30 ms of work, reached only when t/(α+T) > ~2·10^5.
const maxSeriesTerms = 10_000_000

// expectedIfAlive is G(x, s) = E[purchases in (T, T+t] | alive at T, x] with s = t/(α+T).
//
// FHL's eq. 10 has 2F1(r+x, b+x; a+b+x−1; z), z = t/(α+T+t), whose parameters grow with x and
// whose terms overflow for large x (the `lifetimes` bug). The Euler transformation
// 2F1(A',B';c;z) = (1−z)^(c−A'−B') 2F1(c−A', c−B'; c; z) turns the bracket of eq. 10 into
//
//	G = c/(a−1) · [1 − (1−z)^(a−1) · 2F1(a+b−1−r, a−1; c; z)],  c = a+b+x−1,
//
// whose first two parameters do not depend on x (so larger x only speeds convergence). With
// B = a−1, the factor (B)_n = B·(B+1)_{n−1} is divided out analytically, which removes the 0/0 at
// a = 1 and the cancellation near it:
//
//	G = c · [ −expm1(B·L)/B − e^(B·L) · Σ_{n≥1} (A)_n (B+1)_{n−1} / ((c)_n n!) zⁿ ],  L = ln(1−z).
func (m BGNBD) expectedIfAlive(x, s float64) (float64, error) {
	if !(s > 0) {
		return 0, nil
	}
	a, b, r := m.A, m.B, m.R
	A := a + b - 1 - r
	B := a - 1
	c := a + b + x - 1
	z := s / (1 + s)
	L := -math.Log1p(s) // ln(1−z)
	var first float64
	if B == 0 {
		first = -L
	} else {
		first = -math.Expm1(B*L) / B
	}
	sum, err := hyperTail(A, B, c, z)
	if err != nil {
		return 0, err
	}
	g := c * (first - math.Exp(B*L)*sum)
	if g < 0 {
		// Rounding can leave a tiny negative value for s → 0; the expectation is non-negative.
		g = 0
	}
	return g, nil
}

// hyperTail sums Σ_{n≥1} (A)_n (B+1)_{n−1} / ((c)_n n!) zⁿ for 0 ≤ z < 1, B > −1, c > 0.
//
// Term n+1 is term n times ρ_n = z·(A+n)/(c+n)·(B+n)/(n+1). Once n+1 > −A every later factor is
// positive and each of the two fractions is monotone in n, so every later ratio is at most
// z·max(1, (A+n+1)/(c+n+1))·max(1, (B+n+1)/(n+2)) =: ρ̂, and the tail is at most |term|·ρ̂/(1−ρ̂).
// The sum stops when that bound is below 1e-17 of the sum: a rigorous, not a heuristic, cut.
func hyperTail(A, B, c, z float64) (float64, error) {
	term := A * z / c // n = 1
	sum := term
	for n := 1.0; n < maxSeriesTerms; n++ {
		term *= z * (A + n) / (c + n) * (B + n) / (n + 1)
		sum += term
		if term == 0 {
			return sum, nil
		}
		if n+1 > -A {
			rho := z * math.Max(1, (A+n+1)/(c+n+1)) * math.Max(1, (B+n+1)/(n+2))
			if rho < 1 && math.Abs(term)*rho/(1-rho) <= 1e-17*math.Abs(sum) {
				return sum, nil
			}
		}
	}
	return 0, errSeries
}

// logAddExp is ln(e^x + e^y) without overflow.
func logAddExp(x, y float64) float64 {
	if x < y {
		x, y = y, x
	}
	return x + math.Log1p(math.Exp(y-x))
}
