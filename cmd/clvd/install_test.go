package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

const (
	zdEmail = "owner@acme.example"
	zdToken = "zd-API-t0ken-5e1f7"
)

type installFixture struct {
	fake     *zendesktest.Server
	env      map[string]string
	tenantID string
}

// newInstallFixture starts a fake Zendesk and adds a tenant in a fresh SQLite data folder.
func newInstallFixture(t *testing.T) installFixture {
	t.Helper()
	env := map[string]string{
		"CLVD_DATA_DIR":            t.TempDir(),
		"CLVD_PUBLIC_URL":          "https://clvd.example.com",
		"CLVD_ALLOW_LOCAL_TARGETS": "true", // the fake listens on 127.0.0.1 over http
		"CLVD_LOG_LEVEL":           "error",
	}
	code, out, stderr := runCLI(t, env, "tenant", "add", "--name", "Acme", "--json")
	if code != 0 {
		t.Fatalf("tenant add: %d %s", code, stderr)
	}
	var added struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.ID == "" {
		t.Fatalf("tenant add output %q: %v", out, err)
	}
	return installFixture{fake: zendesktest.New(t, zdEmail, zdToken), env: env, tenantID: added.ID}
}

// run calls one of the commands in-process.
func (f installFixture) run(t *testing.T, cmd func(context.Context, *cliEnv, []string) error, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Getenv: func(k string) string { return f.env[k] }}
	err = cmd(context.Background(), env, args)
	return out.String(), errb.String(), err
}

func (f installFixture) installArgs(extra ...string) []string {
	return append([]string{f.tenantID, "--zendesk-url", f.fake.URL, "--zendesk-email", zdEmail, "--zendesk-token", zdToken}, extra...)
}

