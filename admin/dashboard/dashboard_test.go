package dashboard

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

func init() { gin.SetMode(gin.TestMode) }

var testKey = []byte("0123456789abcdef0123456789abcdef-dashboard-key")

// clock is a settable clock shared by the API and the dashboard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a fresh, migrated SQLite store in a temporary folder.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	key, err := secretbox.ParseKey(secretbox.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "clvd.db"), "", box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

type env struct {
	r      *gin.Engine
	clock  *clock
	db     *store.DB
	a, b   string // tenants
	key    []byte
	public string
}

// newEnv mounts the API and the dashboard as the service does, on two tenants.
func newEnv(t *testing.T, publicURL string) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}, db: openStore(t), key: testKey, public: publicURL}
	for _, p := range []*string{&e.a, &e.b} {
		tn := &store.Tenant{Name: "Shop"}
		if err := e.db.CreateTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
		*p = tn.ID
	}
	e.r = e.router(t, e.key)
	return e
}

func (e *env) router(t *testing.T, key []byte) *gin.Engine {
	t.Helper()
	api, err := admin.NewHandler(admin.Options{Store: e.db, Key: key, Now: e.clock.now, Logger: quiet(), PublicURL: e.public})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{API: api, PublicURL: e.public, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	api.Register(r.Group("/api/v1"))
	d.Register(r)
	return r
}

func (e *env) token(t *testing.T, tenant, role string, ttl time.Duration) string {
	t.Helper()
	tok, err := admin.IssueToken(e.key, tenant, role, ttl, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do makes one request; headers come in name, value pairs.
func (e *env) do(method, path, body string, cookie *http.Cookie, headers ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	e.r.ServeHTTP(w, req)
	return w
}

func sessionCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	return nil
}

type sessionAnswer struct {
	Role      string    `json:"role"`
	Tenant    string    `json:"tenant"`
	ExpiresAt time.Time `json:"expires_at"`
	EndsAt    time.Time `json:"ends_at"`
	CSRFToken string    `json:"csrf_token"`
}

func decodeJSON(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("not JSON (%d): %s", w.Code, w.Body)
	}
}

// signIn signs in with tok and returns the session cookie and its description.
func (e *env) signIn(t *testing.T, tok string) (*http.Cookie, sessionAnswer) {
	t.Helper()
	w := e.do(http.MethodPost, "/admin/session", `{"token":"`+tok+`"}`, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	var s sessionAnswer
	decodeJSON(t, w, &s)
	c := sessionCookie(w)
	if c == nil {
		t.Fatal("sign-in set no cookie")
	}
	return c, s
}

func wantCode(t *testing.T, w *httptest.ResponseRecorder, code int, what string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("%s: %d, want %d: %s", what, w.Code, code, w.Body)
	}
}

func TestPageAndAssets(t *testing.T) {
	e := newEnv(t, "")
	w := e.do(http.MethodGet, "/admin", "", nil)
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/admin/" {
		t.Fatalf("/admin: %d %v", w.Code, w.Header())
	}
	w = e.do(http.MethodGet, "/admin/", "", nil)
	wantCode(t, w, http.StatusOK, "page")
	body := w.Body.String()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || strings.Contains(body, "{{version}}") ||
		!strings.Contains(body, `src="assets/app.js?v=`) || !strings.Contains(body, `id="login-form"`) {
		t.Fatalf("page %s\n%s", w.Header(), body)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("page headers %v", w.Header())
	}
	// No inline script or style in the page (the CSP would block it).
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "onclick") {
		t.Error("the page has inline script or style")
	}
	for name, ct := range map[string]string{"app.js": "javascript", "charts.js": "javascript", "app.css": "text/css"} {
		w := e.do(http.MethodGet, "/admin/assets/"+name, "", nil)
		wantCode(t, w, http.StatusOK, name)
		if !strings.Contains(w.Header().Get("Content-Type"), ct) || w.Header().Get("ETag") == "" || w.Body.Len() < 1000 {
			t.Errorf("%s: %v, %d bytes", name, w.Header(), w.Body.Len())
		}
		wantCode(t, e.do(http.MethodGet, "/admin/assets/"+name, "", nil, "If-None-Match", w.Header().Get("ETag")), http.StatusNotModified, name+" revalidated")
	}
	wantCode(t, e.do(http.MethodGet, "/admin/assets/index.html", "", nil), http.StatusNotFound, "index as an asset")
	wantCode(t, e.do(http.MethodGet, "/admin/assets/nope.js", "", nil), http.StatusNotFound, "unknown asset")
	wantCode(t, e.do(http.MethodGet, "/admin/session", "", nil), http.StatusUnauthorized, "no session")
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, "")
	tok := e.token(t, e.a, admin.RoleAdmin, time.Hour)
	w := e.do(http.MethodPost, "/admin/session", `{"token":"`+tok+`"}`, nil, "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin")
	wantCode(t, w, http.StatusOK, "sign-in")
	c := sessionCookie(w)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin" || c.Secure ||
		c.MaxAge != int(DefaultIdleTTL.Seconds()) || strings.Contains(c.Value, tok) || strings.Contains(c.Value, strings.Split(tok, ".")[2]) {
		t.Fatalf("session cookie %+v", c)
	}
	var s sessionAnswer
	decodeJSON(t, w, &s)
	now := e.clock.now()
	if s.Role != admin.RoleAdmin || s.Tenant != e.a || s.CSRFToken == "" || !s.ExpiresAt.Equal(now.Add(DefaultIdleTTL)) || !s.EndsAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("session %+v", s)
	}
	w = e.do(http.MethodGet, "/admin/session", "", c)
	wantCode(t, w, http.StatusOK, "session")
	var again sessionAnswer
	decodeJSON(t, w, &again)
	if again.CSRFToken != s.CSRFToken || again.Tenant != e.a {
		t.Errorf("GET session %+v, sign-in said %+v", again, s)
	}

	// Secure over https: directly, through a proxy, or per the public URL.
	w = e.do(http.MethodPost, "/admin/session", `{"token":"`+tok+`"}`, nil, "X-Forwarded-Proto", "https")
	if c := sessionCookie(w); c == nil || !c.Secure {
		t.Errorf("cookie behind an https proxy %+v", c)
	}
	es := newEnv(t, "https://clvd.example.com")
	w = es.do(http.MethodPost, "/admin/session", `{"token":"`+es.token(t, es.a, admin.RoleAdmin, time.Hour)+`"}`, nil,
		"Origin", "https://clvd.example.com")
	if c := sessionCookie(w); w.Code != http.StatusOK || c == nil || !c.Secure {
		t.Errorf("cookie with an https public URL: %d %+v", w.Code, c)
	}

	expired, err := admin.IssueToken(e.key, e.a, admin.RoleAdmin, time.Hour, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := admin.IssueToken([]byte("another-key-another-key-another-key!"), e.a, admin.RoleAdmin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, body string
		headers    []string
		code       int
	}{
		{"garbage token", `{"token":"x.y.z"}`, nil, http.StatusUnauthorized},
		{"expired token", `{"token":"` + expired + `"}`, nil, http.StatusUnauthorized},
		{"another key", `{"token":"` + otherKey + `"}`, nil, http.StatusUnauthorized},
		{"unknown tenant", `{"token":"` + e.token(t, "t_ghost", admin.RoleAdmin, time.Hour) + `"}`, nil, http.StatusNotFound},
		{"empty token", `{"token":""}`, nil, http.StatusBadRequest},
		{"unknown field", `{"token":"` + tok + `","tenant":"x"}`, nil, http.StatusBadRequest},
		{"not JSON", `token=` + tok, []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"from another site", `{"token":"` + tok + `"}`, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", `{"token":"` + tok + `"}`, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
	} {
		w := e.do(http.MethodPost, "/admin/session", c.body, nil, c.headers...)
		wantCode(t, w, c.code, c.name)
		var body map[string]string
		decodeJSON(t, w, &body)
		if body["error"] == "" || sessionCookie(w) != nil {
			t.Errorf("%s: %s, cookie %v", c.name, w.Body, sessionCookie(w))
		}
	}
	// A session never outlives its token.
	short := e.token(t, e.a, admin.RoleAdmin, 10*time.Minute)
	_, s = e.signIn(t, short)
	if !s.ExpiresAt.Equal(now.Add(10*time.Minute)) || !s.EndsAt.Equal(now.Add(10*time.Minute)) {
		t.Errorf("session from a 10-minute token %+v", s)
	}
}

func TestSessionUsesTheAPI(t *testing.T) {
	e := newEnv(t, "")
	ck, s := e.signIn(t, e.token(t, e.a, admin.RoleAdmin, 24*time.Hour))
	tokB := e.token(t, e.b, admin.RoleAdmin, time.Hour)

	w := e.do(http.MethodGet, "/admin/api/v1/dashboard/summary", "", ck)
	wantCode(t, w, http.StatusOK, "summary through the session")
	var sum struct {
		Tenant struct{ ID, Name string }
	}
	decodeJSON(t, w, &sum)
	if sum.Tenant.ID != e.a {
		t.Fatalf("summary of %+v", sum)
	}
	// Tenant isolation: A's session never reaches B, whatever the request says.
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings?tenant="+e.b, "", ck), http.StatusForbidden, "A's session naming B")
	w = e.do(http.MethodGet, "/admin/api/v1/settings", "", ck, "Authorization", "Bearer "+tokB)
	wantCode(t, w, http.StatusOK, "A's session with B's bearer token")
	if !strings.Contains(w.Body.String(), e.a) || strings.Contains(w.Body.String(), e.b) {
		t.Fatalf("A's session with B's token read %s", w.Body)
	}
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/tenants", "", ck), http.StatusForbidden, "admin session on an operator route")
	// The dashboard's routes need the cookie (a bearer token is not enough there), and the API's own
	// routes never take the cookie.
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings", "", nil, "Authorization", "Bearer "+tokB), http.StatusUnauthorized, "bearer without session")
	wantCode(t, e.do(http.MethodGet, "/api/v1/settings", "", ck), http.StatusUnauthorized, "cookie on /api/v1")
	wantCode(t, e.do(http.MethodGet, "/api/v1/settings", "", nil, "Authorization", "Bearer "+ck.Value), http.StatusUnauthorized, "session as a bearer token")

	// Changes need the CSRF token and the same origin; refused ones change nothing.
	put := `{"tag_prefix":"dash_"}`
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"no CSRF token", nil},
		{"wrong CSRF token", []string{CSRFHeader, "x" + s.CSRFToken}},
		{"another origin", []string{CSRFHeader, s.CSRFToken, "Origin", "https://evil.example"}},
		{"cross-site", []string{CSRFHeader, s.CSRFToken, "Sec-Fetch-Site", "same-site"}},
	} {
		wantCode(t, e.do(http.MethodPut, "/admin/api/v1/settings", put, ck, c.headers...), http.StatusForbidden, "PUT settings, "+c.name)
	}
	if got, _ := e.db.TenantSettings(t.Context(), e.a); string(got) != "{}" {
		t.Fatalf("a refused PUT stored %s", got)
	}
	w = e.do(http.MethodPut, "/admin/api/v1/settings", put, ck, CSRFHeader, s.CSRFToken, "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin")
	wantCode(t, w, http.StatusOK, "PUT settings with the CSRF token")
	if got, _ := e.db.TenantSettings(t.Context(), e.a); string(got) != put {
		t.Fatalf("stored %s", got)
	}
	// The API's own validation answers through the session.
	w = e.do(http.MethodPut, "/admin/api/v1/settings", `{"tag_prefix":"Bad-Prefix"}`, ck, CSRFHeader, s.CSRFToken)
	wantCode(t, w, http.StatusBadRequest, "bad settings")
	if !strings.Contains(w.Body.String(), "tag_prefix") {
		t.Errorf("bad settings: %s", w.Body)
	}
	if got, _ := e.db.TenantSettings(t.Context(), e.b); string(got) != "{}" {
		t.Fatalf("B's settings changed: %s", got)
	}

	// A forged or tampered cookie is no session, and is cleared.
	for name, v := range map[string]string{
		"tampered":   strings.Replace(ck.Value, ".", ".x", 1),
		"garbage":    "v1.e30.AAAA",
		"other form": "abc",
	} {
		w := e.do(http.MethodGet, "/admin/api/v1/settings", "", &http.Cookie{Name: CookieName, Value: v})
		wantCode(t, w, http.StatusUnauthorized, name+" cookie")
		if c := sessionCookie(w); c == nil || c.MaxAge >= 0 {
			t.Errorf("%s cookie not cleared: %+v", name, c)
		}
	}
	// A cookie made with another server key is no session here.
	other := &env{clock: e.clock, db: e.db, a: e.a, b: e.b, key: []byte("another-key-another-key-another-key!")}
	other.r = other.router(t, other.key)
	otherCookie, _ := other.signIn(t, other.token(t, e.a, admin.RoleAdmin, time.Hour))
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings", "", otherCookie), http.StatusUnauthorized, "cookie of another key")
}

