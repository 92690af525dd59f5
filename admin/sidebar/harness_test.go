package sidebar

import (
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

func init() { gin.SetMode(gin.TestMode) }

const (
	testAppID        = "880001"
	testInstallation = "1900001"
	testAgent        = "5001"
	zdEmail          = "api@acme.example"
	zdToken          = "zd-api-T0KEN"
)

var testServerKey = []byte("0123456789abcdef0123456789abcdef-sidebar-test")

// appKeys are generated once per test binary: RSA key generation is slow under -race.
var appKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// env is a store with one tenant connected to a fake Zendesk that has the app installed.
type env struct {
	db     *store.DB
	fake   *zendesktest.Server
	key    *rsa.PrivateKey // the app's signing key
	other  *rsa.PrivateKey // a key Zendesk never served
	tenant *store.Tenant
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k, err := secretbox.ParseKey(secretbox.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(k)
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
	fake := zendesktest.New(t, zdEmail, zdToken)
	key, other := appKeys()
	fake.AddApp(testAppID, key)
	ten := &store.Tenant{Name: "Acme", Zendesk: store.ZendeskAccount{BaseURL: fake.URL, Email: zdEmail, APIToken: zdToken}}
	if err := db.CreateTenant(t.Context(), ten); err != nil {
		t.Fatal(err)
	}
	return &env{db: db, fake: fake, key: key, other: other, tenant: ten}
}

// token signs a ZAF JWT as the fake Zendesk would, issued at now, after mutate changed its claims.
func (e *env) token(t *testing.T, now time.Time, mutate func(map[string]any)) string {
	t.Helper()
	c := e.fake.AppClaims(testAppID, testInstallation, testAgent, now, 5*time.Minute)
	if mutate != nil {
		mutate(c)
	}
	tok, err := e.fake.SignAppToken(testAppID, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// seeded names the customer seedCustomer creates.
type seeded struct {
	ID            int64
	Email         string
	ZendeskUserID string
}

// seedCustomer stores a customer with five orders (one refunded) and a score.
func (e *env) seedCustomer(t *testing.T, tenantID string, now time.Time) seeded {
	t.Helper()
	ctx := t.Context()
	s := seeded{Email: "ana.lima@example.com", ZendeskUserID: "9001"}
	id, _, err := e.db.ResolveCustomer(ctx, tenantID, store.Identity{Email: s.Email, ZendeskUserID: s.ZendeskUserID, Name: "Ana Lima"})
	if err != nil {
		t.Fatal(err)
	}
	s.ID = id
	for i, o := range []struct {
		daysAgo int
		minor   int64
		status  integrations.OrderStatus
	}{{400, 12990, integrations.OrderPaid}, {300, 8450, integrations.OrderPaid}, {210, 15900, integrations.OrderRefunded},
		{120, 23100, integrations.OrderPaid}, {45, 9999, integrations.OrderPaid}} {
		at := now.Add(-time.Duration(o.daysAgo) * 24 * time.Hour)
		if _, err := e.db.ApplyOrder(ctx, tenantID, id, integrations.Order{Source: "shopify", OrderID: "A-100" + string(rune('1'+i)),
			Email: s.Email, CreatedAt: at, UpdatedAt: at, Currency: "EUR", TotalMinor: o.minor, Status: o.status}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := e.db.GetCustomer(ctx, tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	next := now.Add(38 * 24 * time.Hour)
	last := now.Add(-45 * 24 * time.Hour)
	if _, err := e.db.SaveScore(ctx, tenantID, id, c.DataVersion, store.Score{
		Model: "bgnbd", Currency: "EUR", HistoricMinor: 54539, SimpleCLV: 1636.17, PredictedCLV: 1234.56, PAlive: 0.83,
		ChurnProbability: 0.47, ChurnBand: "medium", ChurnReasons: []string{"2 open tickets", "a bad satisfaction rating"},
		Tier: "gold", Segment: "loyal", ExpectedPurchases: 3.4, ExpectedNextOrder: &next, Orders: 4, LastOrder: &last,
		ScoredAt: now.Add(-time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	o, err := e.db.ClaimOutreach(ctx, tenantID, store.OutreachClaim{Now: now.Add(-72 * time.Hour), Outreach: store.Outreach{
		CustomerID: id, Rules: []string{"churn_high"}, Tier: "gold", ChurnBand: "high", PreviousBand: "medium",
		ChurnProbability: 0.62, PredictedCLV: 1100, Currency: "EUR"}})
	if err != nil || o == nil {
		t.Fatalf("claim outreach: %v %v", o, err)
	}
	if err := e.db.UpdateOutreach(ctx, tenantID, o.ID, store.OutreachProgress{ZendeskTicketID: "4242", Status: store.OutreachSent}); err != nil {
		t.Fatal(err)
	}
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newApp mounts the sidebar on a Gin engine like the service does.
func newApp(t *testing.T, e *env, now func() time.Time, mutate func(*Options)) (*Handler, *gin.Engine) {
	t.Helper()
	o := Options{Store: e.db, Key: testServerKey, Now: now, Logger: quietLogger()}
	if mutate != nil {
		mutate(&o)
	}
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(gin.Recovery())
	h.Register(r.Group(MountPath))
	return h, r
}

// postPage POSTs the signed form to the page as Zendesk does.
func postPage(t *testing.T, r http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{}
	if token != "" {
		form.Set("token", token)
	}
	req := httptest.NewRequest(http.MethodPost, path+"?origin="+url.QueryEscape("https://acme.zendesk.com")+"&app_guid=g-1",
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

var sessionMeta = regexp.MustCompile(`<meta name="clvd-session" content="([^"]+)">`)

// sessionOf reads the session token out of a served page.
func sessionOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := sessionMeta.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no session in the page (status %d):\n%s", w.Code, w.Body)
	}
	return m[1]
}

func getJSON(t *testing.T, r http.Handler, path, session string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if session != "" {
		req.Header.Set("Authorization", "Bearer "+session)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}
