package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/store"
)

// outbound is the HTTP client for outreach webhooks.
func (h *Handlers) outbound() *http.Client {
	h.outboundOnce.Do(func() {
		if h.Outbound == nil {
			h.Outbound = safehttp.NewClient(h.AllowLocalTargets, 15*time.Second)
		}
	})
	return h.Outbound
}

// TypeOutreach is the retention outreach task of one customer.
const TypeOutreach = "customer:outreach"

// OutreachSettings are a tenant's retention outreach rules and actions (settings key "outreach").
// Fields left out keep their defaults (DefaultOutreach); "rules", when given, replaces the list.
//
//	"outreach": {
//	  "enabled": true,
//	  "dry_run": false,               // record who would be contacted, send nothing
//	  "cooldown_days": 30,            // at most one outreach per customer in this many days
//	  "max_per_day": 50,              // at most this many per tenant in 24 h (0: no limit); the rest are recorded as capped
//	  "rules": [{"name": "valuable_at_risk", "tiers": ["platinum", "gold"], "churn_bands": ["high"]},
//	            {"name": "tier_drop", "tier_drop": 2}],
//	  "zendesk_ticket": {"enabled": true, "group_id": "", "assignee_id": "", "priority": "high"},
//	  "webhook": {"url": ""}          // signed like the generic orders endpoint, with the tenant's orders secret
//	}
//
// A rule fires when a customer's new score meets all of its conditions: tiers and churn_bands hold
// for the new score but did not all hold for the previous one (the customer *turned* at risk), or
// tier_drop / churn_rise: the tier fell (churn band rose) by at least that many steps since the
// previous score.
type OutreachSettings struct {
	Enabled      bool            `json:"enabled"`
	DryRun       bool            `json:"dry_run"`
	CooldownDays int             `json:"cooldown_days"`
	MaxPerDay    int             `json:"max_per_day"`
	Rules        []OutreachRule  `json:"rules"`
	Ticket       OutreachTicket  `json:"zendesk_ticket"`
	Webhook      OutreachWebhook `json:"webhook"`
}

// OutreachRule is one trigger; see OutreachSettings.
type OutreachRule struct {
	Name       string   `json:"name"`
	Tiers      []string `json:"tiers,omitempty"`
	ChurnBands []string `json:"churn_bands,omitempty"`
	TierDrop   int      `json:"tier_drop,omitempty"`
	ChurnRise  int      `json:"churn_rise,omitempty"`
}

// OutreachTicket configures the Zendesk ticket opened for the retention team.
type OutreachTicket struct {
	Enabled    bool   `json:"enabled"`
	GroupID    string `json:"group_id"`
	AssigneeID string `json:"assignee_id"`
	Priority   string `json:"priority"`
}

// OutreachWebhook is an outbound webhook to an e-mail or marketing tool.
type OutreachWebhook struct {
	URL string `json:"url"`
}

// DefaultOutreach: valuable customers turning high-risk, or falling two tiers, get a ticket for the
// retention team, at most once in 30 days.
func DefaultOutreach() OutreachSettings {
	return OutreachSettings{
		Enabled: true, CooldownDays: 30, MaxPerDay: 50,
		Rules: []OutreachRule{
			{Name: "valuable_at_risk", Tiers: []string{"platinum", "gold"}, ChurnBands: []string{"high"}},
			{Name: "tier_drop", TierDrop: 2},
		},
		Ticket: OutreachTicket{Enabled: true, Priority: "high"},
	}
}

var (
	ruleNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)
	zendeskIDs      = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	// tierRank orders the ranked tiers; "new" customers are not ranked and never "drop".
	tierRank = map[string]int{"bronze": 1, "silver": 2, "gold": 3, "platinum": 4}
	bandRank = map[string]int{"low": 1, "medium": 2, "high": 3}
)

