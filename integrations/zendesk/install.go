package zendesk

// Installing clvd into a Zendesk account: the API calls behind README's "Connect a Zendesk account
// by hand", and Install/Uninstall, which make them idempotent.
//
// What Zendesk's documentation says, and where this file relies on it:
//   - Webhooks API (developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks): paths
//     /api/v2/webhooks and /api/v2/webhooks/{webhook_id} carry no ".json"; ids are strings (ULIDs
//     such as 01FMJQSY40HZBCBVPZB9212S8V); name, endpoint, http_method, request_format and status are
//     mandatory; a webhook subscribed to Zendesk events must use http_method "POST" and
//     request_format "json"; a webhook for triggers and automations has subscriptions
//     ["conditional_ticket_events"] and nothing else; the two kinds cannot be converted into each
//     other. The create body is {"webhook":{…}} ("Creating and monitoring webhooks"). Creating
//     webhooks needs an admin (or an agent in a custom role allowed to, which this file does not
//     try to detect: it asks for an admin).
//   - List Webhooks takes filter[name_contains] and cursor pagination (page[size] up to 100,
//     page[after] = meta.after_cursor), as the Pagination reference describes for cursor lists:
//     {"…":[…],"meta":{"has_more":…,"after_cursor":…},"links":{…}}.
//   - GET /api/v2/webhooks/{id}/signing_secret ("Show Webhook Signing Secret"). The reference page
//     could not be read in full here: the answer shape {"signing_secret":{"algorithm":"SHA256",
//     "secret":"…"}} is taken from integrations that read signing_secret.secret, not from the page.
//   - Triggers (OpenAPI "ListTriggers", "CreateTrigger", "DeleteTrigger"): GET/POST /api/v2/triggers,
//     DELETE /api/v2/triggers/{id} (204), cursor pagination, body {"trigger":{title, conditions:
//     {all, any}, actions}}. A webhook action is {"field":"notification_webhook","value":[webhook
//     id, body]}. "Ticket is Created" / "Ticket is Updated" are the conditions {"field":
//     "update_type","operator":"is","value":"Create"|"Change"} (the conditions reference, as used
//     by many integrations). Whether accounts with several trigger categories require category_id
//     on create is not clear from the docs read here: none is sent, so Zendesk picks its default.
//   - User fields: GET/POST /api/v2/user_fields (create: admins only, 201 {"user_field":{…}}),
//     DELETE /api/v2/user_fields/{id} (204). key, type and title are mandatory; the key is letters,
//     digits and underscores, not only digits, and per the reference "can't be reused if deleted".
//   - GET /api/v2/users/me: the authenticated user; role is "end-user", "agent" or "admin". The
//     endpoint is also "allowed for anonymous users", so an answer without a user id is read as
//     "not authenticated".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Roles a Zendesk user can have (the user's "role" property).
const (
	RoleEndUser = "end-user"
	RoleAgent   = "agent"
	RoleAdmin   = "admin"
)

// ConditionalTicketEvents is the only subscription of a webhook that triggers and automations call.
const ConditionalTicketEvents = "conditional_ticket_events"

var (
	// ErrNotAdmin: the API user authenticated but is not an admin, and creating webhooks, triggers
	// and user fields needs one. Permanent until the credentials change.
	ErrNotAdmin = errors.New("the Zendesk API user must be an admin")
	// ErrInstallConflict: Zendesk already holds something clvd needs under the same marker but in a
	// shape clvd cannot use (e.g. a clv_predicted user field that is not a decimal). A person has to
	// resolve it; clvd never rewrites objects it did not create.
	ErrInstallConflict = errors.New("conflicting Zendesk configuration")
)

const (
	pageSize     = 100 // Zendesk's maximum for cursor pagination
	maxListPages = 100 // 10,000 objects: far beyond any account's webhooks, triggers or fields
)

// CurrentUser is the user the API credentials authenticate as.
type CurrentUser struct {
	ID    string
	Email string
	Name  string
	Role  string // RoleEndUser, RoleAgent or RoleAdmin
}

// CurrentUser fetches the authenticated user: GET /api/v2/users/me.json. Wrong credentials give
// ErrUnauthorized; so does an answer for the anonymous user (no id), which Zendesk may give to a
// request it did not authenticate.
func (c *Client) CurrentUser(ctx context.Context) (CurrentUser, error) {
	const path = "/api/v2/users/me.json"
	var resp struct {
		User *struct {
			ID    json.Number `json:"id"`
			Email string      `json:"email"`
			Name  string      `json:"name"`
			Role  string      `json:"role"`
		} `json:"user"`
	}
	if err := c.do(ctx, http.MethodGet, path, "", nil, &resp); err != nil {
		return CurrentUser{}, err
	}
	if resp.User == nil {
		return CurrentUser{}, fmt.Errorf("zendesk: GET %s: response has no user", path)
	}
	id, err := checkID("user", resp.User.ID.String())
	if err != nil {
		return CurrentUser{}, fmt.Errorf("zendesk: GET %s: Zendesk answered for an anonymous user: %w", path, ErrUnauthorized)
	}
	return CurrentUser{ID: id, Email: strings.TrimSpace(resp.User.Email), Name: strings.TrimSpace(resp.User.Name), Role: resp.User.Role}, nil
}

