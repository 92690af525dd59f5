package zendesktest

// The fake's install endpoints: what `clvd tenant install-zendesk` calls.
//
//	GET    /api/v2/users/me(.json)
//	GET    /api/v2/webhooks?filter[name_contains]=…&page[size]=…&page[after]=…
//	POST   /api/v2/webhooks                     {"webhook":{…}}          admins only
//	DELETE /api/v2/webhooks/{id}                                          admins only
//	GET    /api/v2/webhooks/{id}/signing_secret                           admins only
//	GET    /api/v2/triggers(.json)?page[size]=…&page[after]=…
//	POST   /api/v2/triggers(.json)              {"trigger":{…}}
//	DELETE /api/v2/triggers/{id}(.json)
//	GET    /api/v2/user_fields(.json)?page[size]=…&page[after]=…
//	POST   /api/v2/user_fields(.json)           {"user_field":{…}}       admins only
//	DELETE /api/v2/user_fields/{id}(.json)                                admins only
//
// The checks follow Zendesk's reference where it is explicit: a webhook needs name, endpoint,
// http_method, request_format and status; an event-subscribed webhook must be POST and json; a
// trigger webhook is subscribed to "conditional_ticket_events" and nothing else, and only such a
// webhook can be a trigger's notification_webhook; a user field needs key, type and title, its key
// is letters, digits and underscores (not only digits), unique, and never reusable once deleted;
// lists use cursor pagination (page[size] at most 100). Answers to a refused request (400, 403,
// 422) use Zendesk's general error shapes; their exact wording in Zendesk is not documented and
// is the fake's own.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"
)

// Webhook is a webhook as the fake stores it.
type Webhook struct {
	ID            string
	Name          string
	Description   string
	Endpoint      string
	HTTPMethod    string
	RequestFormat string
	Status        string
	Subscriptions []string
	SigningSecret string
	CreatedAt     time.Time
}

// Trigger is a ticket trigger as the fake stores it.
type Trigger struct {
	ID          string
	Title       string
	Description string
	Active      bool
	// Conditions and Actions are kept as sent.
	Conditions json.RawMessage
	Actions    json.RawMessage
	// WebhookID and WebhookBody are the notification_webhook action's values, when it has one.
	WebhookID   string
	WebhookBody string
}

// UserFieldDef is a custom user field definition.
type UserFieldDef struct {
	ID          string
	Key         string
	Type        string
	Title       string
	Description string
	Active      bool
}

// InstallCounts counts the successful creations and deletions of install objects since New.
type InstallCounts struct {
	WebhooksCreated, WebhooksDeleted     int
	TriggersCreated, TriggersDeleted     int
	UserFieldsCreated, UserFieldsDeleted int
}

// installState is the install endpoints' part of the fake, guarded by Server.mu like the rest.
type installState struct {
	meID     string
	meName   string
	role     string
	webhooks []*Webhook // creation order
	triggers []*Trigger
	fields   []*UserFieldDef
	deleted  map[string]bool // user field keys that were deleted: Zendesk never reuses them
	counts   InstallCounts
	webhookN int
	triggerN int
	fieldN   int
}

// The install state lives beside the Server rather than in it (server.go only dispatches to this
// file): a table keyed by weak pointers, whose entries go when their Server is collected.
var installStates = struct {
	sync.Mutex
	m map[weak.Pointer[Server]]*installState
}{m: map[weak.Pointer[Server]]*installState{}}

// install returns s's install state, creating it on first use.
func (s *Server) install() *installState {
	key := weak.Make(s)
	installStates.Lock()
	defer installStates.Unlock()
	st, ok := installStates.m[key]
	if !ok {
		st = &installState{meID: "1000001", meName: "Fake Admin", role: "admin", deleted: map[string]bool{}}
		installStates.m[key] = st
		runtime.AddCleanup(s, func(k weak.Pointer[Server]) {
			installStates.Lock()
			delete(installStates.m, k)
			installStates.Unlock()
		}, key)
	}
	return st
}

// SetRole sets the role of the API user (the one GET /api/v2/users/me describes): "admin" (the
// default), "agent" or "end-user". Admin-only endpoints answer 403 to the others.
func (s *Server) SetRole(role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.install().role = role
}

// Webhooks returns copies of the account's webhooks, in creation order.
func (s *Server) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Webhook
	for _, w := range s.install().webhooks {
		c := *w
		c.Subscriptions = slices.Clone(w.Subscriptions)
		out = append(out, c)
	}
	return out
}

