package admin

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

// The API tests run on SQLite always and on PostgreSQL when CLVD_TEST_DATABASE_URL is set (each in a
// fresh schema), like the store's contract tests. With CI=true a missing PostgreSQL fails.
const pgEnv = "CLVD_TEST_DATABASE_URL"

func init() { gin.SetMode(gin.TestMode) }

type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{store.DialectSQLite, func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "clvd.db") }},
	{store.DialectPostgres, pgSchemaDSN},
}

func pgSchemaDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is unset: the PostgreSQL tests would not run", pgEnv)
		}
		t.Skipf("%s is not set: PostgreSQL tests skipped", pgEnv)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", pgEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "admin_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("%s is set but creating a schema failed: %v", pgEnv, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// forEachBackend runs fn as a parallel subtest per backend with a fresh, migrated store.
func forEachBackend(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.dsn(t)
			key, err := secretbox.ParseKey(secretbox.NewKey())
			if err != nil {
				t.Fatal(err)
			}
			box, err := secretbox.New(key)
			if err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(t.Context(), dsn, "", box)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

// testNow is the API's clock in the tests.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newRouter mounts the API like the service does: on a Gin engine, under /api/v1.
func newRouter(t *testing.T, st Store) *gin.Engine {
	t.Helper()
	h, err := NewHandler(Options{Store: st, Key: testKey, Now: func() time.Time { return testNow }, Logger: quietLogger(),
		PublicURL: "https://clvd.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(gin.Recovery())
	h.Register(r.Group("/api/v1"))
	return r
}

// call makes one request; headers come in name, value pairs.
func call(t *testing.T, r http.Handler, method, path, token, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// decode parses a JSON answer into v, failing on anything else.
func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, w.Body)
	}
}

// wantStatus checks the status and, for errors, the {"error": ...} shape.
func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d: %s", what, w.Code, status, w.Body)
	}
	if status >= 400 {
		var e map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e) != 1 || e["error"] == "" || e["error"] == nil {
			t.Fatalf("%s: error body %s, want {\"error\": ...}", what, w.Body)
		}
	}
}

