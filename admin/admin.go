// Package admin is clvd's admin API, mounted under /api/v1: tenants (operators), a tenant's
// settings, customers with their scores, orders and tickets, KPIs and fitted models.
//
// Authentication. Every request carries "Authorization: Bearer <JWT>", signed HS256 with the
// server's key (LoadKey), with iss "clvd", aud "clvd-admin", exp, iat and jti required (30 s leeway),
// and the claims role and tenant: role "admin" manages the one tenant named by the claim tenant;
// role "operator" has no tenant and reaches every tenant (naming it with ?tenant=ID) and the tenant
// list. A missing, malformed, expired, wrongly signed or non-HS256 token (alg "none" included) gets
// 401; a valid token that may not do what it asks (an admin on an operator route or on another
// tenant, an unknown role) gets 403. `clvd token` issues tokens.
//
// Routes (relative to where Register mounts them; see README):
//
//	POST /tenants             operator  create a tenant {"name": ...}: 201, its id and its generated orders secret (shown once)
//	GET  /tenants             operator  list tenants, which secrets are set (never the secrets)
//	GET  /settings            tenant    the tenant's settings, as stored and with defaults applied
//	PUT  /settings            tenant    replace them (validated by worker.ParseSettings); requests a refit that rescores everyone
//	GET  /customers/:key      tenant    a customer (numeric id or email) with its score, orders and tickets
//	GET  /customers           tenant    scored customers: ?tier= &segment= &churn_band= &sort= &order= &limit= &cursor= ; CSV with Accept: text/csv or ?format=csv
//	GET  /kpis                tenant    KPIs for ?from=YYYY-MM-DD&to=YYYY-MM-DD (see kpis.go)
//	GET  /model               tenant    the latest model fit; ?limit=N for the history, newest first
//	GET  /dashboard/...       tenant    the admin dashboard's aggregates: summary, kpi-series, tiers, segments, clv-histogram, cohorts, at-risk (see dashboard_api.go)
//	GET  /outreach            tenant    retention outreach, newest first: ?status= &customer_id= &limit= &cursor= ; CSV like /customers
//	GET  /tenants/:id/zendesk            path tenant  the recorded Zendesk installation (ids, URL, times) and which credentials are stored (booleans)
//	POST /tenants/:id/zendesk/install    path tenant  connect a Zendesk account, idempotently {"subdomain"|"zendesk_url", "email", "api_token", "triggers"} (see zendesk.go)
//	POST /tenants/:id/zendesk/uninstall  path tenant  remove what install set up {"remove_user_fields"} (body optional)
//
// "tenant" routes: an admin reaches its own tenant (a ?tenant= naming another one is 403); an
// operator must name one with ?tenant=ID. "path tenant" routes name the tenant in the path: an
// admin reaches only its own (another is 403), an operator any. Unknown query parameters and
// values are 400; request bodies are one JSON object of at most 64 KiB (larger: 413) without
// unknown fields. Errors are JSON {"error": "..."}, mapped from errors in one place (classify,
// writeError): Zendesk refusing the credentials is 422, its rate limit 503 with its Retry-After,
// Zendesk unreachable or failing 502.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/store"
)

// Store is what the admin API reads and writes; *store.DB implements it.
type Store interface {
	CreateTenant(ctx context.Context, t *store.Tenant) error
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	CheckTenant(ctx context.Context, tenantID string) error
	TenantSettings(ctx context.Context, tenantID string) (json.RawMessage, error)
	SetTenantSettings(ctx context.Context, tenantID string, settings json.RawMessage) error
	ZendeskStore // GetTenant, UpdateTenant, GetTenantState, PutTenantState (also worker.RequestRefit)
	GetCustomer(ctx context.Context, tenantID string, customerID int64) (*store.Customer, error)
	CustomerByEmail(ctx context.Context, tenantID, email string) (*store.Customer, error)
	CustomerOrders(ctx context.Context, tenantID string, customerID int64) ([]store.OrderRecord, error)
	CustomerTickets(ctx context.Context, tenantID string, customerID int64) ([]store.Ticket, error)
	ListCustomers(ctx context.Context, tenantID string, f store.CustomerFilter) ([]store.CustomerRow, string, error)
	CustomerKPIs(ctx context.Context, tenantID string, from, to time.Time) (store.KPIs, error)
	ListModels(ctx context.Context, tenantID string, limit int) ([]store.ModelRecord, error)
	DashboardStore // the dashboard's aggregates (dashboard_api.go)
	ListOutreach(ctx context.Context, tenantID string, f store.OutreachFilter) ([]store.Outreach, string, error)
}

