package admin

// Connecting a Zendesk account to a tenant. InstallZendesk and UninstallZendesk are the one
// implementation behind both `clvd tenant install-zendesk` / `uninstall-zendesk` and the routes
//
//	GET  /tenants/:id/zendesk            the recorded installation, and which credentials are stored
//	POST /tenants/:id/zendesk/install    {"subdomain" | "zendesk_url", "email", "api_token", "triggers"}
//	POST /tenants/:id/zendesk/uninstall  {"remove_user_fields"} (or no body)
//
// They check the account's URL (safehttp: https and a public address unless local targets are
// allowed), run zendesk.Install / zendesk.Uninstall (idempotent: a second run creates nothing
// twice), store the credentials and the webhooks' signing secrets on the tenant (the store
// encrypts them) and record the installation, ids only, under the tenant state key
// ZendeskInstallStateKey. Every error they return has the API token redacted.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/store"
)

// ZendeskStore is what installing and uninstalling Zendesk read and write; *store.DB implements it.
type ZendeskStore interface {
	GetTenant(ctx context.Context, id string) (*store.Tenant, error)
	UpdateTenant(ctx context.Context, t *store.Tenant) error
	GetTenantState(ctx context.Context, tenantID, key string) (json.RawMessage, time.Time, error)
	PutTenantState(ctx context.Context, tenantID, key string, value json.RawMessage) error
}

var _ ZendeskStore = (*store.DB)(nil)

// ZendeskInstallStateKey is the tenant state key under which an install records what it set up (ids
// only; the secrets live, encrypted, on the tenant).
const ZendeskInstallStateKey = "zendesk_install"

// ZendeskInstallState is the recorded installation.
type ZendeskInstallState struct {
	zendesk.Installation
	ZendeskURL       string     `json:"zendesk_url"`
	InstalledByEmail string     `json:"installed_by,omitempty"`
	InstalledAt      time.Time  `json:"installed_at"`
	UninstalledAt    *time.Time `json:"uninstalled_at,omitempty"`
}

// ZendeskFieldNames name a request's inputs in error messages, so each caller's user reads the
// names they typed: the API's JSON fields by default, the CLI's flags from the CLI. PublicURL names
// where the public base URL came from (CLVD_PUBLIC_URL by default).
type ZendeskFieldNames struct {
	Subdomain, ZendeskURL, Email, APIToken, PublicURL string
}

var apiFieldNames = ZendeskFieldNames{Subdomain: "subdomain", ZendeskURL: "zendesk_url", Email: "email", APIToken: "api_token",
	PublicURL: "CLVD_PUBLIC_URL"}

func (n ZendeskFieldNames) orDefault() ZendeskFieldNames {
	if n == (ZendeskFieldNames{}) {
		return apiFieldNames
	}
	if n.PublicURL == "" {
		n.PublicURL = apiFieldNames.PublicURL
	}
	return n
}

// ZendeskRateLimit says how rate limits during an install or uninstall are handled: a 429 asking
// for at most MaxWait is waited out, up to Retries times per API call (OnWait is told first); a
// longer one ends the run with a *zendesk.RateLimitError.
type ZendeskRateLimit struct {
	Retries int
	MaxWait time.Duration
	OnWait  func(time.Duration)
}

// ZendeskInstallRequest is what InstallZendesk needs.
type ZendeskInstallRequest struct {
	TenantID string
	// Subdomain (acme for https://acme.zendesk.com) or ZendeskURL, not both; neither keeps the
	// tenant's stored URL.
	Subdomain, ZendeskURL string
	// Email and APIToken of a Zendesk admin; empty keeps the tenant's stored ones.
	Email, APIToken string
	// Triggers also installs a trigger webhook and a trigger (satisfaction ratings, requester emails).
	Triggers bool
	// PublicURL is the base URL Zendesk reaches clvd at (CLVD_PUBLIC_URL); the webhook URL is
	// PublicURL/webhooks/TENANT/zendesk.
	PublicURL string
	// AllowLocalTargets allows http and loopback/private addresses (CLVD_ALLOW_LOCAL_TARGETS).
	AllowLocalTargets bool
	Names             ZendeskFieldNames
	RateLimit         ZendeskRateLimit
	Now               func() time.Time // default time.Now
}

