package admin

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

type route struct {
	name, method, path, body string
	operatorOnly             bool
}

// tenantInPath: a /tenants/:id/... route, with tenant A in the path and no ?tenant=.
func (rt route) tenantInPath() bool { return strings.HasPrefix(rt.path, "/api/v1/tenants/") }

// routes lists every route with a request that succeeds for an authorised caller; the Zendesk
// routes install into zd.
func routes(f *fixture, zd *zendesktest.Server) []route {
	zdPath := "/api/v1/tenants/" + f.a + "/zendesk"
	return []route{
		{"create tenant", http.MethodPost, "/api/v1/tenants", `{"name":"New shop"}`, true},
		{"list tenants", http.MethodGet, "/api/v1/tenants", "", true},
		{"get settings", http.MethodGet, "/api/v1/settings", "", false},
		{"put settings", http.MethodPut, "/api/v1/settings", `{"tag_prefix":"ltv_"}`, false},
		{"get customer by id", http.MethodGet, fmt.Sprintf("/api/v1/customers/%d", f.ana), "", false},
		{"get customer by email", http.MethodGet, "/api/v1/customers/ana@example.com", "", false},
		{"list customers", http.MethodGet, "/api/v1/customers?sort=churn", "", false},
		{"export customers", http.MethodGet, "/api/v1/customers?format=csv", "", false},
		{"kpis", http.MethodGet, "/api/v1/kpis?from=2024-01-01&to=2024-12-31", "", false},
		{"model", http.MethodGet, "/api/v1/model?limit=5", "", false},
		{"list outreach", http.MethodGet, "/api/v1/outreach?status=sent", "", false},
		{"export outreach", http.MethodGet, "/api/v1/outreach?format=csv", "", false},
		{"dashboard summary", http.MethodGet, "/api/v1/dashboard/summary", "", false},
		{"dashboard kpi series", http.MethodGet, "/api/v1/dashboard/kpi-series?months=3&to=2024-06", "", false},
		{"dashboard tiers", http.MethodGet, "/api/v1/dashboard/tiers", "", false},
		{"dashboard segments", http.MethodGet, "/api/v1/dashboard/segments", "", false},
		{"dashboard clv histogram", http.MethodGet, "/api/v1/dashboard/clv-histogram?bins=10", "", false},
		{"dashboard cohorts", http.MethodGet, "/api/v1/dashboard/cohorts?months=6", "", false},
		{"dashboard at-risk", http.MethodGet, "/api/v1/dashboard/at-risk?limit=5", "", false},
		{"install zendesk", http.MethodPost, zdPath + "/install", installBody(zd.URL, zdToken, `"triggers":true`), false},
		{"zendesk status", http.MethodGet, zdPath, "", false},
		{"uninstall zendesk", http.MethodPost, zdPath + "/uninstall", "", false},
	}
}

// withQuery adds a query parameter to a path.
func withQuery(path, name, value string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + name + "=" + url.QueryEscape(value)
}

