package sidebar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

// The data endpoint: GET {mount}/api/customer?user_id=ZENDESK_USER_ID&email=EMAIL, authenticated
// by the sidebar session (Authorization: Bearer). The customer is looked up by the Zendesk user id
// first, then by email. An unknown customer is a 200 {"found": false} (the page shows a friendly
// state; a 404 would also litter the browser console).

const (
	recentOrders   = 10  // rows of the recent-orders table
	recentTickets  = 5   // rows of the recent-tickets list
	historyOrders  = 200 // orders drawn in the chart, newest kept
	maxForecast    = 24  // expected purchases drawn ahead
	defaultHorizon = 365 // days, when the tenant's settings say nothing
)

type customerOut struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	Email         string    `json:"email"`
	ZendeskUserID string    `json:"zendesk_user_id"`
	CreatedAt     time.Time `json:"created_at"`
}

type scoreOut struct {
	Model             string     `json:"model"`
	Currency          string     `json:"currency"`
	HistoricMinor     int64      `json:"historic_minor"`
	Historic          string     `json:"historic"` // decimal string of HistoricMinor
	PredictedCLV      float64    `json:"predicted_clv"`
	SimpleCLV         float64    `json:"simple_clv"`
	PAlive            float64    `json:"p_alive"`
	ChurnProbability  float64    `json:"churn_probability"`
	ChurnBand         string     `json:"churn_band"`
	ChurnReasons      []string   `json:"churn_reasons"`
	Tier              string     `json:"tier"`
	Segment           string     `json:"segment"`
	ExpectedPurchases float64    `json:"expected_purchases"`
	ExpectedNextOrder *time.Time `json:"expected_next_order"`
	Orders            int        `json:"orders"`
	LastOrder         *time.Time `json:"last_order"`
	ScoredAt          time.Time  `json:"scored_at"`
	Current           bool       `json:"current"` // false while a data change is not scored yet
}