func token(t *testing.T, tenant, role string) string {
	t.Helper()
	tok, err := IssueToken(testKey, tenant, role, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge signs claims derived from a valid admin token of tenant with mutate applied, using method
// and key as given: the material for every way a token can be wrong.
func forge(t *testing.T, method jwt.SigningMethod, key any, tenant string, mutate func(*Claims)) string {
	t.Helper()
	c := Claims{Tenant: tenant, Role: RoleAdmin, RegisteredClaims: jwt.RegisteredClaims{Issuer: Issuer,
		Audience: jwt.ClaimStrings{Audience}, IssuedAt: jwt.NewNumericDate(testNow.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)), ID: "forged"}}
	if mutate != nil {
		mutate(&c)
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is two tenants with overlapping data: the same email exists in both.
type fixture struct {
	db             *store.DB
	a, b           string // tenant ids
	ana, bob, bAna int64  // customers: ana and bob of A, ana of B
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// must returns v, panicking (which fails the test run) on an error of a call that cannot fail
// unless the store is broken.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func scoreFor(t *testing.T, db *store.DB, tenant string, cid int64, s store.Score) {
	t.Helper()
	c := must(db.GetCustomer(t.Context(), tenant, cid))
	if _, err := db.SaveScore(t.Context(), tenant, cid, c.DataVersion, s); err != nil {
		t.Fatal(err)
	}
}

func seed(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{db: db}
	for _, p := range []*string{&f.a, &f.b} {
		tn := &store.Tenant{Name: "Shop", OrdersSecret: "orders-secret-" + fmt.Sprint(len(*p))}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		*p = tn.ID
	}
	order := func(tenant string, cid int64, id, created string, status integrations.OrderStatus, total int64, currency string) {
		t.Helper()
		o := integrations.Order{Source: integrations.SourceOrders, OrderID: id, CreatedAt: day(created), UpdatedAt: day(created),
			Currency: currency, TotalMinor: total, Status: status}
		if _, err := db.ApplyOrder(ctx, tenant, cid, o); err != nil {
			t.Fatal(err)
		}
	}
	f.ana = must(mustResolve(ctx, db, f.a, store.Identity{Email: "ana@example.com", ExternalID: "orders:c-1", Name: "Ana"}))
	f.bob = must(mustResolve(ctx, db, f.a, store.Identity{Email: "bob@example.com", Name: "=HYPERLINK(\"http://x\")"}))
	f.bAna = must(mustResolve(ctx, db, f.b, store.Identity{Email: "ana@example.com", Name: "Ana at B"}))

	order(f.a, f.ana, "A-1", "2024-06-01", integrations.OrderPaid, 5990, "EUR")
	if _, _, err := db.ApplyRefund(ctx, f.a, integrations.Refund{Source: integrations.SourceOrders, OrderID: "A-1", RefundID: "A-1-r1",
		AmountMinor: 1000, Currency: "EUR", CreatedAt: day("2024-06-10")}); err != nil {
		t.Fatal(err)
	}
	order(f.a, f.ana, "A-2", "2024-09-01", integrations.OrderCancelled, 2000, "EUR")
	order(f.a, f.bob, "A-3", "2024-01-01", integrations.OrderPaid, 1000, "EUR")
	order(f.b, f.bAna, "B-1", "2024-06-01", integrations.OrderPaid, 777, "USD")
	for _, ev := range []integrations.TicketEvent{
		{Source: integrations.SourceZendesk, EventID: "e1", TicketID: "101", Status: "solved", Satisfaction: "good", Subject: "Where is my order",
			OccurredAt: day("2024-06-05"), TicketCreatedAt: day("2024-06-04")},
		{Source: integrations.SourceZendesk, EventID: "e2", TicketID: "102", Status: "open", Priority: "urgent", OccurredAt: day("2024-10-01")},
	} {
		if _, err := db.ApplyTicketEvent(ctx, f.a, f.ana, ev); err != nil {
			t.Fatal(err)
		}
	}
	next, last := day("2025-04-01"), day("2024-06-01")
	scoreFor(t, db, f.a, f.ana, store.Score{Model: "bgnbd", Currency: "EUR", HistoricMinor: 4990, SimpleCLV: 149.7, PredictedCLV: 321.5,
		PAlive: 0.8, ChurnProbability: 0.45, ChurnBand: "medium", ChurnReasons: []string{"urgent open ticket"}, Tier: "gold",
		Segment: "loyal", ExpectedPurchases: 1.5, ExpectedNextOrder: &next, Orders: 1, LastOrder: &last,
		Tags: []string{"clv_tier_gold", "clv_churn_medium"}, ScoredAt: day("2025-02-01")})
	scoreFor(t, db, f.a, f.bob, store.Score{Model: "heuristic", Currency: "EUR", HistoricMinor: 1000, PredictedCLV: 10, PAlive: 0.2,
		ChurnProbability: 0.8, ChurnBand: "high", Tier: "silver", Segment: "lost", Orders: 1, ScoredAt: day("2025-02-01")})
	scoreFor(t, db, f.b, f.bAna, store.Score{Model: "heuristic", Currency: "USD", HistoricMinor: 777, PredictedCLV: 999, PAlive: 0.9,
		ChurnProbability: 0.1, ChurnBand: "low", Tier: "platinum", Segment: "champions", Orders: 1, ScoredAt: day("2025-02-01")})

	for _, m := range []store.ModelRecord{
		{TenantID: f.a, Kind: "bgnbd+gammagamma", FittedAt: day("2025-01-01"), Params: json.RawMessage(`{"r":0.24}`), Customers: 60,
			RepeatCustomers: 25, LogLik: -123.5, Converged: true, Seconds: 0.25, Quality: json.RawMessage(`{"iterations":12}`)},
		{TenantID: f.a, Kind: "bgnbd+gammagamma", FittedAt: day("2025-02-01"), Params: json.RawMessage(`{"r":0.3}`), Customers: 70,
			RepeatCustomers: 30, LogLik: math.NaN(), Converged: false, Seconds: 1.5},
		{TenantID: f.b, Kind: "heuristic", FittedAt: day("2025-02-15"), Customers: 1},
	} {
		if err := db.SaveModel(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func mustResolve(ctx context.Context, db *store.DB, tenant string, id store.Identity) (int64, error) {
	cid, _, err := db.ResolveCustomer(ctx, tenant, id)
	return cid, err
}
