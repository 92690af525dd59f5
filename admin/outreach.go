package admin

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
)

var outreachStatuses = []string{store.OutreachPending, store.OutreachSent, store.OutreachFailed, store.OutreachDryRun, store.OutreachCapped}

const maxOutreachPage = 1000

type outreachJSON struct {
	ID               int64      `json:"id"`
	CustomerID       int64      `json:"customer_id"`
	Email            string     `json:"email"`
	Name             string     `json:"name"`
	Status           string     `json:"status"` // pending, sent, failed, dry_run, capped
	DryRun           bool       `json:"dry_run"`
	Rules            []string   `json:"rules"`
	Reasons          []string   `json:"reasons"`
	Tier             string     `json:"tier"`
	PreviousTier     string     `json:"previous_tier"`
	ChurnBand        string     `json:"churn_band"`
	PreviousBand     string     `json:"previous_band"`
	ChurnProbability float64    `json:"churn_probability"`
	PredictedCLV     float64    `json:"predicted_clv"`
	HistoricMinor    int64      `json:"historic_minor"`
	Historic         string     `json:"historic"`
	Currency         string     `json:"currency"`
	ZendeskTicketID  string     `json:"zendesk_ticket_id"`
	WebhookStatus    int        `json:"webhook_status"`
	Attempts         int        `json:"attempts"`
	Error            string     `json:"error"`
	CreatedAt        time.Time  `json:"created_at"`
	CompletedAt      *time.Time `json:"completed_at"`
}

func outreachOf(o store.Outreach) outreachJSON {
	rules, reasons := o.Rules, o.Reasons
	if rules == nil {
		rules = []string{}
	}
	if reasons == nil {
		reasons = []string{}
	}
	return outreachJSON{ID: o.ID, CustomerID: o.CustomerID, Email: o.Email, Name: o.Name, Status: o.Status,
		DryRun: o.Status == store.OutreachDryRun, Rules: rules, Reasons: reasons, Tier: o.Tier, PreviousTier: o.PreviousTier,
		ChurnBand: o.ChurnBand, PreviousBand: o.PreviousBand, ChurnProbability: o.ChurnProbability, PredictedCLV: o.PredictedCLV,
		HistoricMinor: o.HistoricMinor, Historic: money.Format(o.HistoricMinor, o.Currency), Currency: o.Currency,
		ZendeskTicketID: o.ZendeskTicketID, WebhookStatus: o.WebhookStatus, Attempts: o.Attempts, Error: o.Error,
		CreatedAt: o.CreatedAt, CompletedAt: o.CompletedAt}
}

// listOutreach answers GET /outreach: the tenant's retention outreach, newest first, filtered by
// ?status= and ?customer_id=, keyset-paginated (?limit=, ?cursor=), as JSON or CSV. With dry_run
// on in the settings, the dry_run records are who would have been contacted.
func (h *Handler) listOutreach(c *gin.Context) {
	q, err := queryParams(c, "tenant", "status", "customer_id", "limit", "cursor", "format")
	if err != nil {
		h.fail(c, err)
		return
	}
	f := store.OutreachFilter{Status: q.Get("status"), Cursor: q.Get("cursor"), Limit: 50}
	if err := oneOf("status", f.Status, outreachStatuses); err != nil {
		h.fail(c, err)
		return
	}
	if v := q.Get("customer_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			h.fail(c, badRequest("customer_id %q: want a customer id", v))
			return
		}
		f.CustomerID = id
	}
	asCSV, err := wantsCSV(c, q.Get("format"))
	if err != nil {
		h.fail(c, err)
		return
	}
	if asCSV {
		f.Limit = maxOutreachPage
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxOutreachPage {
			h.fail(c, badRequest("limit %q: want 1 to %d", v, maxOutreachPage))
			return
		}
		f.Limit = n
	}
	ctx := c.Request.Context()
	if !asCSV {
		rows, next, err := h.store.ListOutreach(ctx, tenantOf(c), f)
		if err != nil {
			h.fail(c, err)
			return
		}
		out := make([]outreachJSON, 0, len(rows))
		for _, o := range rows {
			out = append(out, outreachOf(o))
		}
		var nextCursor *string
		if next != "" {
			nextCursor = &next
		}
		c.JSON(http.StatusOK, gin.H{"outreach": out, "next_cursor": nextCursor, "limit": f.Limit})
		return
	}
	// CSV: every matching record (pages read one after another), or the first ?limit= ones.
	limit := -1
	if q.Get("limit") != "" {
		limit = f.Limit
	}
	first, next, err := h.store.ListOutreach(ctx, tenantOf(c), f)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="outreach.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"id", "created_at", "status", "customer_id", "email", "name", "rules", "tier", "previous_tier",
		"churn_band", "previous_band", "churn_probability", "predicted_clv", "historic", "currency", "reasons",
		"zendesk_ticket_id", "webhook_status", "attempts", "error", "completed_at"})
	rows, written := first, 0
	for {
		for _, o := range rows {
			if limit >= 0 && written >= limit {
				w.Flush()
				return
			}
			_ = w.Write([]string{strconv.FormatInt(o.ID, 10), o.CreatedAt.UTC().Format(time.RFC3339), o.Status,
				strconv.FormatInt(o.CustomerID, 10), csvText(o.Email), csvText(o.Name), strings.Join(o.Rules, " "), o.Tier,
				o.PreviousTier, o.ChurnBand, o.PreviousBand, csvFloat(o.ChurnProbability), csvFloat(o.PredictedCLV),
				money.Format(o.HistoricMinor, o.Currency), o.Currency, csvText(strings.Join(o.Reasons, "; ")), o.ZendeskTicketID,
				strconv.Itoa(o.WebhookStatus), strconv.Itoa(o.Attempts), csvText(o.Error), csvTime(o.CompletedAt)})
			written++
		}
		if next == "" || limit >= 0 {
			break
		}
		f.Cursor = next
		if rows, next, err = h.store.ListOutreach(ctx, tenantOf(c), f); err != nil {
			// The header is sent: the truncation can only be reported in the log.
			h.log.ErrorContext(ctx, "outreach CSV export cut short", "tenant", tenantOf(c), "error", err)
			break
		}
	}
	w.Flush()
}
