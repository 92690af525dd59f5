// Package sidebar is clvd's Zendesk sidebar app: the page Zendesk shows in the ticket sidebar
// (a Zendesk Apps Framework v2 server-side app, see `clvd zendesk-app package`), where agents see
// the requester's value and churn risk.
//
// Routes, relative to where Register mounts them (MountPath, /apps/zendesk):
//
//	POST /sidebar            the page. Zendesk POSTs it once, into the sidebar iframe, with the form
//	POST /sidebar/:tenant    field "token" (a JWT it signs: "signedUrls": true) and ?origin=&app_guid=
//	                         in the query. Answered in place (200 HTML, no redirect, so the query the
//	                         ZAF client needs stays the page's own).
//	GET  /sidebar[/:tenant]  a short note that the page opens inside Zendesk (405)
//	GET  /assets/:name       the page's script, styles and ZAF client, embedded in the binary
//	GET  /api/customer       ?user_id=&email= the requester's figures (JSON), for the page's session
//
// Which tenant. The tenant is named in the path when the app was packaged with --tenant; else it is
// the one tenant whose stored Zendesk base URL has the token's iss as its host (iss is
// "SUBDOMAIN.zendesk.com"). Either way the token must then verify against that tenant's account:
// signed RS256 by the app key that tenant's own Zendesk serves (fetched with the tenant's stored
// API credentials from its stored base URL, never from a URL in the token; cached an hour), iss the
// account's host, aud one app installation URL of that account, exp required (see zafjwt.go).
//
// Session. The verified page carries a session token of clvd's own (session.go), which the page's
// script sends as "Authorization: Bearer" to the data endpoint; no cookies, so third-party cookie
// blocking in Zendesk's iframe does not matter.
//
// The ZAF client. Zendesk's SDK (zaf_sdk.min.js) is served from Zendesk's CDN; this package serves
// instead a small ZAF client of its own (assets/zaf.js) that speaks the same postMessage protocol
// with the Zendesk frame (handshake, get, set, invoke, on), for the subset the page uses. The page
// loads nothing from third parties, its Content-Security-Policy says so, and it works in tests with
// no network.
package sidebar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/store"
)

// MountPath is where the service mounts the app's routes.
const MountPath = "/apps/zendesk"

// SidebarURL is the page URL the app's manifest names, for a service reachable at serviceURL;
// tenant may be empty (the tenant is then found from the Zendesk account, see the package doc).
func SidebarURL(serviceURL, tenant string) string {
	u := strings.TrimRight(serviceURL, "/") + MountPath + "/sidebar"
	if tenant != "" {
		u += "/" + tenant
	}
	return u
}

// Store is what the sidebar reads; *store.DB implements it.
type Store interface {
	GetTenant(ctx context.Context, id string) (*store.Tenant, error)
	TenantsWithZendeskURLContaining(ctx context.Context, text string) ([]store.Tenant, error)
	CheckTenant(ctx context.Context, tenantID string) error
	TenantSettings(ctx context.Context, tenantID string) (json.RawMessage, error)
	CustomerByZendeskUser(ctx context.Context, tenantID, zendeskUserID string) (*store.Customer, error)
	CustomerByEmail(ctx context.Context, tenantID, email string) (*store.Customer, error)
	CustomerOrders(ctx context.Context, tenantID string, customerID int64) ([]store.OrderRecord, error)
	CustomerTickets(ctx context.Context, tenantID string, customerID int64) ([]store.Ticket, error)
	ListOutreach(ctx context.Context, tenantID string, f store.OutreachFilter) ([]store.Outreach, string, error)
}

var _ Store = (*store.DB)(nil)

// Options configure the sidebar.
type Options struct {
	Store Store
	// Key is the server secret the session key is derived from (admin.LoadKey's key); at least 32 bytes.
	Key []byte
	// HTTPClient makes the Zendesk API calls (app public keys). Default: 10 s timeout, no redirects.
	HTTPClient *http.Client
	// FrameAncestors may frame the page besides the tenant's own Zendesk origin (CSP
	// frame-ancestors). Default: https://*.zendesk.com.
	FrameAncestors []string
	SessionTTL     time.Duration    // default DefaultSessionTTL
	KeyTTL         time.Duration    // how long an app's public key is cached; default 1h
	Leeway         time.Duration    // clock skew tolerated on exp, iat and nbf; default 30s
	Now            func() time.Time // default time.Now
	Logger         *slog.Logger     // default slog.Default()
}

// Handler serves the sidebar app.
type Handler struct {
	store     Store
	zaf       *zafVerifier
	sessions  *sessions
	ancestors []string
	now       func() time.Time
	log       *slog.Logger
	base      string // absolute path the routes are mounted at, set by Register
}

