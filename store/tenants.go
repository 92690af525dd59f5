package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ZendeskAccount is how clvd reaches a tenant's Zendesk.
type ZendeskAccount struct {
	BaseURL       string // https://SUBDOMAIN.zendesk.com
	Email         string
	APIToken      string // encrypted at rest
	WebhookSecret string // encrypted at rest
}

// Tenant is one shop using clvd. Secrets are plaintext in memory and sealed with the Cipher at rest.
type Tenant struct {
	ID            string
	Name          string
	CreatedAt     time.Time
	Zendesk       ZendeskAccount
	ShopifySecret string          // encrypted at rest
	OrdersSecret  string          // encrypted at rest
	Settings      json.RawMessage // opaque to the store; "{}" when unset
}

// errNoCipher is returned when a secret must be sealed or opened but the DB was opened without one.
var errNoCipher = errors.New("no secret key configured (CLVD_SECRET_KEY)")

// seal encrypts a secret. The empty secret stays empty, so "not configured" is visible without a key.
func (db *DB) seal(field, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	if db.cipher == nil {
		return "", fmt.Errorf("seal %s: %w", field, errNoCipher)
	}
	s, err := db.cipher.Seal(plaintext)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", field, err)
	}
	return s, nil
}

func (db *DB) open(tenantID, field, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if db.cipher == nil {
		return "", fmt.Errorf("tenant %s: open %s: %w", tenantID, field, errNoCipher)
	}
	s, err := db.cipher.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("tenant %s: open %s: %w", tenantID, field, err)
	}
	return s, nil
}

// newTenantID returns "t_" and 16 lowercase base32 characters (80 random bits).
func newTenantID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate tenant id: %w", err)
	}
	return "t_" + strings.ToLower(base32.StdEncoding.EncodeToString(b)), nil
}

// validTenantID keeps ids safe to put in URLs (webhook paths) and log lines.
func validTenantID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("tenant id %q: must be 1 to 64 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("tenant id %q: only letters, digits, '_' and '-' are allowed", id)
		}
	}
	return nil
}

// jsonDoc validates an opaque JSON document and gives "{}" for an empty one.
func jsonDoc(what string, v json.RawMessage) (string, error) {
	if len(strings.TrimSpace(string(v))) == 0 {
		return "{}", nil
	}
	if !json.Valid(v) {
		return "", fmt.Errorf("%s is not valid JSON", what)
	}
	return string(v), nil
}

// sealedTenant is the at-rest form of a tenant's secrets and settings.
type sealedTenant struct {
	apiToken, webhookSecret, shopifySecret, ordersSecret, settings string
}

func (db *DB) sealTenant(t *Tenant) (sealedTenant, error) {
	var s sealedTenant
	var err error
	if s.apiToken, err = db.seal("zendesk api token", t.Zendesk.APIToken); err != nil {
		return s, err
	}
	if s.webhookSecret, err = db.seal("zendesk webhook secret", t.Zendesk.WebhookSecret); err != nil {
		return s, err
	}
	if s.shopifySecret, err = db.seal("shopify secret", t.ShopifySecret); err != nil {
		return s, err
	}
	if s.ordersSecret, err = db.seal("orders secret", t.OrdersSecret); err != nil {
		return s, err
	}
	if s.settings, err = jsonDoc("tenant settings", t.Settings); err != nil {
		return s, err
	}
	return s, nil
}

