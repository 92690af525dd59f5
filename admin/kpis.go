package admin

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

// KPI definitions (GET /kpis?from=YYYY-MM-DD&to=YYYY-MM-DD, both dates inclusive, UTC):
//
//   - The period is [from 00:00Z, the day after to 00:00Z). Defaults: to = today, from = to − 29 days.
//   - A purchase is an order of an identified customer whose status is open or paid (cancelled and
//     refunded orders are not purchases, as in the scores). It counts in the period it was placed in;
//     its net value is its total minus all its refunds, never below 0. Guest orders (no customer) are
//     only counted in guest_orders.
//   - A customer is active at instant T when they have a purchase in the 365 days before T
//     ([T − 365 days, T)).
//   - Retention rate: of the customers active at the start of the period, the share still active
//     at its end. Customers won during the period (new or reactivated) are not in it: 10 active at
//     the start, 2 lost and 4 new gives 8 / 10 = 0.8. Churn rate: lost / active at the start
//     (= 1 − retention). Both null when nobody was active at the start.
//   - Repeat purchase rate: customers with at least 2 purchases in the period / customers with at
//     least 1 (buyers). Purchase frequency: purchases / buyers.
//   - Average order value: per currency (clvd never converts), net value of the period's purchases /
//     their number; exact totals in minor units, the average rounded half away from zero to the minor unit.
//   - CSAT: good / (good + bad) satisfaction ratings of the tickets last updated in the period; null
//     when there are none.
//   - Revenue by tier: net value of the period's purchases by each customer's current tier
//     ("unscored" for customers not scored yet), per currency; from platinum down to unscored.
//
// Every count and sum is computed by the database (store.CustomerKPIs); no order is loaded.

// maxKPIPeriod bounds a KPI period.
const maxKPIPeriod = 10 * 366 // days

type moneyJSON struct {
	Currency string `json:"currency"`
	Minor    int64  `json:"minor"`
	Amount   string `json:"amount"` // decimal string of Minor
}

func moneyOf(minor int64, currency string) moneyJSON {
	return moneyJSON{Currency: currency, Minor: minor, Amount: money.Format(minor, currency)}
}

type aovJSON struct {
	Currency     string    `json:"currency"`
	Orders       int64     `json:"orders"`
	Revenue      moneyJSON `json:"revenue"`
	AverageOrder moneyJSON `json:"average_order"`
}

type tierRevenueJSON struct {
	Tier      string    `json:"tier"`
	Customers int64     `json:"customers"`
	Orders    int64     `json:"orders"`
	Revenue   moneyJSON `json:"revenue"`
}

type kpisJSON struct {
	Tenant string `json:"tenant"`
	Period struct {
		From  string    `json:"from"`
		To    string    `json:"to"`
		Start time.Time `json:"start"` // inclusive
		End   time.Time `json:"end"`   // exclusive
	} `json:"period"`
	ActiveWindowDays int `json:"active_window_days"`
	Customers        struct {
		ActiveAtStart int64 `json:"active_at_start"`
		Retained      int64 `json:"retained"`
		Lost          int64 `json:"lost"`
		ActiveAtEnd   int64 `json:"active_at_end"`
		Won           int64 `json:"won"` // active at the end but not at the start
		New           int64 `json:"new"` // first purchase ever in the period
		Buyers        int64 `json:"buyers"`
		RepeatBuyers  int64 `json:"repeat_buyers"`
	} `json:"customers"`
	Orders             int64             `json:"orders"`
	GuestOrders        int64             `json:"guest_orders"`
	RetentionRate      *float64          `json:"retention_rate"`
	ChurnRate          *float64          `json:"churn_rate"`
	RepeatPurchaseRate *float64          `json:"repeat_purchase_rate"`
	PurchaseFrequency  *float64          `json:"purchase_frequency"`
	AverageOrderValue  []aovJSON         `json:"average_order_value"`
	CSAT               *float64          `json:"csat"`
	Ratings            map[string]int64  `json:"ratings"`
	RevenueByTier      []tierRevenueJSON `json:"revenue_by_tier"`
}

func rate(f func() (float64, bool)) *float64 {
	v, ok := f()
	if !ok {
		return nil
	}
	return &v
}

// roundDiv is n/d rounded half away from zero, for n ≥ 0 and d > 0.
func roundDiv(n, d int64) int64 {
	q, r := n/d, n%d
	if 2*r >= d {
		q++
	}
	return q
}

func parseDay(name, v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, badRequest("%s %q: want a date YYYY-MM-DD", name, v)
	}
	return t, nil
}