func TestSessionLifetime(t *testing.T) {
	e := newEnv(t, "")
	ck, _ := e.signIn(t, e.token(t, e.a, admin.RoleAdmin, 24*time.Hour))
	// Used within half the idle time: no new cookie; after it: renewed.
	e.clock.add(DefaultIdleTTL/2 - time.Minute)
	w := e.do(http.MethodGet, "/admin/session", "", ck)
	wantCode(t, w, http.StatusOK, "session at 14 min")
	if sessionCookie(w) != nil {
		t.Error("cookie renewed too early")
	}
	e.clock.add(2 * time.Minute)
	w = e.do(http.MethodGet, "/admin/api/v1/settings", "", ck)
	wantCode(t, w, http.StatusOK, "API at 16 min")
	renewed := sessionCookie(w)
	if renewed == nil || renewed.MaxAge != int(DefaultIdleTTL.Seconds()) {
		t.Fatalf("renewed cookie %+v", renewed)
	}
	// Unused for the idle time: over.
	e.clock.add(DefaultIdleTTL)
	wantCode(t, e.do(http.MethodGet, "/admin/session", "", renewed), http.StatusUnauthorized, "idle session")
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings", "", renewed), http.StatusUnauthorized, "idle session on the API")

	// However busy, a session ends DefaultMaxTTL after sign-in.
	ck, _ = e.signIn(t, e.token(t, e.a, admin.RoleAdmin, 48*time.Hour))
	start := e.clock.now()
	step := 20 * time.Minute // each use renews the cookie
	for e.clock.now().Sub(start) < DefaultMaxTTL-step {
		e.clock.add(step)
		w := e.do(http.MethodGet, "/admin/session", "", ck)
		wantCode(t, w, http.StatusOK, "busy session at "+e.clock.now().Sub(start).String())
		if c := sessionCookie(w); c != nil {
			ck = c
		}
	}
	e.clock.add(step)
	wantCode(t, e.do(http.MethodGet, "/admin/session", "", ck), http.StatusUnauthorized, "session after its longest life")
}

