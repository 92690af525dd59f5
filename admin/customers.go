package admin

import (
	"encoding/csv"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

// Filter values the customer list accepts (the scorer's vocabulary, see clv.Population).
var (
	tiers      = []string{"platinum", "gold", "silver", "bronze", "new"}
	segments   = []string{"champions", "loyal", "potential_loyalist", "new", "at_risk", "cant_lose", "hibernating", "lost"}
	churnBands = []string{"low", "medium", "high"}
	sorts      = []string{store.SortPredictedCLV, store.SortHistoric, store.SortChurn, store.SortLastOrder}
)

const defaultCustomerPage = 50

type scoreJSON struct {
	Model             string     `json:"model"`
	Currency          string     `json:"currency"`
	HistoricMinor     int64      `json:"historic_minor"` // exact net spend, minor units of currency
	Historic          string     `json:"historic"`       // the same as a decimal string
	SimpleCLV         float64    `json:"simple_clv"`     // major units of currency
	PredictedCLV      float64    `json:"predicted_clv"`  // major units of currency
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
	Tags              []string   `json:"tags"`
	ScoredAt          time.Time  `json:"scored_at"`
}

func scoreOf(s *store.Score) *scoreJSON {
	if s == nil {
		return nil
	}
	reasons, tags := s.ChurnReasons, s.Tags
	if reasons == nil {
		reasons = []string{}
	}
	if tags == nil {
		tags = []string{}
	}
	return &scoreJSON{Model: s.Model, Currency: s.Currency, HistoricMinor: s.HistoricMinor,
		Historic: money.Format(s.HistoricMinor, s.Currency), SimpleCLV: s.SimpleCLV, PredictedCLV: s.PredictedCLV,
		PAlive: s.PAlive, ChurnProbability: s.ChurnProbability, ChurnBand: s.ChurnBand, ChurnReasons: reasons,
		Tier: s.Tier, Segment: s.Segment, ExpectedPurchases: s.ExpectedPurchases, ExpectedNextOrder: s.ExpectedNextOrder,
		Orders: s.Orders, LastOrder: s.LastOrder, Tags: tags, ScoredAt: s.ScoredAt}
}

type customerJSON struct {
	ID            int64     `json:"id"`
	Email         string    `json:"email"`
	ExternalID    string    `json:"external_id"`
	ZendeskUserID string    `json:"zendesk_user_id"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	// ScoreCurrent is false while a change to the customer's data has not been scored yet.
	ScoreCurrent bool `json:"score_current"`
}

type orderJSON struct {
	Source        string    `json:"source"`
	OrderID       string    `json:"order_id"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Status        string    `json:"status"`
	Currency      string    `json:"currency"`
	TotalMinor    int64     `json:"total_minor"`
	Total         string    `json:"total"`
	RefundedMinor int64     `json:"refunded_minor"`
	Refunded      string    `json:"refunded"`
	NetMinor      int64     `json:"net_minor"` // 0 when cancelled or refunded, else total − refunds (not below 0)
	Net           string    `json:"net"`
}

type ticketJSON struct {
	Source       string     `json:"source"`
	TicketID     string     `json:"ticket_id"`
	RequesterID  string     `json:"requester_id"`
	Subject      string     `json:"subject"`
	Status       string     `json:"status"`
	Priority     string     `json:"priority"`
	Satisfaction string     `json:"satisfaction"`
	CreatedAt    *time.Time `json:"created_at"` // null when unknown
	UpdatedAt    time.Time  `json:"updated_at"`
}

// getCustomer answers GET /customers/:key, key being a customer id or an email address.
func (h *Handler) getCustomer(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	ctx, tenant, key := c.Request.Context(), tenantOf(c), strings.TrimSpace(c.Param("key"))
	notFound := &apiError{kind: errNotFound, msg: "customer not found"}
	var cust *store.Customer
	var err error
	switch {
	case key != "" && strings.Trim(key, "0123456789") == "":
		id, perr := strconv.ParseInt(key, 10, 64)
		if perr != nil || id <= 0 {
			h.fail(c, notFound)
			return
		}
		cust, err = h.store.GetCustomer(ctx, tenant, id)
	case strings.Contains(key, "@"):
		cust, err = h.store.CustomerByEmail(ctx, tenant, key)
	default:
		h.fail(c, badRequest("customer %q: want a numeric customer id or an email address", key))
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, notFound)
		return
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	orders, err := h.store.CustomerOrders(ctx, tenant, cust.ID)
	if err != nil {
		h.fail(c, err)
		return
	}
	tickets, err := h.store.CustomerTickets(ctx, tenant, cust.ID)
	if err != nil {
		h.fail(c, err)
		return
	}
	outOrders := make([]orderJSON, 0, len(orders))
	for _, o := range orders {
		outOrders = append(outOrders, orderJSON{Source: o.Source, OrderID: o.OrderID, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
			Status: string(o.Status), Currency: o.Currency, TotalMinor: o.TotalMinor, Total: money.Format(o.TotalMinor, o.Currency),
			RefundedMinor: o.RefundedMinor, Refunded: money.Format(o.RefundedMinor, o.Currency),
			NetMinor: o.NetMinor, Net: money.Format(o.NetMinor, o.Currency)})
	}
	outTickets := make([]ticketJSON, 0, len(tickets))
	for _, t := range tickets {
		tj := ticketJSON{Source: t.Source, TicketID: t.TicketID, RequesterID: t.RequesterID, Subject: t.Subject, Status: t.Status,
			Priority: t.Priority, Satisfaction: t.Satisfaction, UpdatedAt: t.UpdatedAt}
		if !t.CreatedAt.IsZero() {
			created := t.CreatedAt
			tj.CreatedAt = &created
		}
		outTickets = append(outTickets, tj)
	}
	c.JSON(http.StatusOK, gin.H{
		"customer": customerJSON{ID: cust.ID, Email: cust.Email, ExternalID: cust.ExternalID, ZendeskUserID: cust.ZendeskUserID,
			Name: cust.Name, CreatedAt: cust.CreatedAt, ScoreCurrent: cust.Score != nil && cust.ScoredVersion >= cust.DataVersion},
		"score":   scoreOf(cust.Score),
		"orders":  outOrders,
		"tickets": outTickets,
	})
}

type customerRowJSON struct {
	ID            int64      `json:"id"`
	Email         string     `json:"email"`
	ExternalID    string     `json:"external_id"`
	ZendeskUserID string     `json:"zendesk_user_id"`
	Name          string     `json:"name"`
	Score         *scoreJSON `json:"score"`
}

// oneOf checks a filter value against its vocabulary ("" = no filter).
func oneOf(name, v string, allowed []string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return badRequest("%s %q: want one of %s", name, v, strings.Join(allowed, ", "))
}

// wantsCSV decides the list's format: ?format= wins, else the Accept header's preference between
// application/json (the default) and text/csv.
func wantsCSV(c *gin.Context, format string) (bool, error) {
	switch format {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, badRequest("format %q: want json or csv", format)
	}
	best, bestQ := "", 0.0 // the preferred of the two; the earlier one on a tie
	for _, part := range strings.Split(c.GetHeader("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if (mt == "text/csv" || mt == "application/json") && q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best == "text/csv", nil
}

// listCustomers answers GET /customers: scored customers, filtered, sorted and keyset-paginated, as
// JSON pages or as one streamed CSV.
func (h *Handler) listCustomers(c *gin.Context) {
	q, err := queryParams(c, "tenant", "tier", "segment", "churn_band", "sort", "order", "limit", "cursor", "format")
	if err != nil {
		h.fail(c, err)
		return
	}
	f := store.CustomerFilter{Tier: q.Get("tier"), Segment: q.Get("segment"), ChurnBand: q.Get("churn_band"),
		Sort: q.Get("sort"), Cursor: q.Get("cursor")}
	if f.Sort == "" {
		f.Sort = store.SortPredictedCLV
	}
	for _, chk := range []error{oneOf("tier", f.Tier, tiers), oneOf("segment", f.Segment, segments),
		oneOf("churn_band", f.ChurnBand, churnBands), oneOf("sort", f.Sort, sorts)} {
		if chk != nil {
			h.fail(c, chk)
			return
		}
	}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		f.Asc = true
	default:
		h.fail(c, badRequest("order %q: want asc or desc", q.Get("order")))
		return
	}
	asCSV, err := wantsCSV(c, q.Get("format"))
	if err != nil {
		h.fail(c, err)
		return
	}
	limit := 0 // CSV: no limit unless asked
	if !asCSV {
		limit = defaultCustomerPage
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (!asCSV && n > store.MaxCustomerPage) {
			if asCSV {
				h.fail(c, badRequest("limit %q: want a positive number of rows", v))
			} else {
				h.fail(c, badRequest("limit %q: want 1 to %d", v, store.MaxCustomerPage))
			}
			return
		}
		limit = n
	}
	if asCSV {
		h.exportCustomers(c, f, limit)
		return
	}
	f.Limit = limit
	rows, next, err := h.store.ListCustomers(c.Request.Context(), tenantOf(c), f)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]customerRowJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, customerRowJSON{ID: r.ID, Email: r.Email, ExternalID: r.ExternalID, ZendeskUserID: r.ZendeskUserID,
			Name: r.Name, Score: scoreOf(&r.Score)})
	}
	var nextCursor *string
	if next != "" {
		nextCursor = &next
	}
	order := "desc"
	if f.Asc {
		order = "asc"
	}
	c.JSON(http.StatusOK, gin.H{"customers": out, "next_cursor": nextCursor, "sort": f.Sort, "order": order, "limit": limit})
}