// VerifyAdmin checks that the credentials work and belong to an admin: ErrUnauthorized when they
// do not authenticate, ErrNotAdmin (naming the user and role) when the user is an agent or end user.
func (c *Client) VerifyAdmin(ctx context.Context) (CurrentUser, error) {
	me, err := c.CurrentUser(ctx)
	if err != nil {
		return CurrentUser{}, err
	}
	if me.Role != RoleAdmin {
		role := me.Role
		if role == "" {
			role = "unknown"
		}
		return me, fmt.Errorf("zendesk: %s <%s> has role %q: %w (creating webhooks, triggers and user fields needs an admin's API token)",
			me.Name, me.Email, role, ErrNotAdmin)
	}
	return me, nil
}

// Webhook is a Zendesk webhook as clvd manages it.
type Webhook struct {
	ID            string
	Name          string
	Description   string
	Endpoint      string
	HTTPMethod    string // GET, POST, PUT, PATCH or DELETE
	RequestFormat string // json, xml or form_encoded
	Status        string // active or inactive
	Subscriptions []string
}

// TriggerConnected reports whether triggers and automations call the webhook (its subscriptions
// are ["conditional_ticket_events"]) rather than Zendesk events.
func (w Webhook) TriggerConnected() bool {
	return slices.Contains(w.Subscriptions, ConditionalTicketEvents)
}

type webhookJSON struct {
	ID            string   `json:"id,omitempty"`
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	Endpoint      string   `json:"endpoint"`
	HTTPMethod    string   `json:"http_method"`
	RequestFormat string   `json:"request_format"`
	Status        string   `json:"status"`
	Subscriptions []string `json:"subscriptions,omitempty"`
}

func (w webhookJSON) webhook() Webhook {
	return Webhook{ID: w.ID, Name: w.Name, Description: w.Description, Endpoint: w.Endpoint, HTTPMethod: w.HTTPMethod,
		RequestFormat: w.RequestFormat, Status: w.Status, Subscriptions: w.Subscriptions}
}

// ListWebhooks returns every webhook of the account, or those whose name contains nameContains
// when it is not empty: GET /api/v2/webhooks?filter[name_contains]=…, following cursor pages.
func (c *Client) ListWebhooks(ctx context.Context, nameContains string) ([]Webhook, error) {
	q := url.Values{}
	if nameContains != "" {
		q.Set("filter[name_contains]", nameContains)
	}
	var out []Webhook
	err := c.listPages(ctx, "/api/v2/webhooks", q, "webhooks", func(raw json.RawMessage) error {
		var w webhookJSON
		if err := json.Unmarshal(raw, &w); err != nil {
			return err
		}
		out = append(out, w.webhook())
		return nil
	})
	return out, err
}

// CreateWebhook creates a webhook: POST /api/v2/webhooks {"webhook":{…}}. w.ID is ignored; the
// created webhook, with its id, is returned.
func (c *Client) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	const path = "/api/v2/webhooks"
	req := webhookJSON{Name: w.Name, Description: w.Description, Endpoint: w.Endpoint, HTTPMethod: w.HTTPMethod,
		RequestFormat: w.RequestFormat, Status: w.Status, Subscriptions: w.Subscriptions}
	var resp struct {
		Webhook *webhookJSON `json:"webhook"`
	}
	if err := c.do(ctx, http.MethodPost, path, "", map[string]webhookJSON{"webhook": req}, &resp); err != nil {
		return Webhook{}, err
	}
	if resp.Webhook == nil {
		return Webhook{}, fmt.Errorf("zendesk: POST %s: response has no webhook", path)
	}
	if _, err := checkWebhookID(resp.Webhook.ID); err != nil {
		return Webhook{}, fmt.Errorf("zendesk: POST %s: response webhook id: %w", path, err)
	}
	return resp.Webhook.webhook(), nil
}

// DeleteWebhook deletes a webhook: DELETE /api/v2/webhooks/{id}. An unknown webhook gives
// ErrNotFound.
func (c *Client) DeleteWebhook(ctx context.Context, webhookID string) error {
	id, err := checkWebhookID(webhookID)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v2/webhooks/"+id, "", nil, nil)
}

