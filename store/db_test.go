package store

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/secretbox"
)

func TestOpenDSN(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data", "nested")

	db, err := Open(ctx, "", dir, nil)
	if err != nil {
		t.Fatalf(`Open(""): %v`, err)
	}
	if db.Dialect() != DialectSQLite {
		t.Errorf("Dialect = %q", db.Dialect())
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	db.Close()
	st, err := os.Stat(filepath.Join(dir, "clvd.db"))
	if err != nil {
		t.Fatalf("database file not created in data dir: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("database file mode %v: readable by others", perm)
	}

	for _, dsn := range []string{
		"sqlite:" + filepath.Join(t.TempDir(), "a.db"),
		"file:" + filepath.Join(t.TempDir(), "b.db"),
		"file://" + filepath.Join(t.TempDir(), "c.db"),
	} {
		db, err := Open(ctx, dsn, "", nil)
		if err != nil {
			t.Errorf("Open(%q): %v", dsn, err)
			continue
		}
		if err := db.Migrate(ctx); err != nil {
			t.Errorf("Migrate(%q): %v", dsn, err)
		}
		db.Close()
	}

	for dsn, want := range map[string]string{
		"mysql://u@h/db":        `"mysql"`,
		"sqlite::memory:":       "in-memory",
		"file:x.db?mode=memory": "in-memory",
		"sqlite:/tmp/x.db?a=b":  "parameters",
		"sqlite:":               "empty path",
		"nonsense":              "no scheme",
	} {
		_, err := Open(ctx, dsn, "", nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want error containing %s", dsn, err, want)
		}
	}
	if _, err := Open(ctx, "", "", nil); err == nil {
		t.Error(`Open("", "") succeeded`)
	}
}

func TestOpenPostgresDSN(t *testing.T) {
	if os.Getenv(pgEnv) == "" {
		t.Skipf("%s is not set: PostgreSQL DSN test skipped", pgEnv)
	}
	dsn := pgSchemaDSN(t)
	db := openDSN(t, dsn+"&pool_max_conns=3")
	if db.Dialect() != DialectPostgres {
		t.Errorf("Dialect = %q", db.Dialect())
	}
	if got := db.w.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("pool_max_conns=3 gave a pool of %d", got)
	}
	if _, err := Open(t.Context(), dsn+"&pool_max_conns=zero", "", nil); err == nil {
		t.Error("bad pool_max_conns accepted")
	}
	// search_path from the DSN reaches the server: the tables land in the test schema.
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := db.r.QueryRowContext(t.Context(), `SELECT table_schema FROM information_schema.tables
		WHERE table_name = 'customers' AND table_schema = current_schema()`).Scan(&schema); err != nil {
		t.Fatalf("customers table not in the DSN's schema: %v", err)
	}
	if !strings.HasPrefix(schema, "t_") {
		t.Errorf("schema %q", schema)
	}
}

func TestMigrationSetsMatch(t *testing.T) {
	lite, err := migrations(DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrations(DialectPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].version != pg[i].version || lite[i].name != pg[i].name {
			t.Errorf("migration %d: sqlite %04d_%s, postgres %04d_%s", i, lite[i].version, lite[i].name, pg[i].version, pg[i].name)
		}
	}
}

func TestMigrate(t *testing.T) {
	forEachBackendDSN(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		// Several processes migrating the same fresh database at once.
		const n = 6
		dbs := make([]*DB, n)
		for i := range dbs {
			dbs[i] = openDSN(t, dsn)
		}
		applied, latest, err := dbs[0].SchemaVersion(ctx)
		if err != nil || applied != 0 || latest == 0 {
			t.Fatalf("fresh SchemaVersion = %d, %d, %v", applied, latest, err)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, db := range dbs {
			wg.Go(func() { errs[i] = db.Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent Migrate %d: %v", i, err)
			}
		}
		// Again, sequentially: nothing to do.
		if err := dbs[0].Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		applied, latest, err = dbs[0].SchemaVersion(ctx)
		if err != nil || applied != latest {
			t.Fatalf("SchemaVersion = %d, %d, %v", applied, latest, err)
		}
		var rows int
		if err := dbs[0].r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		all, _ := migrations(dbs[0].Dialect())
		if rows != len(all) {
			t.Errorf("schema_migrations has %d rows, want %d", rows, len(all))
		}

		// A database migrated by a newer binary is refused rather than half-understood.
		if _, err := dbs[0].w.ExecContext(ctx, dbs[0].d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			9999, "future", dbs[0].d.ts(t0)); err != nil {
			t.Fatal(err)
		}
		if err := dbs[0].Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("Migrate with unknown applied version: %v", err)
		}
	})
}

func TestTenants(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		a := &Tenant{
			Name:          "Acme",
			Zendesk:       ZendeskAccount{BaseURL: "https://acme.zendesk.com", Email: "ops@acme.test", APIToken: "zd-token-PLAINTEXT", WebhookSecret: "zd-hook-PLAINTEXT"},
			ShopifySecret: "shopify-PLAINTEXT",
			OrdersSecret:  "orders-PLAINTEXT",
			Settings:      json.RawMessage(`{"currency":"EUR"}`),
		}
		if err := db.CreateTenant(ctx, a); err != nil {
			t.Fatalf("CreateTenant: %v", err)
		}
		if !regexp.MustCompile(`^t_[a-z2-7]{16}$`).MatchString(a.ID) {
			t.Errorf("generated id %q", a.ID)
		}
		if a.CreatedAt.IsZero() {
			t.Error("CreatedAt not set")
		}
		b := &Tenant{ID: "b-shop", Name: "B"}
		if err := db.CreateTenant(ctx, b); err != nil {
			t.Fatalf("CreateTenant with id: %v", err)
		}
		if err := db.CreateTenant(ctx, &Tenant{ID: "b-shop", Name: "again"}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate id: %v, want ErrConflict", err)
		}
		if err := db.CreateTenant(ctx, &Tenant{ID: "bad/id"}); err == nil {
			t.Error("id with '/' accepted")
		}
		if err := db.CreateTenant(ctx, &Tenant{Name: "x", Settings: json.RawMessage(`{nope`)}); err == nil {
			t.Error("invalid settings JSON accepted")
		}

		got, err := db.GetTenant(ctx, a.ID)
		if err != nil {
			t.Fatalf("GetTenant: %v", err)
		}
		if got.Name != a.Name || got.Zendesk != a.Zendesk || got.ShopifySecret != a.ShopifySecret ||
			got.OrdersSecret != a.OrdersSecret || string(got.Settings) != string(a.Settings) || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("GetTenant = %+v\nwant %+v", got, a)
		}
		gb, err := db.GetTenant(ctx, "b-shop")
		if err != nil {
			t.Fatal(err)
		}
		if string(gb.Settings) != "{}" || gb.Zendesk.APIToken != "" {
			t.Errorf("unset settings/secret: %q %q", gb.Settings, gb.Zendesk.APIToken)
		}
		if _, err := db.GetTenant(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTenant(missing): %v", err)
		}

		// Secrets at rest: the raw columns hold sealed values, never the plaintext.
		var raw []string
		rows, err := db.r.QueryContext(ctx, `SELECT zendesk_api_token, zendesk_webhook_secret, shopify_secret, orders_secret FROM tenants WHERE id = `+
			map[bool]string{true: "$1", false: "?"}[db.d.postgres()], a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s1, s2, s3, s4 string
			if err := rows.Scan(&s1, &s2, &s3, &s4); err != nil {
				t.Fatal(err)
			}
			raw = append(raw, s1, s2, s3, s4)
		}
		rows.Close()
		if len(raw) != 4 {
			t.Fatalf("raw secrets: %v", raw)
		}
		for _, s := range raw {
			if s == "" || strings.Contains(s, "PLAINTEXT") || !strings.HasPrefix(s, "v1:") {
				t.Errorf("secret stored as %q", s)
			}
		}

		// With another key the secrets cannot be read: an error, not garbage.
		other, _ := secretbox.New(make([]byte, secretbox.KeySize))
		wrong := *db
		wrong.cipher = other
		if _, err := wrong.GetTenant(ctx, a.ID); !errors.Is(err, secretbox.ErrUndecryptable) {
			t.Errorf("GetTenant with wrong key: %v", err)
		}
		// Without a key, a tenant without secrets is still readable; one with secrets is not.
		nokey := *db
		nokey.cipher = nil
		if _, err := nokey.GetTenant(ctx, "b-shop"); err != nil {
			t.Errorf("GetTenant without key, no secrets: %v", err)
		}
		if _, err := nokey.GetTenant(ctx, a.ID); err == nil {
			t.Error("GetTenant without key decrypted secrets")
		}

		list, err := db.ListTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != "b-shop" || list[0].Zendesk.APIToken != a.Zendesk.APIToken {
			t.Errorf("ListTenants = %+v", list)
		}

		upd := *got
		upd.Name = "Acme Inc"
		upd.Zendesk.APIToken = "rotated"
		upd.OrdersSecret = ""
		upd.Settings = nil
		upd.CreatedAt = t0 // ignored
		if err := db.UpdateTenant(ctx, &upd); err != nil {
			t.Fatalf("UpdateTenant: %v", err)
		}
		got2, err := db.GetTenant(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got2.Name != "Acme Inc" || got2.Zendesk.APIToken != "rotated" || got2.OrdersSecret != "" ||
			got2.ShopifySecret != a.ShopifySecret || string(got2.Settings) != "{}" || !got2.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("after update: %+v", got2)
		}
		if err := db.UpdateTenant(ctx, &Tenant{ID: "missing"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateTenant(missing): %v", err)
		}
	})
}

