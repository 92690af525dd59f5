package admin

// The dashboard's read models (the admin dashboard at /admin/, package admin/dashboard, draws them),
// tenant routes like the others:
//
//	GET /dashboard/summary        the tenant (name, Zendesk URL), customer counts, purchases, score currencies,
//	                              and the month the dashboard's time series end with
//	GET /dashboard/kpi-series     monthly KPIs (as GET /kpis, one calendar month each): ?months=1..36 (12) &to=YYYY-MM
//	GET /dashboard/tiers          scored customers by tier and currency: customers, net spend, predicted CLV, high churn
//	GET /dashboard/segments       scored customers by RFM segment, with their average churn probability and P(alive)
//	GET /dashboard/clv-histogram  the predicted CLV distribution in one currency: ?currency= (the most common) &bins=2..100 (20)
//	GET /dashboard/cohorts        cohort retention: ?months=1..36 (12) &to=YYYY-MM
//	GET /dashboard/at-risk        valuable customers about to churn (tier platinum or gold, churn band high),
//	                              highest predicted CLV first, with their Zendesk link: ?limit=1..500 (50)
//
// Time series end by default with the month of the tenant's latest purchase, or the current month if
// that is earlier (a shop whose history was imported and has stopped, like a demo data set, still
// shows its last year); the current month is counted to date (partial: true).
//
// The methods at the end (VerifyToken, SessionToken, DerivedKey) let the dashboard's browser
// sessions use the API: see package admin/dashboard.

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

// DashboardStore is what the dashboard routes read; *store.DB implements it.
type DashboardStore interface {
	DashboardSummary(ctx context.Context, tenantID string) (store.DashboardSummary, error)
	TierBreakdown(ctx context.Context, tenantID string) ([]store.TierStats, error)
	SegmentSizes(ctx context.Context, tenantID string) ([]store.SegmentStats, error)
	PredictedCLVHistogram(ctx context.Context, tenantID, currency string, bins int) (store.CLVHistogram, error)
	CohortRetention(ctx context.Context, tenantID string, start time.Time, months int) (store.CohortTable, error)
	KPISeries(ctx context.Context, tenantID string, start time.Time, months int, until time.Time) ([]store.KPIs, error)
}

var _ DashboardStore = (*store.DB)(nil)

// Dashboard route defaults and bounds.
const (
	defaultSeriesMonths = 12
	defaultHistogramBin = 20
	defaultAtRisk       = 50
	monthLayout         = "2006-01"
)

// atRiskTiers are the valuable tiers of the at-risk list; atRiskBand its churn band.
var (
	atRiskTiers = []string{"platinum", "gold"}
	atRiskBand  = "high"
)

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s %q: want %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// anchorMonth is the month the dashboard's series end with: ?to=YYYY-MM, else the month of the
// latest purchase when that is before the current month, else the current month.
func (h *Handler) anchorMonth(c *gin.Context, q url.Values) (time.Time, error) {
	if v := q.Get("to"); v != "" {
		m, err := time.Parse(monthLayout, v)
		if err != nil {
			return time.Time{}, badRequest("to %q: want a month YYYY-MM", v)
		}
		return m, nil
	}
	sum, err := h.store.DashboardSummary(c.Request.Context(), tenantOf(c))
	if err != nil {
		return time.Time{}, err
	}
	return anchorOf(sum, h.now()), nil
}

func anchorOf(sum store.DashboardSummary, now time.Time) time.Time {
	m := monthOf(now)
	if sum.LastPurchase != nil && sum.LastPurchase.Before(m) {
		m = monthOf(*sum.LastPurchase)
	}
	return m
}

// tomorrow is the end of the current day (UTC): series stop there, so the current month is counted to date.
func (h *Handler) tomorrow() time.Time {
	n := h.now().UTC()
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
}

// zendeskUserURL is the agent page of a Zendesk user, https://SUBDOMAIN.zendesk.com/agent/users/ID,
// from the tenant's stored Zendesk base URL; "" when either is missing or not usable (only https
// URLs, http too when local targets are allowed; numeric user ids).
func (h *Handler) zendeskUserURL(base, userID string) string {
	if base == "" || userID == "" || strings.Trim(userID, "0123456789") != "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || (h.allowLocal && u.Scheme == "http")) {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/agent/users/" + userID}).String()
}

