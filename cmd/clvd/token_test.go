package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/webhook"
)

// tokenCLI runs `clvd token` (runToken, directly) with the given environment.
func tokenCLI(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return vars[k] }}
	err = runToken(context.Background(), env, args)
	return out.String(), errb.String(), err
}

// adminAPI serves the admin API over the data folder of vars, mounted the way the service mounts it:
// on the webhook router, under /api/v1.
func adminAPI(t *testing.T, vars map[string]string) http.Handler {
	t.Helper()
	env := &cliEnv{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return vars[k] }}
	cfg, err := loadConfig(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := openStore(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := admin.LoadKey(cfg.DataDir, env.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.NewHandler(admin.Options{Store: db, Key: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := webhook.NewRouter(webhook.Options{Tenants: db, MaxBodyBytes: cfg.MaxBodyBytes, SignatureTolerance: cfg.SignatureTolerance, Logger: log})
	h.Register(r.Group("/api/v1"))
	return r
}

func apiGet(t *testing.T, h http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func newTenant(t *testing.T, vars map[string]string) string {
	t.Helper()
	code, out, stderr := runCLI(t, vars, "tenant", "add", "--name", "Acme", "--json")
	if code != 0 {
		t.Fatalf("tenant add: %d %s", code, stderr)
	}
	var got struct{ ID string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID == "" {
		t.Fatalf("tenant add printed %q", out)
	}
	return got.ID
}

// oneToken checks that stdout is one token and nothing else, and returns it.
func oneToken(t *testing.T, stdout string) string {
	t.Helper()
	tok, rest, _ := strings.Cut(stdout, "\n")
	if rest != "" || strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \t") {
		t.Fatalf("stdout is not one token on one line: %q", stdout)
	}
	return tok
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"CLVD_DATA_DIR": dir}
	tenant := newTenant(t, vars)
	other := newTenant(t, vars)

	stdout, stderr, err := tokenCLI(t, vars, "--tenant", tenant, "--role", "admin", "--ttl", "2h")
	if err != nil {
		t.Fatalf("clvd token: %v (%s)", err, stderr)
	}
	tok := oneToken(t, stdout)
	if !strings.Contains(stderr, filepath.Join(dir, admin.KeyFile)) {
		t.Errorf("the first token does not say it generated the key: %q", stderr)
	}
	st, err := os.Stat(filepath.Join(dir, admin.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	var c admin.Claims
	key, err := admin.LoadKey(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("token does not verify with the data folder's key: %v", err)
	}
	if c.Tenant != tenant || c.Role != admin.RoleAdmin || c.ExpiresAt.Sub(c.IssuedAt.Time) != 2*time.Hour {
		t.Errorf("claims %+v", c)
	}

	// The service, reading the same data folder, accepts it for this tenant only.
	api := adminAPI(t, vars)
	if w := apiGet(t, api, "/healthz", ""); w.Code != http.StatusOK {
		t.Fatalf("the webhook router's own routes broke: /healthz %d", w.Code)
	}
	w := apiGet(t, api, "/api/v1/settings", tok)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tenant) {
		t.Fatalf("settings with the CLI's token: %d %s", w.Code, w.Body)
	}
	if w := apiGet(t, api, "/api/v1/settings?tenant="+other, tok); w.Code != http.StatusForbidden {
		t.Fatalf("another tenant with the CLI's token: %d %s", w.Code, w.Body)
	}

	// An operator token, with the default ttl; no new key.
	stdout, stderr, err = tokenCLI(t, vars, "--role", "operator")
	if err != nil || stderr != "" {
		t.Fatalf("operator token: %v %q", err, stderr)
	}
	op := oneToken(t, stdout)
	if w := apiGet(t, api, "/api/v1/tenants", op); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), other) {
		t.Fatalf("tenant list with the operator token: %d %s", w.Code, w.Body)
	}
	if w := apiGet(t, api, "/api/v1/tenants", tok); w.Code != http.StatusForbidden {
		t.Fatalf("tenant list with an admin token: %d", w.Code)
	}

	// Mistakes.
	for _, c := range []struct {
		args  []string
		usage bool
		msg   string
	}{
		{[]string{"--tenant", "t_nope"}, false, "does not exist"},
		{[]string{"--role", "admin"}, true, "--tenant is required"},
		{[]string{"--role", "operator", "--tenant", tenant}, true, "leave out --tenant"},
		{[]string{"--role", "root"}, true, "--role"},
		{[]string{"--tenant", tenant, "--ttl", "0s"}, true, "--ttl"},
		{[]string{"--tenant", tenant, "--ttl", "9000h"}, true, "--ttl"},
		{[]string{"--tenant", tenant, "--ttl", "forever"}, true, "ttl"},
		{[]string{"--tenant", tenant, "extra"}, true, "unexpected argument"},
	} {
		stdout, stderr, err := tokenCLI(t, vars, c.args...)
		if err == nil || stdout != "" {
			t.Errorf("clvd token %v: succeeded: %q", c.args, stdout)
			continue
		}
		if errors.Is(err, errUsage) != c.usage {
			t.Errorf("clvd token %v: usage error = %v, want %v (%v)", c.args, errors.Is(err, errUsage), c.usage, err)
		}
		if !strings.Contains(err.Error()+stderr, c.msg) {
			t.Errorf("clvd token %v: %v / %q does not say %q", c.args, err, stderr, c.msg)
		}
	}
}

func TestTokenCommandWithKeyFromEnv(t *testing.T) {
	dir := t.TempDir()
	envKey := bytes.Repeat([]byte{7}, 32)
	vars := map[string]string{"CLVD_DATA_DIR": dir, admin.KeyEnv: hex.EncodeToString(envKey)}
	tenant := newTenant(t, vars)
	stdout, stderr, err := tokenCLI(t, vars, "--tenant", tenant)
	if err != nil || stderr != "" {
		t.Fatalf("clvd token: %v %q", err, stderr)
	}
	tok := oneToken(t, stdout)
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return envKey, nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("token not signed with %s: %v", admin.KeyEnv, err)
	}
	if _, err := os.Stat(filepath.Join(dir, admin.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was written although %s is set", admin.KeyEnv)
	}
	// A service with the same key accepts it; one with the data folder's own key would not.
	if w := apiGet(t, adminAPI(t, vars), "/api/v1/settings", tok); w.Code != http.StatusOK {
		t.Fatalf("settings: %d %s", w.Code, w.Body)
	}
	delete(vars, admin.KeyEnv)
	if w := apiGet(t, adminAPI(t, vars), "/api/v1/settings", tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("a service with another key accepted the token: %d", w.Code)
	}

	vars[admin.KeyEnv] = "too-short"
	if _, _, err := tokenCLI(t, vars, "--tenant", tenant); err == nil || !strings.Contains(err.Error(), admin.KeyEnv) {
		t.Fatalf("invalid %s: %v", admin.KeyEnv, err)
	}
}