// WebhookSigningSecret fetches the secret Zendesk signs a webhook's requests with:
// GET /api/v2/webhooks/{id}/signing_secret. It reads the secret; it never resets it.
func (c *Client) WebhookSigningSecret(ctx context.Context, webhookID string) (string, error) {
	id, err := checkWebhookID(webhookID)
	if err != nil {
		return "", err
	}
	path := "/api/v2/webhooks/" + id + "/signing_secret"
	var resp struct {
		SigningSecret *struct {
			Algorithm string `json:"algorithm"`
			Secret    string `json:"secret"`
		} `json:"signing_secret"`
	}
	if err := c.do(ctx, http.MethodGet, path, "", nil, &resp); err != nil {
		return "", err
	}
	if resp.SigningSecret == nil || strings.TrimSpace(resp.SigningSecret.Secret) == "" {
		return "", fmt.Errorf("zendesk: GET %s: response has no signing secret", path)
	}
	secret := strings.TrimSpace(resp.SigningSecret.Secret)
	if strings.Contains(secret, ",") {
		// clvd stores several secrets comma-separated; a comma inside one would split it.
		return "", fmt.Errorf("zendesk: GET %s: signing secret contains a comma, which clvd cannot store", path)
	}
	return secret, nil
}

// TriggerCondition is one trigger condition, e.g. {"field":"update_type","operator":"is","value":"Create"}.
type TriggerCondition struct {
	Field    string `json:"field"`
	Operator string `json:"operator"`
	Value    any    `json:"value"`
}

// TriggerConditions: every All condition and at least one Any condition (when there are any) must
// hold for the trigger to fire.
type TriggerConditions struct {
	All []TriggerCondition `json:"all"`
	Any []TriggerCondition `json:"any"`
}

// TriggerAction is one trigger action. Value's shape depends on Field: for notification_webhook
// it is [webhook id, body].
type TriggerAction struct {
	Field string `json:"field"`
	Value any    `json:"value"`
}

// Trigger is a Zendesk ticket trigger.
type Trigger struct {
	ID          string
	Title       string
	Description string
	Active      bool
	Conditions  TriggerConditions
	Actions     []TriggerAction
}

// NotifiesWebhook reports whether one of the trigger's actions calls the webhook webhookID.
func (t Trigger) NotifiesWebhook(webhookID string) bool {
	for _, a := range t.Actions {
		if a.Field != "notification_webhook" {
			continue
		}
		switch v := a.Value.(type) {
		case []any:
			if len(v) > 0 && fmt.Sprint(v[0]) == webhookID {
				return true
			}
		case []string:
			if len(v) > 0 && v[0] == webhookID {
				return true
			}
		}
	}
	return false
}

type triggerJSON struct {
	ID          json.Number       `json:"id,omitempty"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Active      *bool             `json:"active,omitempty"`
	Conditions  TriggerConditions `json:"conditions"`
	Actions     []TriggerAction   `json:"actions"`
}

func (t triggerJSON) trigger() Trigger {
	return Trigger{ID: t.ID.String(), Title: t.Title, Description: t.Description, Active: t.Active == nil || *t.Active,
		Conditions: t.Conditions, Actions: t.Actions}
}

// ListTriggers returns every ticket trigger of the account, active or not: GET
// /api/v2/triggers.json, following cursor pages.
func (c *Client) ListTriggers(ctx context.Context) ([]Trigger, error) {
	var out []Trigger
	err := c.listPages(ctx, "/api/v2/triggers.json", nil, "triggers", func(raw json.RawMessage) error {
		var t triggerJSON
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		out = append(out, t.trigger())
		return nil
	})
	return out, err
}

// CreateTrigger creates a ticket trigger: POST /api/v2/triggers.json {"trigger":{…}}. t.ID is
// ignored.
func (c *Client) CreateTrigger(ctx context.Context, t Trigger) (Trigger, error) {
	const path = "/api/v2/triggers.json"
	active := t.Active
	req := triggerJSON{Title: t.Title, Description: t.Description, Active: &active, Conditions: t.Conditions, Actions: t.Actions}
	if req.Conditions.All == nil {
		req.Conditions.All = []TriggerCondition{}
	}
	if req.Conditions.Any == nil {
		req.Conditions.Any = []TriggerCondition{}
	}
	var resp struct {
		Trigger *triggerJSON `json:"trigger"`
	}
	if err := c.do(ctx, http.MethodPost, path, "", map[string]triggerJSON{"trigger": req}, &resp); err != nil {
		return Trigger{}, err
	}
	if resp.Trigger == nil {
		return Trigger{}, fmt.Errorf("zendesk: POST %s: response has no trigger", path)
	}
	if _, err := checkID("trigger", resp.Trigger.ID.String()); err != nil {
		return Trigger{}, fmt.Errorf("zendesk: POST %s: response trigger id: %w", path, err)
	}
	return resp.Trigger.trigger(), nil
}

// DeleteTrigger deletes a ticket trigger: DELETE /api/v2/triggers/{id}.json. An unknown trigger
// gives ErrNotFound.
func (c *Client) DeleteTrigger(ctx context.Context, triggerID string) error {
	id, err := checkID("trigger", triggerID)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v2/triggers/"+id+".json", "", nil, nil)
}

// UserField is a custom user field definition.
type UserField struct {
	ID          string
	Key         string // what SetUserFields and placeholders name it by
	Type        string // text, textarea, checkbox, date, integer, decimal, regexp, dropdown, …
	Title       string
	Description string
	Active      bool
}

type userFieldJSON struct {
	ID          json.Number `json:"id,omitempty"`
	Key         string      `json:"key"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description,omitempty"`
	Active      *bool       `json:"active,omitempty"`
}

