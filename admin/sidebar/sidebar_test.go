package sidebar

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/store"
)

func TestSidebarPage(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	_, r := newApp(t, e, func() time.Time { return now }, nil)

	// Tenant found from the token's issuer.
	w := postPage(t, r, MountPath+"/sidebar", e.token(t, now, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("page: %d\n%s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q", ct)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors https://*.zendesk.com " + e.fake.URL} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("headers %v", w.Header())
	}
	body := w.Body.String()
	for _, want := range []string{MountPath + "/assets/zaf.js?v=", MountPath + "/assets/sidebar.js?v=", `content="` + MountPath + `/api/customer"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "static.zdassets.com") || strings.Contains(body, "<script>") {
		t.Error("the page loads a third-party or inline script")
	}
	sess := sessionOf(t, w)
	c, err := (&sessions{key: deriveSessionKey(testServerKey), now: func() time.Time { return now }, leeway: time.Second}).verify(sess)
	if err != nil || c.Tenant != e.tenant.ID || c.Installation != testInstallation ||
		c.Subject != e.fake.URL+"/api/v2/users/"+testAgent+".json" || !c.ExpiresAt.Time.Equal(now.Add(DefaultSessionTTL)) {
		t.Fatalf("session %+v, %v", c, err)
	}

	// Tenant named in the path.
	if w := postPage(t, r, MountPath+"/sidebar/"+e.tenant.ID, e.token(t, now, nil)); w.Code != http.StatusOK {
		t.Fatalf("page with tenant: %d\n%s", w.Code, w.Body)
	}
	if n := e.fake.AppKeyRequests(testAppID); n != 1 {
		t.Errorf("%d public key requests for two pages, want 1", n)
	}

	for _, tc := range []struct {
		name, path, token string
		status            int
		text              string
	}{
		{"no token", "/sidebar", "", http.StatusBadRequest, "opens inside Zendesk"},
		{"expired", "/sidebar", e.token(t, now.Add(-time.Hour), nil), http.StatusUnauthorized, "expired"},
		{"forged", "/sidebar", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", http.StatusNotFound, "not connected"},
		{"other key", "/sidebar/" + e.tenant.ID, func() string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(e.fake.AppClaims(testAppID, testInstallation, testAgent, now, time.Minute))).SignedString(e.other)
			return tok
		}(), http.StatusUnauthorized, "could not be verified"},
		{"unknown tenant in path", "/sidebar/t_nope", e.token(t, now, nil), http.StatusNotFound, "not connected"},
		{"account of another tenant", "/sidebar", e.token(t, now, func(c map[string]any) { c["iss"] = "other.zendesk.com" }), http.StatusNotFound, "not connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := postPage(t, r, MountPath+tc.path, tc.token)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.text) {
				t.Fatalf("status %d, want %d with %q:\n%s", w.Code, tc.status, tc.text, w.Body)
			}
			if strings.Contains(w.Body.String(), "clvd-session") {
				t.Fatal("an error page carries a session")
			}
		})
	}

	// A plain GET is told the page opens inside Zendesk.
	if w := getJSON(t, r, MountPath+"/sidebar", ""); w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), "Upload private app") {
		t.Fatalf("GET page: %d %s", w.Code, w.Body)
	}
	// Assets are served; nothing else is.
	if w := getJSON(t, r, MountPath+"/assets/zaf.js", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "ZAFClient") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("zaf.js: %d %v", w.Code, w.Header())
	}
	if w := getJSON(t, r, MountPath+"/assets/page.html", ""); w.Code != http.StatusNotFound {
		t.Fatalf("template served: %d", w.Code)
	}

	// Two tenants on the same Zendesk account: the issuer is ambiguous, the path is not.
	twin := &store.Tenant{Name: "Acme EU", Zendesk: e.tenant.Zendesk}
	if err := e.db.CreateTenant(t.Context(), twin); err != nil {
		t.Fatal(err)
	}
	if w := postPage(t, r, MountPath+"/sidebar", e.token(t, now, nil)); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "--tenant") {
		t.Fatalf("ambiguous account: %d %s", w.Code, w.Body)
	}
	if w := postPage(t, r, MountPath+"/sidebar/"+twin.ID, e.token(t, now, nil)); w.Code != http.StatusOK {
		t.Fatalf("twin by path: %d %s", w.Code, w.Body)
	}
}

func TestSidebarCustomerAPI(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	clock := now
	_, r := newApp(t, e, func() time.Time { return clock }, nil)
	if err := e.db.SetTenantSettings(t.Context(), e.tenant.ID, json.RawMessage(`{"horizon_days": 180}`)); err != nil {
		t.Fatal(err)
	}
	cust := e.seedCustomer(t, e.tenant.ID, now)
	zafToken := e.token(t, now, nil)
	sess := sessionOf(t, postPage(t, r, MountPath+"/sidebar", zafToken))

	var got struct {
		Found    bool
		Customer struct {
			ID    int64
			Name  string
			Email string
		}
		Score struct {
			PredictedCLV      float64  `json:"predicted_clv"`
			Historic          string   `json:"historic"`
			Currency          string   `json:"currency"`
			Tier              string   `json:"tier"`
			ChurnBand         string   `json:"churn_band"`
			ChurnReasons      []string `json:"churn_reasons"`
			PAlive            float64  `json:"p_alive"`
			Current           bool     `json:"current"`
			ExpectedNextOrder string   `json:"expected_next_order"`
		}
		OrdersCount int `json:"orders_count"`
		Orders      []struct {
			OrderID string `json:"order_id"`
			Net     string `json:"net"`
			Status  string `json:"status"`
		}
		History  []struct{ Amount float64 }
		Forecast struct {
			HorizonDays        float64     `json:"horizon_days"`
			ExpectedOrderValue float64     `json:"expected_order_value"`
			Points             []time.Time `json:"points"`
		}
		Outreach []OutreachItem
	}
	for _, q := range []string{"user_id=" + cust.ZendeskUserID, "email=ANA.LIMA@example.com", "user_id=123&email=" + cust.Email} {
		w := getJSON(t, r, MountPath+"/api/customer?"+q, sess)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if !got.Found || got.Customer.ID != cust.ID || got.Customer.Name != "Ana Lima" {
			t.Fatalf("%s: %s", q, w.Body)
		}
	}
	s := got.Score
	if s.PredictedCLV != 1234.56 || s.Historic != "545.39" || s.Currency != "EUR" || s.Tier != "gold" || s.ChurnBand != "medium" ||
		len(s.ChurnReasons) != 2 || s.PAlive != 0.83 || !s.Current || s.ExpectedNextOrder == "" {
		t.Errorf("score %+v", s)
	}
	if got.OrdersCount != 4 || len(got.Orders) != 5 || got.Orders[0].OrderID != "A-1005" || got.Orders[0].Net != "99.99" ||
		got.Orders[2].Status != "refunded" || got.Orders[2].Net != "0.00" {
		t.Errorf("orders %d %+v", got.OrdersCount, got.Orders)
	}
	if len(got.History) != 5 || got.History[0].Amount != 129.9 {
		t.Errorf("history %+v", got.History)
	}
	// 3.4 expected purchases over 180 days: 3 drawn, the first at the expected next order.
	f := got.Forecast
	if f.HorizonDays != 180 || len(f.Points) != 3 || !f.Points[0].Equal(now.Add(38*24*time.Hour)) ||
		f.ExpectedOrderValue < 363 || f.ExpectedOrderValue > 364 {
		t.Errorf("forecast %+v", f)
	}
	if o := got.Outreach; len(o) != 1 || o[0].Status != "sent" || o[0].Kind != "churn_high" || o[0].Channel != "zendesk ticket #4242" ||
		o[0].Summary != "churn high (62%), tier gold, churn was medium" || !o[0].At.Equal(now.Add(-72*time.Hour)) {
		t.Errorf("outreach %+v", got.Outreach)
	}

	// Unknown requester: a 200 that says so.
	w := getJSON(t, r, MountPath+"/api/customer?user_id=424242&email=nobody@example.com", sess)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"found":false`) {
		t.Fatalf("unknown: %d %s", w.Code, w.Body)
	}

	// A customer of another tenant is not visible with this tenant's session.
	other := &store.Tenant{Name: "Other"}
	if err := e.db.CreateTenant(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.ResolveCustomer(t.Context(), other.ID, store.Identity{Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	if w := getJSON(t, r, MountPath+"/api/customer?email=bob@example.com", sess); !strings.Contains(w.Body.String(), `"found":false`) {
		t.Fatalf("other tenant's customer: %s", w.Body)
	}

	for _, tc := range []struct {
		name, query, session string
		status               int
	}{
		{"no session", "email=a@b.c", "", http.StatusUnauthorized},
		{"garbage session", "email=a@b.c", "nope", http.StatusUnauthorized},
		{"the ZAF token itself", "email=a@b.c", e.token(t, now, nil), http.StatusUnauthorized},
		{"signed with the server key itself", "email=a@b.c", func() string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, sessionClaims{Tenant: e.tenant.ID, RegisteredClaims: jwt.RegisteredClaims{
				Issuer: sessionIssuer, Audience: jwt.ClaimStrings{sessionAudience}, ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString(testServerKey)
			return tok
		}(), http.StatusUnauthorized},
		{"no requester", "", sess, http.StatusBadRequest},
		{"unknown parameter", "email=a@b.c&tenant=x", sess, http.StatusBadRequest},
		{"user id not digits", "user_id=1%20OR%201", sess, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := getJSON(t, r, MountPath+"/api/customer?"+tc.query, tc.session)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
		})
	}

	// Sessions end.
	clock = now.Add(DefaultSessionTTL + time.Minute)
	if w := getJSON(t, r, MountPath+"/api/customer?email=a@b.c", sess); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "expired") {
		t.Fatalf("expired session: %d %s", w.Code, w.Body)
	}
	// Nor can the ZAF token that opened it be replayed for a new one: it expired long before.
	if w := postPage(t, r, MountPath+"/sidebar", zafToken); w.Code != http.StatusUnauthorized {
		t.Fatalf("the ZAF token replayed after the session expired: %d, want 401", w.Code)
	}
}
