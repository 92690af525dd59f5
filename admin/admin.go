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
//
// "tenant" routes: an admin reaches its own tenant (a ?tenant= naming another one is 403); an
// operator must name one with ?tenant=ID. Unknown query parameters and values are 400. Errors are
// JSON {"error": "..."}, mapped from errors in one place (writeError).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/store"
)

// Store is what the admin API reads and writes; *store.DB implements it.
type Store interface {
	CreateTenant(ctx context.Context, t *store.Tenant) error
	ListTenants(ctx context.Context) ([]store.Tenant, error)
	CheckTenant(ctx context.Context, tenantID string) error
	TenantSettings(ctx context.Context, tenantID string) (json.RawMessage, error)
	SetTenantSettings(ctx context.Context, tenantID string, settings json.RawMessage) error
	PutTenantState(ctx context.Context, tenantID, key string, value json.RawMessage) error // worker.RequestRefit
	GetCustomer(ctx context.Context, tenantID string, customerID int64) (*store.Customer, error)
	CustomerByEmail(ctx context.Context, tenantID, email string) (*store.Customer, error)
	CustomerOrders(ctx context.Context, tenantID string, customerID int64) ([]store.OrderRecord, error)
	CustomerTickets(ctx context.Context, tenantID string, customerID int64) ([]store.Ticket, error)
	ListCustomers(ctx context.Context, tenantID string, f store.CustomerFilter) ([]store.CustomerRow, string, error)
	CustomerKPIs(ctx context.Context, tenantID string, from, to time.Time) (store.KPIs, error)
	ListModels(ctx context.Context, tenantID string, limit int) ([]store.ModelRecord, error)
}

var _ Store = (*store.DB)(nil)

// Options configure the admin API.
type Options struct {
	Store Store
	Key   []byte // the token signing key (LoadKey)
	// PublicURL is the base URL webhook senders reach clvd at (config.BaseURL), used for the webhook
	// URLs of a new tenant; empty gives paths only.
	PublicURL string
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger     // default slog.Default()
}

// Handler serves the admin API.
type Handler struct {
	store     Store
	verifier  *verifier
	publicURL string
	now       func() time.Time
	log       *slog.Logger
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
		now: o.Now, log: o.Logger}, nil
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

// Error kinds, mapped to statuses by writeError.
var (
	errBadRequest   = errors.New("bad request")
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
	errNotFound     = errors.New("not found")
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

// classify maps an error to its HTTP status and the message the client gets.
func classify(err error) (int, string) {
	var ae *apiError
	var tooBig *http.MaxBytesError
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
		case errors.Is(ae.kind, errUnavailable):
			return http.StatusServiceUnavailable, ae.msg
		}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, store.ErrBadCursor):
		return http.StatusBadRequest, "invalid cursor: pass the next_cursor of the previous page, with the same sort and order"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found"
	}
	return http.StatusInternalServerError, "internal error"
}

// writeError is the one place errors become HTTP answers: {"error": message}.
func writeError(c *gin.Context, err error) {
	status, msg := classify(err)
	switch status {
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="clvd-admin", error="invalid_token"`)
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", "5")
	}
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}