// zendeskBase is the tenant's Zendesk base URL as the dashboard links it (scheme and host), or "".
func (h *Handler) zendeskBase(raw string) string {
	if link := h.zendeskUserURL(raw, "1"); link != "" {
		return strings.TrimSuffix(link, "/agent/users/1")
	}
	return ""
}

type currencyCountJSON struct {
	Currency  string `json:"currency"`
	Customers int64  `json:"customers"`
}

type dashboardSummaryJSON struct {
	Tenant struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		ZendeskURL string `json:"zendesk_url"` // "" when Zendesk is not connected
	} `json:"tenant"`
	Customers struct {
		Total  int64 `json:"total"`
		Scored int64 `json:"scored"`
		Stale  int64 `json:"stale"` // changed since their last score: rescore pending
	} `json:"customers"`
	Purchases     int64               `json:"purchases"`
	FirstPurchase *time.Time          `json:"first_purchase"`
	LastPurchase  *time.Time          `json:"last_purchase"`
	Currencies    []currencyCountJSON `json:"currencies"`
	AnchorMonth   string              `json:"anchor_month"` // YYYY-MM: where the series end by default
	Now           time.Time           `json:"now"`
}

func (h *Handler) dashboardSummary(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	ctx, tenant := c.Request.Context(), tenantOf(c)
	sum, err := h.store.DashboardSummary(ctx, tenant)
	if err != nil {
		h.fail(c, err)
		return
	}
	tn, err := h.store.GetTenant(ctx, tenant)
	if err != nil {
		h.fail(c, err)
		return
	}
	var out dashboardSummaryJSON
	out.Tenant.ID, out.Tenant.Name, out.Tenant.ZendeskURL = tn.ID, tn.Name, h.zendeskBase(tn.Zendesk.BaseURL)
	out.Customers.Total, out.Customers.Scored, out.Customers.Stale = sum.Customers, sum.Scored, sum.Stale
	out.Purchases, out.FirstPurchase, out.LastPurchase = sum.Purchases, sum.FirstPurchase, sum.LastPurchase
	out.Currencies = currenciesOf(sum.Currencies)
	out.Now = h.now().UTC()
	out.AnchorMonth = anchorOf(sum, out.Now).Format(monthLayout)
	c.JSON(http.StatusOK, out)
}

func currenciesOf(cs []store.CurrencyCount) []currencyCountJSON {
	out := make([]currencyCountJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, currencyCountJSON{Currency: c.Currency, Customers: c.Customers})
	}
	return out
}

type kpiPointJSON struct {
	Month   string `json:"month"` // YYYY-MM
	From    string `json:"from"`  // first day, inclusive
	To      string `json:"to"`    // last day, inclusive
	Partial bool   `json:"partial"`

	ActiveAtStart      int64            `json:"active_at_start"`
	Retained           int64            `json:"retained"`
	ActiveAtEnd        int64            `json:"active_at_end"`
	NewCustomers       int64            `json:"new_customers"`
	Buyers             int64            `json:"buyers"`
	RepeatBuyers       int64            `json:"repeat_buyers"`
	Orders             int64            `json:"orders"`
	RetentionRate      *float64         `json:"retention_rate"`
	ChurnRate          *float64         `json:"churn_rate"`
	RepeatPurchaseRate *float64         `json:"repeat_purchase_rate"`
	PurchaseFrequency  *float64         `json:"purchase_frequency"`
	CSAT               *float64         `json:"csat"`
	Ratings            map[string]int64 `json:"ratings"`
	AverageOrderValue  []aovJSON        `json:"average_order_value"`
}

// monthWindow reads ?months= and ?to= (the only parameters besides ?tenant= of the monthly
// series): the window's first and last (anchor) month and its length.
func (h *Handler) monthWindow(c *gin.Context) (start, last time.Time, months int, err error) {
	q, err := queryParams(c, "tenant", "months", "to")
	if err != nil {
		return start, last, 0, err
	}
	if months, err = intParam(q, "months", defaultSeriesMonths, 1, store.MaxCohortMonths); err != nil {
		return start, last, 0, err
	}
	if last, err = h.anchorMonth(c, q); err != nil {
		return start, last, 0, err
	}
	return last.AddDate(0, 1-months, 0), last, months, nil
}

