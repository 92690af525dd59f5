package clv

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
)

// ErrNotEnoughData is returned (wrapped) by Fit below the cold-start thresholds
// (FitOptions.MinCustomers, MinRepeatCustomers). Score with a nil model meanwhile.
var ErrNotEnoughData = errors.New("clv: not enough data to fit")

// ErrInvalidSummary is returned (wrapped) by Fit for a summary with negative, non-finite or
// inconsistent values (t_x > T).
var ErrInvalidSummary = errors.New("clv: invalid summary")

// Cold-start defaults. A BG/NBD fit on fewer customers is mostly prior; with fewer repeat buyers
// the drop-out parameters (a, b) and the Gamma-Gamma are not identified.
const (
	DefaultMinCustomers       = 50
	DefaultMinRepeatCustomers = 20
)

// Model is a fitted tenant model, JSON-serialisable for storage.
type Model struct {
	Unit  Unit  `json:"unit"`
	BGNBD BGNBD `json:"bgnbd"`
	// GammaGamma is nil when the spend model is not usable (too few repeat customers with a
	// positive mean value, no convergence, or q ≤ 1); CLV then uses each customer's own mean.
	GammaGamma      *GammaGamma `json:"gammagamma,omitempty"`
	FittedAt        time.Time   `json:"fitted_at"`
	Customers       int         `json:"customers"`
	RepeatCustomers int         `json:"repeat_customers"`
	// LogLik is the BG/NBD log-likelihood (unpenalised) of the fitted data.
	LogLik float64 `json:"loglik"`
}

// Validate checks the unit and the BG/NBD parameters, and that a present Gamma-Gamma is usable.
func (m *Model) Validate() error {
	if m == nil {
		return errors.New("clv: nil model")
	}
	if !m.Unit.Valid() {
		return fmt.Errorf("clv: model has invalid unit %v", m.Unit)
	}
	if err := m.BGNBD.Validate(); err != nil {
		return err
	}
	if m.GammaGamma != nil {
		return m.GammaGamma.Validate()
	}
	return nil
}

// FitOptions tunes Fit. The zero value gives the defaults.
type FitOptions struct {
	// Penalizer is the L2 coefficient on the BG/NBD parameters (r, α, a, b) on their natural scale,
	// added to the mean negative log-likelihood (the `lifetimes` convention). 0: none.
	Penalizer float64 `json:"penalizer"`
	// GammaGammaPenalizer is the same for (p, q, v).
	GammaGammaPenalizer float64 `json:"gammagamma_penalizer"`
	// MinCustomers and MinRepeatCustomers are the cold-start thresholds: 0 means the defaults
	// (DefaultMinCustomers, DefaultMinRepeatCustomers), a negative value means no minimum.
	// MinRepeatCustomers also applies to the Gamma-Gamma's customers (repeat, positive value).
	MinCustomers       int `json:"min_customers"`
	MinRepeatCustomers int `json:"min_repeat_customers"`
	// MaxIterations caps each optimiser's iterations (0: 1000).
	MaxIterations int `json:"max_iterations"`
	// Workers is how many goroutines evaluate the likelihood (0: GOMAXPROCS; used only for large
	// data sets, where it pays).
	Workers int `json:"workers"`
	// Now stamps Model.FittedAt (zero: the current time).
	Now time.Time `json:"-"`
}

