package clv

import (
	"fmt"
	"testing"
	"time"
)

var benchSizes = []int{2357, 23570, 1000000}

// BenchmarkFit fits BG/NBD + Gamma-Gamma to synthetic CDNOW-like cohorts (fixed seed, generated
// outside the timer).
func BenchmarkFit(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) {
			sums := cachedSummaries(n, Week)
			var rep FitReport
			b.ResetTimer()
			for b.Loop() {
				var err error
				if _, rep, err = Fit(sums, Week, FitOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rep.UniqueRows), "rows")
			b.ReportMetric(float64(rep.BGNBD.Evaluations), "bg-evals")
		})
	}
}

// BenchmarkFitCDNOWSample fits the real CDNOW sample (the published data set).
func BenchmarkFitCDNOWSample(b *testing.B) {
	sums := summaries(readSummaryCSV(b, "cdnow_customers_summary_with_transactions.csv"))
	for b.Loop() {
		if _, _, err := Fit(sums, Week, FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredict scores every customer: P(alive), expected purchases over a year, Gamma-Gamma
// expected value and discounted CLV, from summaries, with a warmed Scorer (its per-x tables are
// per-model precomputation, measured in BenchmarkScorerWarmup).
func BenchmarkPredict(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) {
			sums := cachedSummaries(n, Week)
			s, err := NewScorer(&Model{Unit: Week, BGNBD: pubBG, GammaGamma: &pubGG}, DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			for _, sm := range sums {
				s.Predict(sm)
			}
			var sink float64
			b.ResetTimer()
			for b.Loop() {
				for _, sm := range sums {
					p, _ := s.Predict(sm)
					sink += p.CLV
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "customers/s")
			_ = sink
		})
	}
}

// BenchmarkScorerWarmup is the per-model cost: a new Scorer and the tables for every x of the
// 23,570-customer cohort, at a weekly and a daily model with a 1-year horizon.
func BenchmarkScorerWarmup(b *testing.B) {
	for _, unit := range []Unit{Week, Day} {
		b.Run(unit.String(), func(b *testing.B) {
			sums := cachedSummaries(23570, unit)
			bg := pubBG
			bg.Alpha *= 7 / unit.Days() // the same model in the unit's periods
			m := &Model{Unit: unit, BGNBD: bg, GammaGamma: &pubGG}
			tables := 0
			for b.Loop() {
				s, _ := NewScorer(m, DefaultConfig())
				for _, sm := range sums {
					s.Predict(sm)
				}
				tables = 0
				for i := range s.small {
					if s.small[i].Load() != nil {
						tables++
					}
				}
			}
			b.ReportMetric(float64(tables), "x-tables")
		})
	}
}

// BenchmarkScoreCustomer is the service's full path per customer: summarise raw purchases,
// predict, churn with support signals, next order date.
func BenchmarkScoreCustomer(b *testing.B) {
	c := cdnowLike(23570, 42)
	ps := c.purchases()
	m := &Model{Unit: Week, BGNBD: pubBG, GammaGamma: &pubGG}
	cfg := DefaultConfig()
	at := c.end().Add(13 * time.Hour)
	s, _ := NewScorer(m, cfg)
	sig := SupportSignals{OpenTickets: 1}
	for _, p := range ps {
		s.Score(p, sig, at)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, p := range ps {
			s.Score(p, sig, at)
		}
	}
	b.ReportMetric(float64(len(ps))*float64(b.N)/b.Elapsed().Seconds(), "customers/s")
}