func (h *Handler) kpiSeries(c *gin.Context) {
	start, last, months, err := h.monthWindow(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	series, err := h.store.KPISeries(c.Request.Context(), tenantOf(c), start, months, h.tomorrow())
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]kpiPointJSON, 0, len(series))
	for _, k := range series {
		p := kpiPointJSON{Month: k.From.Format(monthLayout), From: k.From.Format(time.DateOnly),
			To: k.To.AddDate(0, 0, -1).Format(time.DateOnly), Partial: k.To.Before(k.From.AddDate(0, 1, 0)),
			ActiveAtStart: k.ActiveAtStart, Retained: k.Retained, ActiveAtEnd: k.ActiveAtEnd, NewCustomers: k.NewCustomers,
			Buyers: k.Buyers, RepeatBuyers: k.RepeatBuyers, Orders: k.Orders,
			RetentionRate: rate(k.RetentionRate), ChurnRate: rate(k.ChurnRate), RepeatPurchaseRate: rate(k.RepeatPurchaseRate),
			PurchaseFrequency: rate(k.PurchaseFrequency), CSAT: rate(k.CSAT),
			Ratings:           map[string]int64{"good": k.RatingsGood, "bad": k.RatingsBad},
			AverageOrderValue: make([]aovJSON, 0, len(k.Revenue))}
		for _, r := range k.Revenue {
			p.AverageOrderValue = append(p.AverageOrderValue, aovJSON{Currency: r.Currency, Orders: r.Orders,
				Revenue: moneyOf(r.NetMinor, r.Currency), AverageOrder: moneyOf(roundDiv(r.NetMinor, r.Orders), r.Currency)})
		}
		out = append(out, p)
	}
	c.JSON(http.StatusOK, gin.H{"months": out, "start": start.Format(monthLayout), "end": last.Format(monthLayout),
		"active_window_days": int(store.ActiveWindow / (24 * time.Hour))})
}

type tierStatsJSON struct {
	Tier            string    `json:"tier"`
	Currency        string    `json:"currency"`
	Customers       int64     `json:"customers"`
	HighChurn       int64     `json:"high_churn"`
	Historic        moneyJSON `json:"historic"`      // net spend to date
	PredictedCLV    float64   `json:"predicted_clv"` // sum, major units
	AvgPredictedCLV float64   `json:"avg_predicted_clv"`
}

func (h *Handler) dashboardTiers(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	rows, err := h.store.TierBreakdown(c.Request.Context(), tenantOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	slices.SortStableFunc(rows, func(a, b store.TierStats) int {
		return cmp.Or(cmp.Compare(tierRank(a.Tier), tierRank(b.Tier)), cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Currency, b.Currency))
	})
	out := make([]tierStatsJSON, 0, len(rows))
	for _, r := range rows {
		t := tierStatsJSON{Tier: r.Tier, Currency: r.Currency, Customers: r.Customers, HighChurn: r.HighChurn,
			Historic: moneyOf(r.HistoricMinor, r.Currency), PredictedCLV: r.PredictedCLV}
		if r.Customers > 0 {
			t.AvgPredictedCLV = r.PredictedCLV / float64(r.Customers)
		}
		out = append(out, t)
	}
	c.JSON(http.StatusOK, gin.H{"tiers": out})
}

type segmentJSON struct {
	Segment             string  `json:"segment"`
	Customers           int64   `json:"customers"`
	Share               float64 `json:"share"` // of the scored customers
	AvgChurnProbability float64 `json:"avg_churn_probability"`
	AvgPAlive           float64 `json:"avg_p_alive"`
}

func (h *Handler) dashboardSegments(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	rows, err := h.store.SegmentSizes(c.Request.Context(), tenantOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	rank := func(s string) int {
		if i := slices.Index(segments, s); i >= 0 {
			return i
		}
		return len(segments)
	}
	slices.SortStableFunc(rows, func(a, b store.SegmentStats) int {
		return cmp.Or(cmp.Compare(rank(a.Segment), rank(b.Segment)), cmp.Compare(a.Segment, b.Segment))
	})
	var total int64
	for _, r := range rows {
		total += r.Customers
	}
	out := make([]segmentJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, segmentJSON{Segment: r.Segment, Customers: r.Customers, Share: float64(r.Customers) / float64(total),
			AvgChurnProbability: r.AvgChurnProbability, AvgPAlive: r.AvgPAlive})
	}
	c.JSON(http.StatusOK, gin.H{"segments": out, "customers": total})
}