// Triggers returns copies of the account's triggers, in creation order.
func (s *Server) Triggers() []Trigger {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Trigger
	for _, t := range s.install().triggers {
		c := *t
		c.Conditions = slices.Clone(t.Conditions)
		c.Actions = slices.Clone(t.Actions)
		out = append(out, c)
	}
	return out
}

// UserFieldDefs returns copies of the account's custom user field definitions, in creation order.
func (s *Server) UserFieldDefs() []UserFieldDef {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []UserFieldDef
	for _, f := range s.install().fields {
		out = append(out, *f)
	}
	return out
}

// InstallCounts returns how many install objects were created and deleted through the API.
func (s *Server) InstallCounts() InstallCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.install().counts
}

// AddWebhook stores a webhook as if someone had created it (not counted in InstallCounts) and
// returns its id; a signing secret is generated.
func (s *Server) AddWebhook(name, endpoint string, subscriptions ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.install().newWebhook(s.now())
	w.Name, w.Endpoint, w.HTTPMethod, w.RequestFormat, w.Status = name, endpoint, http.MethodPost, "json", "active"
	w.Subscriptions = slices.Clone(subscriptions)
	return w.ID
}

// AddUserFieldDef stores a user field definition as if an admin had created it (not counted) and
// returns its id.
func (s *Server) AddUserFieldDef(key, typ, title string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.install()
	st.fieldN++
	f := &UserFieldDef{ID: strconv.Itoa(7000000 + st.fieldN), Key: key, Type: typ, Title: title, Active: true}
	st.fields = append(st.fields, f)
	return f.ID
}

func (st *installState) newWebhook(now time.Time) *Webhook {
	st.webhookN++
	// Zendesk webhook ids are ULIDs: 26 characters of Crockford base32.
	w := &Webhook{ID: fmt.Sprintf("01FAKEWH%018d", st.webhookN), SigningSecret: newSigningSecret(), CreatedAt: now}
	st.webhooks = append(st.webhooks, w)
	return w
}

func newSigningSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

// handleInstall serves the install endpoints; ok=false leaves the request to server.go's routes.
// It runs with s.mu held, after auth and the Content-Type check.
func (s *Server) handleInstall(r *http.Request, segs []string, body []byte) (answer, bool) {
	st := s.install()
	trim := func(seg string) string { return strings.TrimSuffix(seg, ".json") }
	switch {
	case len(segs) == 2 && segs[0] == "users" && trim(segs[1]) == "me":
		if r.Method != http.MethodGet {
			return methodNotAllowed("GET"), true
		}
		n, _ := strconv.ParseInt(st.meID, 10, 64)
		return jsonAnswer(http.StatusOK, map[string]any{"user": map[string]any{"id": n, "name": st.meName, "email": s.email, "role": st.role}}), true

	case len(segs) == 1 && segs[0] == "webhooks":
		// Webhook paths have no .json in Zendesk's reference.
		switch r.Method {
		case http.MethodGet:
			return s.listWebhooks(r.URL.Query()), true
		case http.MethodPost:
			return s.createWebhook(body), true
		}
		return methodNotAllowed("GET, POST"), true
	case len(segs) == 2 && segs[0] == "webhooks":
		if r.Method != http.MethodDelete {
			return methodNotAllowed("DELETE"), true
		}
		return s.deleteWebhook(segs[1]), true
	case len(segs) == 3 && segs[0] == "webhooks" && segs[2] == "signing_secret":
		if r.Method != http.MethodGet {
			return methodNotAllowed("GET"), true
		}
		if st.role != "admin" {
			return forbidden(), true
		}
		for _, w := range st.webhooks {
			if w.ID == segs[1] {
				return jsonAnswer(http.StatusOK, map[string]any{"signing_secret": map[string]string{"algorithm": "SHA256", "secret": w.SigningSecret}}), true
			}
		}
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found"), true

	case len(segs) == 1 && trim(segs[0]) == "triggers":
		switch r.Method {
		case http.MethodGet:
			return s.listTriggers(r.URL.Query()), true
		case http.MethodPost:
			return s.createTrigger(body), true
		}
		return methodNotAllowed("GET, POST"), true
	case len(segs) == 2 && segs[0] == "triggers":
		id, ok := jsonIDOptional(segs[1])
		if !ok {
			return answer{}, false
		}
		if r.Method != http.MethodDelete {
			return methodNotAllowed("DELETE"), true
		}
		i := slices.IndexFunc(st.triggers, func(t *Trigger) bool { return t.ID == id })
		if i < 0 {
			return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found"), true
		}
		st.triggers = slices.Delete(st.triggers, i, i+1)
		st.counts.TriggersDeleted++
		return answer{status: http.StatusNoContent}, true

	case len(segs) == 1 && trim(segs[0]) == "user_fields":
		switch r.Method {
		case http.MethodGet:
			return s.listUserFields(r.URL.Query()), true
		case http.MethodPost:
			return s.createUserField(body), true
		}
		return methodNotAllowed("GET, POST"), true
	case len(segs) == 2 && segs[0] == "user_fields":
		id, ok := jsonIDOptional(segs[1])
		if !ok {
			return answer{}, false
		}
		if r.Method != http.MethodDelete {
			return methodNotAllowed("DELETE"), true
		}
		if st.role != "admin" {
			return forbidden(), true
		}
		i := slices.IndexFunc(st.fields, func(f *UserFieldDef) bool { return f.ID == id })
		if i < 0 {
			return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found"), true
		}
		st.deleted[st.fields[i].Key] = true
		st.fields = slices.Delete(st.fields, i, i+1)
		st.counts.UserFieldsDeleted++
		return answer{status: http.StatusNoContent}, true
	}
	return answer{}, false
}