func (f userFieldJSON) userField() UserField {
	return UserField{ID: f.ID.String(), Key: f.Key, Type: f.Type, Title: f.Title, Description: f.Description, Active: f.Active == nil || *f.Active}
}

// ListUserFields returns every custom user field: GET /api/v2/user_fields.json, following cursor
// pages.
func (c *Client) ListUserFields(ctx context.Context) ([]UserField, error) {
	var out []UserField
	err := c.listPages(ctx, "/api/v2/user_fields.json", nil, "user_fields", func(raw json.RawMessage) error {
		var f userFieldJSON
		if err := json.Unmarshal(raw, &f); err != nil {
			return err
		}
		out = append(out, f.userField())
		return nil
	})
	return out, err
}

// CreateUserField creates a custom user field: POST /api/v2/user_fields.json {"user_field":{key,
// type, title, description}}. f.ID and f.Active are ignored (a new field is active).
func (c *Client) CreateUserField(ctx context.Context, f UserField) (UserField, error) {
	const path = "/api/v2/user_fields.json"
	req := userFieldJSON{Key: f.Key, Type: f.Type, Title: f.Title, Description: f.Description}
	var resp struct {
		UserField *userFieldJSON `json:"user_field"`
	}
	if err := c.do(ctx, http.MethodPost, path, "", map[string]userFieldJSON{"user_field": req}, &resp); err != nil {
		return UserField{}, err
	}
	if resp.UserField == nil {
		return UserField{}, fmt.Errorf("zendesk: POST %s: response has no user_field", path)
	}
	if _, err := checkID("user field", resp.UserField.ID.String()); err != nil {
		return UserField{}, fmt.Errorf("zendesk: POST %s: response user field id: %w", path, err)
	}
	return resp.UserField.userField(), nil
}

// DeleteUserField deletes a custom user field and every user's value for it: DELETE
// /api/v2/user_fields/{id}.json. Zendesk does not let the key be used again afterwards.
func (c *Client) DeleteUserField(ctx context.Context, fieldID string) error {
	id, err := checkID("user field", fieldID)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v2/user_fields/"+id+".json", "", nil, nil)
}

// listPages GETs path with cursor pagination (page[size]=100, then page[after]=meta.after_cursor)
// and hands each element of the response's key array to add.
func (c *Client) listPages(ctx context.Context, path string, query url.Values, key string, add func(json.RawMessage) error) error {
	q := url.Values{}
	for k, v := range query {
		q[k] = slices.Clone(v)
	}
	q.Set("page[size]", fmt.Sprint(pageSize))
	seen := map[string]bool{}
	for range maxListPages {
		var resp map[string]json.RawMessage
		if err := c.do(ctx, http.MethodGet, path, q.Encode(), nil, &resp); err != nil {
			return err
		}
		var items []json.RawMessage
		if raw, ok := resp[key]; !ok || json.Unmarshal(raw, &items) != nil {
			return fmt.Errorf("zendesk: GET %s: response has no %q list", path, key)
		}
		for _, item := range items {
			if err := add(item); err != nil {
				return fmt.Errorf("zendesk: GET %s: decoding %s: %v", path, key, err)
			}
		}
		var meta struct {
			HasMore     bool   `json:"has_more"`
			AfterCursor string `json:"after_cursor"`
		}
		rawMeta, hasMeta := resp["meta"]
		if !hasMeta {
			// An offset-paginated answer would carry next_page; following only the first page would
			// miss objects and make Install create duplicates.
			var next *string
			if raw, ok := resp["next_page"]; ok && json.Unmarshal(raw, &next) == nil && next != nil && *next != "" {
				return fmt.Errorf("zendesk: GET %s: answered with offset pagination (next_page) instead of cursor pagination", path)
			}
			return nil
		}
		if err := json.Unmarshal(rawMeta, &meta); err != nil {
			return fmt.Errorf("zendesk: GET %s: decoding meta: %v", path, err)
		}
		if !meta.HasMore {
			return nil
		}
		if meta.AfterCursor == "" || seen[meta.AfterCursor] {
			return fmt.Errorf("zendesk: GET %s: has_more without a new after_cursor", path)
		}
		seen[meta.AfterCursor] = true
		q.Set("page[after]", meta.AfterCursor)
	}
	return fmt.Errorf("zendesk: GET %s: more than %d pages", path, maxListPages)
}