// ZendeskUser is the Zendesk admin whose credentials ran the install.
type ZendeskUser struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

// ZendeskInstallResult is what an install did. Its JSON form holds no token and no secret.
type ZendeskInstallResult struct {
	TenantID      string                `json:"tenant_id"`
	ZendeskURL    string                `json:"zendesk_url"`
	WebhookURL    string                `json:"webhook_url"`
	User          ZendeskUser           `json:"user"`
	Installation  zendesk.Installation  `json:"installation"` // ids only
	Steps         []zendesk.InstallStep `json:"steps"`
	SecretsStored int                   `json:"secrets_stored"`
	// SecretsReplaced: the tenant had other webhook signing secrets stored, which these replace.
	SecretsReplaced bool `json:"secrets_replaced"`
}

var subdomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// InstallZendesk connects a Zendesk account to a tenant, idempotently: it checks the account URL,
// verifies the credentials (an admin's), runs zendesk.Install, stores the credentials and the
// webhooks' signing secrets on the tenant and records the installation. Errors are *apiError
// (bad input: 400; unknown tenant: 404; no public URL: 409; store trouble: 503) or the Zendesk
// client's (zendesk.ErrUnauthorized, zendesk.ErrNotAdmin, *zendesk.RateLimitError, ...), which
// classify maps; none shows the API token.
func InstallZendesk(ctx context.Context, st ZendeskStore, req ZendeskInstallRequest) (res ZendeskInstallResult, err error) {
	names := req.Names.orDefault()
	token := req.APIToken
	defer func() { err = redact(err, token) }()

	if req.Subdomain != "" && req.ZendeskURL != "" {
		return res, badRequest("give %s or %s, not both", names.Subdomain, names.ZendeskURL)
	}
	webhookURL, err := ZendeskWebhookURL(req.PublicURL, names.PublicURL, req.TenantID, req.AllowLocalTargets)
	if err != nil {
		return res, err
	}
	t, err := getTenant(ctx, st, req.TenantID)
	if err != nil {
		return res, err
	}

	base := t.Zendesk.BaseURL
	switch {
	case req.Subdomain != "":
		sub := strings.ToLower(strings.TrimSpace(req.Subdomain))
		if !subdomainPattern.MatchString(sub) {
			return res, badRequest("%s %q: want the lower-case name before .zendesk.com, e.g. acme", names.Subdomain, req.Subdomain)
		}
		base = "https://" + sub + ".zendesk.com"
	case req.ZendeskURL != "":
		base = req.ZendeskURL
	}
	email := strings.TrimSpace(req.Email)
	if email == "" {
		email = t.Zendesk.Email
	}
	if token == "" {
		token = t.Zendesk.APIToken
	}
	if base == "" || email == "" || token == "" {
		return res, badRequest("the Zendesk account is not known yet: give %s (or %s), %s and %s",
			names.Subdomain, names.ZendeskURL, names.Email, names.APIToken)
	}
	if !strings.Contains(email, "@") {
		return res, badRequest("%s %q is not an email address", names.Email, email)
	}
	u, err := safehttp.CheckBaseURL(base, req.AllowLocalTargets)
	if err != nil {
		return res, badRequest("%s: %v", names.ZendeskURL, err)
	}
	base = strings.TrimRight(u.String(), "/")
	c, err := zendesk.NewClient(base, email, token, safehttp.NewClient(req.AllowLocalTargets, 30*time.Second))
	if err != nil {
		return res, badRequest("%s: %v", names.ZendeskURL, err)
	}

	inst, err := zendesk.Install(ctx, c, zendesk.InstallOptions{
		WebhookURL:       webhookURL,
		Name:             "clvd " + t.ID,
		Triggers:         req.Triggers,
		RateLimitRetries: req.RateLimit.Retries,
		MaxRateLimitWait: req.RateLimit.MaxWait,
		OnRateLimit:      req.RateLimit.OnWait,
	})
	if err != nil {
		if len(inst.Steps) > 0 {
			err = fmt.Errorf("%w\n(some objects were already set up in Zendesk; nothing was stored on the tenant: run the install again to finish, it creates nothing twice)", err)
		}
		return res, err
	}

	// Zendesk now holds the objects: store them even if the caller goes away now.
	ctx = context.WithoutCancel(ctx)
	previousSecret := t.Zendesk.WebhookSecret
	t.Zendesk.BaseURL, t.Zendesk.Email, t.Zendesk.APIToken = base, email, token
	t.Zendesk.WebhookSecret = strings.Join(inst.Secrets(), ",")
	if err := st.UpdateTenant(ctx, t); err != nil {
		return res, &apiError{kind: errUnavailable, cause: err,
			msg: fmt.Sprintf("storing the Zendesk credentials on tenant %s failed (run the install again: it creates nothing twice)", t.ID)}
	}
	state := ZendeskInstallState{Installation: inst, ZendeskURL: base, InstalledByEmail: inst.InstalledBy.Email, InstalledAt: nowOf(req.Now)}
	if err := putZendeskState(ctx, st, t.ID, state); err != nil {
		return res, &apiError{kind: errUnavailable, cause: err,
			msg: fmt.Sprintf("recording the installation on tenant %s failed (run the install again: it creates nothing twice)", t.ID)}
	}
	me := inst.InstalledBy
	return ZendeskInstallResult{
		TenantID:        t.ID,
		ZendeskURL:      base,
		WebhookURL:      webhookURL,
		User:            ZendeskUser{ID: me.ID, Name: me.Name, Email: me.Email, Role: me.Role},
		Installation:    inst,
		Steps:           nonNilSteps(inst.Steps),
		SecretsStored:   len(inst.Secrets()),
		SecretsReplaced: previousSecret != "" && previousSecret != t.Zendesk.WebhookSecret,
	}, nil
}