func TestAuthOnEveryRoute(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		zd := zendesktest.New(t, zdEmail, zdToken)
		r := newRouterWith(t, db, func(o *Options) { o.AllowLocalTargets = true }) // the fake Zendesk is on 127.0.0.1
		ctx := t.Context()

		valid := token(t, f.a, RoleAdmin)
		parts := strings.Split(valid, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), f.a, f.b, 1))) + "." + parts[2]
		expired, err := IssueToken(testKey, f.a, RoleAdmin, time.Hour, testNow.Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// Every way a token is wrong; each is otherwise an admin token of tenant A, the tenant the
		// requests are about, so only the defect can make them fail.
		unauthenticated := []struct{ name, header string }{
			{"missing token", ""},
			{"not a bearer token", "Basic YWRtaW46YWRtaW4="},
			{"empty bearer", "Bearer "},
			{"garbage", "Bearer not.a.jwt"},
			{"expired", "Bearer " + expired},
			{"alg none", "Bearer " + forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.a, nil)},
			{"alg none, HS256 header", "Bearer " + parts[0] + "." + parts[1] + "."},
			{"HS384 with the server key", "Bearer " + forge(t, jwt.SigningMethodHS384, testKey, f.a, nil)},
			{"HS512 with the server key", "Bearer " + forge(t, jwt.SigningMethodHS512, testKey, f.a, nil)},
			{"RS256", "Bearer " + forge(t, jwt.SigningMethodRS256, rsaKey, f.a, nil)},
			{"HS256 with another key", "Bearer " + forge(t, jwt.SigningMethodHS256, []byte("another-key-of-32-bytes-or-more!!"), f.a, nil)},
			{"tampered payload", "Bearer " + tampered},
			{"wrong issuer", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.Issuer = "someone" })},
			{"wrong audience", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.Audience = jwt.ClaimStrings{"clvd-api"} })},
			{"no expiry", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.ExpiresAt = nil })},
			{"no iat", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.IssuedAt = nil })},
			{"no jti", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.ID = "" })},
			{"issued in the future", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) {
				c.IssuedAt = jwt.NewNumericDate(testNow.Add(5 * time.Minute))
			})},
			{"expired beyond the leeway", "Bearer " + forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) {
				c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-Leeway - time.Second))
			})},
		}
		forbidden := []struct{ name, token string }{
			{"unknown role", forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.Role = "viewer" })},
			{"admin without tenant", forge(t, jwt.SigningMethodHS256, testKey, "", nil)},
			{"operator with a tenant", forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.Role = RoleOperator })},
		}
		operator := token(t, "", RoleOperator)
		for _, rt := range routes(f, zd) {
			path := rt.path
			if !rt.operatorOnly && !rt.tenantInPath() {
				path = withQuery(path, "tenant", f.a)
			}
			for _, bad := range unauthenticated {
				var hdr []string
				if bad.header != "" {
					hdr = []string{"Authorization", bad.header}
				}
				w := call(t, r, rt.method, path, "", rt.body, hdr...)
				wantStatus(t, w, http.StatusUnauthorized, rt.name+" with "+bad.name)
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s with %s: no WWW-Authenticate challenge", rt.name, bad.name)
				}
			}
			for _, bad := range forbidden {
				wantStatus(t, call(t, r, rt.method, path, bad.token, rt.body), http.StatusForbidden, rt.name+" with "+bad.name)
			}
			if rt.operatorOnly {
				wantStatus(t, call(t, r, rt.method, path, valid, rt.body), http.StatusForbidden, rt.name+" with an admin token")
			} else {
				// Tenant B's admin naming tenant A.
				wantStatus(t, call(t, r, rt.method, path, token(t, f.b, RoleAdmin), rt.body), http.StatusForbidden, rt.name+" with another tenant's token")
			}
		}

		// Nothing above changed anything.
		if tenants := must(db.ListTenants(ctx)); len(tenants) != 2 {
			t.Fatalf("refused requests created tenants: %d tenants", len(tenants))
		}
		for _, tn := range []string{f.a, f.b} {
			if s := must(db.TenantSettings(ctx, tn)); string(s) != "{}" {
				t.Fatalf("refused requests changed settings of %s: %s", tn, s)
			}
			if _, _, err := db.GetTenantState(ctx, tn, "refit_requested"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("refused requests requested a refit of %s: %v", tn, err)
			}
			if _, _, err := db.GetTenantState(ctx, tn, ZendeskInstallStateKey); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("refused requests installed Zendesk for %s: %v", tn, err)
			}
			if ten := must(db.GetTenant(ctx, tn)); ten.Zendesk != (store.ZendeskAccount{}) {
				t.Fatalf("refused requests stored Zendesk credentials on %s", tn)
			}
		}
		if n := len(zd.Requests()); n != 0 {
			t.Fatalf("refused requests reached Zendesk: %d requests", n)
		}

		// Controls: the forging helper makes acceptable tokens, and every route answers its
		// authorised callers (an operator naming the tenant; the tenant's own admin).
		forged := forge(t, jwt.SigningMethodHS256, testKey, f.a, nil)
		withinLeeway := forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-Leeway + 5*time.Second))
		})
		for _, rt := range routes(f, zd) {
			want := http.StatusOK
			if rt.method == http.MethodPost && !rt.tenantInPath() {
				want = http.StatusCreated
			}
			if rt.tenantInPath() {
				wantStatus(t, call(t, r, rt.method, rt.path, operator, rt.body), want, rt.name+" as operator")
				wantStatus(t, call(t, r, rt.method, rt.path, forged, rt.body), want, rt.name+" with a forged-but-valid token")
				wantStatus(t, call(t, r, rt.method, rt.path, withinLeeway, rt.body), want, rt.name+" expired within the leeway")
				wantStatus(t, call(t, r, rt.method, withQuery(rt.path, "tenant", f.a), valid, rt.body), http.StatusBadRequest, rt.name+" with ?tenant=")
				wantStatus(t, call(t, r, rt.method, strings.Replace(rt.path, f.a, "t_nope", 1), operator, rt.body), http.StatusNotFound,
					rt.name+" for an unknown tenant")
				continue
			}
			if rt.operatorOnly {
				wantStatus(t, call(t, r, rt.method, rt.path, operator, rt.body), want, rt.name+" as operator")
				continue
			}
			wantStatus(t, call(t, r, rt.method, withQuery(rt.path, "tenant", f.a), operator, rt.body), want, rt.name+" as operator")
			wantStatus(t, call(t, r, rt.method, rt.path, forged, rt.body), want, rt.name+" with a forged-but-valid token")
			wantStatus(t, call(t, r, rt.method, rt.path, withinLeeway, rt.body), want, rt.name+" expired within the leeway")
			wantStatus(t, call(t, r, rt.method, withQuery(rt.path, "tenant", f.a), valid, rt.body), want, rt.name+" naming its own tenant")
			// Operators must say which tenant; an unknown one is 404.
			wantStatus(t, call(t, r, rt.method, rt.path, operator, rt.body), http.StatusBadRequest, rt.name+" as operator without tenant")
			wantStatus(t, call(t, r, rt.method, withQuery(rt.path, "tenant", "t_nope"), operator, rt.body), http.StatusNotFound, rt.name+" for an unknown tenant")
			wantStatus(t, call(t, r, rt.method, withQuery(withQuery(rt.path, "tenant", f.a), "tenant", f.a), operator, rt.body),
				http.StatusBadRequest, rt.name+" with tenant twice")
		}
		// An admin token of a tenant that no longer exists (or never did) reaches nothing.
		ghost := token(t, "t_ghost", RoleAdmin)
		for _, rt := range routes(f, zd) {
			switch {
			case rt.tenantInPath():
				wantStatus(t, call(t, r, rt.method, strings.Replace(rt.path, f.a, "t_ghost", 1), ghost, rt.body), http.StatusNotFound, rt.name+" for a missing tenant")
			case !rt.operatorOnly:
				wantStatus(t, call(t, r, rt.method, rt.path, ghost, rt.body), http.StatusNotFound, rt.name+" for a missing tenant")
			}
		}
	})
}

func TestTenantRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, db)
		op := token(t, "", RoleOperator)

		w := call(t, r, http.MethodPost, "/api/v1/tenants", op, `{"name":"  Acme  "}`)
		wantStatus(t, w, http.StatusCreated, "create tenant")
		var created struct {
			ID       string
			Name     string
			Webhooks map[string]struct{ URL, Secret string }
		}
		decode(t, w, &created)
		if created.Name != "Acme" || !strings.HasPrefix(created.ID, "t_") {
			t.Fatalf("created %+v", created)
		}
		secret := created.Webhooks["orders"].Secret
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
			t.Fatalf("orders secret %q", secret)
		}
		if got := created.Webhooks["orders"].URL; got != "https://clvd.example.com/webhooks/"+created.ID+"/orders" {
			t.Errorf("orders webhook URL %q", got)
		}
		stored := must(db.GetTenant(t.Context(), created.ID))
		if stored.Name != "Acme" || stored.OrdersSecret != secret || string(stored.Settings) != "{}" {
			t.Fatalf("stored tenant %+v", stored)
		}

		w = call(t, r, http.MethodGet, "/api/v1/tenants", op, "")
		wantStatus(t, w, http.StatusOK, "list tenants")
		for _, s := range []string{secret, "orders-secret-"} {
			if strings.Contains(w.Body.String(), s) {
				t.Fatalf("tenant list shows a secret: %s", w.Body)
			}
		}
		var list struct {
			Tenants []struct {
				ID         string          `json:"id"`
				SecretsSet map[string]bool `json:"secrets_set"`
			}
		}
		decode(t, w, &list)
		var ids []string
		for _, tn := range list.Tenants {
			ids = append(ids, tn.ID)
			if !tn.SecretsSet["orders"] || tn.SecretsSet["shopify"] {
				t.Errorf("secrets_set of %s = %v", tn.ID, tn.SecretsSet)
			}
		}
		slices.Sort(ids)
		want := []string{f.a, f.b, created.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("listed %v, want %v", ids, want)
		}

		// Bad input creates nothing.
		for _, bad := range []struct{ body, why string }{
			{`{}`, "no name"},
			{`{"name":"   "}`, "blank name"},
			{`{"name":"` + strings.Repeat("x", 201) + `"}`, "name too long"},
			{`{"name":"x","orders_secret":"mine"}`, "unknown field"},
			{`{"name":42}`, "name not a string"},
			{`["x"]`, "not an object"},
			{`{"name":"x"`, "not JSON"},
			{``, "no body"},
		} {
			wantStatus(t, call(t, r, http.MethodPost, "/api/v1/tenants", op, bad.body), http.StatusBadRequest, "create tenant: "+bad.why)
		}
		wantStatus(t, call(t, r, http.MethodPost, "/api/v1/tenants", op, `{"name":"`+strings.Repeat("x", maxBodyBytes)+`"}`),
			http.StatusRequestEntityTooLarge, "create tenant: huge body")
		wantStatus(t, call(t, r, http.MethodPost, "/api/v1/tenants?x=1", op, `{"name":"x"}`), http.StatusBadRequest, "create tenant: unknown parameter")
		wantStatus(t, call(t, r, http.MethodGet, "/api/v1/tenants?tenant="+f.a, op, ""), http.StatusBadRequest, "list tenants: unknown parameter")
		if n := len(must(db.ListTenants(t.Context()))); n != 3 {
			t.Fatalf("%d tenants after bad requests, want 3", n)
		}
	})
}

func TestSettingsRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, db)
		ctx := t.Context()
		adminA, adminB := token(t, f.a, RoleAdmin), token(t, f.b, RoleAdmin)

		type settings struct {
			Tenant    string          `json:"tenant"`
			Settings  json.RawMessage `json:"settings"`
			Effective *struct {
				TagPrefix string `json:"tag_prefix"`
				Period    string `json:"period"`
			} `json:"effective"`
			RefitRequested bool `json:"refit_requested"`
		}
		var s settings
		w := call(t, r, http.MethodGet, "/api/v1/settings", adminA, "")
		wantStatus(t, w, http.StatusOK, "get settings")
		decode(t, w, &s)
		if s.Tenant != f.a || string(s.Settings) != "{}" || s.Effective == nil || s.Effective.TagPrefix != "clv_" || s.Effective.Period != "week" {
			t.Fatalf("default settings %s", w.Body)
		}

		w = call(t, r, http.MethodPut, "/api/v1/settings", adminA, "{\n  \"tag_prefix\": \"ltv_\",\n  \"period\": \"day\"\n}")
		wantStatus(t, w, http.StatusOK, "put settings")
		s = settings{}
		decode(t, w, &s)
		if !s.RefitRequested || s.Effective.TagPrefix != "ltv_" || s.Effective.Period != "day" {
			t.Fatalf("put answer %s", w.Body)
		}
		if got := must(db.TenantSettings(ctx, f.a)); string(got) != `{"tag_prefix":"ltv_","period":"day"}` {
			t.Fatalf("stored settings %s", got)
		}
		raw, _, err := db.GetTenantState(ctx, f.a, "refit_requested")
		if err != nil || !strings.Contains(string(raw), "settings changed") {
			t.Fatalf("refit request after a settings change: %s, %v", raw, err)
		}
		w = call(t, r, http.MethodGet, "/api/v1/settings", adminA, "")
		s = settings{}
		decode(t, w, &s)
		if s.Effective.TagPrefix != "ltv_" {
			t.Fatalf("get after put: %s", w.Body)
		}

		// Tenant B sees and changes only its own settings.
		w = call(t, r, http.MethodGet, "/api/v1/settings", adminB, "")
		s = settings{}
		decode(t, w, &s)
		if s.Tenant != f.b || string(s.Settings) != "{}" {
			t.Fatalf("tenant B sees %s", w.Body)
		}
		wantStatus(t, call(t, r, http.MethodPut, "/api/v1/settings", adminB, `{"tag_prefix":"b_"}`), http.StatusOK, "put settings B")
		if got := must(db.TenantSettings(ctx, f.a)); string(got) != `{"tag_prefix":"ltv_","period":"day"}` {
			t.Fatalf("B's PUT changed A's settings: %s", got)
		}
		if got := must(db.TenantSettings(ctx, f.b)); string(got) != `{"tag_prefix":"b_"}` {
			t.Fatalf("B's settings %s", got)
		}

		// Invalid settings: 400 with worker.ParseSettings' message; nothing stored, no refit.
		if err := db.PutTenantState(ctx, f.a, "refit_requested", json.RawMessage(`{"reason":"marker"}`)); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct{ body, msg string }{
			{`{"tag_prefix":"Bad-Prefix"}`, "tag_prefix"},
			{`{"period":"month"}`, "period"},
			{`{"tag_prefix":5}`, "settings"},
			{`[]`, "JSON object"},
			{`null`, "JSON object"},
			{`{"tag_prefix":`, "JSON object"},
			{``, "JSON object"},
			{`{"outreach":{"webhook":{"url":"http://hooks.example.com/x"}}}`, "https"},
			{`{"outreach":{"webhook":{"url":"https://10.1.2.3/x"}}}`, "private"},
			{`{"outreach":{"webhook":{"url":"https://localhost/x"}}}`, "local"},
			{`{"outreach":{"rules":[{"name":"x"}]}}`, "no condition"},
		} {
			w := call(t, r, http.MethodPut, "/api/v1/settings", adminA, bad.body)
			wantStatus(t, w, http.StatusBadRequest, "put settings "+bad.body)
			if !strings.Contains(w.Body.String(), bad.msg) {
				t.Errorf("put settings %s: error %s does not mention %s", bad.body, w.Body, bad.msg)
			}
		}
		wantStatus(t, call(t, r, http.MethodGet, "/api/v1/settings?verbose=1", adminA, ""), http.StatusBadRequest, "get settings: unknown parameter")
		wantStatus(t, call(t, r, http.MethodPut, "/api/v1/settings?verbose=1", adminA, `{}`), http.StatusBadRequest, "put settings: unknown parameter")
		if got := must(db.TenantSettings(ctx, f.a)); string(got) != `{"tag_prefix":"ltv_","period":"day"}` {
			t.Fatalf("a refused PUT changed the settings: %s", got)
		}
		if raw, _, _ := db.GetTenantState(ctx, f.a, "refit_requested"); !strings.Contains(string(raw), "marker") {
			t.Fatalf("a refused PUT requested a refit: %s", raw)
		}
	})
}

// refitFails is a store whose tenant state cannot be written, so refit requests fail.
type refitFails struct{ *store.DB }

func (refitFails) PutTenantState(context.Context, string, string, json.RawMessage) error {
	return errors.New("disk full")
}

func TestSettingsRefitFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, refitFails{db})
		w := call(t, r, http.MethodPut, "/api/v1/settings", token(t, f.a, RoleAdmin), `{"tag_prefix":"x_"}`)
		wantStatus(t, w, http.StatusServiceUnavailable, "put settings with the refit request failing")
		if strings.Contains(w.Body.String(), "disk full") || !strings.Contains(w.Body.String(), "PUT again") {
			t.Errorf("error %s", w.Body)
		}
	})
}
