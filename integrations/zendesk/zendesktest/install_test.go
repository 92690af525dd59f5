package zendesktest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const (
	adminEmail = "admin@acme.example"
	adminToken = "adm1n-token-77"
)

// do sends one authenticated request (JSON body when body != "") and returns status and body.
func do(t *testing.T, s *Server, method, path, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(adminEmail+"/token", adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

const eventHook = `{"webhook":{"name":"n","endpoint":"https://clvd.example/w","http_method":"POST","request_format":"json","status":"active","subscriptions":["zen:event-type:ticket.created"]}}`
const triggerHook = `{"webhook":{"name":"t","endpoint":"https://clvd.example/w","http_method":"POST","request_format":"json","status":"active","subscriptions":["conditional_ticket_events"]}}`

func createdID(t *testing.T, body, object string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var resp map[string]map[string]any
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	switch id := resp[object]["id"].(type) {
	case string:
		return id
	case json.Number:
		return id.String()
	}
	t.Fatalf("no %s id in %s", object, body)
	return ""
}

func TestMeAndRoles(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	for _, path := range []string{"/api/v2/users/me.json", "/api/v2/users/me"} {
		code, body := do(t, s, http.MethodGet, path, "")
		if code != http.StatusOK || !strings.Contains(body, `"role":"admin"`) || !strings.Contains(body, adminEmail) {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	// Wrong credentials never reach the install handlers.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v2/users/me.json", nil)
	req.SetBasicAuth(adminEmail+"/token", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token on users/me: %d", resp.StatusCode)
	}

	s.SetRole("agent")
	if code, body := do(t, s, http.MethodGet, "/api/v2/users/me.json", ""); !strings.Contains(body, `"role":"agent"`) {
		t.Fatalf("agent me: %d %s", code, body)
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/v2/webhooks", eventHook},
		{http.MethodPost, "/api/v2/user_fields.json", `{"user_field":{"key":"k","type":"text","title":"K"}}`},
	} {
		if code, _ := do(t, s, c.method, c.path, c.body); code != http.StatusForbidden {
			t.Errorf("agent %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	if got := s.InstallCounts(); got != (InstallCounts{}) {
		t.Fatalf("refused calls counted: %+v", got)
	}
}

func TestWebhookChecks(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	for name, body := range map[string]string{
		"unknown attribute":        `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"POST","request_format":"json","status":"active","colour":"red"}}`,
		"no name":                  `{"webhook":{"endpoint":"https://x/w","http_method":"POST","request_format":"json","status":"active"}}`,
		"relative endpoint":        `{"webhook":{"name":"n","endpoint":"/w","http_method":"POST","request_format":"json","status":"active"}}`,
		"bad method":               `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"FETCH","request_format":"json","status":"active"}}`,
		"bad status":               `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"POST","request_format":"json","status":"on"}}`,
		"events by GET":            `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"GET","request_format":"json","status":"active","subscriptions":["zen:event-type:ticket.created"]}}`,
		"events as xml":            `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"POST","request_format":"xml","status":"active","subscriptions":["zen:event-type:ticket.created"]}}`,
		"both kinds":               `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"POST","request_format":"json","status":"active","subscriptions":["conditional_ticket_events","zen:event-type:ticket.created"]}}`,
		"not an event type":        `{"webhook":{"name":"n","endpoint":"https://x/w","http_method":"POST","request_format":"json","status":"active","subscriptions":["ticket.created"]}}`,
		"not wrapped in webhook":   `{"name":"n"}`,
		"trailing data":            eventHook + `{}`,
		"webhook is not an object": `{"webhook":[]}`,
	} {
		if code, resp := do(t, s, http.MethodPost, "/api/v2/webhooks", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	if n := len(s.Webhooks()); n != 0 {
		t.Fatalf("refused webhooks stored: %d", n)
	}

	code, body := do(t, s, http.MethodPost, "/api/v2/webhooks", eventHook)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	id := createdID(t, body, "webhook")
	if len(id) != 26 {
		t.Errorf("webhook id %q is not ULID-sized", id)
	}
	code, body = do(t, s, http.MethodGet, "/api/v2/webhooks/"+id+"/signing_secret", "")
	var secret struct {
		SigningSecret struct{ Algorithm, Secret string } `json:"signing_secret"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &secret) != nil || secret.SigningSecret.Algorithm != "SHA256" ||
		secret.SigningSecret.Secret != s.Webhooks()[0].SigningSecret || len(secret.SigningSecret.Secret) < 40 {
		t.Fatalf("signing secret: %d %s", code, body)
	}
	if code, _ := do(t, s, http.MethodGet, "/api/v2/webhooks/01NOPE/signing_secret", ""); code != http.StatusNotFound {
		t.Errorf("unknown webhook's secret: %d", code)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v2/webhooks/"+id, ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v2/webhooks/"+id, ""); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
	if got := s.InstallCounts(); got.WebhooksCreated != 1 || got.WebhooksDeleted != 1 {
		t.Fatalf("counts %+v", got)
	}
}

func TestListPaging(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	for range 3 {
		s.AddWebhook("w", "https://x/w", "zen:event-type:ticket.created")
	}
	code, body := do(t, s, http.MethodGet, "/api/v2/webhooks?page%5Bsize%5D=2", "")
	var page struct {
		Webhooks []map[string]any `json:"webhooks"`
		Meta     struct {
			HasMore     bool   `json:"has_more"`
			AfterCursor string `json:"after_cursor"`
		} `json:"meta"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || len(page.Webhooks) != 2 || !page.Meta.HasMore || page.Meta.AfterCursor == "" {
		t.Fatalf("first page: %d %s", code, body)
	}
	code, body = do(t, s, http.MethodGet, "/api/v2/webhooks?page%5Bsize%5D=2&page%5Bafter%5D="+page.Meta.AfterCursor, "")
	page.Meta.HasMore = true
	if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || len(page.Webhooks) != 1 || page.Meta.HasMore {
		t.Fatalf("second page: %d %s", code, body)
	}
	for _, q := range []string{"page%5Bsize%5D=101", "page%5Bsize%5D=0", "page%5Bafter%5D=forged"} {
		if code, _ := do(t, s, http.MethodGet, "/api/v2/triggers.json?"+q, ""); code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, code)
		}
	}
}

func TestTriggerChecks(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	_, body := do(t, s, http.MethodPost, "/api/v2/webhooks", eventHook)
	eventID := createdID(t, body, "webhook")
	_, body = do(t, s, http.MethodPost, "/api/v2/webhooks", triggerHook)
	hookID := createdID(t, body, "webhook")

	trig := func(title, conditions, webhook string) string {
		return `{"trigger":{"title":"` + title + `","conditions":` + conditions +
			`,"actions":[{"field":"notification_webhook","value":["` + webhook + `","{\"ticket_id\":\"{{ticket.id}}\"}"]}]}}`
	}
	created := `{"all":[],"any":[{"field":"update_type","operator":"is","value":"Create"}]}`
	for name, c := range map[string]struct {
		body string
		code int
	}{
		"no title":             {trig("", created, hookID), http.StatusUnprocessableEntity},
		"no conditions":        {trig("t", `{"all":[],"any":[]}`, hookID), http.StatusUnprocessableEntity},
		"condition w/o op":     {trig("t", `{"all":[{"field":"update_type","value":"Create"}],"any":[]}`, hookID), http.StatusBadRequest},
		"unknown webhook":      {trig("t", created, "01NOSUCHWEBHOOK"), http.StatusUnprocessableEntity},
		"event-subscribed one": {trig("t", created, eventID), http.StatusUnprocessableEntity},
		"no actions":           {`{"trigger":{"title":"t","conditions":` + created + `,"actions":[]}}`, http.StatusUnprocessableEntity},
	} {
		if code, resp := do(t, s, http.MethodPost, "/api/v2/triggers.json", c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", name, code, resp, c.code)
		}
	}
	code, body := do(t, s, http.MethodPost, "/api/v2/triggers", trig("ok", created, hookID))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	id := createdID(t, body, "trigger")
	got := s.Triggers()
	if len(got) != 1 || got[0].ID != id || got[0].WebhookID != hookID || got[0].WebhookBody != `{"ticket_id":"{{ticket.id}}"}` || !got[0].Active {
		t.Fatalf("stored %+v", got)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v2/triggers/"+id+".json", ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v2/triggers/"+id, ""); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
}

func TestUserFieldChecks(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	field := func(key, typ, title string) string {
		return `{"user_field":{"key":"` + key + `","type":"` + typ + `","title":"` + title + `"}}`
	}
	for name, c := range map[string]struct {
		body string
		code int
	}{
		"no key":       {field("", "decimal", "T"), http.StatusUnprocessableEntity},
		"dash in key":  {field("clv-x", "decimal", "T"), http.StatusUnprocessableEntity},
		"digits only":  {field("123", "decimal", "T"), http.StatusUnprocessableEntity},
		"no title":     {field("k", "decimal", ""), http.StatusUnprocessableEntity},
		"unknown type": {field("k", "float", "T"), http.StatusUnprocessableEntity},
		"no type":      {`{"user_field":{"key":"k","title":"T"}}`, http.StatusBadRequest},
	} {
		if code, resp := do(t, s, http.MethodPost, "/api/v2/user_fields.json", c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", name, code, resp, c.code)
		}
	}
	code, body := do(t, s, http.MethodPost, "/api/v2/user_fields.json", field("clv_x", "decimal", "X"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	id := createdID(t, body, "user_field")
	if code, _ := do(t, s, http.MethodPost, "/api/v2/user_fields", field("clv_x", "date", "X again")); code != http.StatusUnprocessableEntity {
		t.Errorf("duplicate key: %d", code)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v2/user_fields/"+id+".json", ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	// A deleted field's key is never given out again.
	if code, resp := do(t, s, http.MethodPost, "/api/v2/user_fields.json", field("clv_x", "decimal", "X")); code != http.StatusUnprocessableEntity {
		t.Errorf("reused key: %d %s", code, resp)
	}
	if got := s.InstallCounts(); got.UserFieldsCreated != 1 || got.UserFieldsDeleted != 1 || len(s.UserFieldDefs()) != 0 {
		t.Fatalf("counts %+v, fields %+v", got, s.UserFieldDefs())
	}
}