// ZendeskUninstallRequest is what UninstallZendesk needs.
type ZendeskUninstallRequest struct {
	TenantID string
	// RemoveUserFields also deletes the clv_* user fields and their values (Zendesk never lets those
	// keys be used again).
	RemoveUserFields bool
	// PublicURL finds the webhooks by their URL when no installation was recorded.
	PublicURL         string
	AllowLocalTargets bool
	Names             ZendeskFieldNames // only PublicURL is used
	RateLimit         ZendeskRateLimit
	Now               func() time.Time
}

// ZendeskUninstallResult is what an uninstall did.
type ZendeskUninstallResult struct {
	TenantID      string                `json:"tenant_id"`
	ZendeskURL    string                `json:"zendesk_url"`
	WebhookURL    string                `json:"webhook_url"`
	Removed       []zendesk.InstallStep `json:"removed"`
	AlreadyGone   []zendesk.InstallStep `json:"already_gone"`
	Remaining     zendesk.Installation  `json:"remaining"` // the user fields, unless removed
	SecretCleared bool                  `json:"webhook_secret_cleared"`
}

// UninstallZendesk removes what InstallZendesk set up in Zendesk (the trigger, the webhooks; the
// user fields, which hold every customer's scores, only with RemoveUserFields), clears the
// tenant's webhook secret and records the uninstall. The API credentials stay stored (they still
// write tags). Running it again is harmless. Errors are as InstallZendesk's; a tenant without
// stored credentials is 409.
func UninstallZendesk(ctx context.Context, st ZendeskStore, req ZendeskUninstallRequest) (res ZendeskUninstallResult, err error) {
	names := req.Names.orDefault()
	t, err := getTenant(ctx, st, req.TenantID)
	if err != nil {
		return res, err
	}
	token := t.Zendesk.APIToken
	defer func() { err = redact(err, token) }()
	if t.Zendesk.BaseURL == "" || t.Zendesk.Email == "" || token == "" {
		return res, &apiError{kind: errConflict, msg: fmt.Sprintf("tenant %s has no Zendesk API credentials: there is nothing clvd can uninstall with", t.ID)}
	}

	state, _, err := loadZendeskState(ctx, st, t.ID)
	if err != nil {
		return res, err
	}
	if state.ZendeskURL == "" {
		state.ZendeskURL = t.Zendesk.BaseURL
	}
	if state.WebhookURL == "" {
		// No recorded installation: find the webhooks by the URL an install would have used.
		if state.WebhookURL, err = ZendeskWebhookURL(req.PublicURL, names.PublicURL, t.ID, req.AllowLocalTargets); err != nil {
			return res, err
		}
	}
	u, err := safehttp.CheckBaseURL(t.Zendesk.BaseURL, req.AllowLocalTargets)
	if err != nil {
		return res, &apiError{kind: errConflict, msg: fmt.Sprintf("tenant %s's stored Zendesk URL: %v", t.ID, err)}
	}
	c, err := zendesk.NewClient(strings.TrimRight(u.String(), "/"), t.Zendesk.Email, token, safehttp.NewClient(req.AllowLocalTargets, 30*time.Second))
	if err != nil {
		return res, &apiError{kind: errConflict, msg: fmt.Sprintf("tenant %s's stored Zendesk account: %v", t.ID, err)}
	}
	out, err := zendesk.Uninstall(ctx, c, state.Installation, zendesk.UninstallOptions{
		RemoveUserFields: req.RemoveUserFields,
		RateLimitRetries: req.RateLimit.Retries,
		MaxRateLimitWait: req.RateLimit.MaxWait,
		OnRateLimit:      req.RateLimit.OnWait,
	})
	if err != nil {
		return res, err
	}

	ctx = context.WithoutCancel(ctx)
	secretCleared := t.Zendesk.WebhookSecret != ""
	if secretCleared {
		t.Zendesk.WebhookSecret = ""
		if err := st.UpdateTenant(ctx, t); err != nil {
			return res, &apiError{kind: errUnavailable, cause: err,
				msg: fmt.Sprintf("clearing the webhook secret of tenant %s failed (run the uninstall again: it is harmless)", t.ID)}
		}
	}
	now := nowOf(req.Now)
	state.Installation, state.UninstalledAt = out.Remaining, &now
	if err := putZendeskState(ctx, st, t.ID, state); err != nil {
		return res, &apiError{kind: errUnavailable, cause: err,
			msg: fmt.Sprintf("recording the uninstall on tenant %s failed (run the uninstall again: it is harmless)", t.ID)}
	}
	return ZendeskUninstallResult{
		TenantID:      t.ID,
		ZendeskURL:    t.Zendesk.BaseURL,
		WebhookURL:    state.WebhookURL,
		Removed:       nonNilSteps(out.Removed),
		AlreadyGone:   nonNilSteps(out.AlreadyGone),
		Remaining:     out.Remaining,
		SecretCleared: secretCleared,
	}, nil
}