func (o *OutreachSettings) parse(raw json.RawMessage) error {
	// encoding/json decodes a list into the existing elements, which would merge the given rules
	// with the default ones: a given list replaces the defaults instead.
	defaults := o.Rules
	o.Rules = nil
	if err := strictUnmarshal(raw, o); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return err
	}
	if _, given := keys["rules"]; !given {
		o.Rules = defaults
	}
	if o.CooldownDays < 1 || o.CooldownDays > 3650 {
		return fmt.Errorf("cooldown_days %d: want 1 to 3650", o.CooldownDays)
	}
	if o.MaxPerDay < 0 {
		return fmt.Errorf("max_per_day %d: want 0 (no limit) or more", o.MaxPerDay)
	}
	seen := map[string]bool{}
	for i, r := range o.Rules {
		what := fmt.Sprintf("rules[%d]", i)
		if !ruleNamePattern.MatchString(r.Name) {
			return fmt.Errorf("%s: name %q: want 1 to 40 of a-z, 0-9 and _", what, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("%s: name %q used twice", what, r.Name)
		}
		seen[r.Name] = true
		if err := checkChoices("outreach."+what+".tiers", r.Tiers, tiers); err != nil {
			return err
		}
		if err := checkChoices("outreach."+what+".churn_bands", r.ChurnBands, bands); err != nil {
			return err
		}
		if r.TierDrop < 0 || r.TierDrop > 3 || r.ChurnRise < 0 || r.ChurnRise > 2 {
			return fmt.Errorf("%s: tier_drop is 0 to 3 and churn_rise 0 to 2", what)
		}
		if len(r.Tiers) == 0 && len(r.ChurnBands) == 0 && r.TierDrop == 0 && r.ChurnRise == 0 {
			return fmt.Errorf("%s (%s): no condition: give tiers, churn_bands, tier_drop or churn_rise", what, r.Name)
		}
	}
	t := o.Ticket
	for name, id := range map[string]string{"group_id": t.GroupID, "assignee_id": t.AssigneeID} {
		if id != "" && !zendeskIDs.MatchString(id) {
			return fmt.Errorf("zendesk_ticket.%s %q: want a Zendesk id (digits) or \"\"", name, id)
		}
	}
	if t.Priority != "" && !slices.Contains([]string{"low", "normal", "high", "urgent"}, t.Priority) {
		return fmt.Errorf("zendesk_ticket.priority %q: want low, normal, high, urgent or \"\"", t.Priority)
	}
	if o.Webhook.URL != "" {
		// Whether local targets are allowed is the service's setting: checked again on PUT and on send.
		if _, err := CheckOutreachWebhookURL(o.Webhook.URL, true); err != nil {
			return fmt.Errorf("webhook.url: %v", err)
		}
	}
	return nil
}

// CheckOutreachWebhookURL checks an outreach webhook URL as any outbound target (safehttp.CheckURL:
// https, no credentials, not a literal internal address unless allowLocal), except that a query is
// allowed: some tools authenticate with one. Names are checked again when connecting, so DNS cannot
// route the call to an internal host.
func CheckOutreachWebhookURL(raw string, allowLocal bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	bare := *u
	bare.RawQuery, bare.ForceQuery = "", false
	if _, err := safehttp.CheckURL(bare.String(), allowLocal); err != nil {
		return nil, err
	}
	return u, nil
}

func (r OutreachRule) level(s *store.Score) bool {
	return (len(r.Tiers) == 0 || slices.Contains(r.Tiers, s.Tier)) &&
		(len(r.ChurnBands) == 0 || slices.Contains(r.ChurnBands, s.ChurnBand))
}

func (r OutreachRule) transitional() bool { return r.TierDrop > 0 || r.ChurnRise > 0 }

// fires says whether the rule fires for a customer whose score went from prev (nil: first score)
// to cur.
func (r OutreachRule) fires(prev *store.Score, cur *store.Score) bool {
	if !r.level(cur) {
		return false
	}
	if !r.transitional() {
		return prev == nil || !r.level(prev)
	}
	if prev == nil {
		return false
	}
	if r.TierDrop > 0 {
		p, c := tierRank[prev.Tier], tierRank[cur.Tier]
		if p == 0 || c == 0 || p-c < r.TierDrop {
			return false
		}
	}
	if r.ChurnRise > 0 && bandRank[cur.ChurnBand]-bandRank[prev.ChurnBand] < r.ChurnRise {
		return false
	}
	return true
}

