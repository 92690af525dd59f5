package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
)

// backend is one combination of database and Redis the service runs on.
type backend struct {
	name     string
	dbURL    string // "" = SQLite in the data folder
	redisURL string // "" = in-process Redis
}

// redisTestDB is this package's Redis database number on a shared test server, so packages whose
// tests run at the same time never see each other's queues.
const redisTestDB = 1

// testBackends returns the embedded defaults, plus real PostgreSQL and Redis when CLVD_TEST_DATABASE_URL
// and CLVD_TEST_REDIS_URL are set (CI sets both). Each real backend is isolated: a fresh PostgreSQL
// schema, and this package's own Redis database, flushed.
func testBackends(t *testing.T) []backend {
	t.Helper()
	out := []backend{{name: "sqlite+embedded-redis"}}
	pg, rd := os.Getenv("CLVD_TEST_DATABASE_URL"), os.Getenv("CLVD_TEST_REDIS_URL")
	if pg == "" || rd == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CLVD_TEST_DATABASE_URL or CLVD_TEST_REDIS_URL is unset: the real-server tests would not run")
		}
		t.Log("CLVD_TEST_DATABASE_URL/CLVD_TEST_REDIS_URL unset: testing the embedded defaults only")
		return out
	}
	return append(out, backend{name: "postgres+redis", dbURL: freshSchema(t, pg), redisURL: freshRedisDB(t, rd)})
}

// preferredBackend is the real servers when they are configured, else the embedded defaults: for a
// test that runs once, on what is closest to production.
func preferredBackend(t *testing.T) backend {
	t.Helper()
	bs := testBackends(t)
	return bs[len(bs)-1]
}

func freshSchema(t *testing.T, base string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "e2e_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("CLVD_TEST_DATABASE_URL: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
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

func freshRedisDB(t *testing.T, base string) string {
	t.Helper()
	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	opt.DB = redisTestDB
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	u, _ := url.Parse(base)
	u.Path = "/1"
	return u.String()
}
