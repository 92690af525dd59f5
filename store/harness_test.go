package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/secretbox"
)

// The contract tests run against every available backend: SQLite always, PostgreSQL when
// CLVD_TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Each
// PostgreSQL test gets a schema of its own, dropped afterwards.
const pgEnv = "CLVD_TEST_DATABASE_URL"

type backend struct {
	name string
	// dsn returns a DSN for a fresh, empty database of this backend, cleaned up with t.
	dsn func(t *testing.T) string
}

var backends = []backend{
	{DialectSQLite, func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "clvd.db")
	}},
	{DialectPostgres, pgSchemaDSN},
}

// pgSchemaDSN creates a schema for the test and returns the test DSN with search_path set to it.
// Unset URL → skip (with the reason); set but unreachable → fail, never a silent skip.
func pgSchemaDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skipf("%s is not set: PostgreSQL contract tests skipped (set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", pgEnv)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", pgEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", pgEnv, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
		admin.Close()
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

var testKey = func() []byte {
	k, err := secretbox.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if err != nil {
		panic(err)
	}
	return k
}()

func testCipher(t *testing.T) Cipher {
	t.Helper()
	box, err := secretbox.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// openDSN opens (without migrating) and closes the DB with t.
func openDSN(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn, "", testCipher(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// forEachBackend runs fn as a parallel subtest per backend, each with a fresh migrated database.
func forEachBackend(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	forEachBackendDSN(t, func(t *testing.T, dsn string) {
		db := openDSN(t, dsn)
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		fn(t, db)
	})
}

// forEachBackendDSN is forEachBackend for tests that open the database themselves.
func forEachBackendDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.dsn(t))
		})
	}
}

func mustTenant(t *testing.T, db *DB) string {
	t.Helper()
	tn := &Tenant{Name: "Shop"}
	if err := db.CreateTenant(t.Context(), tn); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return tn.ID
}

func mustResolve(t *testing.T, db *DB, tenantID string, id Identity) int64 {
	t.Helper()
	cid, _, err := db.ResolveCustomer(t.Context(), tenantID, id)
	if err != nil {
		t.Fatalf("ResolveCustomer(%+v): %v", id, err)
	}
	if cid == 0 {
		t.Fatalf("ResolveCustomer(%+v) gave a guest", id)
	}
	return cid
}

func mustCustomer(t *testing.T, db *DB, tenantID string, id int64) *Customer {
	t.Helper()
	c, err := db.GetCustomer(t.Context(), tenantID, id)
	if err != nil {
		t.Fatalf("GetCustomer(%d): %v", id, err)
	}
	return c
}

// t0 is a fixed instant with sub-microsecond digits, to check truncation is consistent.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }
