package zendesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
)

const (
	installEmail = "admin@acme.example"
	installToken = "inst4ll-T0KEN-9b2e"
	installURL   = "https://clvd.example.com/webhooks/t_1/zendesk"
)

func newInstallFake(t *testing.T) (*Client, *zendesktest.Server) {
	t.Helper()
	fake := zendesktest.New(t, installEmail, installToken)
	c, err := NewClient(fake.URL, installEmail, installToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

func posts(fake *zendesktest.Server) []zendesktest.RecordedRequest {
	var out []zendesktest.RecordedRequest
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost || r.Method == http.MethodDelete || r.Method == http.MethodPut {
			out = append(out, r)
		}
	}
	return out
}

func TestInstallCreatesEverythingOnceThenNothing(t *testing.T) {
	c, fake := newInstallFake(t)
	ctx := context.Background()
	inst, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, Name: "clvd t_1", Triggers: true})
	if err != nil {
		t.Fatal(err)
	}
	want := zendesktest.InstallCounts{WebhooksCreated: 2, TriggersCreated: 1, UserFieldsCreated: 4}
	if got := fake.InstallCounts(); got != want {
		t.Fatalf("first install: counts %+v, want %+v", got, want)
	}

	hooks := fake.Webhooks()
	if len(hooks) != 2 {
		t.Fatalf("webhooks %+v", hooks)
	}
	ev, tw := hooks[0], hooks[1]
	if ev.ID != inst.EventsWebhookID || tw.ID != inst.TriggerWebhookID {
		t.Fatalf("ids: installation %+v, fake %s %s", inst, ev.ID, tw.ID)
	}
	if ev.Endpoint != installURL || ev.HTTPMethod != "POST" || ev.RequestFormat != "json" || ev.Status != "active" ||
		!slices.Equal(ev.Subscriptions, DefaultEventTypes) || !strings.Contains(ev.Name, "clvd t_1") {
		t.Errorf("event webhook %+v", ev)
	}
	if tw.Endpoint != installURL || !slices.Equal(tw.Subscriptions, []string{ConditionalTicketEvents}) {
		t.Errorf("trigger webhook %+v", tw)
	}
	if inst.EventsSecret != ev.SigningSecret || inst.TriggerSecret != tw.SigningSecret || inst.EventsSecret == inst.TriggerSecret {
		t.Errorf("secrets %q %q, fake has %q %q", inst.EventsSecret, inst.TriggerSecret, ev.SigningSecret, tw.SigningSecret)
	}
	if got := inst.Secrets(); !slices.Equal(got, []string{ev.SigningSecret, tw.SigningSecret}) {
		t.Errorf("Secrets() = %q", got)
	}

	triggers := fake.Triggers()
	if len(triggers) != 1 || triggers[0].ID != inst.TriggerID || triggers[0].WebhookID != tw.ID ||
		triggers[0].WebhookBody != TriggerPayloadTemplate || !triggers[0].Active {
		t.Fatalf("triggers %+v (installation %+v)", triggers, inst)
	}
	var conds TriggerConditions
	if err := json.Unmarshal(triggers[0].Conditions, &conds); err != nil {
		t.Fatal(err)
	}
	if len(conds.All) != 0 || len(conds.Any) != 2 || conds.Any[0].Field != "update_type" || conds.Any[0].Value != "Create" ||
		conds.Any[1].Value != "Change" {
		t.Errorf("trigger conditions %+v", conds)
	}

	fields := fake.UserFieldDefs()
	if len(fields) != len(UserFieldSpecs) {
		t.Fatalf("user fields %+v", fields)
	}
	for i, spec := range UserFieldSpecs {
		if fields[i].Key != spec.Key || fields[i].Type != spec.Type || inst.UserFieldIDs[spec.Key] != fields[i].ID {
			t.Errorf("field %d: %+v, spec %+v, ids %v", i, fields[i], spec, inst.UserFieldIDs)
		}
	}
	for _, s := range inst.Steps {
		if !s.Created {
			t.Errorf("first run step %+v not marked created", s)
		}
	}

	// Second run: everything is found, nothing is written.
	fake.ResetRequests()
	again, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, Name: "clvd t_1", Triggers: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.InstallCounts(); got != want {
		t.Fatalf("second install changed counts: %+v", got)
	}
	if w := posts(fake); len(w) != 0 {
		t.Fatalf("second install wrote: %+v", w)
	}
	if again.EventsWebhookID != inst.EventsWebhookID || again.TriggerWebhookID != inst.TriggerWebhookID ||
		again.TriggerID != inst.TriggerID || fmt.Sprint(again.UserFieldIDs) != fmt.Sprint(inst.UserFieldIDs) ||
		!slices.Equal(again.Secrets(), inst.Secrets()) {
		t.Fatalf("second install\n got %+v\nwant %+v", again, inst)
	}
	if len(again.Steps) != 7 {
		t.Fatalf("steps %+v", again.Steps)
	}
	for _, s := range again.Steps {
		if s.Created {
			t.Errorf("second run created %+v", s)
		}
	}
	// The stored form carries ids, never secrets.
	state, err := json.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(state), inst.EventsSecret) || strings.Contains(string(state), inst.TriggerSecret) {
		t.Fatalf("installation JSON holds a secret: %s", state)
	}
	var back Installation
	if err := json.Unmarshal(state, &back); err != nil || back.TriggerID != inst.TriggerID || back.WebhookURL != installURL {
		t.Fatalf("round trip %+v %v", back, err)
	}
}

func TestInstallRequestShapes(t *testing.T) {
	c, fake := newInstallFake(t)
	if _, err := Install(context.Background(), c, InstallOptions{WebhookURL: installURL, Triggers: true}); err != nil {
		t.Fatal(err)
	}
	var creates []zendesktest.RecordedRequest
	for _, r := range posts(fake) {
		creates = append(creates, r)
	}
	if len(creates) != 7 {
		t.Fatalf("writes %+v", creates)
	}
	if creates[0].Path != "/api/v2/webhooks" || creates[0].ContentType != "application/json" {
		t.Fatalf("first write %s %s", creates[0].Path, creates[0].ContentType)
	}
	var body struct {
		Webhook map[string]any `json:"webhook"`
	}
	if err := json.Unmarshal(creates[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"endpoint": installURL, "http_method": "POST", "request_format": "json", "status": "active", "name": "clvd: ticket events"} {
		if body.Webhook[k] != v {
			t.Errorf("webhook %s = %v, want %v", k, body.Webhook[k], v)
		}
	}
	if _, ok := body.Webhook["id"]; ok {
		t.Errorf("create sends a read-only id: %s", creates[0].Body)
	}
	if creates[2].Path != "/api/v2/triggers.json" || creates[3].Path != "/api/v2/user_fields.json" {
		t.Errorf("paths %s %s", creates[2].Path, creates[3].Path)
	}
	assertInstallJSON(t, creates[3].Body, `{"user_field":{"key":"clv_predicted","type":"decimal","title":"CLV (predicted)","description":"Predicted customer lifetime value, written by clvd."}}`)
	// Secrets are read (GET), never reset (POST …/signing_secret).
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/signing_secret") && r.Method != http.MethodGet {
			t.Errorf("signing secret %s", r.Method)
		}
	}
}

func assertInstallJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestInstallTriggersAreOptInAndThenKept(t *testing.T) {
	c, fake := newInstallFake(t)
	ctx := context.Background()
	inst, err := Install(ctx, c, InstallOptions{WebhookURL: installURL})
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.InstallCounts(); got != (zendesktest.InstallCounts{WebhooksCreated: 1, UserFieldsCreated: 4}) {
		t.Fatalf("without triggers: %+v", got)
	}
	if inst.TriggerWebhookID != "" || inst.TriggerID != "" || len(inst.Secrets()) != 1 {
		t.Fatalf("installation %+v", inst)
	}
	withTriggers, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, Triggers: true})
	if err != nil {
		t.Fatal(err)
	}
	if withTriggers.EventsWebhookID != inst.EventsWebhookID || withTriggers.TriggerID == "" || len(withTriggers.Secrets()) != 2 {
		t.Fatalf("adding triggers: %+v", withTriggers)
	}
	// A later run without the flag neither duplicates nor drops them (their secret stays needed).
	later, err := Install(ctx, c, InstallOptions{WebhookURL: installURL})
	if err != nil {
		t.Fatal(err)
	}
	if later.TriggerID != withTriggers.TriggerID || !slices.Equal(later.Secrets(), withTriggers.Secrets()) {
		t.Fatalf("later run %+v", later)
	}
	if got := fake.InstallCounts(); got != (zendesktest.InstallCounts{WebhooksCreated: 2, TriggersCreated: 1, UserFieldsCreated: 4}) {
		t.Fatalf("counts %+v", got)
	}
}

func TestInstallAdoptsExistingObjectsAcrossPages(t *testing.T) {
	c, fake := newInstallFake(t)
	// 150 unrelated webhooks put ours on the second page of the list.
	for i := range 150 {
		fake.AddWebhook(fmt.Sprintf("other %d", i), fmt.Sprintf("https://other.example/%d", i), "zen:event-type:user.created")
	}
	other := fake.AddWebhook("other tenant", "https://clvd.example.com/webhooks/t_2/zendesk", DefaultEventTypes...)
	mine := fake.AddWebhook("made by hand (README)", installURL, "zen:event-type:ticket.created")
	fieldID := fake.AddUserFieldDef("clv_predicted", "decimal", "Predicted CLV")

	inst, err := Install(context.Background(), c, InstallOptions{WebhookURL: installURL})
	if err != nil {
		t.Fatal(err)
	}
	if inst.EventsWebhookID != mine || inst.UserFieldIDs["clv_predicted"] != fieldID {
		t.Fatalf("did not adopt: %+v (want webhook %s, field %s)", inst, mine, fieldID)
	}
	if inst.EventsWebhookID == other {
		t.Fatal("adopted another tenant's webhook")
	}
	if got := fake.InstallCounts(); got != (zendesktest.InstallCounts{UserFieldsCreated: 3}) {
		t.Fatalf("counts %+v", got)
	}
	var listed int
	for _, r := range fake.Requests() {
		if r.Path == "/api/v2/webhooks" && r.Method == http.MethodGet {
			listed++
			if q, _ := url.ParseQuery(r.RawQuery); q.Get("page[size]") != "100" {
				t.Errorf("list query %q", r.RawQuery)
			}
		}
	}
	if listed != 2 {
		t.Fatalf("webhook list pages fetched: %d, want 2", listed)
	}
}

func TestListWebhooksFilterAndPagination(t *testing.T) {
	c, fake := newInstallFake(t)
	for i := range 230 {
		fake.AddWebhook(fmt.Sprintf("hook %03d", i), "https://x.example/", "zen:event-type:user.created")
	}
	all, err := c.ListWebhooks(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 230 || all[229].Name != "hook 229" {
		t.Fatalf("listed %d", len(all))
	}
	some, err := c.ListWebhooks(context.Background(), "hook 10")
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 10 { // hook 100 … hook 109
		t.Fatalf("filtered %d: %+v", len(some), some)
	}
}

func TestInstallRefusesConflictingUserField(t *testing.T) {
	c, fake := newInstallFake(t)
	fake.AddUserFieldDef("clv_churn_probability", "text", "Churn")
	_, err := Install(context.Background(), c, InstallOptions{WebhookURL: installURL})
	if !errors.Is(err, ErrInstallConflict) || !strings.Contains(err.Error(), "clv_churn_probability") {
		t.Fatalf("err %v", err)
	}
	for _, f := range fake.UserFieldDefs() {
		if f.Key == "clv_churn_probability" && f.Type != "text" {
			t.Fatal("existing field rewritten")
		}
	}
}

func TestInstallBadCredentialsChangeNothing(t *testing.T) {
	fake := zendesktest.New(t, installEmail, installToken)
	c, err := NewClient(fake.URL, installEmail, "wrong-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Install(context.Background(), c, InstallOptions{WebhookURL: installURL, Triggers: true})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err %v, want ErrUnauthorized", err)
	}
	if reqs := fake.Requests(); len(reqs) != 1 || reqs[0].Path != "/api/v2/users/me.json" {
		t.Fatalf("requests after a refused login: %+v", reqs)
	}
	if got := fake.InstallCounts(); got != (zendesktest.InstallCounts{}) {
		t.Fatalf("counts %+v", got)
	}
}

func TestInstallNeedsAnAdmin(t *testing.T) {
	for _, role := range []string{"agent", "end-user"} {
		c, fake := newInstallFake(t)
		fake.SetRole(role)
		_, err := Install(context.Background(), c, InstallOptions{WebhookURL: installURL})
		if !errors.Is(err, ErrNotAdmin) || !strings.Contains(err.Error(), role) || !strings.Contains(err.Error(), installEmail) {
			t.Errorf("%s: err %v", role, err)
		}
		if len(fake.Requests()) != 1 {
			t.Errorf("%s: went on after the role check: %+v", role, fake.Requests())
		}
	}
	// The fake itself refuses admin-only calls to an agent, as Zendesk does.
	c, fake := newInstallFake(t)
	fake.SetRole("agent")
	if _, err := c.CreateWebhook(context.Background(), Webhook{Name: "x", Endpoint: installURL, HTTPMethod: "POST", RequestFormat: "json", Status: "active"}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("agent creating a webhook: %v", err)
	}
}

func TestCurrentUserAnonymousIsUnauthorized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"user":{"id":null,"name":"Anonymous user","email":"invalid@example.com","role":"end-user"}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, installEmail, installToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CurrentUser(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
}

func TestInstallRateLimit(t *testing.T) {
	ctx := context.Background()

	// Without retries a 429 comes back as the client's *RateLimitError, with Zendesk's Retry-After.
	c, fake := newInstallFake(t)
	fake.SetFaults(0, 0, 7*time.Second)
	fake.FailNext(1, http.StatusTooManyRequests)
	_, err := Install(ctx, c, InstallOptions{WebhookURL: installURL})
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("err %v, want RateLimitError after 7s", err)
	}

	// With retries, short waits are waited out and the run completes.
	fake.SetFaults(0, 0, 0)
	fake.FailNext(3, http.StatusTooManyRequests)
	var waits []time.Duration
	inst, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, RateLimitRetries: 3, MaxRateLimitWait: time.Second,
		OnRateLimit: func(d time.Duration) { waits = append(waits, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 3 || inst.EventsSecret == "" {
		t.Fatalf("waits %v, installation %+v", waits, inst)
	}
	if got := fake.InstallCounts(); got != (zendesktest.InstallCounts{WebhooksCreated: 1, UserFieldsCreated: 4}) {
		t.Fatalf("counts %+v", got)
	}

	// A wait longer than allowed is not slept through.
	fake.FailNextWith(1, zendesktest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
	start := time.Now()
	_, err = Install(ctx, c, InstallOptions{WebhookURL: installURL, RateLimitRetries: 3, MaxRateLimitWait: time.Second})
	if !errors.As(err, &rl) || rl.RetryAfter != time.Hour || time.Since(start) > 5*time.Second {
		t.Fatalf("long Retry-After: %v after %s", err, time.Since(start))
	}
}

func TestUninstallRemovesWhatInstallCreated(t *testing.T) {
	c, fake := newInstallFake(t)
	ctx := context.Background()
	unrelated := fake.AddWebhook("someone else's", "https://other.example/hook", "zen:event-type:user.created")
	inst, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, Triggers: true})
	if err != nil {
		t.Fatal(err)
	}

	res, err := Uninstall(ctx, c, inst, UninstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.InstallCounts(); got.WebhooksDeleted != 2 || got.TriggersDeleted != 1 || got.UserFieldsDeleted != 0 {
		t.Fatalf("counts %+v", got)
	}
	if hooks := fake.Webhooks(); len(hooks) != 1 || hooks[0].ID != unrelated {
		t.Fatalf("webhooks left %+v", hooks)
	}
	if len(fake.Triggers()) != 0 || len(fake.UserFieldDefs()) != 4 {
		t.Fatalf("triggers %+v, fields %+v", fake.Triggers(), fake.UserFieldDefs())
	}
	if len(res.Removed) != 3 || res.Removed[0].Object != "trigger" || len(res.AlreadyGone) != 0 {
		t.Fatalf("result %+v", res)
	}
	rem := res.Remaining
	if rem.EventsWebhookID != "" || rem.TriggerWebhookID != "" || rem.TriggerID != "" || len(rem.UserFieldIDs) != 4 || rem.WebhookURL != installURL {
		t.Fatalf("remaining %+v", rem)
	}

	// Again, from the original ids: harmless, reports them gone.
	again, err := Uninstall(ctx, c, inst, UninstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Removed) != 0 || len(again.AlreadyGone) != 3 {
		t.Fatalf("second uninstall %+v", again)
	}
	// And from what the first one left: nothing to do at all.
	fake.ResetRequests()
	if third, err := Uninstall(ctx, c, rem, UninstallOptions{}); err != nil || len(third.Removed)+len(third.AlreadyGone) != 0 {
		t.Fatalf("third uninstall %+v %v", third, err)
	}
	if w := posts(fake); len(w) != 0 {
		t.Fatalf("third uninstall wrote %+v", w)
	}
	if got := fake.InstallCounts(); got.WebhooksDeleted != 2 || got.TriggersDeleted != 1 {
		t.Fatalf("counts after repeats %+v", got)
	}
}

func TestUninstallFindsUnrecordedObjectsAndRemovesFieldsOnRequest(t *testing.T) {
	c, fake := newInstallFake(t)
	ctx := context.Background()
	if _, err := Install(ctx, c, InstallOptions{WebhookURL: installURL, Triggers: true}); err != nil {
		t.Fatal(err)
	}
	// The ids were never stored (say the state write failed): the markers are enough.
	res, err := Uninstall(ctx, c, Installation{WebhookURL: installURL}, UninstallOptions{RemoveUserFields: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.InstallCounts(); got.WebhooksDeleted != 2 || got.TriggersDeleted != 1 || got.UserFieldsDeleted != 4 {
		t.Fatalf("counts %+v, result %+v", got, res)
	}
	if len(fake.Webhooks())+len(fake.Triggers())+len(fake.UserFieldDefs()) != 0 || res.Remaining.UserFieldIDs != nil {
		t.Fatalf("left behind: %+v %+v %+v", fake.Webhooks(), fake.Triggers(), fake.UserFieldDefs())
	}
	// Zendesk never gives a deleted field's key out again: a reinstall says so.
	_, err = Install(ctx, c, InstallOptions{WebhookURL: installURL})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("reinstall after removing fields: %v", err)
	}
}

func TestInstallValidatesInput(t *testing.T) {
	c, fake := newInstallFake(t)
	for _, u := range []string{"", "/webhooks/t/zendesk", "ftp://x/y", "https://user:pw@x.example/y"} {
		if _, err := Install(context.Background(), c, InstallOptions{WebhookURL: u}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("webhook URL %q: %v", u, err)
		}
	}
	for _, id := range []string{"", "../../users", "01ABC/signing_secret", strings.Repeat("A", 65)} {
		if err := c.DeleteWebhook(context.Background(), id); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("webhook id %q: %v", id, err)
		}
	}
	if err := c.DeleteTrigger(context.Background(), "12a"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("trigger id: %v", err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("invalid input reached Zendesk: %d requests", n)
	}
}

func TestListRefusesOffsetPaginationAndLoopingCursors(t *testing.T) {
	for name, body := range map[string]string{
		"offset":  `{"triggers":[],"next_page":"https://acme.zendesk.com/api/v2/triggers.json?page=2","count":120}`,
		"looping": `{"triggers":[],"meta":{"has_more":true,"after_cursor":"same"}}`,
		"no list": `{"meta":{"has_more":false}}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		c, err := NewClient(srv.URL, installEmail, installToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListTriggers(context.Background()); err == nil {
			t.Errorf("%s: accepted", name)
		}
		srv.Close()
	}
}