// tenant reads the tenant and its install state straight from the store.
func (f installFixture) tenant(t *testing.T) (*store.Tenant, *zendeskInstallState) {
	t.Helper()
	cfg, err := loadConfig(&cliEnv{Getenv: func(k string) string { return f.env[k] }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ten, err := db.GetTenant(context.Background(), f.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := db.GetTenantState(context.Background(), f.tenantID, zendeskInstallStateKey)
	if errors.Is(err, store.ErrNotFound) {
		return ten, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st zendeskInstallState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return ten, &st
}

func noToken(t *testing.T, where string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, zdToken) {
			t.Fatalf("%s shows the API token: %s", where, s)
		}
	}
}

func TestInstallZendeskEndToEnd(t *testing.T) {
	f := newInstallFixture(t)
	out, stderr, err := f.run(t, runInstallZendesk, "", f.installArgs("--triggers", "--json")...)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	noToken(t, "install", out, stderr)
	var got struct {
		TenantID     string               `json:"tenant_id"`
		WebhookURL   string               `json:"webhook_url"`
		Installation zendesk.Installation `json:"installation"`
		Steps        []zendesk.InstallStep
		Secrets      int               `json:"secrets_stored"`
		User         map[string]string `json:"user"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&got); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	wantURL := "https://clvd.example.com/webhooks/" + f.tenantID + "/zendesk"
	if got.TenantID != f.tenantID || got.WebhookURL != wantURL || got.Secrets != 2 || got.User["role"] != "admin" || len(got.Steps) != 7 {
		t.Fatalf("output %+v", got)
	}

	hooks := f.fake.Webhooks()
	if len(hooks) != 2 || hooks[0].Endpoint != wantURL || hooks[1].Endpoint != wantURL {
		t.Fatalf("fake webhooks %+v", hooks)
	}
	counts := zendesktest.InstallCounts{WebhooksCreated: 2, TriggersCreated: 1, UserFieldsCreated: 4}
	if c := f.fake.InstallCounts(); c != counts {
		t.Fatalf("counts %+v", c)
	}

	ten, st := f.tenant(t)
	if ten.Zendesk.BaseURL != f.fake.URL || ten.Zendesk.Email != zdEmail || ten.Zendesk.APIToken != zdToken {
		t.Fatalf("stored account %+v", ten.Zendesk)
	}
	if want := hooks[0].SigningSecret + "," + hooks[1].SigningSecret; ten.Zendesk.WebhookSecret != want {
		t.Fatalf("stored webhook secret %q, want %q", ten.Zendesk.WebhookSecret, want)
	}
	if st == nil || st.EventsWebhookID != hooks[0].ID || st.TriggerWebhookID != hooks[1].ID || st.TriggerID != f.fake.Triggers()[0].ID ||
		len(st.UserFieldIDs) != 4 || st.WebhookURL != wantURL || st.ZendeskURL != f.fake.URL || st.InstalledByEmail != zdEmail || st.InstalledAt.IsZero() {
		t.Fatalf("install state %+v", st)
	}

	// Again, in text mode and on the stored credentials: nothing is created, the secrets stay.
	out, stderr, err = f.run(t, runInstallZendesk, "", f.tenantID)
	if err != nil {
		t.Fatalf("second install: %v\n%s", err, stderr)
	}
	noToken(t, "second install", out, stderr)
	if c := f.fake.InstallCounts(); c != counts {
		t.Fatalf("second install created something: %+v", c)
	}
	if strings.Contains(out, "created") || strings.Count(out, "exists") != 7 || strings.Contains(out, "replacing") {
		t.Fatalf("second install output:\n%s", out)
	}
	again, st2 := f.tenant(t)
	if again.Zendesk.WebhookSecret != ten.Zendesk.WebhookSecret || st2.TriggerID != st.TriggerID {
		t.Fatalf("second install changed the tenant: %+v %+v", again.Zendesk, st2)
	}
	for _, h := range hooks {
		if strings.Contains(out, h.SigningSecret) {
			t.Fatal("install printed a signing secret")
		}
	}
}

func TestInstallZendeskTokenFromStdin(t *testing.T) {
	f := newInstallFixture(t)
	args := []string{f.tenantID, "--zendesk-url", f.fake.URL, "--zendesk-email", zdEmail, "--zendesk-token", "-"}
	if _, stderr, err := f.run(t, runInstallZendesk, zdToken+"\n", args...); err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	if ten, _ := f.tenant(t); ten.Zendesk.APIToken != zdToken {
		t.Fatalf("token %q", ten.Zendesk.APIToken)
	}
}

func TestInstallZendeskBadCredentialsStoreNothing(t *testing.T) {
	f := newInstallFixture(t)
	args := []string{f.tenantID, "--zendesk-url", f.fake.URL, "--zendesk-email", zdEmail, "--zendesk-token", "not-" + zdToken}
	out, stderr, err := f.run(t, runInstallZendesk, "", args...)
	if !errors.Is(err, zendesk.ErrUnauthorized) || !strings.Contains(err.Error(), "check the Zendesk API email and token") {
		t.Fatalf("err %v", err)
	}
	noToken(t, "refused install", out, stderr, err.Error())
	if strings.Contains(err.Error(), "not-"+zdToken) {
		t.Fatalf("error shows the token: %v", err)
	}
	ten, st := f.tenant(t)
	if ten.Zendesk != (store.ZendeskAccount{}) || st != nil {
		t.Fatalf("stored after a refused login: %+v %+v", ten.Zendesk, st)
	}
	if c := f.fake.InstallCounts(); c != (zendesktest.InstallCounts{}) {
		t.Fatalf("counts %+v", c)
	}

	// An agent's token authenticates but cannot install: the error says why.
	f.fake.SetRole("agent")
	_, _, err = f.run(t, runInstallZendesk, "", f.installArgs()...)
	if !errors.Is(err, zendesk.ErrNotAdmin) || !strings.Contains(err.Error(), `role "agent"`) {
		t.Fatalf("agent: %v", err)
	}
	if ten, st := f.tenant(t); ten.Zendesk != (store.ZendeskAccount{}) || st != nil {
		t.Fatal("stored after a refused install")
	}
}

func TestInstallZendeskNeverShowsTheToken(t *testing.T) {
	f := newInstallFixture(t)
	// A server error that echoes the request's credentials.
	f.fake.FailNextWith(1, zendesktest.Fault{Status: http.StatusInternalServerError, Body: `{"error":"boom","auth":"` + zdEmail + `/token:` + zdToken + `"}`})
	out, stderr, err := f.run(t, runInstallZendesk, "", f.installArgs()...)
	if err == nil {
		t.Fatal("install succeeded through a 500")
	}
	noToken(t, "failed install", out, stderr, err.Error())
	var apiErr *zendesk.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Fatalf("err %v", err)
	}
	// run() prints the error: check that path too.
	var errb bytes.Buffer
	f.fake.FailNextWith(1, zendesktest.Fault{Status: http.StatusBadGateway, Body: zdToken})
	env := &cliEnv{Stdout: io.Discard, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return f.env[k] }}
	if code := runWith(env, f.installArgs()); code != 1 {
		t.Fatalf("exit %d", code)
	}
	noToken(t, "stderr", errb.String())
	if !strings.Contains(errb.String(), "502") {
		t.Fatalf("stderr %q", errb.String())
	}
}

// runWith is what main's run does with a subcommand error: print it to stderr, exit 1.
func runWith(env *cliEnv, args []string) int {
	if err := runInstallZendesk(context.Background(), env, args); err != nil {
		fmt.Fprintf(env.Stderr, "clvd tenant: %v\n", err)
		return 1
	}
	return 0
}

func TestInstallZendeskRateLimit(t *testing.T) {
	f := newInstallFixture(t)
	// A long Retry-After is not slept through: the run stops, nothing is stored.
	f.fake.FailNextWith(1, zendesktest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
	_, _, err := f.run(t, runInstallZendesk, "", f.installArgs()...)
	var rl *zendesk.RateLimitError
	if !errors.As(err, &rl) || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("err %v", err)
	}
	if ten, st := f.tenant(t); ten.Zendesk.APIToken != "" || st != nil {
		t.Fatal("stored after a rate-limited run")
	}
	// Short waits are waited out, and said so.
	f.fake.SetFaults(0, 0, 0)
	f.fake.FailNext(2, http.StatusTooManyRequests)
	_, stderr, err := f.run(t, runInstallZendesk, "", f.installArgs()...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if strings.Count(stderr, "rate limit") != 2 {
		t.Fatalf("stderr %q", stderr)
	}
	if ten, st := f.tenant(t); ten.Zendesk.WebhookSecret == "" || st == nil {
		t.Fatal("not stored")
	}
}

func TestUninstallZendesk(t *testing.T) {
	f := newInstallFixture(t)
	other := f.fake.AddWebhook("not clvd", "https://elsewhere.example/hook", "zen:event-type:user.created")
	if _, stderr, err := f.run(t, runInstallZendesk, "", f.installArgs("--triggers")...); err != nil {
		t.Fatalf("install: %v %s", err, stderr)
	}

	out, stderr, err := f.run(t, runUninstallZendesk, "", f.tenantID, "--json")
	if err != nil {
		t.Fatalf("uninstall: %v %s", err, stderr)
	}
	noToken(t, "uninstall", out, stderr)
	var got struct {
		Removed       []zendesk.InstallStep `json:"removed"`
		AlreadyGone   []zendesk.InstallStep `json:"already_gone"`
		SecretCleared bool                  `json:"webhook_secret_cleared"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Removed) != 3 || len(got.AlreadyGone) != 0 || !got.SecretCleared {
		t.Fatalf("uninstall output %s (%v)", out, err)
	}
	if hooks := f.fake.Webhooks(); len(hooks) != 1 || hooks[0].ID != other {
		t.Fatalf("webhooks left %+v", hooks)
	}
	if len(f.fake.Triggers()) != 0 || len(f.fake.UserFieldDefs()) != 4 {
		t.Fatalf("triggers %+v, fields %d", f.fake.Triggers(), len(f.fake.UserFieldDefs()))
	}
	ten, st := f.tenant(t)
	if ten.Zendesk.WebhookSecret != "" || ten.Zendesk.APIToken != zdToken {
		t.Fatalf("tenant after uninstall %+v", ten.Zendesk)
	}
	if st == nil || st.UninstalledAt == nil || st.EventsWebhookID != "" || st.TriggerID != "" || len(st.UserFieldIDs) != 4 {
		t.Fatalf("state after uninstall %+v", st)
	}

	// A second uninstall is harmless.
	counts := f.fake.InstallCounts()
	out, _, err = f.run(t, runUninstallZendesk, "", f.tenantID)
	if err != nil || !strings.Contains(out, "nothing to remove") || f.fake.InstallCounts() != counts {
		t.Fatalf("second uninstall: %v\n%s\n%+v", err, out, f.fake.InstallCounts())
	}

	// The user fields go only when asked.
	out, _, err = f.run(t, runUninstallZendesk, "", f.tenantID, "--remove-user-fields")
	if err != nil || len(f.fake.UserFieldDefs()) != 0 || f.fake.InstallCounts().UserFieldsDeleted != 4 || strings.Count(out, "removed") != 4 {
		t.Fatalf("removing fields: %v\n%s", err, out)
	}
	if _, st := f.tenant(t); len(st.UserFieldIDs) != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestInstallZendeskUsage(t *testing.T) {
	f := newInstallFixture(t)
	for name, args := range map[string][]string{
		"no tenant":      {},
		"flag first":     {"--triggers"},
		"both URL kinds": {f.tenantID, "--subdomain", "acme", "--zendesk-url", f.fake.URL},
		"stray argument": {f.tenantID, "extra"},
		"unknown flag":   {f.tenantID, "--colour"},
	} {
		if _, _, err := f.run(t, runInstallZendesk, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if _, _, err := f.run(t, runUninstallZendesk, ""); !errors.Is(err, errUsage) {
		t.Errorf("uninstall without tenant: %v", err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"bad subdomain":    {[]string{f.tenantID, "--subdomain", "acme.evil.com/x", "--zendesk-email", zdEmail, "--zendesk-token", zdToken}, "--subdomain"},
		"no credentials":   {[]string{f.tenantID}, "--zendesk-token"},
		"unknown tenant":   {[]string{"t_nope", "--zendesk-url", f.fake.URL, "--zendesk-email", zdEmail, "--zendesk-token", zdToken}, "t_nope"},
		"not an email":     {[]string{f.tenantID, "--zendesk-url", f.fake.URL, "--zendesk-email", "owner", "--zendesk-token", zdToken}, "email"},
		"bad public URL":   {append(f.installArgs(), "--public-url", "ftp://clvd.example.com"), "--public-url"},
		"empty stdin":      {[]string{f.tenantID, "--zendesk-url", f.fake.URL, "--zendesk-email", zdEmail, "--zendesk-token", "-"}, "stdin"},
		"uninstall before": {nil, "no Zendesk API credentials"},
	} {
		cmd := runInstallZendesk
		args := c.args
		if args == nil {
			cmd, args = runUninstallZendesk, []string{f.tenantID}
		}
		_, _, err := f.run(t, cmd, "", args...)
		if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, c.want)
		}
	}
	if n := len(f.fake.Requests()); n != 0 {
		t.Fatalf("refused commands reached Zendesk: %d requests", n)
	}

	// Without CLVD_ALLOW_LOCAL_TARGETS, a loopback Zendesk and an http public URL are refused.
	delete(f.env, "CLVD_ALLOW_LOCAL_TARGETS")
	if _, _, err := f.run(t, runInstallZendesk, "", f.installArgs()...); err == nil || !strings.Contains(err.Error(), "CLVD_ALLOW_LOCAL_TARGETS") {
		t.Errorf("loopback Zendesk: %v", err)
	}
	f.env["CLVD_PUBLIC_URL"] = "http://clvd.example.com"
	if _, _, err := f.run(t, runInstallZendesk, "", f.tenantID, "--subdomain", "acme", "--zendesk-email", zdEmail, "--zendesk-token", zdToken); err == nil || !strings.Contains(err.Error(), "CLVD_PUBLIC_URL") {
		t.Errorf("http public URL: %v", err)
	}
}

func TestZendeskWebhookURL(t *testing.T) {
	for _, c := range []struct{ public, flag, want string }{
		{"https://clvd.example.com", "", "https://clvd.example.com/webhooks/t_1/zendesk"},
		{"https://clvd.example.com/", "", "https://clvd.example.com/webhooks/t_1/zendesk"},
		{"https://proxy.example.com/clvd/", "", "https://proxy.example.com/clvd/webhooks/t_1/zendesk"},
		{"https://clvd.example.com", "https://hooks.example.org", "https://hooks.example.org/webhooks/t_1/zendesk"},
	} {
		cfg, err := loadConfig(&cliEnv{Getenv: func(k string) string {
			return map[string]string{"CLVD_PUBLIC_URL": c.public, "CLVD_DATA_DIR": t.TempDir()}[k]
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := zendeskWebhookURL(cfg, c.flag, "t_1")
		if err != nil || got != c.want {
			t.Errorf("%q %q: %q %v, want %q", c.public, c.flag, got, err, c.want)
		}
	}
}