func threshold(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// GammaGammaReport describes the spend-model fit.
type GammaGammaReport struct {
	OptimReport
	// Customers is how many repeat customers with a positive mean value were used; Excluded how
	// many repeat customers were left out for a non-positive mean value.
	Customers int `json:"customers"`
	Excluded  int `json:"excluded"`
	// Params are the fitted values even when not usable (e.g. q ≤ 1), for diagnosis.
	Params *GammaGamma `json:"params,omitempty"`
	Usable bool        `json:"usable"`
	// Problem says why the model is not usable; Err is the same as an error (ErrMeanUndefined,
	// ErrNotConverged or ErrNotEnoughData, wrapped).
	Problem string `json:"problem,omitempty"`
	Err     error  `json:"-"`
}

// FitReport describes a Fit.
type FitReport struct {
	Customers       int              `json:"customers"`
	RepeatCustomers int              `json:"repeat_customers"`
	UniqueRows      int              `json:"unique_rows"` // BG/NBD rows after merging identical (x, t_x, T)
	BGNBD           OptimReport      `json:"bgnbd"`
	GammaGamma      GammaGammaReport `json:"gammagamma"`
	Seconds         float64          `json:"seconds"`
}

// Fit fits the BG/NBD and the Gamma-Gamma models to customer summaries measured in unit.
//
// It returns ErrNotEnoughData (wrapped, with the counts) below the cold-start thresholds,
// ErrInvalidSummary for bad input, and ErrNotConverged when the BG/NBD optimiser does not reach a
// stationary point. A Gamma-Gamma problem does not fail the fit: the model then has no
// GammaGamma and the report says why (GammaGammaReport.Err).
func Fit(summaries []Summary, unit Unit, opts FitOptions) (*Model, FitReport, error) {
	start := time.Now()
	var rep FitReport
	if !unit.Valid() {
		return nil, rep, fmt.Errorf("clv: invalid unit %v", unit)
	}
	for i, s := range summaries {
		if err := checkSummary(s); err != nil {
			return nil, rep, fmt.Errorf("%w: customer %d: %v", ErrInvalidSummary, i, err)
		}
		if s.Frequency > 0 {
			rep.RepeatCustomers++
		}
	}
	rep.Customers = len(summaries)
	minC := threshold(opts.MinCustomers, DefaultMinCustomers)
	minR := threshold(opts.MinRepeatCustomers, DefaultMinRepeatCustomers)
	if rep.Customers < minC || rep.RepeatCustomers < minR || rep.Customers == 0 {
		return nil, rep, fmt.Errorf("%w: %d customers (%d with repeat purchases); need %d (%d)",
			ErrNotEnoughData, rep.Customers, rep.RepeatCustomers, minC, minR)
	}

	d := newBGData(summaries, true)
	rep.UniqueRows = d.rows()
	bg, orep, err := fitBGNBD(d, opts.Penalizer, opts.Workers, opts.MaxIterations)
	rep.BGNBD = orep
	if err != nil {
		rep.Seconds = time.Since(start).Seconds()
		return nil, rep, fmt.Errorf("BG/NBD: %w", err)
	}
	if err := bg.Validate(); err != nil {
		rep.Seconds = time.Since(start).Seconds()
		return nil, rep, fmt.Errorf("BG/NBD: %w: %v", ErrNotConverged, err)
	}
	m := &Model{
		Unit: unit, BGNBD: bg, FittedAt: opts.Now, Customers: rep.Customers,
		RepeatCustomers: rep.RepeatCustomers, LogLik: orep.LogLik,
	}
	if m.FittedAt.IsZero() {
		m.FittedAt = time.Now().UTC()
	}
	m.GammaGamma, rep.GammaGamma = fitSpend(summaries, opts, minR)
	rep.Seconds = time.Since(start).Seconds()
	return m, rep, nil
}

// fitSpend fits the Gamma-Gamma and decides whether it is usable.
func fitSpend(summaries []Summary, opts FitOptions, minR int) (*GammaGamma, GammaGammaReport) {
	var r GammaGammaReport
	gd, excluded := newGGData(summaries)
	gd.workers = opts.Workers
	if gd.workers <= 0 {
		gd.workers = runtime.GOMAXPROCS(0)
	}
	r.Customers, r.Excluded = int(gd.sumW), excluded
	fail := func(err error) (*GammaGamma, GammaGammaReport) {
		r.Err, r.Problem = err, err.Error()
		return nil, r
	}
	if r.Customers < max(minR, 1) {
		return fail(fmt.Errorf("%w: %d repeat customers with a positive mean value; need %d",
			ErrNotEnoughData, r.Customers, max(minR, 1)))
	}
	gg, orep, err := fitGammaGamma(gd, opts.GammaGammaPenalizer, opts.MaxIterations)
	r.OptimReport = orep
	if err != nil {
		return fail(err)
	}
	r.Params = &gg
	if err := gg.Validate(); err != nil {
		return fail(err)
	}
	r.Usable = true
	return &gg, r
}

func checkSummary(s Summary) error {
	for _, v := range [...]float64{s.Frequency, s.Recency, s.T} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("frequency, recency and T must be finite and >= 0: %v, %v, %v", s.Frequency, s.Recency, s.T)
		}
	}
	if s.Recency > s.T {
		return fmt.Errorf("recency %v > T %v", s.Recency, s.T)
	}
	if math.IsNaN(s.MonetaryValue) {
		return errors.New("monetary value is NaN")
	}
	return nil
}