// ZendeskStatus is a tenant's recorded installation, and which Zendesk credentials are stored
// (never their values).
type ZendeskStatus struct {
	TenantID string `json:"tenant_id"`
	// Installed: installed and not uninstalled since.
	Installed bool `json:"installed"`
	ZendeskInstallState
	CredentialsStored map[string]bool `json:"credentials_stored"`
}

// ZendeskInstallation reads a tenant's installation; a tenant never installed is a 404 *apiError.
func ZendeskInstallation(ctx context.Context, st ZendeskStore, tenantID string) (ZendeskStatus, error) {
	t, err := getTenant(ctx, st, tenantID)
	if err != nil {
		return ZendeskStatus{}, err
	}
	state, found, err := loadZendeskState(ctx, st, t.ID)
	if err != nil {
		return ZendeskStatus{}, err
	}
	if !found {
		return ZendeskStatus{}, &apiError{kind: errNotFound, msg: fmt.Sprintf(
			"Zendesk was never installed for tenant %s: POST /api/v1/tenants/%s/zendesk/install (or run 'clvd tenant install-zendesk %s')", t.ID, t.ID, t.ID)}
	}
	return ZendeskStatus{TenantID: t.ID, Installed: state.UninstalledAt == nil, ZendeskInstallState: state,
		CredentialsStored: map[string]bool{
			"zendesk_url":    t.Zendesk.BaseURL != "",
			"email":          t.Zendesk.Email != "",
			"api_token":      t.Zendesk.APIToken != "",
			"webhook_secret": t.Zendesk.WebhookSecret != "",
		}}, nil
}