type orderOut struct {
	OrderID   string    `json:"order_id"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	Status    string    `json:"status"`
	Currency  string    `json:"currency"`
	Total     string    `json:"total"`
	Net       string    `json:"net"`
	NetMinor  int64     `json:"net_minor"`
}

type historyPoint struct {
	At     time.Time `json:"at"`
	Amount float64   `json:"amount"` // net, major units
	Status string    `json:"status"`
}

type forecastOut struct {
	HorizonDays        float64     `json:"horizon_days"`
	ExpectedPurchases  float64     `json:"expected_purchases"`
	ExpectedOrderValue float64     `json:"expected_order_value"` // major units, for the chart's height
	Points             []time.Time `json:"points"`               // expected purchases, drawn ahead
	Until              time.Time   `json:"until"`
}

type ticketOut struct {
	TicketID  string    `json:"ticket_id"`
	Subject   string    `json:"subject"`
	Status    string    `json:"status"`
	Priority  string    `json:"priority"`
	UpdatedAt time.Time `json:"updated_at"`
}

type customerAnswer struct {
	Found       bool           `json:"found"`
	Now         time.Time      `json:"now"`
	Customer    *customerOut   `json:"customer,omitempty"`
	Score       *scoreOut      `json:"score"`
	OrdersCount int            `json:"orders_count"`
	LastOrder   *time.Time     `json:"last_order"`
	Currency    string         `json:"currency"`
	Orders      []orderOut     `json:"orders"`
	History     []historyPoint `json:"history"`
	Forecast    *forecastOut   `json:"forecast"`
	Tickets     []ticketOut    `json:"tickets"`
	Outreach    []OutreachItem `json:"outreach"`
}

// OutreachItem is one past outreach to the customer as the sidebar lists it (from store.Outreach).
type OutreachItem struct {
	At      time.Time `json:"at"`
	Channel string    `json:"channel"` // what was done: "zendesk ticket #123", "webhook", both, or "" (dry run, capped)
	Kind    string    `json:"kind"`    // the rules that matched, e.g. "churn_high"
	Status  string    `json:"status"`  // pending, sent, failed, dry_run, capped
	Summary string    `json:"summary"` // the customer's standing then, and the error of a failed one
}

// recentOutreach is how many outreach records the sidebar lists.
const recentOutreach = 10

func outreachItem(o store.Outreach) OutreachItem {
	var channels []string
	if o.ZendeskTicketID != "" {
		channels = append(channels, "zendesk ticket #"+o.ZendeskTicketID)
	}
	if o.WebhookStatus != 0 {
		channels = append(channels, "webhook")
	}
	summary := fmt.Sprintf("churn %s (%.0f%%), tier %s", o.ChurnBand, 100*o.ChurnProbability, o.Tier)
	if o.PreviousBand != "" && o.PreviousBand != o.ChurnBand {
		summary += ", churn was " + o.PreviousBand
	}
	if o.PreviousTier != "" && o.PreviousTier != o.Tier {
		summary += ", tier was " + o.PreviousTier
	}
	if o.Status == store.OutreachFailed && o.Error != "" {
		summary += "; failed: " + o.Error
	}
	return OutreachItem{At: o.CreatedAt, Channel: strings.Join(channels, ", "), Kind: strings.Join(o.Rules, ", "),
		Status: o.Status, Summary: summary}
}

// customer answers the data endpoint.
func (h *Handler) customer(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	sess, ok := h.session(c)
	if !ok {
		return
	}
	q := c.Request.URL.Query()
	for name, vs := range q {
		if name != "user_id" && name != "email" {
			apiError(c, http.StatusBadRequest, "unknown query parameter "+name+": want user_id, email")
			return
		}
		if len(vs) > 1 {
			apiError(c, http.StatusBadRequest, "query parameter "+name+" given more than once")
			return
		}
	}
	userID, email := strings.TrimSpace(q.Get("user_id")), strings.TrimSpace(q.Get("email"))
	if userID == "" && email == "" {
		apiError(c, http.StatusBadRequest, "name the requester: user_id and/or email")
		return
	}
	if userID != "" && strings.Trim(userID, "0123456789") != "" {
		apiError(c, http.StatusBadRequest, "user_id must be a Zendesk user id (digits)")
		return
	}
	ctx, tenant := c.Request.Context(), sess.Tenant
	cust, err := h.findCustomer(ctx, tenant, userID, email)
	if errors.Is(err, store.ErrNotFound) {
		c.JSON(http.StatusOK, customerAnswer{Found: false, Now: h.now().UTC(), Orders: []orderOut{}, History: []historyPoint{},
			Tickets: []ticketOut{}, Outreach: []OutreachItem{}})
		return
	}
	if err != nil {
		h.internal(c, "find customer", tenant, err)
		return
	}
	ans, err := h.answer(ctx, tenant, cust)
	if err != nil {
		h.internal(c, "read customer", tenant, err)
		return
	}
	c.JSON(http.StatusOK, ans)
}

func (h *Handler) findCustomer(ctx context.Context, tenant, userID, email string) (*store.Customer, error) {
	if userID != "" {
		cust, err := h.store.CustomerByZendeskUser(ctx, tenant, userID)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return cust, err
		}
	}
	if email != "" {
		return h.store.CustomerByEmail(ctx, tenant, email)
	}
	return nil, store.ErrNotFound
}

func (h *Handler) answer(ctx context.Context, tenant string, cust *store.Customer) (*customerAnswer, error) {
	now := h.now().UTC()
	orders, err := h.store.CustomerOrders(ctx, tenant, cust.ID)
	if err != nil {
		return nil, err
	}
	tickets, err := h.store.CustomerTickets(ctx, tenant, cust.ID)
	if err != nil {
		return nil, err
	}
	ans := &customerAnswer{Found: true, Now: now, Customer: &customerOut{ID: cust.ID, Name: cust.Name, Email: cust.Email,
		ZendeskUserID: cust.ZendeskUserID, CreatedAt: cust.CreatedAt}, OrdersCount: len(orders),
		Orders: []orderOut{}, History: []historyPoint{}, Tickets: []ticketOut{}, Outreach: []OutreachItem{}}

	// Orders come oldest first. Counted orders are those not cancelled or refunded, as the scorer counts.
	counted := 0
	currencies := map[string]int{}
	for _, o := range orders {
		if o.Status != integrations.OrderCancelled && o.Status != integrations.OrderRefunded {
			counted++
		}
		currencies[o.Currency]++
	}
	ans.OrdersCount = counted
	if len(orders) > 0 {
		last := orders[len(orders)-1].CreatedAt
		ans.LastOrder = &last
	}
	if s := cust.Score; s != nil {
		ans.Currency = s.Currency
		reasons := s.ChurnReasons
		if reasons == nil {
			reasons = []string{}
		}
		ans.Score = &scoreOut{Model: s.Model, Currency: s.Currency, HistoricMinor: s.HistoricMinor,
			Historic: money.Format(s.HistoricMinor, s.Currency), PredictedCLV: s.PredictedCLV, SimpleCLV: s.SimpleCLV,
			PAlive: s.PAlive, ChurnProbability: s.ChurnProbability, ChurnBand: s.ChurnBand, ChurnReasons: reasons,
			Tier: s.Tier, Segment: s.Segment, ExpectedPurchases: s.ExpectedPurchases, ExpectedNextOrder: s.ExpectedNextOrder,
			Orders: s.Orders, LastOrder: s.LastOrder, ScoredAt: s.ScoredAt, Current: cust.ScoredVersion >= cust.DataVersion}
		ans.OrdersCount = s.Orders
		if s.LastOrder != nil {
			ans.LastOrder = s.LastOrder
		}
	} else {
		best := 0
		for cur, n := range currencies {
			if n > best || (n == best && cur < ans.Currency) {
				ans.Currency, best = cur, n
			}
		}
	}

	for i := len(orders) - 1; i >= 0 && len(ans.Orders) < recentOrders; i-- {
		o := orders[i]
		ans.Orders = append(ans.Orders, orderOut{OrderID: o.OrderID, Source: o.Source, CreatedAt: o.CreatedAt, Status: string(o.Status),
			Currency: o.Currency, Total: money.Format(o.TotalMinor, o.Currency), Net: money.Format(o.NetMinor, o.Currency), NetMinor: o.NetMinor})
	}
	hist := orders
	if len(hist) > historyOrders {
		hist = hist[len(hist)-historyOrders:]
	}
	var sum float64
	var n int
	for _, o := range hist {
		if ans.Currency != "" && o.Currency != ans.Currency {
			continue // the chart is in one currency; others would mislead
		}
		amt := money.ToMajor(o.NetMinor, o.Currency)
		ans.History = append(ans.History, historyPoint{At: o.CreatedAt, Amount: amt, Status: string(o.Status)})
		if o.NetMinor > 0 {
			sum += amt
			n++
		}
	}
	aov := 0.0
	if n > 0 {
		aov = sum / float64(n)
	}
	if s := cust.Score; s != nil {
		ans.Forecast = forecast(now, h.horizonDays(ctx, tenant), s, aov)
	}

	slices.SortFunc(tickets, func(a, b store.Ticket) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	for _, t := range tickets[:min(len(tickets), recentTickets)] {
		ans.Tickets = append(ans.Tickets, ticketOut{TicketID: t.TicketID, Subject: t.Subject, Status: t.Status,
			Priority: t.Priority, UpdatedAt: t.UpdatedAt})
	}
	outreach, _, err := h.store.ListOutreach(ctx, tenant, store.OutreachFilter{CustomerID: cust.ID, Limit: recentOutreach})
	if err != nil {
		return nil, err
	}
	for _, o := range outreach {
		ans.Outreach = append(ans.Outreach, outreachItem(o))
	}
	return ans, nil
}

// forecast spreads the expected purchases over the horizon: the first at the expected next order
// (or one mean gap from now), the rest one mean gap (horizon / expected purchases) apart. Heights
// use the predicted value per purchase, else the average past order.
func forecast(now time.Time, horizonDays float64, s *store.Score, aov float64) *forecastOut {
	f := &forecastOut{HorizonDays: horizonDays, ExpectedPurchases: s.ExpectedPurchases, Points: []time.Time{},
		Until: now.Add(time.Duration(horizonDays * float64(24*time.Hour)))}
	f.ExpectedOrderValue = aov
	if s.ExpectedPurchases > 0 && s.PredictedCLV > 0 {
		f.ExpectedOrderValue = s.PredictedCLV / s.ExpectedPurchases
	}
	count := int(math.Round(s.ExpectedPurchases))
	if count <= 0 && s.ExpectedPurchases >= 0.25 && s.ExpectedNextOrder != nil {
		count = 1 // a likely-enough single order: still worth drawing at its expected date
	}
	count = min(count, maxForecast)
	if count <= 0 {
		return f
	}
	gap := time.Duration(horizonDays / math.Max(s.ExpectedPurchases, 1) * float64(24*time.Hour))
	at := now.Add(gap)
	if s.ExpectedNextOrder != nil && s.ExpectedNextOrder.After(now) {
		at = *s.ExpectedNextOrder
	}
	for i := 0; i < count && !at.After(f.Until); i++ {
		f.Points = append(f.Points, at.UTC())
		at = at.Add(gap)
	}
	return f
}

// horizonDays reads horizon_days from the tenant's settings (the span predicted CLV and expected
// purchases cover); the scorer's default when unset or unreadable.
func (h *Handler) horizonDays(ctx context.Context, tenant string) float64 {
	raw, err := h.store.TenantSettings(ctx, tenant)
	if err != nil {
		return defaultHorizon
	}
	var s struct {
		HorizonDays *float64 `json:"horizon_days"`
	}
	if json.Unmarshal(raw, &s) != nil || s.HorizonDays == nil || *s.HorizonDays <= 0 || math.IsInf(*s.HorizonDays, 0) {
		return defaultHorizon
	}
	return *s.HorizonDays
}