type binJSON struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"` // exclusive; for the open bin, the largest value (inclusive)
	Count int64   `json:"count"`
	Open  bool    `json:"open"` // [lo, ∞): the tail above the regular bins
}

type histogramJSON struct {
	Currency   string              `json:"currency"`
	Currencies []currencyCountJSON `json:"currencies"`
	Customers  int64               `json:"customers"`
	Mean       *float64            `json:"mean"`
	Median     *float64            `json:"median"`
	P99        *float64            `json:"p99"`
	Min        *float64            `json:"min"`
	Max        *float64            `json:"max"`
	BinWidth   float64             `json:"bin_width"`
	Bins       []binJSON           `json:"bins"`
}

func (h *Handler) clvHistogram(c *gin.Context) {
	q, err := queryParams(c, "tenant", "currency", "bins")
	if err != nil {
		h.fail(c, err)
		return
	}
	bins, err := intParam(q, "bins", defaultHistogramBin, store.MinHistogramBins, store.MaxHistogramBins)
	if err != nil {
		h.fail(c, err)
		return
	}
	currency := strings.ToUpper(strings.TrimSpace(q.Get("currency")))
	if currency != "" && !money.ValidCurrency(currency) {
		h.fail(c, badRequest("currency %q: want an ISO 4217 code such as EUR", q.Get("currency")))
		return
	}
	ctx, tenant := c.Request.Context(), tenantOf(c)
	sum, err := h.store.DashboardSummary(ctx, tenant)
	if err != nil {
		h.fail(c, err)
		return
	}
	if currency == "" && len(sum.Currencies) > 0 {
		currency = sum.Currencies[0].Currency
	}
	out := histogramJSON{Currency: currency, Currencies: currenciesOf(sum.Currencies), Bins: []binJSON{}}
	if currency != "" {
		hist, err := h.store.PredictedCLVHistogram(ctx, tenant, currency, bins)
		if err != nil {
			h.fail(c, err)
			return
		}
		out.Customers, out.BinWidth = hist.Customers, hist.Width
		if hist.Customers > 0 {
			mean := hist.Sum / float64(hist.Customers)
			out.Mean, out.Median, out.P99, out.Min, out.Max = &mean, &hist.P50, &hist.P99, &hist.Min, &hist.Max
		}
		for _, b := range hist.Bins {
			out.Bins = append(out.Bins, binJSON{Lo: b.Lo, Hi: b.Hi, Count: b.Count, Open: b.Open})
		}
	}
	c.JSON(http.StatusOK, out)
}

type cohortJSON struct {
	Month     string     `json:"month"` // YYYY-MM of the first purchase
	Customers int64      `json:"customers"`
	Active    []int64    `json:"active"`    // [k]: customers buying in the k-th month after the first (k = 0: all)
	Retention []*float64 `json:"retention"` // [k]: active[k] / customers; null for an empty cohort
}

func (h *Handler) cohorts(c *gin.Context) {
	start, last, months, err := h.monthWindow(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	table, err := h.store.CohortRetention(c.Request.Context(), tenantOf(c), start, months)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]cohortJSON, 0, len(table.Cohorts))
	for _, co := range table.Cohorts {
		cj := cohortJSON{Month: co.Month.Format(monthLayout), Customers: co.Customers, Active: co.Active,
			Retention: make([]*float64, len(co.Active))}
		if co.Customers > 0 {
			for k, n := range co.Active {
				share := float64(n) / float64(co.Customers)
				cj.Retention[k] = &share
			}
		}
		out = append(out, cj)
	}
	c.JSON(http.StatusOK, gin.H{"start": start.Format(monthLayout), "end": last.Format(monthLayout), "months": months,
		"partial_last_month": h.now().Before(last.AddDate(0, 1, 0)), "cohorts": out})
}