// ZendeskWebhookURL is where Zendesk sends a tenant's events: publicURL + /webhooks/ID/zendesk.
// Zendesk must reach it, so it gets the same check as a helpdesk URL: https and a public address
// unless allowLocal. name says where publicURL came from, for the error (409: the server's
// configuration, not the request, must change).
func ZendeskWebhookURL(publicURL, name, tenantID string, allowLocal bool) (string, error) {
	if name == "" {
		name = apiFieldNames.PublicURL
	}
	if strings.TrimSpace(publicURL) == "" {
		return "", &apiError{kind: errConflict, msg: name + " is not set: set it to the https base URL Zendesk reaches clvd at"}
	}
	u, err := safehttp.CheckURL(publicURL, allowLocal)
	if err != nil {
		return "", &apiError{kind: errConflict, msg: fmt.Sprintf("%s: Zendesk must reach clvd at it: %v", name, err)}
	}
	return strings.TrimRight(u.String(), "/") + "/webhooks/" + url.PathEscape(tenantID) + "/zendesk", nil
}

func getTenant(ctx context.Context, st ZendeskStore, id string) (*store.Tenant, error) {
	t, err := st.GetTenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &apiError{kind: errNotFound, msg: fmt.Sprintf("unknown tenant %q", id), cause: err}
	}
	return t, err
}

// loadZendeskState reads the recorded installation; found is false when there is none.
func loadZendeskState(ctx context.Context, st ZendeskStore, tenantID string) (state ZendeskInstallState, found bool, err error) {
	raw, _, err := st.GetTenantState(ctx, tenantID, ZendeskInstallStateKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return state, false, nil
	case err != nil:
		return state, false, err
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return state, false, fmt.Errorf("tenant %s: stored %s state: %w", tenantID, ZendeskInstallStateKey, err)
	}
	return state, true, nil
}

func putZendeskState(ctx context.Context, st ZendeskStore, tenantID string, state ZendeskInstallState) error {
	raw, err := json.Marshal(state)
	if err != nil {
		return err
	}
	return st.PutTenantState(ctx, tenantID, ZendeskInstallStateKey, raw)
}

func nowOf(now func() time.Time) time.Time {
	if now == nil {
		now = time.Now
	}
	return now().UTC()
}

func nonNilSteps(steps []zendesk.InstallStep) []zendesk.InstallStep {
	if steps == nil {
		return []zendesk.InstallStep{}
	}
	return steps
}

// redact hides the API token in err's message, whatever echoed it, keeping errors.Is/As working.
func redact(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return redactedError{err: err, token: token}
}

type redactedError struct {
	err   error
	token string
}

func (e redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.token, "[redacted]")
}
func (e redactedError) Unwrap() error { return e.err }

// The routes.

// While a route installs or uninstalls, rate limits are waited out only briefly (the caller is
// waiting): a longer Retry-After answers 503 with it. zendeskRouteTimeout keeps the whole run
// inside the server's 30 s write timeout.
const (
	routeRateLimitRetries = 2
	routeMaxRateLimitWait = 5 * time.Second
	zendeskRouteTimeout   = 25 * time.Second
)

// busyTenants lets one install or uninstall run per tenant at a time in this process: two at once
// could both find a webhook missing and both create it.
type busyTenants struct {
	mu   sync.Mutex
	busy map[string]bool
}