func TestOperatorSessionAndSignOut(t *testing.T) {
	e := newEnv(t, "")
	ck, s := e.signIn(t, e.token(t, "", admin.RoleOperator, time.Hour))
	if s.Role != admin.RoleOperator || s.Tenant != "" {
		t.Fatalf("operator session %+v", s)
	}
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/tenants", "", ck), http.StatusOK, "operator lists tenants")
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings", "", ck), http.StatusBadRequest, "operator without tenant")
	wantCode(t, e.do(http.MethodGet, "/admin/api/v1/settings?tenant="+e.b, "", ck), http.StatusOK, "operator naming B")
	wantCode(t, e.do(http.MethodPost, "/admin/api/v1/tenants", `{"name":"x"}`, ck), http.StatusForbidden, "create tenant without CSRF")

	wantCode(t, e.do(http.MethodDelete, "/admin/session", "", ck), http.StatusForbidden, "sign-out without CSRF")
	wantCode(t, e.do(http.MethodGet, "/admin/session", "", ck), http.StatusOK, "session after a refused sign-out")
	w := e.do(http.MethodDelete, "/admin/session", "", ck, CSRFHeader, s.CSRFToken)
	wantCode(t, w, http.StatusNoContent, "sign-out")
	if c := sessionCookie(w); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("sign-out cookie %+v", c)
	}
	// Without a session, sign-out just clears the cookie.
	wantCode(t, e.do(http.MethodDelete, "/admin/session", "", nil), http.StatusNoContent, "sign-out without a session")
}