// jsonIDOptional is jsonID for paths where Zendesk accepts the id with or without ".json".
func jsonIDOptional(segment string) (string, bool) {
	if !strings.HasSuffix(segment, ".json") {
		segment += ".json"
	}
	return jsonID(segment)
}

func forbidden() answer {
	return errorAnswer(http.StatusForbidden, "Forbidden", "You do not have access to this page. Please contact the account owner of this help desk for further help.")
}

func unprocessable(field, description string) answer {
	return jsonAnswer(http.StatusUnprocessableEntity, map[string]any{
		"error":       "RecordInvalid",
		"description": "Record validation errors",
		"details":     map[string]any{field: []map[string]string{{"description": description}}},
	})
}

// page cuts items (already filtered, in order) into one cursor page. The cursor is opaque to
// clients: here the index of the next item, signed with the server's cursor key so that a client
// cannot forge one.
func page[T any](q url.Values, items []T, cursorKey string) (pageItems []T, meta map[string]any, bad string) {
	size := 100
	if raw := q.Get("page[size]"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			return nil, nil, "page[size] must be an integer from 1 to 100"
		}
		size = n
	}
	start := 0
	if after := q.Get("page[after]"); after != "" {
		idx, ok := strings.CutPrefix(after, cursorKey+".")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 || n > len(items) {
			return nil, nil, "page[after] is not a valid cursor"
		}
		start = n
	}
	end := min(start+size, len(items))
	meta = map[string]any{"has_more": end < len(items), "after_cursor": nil, "before_cursor": nil}
	if end < len(items) {
		meta["after_cursor"] = fmt.Sprintf("%s.%d", cursorKey, end)
	}
	return items[start:end], meta, ""
}

func (s *Server) listWebhooks(q url.Values) answer {
	st := s.install()
	contains := q.Get("filter[name_contains]")
	var items []map[string]any
	for _, w := range st.webhooks {
		if contains == "" || strings.Contains(strings.ToLower(w.Name), strings.ToLower(contains)) {
			items = append(items, webhookJSON(w))
		}
	}
	got, meta, bad := page(q, items, "wh")
	if bad != "" {
		return badRequest(bad)
	}
	if got == nil {
		got = []map[string]any{}
	}
	return jsonAnswer(http.StatusOK, map[string]any{"webhooks": got, "meta": meta, "links": map[string]any{"next": nil, "prev": nil}})
}

func webhookJSON(w *Webhook) map[string]any {
	out := map[string]any{
		"id": w.ID, "name": w.Name, "endpoint": w.Endpoint, "http_method": w.HTTPMethod, "request_format": w.RequestFormat,
		"status": w.Status, "subscriptions": slices.Clone(w.Subscriptions), "created_at": w.CreatedAt.UTC().Format(time.RFC3339),
		"created_by": "1000001",
	}
	if w.Description != "" {
		out["description"] = w.Description
	}
	return out
}

var webhookMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