func (b *busyTenants) start(tenant string) (done func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy[tenant] {
		return nil, false
	}
	if b.busy == nil {
		b.busy = map[string]bool{}
	}
	b.busy[tenant] = true
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.busy, tenant)
	}, true
}

func (h *Handler) rateLimit(c *gin.Context, what string) ZendeskRateLimit {
	return ZendeskRateLimit{Retries: routeRateLimitRetries, MaxWait: routeMaxRateLimitWait, OnWait: func(d time.Duration) {
		h.log.InfoContext(c.Request.Context(), "Zendesk rate limit: waiting", "what", what, "tenant", tenantOf(c), "wait", d)
	}}
}

// zendeskRun does the common part of install and uninstall: no query parameters, the body decoded
// strictly into body, one run per tenant, a deadline.
func (h *Handler) zendeskRun(c *gin.Context, what string, body any, emptyOK bool, run func(ctx context.Context) (any, error)) {
	if _, err := queryParams(c); err != nil {
		h.fail(c, err)
		return
	}
	if err := decodeBody(c, body, emptyOK); err != nil {
		h.fail(c, err)
		return
	}
	done, ok := h.zendeskBusy.start(tenantOf(c))
	if !ok {
		h.fail(c, &apiError{kind: errConflict, msg: "an install or uninstall of this tenant is already running: try again when it has finished"})
		return
	}
	defer done()
	ctx, cancel := context.WithTimeout(c.Request.Context(), zendeskRouteTimeout)
	defer cancel()
	out, err := run(ctx)
	cl := claimsOf(c)
	if err != nil {
		if status, _ := classify(err); status < 500 {
			h.log.InfoContext(ctx, "Zendesk "+what+" refused", "tenant", tenantOf(c), "role", cl.Role, "jti", cl.ID,
				"status", status, "error", err)
		}
		h.fail(c, err)
		return
	}
	h.log.InfoContext(ctx, "Zendesk "+what+" done through the admin API", "tenant", tenantOf(c), "role", cl.Role, "jti", cl.ID)
	c.JSON(http.StatusOK, out)
}

type zendeskInstallBody struct {
	Subdomain  string `json:"subdomain"`
	ZendeskURL string `json:"zendesk_url"`
	Email      string `json:"email"`
	APIToken   string `json:"api_token"`
	Triggers   bool   `json:"triggers"`
}

func (h *Handler) installZendesk(c *gin.Context) {
	var body zendeskInstallBody
	h.zendeskRun(c, "install", &body, false, func(ctx context.Context) (any, error) {
		return InstallZendesk(ctx, h.store, ZendeskInstallRequest{
			TenantID: tenantOf(c), Subdomain: body.Subdomain, ZendeskURL: body.ZendeskURL, Email: body.Email, APIToken: body.APIToken,
			Triggers: body.Triggers, PublicURL: h.publicURL, AllowLocalTargets: h.allowLocal, RateLimit: h.rateLimit(c, "install"), Now: h.now,
		})
	})
}

type zendeskUninstallBody struct {
	RemoveUserFields bool `json:"remove_user_fields"`
}

func (h *Handler) uninstallZendesk(c *gin.Context) {
	var body zendeskUninstallBody
	h.zendeskRun(c, "uninstall", &body, true, func(ctx context.Context) (any, error) {
		return UninstallZendesk(ctx, h.store, ZendeskUninstallRequest{
			TenantID: tenantOf(c), RemoveUserFields: body.RemoveUserFields, PublicURL: h.publicURL, AllowLocalTargets: h.allowLocal,
			RateLimit: h.rateLimit(c, "uninstall"), Now: h.now,
		})
	})
}

func (h *Handler) zendeskStatus(c *gin.Context) {
	if _, err := queryParams(c); err != nil {
		h.fail(c, err)
		return
	}
	status, err := ZendeskInstallation(c.Request.Context(), h.store, tenantOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, status)
}
