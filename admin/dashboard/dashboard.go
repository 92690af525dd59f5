// Package dashboard is clvd's admin dashboard: the pages at /admin/, served by clvd itself from
// assets embedded in the binary (no CDN, no separate front-end server), which draw a tenant's KPIs
// over time, revenue and customers by tier, the predicted-CLV distribution, RFM segments, cohort
// retention, valuable customers about to churn (with links into Zendesk), outreach history, the
// model's parameters and fit, and edit the tenant's settings. The charts are small SVG functions of
// the page's own (assets/charts.js); every table exports to CSV in the browser.
//
// Routes, relative to MountPath (/admin):
//
//	GET    /                the page (the sign-in form when there is no session)
//	GET    /assets/:name    its script and styles
//	GET    /session         the current session {role, tenant, expires_at, csrf_token}; 401 without one
//	POST   /session         sign in: {"token": "<admin JWT>"} (from `clvd token`); sets the session cookie
//	DELETE /session         sign out: clears the cookie
//	*      /api/v1/...      the admin API (package admin, every route), on the session's behalf
//
// Sessions: the choice. The page signs in once with an admin token — `clvd token --tenant ID --role
// admin`, or an operator token, whose session then picks a tenant — and from then on uses a session
// cookie, not the token:
//
//   - The server verifies the token with the admin API's own verifier (admin.Handler.VerifyToken:
//     the same signature, alg, iss, aud, exp, iat, jti, role and tenant checks), and sets a cookie
//     that is itself a short-lived signed value (session.go): HttpOnly, SameSite=Strict, Path=/admin,
//     Secure when the browser came over https. It lives DefaultIdleTTL without use, is renewed while
//     used, and ends at the latest DefaultMaxTTL after sign-in or when the token it was made from
//     would have expired. The page's script never holds the token: it is not kept in sessionStorage
//     or anywhere a script injected into the page could read it, and a long-lived token (a year at
//     most) is not turned into a long-lived browser credential.
//   - The cookie is accepted only under /admin: /admin/api/v1 mounts the admin API's own handler
//     (every route, with its own authentication, tenant scoping, validation and errors) behind a
//     middleware that turns the session into a bearer token — a fresh API token of the session's role
//     and tenant, valid a few minutes (admin.Handler.SessionToken) — replacing any Authorization
//     header the request had. The API under /api/v1 stays bearer-only and never reads cookies, so it
//     has no CSRF exposure.
//   - CSRF: the cookie is SameSite=Strict, so other sites' requests do not carry it; in addition
//     every request under /admin that changes something (anything but GET and HEAD; sign-out
//     included) must carry the session's CSRF token (GET /session gives it to the page) in the
//     X-CSRF-Token header, which a cross-site form cannot set, and must not come from another origin
//     (Origin and Sec-Fetch-Site, when the browser sends them). Sign-in takes JSON only (a
//     cross-site form cannot send it without a CORS preflight, which is never granted) and checks
//     the origin the same way, so no other site can sign a browser into its own tenant.
//   - Tenant isolation is the API's: a session of tenant A's admin yields tokens of tenant A's
//     admin, which the API refuses (403) anything about tenant B, ?tenant=B included. An operator's
//     session names the tenant with ?tenant= like an operator's token.
//   - Sign-out clears the cookie in this browser. Sessions are stateless (nothing is stored
//     server-side), so a copied cookie stays valid until it expires (DefaultIdleTTL unused,
//     DefaultMaxTTL at most); changing the admin token key (CLVD_JWT_KEY) ends every session.
//
// The page sends Content-Security-Policy default-src 'none' with script, style, connect and images
// from 'self' only (no inline script or style), frame-ancestors 'none', and no-store caching.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/admin"
)

// MountPath is where Register mounts the dashboard.
const MountPath = "/admin"

// apiTokenTTL is the lifetime of the API token made for each request of a session.
const apiTokenTTL = 5 * time.Minute

// maxLoginBody bounds the sign-in request.
const maxLoginBody = 16 << 10

//go:embed assets
var assetFS embed.FS

// Options configure the dashboard.
type Options struct {
	// API is the admin API: the dashboard verifies tokens with it and serves it under
	// MountPath+"/api/v1" for sessions.
	API *admin.Handler
	// PublicURL is the base URL browsers reach clvd at (config.BaseURL): when it is https the
	// session cookie is always Secure, and its origin is accepted for changes besides the request's
	// own host.
	PublicURL string
	IdleTTL   time.Duration    // default DefaultIdleTTL
	MaxTTL    time.Duration    // default DefaultMaxTTL
	Now       func() time.Time // default the API's clock
	Logger    *slog.Logger     // default slog.Default()
	// Queues, when set, is the asynq queue monitor (asynqmon, created with RootPath QueuesPath),
	// served at QueuesPath to operator sessions only.
	Queues http.Handler
}