var _ Store = (*store.DB)(nil)

// Options configure the admin API.
type Options struct {
	Store Store
	Key   []byte // the token signing key (LoadKey)
	// PublicURL is the base URL webhook senders reach clvd at (config.BaseURL), used for the webhook
	// URLs of a new tenant; empty gives paths only.
	PublicURL string
	// AllowLocalTargets allows http and loopback/private Zendesk and public URLs when installing
	// Zendesk (config.Config.AllowLocalTargets: local trials and tests only).
	AllowLocalTargets bool
	Now               func() time.Time // default time.Now
	Logger            *slog.Logger     // default slog.Default()
}

// Handler serves the admin API.
type Handler struct {
	store       Store
	verifier    *verifier
	publicURL   string
	allowLocal  bool
	now         func() time.Time
	log         *slog.Logger
	zendeskBusy busyTenants
}

// NewHandler checks the options and returns the API; mount it with Register.
func NewHandler(o Options) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("admin: no store")
	}
	if len(o.Key) < MinKeyBytes {
		return nil, fmt.Errorf("admin: token key of %d bytes, want at least %d", len(o.Key), MinKeyBytes)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	key := append([]byte(nil), o.Key...)
	return &Handler{store: o.Store, verifier: newVerifier(key, o.Now), publicURL: strings.TrimRight(o.PublicURL, "/"),
		allowLocal: o.AllowLocalTargets, now: o.Now, log: o.Logger}, nil
}

// Register adds the routes to r, typically engine.Group("/api/v1").
func (h *Handler) Register(r gin.IRouter) {
	g := r.Group("", h.authenticate)

	op := g.Group("", h.requireOperator)
	op.POST("/tenants", h.createTenant)
	op.GET("/tenants", h.listTenants)

	t := g.Group("", h.scopeTenant)
	t.GET("/settings", h.getSettings)
	t.PUT("/settings", h.putSettings)
	t.GET("/customers", h.listCustomers)
	t.GET("/customers/:key", h.getCustomer)
	t.GET("/kpis", h.kpis)
	t.GET("/model", h.model)
	t.GET("/dashboard/summary", h.dashboardSummary)
	t.GET("/dashboard/kpi-series", h.kpiSeries)
	t.GET("/dashboard/tiers", h.dashboardTiers)
	t.GET("/dashboard/segments", h.dashboardSegments)
	t.GET("/dashboard/clv-histogram", h.clvHistogram)
	t.GET("/dashboard/cohorts", h.cohorts)
	t.GET("/dashboard/at-risk", h.atRisk)
	t.GET("/outreach", h.listOutreach)

	z := g.Group("/tenants/:id/zendesk", h.scopeTenantPath)
	z.GET("", h.zendeskStatus)
	z.POST("/install", h.installZendesk)
	z.POST("/uninstall", h.uninstallZendesk)
}

// Context keys.
const (
	claimsKey = "clvd.admin.claims"
	tenantKey = "clvd.admin.tenant"
)

func claimsOf(c *gin.Context) *Claims { return c.MustGet(claimsKey).(*Claims) }
func tenantOf(c *gin.Context) string  { return c.GetString(tenantKey) }

// authenticate accepts only a valid admin token and records its claims.
func (h *Handler) authenticate(c *gin.Context) {
	c.Header("Cache-Control", "no-store") // customer data and secrets: never cached
	scheme, token, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		writeError(c, &apiError{kind: errUnauthorized, msg: "missing bearer token: send Authorization: Bearer <token> (see 'clvd token')"})
		return
	}
	claims, err := h.verifier.verify(token)
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "token expired"
		}
		h.log.DebugContext(c.Request.Context(), "admin token refused", "reason", err.Error())
		writeError(c, &apiError{kind: errUnauthorized, msg: msg, cause: err})
		return
	}
	if err := checkRole(claims.Role, claims.Tenant); err != nil {
		writeError(c, &apiError{kind: errForbidden, msg: err.Error()})
		return
	}
	c.Set(claimsKey, claims)
	c.Next()
}