// checkWebhookID refuses anything but the letters and digits of a webhook id (a ULID): ids are
// spliced into request paths.
func checkWebhookID(raw string) (string, error) {
	if raw == "" || len(raw) > 64 {
		return "", fmt.Errorf("zendesk: %w: webhook id %.70q is not a Zendesk webhook id", ErrInvalidInput, raw)
	}
	for _, r := range raw {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return "", fmt.Errorf("zendesk: %w: webhook id %.70q is not a Zendesk webhook id", ErrInvalidInput, raw)
		}
	}
	return raw, nil
}

// DefaultEventTypes are the ticket events Install subscribes the event webhook to: the four
// README names (ParseEvent reads any ticket.* event, these are the ones that change scores).
var DefaultEventTypes = []string{
	"zen:event-type:ticket.created",
	"zen:event-type:ticket.status_changed",
	"zen:event-type:ticket.priority_changed",
	"zen:event-type:ticket.comment_added",
}

// UserFieldSpec is a custom user field clvd fills in.
type UserFieldSpec struct {
	Key, Type, Title, Description string
}

// UserFieldSpecs are the user fields Install creates when missing (matched by key).
var UserFieldSpecs = []UserFieldSpec{
	{"clv_predicted", "decimal", "CLV (predicted)", "Predicted customer lifetime value, written by clvd."},
	{"clv_historic", "decimal", "CLV (historic)", "Net spend so far, written by clvd."},
	{"clv_churn_probability", "decimal", "Churn probability", "Probability (0 to 1) that the customer has churned, written by clvd."},
	{"clv_expected_next_order", "date", "Expected next order", "When clvd expects the customer's next order."},
}

// InstallOptions configures Install.
type InstallOptions struct {
	// WebhookURL is where Zendesk sends events: https://YOUR-CLVD/webhooks/TENANT/zendesk. It is
	// also the marker by which Install finds its webhooks again, so it must not change between runs.
	WebhookURL string
	// Name prefixes the names of what Install creates, so admins recognise them ("clvd" if empty).
	Name string
	// Triggers also creates a trigger-connected webhook and a trigger that sends
	// TriggerPayloadTemplate on every ticket creation and update (satisfaction ratings and
	// requester emails, which event subscriptions lack). Once installed they are kept by later runs
	// without Triggers; Uninstall removes them.
	Triggers bool
	// EventTypes the event webhook subscribes to; DefaultEventTypes if empty. Used on creation
	// only: an existing webhook's subscriptions are left as they are.
	EventTypes []string
	// SkipUserFields leaves user fields alone.
	SkipUserFields bool
	// RateLimitRetries is how many times one API call is retried after a 429 whose Retry-After is
	// at most MaxRateLimitWait; 0 returns the first *RateLimitError, as every Client call does.
	RateLimitRetries int
	MaxRateLimitWait time.Duration
	// OnRateLimit, when set, is told about each wait before it starts.
	OnRateLimit func(wait time.Duration)
}

// Installation is what Install found or created. The JSON form holds ids only, never secrets, so
// it can be stored as the tenant's install state and handed back to Uninstall.
type Installation struct {
	WebhookURL       string            `json:"webhook_url"`
	Name             string            `json:"name"`
	EventsWebhookID  string            `json:"events_webhook_id,omitempty"`
	TriggerWebhookID string            `json:"trigger_webhook_id,omitempty"`
	TriggerID        string            `json:"trigger_id,omitempty"`
	UserFieldIDs     map[string]string `json:"user_field_ids,omitempty"` // key -> id
	// InstalledBy is the admin whose credentials ran Install.
	InstalledBy CurrentUser `json:"-"`

	EventsSecret  string `json:"-"`
	TriggerSecret string `json:"-"`
	// Steps say, in order, what Install found or created.
	Steps []InstallStep `json:"-"`
}