// Handler serves the dashboard.
type Handler struct {
	api          *admin.Handler
	codec        sessionCodec
	idle, maxTTL time.Duration
	now          func() time.Time
	log          *slog.Logger
	publicHTTPS  bool
	publicOrigin string
	assets       map[string]asset
	index        []byte
	queueUI      http.Handler
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New checks the options and loads the embedded assets.
func New(o Options) (*Handler, error) {
	if o.API == nil {
		return nil, errors.New("dashboard: no admin API")
	}
	if o.IdleTTL <= 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.MaxTTL < o.IdleTTL {
		return nil, fmt.Errorf("dashboard: the longest session (%s) is shorter than the idle timeout (%s)", o.MaxTTL, o.IdleTTL)
	}
	if o.Now == nil {
		o.Now = o.API.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d := &Handler{api: o.API, codec: sessionCodec{key: o.API.DerivedKey(sessionKeyPurpose)}, idle: o.IdleTTL, maxTTL: o.MaxTTL,
		now: o.Now, log: o.Logger, assets: map[string]asset{}, queueUI: o.Queues}
	if u, err := url.Parse(strings.TrimSpace(o.PublicURL)); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") {
		d.publicHTTPS = u.Scheme == "https"
		d.publicOrigin = u.Scheme + "://" + u.Host
	}
	entries, err := assetFS.ReadDir("assets")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	version := sha256.New()
	for _, e := range entries {
		body, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("dashboard assets: %w", err)
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		d.assets[e.Name()] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		version.Write(sum[:])
	}
	idx, ok := d.assets["index.html"]
	if !ok {
		return nil, errors.New("dashboard assets: no index.html")
	}
	// The page names its assets with the version of the set, so a new binary's page never runs with
	// a cached older script.
	d.index = bytes.ReplaceAll(idx.body, []byte("{{version}}"), []byte(hex.EncodeToString(version.Sum(nil)[:6])))
	delete(d.assets, "index.html")
	return d, nil
}

// Register mounts the dashboard on r (the service's engine) under MountPath.
func (d *Handler) Register(r gin.IRouter) {
	g := r.Group(MountPath)
	g.GET("", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, MountPath+"/") })
	g.GET("/", d.page)
	g.HEAD("/", d.page)
	g.GET("/assets/:name", d.asset)
	g.HEAD("/assets/:name", d.asset)
	g.GET("/session", d.getSession)
	g.POST("/session", d.signIn)
	g.DELETE("/session", d.signOut)
	d.api.Register(g.Group("/api/v1", d.bridge))
	if d.queueUI != nil {
		g.Any("/queues/*path", d.queues)
		g.GET("/queues", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, QueuesPath+"/") })
	}
}

// securityHeaders go on every answer of the dashboard.
func securityHeaders(c *gin.Context) {
	c.Header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Referrer-Policy", "same-origin")
}

func (d *Handler) page(c *gin.Context) {
	securityHeaders(c)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/html; charset=utf-8", d.index)
}

func (d *Handler) asset(c *gin.Context) {
	a, ok := d.assets[c.Param("name")]
	if !ok {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	securityHeaders(c)
	c.Header("ETag", a.etag)
	c.Header("Cache-Control", "no-cache")
	if match := c.GetHeader("If-None-Match"); match != "" && match == a.etag {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, a.contentType, a.body)
}

// jsonError answers {"error": msg}, as the API does.
func jsonError(c *gin.Context, status int, msg string) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// current returns the request's valid session, renewing its cookie once half of the idle time
// has passed.
func (d *Handler) current(c *gin.Context) (session, error) {
	ck, err := c.Request.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return session{}, errNoSession
	}
	now := d.now()
	se, err := d.codec.decode(ck.Value, now)
	if err != nil {
		d.setCookie(c.Writer, c.Request, "", time.Time{})
		return session{}, err
	}
	if time.Unix(se.Exp, 0).Sub(now) < d.idle/2 && se.Exp < se.End {
		se.Exp = min(now.Add(d.idle).Unix(), se.End)
		if v, err := d.codec.encode(se); err == nil {
			d.setCookie(c.Writer, c.Request, v, time.Unix(se.Exp, 0))
		}
	}
	return se, nil
}

type sessionJSON struct {
	Role      string    `json:"role"`
	Tenant    string    `json:"tenant,omitempty"`
	ExpiresAt time.Time `json:"expires_at"` // without use; renewed while used
	EndsAt    time.Time `json:"ends_at"`    // at the latest
	CSRFToken string    `json:"csrf_token"` // send as X-CSRF-Token with every change
}

