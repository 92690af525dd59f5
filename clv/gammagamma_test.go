package clv

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// ggSample draws n repeat customers' (x, zbar) from the Gamma-Gamma spend model.
func ggSample(n int, gg GammaGamma, seed uint64) []Summary {
	src := rand.NewPCG(seed, seed+1)
	rng := rand.New(src)
	nu := distuv.Gamma{Alpha: gg.Q, Beta: gg.V, Src: src}
	out := make([]Summary, n)
	for i := range out {
		x := 1 + rng.IntN(5)
		z := distuv.Gamma{Alpha: gg.P, Beta: nu.Rand(), Src: src}
		sum := 0.0
		for range x {
			sum += z.Rand()
		}
		out[i] = Summary{Frequency: float64(x), Recency: 10, T: 20, MonetaryValue: sum / float64(x), Transactions: x + 1}
	}
	return out
}

func TestGammaGammaRecoversParameters(t *testing.T) {
	want := GammaGamma{P: 4, Q: 3, V: 20}
	gd, _ := newGGData(ggSample(20000, want, 1))
	got, rep, err := fitGammaGamma(gd, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Converged {
		t.Fatalf("%+v", rep)
	}
	// 20,000 customers pin the parameters to a few percent (the MLE's sampling error).
	within(t, "p", got.P, want.P, 0.1)
	within(t, "q", got.Q, want.Q, 0.1)
	within(t, "v", got.V, want.V, 0.15)
}

// Repeat customers whose mean value is zero or negative (free orders, refunds) are outside the
// model: they are excluded and counted, the fit still works, and scoring them is finite.
func TestGammaGammaExcludesNonPositiveValues(t *testing.T) {
	sums := ggSample(500, GammaGamma{P: 4, Q: 3, V: 20}, 2)
	// Add x = 0 customers too, which the spend model never sees.
	for i := range 200 {
		sums = append(sums, Summary{Frequency: 0, T: float64(i%30 + 1), Transactions: 1})
	}
	sums[0].MonetaryValue = 0
	sums[1].MonetaryValue = -12.5
	sums[2].MonetaryValue = math.Inf(1)
	gd, excluded := newGGData(sums)
	if excluded != 3 || gd.sumW != 497 {
		t.Fatalf("excluded %d, used %v; want 3 and 497", excluded, gd.sumW)
	}
	m, rep, err := Fit(sums, Week, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.GammaGamma == nil || rep.GammaGamma.Excluded != 3 || rep.GammaGamma.Customers != 497 {
		t.Fatalf("gamma-gamma report %+v", rep.GammaGamma)
	}
	for _, z := range []float64{0, -12.5} {
		v, err := m.GammaGamma.ConditionalMean(3, z)
		pop := m.GammaGamma.P * m.GammaGamma.V / (3*m.GammaGamma.P + m.GammaGamma.Q - 1)
		if err != nil || math.Abs(v-pop) > 1e-12 {
			t.Errorf("ConditionalMean(3, %v) = %v, %v; want the zero-value shrinkage %v", z, v, err, pop)
		}
	}
}

func TestGammaGammaConditionalMeanFormula(t *testing.T) {
	g := GammaGamma{P: 6.25, Q: 3.74, V: 15.44}
	got, err := g.ConditionalMean(2, 22.35)
	want := 6.25 * (15.44 + 2*22.35) / (6.25*2 + 3.74 - 1)
	if err != nil || math.Abs(got-want) > 1e-12 {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	// x = 0 gives the population mean pv/(q−1).
	if got, _ := g.ConditionalMean(0, 0); math.Abs(got-6.25*15.44/2.74) > 1e-12 {
		t.Errorf("population mean %v", got)
	}
}

// Spend so heavy-tailed that the fitted q ≤ 1 (infinite mean order value): the fit reports it,
// the model carries no spend model, and CLV falls back to each customer's own mean, saying so.
func TestGammaGammaQAtMostOneIsReported(t *testing.T) {
	spend := ggSample(3000, GammaGamma{P: 3, Q: 0.6, V: 10}, 3)
	gd, _ := newGGData(spend)
	raw, _, err := fitGammaGamma(gd, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Q > 1 {
		t.Fatalf("test data should give q <= 1, got %+v", raw)
	}
	// Give the customers BG/NBD-usable histories.
	sums := cdnowLike(len(spend)*3, 4).summaries(Week)
	j := 0
	for i := range sums {
		if sums[i].Frequency > 0 && j < len(spend) {
			sums[i].MonetaryValue = spend[j].MonetaryValue
			j++
		}
	}
	m, rep, err := Fit(sums, Week, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.GammaGamma != nil || rep.GammaGamma.Usable || !errors.Is(rep.GammaGamma.Err, ErrMeanUndefined) ||
		rep.GammaGamma.Params == nil || rep.GammaGamma.Params.Q > 1 {
		t.Fatalf("q <= 1 not reported: model gg %v, report %+v", m.GammaGamma, rep.GammaGamma)
	}
	if _, err := rep.GammaGamma.Params.ConditionalMean(1, 10); !errors.Is(err, ErrMeanUndefined) {
		t.Errorf("ConditionalMean with q <= 1: err = %v", err)
	}
	// A stored model edited to carry q <= 1 is not used either.
	bad := *m
	bad.GammaGamma = rep.GammaGamma.Params
	if err := bad.Validate(); !errors.Is(err, ErrMeanUndefined) {
		t.Errorf("Model.Validate = %v", err)
	}
	now := simEpoch.AddDate(0, 0, 300)
	ps := []Purchase{{Time: now.AddDate(0, 0, -100), Amount: 40}, {Time: now.AddDate(0, 0, -50), Amount: 60}}
	sc := ScoreCustomer(ps, SupportSignals{}, &bad, DefaultConfig(), now)
	if sc.Model != "bgnbd" || sc.ValueModel != "customer_mean" || sc.ExpectedAvgValue != 50 ||
		len(sc.Notes) == 0 || !strings.Contains(sc.Notes[0], "q <= 1") {
		t.Errorf("score with q <= 1 model: %+v", sc)
	}
	if !(sc.PredictedCLV > 0) || !finite(sc.PredictedCLV) {
		t.Errorf("CLV %v", sc.PredictedCLV)
	}
}
