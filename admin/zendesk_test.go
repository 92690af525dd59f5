package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

const (
	zdEmail = "owner@acme.example"
	zdToken = "zd-API-t0ken-5e1f7"
)

// newRouterWith is newRouter with options changed by opt.
func newRouterWith(t *testing.T, st Store, opt func(*Options)) *gin.Engine {
	t.Helper()
	o := Options{Store: st, Key: testKey, Now: func() time.Time { return testNow }, Logger: quietLogger(), PublicURL: "https://clvd.example.com/"}
	opt(&o)
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(gin.Recovery())
	h.Register(r.Group("/api/v1"))
	return r
}

// installBody is an install request for the Zendesk at url with the admin's email and token, plus
// extra JSON members.
func installBody(url, token string, extra ...string) string {
	members := append([]string{fmt.Sprintf(`"zendesk_url":%q`, url), fmt.Sprintf(`"email":%q`, zdEmail), fmt.Sprintf(`"api_token":%q`, token)}, extra...)
	return "{" + strings.Join(members, ",") + "}"
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type installAnswer struct {
	TenantID   string `json:"tenant_id"`
	ZendeskURL string `json:"zendesk_url"`
	WebhookURL string `json:"webhook_url"`
	User       struct {
		ID, Name, Email, Role string
	} `json:"user"`
	Steps           []zendesk.InstallStep `json:"steps"`
	SecretsStored   int                   `json:"secrets_stored"`
	SecretsReplaced bool                  `json:"secrets_replaced"`
}

type uninstallAnswer struct {
	Removed       []zendesk.InstallStep `json:"removed"`
	AlreadyGone   []zendesk.InstallStep `json:"already_gone"`
	Remaining     zendesk.Installation  `json:"remaining"`
	SecretCleared *bool                 `json:"webhook_secret_cleared"`
}

type statusAnswer struct {
	TenantID          string            `json:"tenant_id"`
	Installed         bool              `json:"installed"`
	ZendeskURL        string            `json:"zendesk_url"`
	WebhookURL        string            `json:"webhook_url"`
	EventsWebhookID   string            `json:"events_webhook_id"`
	TriggerWebhookID  string            `json:"trigger_webhook_id"`
	TriggerID         string            `json:"trigger_id"`
	UserFieldIDs      map[string]string `json:"user_field_ids"`
	InstalledAt       *time.Time        `json:"installed_at"`
	UninstalledAt     *time.Time        `json:"uninstalled_at"`
	CredentialsStored map[string]bool   `json:"credentials_stored"`
}

// noSecrets fails if body shows the API token or a webhook signing secret of zd.
func noSecrets(t *testing.T, what, body string, zd *zendesktest.Server) {
	t.Helper()
	if strings.Contains(body, zdToken) || strings.Contains(body, "token:") {
		t.Fatalf("%s shows the API token: %s", what, body)
	}
	for _, h := range zd.Webhooks() {
		if strings.Contains(body, h.SigningSecret) {
			t.Fatalf("%s shows a webhook signing secret: %s", what, body)
		}
	}
}

func TestZendeskInstallLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := seed(t, db)
		zd := zendesktest.New(t, zdEmail, zdToken)
		other := zd.AddWebhook("not clvd", "https://elsewhere.example/hook", "zen:event-type:user.created")
		logs := &syncBuffer{}
		r := newRouterWith(t, db, func(o *Options) {
			o.AllowLocalTargets = true
			o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		adminA, op := token(t, f.a, RoleAdmin), token(t, "", RoleOperator)
		base := "/api/v1/tenants/" + f.a + "/zendesk"
		wantWebhook := "https://clvd.example.com/webhooks/" + f.a + "/zendesk"

		// Never installed: the status says so, and there is nothing to uninstall with.
		w := call(t, r, http.MethodGet, base, adminA, "")
		wantStatus(t, w, http.StatusNotFound, "status before install")
		if !strings.Contains(w.Body.String(), "never installed") {
			t.Errorf("status before install: %s", w.Body)
		}
		w = call(t, r, http.MethodPost, base+"/uninstall", adminA, "")
		wantStatus(t, w, http.StatusConflict, "uninstall before install")
		if !strings.Contains(w.Body.String(), "no Zendesk API credentials") {
			t.Errorf("uninstall before install: %s", w.Body)
		}

		// Install, by the tenant's admin.
		w = call(t, r, http.MethodPost, base+"/install", adminA, installBody(zd.URL, zdToken, `"triggers":true`))
		wantStatus(t, w, http.StatusOK, "install")
		noSecrets(t, "install answer", w.Body.String(), zd)
		var got installAnswer
		decode(t, w, &got)
		if got.TenantID != f.a || got.ZendeskURL != zd.URL || got.WebhookURL != wantWebhook || got.User.Role != "admin" ||
			got.User.Email != zdEmail || got.User.ID == "" || got.SecretsStored != 2 || got.SecretsReplaced || len(got.Steps) != 7 {
			t.Fatalf("install answer %s", w.Body)
		}
		for _, s := range got.Steps {
			if !s.Created || s.ID == "" {
				t.Errorf("first install step %+v not created", s)
			}
		}
		counts := zendesktest.InstallCounts{WebhooksCreated: 2, TriggersCreated: 1, UserFieldsCreated: 4}
		if c := zd.InstallCounts(); c != counts {
			t.Fatalf("fake counts %+v, want %+v", c, counts)
		}
		var hooks []zendesktest.Webhook
		for _, h := range zd.Webhooks() {
			if h.ID != other {
				hooks = append(hooks, h)
			}
		}
		if len(hooks) != 2 || hooks[0].Endpoint != wantWebhook || hooks[1].Endpoint != wantWebhook {
			t.Fatalf("fake webhooks %+v", zd.Webhooks())
		}
		ten := must(db.GetTenant(ctx, f.a))
		wantSecret := hooks[0].SigningSecret + "," + hooks[1].SigningSecret
		if ten.Zendesk.BaseURL != zd.URL || ten.Zendesk.Email != zdEmail || ten.Zendesk.APIToken != zdToken || ten.Zendesk.WebhookSecret != wantSecret {
			t.Fatalf("stored account %+v, want secrets %q", ten.Zendesk, wantSecret)
		}
		if b := must(db.GetTenant(ctx, f.b)); b.Zendesk != (store.ZendeskAccount{}) {
			t.Fatalf("installing A changed B: %+v", b.Zendesk)
		}

		// The status: ids, URL, times, and booleans for the credentials.
		w = call(t, r, http.MethodGet, base, adminA, "")
		wantStatus(t, w, http.StatusOK, "status")
		noSecrets(t, "status", w.Body.String(), zd)
		var st statusAnswer
		decode(t, w, &st)
		if st.TenantID != f.a || !st.Installed || st.ZendeskURL != zd.URL || st.WebhookURL != wantWebhook || st.EventsWebhookID != hooks[0].ID ||
			st.TriggerWebhookID != hooks[1].ID || st.TriggerID != zd.Triggers()[0].ID || len(st.UserFieldIDs) != 4 ||
			st.InstalledAt == nil || !st.InstalledAt.Equal(testNow) || st.UninstalledAt != nil {
			t.Fatalf("status %s", w.Body)
		}
		for _, k := range []string{"zendesk_url", "email", "api_token", "webhook_secret"} {
			if !st.CredentialsStored[k] {
				t.Errorf("credentials_stored[%s] false: %s", k, w.Body)
			}
		}

		// Again, by an operator, on the stored credentials, through a short rate limit: nothing is
		// created twice and the secrets stay.
		zd.SetFaults(0, 0, 0)
		zd.FailNext(1, http.StatusTooManyRequests)
		w = call(t, r, http.MethodPost, base+"/install", op, `{}`)
		wantStatus(t, w, http.StatusOK, "second install")
		noSecrets(t, "second install answer", w.Body.String(), zd)
		got = installAnswer{}
		decode(t, w, &got)
		if c := zd.InstallCounts(); c != counts {
			t.Fatalf("second install created something: %+v", c)
		}
		if len(got.Steps) != 7 || got.SecretsStored != 2 || got.SecretsReplaced {
			t.Fatalf("second install answer %s", w.Body)
		}
		for _, s := range got.Steps {
			if s.Created {
				t.Errorf("second install created %+v", s)
			}
		}
		if again := must(db.GetTenant(ctx, f.a)); again.Zendesk != ten.Zendesk {
			t.Fatalf("second install changed the account: %+v", again.Zendesk)
		}

		// Uninstall, with no body: the trigger and webhooks go, the fields and credentials stay.
		w = call(t, r, http.MethodPost, base+"/uninstall", adminA, "")
		wantStatus(t, w, http.StatusOK, "uninstall")
		noSecrets(t, "uninstall answer", w.Body.String(), zd)
		var un uninstallAnswer
		decode(t, w, &un)
		if len(un.Removed) != 3 || len(un.AlreadyGone) != 0 || un.SecretCleared == nil || !*un.SecretCleared || len(un.Remaining.UserFieldIDs) != 4 {
			t.Fatalf("uninstall answer %s", w.Body)
		}
		if hs := zd.Webhooks(); len(hs) != 1 || hs[0].ID != other {
			t.Fatalf("webhooks left %+v", hs)
		}
		if len(zd.Triggers()) != 0 || len(zd.UserFieldDefs()) != 4 {
			t.Fatalf("triggers %+v, %d fields", zd.Triggers(), len(zd.UserFieldDefs()))
		}
		if ten := must(db.GetTenant(ctx, f.a)); ten.Zendesk.WebhookSecret != "" || ten.Zendesk.APIToken != zdToken {
			t.Fatalf("account after uninstall %+v", ten.Zendesk)
		}
		w = call(t, r, http.MethodGet, base, op, "")
		st = statusAnswer{}
		decode(t, w, &st)
		if st.Installed || st.UninstalledAt == nil || st.EventsWebhookID != "" || st.CredentialsStored["webhook_secret"] || !st.CredentialsStored["api_token"] {
			t.Fatalf("status after uninstall %s", w.Body)
		}

		// Again, removing the user fields.
		w = call(t, r, http.MethodPost, base+"/uninstall", op, `{"remove_user_fields":true}`)
		wantStatus(t, w, http.StatusOK, "uninstall with fields")
		un = uninstallAnswer{}
		decode(t, w, &un)
		if len(un.Removed) != 4 || un.SecretCleared == nil || *un.SecretCleared || len(zd.UserFieldDefs()) != 0 {
			t.Fatalf("uninstall with fields: %s, %d fields left", w.Body, len(zd.UserFieldDefs()))
		}

		if strings.Contains(logs.String(), zdToken) {
			t.Fatalf("the logs show the API token:\n%s", logs)
		}
		if !strings.Contains(logs.String(), "Zendesk rate limit") {
			t.Errorf("the short rate limit was not logged:\n%s", logs)
		}
	})
}

