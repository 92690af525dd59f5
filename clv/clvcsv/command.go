package clvcsv

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/clvd/clvd/clv"
)

// FitOutput is the JSON that `clvd model fit` prints.
type FitOutput struct {
	Customers       int      `json:"customers"`
	RepeatCustomers int      `json:"repeat_customers"`
	Unit            clv.Unit `json:"unit"`
	BGNBD           struct {
		R      float64 `json:"r"`
		Alpha  float64 `json:"alpha"`
		A      float64 `json:"a"`
		B      float64 `json:"b"`
		LogLik float64 `json:"loglik"`
	} `json:"bgnbd"`
	// GammaGamma is null when the spend model is not usable; GammaGammaProblem says why.
	GammaGamma *struct {
		P         float64 `json:"p"`
		Q         float64 `json:"q"`
		V         float64 `json:"v"`
		Customers int     `json:"customers"`
	} `json:"gammagamma"`
	GammaGammaProblem string  `json:"gammagamma_problem,omitempty"`
	Seconds           float64 `json:"seconds"`
}

// Fit fits the models to the loaded customers.
func Fit(l *Loaded, unit clv.Unit, opts clv.FitOptions) (*clv.Model, FitOutput, error) {
	sums := make([]clv.Summary, len(l.Customers))
	for i, c := range l.Customers {
		sums[i] = c.Summary
	}
	var out FitOutput
	m, rep, err := clv.Fit(sums, unit, opts)
	if err != nil {
		return nil, out, err
	}
	out.Customers, out.RepeatCustomers, out.Unit, out.Seconds = rep.Customers, rep.RepeatCustomers, unit, rep.Seconds
	out.BGNBD.R, out.BGNBD.Alpha, out.BGNBD.A, out.BGNBD.B = m.BGNBD.R, m.BGNBD.Alpha, m.BGNBD.A, m.BGNBD.B
	out.BGNBD.LogLik = m.LogLik
	if gg := m.GammaGamma; gg != nil {
		out.GammaGamma = &struct {
			P         float64 `json:"p"`
			Q         float64 `json:"q"`
			V         float64 `json:"v"`
			Customers int     `json:"customers"`
		}{gg.P, gg.Q, gg.V, rep.GammaGamma.Customers}
	} else {
		out.GammaGammaProblem = rep.GammaGamma.Problem
	}
	return m, out, nil
}

// WriteJSON writes v as one line of JSON.
func WriteJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// PredictOptions are `clvd model predict`'s settings.
type PredictOptions struct {
	HorizonPeriods     float64 // in the model's unit
	AnnualDiscountRate float64
	Margin             float64
}

// PredictHeader is the CSV header `clvd model predict` writes.
var PredictHeader = []string{"customer_id", "frequency", "recency", "T", "monetary_value",
	"p_alive", "expected_purchases", "expected_avg_value", "clv"}

// WritePredictions writes one CSV row per customer with the model's forecast over the horizon.
func WritePredictions(w io.Writer, l *Loaded, m *clv.Model, o PredictOptions) error {
	if !(o.HorizonPeriods > 0) || math.IsInf(o.HorizonPeriods, 0) {
		return fmt.Errorf("horizon %v periods must be > 0", o.HorizonPeriods)
	}
	cfg := clv.DefaultConfig()
	cfg.Horizon = time.Duration(o.HorizonPeriods * m.Unit.Days() * float64(24*time.Hour))
	cfg.AnnualDiscountRate = o.AnnualDiscountRate
	cfg.Margin = o.Margin
	s, err := clv.NewScorer(m, cfg)
	if err != nil {
		return err
	}
	if h, why := s.Heuristic(); h {
		return fmt.Errorf("model not usable: %s", why)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(PredictHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
	row := make([]string, len(PredictHeader))
	for _, c := range l.Customers {
		p, err := s.Predict(c.Summary)
		if err != nil {
			return fmt.Errorf("customer %s: %w", c.ID, err)
		}
		sm := c.Summary
		row[0] = c.ID
		row[1], row[2], row[3], row[4] = f(sm.Frequency), f(sm.Recency), f(sm.T), f(sm.MonetaryValue)
		row[5], row[6], row[7], row[8] = f(p.PAlive), f(p.ExpectedPurchases), f(p.ExpectedAvgValue), f(p.CLV)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
