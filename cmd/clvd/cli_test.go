package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// runCLI runs clvd in-process with only the given environment.
func runCLI(t *testing.T, envVars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return envVars[k] }}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestTenantCommands(t *testing.T) {
	env := map[string]string{"CLVD_DATA_DIR": t.TempDir(), "CLVD_PUBLIC_URL": "https://clvd.example.com"}
	code, out, stderr := runCLI(t, env, "tenant", "add", "--name", "Acme", "--shopify-secret", "shpss_1", "--json")
	if code != 0 {
		t.Fatalf("tenant add: exit %d: %s", code, stderr)
	}
	var got struct {
		ID       string `json:"id"`
		Webhooks map[string]struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		} `json:"webhooks"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&struct {
		ID       *string `json:"id"`
		Name     string  `json:"name"`
		Webhooks any     `json:"webhooks"`
	}{ID: new(string)}); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout: %s", out)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Webhooks["orders"].URL != "https://clvd.example.com/webhooks/"+got.ID+"/orders" ||
		got.Webhooks["zendesk"].URL != "https://clvd.example.com/webhooks/"+got.ID+"/zendesk" {
		t.Fatalf("tenant add output %+v", got)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got.Webhooks["orders"].Secret) {
		t.Fatalf("generated orders secret %q", got.Webhooks["orders"].Secret)
	}
	if got.Webhooks["shopify"].Secret != "shpss_1" || got.Webhooks["zendesk"].Secret != "" {
		t.Fatalf("secrets %+v", got.Webhooks)
	}

	code, out, stderr = runCLI(t, env, "tenant", "update", got.ID, "--zendesk-webhook-secret", "zd-secret", "--json")
	if code != 0 || !strings.Contains(out, "zd-secret") {
		t.Fatalf("tenant update: exit %d: %s %s", code, out, stderr)
	}

	if code, _, stderr := runCLI(t, env, "tenant", "update", got.ID, "--settings", `{"tag_prefix":"Bad-Prefix"}`); code != 1 || !strings.Contains(stderr, "tag_prefix") {
		t.Fatalf("invalid settings accepted: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, env, "tenant", "update", got.ID, "--settings", `{"tag_prefix":"ltv_"}`); code != 0 {
		t.Fatalf("settings: %d %s", code, stderr)
	}

	code, out, _ = runCLI(t, env, "tenant", "list")
	if code != 0 || !strings.Contains(out, got.ID) || !strings.Contains(out, "Acme") {
		t.Fatalf("tenant list: %d %s", code, out)
	}
	for _, secret := range []string{got.Webhooks["orders"].Secret, "shpss_1", "zd-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("tenant list printed a secret: %s", out)
		}
	}
}

func TestTenantAddRefusesUnsafeZendeskURL(t *testing.T) {
	dir := t.TempDir()
	zd := []string{"--zendesk-email", "agent@acme.test", "--zendesk-token", "tok"}
	for _, c := range []struct {
		url        string
		allowLocal bool
		ok         bool
	}{
		{"https://acme.zendesk.com", false, true},
		{"http://acme.zendesk.com", false, false},
		{"https://127.0.0.1:8443", false, false},
		{"https://10.0.0.5", false, false},
		{"http://127.0.0.1:9999", true, true},
	} {
		env := map[string]string{"CLVD_DATA_DIR": dir}
		if c.allowLocal {
			env["CLVD_ALLOW_LOCAL_TARGETS"] = "true"
		}
		code, _, stderr := runCLI(t, env, append([]string{"tenant", "add", "--name", "x", "--zendesk-url", c.url}, zd...)...)
		if (code == 0) != c.ok {
			t.Errorf("%s (allow local %v): exit %d, want ok=%v: %s", c.url, c.allowLocal, code, c.ok, stderr)
		}
		if !c.ok && !strings.Contains(stderr, "CLVD_ALLOW_LOCAL_TARGETS") && !strings.Contains(stderr, "https") {
			t.Errorf("%s: refusal does not say why: %s", c.url, stderr)
		}
	}
	code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": dir}, "tenant", "add", "--name", "x", "--zendesk-url", "https://acme.zendesk.com")
	if code == 0 || !strings.Contains(stderr, "go together") {
		t.Fatalf("URL without email/token accepted: %d %s", code, stderr)
	}
}

func TestConfigAndUsageErrors(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": t.TempDir(), "CLVD_MAX_BODY_BYTES": "lots"}, "migrate")
	if code != 1 || !strings.Contains(stderr, "CLVD_MAX_BODY_BYTES") {
		t.Fatalf("invalid config: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, map[string]string{"CLVD_DATA_DIR": t.TempDir(), "DATABASE_URL": "mysql://x"}, "serve")
	if code != 1 || !strings.Contains(stderr, "DATABASE_URL") {
		t.Fatalf("invalid DATABASE_URL: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, map[string]string{"CLVD_DATA_DIR": t.TempDir()}, "worker")
	if code != 1 || !strings.Contains(stderr, "REDIS_URL is required") {
		t.Fatalf("worker without Redis: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": t.TempDir()}, "tenant", "add"); code != 2 || !strings.Contains(stderr, "--name") {
		t.Fatalf("tenant add without --name: exit %d %q", code, stderr)
	}
	if code, out, _ := runCLI(t, nil, "help"); code != 0 || !strings.Contains(out, "serve") {
		t.Fatalf("help: %d %s", code, out)
	}
	code, out, _ := runCLI(t, map[string]string{"CLVD_DATA_DIR": t.TempDir()}, "migrate")
	if code != 0 || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %d %s", code, out)
	}
}

// TestWorkerServesMetrics: a worker-only process serves /metrics on CLVD_METRICS_ADDR.
func TestWorkerServesMetrics(t *testing.T) {
	cfg := testConfig(t, backend{})
	cfg.MetricsAddr = "127.0.0.1:0"
	s, err := startService(context.Background(), cfg, parts{worker: true, embeddedRedis: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	resp, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "clvd_queue_up 1") {
		t.Fatalf("worker /metrics: %d\n%.500s", resp.StatusCode, body)
	}
}