// TestZendeskInstallRefusals: every request that must fail fails with its status and a message
// saying what to fix, stores nothing, and never shows the token.
func TestZendeskInstallRefusals(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more

	type tc struct {
		name    string
		opts    func(*Options)               // nil: local targets allowed (the fake is on 127.0.0.1)
		setup   func(zd *zendesktest.Server) // e.g. faults
		path    string                       // "" is A's install; %s is tenant A
		tok     string                       // "" is A's admin; "b" B's admin; "op" an operator
		body    func(zdURL string) string
		status  int
		msg     string // in the error message
		retry   string // Retry-After, when it must be set
		noCalls bool   // Zendesk must not be called at all
	}
	good := func(zdURL string) string { return installBody(zdURL, zdToken) }
	with := func(extra string) func(string) string {
		return func(zdURL string) string { return installBody(zdURL, zdToken, extra) }
	}
	fixed := func(body string) func(string) string { return func(string) string { return body } }
	strict := func(o *Options) { o.AllowLocalTargets = false }
	cases := []tc{
		{name: "not JSON", body: fixed(`{"email":`), status: 400, msg: "JSON object", noCalls: true},
		{name: "not an object", body: fixed(`["acme"]`), status: 400, msg: "JSON object", noCalls: true},
		{name: "no body", body: fixed(``), status: 400, msg: "JSON object", noCalls: true},
		{name: "two objects", body: fixed(`{} {}`), status: 400, msg: "JSON object", noCalls: true},
		{name: "unknown field", body: with(`"password":"x"`), status: 400, msg: `unknown field \"password\"`, noCalls: true},
		{name: "wrong type", body: with(`"triggers":"yes"`), status: 400, msg: "triggers", noCalls: true},
		{name: "too big", body: fixed(`{"email":"` + strings.Repeat("x", maxBodyBytes) + `"}`), status: 413, msg: "larger than", noCalls: true},
		{name: "query parameter", path: "/api/v1/tenants/%s/zendesk/install?dry_run=1", body: good, status: 400, msg: "dry_run", noCalls: true},
		{name: "subdomain and URL", body: with(`"subdomain":"acme"`), status: 400, msg: "not both", noCalls: true},
		{name: "bad subdomain", body: fixed(`{"subdomain":"acme.evil.com/x","email":"a@b.c","api_token":"t"}`), status: 400, msg: "subdomain", noCalls: true},
		{name: "no credentials yet", body: func(u string) string { return fmt.Sprintf(`{"zendesk_url":%q}`, u) }, status: 400, msg: "api_token", noCalls: true},
		{name: "not an email", body: func(u string) string {
			return fmt.Sprintf(`{"zendesk_url":%q,"email":"owner","api_token":%q}`, u, zdToken)
		},
			status: 400, msg: "email", noCalls: true},
		{name: "URL with a path", body: func(u string) string { return installBody(u+"/agent/dashboard", zdToken) }, status: 400, msg: "without a path", noCalls: true},
		{name: "http when local targets are refused", opts: strict, body: fixed(installBody("http://acme.zendesk.com", zdToken)),
			status: 400, msg: "https", noCalls: true},
		{name: "private address when local targets are refused", opts: strict, body: fixed(installBody("https://10.1.2.3", zdToken)),
			status: 400, msg: "private", noCalls: true},
		{name: "loopback when local targets are refused", opts: strict, body: good, status: 400, msg: "CLVD_ALLOW_LOCAL_TARGETS", noCalls: true},
		{name: "no public URL", opts: func(o *Options) { o.AllowLocalTargets, o.PublicURL = true, "" }, body: good, status: 409, msg: "CLVD_PUBLIC_URL", noCalls: true},
		{name: "http public URL", opts: func(o *Options) { o.AllowLocalTargets, o.PublicURL = false, "http://clvd.example.com" },
			body: fixed(installBody("https://acme.zendesk.com", zdToken)), status: 409, msg: "CLVD_PUBLIC_URL", noCalls: true},
		{name: "another tenant's admin", tok: "b", body: good, status: 403, msg: "another tenant", noCalls: true},
		{name: "unknown tenant", tok: "op", path: "/api/v1/tenants/t_nope/zendesk/install", body: good, status: 404, msg: "unknown tenant", noCalls: true},
		{name: "wrong token", body: func(u string) string { return installBody(u, "not-"+zdToken) }, status: 422, msg: "check the email and the API token"},
		{name: "agent's token", setup: func(zd *zendesktest.Server) { zd.SetRole("agent") }, body: good, status: 422, msg: `role \"agent\"`},
		{name: "conflicting user field", setup: func(zd *zendesktest.Server) { zd.AddUserFieldDef("clv_predicted", "text", "Predicted") },
			body: good, status: 409, msg: "clv_predicted"},
		{name: "rate limited", setup: func(zd *zendesktest.Server) {
			zd.FailNextWith(1, zendesktest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
		}, body: good, status: 503, msg: "rate limit", retry: "3600"},
		{name: "Zendesk failing, echoing the token", setup: func(zd *zendesktest.Server) {
			zd.FailNextWith(1, zendesktest.Fault{Status: http.StatusInternalServerError, Body: `{"auth":"` + zdEmail + `/token:` + zdToken + `"}`})
		}, body: good, status: 502, msg: "HTTP 500"},
		{name: "Zendesk unreachable", body: fixed(installBody(downURL, zdToken)), status: 502, msg: "could not reach Zendesk"},
	}
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := seed(t, db)
		for _, c := range cases {
			zd := zendesktest.New(t, zdEmail, zdToken)
			if c.setup != nil {
				c.setup(zd)
			}
			opts := c.opts
			if opts == nil {
				opts = func(o *Options) { o.AllowLocalTargets = true }
			}
			logs := &syncBuffer{}
			r := newRouterWith(t, db, func(o *Options) {
				opts(o)
				o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			path := "/api/v1/tenants/%s/zendesk/install"
			if c.path != "" {
				path = c.path
			}
			if strings.Contains(path, "%s") {
				path = fmt.Sprintf(path, f.a)
			}
			tok := map[string]string{"": token(t, f.a, RoleAdmin), "b": token(t, f.b, RoleAdmin), "op": token(t, "", RoleOperator)}[c.tok]
			w := call(t, r, http.MethodPost, path, tok, c.body(zd.URL))
			wantStatus(t, w, c.status, c.name)
			if !strings.Contains(w.Body.String(), c.msg) {
				t.Errorf("%s: error %s does not say %q", c.name, w.Body, c.msg)
			}
			if got := w.Header().Get("Retry-After"); c.retry != "" && got != c.retry {
				t.Errorf("%s: Retry-After %q, want %q", c.name, got, c.retry)
			}
			if strings.Contains(w.Body.String(), zdToken) || strings.Contains(logs.String(), zdToken) {
				t.Errorf("%s: the token shows in the answer or the logs:\n%s\n%s", c.name, w.Body, logs)
			}
			if n := len(zd.Requests()); c.noCalls && n != 0 {
				t.Errorf("%s: refused request reached Zendesk (%d requests)", c.name, n)
			}
			if cnt := zd.InstallCounts(); cnt.WebhooksCreated+cnt.TriggersCreated != 0 && c.status != http.StatusConflict {
				t.Errorf("%s: created in Zendesk %+v", c.name, cnt)
			}
			if ten := must(db.GetTenant(ctx, f.a)); ten.Zendesk != (store.ZendeskAccount{}) {
				t.Fatalf("%s: stored %+v", c.name, ten.Zendesk)
			}
			if _, _, err := db.GetTenantState(ctx, f.a, ZendeskInstallStateKey); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: recorded an installation (%v)", c.name, err)
			}
		}
	})
}