// CreateTenant stores a new tenant. It sets t.ID when empty and t.CreatedAt; an existing ID is
// ErrConflict.
func (db *DB) CreateTenant(ctx context.Context, t *Tenant) error {
	if t.ID == "" {
		id, err := newTenantID()
		if err != nil {
			return err
		}
		t.ID = id
	} else if err := validTenantID(t.ID); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	s, err := db.sealTenant(t)
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", t.ID, err)
	}
	created := now()
	_, err = db.writer().exec(ctx, `INSERT INTO tenants (id, name, created_at, zendesk_base_url, zendesk_email,
		zendesk_api_token, zendesk_webhook_secret, shopify_secret, orders_secret, settings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, db.d.ts(created), t.Zendesk.BaseURL, t.Zendesk.Email,
		s.apiToken, s.webhookSecret, s.shopifySecret, s.ordersSecret, s.settings)
	if isUniqueViolation(err) {
		return fmt.Errorf("create tenant %s: %w", t.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", t.ID, err)
	}
	t.CreatedAt = created
	t.Settings = json.RawMessage(s.settings)
	return nil
}

const tenantColumns = `id, name, created_at, zendesk_base_url, zendesk_email, zendesk_api_token,
	zendesk_webhook_secret, shopify_secret, orders_secret, settings`

func (db *DB) scanTenant(sc interface{ Scan(...any) error }) (*Tenant, error) {
	var t Tenant
	var s sealedTenant
	if err := sc.Scan(&t.ID, &t.Name, timeCol{&t.CreatedAt}, &t.Zendesk.BaseURL, &t.Zendesk.Email,
		&s.apiToken, &s.webhookSecret, &s.shopifySecret, &s.ordersSecret, &s.settings); err != nil {
		return nil, err
	}
	var err error
	if t.Zendesk.APIToken, err = db.open(t.ID, "zendesk api token", s.apiToken); err != nil {
		return nil, err
	}
	if t.Zendesk.WebhookSecret, err = db.open(t.ID, "zendesk webhook secret", s.webhookSecret); err != nil {
		return nil, err
	}
	if t.ShopifySecret, err = db.open(t.ID, "shopify secret", s.shopifySecret); err != nil {
		return nil, err
	}
	if t.OrdersSecret, err = db.open(t.ID, "orders secret", s.ordersSecret); err != nil {
		return nil, err
	}
	t.Settings = json.RawMessage(s.settings)
	return &t, nil
}

// GetTenant returns a tenant with its secrets decrypted, or ErrNotFound.
func (db *DB) GetTenant(ctx context.Context, id string) (*Tenant, error) {
	row := db.reader().queryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id)
	t, err := db.scanTenant(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants returns every tenant by creation time, then ID, with secrets decrypted (callers must
// not print them).
func (db *DB) ListTenants(ctx context.Context) ([]Tenant, error) {
	out, err := db.queryTenants(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// queryTenants runs q, which selects tenantColumns, and decrypts every tenant it returns.
func (db *DB) queryTenants(ctx context.Context, q string, args ...any) ([]Tenant, error) {
	rows, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := db.scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// TenantsWithZendeskURLContaining returns the tenants whose Zendesk base URL contains text (case
// blind), with secrets decrypted. It narrows a lookup by Zendesk host (the sidebar's, from a token's
// issuer) to a few candidates without decrypting every tenant; the caller matches the host exactly.
// text is matched literally: LIKE's wildcards in it are escaped.
func (db *DB) TenantsWithZendeskURLContaining(ctx context.Context, text string) ([]Tenant, error) {
	if text == "" {
		return nil, nil
	}
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(text)) + "%"
	out, err := db.queryTenants(ctx, `SELECT `+tenantColumns+` FROM tenants
		WHERE LOWER(zendesk_base_url) LIKE ? ESCAPE '\' ORDER BY created_at, id`, pattern)
	if err != nil {
		return nil, fmt.Errorf("tenants by zendesk url: %w", err)
	}
	return out, nil
}

// UpdateTenant replaces every field of the tenant except ID and CreatedAt; ErrNotFound if it does
// not exist.
func (db *DB) UpdateTenant(ctx context.Context, t *Tenant) error {
	s, err := db.sealTenant(t)
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", t.ID, err)
	}
	res, err := db.writer().exec(ctx, `UPDATE tenants SET name = ?, zendesk_base_url = ?, zendesk_email = ?,
		zendesk_api_token = ?, zendesk_webhook_secret = ?, shopify_secret = ?, orders_secret = ?, settings = ?
		WHERE id = ?`,
		t.Name, t.Zendesk.BaseURL, t.Zendesk.Email, s.apiToken, s.webhookSecret, s.shopifySecret,
		s.ordersSecret, s.settings, t.ID)
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", t.ID, err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update tenant %s: %w", t.ID, ErrNotFound)
	}
	t.Settings = json.RawMessage(s.settings)
	return nil
}