func (h *Handler) requireOperator(c *gin.Context) {
	if claimsOf(c).Role != RoleOperator {
		writeError(c, &apiError{kind: errForbidden, msg: "this route needs an operator token"})
		return
	}
	c.Next()
}

// scopeTenant decides which tenant the request is about: an admin's own, or the one an operator
// names with ?tenant=; it must exist.
func (h *Handler) scopeTenant(c *gin.Context) {
	cl := claimsOf(c)
	named := c.Request.URL.Query()["tenant"]
	if len(named) > 1 {
		writeError(c, badRequest("query parameter tenant given more than once"))
		return
	}
	var tenant string
	switch cl.Role {
	case RoleAdmin:
		if len(named) == 1 && named[0] != cl.Tenant {
			writeError(c, &apiError{kind: errForbidden, msg: "this token is for another tenant"})
			return
		}
		tenant = cl.Tenant
	case RoleOperator:
		if len(named) == 0 || named[0] == "" {
			writeError(c, badRequest("operator tokens name the tenant: ?tenant=ID"))
			return
		}
		tenant = named[0]
	}
	h.enterTenant(c, tenant)
}

// scopeTenantPath is scopeTenant for routes that name the tenant in the path (/tenants/:id/...):
// an admin reaches only its own tenant, an operator any; it must exist.
func (h *Handler) scopeTenantPath(c *gin.Context) {
	cl, tenant := claimsOf(c), c.Param("id")
	if cl.Role == RoleAdmin && tenant != cl.Tenant {
		writeError(c, &apiError{kind: errForbidden, msg: "this token is for another tenant"})
		return
	}
	h.enterTenant(c, tenant)
}

// enterTenant lets the request on about tenant if it exists.
func (h *Handler) enterTenant(c *gin.Context, tenant string) {
	if err := h.store.CheckTenant(c.Request.Context(), tenant); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = &apiError{kind: errNotFound, msg: "unknown tenant"}
		}
		h.fail(c, err)
		return
	}
	c.Set(tenantKey, tenant)
	c.Next()
}

// queryParams returns the query, refusing parameters not in allowed and parameters given twice.
func queryParams(c *gin.Context, allowed ...string) (url.Values, error) {
	q := c.Request.URL.Query()
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			if len(allowed) == 0 {
				return nil, badRequest("unknown query parameter %q: this route takes none", name)
			}
			return nil, badRequest("unknown query parameter %q: want %s", name, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("query parameter %s given more than once", name)
		}
	}
	return q, nil
}

// maxBodyBytes bounds request bodies; they are small JSON documents.
const maxBodyBytes = 64 << 10

// decodeBody decodes the request body, one JSON object (readJSONBody), into v, refusing unknown
// fields. With emptyOK a request without a body leaves v as it is.
func decodeBody(c *gin.Context, v any, emptyOK bool) error {
	if emptyOK && c.Request.ContentLength == 0 {
		return nil
	}
	body, err := readJSONBody(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: %v", err)
	}
	return nil
}

// Error kinds, mapped to statuses by writeError.
var (
	errBadRequest   = errors.New("bad request")
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
	errNotFound     = errors.New("not found")
	errConflict     = errors.New("conflict")
	errUnavailable  = errors.New("unavailable")
)

