package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// maxTenantName bounds a tenant's name (in characters).
const maxTenantName = 200

// readJSONBody reads a request body of at most maxBodyBytes that must be one JSON object.
func readJSONBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, badRequest("reading the body: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, badRequest("the body must be one JSON object")
	}
	return body, nil
}

// newOrdersSecret returns a random signing secret for the generic orders endpoint (as `clvd tenant
// add` makes one).
func newOrdersSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

type webhookJSON struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

type tenantCreatedJSON struct {
	ID        string                 `json:"id"`
	Name      string                 `json:"name"`
	CreatedAt time.Time              `json:"created_at"`
	Webhooks  map[string]webhookJSON `json:"webhooks"`
	Note      string                 `json:"note"`
}

func (h *Handler) createTenant(c *gin.Context) {
	if _, err := queryParams(c); err != nil {
		h.fail(c, err)
		return
	}
	body, err := readJSONBody(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	var req struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.fail(c, badRequest("body: %v", err))
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > maxTenantName {
		h.fail(c, badRequest("name: want 1 to %d characters", maxTenantName))
		return
	}
	secret, err := newOrdersSecret()
	if err != nil {
		h.fail(c, err)
		return
	}
	t := &store.Tenant{Name: name, OrdersSecret: secret, Settings: json.RawMessage(`{}`)}
	if err := h.store.CreateTenant(c.Request.Context(), t); err != nil {
		h.fail(c, err)
		return
	}
	cl := claimsOf(c)
	h.log.InfoContext(c.Request.Context(), "tenant created through the admin API", "tenant", t.ID, "role", cl.Role, "jti", cl.ID)
	base := h.publicURL + "/webhooks/" + t.ID + "/"
	c.JSON(http.StatusCreated, tenantCreatedJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Webhooks: map[string]webhookJSON{
		"orders":  {URL: base + "orders", Secret: t.OrdersSecret},
		"zendesk": {URL: base + "zendesk"},
		"shopify": {URL: base + "shopify"},
	}, Note: "the orders secret is shown only now; set the Zendesk and Shopify secrets with 'clvd tenant update'"})
}

type tenantJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	CreatedAt  time.Time       `json:"created_at"`
	ZendeskURL string          `json:"zendesk_url,omitempty"`
	SecretsSet map[string]bool `json:"secrets_set"` // never the secrets themselves
}

func (h *Handler) listTenants(c *gin.Context) {
	if _, err := queryParams(c); err != nil {
		h.fail(c, err)
		return
	}
	tenants, err := h.store.ListTenants(c.Request.Context())
	if err != nil {
		h.fail(c, err)
		return
	}
	out := make([]tenantJSON, 0, len(tenants))
	for _, t := range tenants {
		out = append(out, tenantJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ZendeskURL: t.Zendesk.BaseURL,
			SecretsSet: map[string]bool{
				"zendesk_webhook":   t.Zendesk.WebhookSecret != "",
				"zendesk_api_token": t.Zendesk.APIToken != "",
				"shopify":           t.ShopifySecret != "",
				"orders":            t.OrdersSecret != "",
			}})
	}
	c.JSON(http.StatusOK, gin.H{"tenants": out})
}

type settingsJSON struct {
	Tenant         string           `json:"tenant"`
	Settings       json.RawMessage  `json:"settings"`          // as stored
	Effective      *worker.Settings `json:"effective"`         // with defaults applied; null if the stored document is invalid
	Problem        string           `json:"problem,omitempty"` // why it is invalid
	RefitRequested bool             `json:"refit_requested,omitempty"`
}

func settingsOf(tenant string, raw json.RawMessage) settingsJSON {
	out := settingsJSON{Tenant: tenant, Settings: raw}
	s, err := worker.ParseSettings(raw)
	if err != nil {
		out.Problem = err.Error()
	} else {
		out.Effective = &s
	}
	return out
}

func (h *Handler) getSettings(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	raw, err := h.store.TenantSettings(c.Request.Context(), tenantOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, settingsOf(tenantOf(c), raw))
}

// putSettings replaces the tenant's settings and requests a refit, which rescores every customer
// with them (and pushes the changed tags).
func (h *Handler) putSettings(c *gin.Context) {
	if _, err := queryParams(c, "tenant"); err != nil {
		h.fail(c, err)
		return
	}
	body, err := readJSONBody(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	parsed, err := worker.ParseSettings(body)
	if err != nil {
		h.fail(c, badRequest("%s", err.Error()))
		return
	}
	if u := parsed.Outreach.Webhook.URL; u != "" {
		if _, err := worker.CheckOutreachWebhookURL(u, h.allowLocal); err != nil {
			h.fail(c, badRequest("settings: outreach: webhook.url: %v", err))
			return
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		h.fail(c, badRequest("the body must be one JSON object"))
		return
	}
	ctx, tenant := c.Request.Context(), tenantOf(c)
	if err := h.store.SetTenantSettings(ctx, tenant, compact.Bytes()); err != nil {
		h.fail(c, err)
		return
	}
	if err := worker.RequestRefit(ctx, h.store, tenant, "settings changed"); err != nil {
		h.fail(c, &apiError{kind: errUnavailable, msg: "the settings are stored, but requesting the refit that applies them failed: send the PUT again", cause: err})
		return
	}
	cl := claimsOf(c)
	h.log.InfoContext(ctx, "tenant settings changed through the admin API", "tenant", tenant, "role", cl.Role, "jti", cl.ID)
	out := settingsOf(tenant, compact.Bytes())
	out.RefitRequested = true
	c.JSON(http.StatusOK, out)
}