type atRiskJSON struct {
	ID            int64      `json:"id"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	ExternalID    string     `json:"external_id"`
	ZendeskUserID string     `json:"zendesk_user_id"`
	ZendeskURL    string     `json:"zendesk_url"` // the agent page of the customer's Zendesk user; "" without one
	Score         *scoreJSON `json:"score"`
}

func (h *Handler) atRisk(c *gin.Context) {
	q, err := queryParams(c, "tenant", "limit")
	if err != nil {
		h.fail(c, err)
		return
	}
	limit, err := intParam(q, "limit", defaultAtRisk, 1, store.MaxCustomerPage)
	if err != nil {
		h.fail(c, err)
		return
	}
	ctx, tenant := c.Request.Context(), tenantOf(c)
	tn, err := h.store.GetTenant(ctx, tenant)
	if err != nil {
		h.fail(c, err)
		return
	}
	// The first limit+1 of each tier by predicted CLV hold the first limit of both, and tell whether
	// there are more.
	var rows []store.CustomerRow
	for _, tier := range atRiskTiers {
		page, _, err := h.store.ListCustomers(ctx, tenant, store.CustomerFilter{Tier: tier, ChurnBand: atRiskBand,
			Sort: store.SortPredictedCLV, Limit: min(limit+1, store.MaxCustomerPage)})
		if err != nil {
			h.fail(c, err)
			return
		}
		rows = append(rows, page...)
	}
	slices.SortStableFunc(rows, func(a, b store.CustomerRow) int {
		return cmp.Or(cmp.Compare(b.Score.PredictedCLV, a.Score.PredictedCLV), cmp.Compare(b.ID, a.ID))
	})
	more := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	out := make([]atRiskJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, atRiskJSON{ID: r.ID, Email: r.Email, Name: r.Name, ExternalID: r.ExternalID, ZendeskUserID: r.ZendeskUserID,
			ZendeskURL: h.zendeskUserURL(tn.Zendesk.BaseURL, r.ZendeskUserID), Score: scoreOf(&r.Score)})
	}
	c.JSON(http.StatusOK, gin.H{"customers": out, "more": more, "tiers": atRiskTiers, "churn_band": atRiskBand,
		"zendesk_url": h.zendeskBase(tn.Zendesk.BaseURL)})
}

// LoginError is why VerifyToken refused a token: the status the API would answer it with (401, 403
// or 404) and a message safe to show.
type LoginError struct {
	Status  int
	Message string
	cause   error
}

func (e *LoginError) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

func (e *LoginError) Unwrap() error { return e.cause }

// VerifyToken checks an admin token exactly as the API's authentication does (signature, alg,
// iss, aud, exp, iat, jti, role and tenant) and, for an admin token, that its tenant exists.
func (h *Handler) VerifyToken(ctx context.Context, token string) (*Claims, error) {
	claims, err := h.verifier.verify(strings.TrimSpace(token))
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "token expired"
		}
		return nil, &LoginError{Status: http.StatusUnauthorized, Message: msg, cause: err}
	}
	if err := checkRole(claims.Role, claims.Tenant); err != nil {
		return nil, &LoginError{Status: http.StatusForbidden, Message: err.Error()}
	}
	if claims.Role == RoleAdmin {
		if err := h.store.CheckTenant(ctx, claims.Tenant); errors.Is(err, store.ErrNotFound) {
			return nil, &LoginError{Status: http.StatusNotFound, Message: "unknown tenant", cause: err}
		} else if err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// SessionToken issues a short-lived API token (at most 10 minutes) with role and tenant, for a
// caller in this process that has verified a session of that role and tenant (the dashboard calls
// the API with one per request). Its jti is sessionID, a dot and random hex, so the API's logs name
// the session.
func (h *Handler) SessionToken(role, tenant, sessionID string, ttl time.Duration) (string, error) {
	if err := checkRole(role, tenant); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > 10*time.Minute {
		return "", errors.New("session token: lifetime must be more than 0 and at most 10 minutes")
	}
	r := make([]byte, 8)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	now := h.now()
	claims := Claims{Tenant: tenant, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: sessionID + "." + hex.EncodeToString(r),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.verifier.key)
}

// DerivedKey returns a key for purpose derived from the token signing key (HMAC-SHA256 of the
// purpose), so that values signed with it (the dashboard's session cookies) are never valid tokens,
// and tokens never valid values of that purpose.
func (h *Handler) DerivedKey(purpose string) []byte {
	m := hmac.New(sha256.New, h.verifier.key)
	m.Write([]byte("clvd derived key: " + purpose))
	return m.Sum(nil)
}

// Now is the API's clock.
func (h *Handler) Now() time.Time { return h.now() }
