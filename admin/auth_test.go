package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadKeyFromEnv(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 40)
	for name, v := range map[string]string{
		"hex":            hex.EncodeToString(raw),
		"base64":         base64.StdEncoding.EncodeToString(raw),
		"base64 url raw": base64.RawURLEncoding.EncodeToString(raw),
		"spaces":         "  " + hex.EncodeToString(raw) + "\n",
	} {
		dir := t.TempDir()
		k, err := LoadKey(dir, env(map[string]string{KeyEnv: v}))
		if err != nil || !bytes.Equal(k, raw) {
			t.Errorf("%s: LoadKey = %x, %v", name, k, err)
		}
		if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a key file was written although %s is set", name, KeyEnv)
		}
	}
	for name, v := range map[string]string{
		"short hex":    hex.EncodeToString(raw[:31]),
		"short base64": base64.StdEncoding.EncodeToString(raw[:20]),
		"not a key":    "correct horse battery staple!",
	} {
		_, err := LoadKey(t.TempDir(), env(map[string]string{KeyEnv: v}))
		if err == nil || !strings.Contains(err.Error(), KeyEnv) {
			t.Errorf("%s: LoadKey = %v, want an error naming %s", name, err, KeyEnv)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created on first use
	k1, err := LoadKey(dir, env(nil))
	if err != nil || len(k1) != MinKeyBytes {
		t.Fatalf("LoadKey = %x, %v", k1, err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadKey(dir, env(nil))
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second LoadKey = %x, %v; want the same key", k2, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data folder holds %d entries, want only %s", len(entries), KeyFile)
	}

	// Many processes starting at once agree on one key.
	dir = t.TempDir()
	var wg sync.WaitGroup
	keys := make([][]byte, 16)
	errs := make([]error, len(keys))
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadKey(dir, env(nil)) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent LoadKey %d = %x, %v; first got %x", i, keys[i], errs[i], keys[0])
		}
	}

	// A damaged key file is an error, not a silent new key.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(dir, env(nil)); err == nil || !strings.Contains(err.Error(), KeyFile) {
		t.Errorf("damaged key file: %v", err)
	}
	if _, err := LoadKey("", env(nil)); err == nil {
		t.Error("LoadKey without a data folder or key succeeded")
	}
}

func TestIssueToken(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := newVerifier(testKey, func() time.Time { return now })
	tok, err := IssueToken(testKey, "t_a", RoleAdmin, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != "t_a" || c.Role != RoleAdmin || c.Issuer != Issuer || len(c.Audience) != 1 || c.Audience[0] != Audience ||
		!c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(24*time.Hour)) || len(c.ID) != 32 {
		t.Errorf("claims %+v", c)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil || parsed.Method.Alg() != "HS256" {
		t.Errorf("alg %v, %v", parsed.Method, err)
	}
	other, _ := IssueToken(testKey, "t_a", RoleAdmin, 24*time.Hour, now)
	if oc, _ := v.verify(other); oc == nil || oc.ID == c.ID {
		t.Error("two tokens share a jti")
	}
	op, err := IssueToken(testKey, "", RoleOperator, MaxTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.verify(op); err != nil || c.Role != RoleOperator || c.Tenant != "" {
		t.Errorf("operator token: %+v, %v", c, err)
	}

	for _, bad := range []struct {
		key          []byte
		tenant, role string
		ttl          time.Duration
	}{
		{testKey, "", RoleAdmin, time.Hour},
		{testKey, "t_a", RoleOperator, time.Hour},
		{testKey, "t_a", "owner", time.Hour},
		{testKey, "t_a", RoleAdmin, 0},
		{testKey, "t_a", RoleAdmin, -time.Hour},
		{testKey, "t_a", RoleAdmin, MaxTTL + time.Second},
		{testKey[:31], "t_a", RoleAdmin, time.Hour},
	} {
		if _, err := IssueToken(bad.key, bad.tenant, bad.role, bad.ttl, now); err == nil {
			t.Errorf("IssueToken(key %d bytes, %q, %q, %s) succeeded", len(bad.key), bad.tenant, bad.role, bad.ttl)
		}
	}

	// Expiry, with the leeway either side.
	for _, c := range []struct {
		at time.Time
		ok bool
	}{
		{now.Add(24*time.Hour - time.Second), true},
		{now.Add(24*time.Hour + Leeway - time.Second), true},
		{now.Add(24*time.Hour + Leeway + time.Second), false},
	} {
		v := newVerifier(testKey, func() time.Time { return c.at })
		_, err := v.verify(tok)
		if (err == nil) != c.ok {
			t.Errorf("at %v: verify = %v, want ok=%v", c.at, err, c.ok)
		}
		if !c.ok && !errors.Is(err, jwt.ErrTokenExpired) {
			t.Errorf("expired token: %v", err)
		}
	}
	if _, err := newVerifier([]byte("another key, also long enough!!!"), func() time.Time { return now }).verify(tok); err == nil {
		t.Error("a token verified with another key")
	}
}

func TestNewHandlerChecksOptions(t *testing.T) {
	if _, err := NewHandler(Options{Key: testKey}); err == nil {
		t.Error("no store accepted")
	}
	if _, err := NewHandler(Options{Store: refitFails{}, Key: testKey[:16]}); err == nil {
		t.Error("short key accepted")
	}
}