// Secrets returns the webhooks' signing secrets, events webhook first.
func (in Installation) Secrets() []string {
	var out []string
	for _, s := range []string{in.EventsSecret, in.TriggerSecret} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// InstallStep is one object Install or Uninstall dealt with.
type InstallStep struct {
	Object  string `json:"object"` // "webhook", "trigger" or "user field"
	Name    string `json:"name"`
	ID      string `json:"id"`
	Created bool   `json:"created"` // Install: false when the object already existed
	Note    string `json:"note,omitempty"`
}

const triggerWebhookSuffix = ": trigger payloads"

// Install makes the Zendesk account send ticket events to opts.WebhookURL, idempotently: every
// object is first looked for by a stable marker — webhooks by endpoint (and kind), the trigger by
// the webhook it notifies, user fields by key — and created only when missing, so running it
// twice creates nothing twice, and a run cut short is completed by the next.
//
// It verifies the credentials first (ErrUnauthorized, ErrNotAdmin), then ensures (a) a webhook
// subscribed to ticket events and fetches its signing secret; (b) with opts.Triggers (or when an
// earlier run installed them) a trigger-connected webhook, its secret, and a trigger sending
// TriggerPayloadTemplate on ticket creation and update; (c) unless opts.SkipUserFields, the
// UserFieldSpecs fields. On error the returned Installation holds what was done so far. Errors are
// the Client's (ErrUnauthorized, *RateLimitError, *APIError, …) or ErrInstallConflict.
func Install(ctx context.Context, c *Client, opts InstallOptions) (Installation, error) {
	name := strings.TrimSpace(opts.Name)
	if name == "" {
		name = "clvd"
	}
	inst := Installation{WebhookURL: strings.TrimSpace(opts.WebhookURL), Name: name}
	if err := checkWebhookURL(inst.WebhookURL); err != nil {
		return inst, err
	}
	r := retrier{opts.RateLimitRetries, opts.MaxRateLimitWait, opts.OnRateLimit}

	var me CurrentUser
	if err := r.do(ctx, func() (err error) { me, err = c.VerifyAdmin(ctx); return err }); err != nil {
		return inst, err
	}
	inst.InstalledBy = me

	var hooks []Webhook
	if err := r.do(ctx, func() (err error) { hooks, err = c.ListWebhooks(ctx, ""); return err }); err != nil {
		return inst, err
	}
	find := func(triggerKind bool) *Webhook {
		for i := range hooks {
			if hooks[i].Endpoint == inst.WebhookURL && hooks[i].TriggerConnected() == triggerKind {
				return &hooks[i]
			}
		}
		return nil
	}
	ensureWebhook := func(existing *Webhook, want Webhook) (Webhook, error) {
		if existing != nil {
			step := InstallStep{Object: "webhook", Name: existing.Name, ID: existing.ID}
			if existing.Status != "" && existing.Status != "active" {
				step.Note = "status " + existing.Status + ": Zendesk sends nothing until it is activated in Admin Center"
			}
			inst.Steps = append(inst.Steps, step)
			return *existing, nil
		}
		var created Webhook
		if err := r.do(ctx, func() (err error) { created, err = c.CreateWebhook(ctx, want); return err }); err != nil {
			return Webhook{}, err
		}
		inst.Steps = append(inst.Steps, InstallStep{Object: "webhook", Name: created.Name, ID: created.ID, Created: true})
		return created, nil
	}
	secretOf := func(id string) (secret string, err error) {
		err = r.do(ctx, func() (err error) { secret, err = c.WebhookSigningSecret(ctx, id); return err })
		return secret, err
	}

	// (a) The event-subscription webhook.
	events := opts.EventTypes
	if len(events) == 0 {
		events = DefaultEventTypes
	}
	ev, err := ensureWebhook(find(false), Webhook{
		Name:          name + ": ticket events",
		Description:   "Sends ticket events to clvd (customer lifetime value and churn). Managed by clvd: remove it with 'clvd tenant uninstall-zendesk'.",
		Endpoint:      inst.WebhookURL,
		HTTPMethod:    http.MethodPost,
		RequestFormat: "json",
		Status:        "active",
		Subscriptions: slices.Clone(events),
	})
	if err != nil {
		return inst, err
	}
	inst.EventsWebhookID = ev.ID
	if inst.EventsSecret, err = secretOf(ev.ID); err != nil {
		return inst, err
	}

	// (b) The trigger-connected webhook and its trigger.
	if existing := find(true); existing != nil || opts.Triggers {
		tw, err := ensureWebhook(existing, Webhook{
			Name:          name + triggerWebhookSuffix,
			Description:   "Receives clvd's trigger payload (satisfaction ratings, requester emails). Managed by clvd: remove it with 'clvd tenant uninstall-zendesk'.",
			Endpoint:      inst.WebhookURL,
			HTTPMethod:    http.MethodPost,
			RequestFormat: "json",
			Status:        "active",
			Subscriptions: []string{ConditionalTicketEvents},
		})
		if err != nil {
			return inst, err
		}
		inst.TriggerWebhookID = tw.ID
		if inst.TriggerSecret, err = secretOf(tw.ID); err != nil {
			return inst, err
		}
		var triggers []Trigger
		if err := r.do(ctx, func() (err error) { triggers, err = c.ListTriggers(ctx); return err }); err != nil {
			return inst, err
		}
		var found *Trigger
		for i := range triggers {
			if triggers[i].NotifiesWebhook(tw.ID) {
				found = &triggers[i]
				break
			}
		}
		if found != nil {
			step := InstallStep{Object: "trigger", Name: found.Title, ID: found.ID}
			if !found.Active {
				step.Note = "inactive: Zendesk sends nothing until it is activated"
			}
			inst.Steps = append(inst.Steps, step)
			inst.TriggerID = found.ID
		} else {
			var created Trigger
			if err := r.do(ctx, func() (err error) { created, err = c.CreateTrigger(ctx, clvdTrigger(name, tw.ID)); return err }); err != nil {
				return inst, err
			}
			inst.Steps = append(inst.Steps, InstallStep{Object: "trigger", Name: created.Title, ID: created.ID, Created: true})
			inst.TriggerID = created.ID
		}
	}

	// (c) The user fields clvd writes scores into.
	if !opts.SkipUserFields {
		var fields []UserField
		if err := r.do(ctx, func() (err error) { fields, err = c.ListUserFields(ctx); return err }); err != nil {
			return inst, err
		}
		inst.UserFieldIDs = map[string]string{}
		for _, spec := range UserFieldSpecs {
			idx := slices.IndexFunc(fields, func(f UserField) bool { return f.Key == spec.Key })
			if idx >= 0 {
				f := fields[idx]
				if f.Type != spec.Type {
					return inst, fmt.Errorf("zendesk: user field %s exists with type %q, clvd needs %q: %w (rename or delete it in Admin Center, or install without user fields)",
						spec.Key, f.Type, spec.Type, ErrInstallConflict)
				}
				step := InstallStep{Object: "user field", Name: f.Key, ID: f.ID}
				if !f.Active {
					step.Note = "inactive: agents do not see it until it is activated"
				}
				inst.Steps = append(inst.Steps, step)
				inst.UserFieldIDs[spec.Key] = f.ID
				continue
			}
			var created UserField
			err := r.do(ctx, func() (err error) {
				created, err = c.CreateUserField(ctx, UserField{Key: spec.Key, Type: spec.Type, Title: spec.Title, Description: spec.Description})
				return err
			})
			if err != nil {
				if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusUnprocessableEntity {
					return inst, fmt.Errorf("%w (Zendesk refuses a key that a deleted field used: a field %s deleted earlier cannot be created again)", err, spec.Key)
				}
				return inst, err
			}
			inst.Steps = append(inst.Steps, InstallStep{Object: "user field", Name: created.Key, ID: created.ID, Created: true})
			inst.UserFieldIDs[spec.Key] = created.ID
		}
	}
	return inst, nil
}

// clvdTrigger is the trigger Install creates: on ticket creation or update, notify the webhook
// with TriggerPayloadTemplate.
func clvdTrigger(name, webhookID string) Trigger {
	return Trigger{
		Title:       name + ": send ticket changes to clvd",
		Description: "Sends each created or updated ticket (status, priority, satisfaction, requester) to clvd. Managed by clvd: remove it with 'clvd tenant uninstall-zendesk'.",
		Active:      true,
		Conditions: TriggerConditions{Any: []TriggerCondition{
			{Field: "update_type", Operator: "is", Value: "Create"},
			{Field: "update_type", Operator: "is", Value: "Change"},
		}},
		Actions: []TriggerAction{{Field: "notification_webhook", Value: []string{webhookID, TriggerPayloadTemplate}}},
	}
}

func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("zendesk: %w: webhook URL %.200q must be an absolute http(s) URL without credentials", ErrInvalidInput, raw)
	}
	return nil
}

