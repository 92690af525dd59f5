package clv

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config holds a tenant's scoring settings. Start from DefaultConfig and check with Validate.
type Config struct {
	// Horizon is the calendar span that PredictedCLV and ExpectedPurchases cover (default 365
	// days). It is converted to model periods inside, so it means the same for any model unit.
	// In JSON it is a number of nanoseconds (time.Duration).
	Horizon time.Duration `json:"horizon"`
	// AnnualDiscountRate discounts future value, per year (default 0.10). Each model period is
	// discounted by (1+AnnualDiscountRate)^(period days/365.25).
	AnnualDiscountRate float64 `json:"annual_discount_rate"`
	// Margin is the share of revenue that is profit, applied to PredictedCLV and SimpleCLV
	// (default 1: CLV in revenue; HistoricCLV is always revenue).
	Margin float64 `json:"margin"`
	// ExpectedLifetimeYears is the customer lifetime of the simple stakeholder formula (default 3).
	ExpectedLifetimeYears float64 `json:"expected_lifetime_years"`

	Churn     ChurnConfig     `json:"churn"`
	Tiers     TierConfig      `json:"tiers"`
	Heuristic HeuristicConfig `json:"heuristic"`
}

// ChurnConfig turns the model's churn probability and support signals into the final churn risk.
//
// The adjustment is additive in log-odds, so the result always stays in (0, 1):
//
//	logit(churn) = logit(base) + Σ_signals weight × min(count, MaxSignalCount)
//
// where base = 1 − P(alive). With the defaults, one bad rating turns a base of 0.20 into 0.36,
// two open tickets and an urgent one turn 0.20 into 0.48.
type ChurnConfig struct {
	OpenTicketWeight   float64 `json:"open_ticket_weight"`   // per open ticket (default 0.4)
	RecentTicketWeight float64 `json:"recent_ticket_weight"` // per ticket in the last RecentTicketDays (default 0.2)
	BadRatingWeight    float64 `json:"bad_rating_weight"`    // per bad satisfaction rating (default 0.8)
	UrgentWeight       float64 `json:"urgent_weight"`        // per open urgent-priority ticket, on top of its open weight (default 0.6)
	// MaxSignalCount caps each count, so one noisy customer cannot saturate the score (default 3).
	MaxSignalCount int `json:"max_signal_count"`
	// RecentTicketDays is the window the service counts SupportSignals.RecentTickets in (default 30);
	// it is used here for the reason text.
	RecentTicketDays int `json:"recent_ticket_days"`
	// Bands: probability < MediumThreshold is "low", < HighThreshold "medium", else "high"
	// (defaults 0.3 and 0.6).
	MediumThreshold float64 `json:"medium_threshold"`
	HighThreshold   float64 `json:"high_threshold"`
	// OverdueFactor: a repeat customer whose last order is more than this many times their usual
	// gap ago gets the reason "no order in N days (usually every M)" (default 2).
	OverdueFactor float64 `json:"overdue_factor"`
}

// TierConfig sets the value tiers as shares of the tenant's customers ranked by predicted CLV.
type TierConfig struct {
	PlatinumShare float64 `json:"platinum_share"` // top share (default 0.05)
	GoldShare     float64 `json:"gold_share"`     // the next (default 0.15)
	SilverShare   float64 `json:"silver_share"`   // the next (default 0.30); the rest is bronze
	// NewCustomerDays: a customer whose only purchase is at most this many days old (or who has
	// none) is tier "new" (default 30): too early to rank.
	NewCustomerDays int `json:"new_customer_days"`
}