// NewHandler checks the options and returns the app; mount it with Register.
func NewHandler(o Options) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("sidebar: no store")
	}
	if len(o.Key) < 32 {
		return nil, fmt.Errorf("sidebar: server key of %d bytes, want at least 32", len(o.Key))
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.FrameAncestors == nil {
		o.FrameAncestors = []string{"https://*.zendesk.com"}
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.KeyTTL <= 0 {
		o.KeyTTL = time.Hour
	}
	if o.Leeway <= 0 {
		o.Leeway = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Handler{
		store:     o.Store,
		zaf:       &zafVerifier{keys: newKeyCache(zendeskKeyFetcher(o.HTTPClient), o.Now, o.KeyTTL), now: o.Now, leeway: o.Leeway},
		sessions:  &sessions{key: deriveSessionKey(o.Key), ttl: o.SessionTTL, leeway: o.Leeway, now: o.Now},
		ancestors: o.FrameAncestors,
		now:       o.Now,
		log:       o.Logger,
		base:      MountPath,
	}, nil
}

// Register adds the routes to g, typically engine.Group(MountPath).
func (h *Handler) Register(g *gin.RouterGroup) {
	h.base = strings.TrimRight(g.BasePath(), "/")
	g.POST("/sidebar", h.page)
	g.POST("/sidebar/:tenant", h.page)
	g.GET("/sidebar", h.outside)
	g.GET("/sidebar/:tenant", h.outside)
	g.GET("/assets/:name", h.asset)
	g.GET("/api/customer", h.customer)
}

//go:embed assets
var assetFS embed.FS

// assetVersions are content hashes, appended to asset URLs so a new binary's assets are never
// served from an old cache.
var assetVersions = func() map[string]string {
	out := map[string]string{}
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return out
}()

var pageTemplate = template.Must(template.ParseFS(assetFS, "assets/page.html"))

// servedAssets are the files GET /assets/:name serves (the template is not one).
var servedAssets = map[string]bool{"sidebar.js": true, "sidebar.css": true, "zaf.js": true}

func (h *Handler) asset(c *gin.Context) {
	name := c.Param("name")
	if !servedAssets[name] {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "public, max-age=86400")
	c.Data(http.StatusOK, mime.TypeByExtension(path.Ext(name))+"; charset=utf-8", b)
}

// pageData fills page.html.
type pageData struct {
	Error       string // set: an error page, with this message
	ErrorDetail string
	Session     string
	API         string
	Assets      string
	V           map[string]string
	Tenant      string
}

// securityHeaders are sent with every HTML answer: scripts, styles and requests only from clvd, and
// framing only by Zendesk (the tenant's account and ancestors).
func (h *Handler) securityHeaders(c *gin.Context, extraAncestor string) {
	anc := append([]string(nil), h.ancestors...)
	if extraAncestor != "" {
		anc = append(anc, extraAncestor)
	}
	frame := "'none'"
	if len(anc) > 0 {
		frame = strings.Join(anc, " ")
	}
	c.Header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "+frame)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store")
}

func (h *Handler) render(c *gin.Context, status int, d pageData) {
	d.Assets = h.base + "/assets"
	d.API = h.base + "/api/customer"
	d.V = assetVersions
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		h.log.ErrorContext(c.Request.Context(), "sidebar page template failed", "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// Errors of the page that are not about the token itself.
var (
	errUnknownTenant   = errors.New("no clvd tenant is connected to this Zendesk account")
	errAmbiguousTenant = errors.New("several clvd tenants are connected to this Zendesk account")
	errNotConnected    = errors.New("the tenant has no Zendesk account connected")
)

// maxFormBytes bounds the page's form body: one token of a few hundred bytes.
const maxFormBytes = 64 << 10

// page answers Zendesk's signed POST with the sidebar page.
func (h *Handler) page(c *gin.Context) {
	ctx := c.Request.Context()
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	raw := strings.TrimSpace(c.Request.PostFormValue("token"))
	if raw == "" {
		h.pageError(c, "", errNoToken)
		return
	}
	t, err := h.tenantFor(ctx, c.Param("tenant"), raw)
	if err != nil {
		h.pageError(c, "", err)
		return
	}
	account, err := accountOf(t)
	if err != nil {
		h.pageError(c, t.ID, errNotConnected)
		return
	}
	tok, err := h.zaf.verify(ctx, raw, t)
	if err != nil {
		h.pageError(c, t.ID, err)
		return
	}
	session, _, err := h.sessions.issue(t.ID, tok.Claims.Subject, tok.InstallationID)
	if err != nil {
		h.pageError(c, t.ID, err)
		return
	}
	h.log.DebugContext(ctx, "zendesk sidebar opened", "tenant", t.ID, "app", tok.AppID, "installation", tok.InstallationID)
	h.securityHeaders(c, account.Scheme+"://"+account.Host)
	h.render(c, http.StatusOK, pageData{Session: session, Tenant: t.Name})
}

// tenantFor finds the tenant the token is for: the one named in the path, else the one whose
// Zendesk account is the token's issuer.
func (h *Handler) tenantFor(ctx context.Context, named, raw string) (*store.Tenant, error) {
	if named != "" {
		t, err := h.store.GetTenant(ctx, named)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnknownTenant
		}
		return t, err
	}
	iss, err := peekIssuer(raw)
	if err != nil {
		return nil, err
	}
	if iss == "" {
		return nil, fmt.Errorf("%w: no iss", errMalformed)
	}
	// Only tenants whose base URL mentions the issuer are read (and their secrets decrypted), not
	// every tenant on every page load; the exact host comparison follows.
	tenants, err := h.store.TenantsWithZendeskURLContaining(ctx, iss)
	if err != nil {
		return nil, err
	}
	var found *store.Tenant
	for i := range tenants {
		account, err := accountOf(&tenants[i])
		if err != nil || !strings.EqualFold(account.Host, iss) {
			continue
		}
		if found != nil {
			return nil, errAmbiguousTenant
		}
		found = &tenants[i]
	}
	if found == nil {
		return nil, errUnknownTenant
	}
	return found, nil
}

// pageError answers a page request that cannot be served, with an HTML page the iframe shows.
func (h *Handler) pageError(c *gin.Context, tenant string, err error) {
	status, msg, detail := http.StatusUnauthorized, "Zendesk's signature on this request could not be verified.", "Reload the app; if this persists, ask your clvd administrator."
	level := slog.LevelInfo
	switch {
	case errors.Is(err, errNoToken):
		status, msg, detail = http.StatusBadRequest, "This is clvd's Zendesk sidebar app.", "It opens inside Zendesk, which signs each request to it (no signed token was sent)."
	case errors.Is(err, jwt.ErrTokenExpired):
		detail = "The signed request has expired. Reload the app (or check this server's clock)."
	case errors.Is(err, errUnknownTenant):
		status, msg, detail = http.StatusNotFound, "This Zendesk account is not connected to clvd.", "Connect it with 'clvd tenant install-zendesk', or package the app with --tenant."
	case errors.Is(err, errAmbiguousTenant):
		status, msg, detail = http.StatusConflict, "Several clvd tenants use this Zendesk account.", "Package the app for one of them: clvd zendesk-app package --tenant ID."
	case errors.Is(err, errNotConnected):
		status, msg, detail = http.StatusConflict, "This clvd tenant has no Zendesk account connected.", "Connect it with 'clvd tenant install-zendesk'."
	case errors.Is(err, errKeyUnavailable):
		status, msg, detail = http.StatusServiceUnavailable, "clvd could not reach Zendesk to check this request.", "Try again in a moment."
		c.Header("Retry-After", "30")
		level = slog.LevelWarn
	case errors.Is(err, errMalformed), errors.Is(err, errWrongIssuer), errors.Is(err, errWrongAudience),
		errors.Is(err, errNoAppKeyURL), errors.Is(err, errUnknownApp), errors.Is(err, jwt.ErrTokenSignatureInvalid),
		errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenRequiredClaimMissing),
		errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued),
		errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenInvalidClaims):
	default:
		status, msg, detail = http.StatusInternalServerError, "clvd could not open this customer.", "Try again in a moment."
		level = slog.LevelError
	}
	h.log.Log(c.Request.Context(), level, "zendesk sidebar refused", "tenant", tenant, "status", status, "reason", err.Error())
	h.securityHeaders(c, "")
	h.render(c, status, pageData{Error: msg, ErrorDetail: detail})
}