var csvHeader = []string{"id", "email", "name", "external_id", "zendesk_user_id", "tier", "segment", "churn_band",
	"churn_probability", "p_alive", "predicted_clv", "simple_clv", "currency", "historic_minor", "historic", "orders",
	"last_order", "expected_next_order", "expected_purchases", "model", "scored_at"}

// csvText neutralises a text cell a spreadsheet would run as a formula (CSV injection): names and
// emails come from shops and helpdesks, not from us.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func csvFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func csvRecord(r store.CustomerRow) []string {
	s := r.Score
	return []string{strconv.FormatInt(r.ID, 10), csvText(r.Email), csvText(r.Name), csvText(r.ExternalID), csvText(r.ZendeskUserID),
		s.Tier, s.Segment, s.ChurnBand, csvFloat(s.ChurnProbability), csvFloat(s.PAlive), csvFloat(s.PredictedCLV),
		csvFloat(s.SimpleCLV), s.Currency, strconv.FormatInt(s.HistoricMinor, 10), money.Format(s.HistoricMinor, s.Currency),
		strconv.Itoa(s.Orders), csvTime(s.LastOrder), csvTime(s.ExpectedNextOrder), csvFloat(s.ExpectedPurchases), s.Model,
		csvTime(&s.ScoredAt)}
}