// TestZendeskUninstallBody: the uninstall body is optional but strict.
func TestZendeskUninstallBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		zd := zendesktest.New(t, zdEmail, zdToken)
		r := newRouterWith(t, db, func(o *Options) { o.AllowLocalTargets = true })
		adminA := token(t, f.a, RoleAdmin)
		path := "/api/v1/tenants/" + f.a + "/zendesk/uninstall"
		wantStatus(t, call(t, r, http.MethodPost, "/api/v1/tenants/"+f.a+"/zendesk/install", adminA, installBody(zd.URL, zdToken)), http.StatusOK, "install")
		if c := zd.InstallCounts(); c != (zendesktest.InstallCounts{WebhooksCreated: 1, UserFieldsCreated: 4}) {
			t.Fatalf("install without triggers: %+v", c)
		}
		zd.ResetRequests()
		for _, bad := range []struct{ body, why string }{
			{`{"remove_fields":true}`, "unknown field"},
			{`{"remove_user_fields":"yes"}`, "wrong type"},
			{`[]`, "not an object"},
			{`{"remove_user_fields":`, "not JSON"},
		} {
			wantStatus(t, call(t, r, http.MethodPost, path, adminA, bad.body), http.StatusBadRequest, "uninstall: "+bad.why)
		}
		wantStatus(t, call(t, r, http.MethodPost, path, adminA, `{"x":"`+strings.Repeat("y", maxBodyBytes)+`"}`), http.StatusRequestEntityTooLarge, "uninstall: huge body")
		wantStatus(t, call(t, r, http.MethodGet, "/api/v1/tenants/"+f.a+"/zendesk?verbose=1", adminA, ""), http.StatusBadRequest, "status: unknown parameter")
		if n := len(zd.Requests()); n != 0 {
			t.Fatalf("refused uninstalls reached Zendesk: %d requests", n)
		}
		wantStatus(t, call(t, r, http.MethodPost, path, adminA, `{}`), http.StatusOK, "uninstall with {}")
		if len(zd.Webhooks()) != 0 || len(zd.UserFieldDefs()) != 4 {
			t.Fatalf("after uninstall: %d webhooks, %d fields", len(zd.Webhooks()), len(zd.UserFieldDefs()))
		}
	})
}