// Fired returns the names of the rules that fire for a score change from prev to cur.
func (o OutreachSettings) Fired(prev *store.Score, cur *store.Score) []string {
	if !o.Enabled {
		return nil
	}
	var out []string
	for _, r := range o.Rules {
		if r.fires(prev, cur) {
			out = append(out, r.Name)
		}
	}
	return out
}

// stillHold returns the named rules whose level conditions still hold for the customer's current
// score: a customer who ordered again between the rescore and the outreach task is left alone.
func (o OutreachSettings) stillHold(names []string, cur *store.Score) []string {
	var out []string
	for _, r := range o.Rules {
		if slices.Contains(names, r.Name) && r.level(cur) {
			out = append(out, r.Name)
		}
	}
	return out
}

type outreachPayload struct {
	TenantID     string   `json:"tenant_id"`
	CustomerID   int64    `json:"customer_id"`
	Rules        []string `json:"rules,omitempty"`
	PreviousTier string   `json:"previous_tier,omitempty"`
	PreviousBand string   `json:"previous_band,omitempty"`
	// OutreachID resumes a pending outreach (from the reconciler) instead of evaluating rules.
	OutreachID int64 `json:"outreach_id,omitempty"`
}

// outreachMaxRetry bounds one task's retries; the reconciler resumes a pending outreach after that,
// until outreachMaxAttempts failed attempts mark it failed for good.
const (
	outreachMaxRetry    = 12
	outreachMaxAttempts = 30
	// outreachResumeAfter is how old a pending outreach must be before the reconciler resumes it:
	// longer than a task's first retries, so it does not race them.
	outreachResumeAfter = 10 * time.Minute
)

// EnqueueOutreach queues a customer's outreach for rules that fired: at most one task per customer
// per day (a burst of rescores makes one), the claim in the store enforces the cooldown.
func (q *Queue) EnqueueOutreach(ctx context.Context, p outreachPayload) error {
	day := q.now().UTC().Format("2006-01-02")
	_, err := q.enqueue(ctx, TypeOutreach, queuePush, taskID("outreach", p.TenantID, strconv.FormatInt(p.CustomerID, 10), day), p,
		asynq.MaxRetry(outreachMaxRetry), asynq.Retention(24*time.Hour))
	return err
}

func (q *Queue) enqueueOutreachResume(ctx context.Context, o store.Outreach) error {
	_, err := q.enqueue(ctx, TypeOutreach, queuePush, taskID("outreach-resume", o.TenantID, strconv.FormatInt(o.ID, 10)),
		outreachPayload{TenantID: o.TenantID, CustomerID: o.CustomerID, OutreachID: o.ID}, asynq.MaxRetry(outreachMaxRetry))
	return err
}

// outreachArmedKey is the tenant state written when the tenant's first population is built.
const outreachArmedKey = "outreach_armed"

// armOutreach records, once, when the tenant's customers were first ranked. Scores before that are
// placeholders (no tiers to speak of), so a change from one of them is not a customer turning at
// risk: without this, connecting a shop with years of history would "discover" every valuable
// customer already at risk and open a ticket for each.
func (h *Handlers) armOutreach(ctx context.Context, tenantID string) error {
	_, _, err := h.store.GetTenantState(ctx, tenantID, outreachArmedKey)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return h.store.PutTenantState(ctx, tenantID, outreachArmedKey, json.RawMessage(`{"reason":"first population"}`))
}