// UninstallOptions configures Uninstall.
type UninstallOptions struct {
	// RemoveUserFields also deletes the UserFieldSpecs fields, and with them every customer's
	// values. Zendesk does not let a deleted field's key be used again, so a later Install cannot
	// recreate them.
	RemoveUserFields bool
	RateLimitRetries int
	MaxRateLimitWait time.Duration
	OnRateLimit      func(wait time.Duration)
}

// UninstallResult says what Uninstall removed, what was already gone, and what is left installed.
type UninstallResult struct {
	Removed     []InstallStep
	AlreadyGone []InstallStep
	Remaining   Installation
}

// Uninstall removes what Install set up: the trigger, then the webhooks, and with
// opts.RemoveUserFields the user fields. It removes the ids in inst and, when inst.WebhookURL is
// set, whatever else carries Install's markers (webhooks whose endpoint is that URL, triggers
// notifying them, fields with clvd's keys), so it also cleans up after an install whose ids were
// never recorded. Objects already gone count as removed, so running it twice is harmless.
func Uninstall(ctx context.Context, c *Client, inst Installation, opts UninstallOptions) (UninstallResult, error) {
	res := UninstallResult{Remaining: inst}
	res.Remaining.UserFieldIDs = maps.Clone(inst.UserFieldIDs)
	r := retrier{opts.RateLimitRetries, opts.MaxRateLimitWait, opts.OnRateLimit}
	if err := r.do(ctx, func() error { _, err := c.VerifyAdmin(ctx); return err }); err != nil {
		return res, err
	}

	webhookIDs := map[string]string{} // id -> name
	for _, id := range []string{inst.EventsWebhookID, inst.TriggerWebhookID} {
		if id != "" {
			webhookIDs[id] = ""
		}
	}
	if inst.WebhookURL != "" {
		var hooks []Webhook
		if err := r.do(ctx, func() (err error) { hooks, err = c.ListWebhooks(ctx, ""); return err }); err != nil {
			return res, err
		}
		for _, w := range hooks {
			if _, known := webhookIDs[w.ID]; known || w.Endpoint == inst.WebhookURL {
				webhookIDs[w.ID] = w.Name
			}
		}
	}

	triggerIDs := map[string]string{}
	if inst.TriggerID != "" {
		triggerIDs[inst.TriggerID] = ""
	}
	if len(webhookIDs) > 0 {
		var triggers []Trigger
		if err := r.do(ctx, func() (err error) { triggers, err = c.ListTriggers(ctx); return err }); err != nil {
			return res, err
		}
		for _, t := range triggers {
			for id := range webhookIDs {
				if t.NotifiesWebhook(id) {
					triggerIDs[t.ID] = t.Title
				}
			}
			if _, known := triggerIDs[t.ID]; known {
				triggerIDs[t.ID] = t.Title
			}
		}
	}

	remove := func(object, id, name string, del func(context.Context, string) error) error {
		step := InstallStep{Object: object, Name: name, ID: id}
		err := r.do(ctx, func() error { return del(ctx, id) })
		switch {
		case err == nil:
			res.Removed = append(res.Removed, step)
		case errors.Is(err, ErrNotFound):
			res.AlreadyGone = append(res.AlreadyGone, step)
		default:
			return err
		}
		return nil
	}
	// Triggers first: a trigger must not be left notifying a webhook that no longer exists.
	for _, id := range slices.Sorted(maps.Keys(triggerIDs)) {
		if err := remove("trigger", id, triggerIDs[id], c.DeleteTrigger); err != nil {
			return res, err
		}
		if id == res.Remaining.TriggerID {
			res.Remaining.TriggerID = ""
		}
	}
	for _, id := range slices.Sorted(maps.Keys(webhookIDs)) {
		if err := remove("webhook", id, webhookIDs[id], c.DeleteWebhook); err != nil {
			return res, err
		}
		switch id {
		case res.Remaining.EventsWebhookID:
			res.Remaining.EventsWebhookID = ""
		case res.Remaining.TriggerWebhookID:
			res.Remaining.TriggerWebhookID = ""
		}
	}

	if opts.RemoveUserFields {
		fieldIDs := map[string]string{} // id -> key
		for key, id := range inst.UserFieldIDs {
			fieldIDs[id] = key
		}
		var fields []UserField
		if err := r.do(ctx, func() (err error) { fields, err = c.ListUserFields(ctx); return err }); err != nil {
			return res, err
		}
		for _, f := range fields {
			if slices.ContainsFunc(UserFieldSpecs, func(s UserFieldSpec) bool { return s.Key == f.Key }) {
				fieldIDs[f.ID] = f.Key
			}
		}
		for _, id := range slices.Sorted(maps.Keys(fieldIDs)) {
			if err := remove("user field", id, fieldIDs[id], c.DeleteUserField); err != nil {
				return res, err
			}
			delete(res.Remaining.UserFieldIDs, fieldIDs[id])
		}
		if len(res.Remaining.UserFieldIDs) == 0 {
			res.Remaining.UserFieldIDs = nil
		}
	}
	return res, nil
}

// retrier retries one API call after a 429 whose Retry-After is within bounds; any other error,
// or a 429 asking for a longer wait, is returned as is.
type retrier struct {
	retries int
	maxWait time.Duration
	notify  func(time.Duration)
}

func (r retrier) do(ctx context.Context, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		var rl *RateLimitError
		if err == nil || attempt >= r.retries || !errors.As(err, &rl) || rl.RetryAfter > r.maxWait {
			return err
		}
		if r.notify != nil {
			r.notify(rl.RetryAfter)
		}
		timer := time.NewTimer(rl.RetryAfter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.Join(err, ctx.Err())
		case <-timer.C:
		}
	}
}