func (s *Server) createWebhook(body []byte) answer {
	st := s.install()
	if st.role != "admin" {
		return forbidden()
	}
	var req struct {
		Webhook *struct {
			Name          string   `json:"name"`
			Description   string   `json:"description"`
			Endpoint      string   `json:"endpoint"`
			HTTPMethod    string   `json:"http_method"`
			RequestFormat string   `json:"request_format"`
			Status        string   `json:"status"`
			Subscriptions []string `json:"subscriptions"`
		} `json:"webhook"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	w := req.Webhook
	if w == nil {
		return badRequest(`body must be {"webhook":{…}}`)
	}
	u, err := url.Parse(w.Endpoint)
	switch {
	case strings.TrimSpace(w.Name) == "":
		return badRequest("name is required")
	case w.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return badRequest("endpoint must be an absolute http(s) URL")
	case !slices.Contains(webhookMethods, w.HTTPMethod):
		return badRequest("http_method must be one of GET, POST, PUT, PATCH, DELETE")
	case !slices.Contains([]string{"json", "xml", "form_encoded"}, w.RequestFormat):
		return badRequest("request_format must be json, xml or form_encoded")
	case w.Status != "active" && w.Status != "inactive":
		return badRequest("status must be active or inactive")
	}
	if slices.Contains(w.Subscriptions, "conditional_ticket_events") {
		if len(w.Subscriptions) != 1 {
			return badRequest(`a webhook for triggers and automations is subscribed to "conditional_ticket_events" only`)
		}
	} else if len(w.Subscriptions) > 0 {
		if w.HTTPMethod != http.MethodPost || w.RequestFormat != "json" {
			return badRequest(`a webhook subscribed to Zendesk events must use http_method "POST" and request_format "json"`)
		}
		for _, sub := range w.Subscriptions {
			if !strings.HasPrefix(sub, "zen:event-type:") {
				return badRequest(fmt.Sprintf("subscriptions: %q is not a Zendesk event type", sub))
			}
		}
	}
	nw := st.newWebhook(s.now())
	nw.Name, nw.Description, nw.Endpoint, nw.HTTPMethod, nw.RequestFormat, nw.Status = w.Name, w.Description, w.Endpoint, w.HTTPMethod, w.RequestFormat, w.Status
	nw.Subscriptions = slices.Clone(w.Subscriptions)
	st.counts.WebhooksCreated++
	return jsonAnswer(http.StatusCreated, map[string]any{"webhook": webhookJSON(nw)})
}

func (s *Server) deleteWebhook(id string) answer {
	st := s.install()
	if st.role != "admin" {
		return forbidden()
	}
	i := slices.IndexFunc(st.webhooks, func(w *Webhook) bool { return w.ID == id })
	if i < 0 {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found")
	}
	st.webhooks = slices.Delete(st.webhooks, i, i+1)
	st.counts.WebhooksDeleted++
	return answer{status: http.StatusNoContent}
}

type fakeCondition struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value"`
}

func (s *Server) listTriggers(q url.Values) answer {
	st := s.install()
	items := make([]map[string]any, 0, len(st.triggers))
	for _, t := range st.triggers {
		items = append(items, triggerJSON(t))
	}
	got, meta, bad := page(q, items, "tr")
	if bad != "" {
		return badRequest(bad)
	}
	return jsonAnswer(http.StatusOK, map[string]any{"triggers": got, "meta": meta, "links": map[string]any{"next": nil, "prev": nil}})
}

func triggerJSON(t *Trigger) map[string]any {
	n, _ := strconv.ParseInt(t.ID, 10, 64)
	return map[string]any{"id": n, "title": t.Title, "description": t.Description, "active": t.Active,
		"conditions": t.Conditions, "actions": t.Actions, "default": false}
}

func (s *Server) createTrigger(body []byte) answer {
	st := s.install()
	if st.role == "end-user" {
		return forbidden()
	}
	var req struct {
		Trigger *struct {
			Title       string          `json:"title"`
			Description string          `json:"description"`
			Active      *bool           `json:"active"`
			Conditions  json.RawMessage `json:"conditions"`
			Actions     json.RawMessage `json:"actions"`
		} `json:"trigger"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	t := req.Trigger
	if t == nil {
		return badRequest(`body must be {"trigger":{…}}`)
	}
	if strings.TrimSpace(t.Title) == "" {
		return unprocessable("title", "Title: cannot be blank")
	}
	var conds struct {
		All []fakeCondition `json:"all"`
		Any []fakeCondition `json:"any"`
	}
	if msg := decodeStrict(t.Conditions, &conds); msg != "" {
		return badRequest("conditions: " + msg)
	}
	if len(conds.All)+len(conds.Any) == 0 {
		return unprocessable("conditions", "Conditions: a trigger needs at least one condition")
	}
	for _, c := range append(slices.Clone(conds.All), conds.Any...) {
		if c.Field == "" || c.Operator == "" {
			return badRequest("conditions: each condition needs a field and an operator")
		}
	}
	var actions []struct {
		Field string          `json:"field"`
		Value json.RawMessage `json:"value"`
	}
	if msg := decodeStrict(t.Actions, &actions); msg != "" {
		return badRequest("actions: " + msg)
	}
	if len(actions) == 0 {
		return unprocessable("actions", "Actions: a trigger needs at least one action")
	}
	nt := &Trigger{Title: t.Title, Description: t.Description, Active: t.Active == nil || *t.Active,
		Conditions: slices.Clone(t.Conditions), Actions: slices.Clone(t.Actions)}
	for _, a := range actions {
		if a.Field != "notification_webhook" {
			continue
		}
		var v []string
		if json.Unmarshal(a.Value, &v) != nil || len(v) != 2 {
			return badRequest(`actions: notification_webhook's value is [webhook id, body]`)
		}
		i := slices.IndexFunc(st.webhooks, func(w *Webhook) bool { return w.ID == v[0] })
		if i < 0 {
			return unprocessable("actions", "Actions: webhook "+v[0]+" does not exist")
		}
		if !slices.Equal(st.webhooks[i].Subscriptions, []string{"conditional_ticket_events"}) {
			return unprocessable("actions", "Actions: webhook "+v[0]+" is subscribed to Zendesk events and cannot be connected to a trigger")
		}
		nt.WebhookID, nt.WebhookBody = v[0], v[1]
	}
	st.triggerN++
	nt.ID = strconv.Itoa(360000000000 + st.triggerN)
	st.triggers = append(st.triggers, nt)
	st.counts.TriggersCreated++
	return jsonAnswer(http.StatusCreated, map[string]any{"trigger": triggerJSON(nt)})
}