func TestTenantState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		if _, _, err := db.GetTenantState(ctx, tid, "tiers"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing state: %v", err)
		}
		if err := db.PutTenantState(ctx, tid, "tiers", json.RawMessage(`{"gold":100}`)); err != nil {
			t.Fatal(err)
		}
		v1, at1, err := db.GetTenantState(ctx, tid, "tiers")
		if err != nil || string(v1) != `{"gold":100}` || at1.IsZero() {
			t.Fatalf("GetTenantState = %s, %v, %v", v1, at1, err)
		}
		if err := db.PutTenantState(ctx, tid, "tiers", json.RawMessage(`{"gold":200}`)); err != nil {
			t.Fatal(err)
		}
		v2, at2, err := db.GetTenantState(ctx, tid, "tiers")
		if err != nil || string(v2) != `{"gold":200}` || at2.Before(at1) {
			t.Fatalf("after overwrite = %s, %v, %v", v2, at2, err)
		}
		if err := db.PutTenantState(ctx, tid, "bad", json.RawMessage(`{`)); err == nil {
			t.Error("invalid JSON accepted")
		}
		if err := db.PutTenantState(ctx, "no-such-tenant", "k", json.RawMessage(`1`)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown tenant: %v", err)
		}
		other := mustTenant(t, db)
		if _, _, err := db.GetTenantState(ctx, other, "tiers"); !errors.Is(err, ErrNotFound) {
			t.Errorf("state leaked across tenants: %v", err)
		}
	})
}