// TestZendeskOneRunPerTenant: a second install or uninstall of a tenant while one runs is refused.
func TestZendeskOneRunPerTenant(t *testing.T) {
	var b busyTenants
	doneA, ok := b.start("t_a")
	if !ok {
		t.Fatal("first start refused")
	}
	if _, ok := b.start("t_a"); ok {
		t.Fatal("second start of the same tenant allowed")
	}
	doneB, ok := b.start("t_b")
	if !ok {
		t.Fatal("another tenant refused")
	}
	doneA()
	again, ok := b.start("t_a")
	if !ok {
		t.Fatal("start after done refused")
	}
	again()
	doneB()
}

// TestClassifyZendeskErrors: the statuses of Zendesk's errors, however deeply wrapped.
func TestClassifyZendeskErrors(t *testing.T) {
	wrap := func(err error) error { return redact(fmt.Errorf("zendesk: GET /x: %w\n(note)", err), "s3cr3t") }
	for _, c := range []struct {
		err    error
		status int
	}{
		{wrap(zendesk.ErrUnauthorized), 422},
		{wrap(zendesk.ErrNotAdmin), 422},
		{wrap(zendesk.ErrInvalidInput), 422},
		{wrap(zendesk.ErrInstallConflict), 409},
		{wrap(&zendesk.RateLimitError{RetryAfter: 1500 * time.Millisecond}), 503},
		{wrap(&zendesk.APIError{Status: 503}), 502},
		{wrap(&zendesk.APIError{Status: 400, Body: "bad"}), 422},
		{wrap(context.DeadlineExceeded), 500},
		{&apiError{kind: errConflict, msg: "x"}, 409},
	} {
		if got, _ := classify(c.err); got != c.status {
			t.Errorf("%v: %d, want %d", c.err, got, c.status)
		}
	}
	if got := retryAfterSeconds(wrap(&zendesk.RateLimitError{RetryAfter: 1500 * time.Millisecond})); got != "2" {
		t.Errorf("Retry-After for 1.5 s: %s", got)
	}
	if got := retryAfterSeconds(errors.New("x")); got != "5" {
		t.Errorf("default Retry-After: %s", got)
	}
	// Redaction keeps the error's identity and hides the token.
	err := redact(fmt.Errorf("echo tok-123: %w", zendesk.ErrUnauthorized), "tok-123")
	if !errors.Is(err, zendesk.ErrUnauthorized) || strings.Contains(err.Error(), "tok-123") {
		t.Errorf("redacted: %v", err)
	}
}