// exportCustomers streams every row the filter selects (from f.Cursor, at most limit rows when
// limit > 0) as CSV, reading store.MaxCustomerPage rows at a time: memory stays flat whatever the
// tenant's size. An error before the first byte is an ordinary error answer; after it, the
// connection is cut, so the client sees a failed transfer rather than a short file that looks whole.
func (h *Handler) exportCustomers(c *gin.Context, f store.CustomerFilter, limit int) {
	ctx, tenant := c.Request.Context(), tenantOf(c)
	remaining := limit // 0: unlimited
	page := func() ([]store.CustomerRow, string, error) {
		f.Limit = store.MaxCustomerPage
		if limit > 0 {
			f.Limit = min(f.Limit, remaining)
		}
		return h.store.ListCustomers(ctx, tenant, f)
	}
	rows, next, err := page()
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="customers-`+tenant+`.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write(csvHeader)
	for {
		for _, r := range rows {
			_ = w.Write(csvRecord(r))
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return // the client went away
		}
		c.Writer.Flush()
		if limit > 0 {
			remaining -= len(rows)
		}
		if next == "" || (limit > 0 && remaining <= 0) {
			return
		}
		f.Cursor = next
		if rows, next, err = page(); err != nil {
			h.log.ErrorContext(ctx, "customer export failed mid-stream; cutting the connection", "tenant", tenant, "error", err)
			abortConnection(c)
			return
		}
	}
}

// abortConnection closes the client connection without ending the response properly (no final
// chunk), so a half-sent body is seen as broken. Gin's recovery swallows http.ErrAbortHandler, so
// the connection is hijacked from the server's own writer underneath Gin's.
func abortConnection(c *gin.Context) {
	var rw http.ResponseWriter = c.Writer
	for {
		u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		rw = u.Unwrap()
	}
	if hj, ok := rw.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			c.Abort()
			return
		}
	}
	// Not hijackable (HTTP/2, tests with a recorder): let net/http reset the stream if nothing
	// recovers the panic on the way.
	c.Abort()
	panic(http.ErrAbortHandler)
}