func TestModels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		if _, err := db.LatestModel(ctx, tid); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LatestModel of a tenant without models: %v", err)
		}
		var saved []ModelRecord
		for i, kind := range []string{"heuristic", "bgnbd+gammagamma", "bgnbd+gammagamma"} {
			m := &ModelRecord{TenantID: tid, Kind: kind, FittedAt: at(0), // same time: id orders them
				Params: json.RawMessage(`{"r":0.24,"alpha":4.41}`), Customers: 100 + i, RepeatCustomers: 40,
				LogLik: -1234.5, Converged: i != 1, Seconds: 1.5, Quality: json.RawMessage(`{"mape":0.1}`)}
			if i == 1 {
				m.LogLik = nan()
				m.Params, m.Quality = nil, nil
			}
			if err := db.SaveModel(ctx, m); err != nil {
				t.Fatalf("SaveModel: %v", err)
			}
			if m.ID == 0 {
				t.Fatal("SaveModel did not set ID")
			}
			saved = append(saved, *m)
		}
		latest, err := db.LatestModel(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		if latest.ID != saved[2].ID || latest.Customers != 102 || !latest.Converged || latest.LogLik != -1234.5 ||
			string(latest.Params) != `{"r":0.24,"alpha":4.41}` || string(latest.Quality) != `{"mape":0.1}` ||
			!latest.FittedAt.Equal(utcMicro(t0)) || latest.Seconds != 1.5 {
			t.Errorf("LatestModel = %+v", latest)
		}
		list, err := db.ListModels(ctx, tid, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != saved[2].ID || list[1].ID != saved[1].ID {
			t.Fatalf("ListModels(2) = %+v", list)
		}
		if !isNaN(list[1].LogLik) || list[1].Converged || string(list[1].Params) != "{}" {
			t.Errorf("NaN/defaults model = %+v", list[1])
		}
		// A later fit is the latest regardless of insertion order.
		old := &ModelRecord{TenantID: tid, Kind: "heuristic", FittedAt: at(-time.Hour)}
		if err := db.SaveModel(ctx, old); err != nil {
			t.Fatal(err)
		}
		if l, _ := db.LatestModel(ctx, tid); l == nil || l.ID != saved[2].ID {
			t.Errorf("an older fit inserted later became latest: %+v", l)
		}
		all, _ := db.ListModels(ctx, tid, 10)
		if len(all) != 4 || all[3].ID != old.ID {
			t.Errorf("ListModels(10) order: %v", modelIDs(all))
		}
		if other, _ := db.ListModels(ctx, mustTenant(t, db), 10); len(other) != 0 {
			t.Errorf("models leaked across tenants: %v", other)
		}
		inf := &ModelRecord{TenantID: tid, Kind: "x", FittedAt: at(-2 * time.Hour), LogLik: math.Inf(-1)}
		if err := db.SaveModel(ctx, inf); err != nil {
			t.Fatal(err)
		}
		if all, _ := db.ListModels(ctx, tid, 10); len(all) != 5 || !math.IsInf(all[4].LogLik, -1) {
			t.Errorf("-Inf log-likelihood did not round-trip: %+v", all)
		}
		if err := db.SaveModel(ctx, &ModelRecord{TenantID: tid, Kind: "x", Params: json.RawMessage(`[`)}); err == nil {
			t.Error("invalid params accepted")
		}
	})
}