func (h *Handler) kpis(c *gin.Context) {
	q, err := queryParams(c, "tenant", "from", "to")
	if err != nil {
		h.fail(c, err)
		return
	}
	now := h.now().UTC()
	to := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if v := q.Get("to"); v != "" {
		if to, err = parseDay("to", v); err != nil {
			h.fail(c, err)
			return
		}
	}
	from := to.AddDate(0, 0, -29)
	if v := q.Get("from"); v != "" {
		if from, err = parseDay("from", v); err != nil {
			h.fail(c, err)
			return
		}
	}
	if to.Before(from) {
		h.fail(c, badRequest("the period ends (to=%s) before it starts (from=%s)", to.Format(time.DateOnly), from.Format(time.DateOnly)))
		return
	}
	if to.Sub(from) > maxKPIPeriod*24*time.Hour {
		h.fail(c, badRequest("the period is longer than %d days", maxKPIPeriod))
		return
	}
	end := to.AddDate(0, 0, 1)
	k, err := h.store.CustomerKPIs(c.Request.Context(), tenantOf(c), from, end)
	if err != nil {
		h.fail(c, err)
		return
	}
	var out kpisJSON
	out.Tenant = tenantOf(c)
	out.Period.From, out.Period.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	out.Period.Start, out.Period.End = from, end
	out.ActiveWindowDays = int(store.ActiveWindow / (24 * time.Hour))
	cu := &out.Customers
	cu.ActiveAtStart, cu.Retained, cu.Lost = k.ActiveAtStart, k.Retained, k.ActiveAtStart-k.Retained
	cu.ActiveAtEnd, cu.Won, cu.New = k.ActiveAtEnd, k.ActiveAtEnd-k.Retained, k.NewCustomers
	cu.Buyers, cu.RepeatBuyers = k.Buyers, k.RepeatBuyers
	out.Orders, out.GuestOrders = k.Orders, k.GuestOrders
	out.RetentionRate, out.ChurnRate = rate(k.RetentionRate), rate(k.ChurnRate)
	out.RepeatPurchaseRate, out.PurchaseFrequency = rate(k.RepeatPurchaseRate), rate(k.PurchaseFrequency)
	out.CSAT = rate(k.CSAT)
	out.Ratings = map[string]int64{"good": k.RatingsGood, "bad": k.RatingsBad}
	out.AverageOrderValue = make([]aovJSON, 0, len(k.Revenue))
	for _, r := range k.Revenue {
		out.AverageOrderValue = append(out.AverageOrderValue, aovJSON{Currency: r.Currency, Orders: r.Orders,
			Revenue: moneyOf(r.NetMinor, r.Currency), AverageOrder: moneyOf(roundDiv(r.NetMinor, r.Orders), r.Currency)})
	}
	out.RevenueByTier = make([]tierRevenueJSON, 0, len(k.RevenueByTier))
	byTier := slices.Clone(k.RevenueByTier)
	slices.SortStableFunc(byTier, func(a, b store.TierRevenue) int { return cmp.Compare(tierRank(a.Tier), tierRank(b.Tier)) })
	for _, r := range byTier {
		tier := r.Tier
		if tier == "" {
			tier = "unscored"
		}
		out.RevenueByTier = append(out.RevenueByTier, tierRevenueJSON{Tier: tier, Customers: r.Customers, Orders: r.Orders,
			Revenue: moneyOf(r.NetMinor, r.Currency)})
	}
	c.JSON(http.StatusOK, out)
}

// tierRank orders tiers from the most valuable down, then tiers the scorer may add later, then
// customers not scored yet.
func tierRank(tier string) int {
	if tier == "" {
		return len(tiers) + 1
	}
	if i := slices.Index(tiers, tier); i >= 0 {
		return i
	}
	return len(tiers)
}

// maxModels bounds GET /model?limit=.
const maxModels = 100

type modelJSON struct {
	ID              int64           `json:"id"`
	Kind            string          `json:"kind"`
	FittedAt        time.Time       `json:"fitted_at"`
	Params          json.RawMessage `json:"params"`
	Customers       int             `json:"customers"`
	RepeatCustomers int             `json:"repeat_customers"`
	LogLikelihood   *float64        `json:"log_likelihood"` // null when the fit produced none
	Converged       bool            `json:"converged"`
	Seconds         float64         `json:"seconds"`
	Quality         json.RawMessage `json:"quality"`
}

func (h *Handler) model(c *gin.Context) {
	q, err := queryParams(c, "tenant", "limit")
	if err != nil {
		h.fail(c, err)
		return
	}
	limit := 1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxModels {
			h.fail(c, badRequest("limit %q: want 1 to %d", v, maxModels))
			return
		}
		limit = n
	}
	models, err := h.store.ListModels(c.Request.Context(), tenantOf(c), limit)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]modelJSON, 0, len(models))
	for _, m := range models {
		mj := modelJSON{ID: m.ID, Kind: m.Kind, FittedAt: m.FittedAt, Params: m.Params, Customers: m.Customers,
			RepeatCustomers: m.RepeatCustomers, Converged: m.Converged, Seconds: m.Seconds, Quality: m.Quality}
		if len(mj.Params) == 0 {
			mj.Params = json.RawMessage(`{}`)
		}
		if len(mj.Quality) == 0 {
			mj.Quality = json.RawMessage(`{}`)
		}
		if !math.IsNaN(m.LogLik) && !math.IsInf(m.LogLik, 0) {
			ll := m.LogLik
			mj.LogLikelihood = &ll
		}
		out = append(out, mj)
	}
	c.JSON(http.StatusOK, gin.H{"models": out})
}