func (d *Handler) sessionOf(se session) sessionJSON {
	return sessionJSON{Role: se.Role, Tenant: se.Tenant, ExpiresAt: time.Unix(se.Exp, 0).UTC(), EndsAt: time.Unix(se.End, 0).UTC(),
		CSRFToken: d.codec.csrfToken(se)}
}

func (d *Handler) getSession(c *gin.Context) {
	securityHeaders(c)
	c.Header("Cache-Control", "no-store")
	se, err := d.current(c)
	if err != nil {
		jsonError(c, http.StatusUnauthorized, err.Error())
		return
	}
	c.JSON(http.StatusOK, d.sessionOf(se))
}

func (d *Handler) signIn(c *gin.Context) {
	securityHeaders(c)
	if !d.sameOrigin(c.Request) {
		jsonError(c, http.StatusForbidden, "sign-in from another site refused")
		return
	}
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt != "application/json" {
		jsonError(c, http.StatusUnsupportedMediaType, "send the token as JSON: {\"token\": \"...\"}")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody))
	if err != nil {
		jsonError(c, http.StatusRequestEntityTooLarge, "request too large")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Token) == "" {
		jsonError(c, http.StatusBadRequest, "send the token as JSON: {\"token\": \"...\"}")
		return
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(req.Token), "Bearer "))
	claims, err := d.api.VerifyToken(c.Request.Context(), token)
	if err != nil {
		var le *admin.LoginError
		if errors.As(err, &le) {
			d.log.InfoContext(c.Request.Context(), "dashboard sign-in refused", "reason", err.Error())
			jsonError(c, le.Status, le.Message)
			return
		}
		d.log.ErrorContext(c.Request.Context(), "dashboard sign-in failed", "error", err)
		jsonError(c, http.StatusInternalServerError, "internal error")
		return
	}
	sid, err := newSessionID()
	if err != nil {
		jsonError(c, http.StatusInternalServerError, "internal error")
		return
	}
	now := d.now()
	end := now.Add(d.maxTTL)
	if claims.ExpiresAt != nil && claims.ExpiresAt.Before(end) {
		end = claims.ExpiresAt.Time
	}
	se := session{ID: sid, Role: claims.Role, Tenant: claims.Tenant, Start: now.Unix(), End: end.Unix()}
	se.Exp = min(now.Add(d.idle).Unix(), se.End)
	if se.Exp <= now.Unix() {
		jsonError(c, http.StatusUnauthorized, "token expired")
		return
	}
	v, err := d.codec.encode(se)
	if err != nil {
		jsonError(c, http.StatusInternalServerError, "internal error")
		return
	}
	d.setCookie(c.Writer, c.Request, v, time.Unix(se.Exp, 0))
	d.log.InfoContext(c.Request.Context(), "dashboard session started", "role", se.Role, "tenant", se.Tenant, "session", sid, "jti", claims.ID)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, d.sessionOf(se))
}

// checkChange guards a request that changes something: the session's CSRF token, and not from
// another origin.
func (d *Handler) checkChange(c *gin.Context, se session) bool {
	if !d.sameOrigin(c.Request) {
		jsonError(c, http.StatusForbidden, "request from another site refused")
		return false
	}
	got := c.GetHeader(CSRFHeader)
	if got == "" || !hmacEqual(got, d.codec.csrfToken(se)) {
		jsonError(c, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header: reload the page")
		return false
	}
	return true
}

func (d *Handler) signOut(c *gin.Context) {
	securityHeaders(c)
	se, err := d.current(c)
	if err == nil && !d.checkChange(c, se) {
		return
	}
	d.setCookie(c.Writer, c.Request, "", time.Time{})
	if err == nil {
		d.log.InfoContext(c.Request.Context(), "dashboard session ended", "role", se.Role, "tenant", se.Tenant, "session", se.ID)
	}
	c.Status(http.StatusNoContent)
}

// bridge lets a session's request through to the admin API with a fresh API token of the
// session's role and tenant in place of whatever Authorization it carried.
func (d *Handler) bridge(c *gin.Context) {
	securityHeaders(c)
	c.Request.Header.Del("Authorization")
	se, err := d.current(c)
	if err != nil {
		jsonError(c, http.StatusUnauthorized, err.Error()+": sign in again")
		return
	}
	if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead && !d.checkChange(c, se) {
		return
	}
	tok, err := d.api.SessionToken(se.Role, se.Tenant, se.ID, apiTokenTTL)
	if err != nil {
		d.log.ErrorContext(c.Request.Context(), "dashboard: making the session's API token failed", "error", err)
		jsonError(c, http.StatusInternalServerError, "internal error")
		return
	}
	c.Request.Header.Set("Authorization", "Bearer "+tok)
	c.Next()
}