func modelIDs(ms []ModelRecord) []int64 {
	var ids []int64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestTagSetEncoding(t *testing.T) {
	enc, err := encodeTagSet([]string{"b", "a", "b", " ", "c "})
	if err != nil || enc != `["a","b","c"]` {
		t.Errorf("encodeTagSet = %v, %v", enc, err)
	}
	if enc, _ := encodeTagSet(nil); enc != nil {
		t.Errorf("nil encodes as %v, want NULL", enc)
	}
	if enc, _ := encodeTagSet([]string{}); enc != "[]" {
		t.Errorf("empty encodes as %v", enc)
	}
	if !sameTags(nil, []string{}) || !sameTags([]string{"a", "b"}, []string{"b", "a", "a"}) || sameTags([]string{"a"}, []string{"b"}) {
		t.Error("sameTags is not set equality")
	}
	if !slices.Equal(tagSet([]string{"z", "a"}), []string{"a", "z"}) {
		t.Error("tagSet does not sort")
	}
}

func TestRebind(t *testing.T) {
	pg := dialect{DialectPostgres}
	if got := pg.rebind(`SELECT ? , ?, x FROM t WHERE a = ?`); got != `SELECT $1 , $2, x FROM t WHERE a = $3` {
		t.Errorf("rebind = %q", got)
	}
	lite := dialect{DialectSQLite}
	if got := lite.rebind(`a = ?`); got != `a = ?` {
		t.Errorf("sqlite rebind = %q", got)
	}
}

// TestTenantsWithZendeskURLContaining: a case-blind, literal substring match on the Zendesk base URL,
// whose LIKE wildcards in the text match only themselves.
func TestTenantsWithZendeskURLContaining(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		for _, base := range []string{"https://Acme.zendesk.com", "https://acme.zendesk.com.evil.test", "https://other.zendesk.com", ""} {
			if err := db.CreateTenant(ctx, &Tenant{Name: base, Zendesk: ZendeskAccount{BaseURL: base, APIToken: "tok-" + base}}); err != nil {
				t.Fatal(err)
			}
		}
		names := func(text string) []string {
			t.Helper()
			ts, err := db.TenantsWithZendeskURLContaining(ctx, text)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, tn := range ts {
				if tn.Zendesk.APIToken != "tok-"+tn.Zendesk.BaseURL {
					t.Errorf("tenant %q: secrets not decrypted", tn.Name)
				}
				out = append(out, tn.Name)
			}
			return out
		}
		for text, want := range map[string][]string{
			"acme.zendesk.com":  {"https://Acme.zendesk.com", "https://acme.zendesk.com.evil.test"},
			"ACME.ZENDESK.COM":  {"https://Acme.zendesk.com", "https://acme.zendesk.com.evil.test"},
			"other.zendesk.com": {"https://other.zendesk.com"},
			"%":                 nil,
			"_":                 nil,
			"acme_zendesk.com":  nil,
			"":                  nil,
		} {
			if got := names(text); !slices.Equal(got, want) {
				t.Errorf("%q: %v, want %v", text, got, want)
			}
		}
	})
}