// HeuristicConfig sets the interim (cold-start) scores, used when there is no fitted model.
type HeuristicConfig struct {
	// GapMultiple is k in P(alive) = exp(−days since last order / (k × usual gap)) (default 2):
	// a customer one usual gap overdue is 61% alive, two gaps 37%, four gaps 14%.
	GapMultiple float64 `json:"gap_multiple"`
	// DefaultGapDays is the usual gap assumed for single-purchase customers (default 90).
	DefaultGapDays float64 `json:"default_gap_days"`
	// MinGapDays floors a customer's own mean gap, so two orders in one week do not declare them
	// churned a fortnight later (default 14).
	MinGapDays float64 `json:"min_gap_days"`
	// MinYears floors the observed span in the orders-per-year rate (default 1), so a customer who
	// ordered once last week is not extrapolated to 52 orders a year.
	MinYears float64 `json:"min_years"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Horizon:               365 * 24 * time.Hour,
		AnnualDiscountRate:    0.10,
		Margin:                1,
		ExpectedLifetimeYears: 3,
		Churn: ChurnConfig{
			OpenTicketWeight: 0.4, RecentTicketWeight: 0.2, BadRatingWeight: 0.8, UrgentWeight: 0.6,
			MaxSignalCount: 3, RecentTicketDays: 30, MediumThreshold: 0.3, HighThreshold: 0.6, OverdueFactor: 2,
		},
		Tiers:     TierConfig{PlatinumShare: 0.05, GoldShare: 0.15, SilverShare: 0.30, NewCustomerDays: 30},
		Heuristic: HeuristicConfig{GapMultiple: 2, DefaultGapDays: 90, MinGapDays: 14, MinYears: 1},
	}
}

// maxHorizon bounds the horizon: beyond a century a forecast is meaningless, and the step sums
// would be needlessly long.
const maxHorizon = 100 * 365 * 24 * time.Hour

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if c.Horizon <= 0 || c.Horizon > maxHorizon {
		bad("horizon %v must be in (0, 100 years]", c.Horizon)
	}
	if !fin(c.AnnualDiscountRate) || c.AnnualDiscountRate < 0 || c.AnnualDiscountRate > 10 {
		bad("annual discount rate %v must be in [0, 10]", c.AnnualDiscountRate)
	}
	if !(c.Margin > 0 && c.Margin <= 1) {
		bad("margin %v must be in (0, 1]", c.Margin)
	}
	if !(c.ExpectedLifetimeYears > 0 && c.ExpectedLifetimeYears <= 100) {
		bad("expected lifetime %v years must be in (0, 100]", c.ExpectedLifetimeYears)
	}
	ch := c.Churn
	for name, w := range map[string]float64{"open ticket": ch.OpenTicketWeight, "recent ticket": ch.RecentTicketWeight,
		"bad rating": ch.BadRatingWeight, "urgent": ch.UrgentWeight} {
		if !fin(w) || w < 0 || w > 20 {
			bad("churn %s weight %v must be in [0, 20]", name, w)
		}
	}
	if ch.MaxSignalCount < 1 {
		bad("churn max signal count %d must be >= 1", ch.MaxSignalCount)
	}
	if ch.RecentTicketDays < 1 {
		bad("churn recent ticket days %d must be >= 1", ch.RecentTicketDays)
	}
	if !(ch.MediumThreshold > 0 && ch.MediumThreshold < ch.HighThreshold && ch.HighThreshold < 1) {
		bad("churn thresholds need 0 < medium (%v) < high (%v) < 1", ch.MediumThreshold, ch.HighThreshold)
	}
	if !(ch.OverdueFactor >= 1) || !fin(ch.OverdueFactor) {
		bad("churn overdue factor %v must be >= 1", ch.OverdueFactor)
	}
	t := c.Tiers
	if !(t.PlatinumShare > 0 && t.GoldShare > 0 && t.SilverShare > 0 && t.PlatinumShare+t.GoldShare+t.SilverShare < 1) {
		bad("tier shares %v, %v, %v must be positive and sum to less than 1", t.PlatinumShare, t.GoldShare, t.SilverShare)
	}
	if t.NewCustomerDays < 0 {
		bad("tier new customer days %d must be >= 0", t.NewCustomerDays)
	}
	h := c.Heuristic
	if !(h.GapMultiple > 0) || !fin(h.GapMultiple) {
		bad("heuristic gap multiple %v must be > 0", h.GapMultiple)
	}
	if !(h.DefaultGapDays > 0) || !fin(h.DefaultGapDays) {
		bad("heuristic default gap %v days must be > 0", h.DefaultGapDays)
	}
	if !(h.MinGapDays > 0) || !fin(h.MinGapDays) {
		bad("heuristic min gap %v days must be > 0", h.MinGapDays)
	}
	if !(h.MinYears > 0) || !fin(h.MinYears) {
		bad("heuristic min years %v must be > 0", h.MinYears)
	}
	if len(errs) > 0 {
		return fmt.Errorf("clv: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// discountSteps returns the end of each step, in periods of perDays days, and its discount factor.
// Steps are one period long except the last, which ends exactly at the horizon, so a horizon
// that is not a whole number of periods (365 days in weeks) still covers the same calendar span.
// Each step's purchases are discounted at the step's end: (1+annual)^(−end·perDays/365.25).
func (c Config) discountSteps(perDays float64) (ends, disc []float64) {
	n := c.Horizon.Hours() / 24 / perDays
	k := int(math.Ceil(n - 1e-9))
	ends = make([]float64, k)
	disc = make([]float64, k)
	lr := math.Log1p(c.AnnualDiscountRate) * perDays / DaysPerYear // log(1+d_period)
	for i := range k {
		e := math.Min(float64(i+1), n)
		ends[i] = e
		disc[i] = math.Exp(-lr * e)
	}
	return ends, disc
}
