package admin

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/store"
)

// seedDashboard adds to the fixture valuable customers about to churn, in A (with and without a
// Zendesk user) and in B, and connects A to a Zendesk account.
func seedDashboard(t *testing.T, db *store.DB, f *fixture) (carl, dora, eve int64) {
	t.Helper()
	ctx := t.Context()
	tn := must(db.GetTenant(ctx, f.a))
	tn.Zendesk.BaseURL = "https://acme.zendesk.com"
	if err := db.UpdateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	score := func(tier string, clv float64) store.Score {
		return store.Score{Model: "bgnbd", Currency: "EUR", HistoricMinor: 10000, PredictedCLV: clv, PAlive: 0.1, ChurnProbability: 0.9,
			ChurnBand: "high", ChurnReasons: []string{"overdue"}, Tier: tier, Segment: "cant_lose", Orders: 3, ScoredAt: day("2025-02-01")}
	}
	carl = must(mustResolve(ctx, db, f.a, store.Identity{Email: "carl@example.com", ZendeskUserID: "9001", Name: "Carl"}))
	dora = must(mustResolve(ctx, db, f.a, store.Identity{Email: "dora@example.com", Name: "Dora"}))
	eve = must(mustResolve(ctx, db, f.a, store.Identity{Email: "eve@example.com", ZendeskUserID: "9002", Name: "Eve"}))
	scoreFor(t, db, f.a, carl, score("platinum", 500))
	scoreFor(t, db, f.a, dora, score("gold", 700))
	scoreFor(t, db, f.a, eve, score("gold", 100))
	bWhale := must(mustResolve(ctx, db, f.b, store.Identity{Email: "whale@example.com", ZendeskUserID: "1"}))
	scoreFor(t, db, f.b, bWhale, score("platinum", 1e6))
	return carl, dora, eve
}

func TestDashboardRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		carl, dora, eve := seedDashboard(t, db, f)
		r := newRouter(t, db)
		adminA, adminB := token(t, f.a, RoleAdmin), token(t, f.b, RoleAdmin)
		get := func(path, tok string, v any) {
			t.Helper()
			w := call(t, r, http.MethodGet, path, tok, "")
			wantStatus(t, w, http.StatusOK, path)
			decode(t, w, v)
		}

		var sum dashboardSummaryJSON
		get("/api/v1/dashboard/summary", adminA, &sum)
		// A's purchases: bob's of 2024-01-01 and ana's of 2024-06-01 (her September order was cancelled).
		if sum.Tenant.ID != f.a || sum.Tenant.Name != "Shop" || sum.Tenant.ZendeskURL != "https://acme.zendesk.com" ||
			sum.Customers.Total != 5 || sum.Customers.Scored != 5 || sum.Purchases != 2 || sum.AnchorMonth != "2024-06" ||
			!sum.FirstPurchase.Equal(day("2024-01-01")) || !sum.LastPurchase.Equal(day("2024-06-01")) ||
			!reflect.DeepEqual(sum.Currencies, []currencyCountJSON{{"EUR", 5}}) || !sum.Now.Equal(testNow) {
			t.Errorf("summary %+v", sum)
		}
		var sumB dashboardSummaryJSON
		get("/api/v1/dashboard/summary", adminB, &sumB)
		if sumB.Tenant.ID != f.b || sumB.Tenant.ZendeskURL != "" || sumB.Customers.Total != 2 || sumB.Purchases != 1 ||
			!reflect.DeepEqual(sumB.Currencies, []currencyCountJSON{{"EUR", 1}, {"USD", 1}}) {
			t.Errorf("summary of B %+v", sumB)
		}

		// The series ends with the latest purchase's month by default; each month is GET /kpis of it.
		type series struct {
			Months     []kpiPointJSON `json:"months"`
			Start, End string
		}
		var s series
		get("/api/v1/dashboard/kpi-series", adminA, &s)
		if len(s.Months) != 12 || s.Start != "2023-07" || s.End != "2024-06" || s.Months[11].Month != "2024-06" || s.Months[0].From != "2023-07-01" {
			t.Fatalf("default series %+v", s)
		}
		june := s.Months[11]
		var k kpiAnswer
		get("/api/v1/kpis?from=2024-06-01&to=2024-06-30", adminA, &k)
		if june.To != "2024-06-30" || june.Partial || june.Orders != k.Orders || june.Orders != 1 || june.Buyers != k.Customers.Buyers ||
			!reflect.DeepEqual(june.RetentionRate, k.RetentionRate) || june.ActiveAtStart != k.Customers.ActiveAtStart ||
			len(june.AverageOrderValue) != 1 || june.AverageOrderValue[0].AverageOrder.Minor != 4990 {
			t.Errorf("June %+v\nkpis %+v", june, k)
		}
		if jan := s.Months[6]; jan.Month != "2024-01" || jan.NewCustomers != 1 || jan.Orders != 1 {
			t.Errorf("January %+v", jan)
		}
		// The current month is counted to date; months after today are left out.
		get("/api/v1/dashboard/kpi-series?months=3&to=2025-05", adminA, &s)
		if len(s.Months) != 1 || s.Months[0].Month != "2025-03" || !s.Months[0].Partial || s.Months[0].To != "2025-03-01" {
			t.Errorf("series into the future %+v", s)
		}
		get("/api/v1/dashboard/kpi-series?months=2&to=2024-06", adminB, &s)
		if len(s.Months) != 2 || s.Months[1].Orders != 1 || s.Months[1].AverageOrderValue[0].Currency != "USD" {
			t.Errorf("B's series %+v", s)
		}

		var tiers struct{ Tiers []tierStatsJSON }
		get("/api/v1/dashboard/tiers", adminA, &tiers)
		var order []string
		for _, tr := range tiers.Tiers {
			order = append(order, tr.Tier)
		}
		if strings.Join(order, ",") != "platinum,gold,silver" {
			t.Errorf("tier order %v", order)
		}
		if g := tiers.Tiers[1]; g.Customers != 3 || g.HighChurn != 2 || g.Historic.Minor != 4990+20000 || g.PredictedCLV != 321.5+800 ||
			g.Historic.Amount != "249.90" || g.AvgPredictedCLV != (321.5+800)/3 {
			t.Errorf("gold %+v", g)
		}

		var segs struct {
			Segments  []segmentJSON
			Customers int64
		}
		get("/api/v1/dashboard/segments", adminA, &segs)
		if segs.Customers != 5 || len(segs.Segments) != 3 || segs.Segments[0].Segment != "loyal" || segs.Segments[1].Segment != "cant_lose" ||
			segs.Segments[1].Customers != 3 || segs.Segments[1].Share != 0.6 || segs.Segments[2].Segment != "lost" {
			t.Errorf("segments %+v", segs)
		}

		var hist histogramJSON
		get("/api/v1/dashboard/clv-histogram?bins=5", adminA, &hist)
		var counted int64
		for _, b := range hist.Bins {
			counted += b.Count
		}
		if hist.Currency != "EUR" || hist.Customers != 5 || counted != 5 || hist.BinWidth <= 0 || *hist.Max != 700 || *hist.Min != 10 {
			t.Errorf("histogram %+v", hist)
		}
		get("/api/v1/dashboard/clv-histogram?currency=usd", adminB, &hist)
		if hist.Currency != "USD" || hist.Customers != 1 || len(hist.Currencies) != 2 {
			t.Errorf("B's USD histogram %+v", hist)
		}
		get("/api/v1/dashboard/clv-histogram?currency=GBP", adminA, &hist)
		if hist.Customers != 0 || hist.Mean != nil || len(hist.Bins) != 0 {
			t.Errorf("empty histogram %+v", hist)
		}

		var co struct {
			Start, End string
			Cohorts    []cohortJSON
		}
		get("/api/v1/dashboard/cohorts?months=6", adminA, &co)
		if co.Start != "2024-01" || co.End != "2024-06" || len(co.Cohorts) != 6 || co.Cohorts[0].Customers != 1 ||
			len(co.Cohorts[0].Retention) != 6 || *co.Cohorts[0].Retention[0] != 1 || *co.Cohorts[0].Retention[5] != 0 ||
			co.Cohorts[1].Retention[0] != nil || co.Cohorts[5].Customers != 1 || len(co.Cohorts[5].Active) != 1 {
			t.Errorf("cohorts %+v", co)
		}

		var risk struct {
			Customers  []atRiskJSON
			More       bool
			ZendeskURL string `json:"zendesk_url"`
		}
		get("/api/v1/dashboard/at-risk", adminA, &risk)
		if len(risk.Customers) != 3 || risk.More || risk.ZendeskURL != "https://acme.zendesk.com" {
			t.Fatalf("at risk %+v", risk)
		}
		want := []struct {
			id   int64
			link string
		}{{dora, ""}, {carl, "https://acme.zendesk.com/agent/users/9001"}, {eve, "https://acme.zendesk.com/agent/users/9002"}}
		for i, w := range want {
			if got := risk.Customers[i]; got.ID != w.id || got.ZendeskURL != w.link || got.Score == nil || got.Score.ChurnBand != "high" {
				t.Errorf("at risk #%d = %+v, want id %d link %q", i, got, w.id, w.link)
			}
		}
		get("/api/v1/dashboard/at-risk?limit=2", adminA, &risk)
		if len(risk.Customers) != 2 || !risk.More {
			t.Errorf("at risk, 2: %+v", risk)
		}
		get("/api/v1/dashboard/at-risk", adminB, &risk)
		if len(risk.Customers) != 1 || risk.Customers[0].Email != "whale@example.com" || risk.Customers[0].ZendeskURL != "" {
			t.Errorf("B's at risk (no Zendesk connected) %+v", risk)
		}

		for _, bad := range []string{
			"/api/v1/dashboard/kpi-series?months=0", "/api/v1/dashboard/kpi-series?months=37", "/api/v1/dashboard/kpi-series?to=2024-13",
			"/api/v1/dashboard/kpi-series?to=2024-06-01", "/api/v1/dashboard/cohorts?months=x", "/api/v1/dashboard/clv-histogram?bins=1",
			"/api/v1/dashboard/clv-histogram?currency=EURO", "/api/v1/dashboard/at-risk?limit=0", "/api/v1/dashboard/at-risk?limit=501",
			"/api/v1/dashboard/summary?x=1", "/api/v1/dashboard/tiers?months=1", "/api/v1/dashboard/segments?limit=1",
		} {
			wantStatus(t, call(t, r, http.MethodGet, bad, adminA, ""), http.StatusBadRequest, bad)
		}
	})
}