// apiError is an error with a kind (one of the err* above) and a message safe to show the client.
type apiError struct {
	kind  error
	msg   string
	cause error // logged, not shown
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() []error { return []error{e.kind, e.cause} }

func badRequest(format string, args ...any) error {
	return &apiError{kind: errBadRequest, msg: fmt.Sprintf(format, args...)}
}

// fail logs what the client cannot see, then answers with writeError.
func (h *Handler) fail(c *gin.Context, err error) {
	if status, _ := classify(err); status >= 500 {
		h.log.ErrorContext(c.Request.Context(), "admin request failed", "method", c.Request.Method,
			"route", c.FullPath(), "tenant", tenantOf(c), "error", err)
	}
	writeError(c, err)
}

// classify maps an error to its HTTP status and the message the client gets. Errors from Zendesk
// (InstallZendesk, UninstallZendesk) come with the API token already redacted.
func classify(err error) (int, string) {
	var ae *apiError
	var tooBig *http.MaxBytesError
	var rateLimited *zendesk.RateLimitError
	var zdAPI *zendesk.APIError
	var netErr *url.Error
	switch {
	case errors.As(err, &ae):
		switch {
		case errors.Is(ae.kind, errBadRequest):
			return http.StatusBadRequest, ae.msg
		case errors.Is(ae.kind, errUnauthorized):
			return http.StatusUnauthorized, ae.msg
		case errors.Is(ae.kind, errForbidden):
			return http.StatusForbidden, ae.msg
		case errors.Is(ae.kind, errNotFound):
			return http.StatusNotFound, ae.msg
		case errors.Is(ae.kind, errConflict):
			return http.StatusConflict, ae.msg
		case errors.Is(ae.kind, errUnavailable):
			return http.StatusServiceUnavailable, ae.msg
		}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, store.ErrBadCursor):
		return http.StatusBadRequest, "invalid cursor: pass the next_cursor of the previous page, with the same sort and order"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found"

	// Zendesk's answers while installing: what the admin must fix is 422, Zendesk trouble 502/503.
	case errors.Is(err, zendesk.ErrUnauthorized):
		return http.StatusUnprocessableEntity, "Zendesk refused the credentials: check the email and the API token (Admin Center > " +
			"Apps and integrations > APIs > Zendesk API, with token access enabled), and that the subdomain is the token's account"
	case errors.Is(err, zendesk.ErrNotAdmin):
		return http.StatusUnprocessableEntity, "Zendesk refused the install: " + strings.TrimPrefix(err.Error(), "zendesk: ")
	case errors.Is(err, zendesk.ErrInstallConflict):
		return http.StatusConflict, "Zendesk already holds a conflicting object: " + strings.TrimPrefix(err.Error(), "zendesk: ")
	case errors.As(err, &rateLimited):
		return http.StatusServiceUnavailable, "Zendesk's rate limit was hit: try again in " + retryAfterSeconds(err) + " s (Retry-After)"
	case errors.Is(err, zendesk.ErrInvalidInput), errors.Is(err, zendesk.ErrNotFound):
		return http.StatusUnprocessableEntity, "Zendesk cannot be set up like this: " + strings.TrimPrefix(err.Error(), "zendesk: ") +
			" (check the subdomain or Zendesk URL)"
	case errors.As(err, &zdAPI) && zdAPI.Status >= 500:
		return http.StatusBadGateway, fmt.Sprintf("Zendesk failed (HTTP %d): try again later", zdAPI.Status)
	case errors.As(err, &zdAPI):
		return http.StatusUnprocessableEntity, "Zendesk refused the request: " + strings.TrimPrefix(err.Error(), "zendesk: ")
	case errors.Is(err, safehttp.ErrForbiddenTarget):
		return http.StatusBadRequest, "the Zendesk URL leads to an address clvd does not call: " + err.Error()
	case errors.As(err, &netErr):
		return http.StatusBadGateway, "could not reach Zendesk: " + netErr.Err.Error()
	}
	return http.StatusInternalServerError, "internal error"
}

// retryAfterSeconds is the Retry-After for an error answered 503: what Zendesk asked for when its
// rate limit was hit (whole seconds, at least 1), else 5.
func retryAfterSeconds(err error) string {
	var rl *zendesk.RateLimitError
	if errors.As(err, &rl) {
		return strconv.FormatInt(max(1, int64(math.Ceil(rl.RetryAfter.Seconds()))), 10)
	}
	return "5"
}

// writeError is the one place errors become HTTP answers: {"error": message}.
func writeError(c *gin.Context, err error) {
	status, msg := classify(err)
	switch status {
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="clvd-admin", error="invalid_token"`)
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", retryAfterSeconds(err))
	}
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}