func (s *Server) listUserFields(q url.Values) answer {
	st := s.install()
	items := make([]map[string]any, 0, len(st.fields))
	for _, f := range st.fields {
		items = append(items, userFieldJSON(f))
	}
	got, meta, bad := page(q, items, "uf")
	if bad != "" {
		return badRequest(bad)
	}
	return jsonAnswer(http.StatusOK, map[string]any{"user_fields": got, "meta": meta, "links": map[string]any{"next": nil, "prev": nil}})
}

func userFieldJSON(f *UserFieldDef) map[string]any {
	n, _ := strconv.ParseInt(f.ID, 10, 64)
	return map[string]any{"id": n, "key": f.Key, "type": f.Type, "title": f.Title, "raw_title": f.Title,
		"description": f.Description, "active": f.Active, "system": false}
}

var (
	fieldKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	onlyDigits      = regexp.MustCompile(`^[0-9]+$`)
	userFieldTypes  = []string{"text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown", "lookup", "multiselect"}
)

func (s *Server) createUserField(body []byte) answer {
	st := s.install()
	if st.role != "admin" {
		return forbidden()
	}
	var req struct {
		UserField *struct {
			Key         string `json:"key"`
			Type        string `json:"type"`
			Title       string `json:"title"`
			Description string `json:"description"`
			Active      *bool  `json:"active"`
		} `json:"user_field"`
	}
	if msg := decodeStrict(body, &req); msg != "" {
		return badRequest(msg)
	}
	f := req.UserField
	if f == nil {
		return badRequest(`body must be {"user_field":{…}}`)
	}
	switch {
	case f.Key == "":
		return unprocessable("key", "Key: cannot be blank")
	case !fieldKeyPattern.MatchString(f.Key) || onlyDigits.MatchString(f.Key):
		return unprocessable("key", "Key: letters, numbers and underscores only, and not only numbers")
	case strings.TrimSpace(f.Title) == "":
		return unprocessable("title", "Title: cannot be blank")
	case f.Type == "":
		// Zendesk defaults to text; clvd always says which type it wants, so an omission is a bug.
		return badRequest("type is required by this fake (Zendesk would default to text)")
	case !slices.Contains(userFieldTypes, f.Type):
		return unprocessable("type", "Type: is not a user field type")
	case st.deleted[f.Key]:
		return unprocessable("key", "Key: has already been used by a deleted field")
	case slices.ContainsFunc(st.fields, func(e *UserFieldDef) bool { return e.Key == f.Key }):
		return unprocessable("key", "Key: has already been taken")
	}
	st.fieldN++
	nf := &UserFieldDef{ID: strconv.Itoa(7000000 + st.fieldN), Key: f.Key, Type: f.Type, Title: f.Title, Description: f.Description,
		Active: f.Active == nil || *f.Active}
	st.fields = append(st.fields, nf)
	st.counts.UserFieldsCreated++
	return jsonAnswer(http.StatusCreated, map[string]any{"user_field": userFieldJSON(nf)})
}
