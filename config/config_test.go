package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.MaxBodyBytes != 1<<20 || c.SignatureTolerance != 5*time.Minute || c.AllowLocalTargets {
		t.Fatalf("defaults: %+v", c)
	}
	if c.HelpdeskTimeout != 30*time.Second {
		t.Fatalf("helpdesk timeout %s", c.HelpdeskTimeout)
	}
	if got := c.BaseURL(); got != "http://localhost:8080" {
		t.Fatalf("BaseURL = %q", got)
	}
}

func TestInvalidNamesVariable(t *testing.T) {
	cases := map[string]string{
		"CLVD_ADDR":                "8080",
		"CLVD_METRICS_ADDR":        "9090",
		"DATABASE_URL":             "mysql://x",
		"REDIS_URL":                "http://localhost",
		"CLVD_SECRET_KEY":          "short",
		"CLVD_MAX_BODY_BYTES":      "-1",
		"CLVD_SIGNATURE_TOLERANCE": "five minutes",
		"CLVD_ALLOW_LOCAL_TARGETS": "maybe",
		"CLVD_WORKER_CONCURRENCY":  "0",
		"CLVD_PUBLIC_URL":          "example.com",
		"CLVD_LOG_LEVEL":           "loud",
		"CLVD_REFIT_CRON":          "daily",
		"CLVD_HELPDESK_TIMEOUT":    "20m",
	}
	for name, val := range cases {
		_, err := Load(env(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v does not name the variable", name, val, err)
		}
	}
}

func TestSecretKeyGeneratedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, err := Load(env(map[string]string{"CLVD_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	k1, gen, err := c.SecretKey()
	if err != nil || !gen || len(k1) != 32 {
		t.Fatalf("first: %v %v %d", err, gen, len(k1))
	}
	st, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st)
	}
	k2, gen, err := c.SecretKey()
	if err != nil || gen || string(k1) != string(k2) {
		t.Fatalf("second read must return the same key: %v %v", err, gen)
	}
	c.SecretKeyHex = strings.Repeat("ab", 32)
	k3, _, err := c.SecretKey()
	if err != nil || k3[0] != 0xab {
		t.Fatalf("env key: %v", err)
	}
}

func TestRedacted(t *testing.T) {
	if got := Redacted("redis://:hunter2@host:6379/0"); strings.Contains(got, "hunter2") {
		t.Fatalf("password leaked: %s", got)
	}
	for _, bad := range []map[string]string{{"DATABASE_URL": "postgres://u:s3cret@host:5x432/db"}, {"REDIS_URL": "redis://:s3cret@host:6x379"}} {
		if _, err := Load(env(bad)); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("unparsable URL: error %v leaks the password or is missing", err)
		}
	}
}