// maybeOutreach queues an outreach when the score change from prev to cur fires a rule. Only changes
// from a score computed after the tenant's first population count (see armOutreach), and only when
// an action can be taken (or it is a dry run).
func (h *Handlers) maybeOutreach(ctx context.Context, tenant *store.Tenant, customerID int64, settings Settings, sc scoring, prev *store.Score, cur store.Score) error {
	if prev == nil || sc.outreachArmedAt.IsZero() || prev.ScoredAt.Before(sc.outreachArmedAt) {
		return nil
	}
	o := settings.Outreach
	hasZendesk := tenant.Zendesk.BaseURL != "" && tenant.Zendesk.Email != "" && tenant.Zendesk.APIToken != ""
	if !o.DryRun && !(o.Ticket.Enabled && hasZendesk) && o.Webhook.URL == "" {
		return nil // nothing could be sent: no Zendesk credentials for the ticket, no webhook
	}
	tenantID := tenant.ID
	fired := o.Fired(prev, &cur)
	if len(fired) == 0 {
		return nil
	}
	p := outreachPayload{TenantID: tenantID, CustomerID: customerID, Rules: fired}
	if prev != nil {
		p.PreviousTier, p.PreviousBand = prev.Tier, prev.ChurnBand
	}
	return h.queue.EnqueueOutreach(ctx, p)
}

func (h *Handlers) handleOutreach(ctx context.Context, t *asynq.Task) error {
	var p outreachPayload
	if err := decode(t, &p); err != nil {
		return err
	}
	// One outreach run per customer at a time: a second worker waits, then finds it done.
	held, release, ok, err := h.locks.hold(ctx, "outreach:"+p.TenantID+":"+strconv.FormatInt(p.CustomerID, 10), workLeaseTTL)
	if err != nil {
		return err
	}
	if !ok {
		return &delayedError{delay: 2 * time.Second, err: errors.New("another outreach for this customer is running")}
	}
	defer release()
	return leaseLost(held, h.outreach(held, p))
}