// outside answers a plain GET of the page: it only works inside Zendesk.
func (h *Handler) outside(c *gin.Context) {
	c.Header("Allow", http.MethodPost)
	h.securityHeaders(c, "")
	h.render(c, http.StatusMethodNotAllowed, pageData{Error: "This is clvd's Zendesk sidebar app.",
		ErrorDetail: "It opens inside Zendesk: upload the package made by 'clvd zendesk-app package' (Admin Center > Apps and integrations > Zendesk Support apps > Upload private app)."})
}

// session authenticates a data request by its session token; on failure it has answered.
func (h *Handler) session(c *gin.Context) (*sessionClaims, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		c.Header("WWW-Authenticate", `Bearer realm="clvd-zendesk-sidebar"`)
		apiError(c, http.StatusUnauthorized, "missing session: reload the app")
		return nil, false
	}
	claims, err := h.sessions.verify(tok)
	if err == nil {
		if err = h.store.CheckTenant(c.Request.Context(), claims.Tenant); err != nil && !errors.Is(err, store.ErrNotFound) {
			h.internal(c, "check tenant", claims.Tenant, err)
			return nil, false
		}
	}
	if err != nil {
		msg := "invalid session: reload the app"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "session expired: reload the app"
		}
		c.Header("WWW-Authenticate", `Bearer realm="clvd-zendesk-sidebar", error="invalid_token"`)
		apiError(c, http.StatusUnauthorized, msg)
		return nil, false
	}
	return claims, true
}

func apiError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

func (h *Handler) internal(c *gin.Context, what, tenant string, err error) {
	h.log.ErrorContext(c.Request.Context(), "zendesk sidebar: "+what, "tenant", tenant, "error", err)
	apiError(c, http.StatusInternalServerError, "internal error")
}