func TestZendeskUserURL(t *testing.T) {
	h := &Handler{}
	local := &Handler{allowLocal: true}
	for _, c := range []struct {
		h          *Handler
		base, user string
		want       string
	}{
		{h, "https://acme.zendesk.com", "123", "https://acme.zendesk.com/agent/users/123"},
		{h, "https://acme.zendesk.com/", "123", "https://acme.zendesk.com/agent/users/123"},
		{h, "https://acme.zendesk.com/some/path?x=1", "123", "https://acme.zendesk.com/agent/users/123"},
		{h, "https://acme.zendesk.com", "12a", ""},
		{h, "https://acme.zendesk.com", "", ""},
		{h, "", "123", ""},
		{h, "http://127.0.0.1:8080", "5", ""},
		{local, "http://127.0.0.1:8080", "5", "http://127.0.0.1:8080/agent/users/5"},
		{h, "javascript:alert(1)", "5", ""},
		{h, "https://user:pw@acme.zendesk.com", "5", ""},
	} {
		if got := c.h.zendeskUserURL(c.base, c.user); got != c.want {
			t.Errorf("zendeskUserURL(%q, %q) = %q, want %q", c.base, c.user, got, c.want)
		}
	}
}

func TestSessionBridge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		h, err := NewHandler(Options{Store: db, Key: testKey, Now: func() time.Time { return testNow }, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		r := newRouter(t, db)
		ctx := context.Background()

		cl, err := h.VerifyToken(ctx, " "+token(t, f.a, RoleAdmin)+"\n")
		if err != nil || cl.Tenant != f.a || cl.Role != RoleAdmin {
			t.Fatalf("VerifyToken(admin) = %+v, %v", cl, err)
		}
		if cl, err := h.VerifyToken(ctx, token(t, "", RoleOperator)); err != nil || cl.Role != RoleOperator {
			t.Fatalf("VerifyToken(operator) = %+v, %v", cl, err)
		}
		expired := must(IssueToken(testKey, f.a, RoleAdmin, time.Hour, testNow.Add(-2*time.Hour)))
		for _, c := range []struct {
			name, token string
			status      int
		}{
			{"garbage", "x.y.z", http.StatusUnauthorized},
			{"expired", expired, http.StatusUnauthorized},
			{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.a, nil), http.StatusUnauthorized},
			{"another key", forge(t, jwt.SigningMethodHS256, []byte("another-key-of-32-bytes-or-more!!"), f.a, nil), http.StatusUnauthorized},
			{"unknown role", forge(t, jwt.SigningMethodHS256, testKey, f.a, func(c *Claims) { c.Role = "viewer" }), http.StatusForbidden},
			{"unknown tenant", token(t, "t_ghost", RoleAdmin), http.StatusNotFound},
		} {
			_, err := h.VerifyToken(ctx, c.token)
			var le *LoginError
			if !errors.As(err, &le) || le.Status != c.status || le.Message == "" {
				t.Errorf("VerifyToken(%s) = %v, want status %d", c.name, err, c.status)
			}
		}

		// A session token is an API token of the session's role and tenant, naming the session.
		tok, err := h.SessionToken(RoleAdmin, f.a, "sess1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		w := call(t, r, http.MethodGet, "/api/v1/settings", tok, "")
		wantStatus(t, w, http.StatusOK, "settings with a session token")
		wantStatus(t, call(t, r, http.MethodGet, "/api/v1/settings?tenant="+f.b, tok, ""), http.StatusForbidden, "session token of A naming B")
		cl, err = h.VerifyToken(ctx, tok)
		if err != nil || !strings.HasPrefix(cl.ID, "sess1.") || !cl.ExpiresAt.Equal(testNow.Add(time.Minute)) {
			t.Errorf("session token claims %+v, %v", cl, err)
		}
		for _, c := range []struct {
			role, tenant string
			ttl          time.Duration
		}{{RoleAdmin, "", time.Minute}, {RoleOperator, f.a, time.Minute}, {"viewer", f.a, time.Minute},
			{RoleAdmin, f.a, 0}, {RoleAdmin, f.a, 11 * time.Minute}} {
			if _, err := h.SessionToken(c.role, c.tenant, "s", c.ttl); err == nil {
				t.Errorf("SessionToken(%q, %q, %s) succeeded", c.role, c.tenant, c.ttl)
			}
		}

		k1, k2 := h.DerivedKey("a"), h.DerivedKey("b")
		if len(k1) != 32 || reflect.DeepEqual(k1, k2) || reflect.DeepEqual(k1, testKey[:32]) || !reflect.DeepEqual(k1, h.DerivedKey("a")) {
			t.Errorf("derived keys %x %x", k1, k2)
		}
	})
}