// outreach runs a customer's outreach once its lease is held.
func (h *Handlers) outreach(ctx context.Context, p outreachPayload) error {
	tenant, err := h.tenants.get(ctx, h.store, p.TenantID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tenant %s: %w: %w", p.TenantID, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	settings, err := ParseSettings(tenant.Settings)
	if err != nil {
		return fmt.Errorf("tenant %s settings: %v: %w", p.TenantID, err, asynq.SkipRetry)
	}
	cust, err := h.store.GetCustomer(ctx, p.TenantID, p.CustomerID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("customer %d of tenant %s: %w: %w", p.CustomerID, p.TenantID, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}

	var o *store.Outreach
	if p.OutreachID != 0 {
		if o, err = h.store.GetOutreach(ctx, p.TenantID, p.OutreachID); err != nil {
			return err
		}
	} else {
		if !settings.Outreach.Enabled || cust.Score == nil {
			return nil
		}
		rules := settings.Outreach.stillHold(p.Rules, cust.Score)
		if len(rules) == 0 {
			h.log.InfoContext(ctx, "outreach not needed any more", "tenant", p.TenantID, "customer", p.CustomerID, "rules", p.Rules)
			return nil
		}
		s := cust.Score
		o, err = h.store.ClaimOutreach(ctx, p.TenantID, store.OutreachClaim{
			Outreach: store.Outreach{CustomerID: p.CustomerID, Rules: rules, Reasons: s.ChurnReasons, Tier: s.Tier,
				ChurnBand: s.ChurnBand, PreviousTier: p.PreviousTier, PreviousBand: p.PreviousBand, PredictedCLV: s.PredictedCLV,
				HistoricMinor: s.HistoricMinor, Currency: s.Currency, ChurnProbability: s.ChurnProbability},
			DryRun: settings.Outreach.DryRun, Cooldown: time.Duration(settings.Outreach.CooldownDays) * 24 * time.Hour,
			MaxPerDay: settings.Outreach.MaxPerDay, Now: h.now(),
		})
		if err != nil {
			return err
		}
		if o == nil {
			return nil // contacted within the cooldown
		}
	}
	if o.Status != store.OutreachPending {
		h.log.InfoContext(ctx, "outreach recorded", "tenant", p.TenantID, "customer", p.CustomerID, "outreach", o.ID, "status", o.Status)
		return nil
	}
	return h.performOutreach(ctx, tenant, settings, cust, o)
}

// performOutreach runs a pending outreach's actions that are not done yet, recording each result as
// soon as it is known, so a retry (or the reconciler, after a crash) does only what is left. The
// ticket is created with an idempotency key derived from the record, so even a crash between
// Zendesk's answer and the record leaves one ticket.
func (h *Handlers) performOutreach(ctx context.Context, tenant *store.Tenant, settings Settings, cust *store.Customer, o *store.Outreach) error {
	cfg := settings.Outreach
	var failures []string
	retry := func(err error) error {
		if o.Attempts+1 >= outreachMaxAttempts {
			msg := fmt.Sprintf("gave up after %d attempts: %v", o.Attempts+1, err)
			if uerr := h.store.UpdateOutreach(ctx, tenant.ID, o.ID, store.OutreachProgress{Status: store.OutreachFailed, Error: msg}); uerr != nil {
				return uerr
			}
			return nil
		}
		if uerr := h.store.UpdateOutreach(ctx, tenant.ID, o.ID, store.OutreachProgress{Attempt: true, Error: err.Error()}); uerr != nil {
			return uerr
		}
		return classify(err)
	}

	if cfg.Ticket.Enabled && o.ZendeskTicketID == "" {
		hd, err := h.helpdeskClient(tenant)
		switch {
		case errors.Is(err, ErrNoHelpdesk):
			failures = append(failures, "no Zendesk API credentials: the ticket could not be opened")
		case err != nil:
			return err
		default:
			id, err := hd.CreateTicket(ctx, outreachTicket(settings, cust, o), "clvd-outreach-"+tenant.ID+"-"+strconv.FormatInt(o.ID, 10))
			switch {
			case err == nil:
				if err := h.store.UpdateOutreach(ctx, tenant.ID, o.ID, store.OutreachProgress{ZendeskTicketID: id}); err != nil {
					return err
				}
				o.ZendeskTicketID = id
			case permanentZendeskError(err):
				failures = append(failures, "opening the Zendesk ticket: "+err.Error())
			case errors.Is(err, ErrHelpdeskDown):
				return err // not even tried: waiting for the helpdesk is not an attempt
			default:
				return retry(fmt.Errorf("opening the Zendesk ticket: %w", err))
			}
		}
	}

	if cfg.Webhook.URL != "" && (o.WebhookStatus < 200 || o.WebhookStatus > 299) {
		status, err := h.sendOutreachWebhook(ctx, tenant, cfg.Webhook.URL, cust, o)
		if status != 0 {
			if uerr := h.store.UpdateOutreach(ctx, tenant.ID, o.ID, store.OutreachProgress{WebhookStatus: status}); uerr != nil {
				return uerr
			}
		}
		var perm *permanentError
		switch {
		case err == nil:
		case errors.As(err, &perm):
			failures = append(failures, "outreach webhook: "+err.Error())
		default:
			return retry(fmt.Errorf("outreach webhook: %w", err))
		}
	}

	if !cfg.Ticket.Enabled && cfg.Webhook.URL == "" {
		failures = append(failures, "no outreach action configured: enable outreach.zendesk_ticket or set outreach.webhook.url")
	}
	final := store.OutreachProgress{Status: store.OutreachSent}
	if len(failures) > 0 {
		final = store.OutreachProgress{Status: store.OutreachFailed, Error: strings.Join(failures, "; ")}
		h.log.WarnContext(ctx, "outreach failed", "tenant", tenant.ID, "customer", cust.ID, "outreach", o.ID, "error", final.Error)
	}
	return h.store.UpdateOutreach(ctx, tenant.ID, o.ID, final)
}

// permanentZendeskError: retrying cannot help (bad credentials, a request Zendesk refuses).
func permanentZendeskError(err error) bool {
	var api *zendesk.APIError
	if errors.As(err, &api) {
		return api.Status >= 400 && api.Status < 500 && api.Status != http.StatusConflict && api.Status != http.StatusRequestTimeout
	}
	return errors.Is(err, zendesk.ErrUnauthorized) || errors.Is(err, zendesk.ErrInvalidInput) || errors.Is(err, zendesk.ErrNotFound)
}

// permanentError is a failure retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// majorAmount formats a major-unit amount in its currency.
func majorAmount(v float64, currency string) string {
	return minorAmount(int64(math.Round(v*math.Pow10(money.Exponent(currency)))), currency)
}

func minorAmount(minor int64, currency string) string {
	return currency + " " + money.Format(minor, currency)
}

func customerLabel(c *store.Customer) string {
	switch {
	case c.Name != "" && c.Email != "":
		return c.Name + " <" + c.Email + ">"
	case c.Email != "":
		return c.Email
	case c.Name != "":
		return c.Name
	}
	return "customer " + strconv.FormatInt(c.ID, 10)
}

// outreachTicket is the ticket for the retention team. It is built from the outreach record only,
// so every retry sends the same body (Zendesk's idempotency key requires it).
func outreachTicket(settings Settings, c *store.Customer, o *store.Outreach) zendesk.NewTicket {
	who := customerLabel(c)
	var b strings.Builder
	fmt.Fprintf(&b, "clvd flagged this customer for retention outreach.\n\n")
	fmt.Fprintf(&b, "Customer: %s\n", who)
	tier := o.Tier
	if o.PreviousTier != "" && o.PreviousTier != o.Tier {
		tier += " (was " + o.PreviousTier + ")"
	}
	fmt.Fprintf(&b, "Value tier: %s\n", tier)
	fmt.Fprintf(&b, "Predicted value (next %.0f days): %s\n", settings.Scoring.Horizon.Hours()/24, majorAmount(o.PredictedCLV, o.Currency))
	fmt.Fprintf(&b, "Spent so far: %s\n", minorAmount(o.HistoricMinor, o.Currency))
	band := o.ChurnBand
	if o.PreviousBand != "" && o.PreviousBand != o.ChurnBand {
		band += " (was " + o.PreviousBand + ")"
	}
	fmt.Fprintf(&b, "Churn risk: %s, %.0f%%\n", band, 100*o.ChurnProbability)
	if len(o.Reasons) > 0 {
		fmt.Fprintf(&b, "Why: %s\n", strings.Join(o.Reasons, "; "))
	}
	fmt.Fprintf(&b, "Rules: %s\n\n", strings.Join(o.Rules, ", "))
	b.WriteString("This is an internal note: the customer has not been contacted.")
	t := zendesk.NewTicket{
		Subject:    fmt.Sprintf("Retention: %s (%s, %s churn risk)", who, o.Tier, o.ChurnBand),
		Body:       b.String(),
		Tags:       []string{settings.TagPrefix + "retention_outreach"},
		GroupID:    settings.Outreach.Ticket.GroupID,
		AssigneeID: settings.Outreach.Ticket.AssigneeID,
		Priority:   settings.Outreach.Ticket.Priority,
	}
	switch {
	case c.ZendeskUserID != "":
		t.RequesterID = c.ZendeskUserID
	case c.Email != "":
		t.RequesterEmail, t.RequesterName = c.Email, c.Name
	}
	return t
}

// OutreachEvent is the body of the outbound outreach webhook.
type OutreachEvent struct {
	Type      string    `json:"type"` // "clvd.retention_outreach"
	ID        string    `json:"id"`   // stable across retries: deduplicate on it
	CreatedAt time.Time `json:"created_at"`
	TenantID  string    `json:"tenant_id"`
	Customer  struct {
		ID            int64  `json:"id"`
		Email         string `json:"email,omitempty"`
		Name          string `json:"name,omitempty"`
		ExternalID    string `json:"external_id,omitempty"`
		ZendeskUserID string `json:"zendesk_user_id,omitempty"`
	} `json:"customer"`
	Rules            []string `json:"rules"`
	Reasons          []string `json:"reasons"`
	Tier             string   `json:"tier"`
	PreviousTier     string   `json:"previous_tier,omitempty"`
	ChurnBand        string   `json:"churn_band"`
	PreviousBand     string   `json:"previous_band,omitempty"`
	ChurnProbability float64  `json:"churn_probability"`
	PredictedCLV     float64  `json:"predicted_clv"`
	HistoricCLV      string   `json:"historic_clv"` // decimal string, like prices in order webhooks
	Currency         string   `json:"currency"`
	ZendeskTicketID  string   `json:"zendesk_ticket_id,omitempty"`
}

// Headers of the outbound outreach webhook, besides the orders signature headers.
const (
	HeaderOutreachEvent = "X-CLV-Event"    // "retention_outreach"
	HeaderOutreachID    = "X-CLV-Event-Id" // OutreachEvent.ID
)

// sendOutreachWebhook POSTs the outreach event, signed with the tenant's orders secret exactly as
// deliveries to /webhooks/TENANT/orders are (X-CLV-Timestamp, X-CLV-Signature), so the receiving tool
// verifies it with the same code. It returns the HTTP status (0 if none); 2xx is success, other 4xx
// except 408 and 429 are permanent failures.
func (h *Handlers) sendOutreachWebhook(ctx context.Context, tenant *store.Tenant, rawURL string, c *store.Customer, o *store.Outreach) (int, error) {
	if tenant.OrdersSecret == "" {
		return 0, &permanentError{errors.New("the tenant has no orders secret to sign the webhook with")}
	}
	u, err := CheckOutreachWebhookURL(rawURL, h.AllowLocalTargets)
	if err != nil {
		return 0, &permanentError{err}
	}
	ev := OutreachEvent{Type: "clvd.retention_outreach", ID: "outreach-" + tenant.ID + "-" + strconv.FormatInt(o.ID, 10),
		CreatedAt: o.CreatedAt, TenantID: tenant.ID, Rules: o.Rules, Reasons: o.Reasons, Tier: o.Tier, PreviousTier: o.PreviousTier,
		ChurnBand: o.ChurnBand, PreviousBand: o.PreviousBand, ChurnProbability: o.ChurnProbability, PredictedCLV: o.PredictedCLV,
		HistoricCLV: money.Format(o.HistoricMinor, o.Currency), Currency: o.Currency, ZendeskTicketID: o.ZendeskTicketID}
	ev.Customer.ID, ev.Customer.Email, ev.Customer.Name = c.ID, c.Email, c.Name
	ev.Customer.ExternalID, ev.Customer.ZendeskUserID = c.ExternalID, c.ZendeskUserID
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, &permanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{err}
	}
	ts := strconv.FormatInt(h.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clvd-outreach/1")
	req.Header.Set(orders.HeaderTimestamp, ts)
	req.Header.Set(orders.HeaderSignature, orders.Sign([]byte(tenant.OrdersSecret), ts, body))
	req.Header.Set(HeaderOutreachEvent, "retention_outreach")
	req.Header.Set(HeaderOutreachID, ev.ID)
	req.Header.Set("Idempotency-Key", ev.ID)
	resp, err := h.outbound().Do(req)
	if errors.Is(err, safehttp.ErrForbiddenTarget) {
		return 0, &permanentError{err} // the name resolved to an internal address
	}
	if err != nil {
		return 0, err // network trouble or timeout: retried
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return code, nil
	case code == http.StatusTooManyRequests:
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return code, &delayedError{delay: time.Duration(max(wait, 1)) * time.Second, err: fmt.Errorf("%s answered 429", u.Redacted())}
	case code == http.StatusRequestTimeout || code >= 500:
		return code, fmt.Errorf("%s answered %d", u.Redacted(), code)
	default:
		return code, &permanentError{fmt.Errorf("%s answered %d", u.Redacted(), code)}
	}
}
