package sidebar

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/store"
)

// ZAFClaims are the claims of the JWT Zendesk POSTs (form field "token") when it loads a
// server-side app page with "signedUrls": true. Zendesk signs it RS256 with the app's key, whose
// public half is GET /api/v2/apps/{app_id}/public_key.pem.
//
//	iss      the account's host, "SUBDOMAIN.zendesk.com"
//	aud      the app installation's URL, https://SUBDOMAIN.zendesk.com/api/v2/apps/installations/{id}.json
//	sub      the agent's user URL
//	cnf.jku  the app's public key URL, https://SUBDOMAIN.zendesk.com/api/v2/apps/{app_id}/public_key.pem:
//	         the only claim that names the app, so the app id is read from it
//	exp, iat, nbf, qsh (a hash of the query string, not checked), context {product, location}
type ZAFClaims struct {
	jwt.RegisteredClaims
	Cnf struct {
		JKU string `json:"jku"`
	} `json:"cnf"`
	QSH     string `json:"qsh,omitempty"`
	Context struct {
		Product  string `json:"product"`
		Location string `json:"location"`
	} `json:"context"`
}

// Reasons a token is refused; every one is a 401 for the page.
var (
	errNoToken       = errors.New("no token")
	errMalformed     = errors.New("malformed token")
	errWrongIssuer   = errors.New("token issued by another Zendesk account")
	errWrongAudience = errors.New("token audience is not an app installation of this Zendesk account")
	errNoAppKeyURL   = errors.New("token does not name its app (cnf.jku)")
	// errKeyUnavailable: the app's public key could not be fetched (Zendesk down, rate limited, or
	// the tenant's API credentials refused). Not the token's fault: 503.
	errKeyUnavailable = errors.New("the app's public key could not be fetched from Zendesk")
	// errUnknownApp: Zendesk has no app (or no usable key) by the id the token names: the token's fault.
	errUnknownApp = errors.New("the app the token names has no public key in this Zendesk account")
)

var (
	appKeyPath       = regexp.MustCompile(`^/api/v2/apps/([0-9]{1,19})/public_key\.pem$`)
	installationPath = regexp.MustCompile(`^/api/v2/apps/installations/([0-9]{1,19})(\.json)?$`)
)

// zafToken is a verified ZAF JWT.
type zafToken struct {
	Claims         *ZAFClaims
	AppID          string
	InstallationID string
}

// zafVerifier checks ZAF JWTs against a tenant's Zendesk account.
type zafVerifier struct {
	keys   *keyCache
	now    func() time.Time
	leeway time.Duration
}

// peekIssuer reads the iss claim without checking anything: it only chooses which tenant's key and
// account the token is then checked against.
func peekIssuer(raw string) (string, error) {
	var c ZAFClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		return "", fmt.Errorf("%w: %v", errMalformed, err)
	}
	return c.Issuer, nil
}

// accountOf returns the base URL of the tenant's Zendesk account, parsed.
func accountOf(t *store.Tenant) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(t.Zendesk.BaseURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("the tenant has no Zendesk base URL")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// verify checks raw as a ZAF JWT of tenant t's Zendesk account:
//   - RS256 only (alg "none", HS256 keyed with the public key and everything else are refused);
//   - signed by the key of the app its cnf.jku names, fetched from the tenant's own Zendesk (the
//     stored base URL and API credentials, never the URL in the token) and cached;
//   - iss is the account's host; aud is one installation URL of that account; exp is required and
//     in the future, iat and nbf not in the future, with the verifier's leeway.
//
// The cheap claim checks run before the key is fetched, so junk tokens cost Zendesk no API call.
func (v *zafVerifier) verify(ctx context.Context, raw string, t *store.Tenant) (*zafToken, error) {
	if raw == "" {
		return nil, errNoToken
	}
	account, err := accountOf(t)
	if err != nil {
		return nil, err
	}
	var pre ZAFClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &pre); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if !strings.EqualFold(pre.Issuer, account.Host) {
		return nil, errWrongIssuer
	}
	if pre.ExpiresAt == nil {
		return nil, jwt.ErrTokenRequiredClaimMissing
	}
	if v.now().After(pre.ExpiresAt.Add(v.leeway)) {
		return nil, jwt.ErrTokenExpired
	}
	installation, err := installationOf(pre.Audience, account)
	if err != nil {
		return nil, err
	}
	appID, err := appIDOf(pre.Cnf.JKU, account)
	if err != nil {
		return nil, err
	}

	key, fetchedAt, err := v.keys.get(ctx, t, appID, false)
	if err != nil {
		return nil, err
	}
	claims, err := v.parse(raw, key, account)
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) && v.now().Sub(fetchedAt) > keyRefreshAfter {
		// Perhaps the app was re-keyed: fetch the key once more (at most once a minute per app).
		if key, _, err = v.keys.get(ctx, t, appID, true); err != nil {
			return nil, err
		}
		claims, err = v.parse(raw, key, account)
	}
	if err != nil {
		return nil, err
	}
	if got, err := appIDOf(claims.Cnf.JKU, account); err != nil || got != appID {
		return nil, errNoAppKeyURL
	}
	if got, err := installationOf(claims.Audience, account); err != nil || got != installation {
		return nil, errWrongAudience
	}
	return &zafToken{Claims: claims, AppID: appID, InstallationID: installation}, nil
}

// parse verifies the signature with key, RS256 only, and the registered claims.
func (v *zafVerifier) parse(raw string, key *rsa.PublicKey, account *url.URL) (*ZAFClaims, error) {
	claims := &ZAFClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(account.Host),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	if _, err := p.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return nil, err
	}
	return claims, nil
}

// installationOf checks that aud is exactly one installation URL of the account and returns the
// installation id.
func installationOf(aud jwt.ClaimStrings, account *url.URL) (string, error) {
	if len(aud) != 1 {
		return "", errWrongAudience
	}
	u, err := url.Parse(aud[0])
	if err != nil || u.Scheme != account.Scheme || !strings.EqualFold(u.Host, account.Host) || u.RawQuery != "" || u.User != nil {
		return "", errWrongAudience
	}
	m := installationPath.FindStringSubmatch(u.Path)
	if m == nil {
		return "", errWrongAudience
	}
	return m[1], nil
}

// appIDOf reads the app id out of the cnf.jku claim, which must point into the account itself.
func appIDOf(jku string, account *url.URL) (string, error) {
	if jku == "" {
		return "", errNoAppKeyURL
	}
	u, err := url.Parse(jku)
	if err != nil || u.Scheme != account.Scheme || !strings.EqualFold(u.Host, account.Host) || u.RawQuery != "" || u.User != nil {
		return "", errNoAppKeyURL
	}
	m := appKeyPath.FindStringSubmatch(u.Path)
	if m == nil {
		return "", errNoAppKeyURL
	}
	return m[1], nil
}

// keyRefreshAfter is how old a cached key must be before a signature failure fetches it again.
const keyRefreshAfter = time.Minute

// keyFetcher gets app appID's public key from tenant t's Zendesk.
type keyFetcher func(ctx context.Context, t *store.Tenant, appID string) (*rsa.PublicKey, error)

// zendeskKeyFetcher fetches keys with the zendesk client and the tenant's stored API credentials.
func zendeskKeyFetcher(hc *http.Client) keyFetcher {
	return func(ctx context.Context, t *store.Tenant, appID string) (*rsa.PublicKey, error) {
		if t.Zendesk.Email == "" || t.Zendesk.APIToken == "" {
			return nil, errors.New("the tenant has no Zendesk API credentials (clvd tenant install-zendesk)")
		}
		c, err := zendesk.NewClient(t.Zendesk.BaseURL, t.Zendesk.Email, t.Zendesk.APIToken, hc)
		if err != nil {
			return nil, err
		}
		return c.AppPublicKey(ctx, appID)
	}
}

// keyCache caches app public keys per tenant, account and app for ttl; a failed fetch is
// remembered for failTTL, so a burst of page loads (or of forged tokens naming made-up apps)
// costs Zendesk one call, not one each.
type keyCache struct {
	fetch   keyFetcher
	now     func() time.Time
	ttl     time.Duration
	failTTL time.Duration
	max     int

	mu      sync.Mutex
	entries map[string]keyEntry
}

type keyEntry struct {
	key *rsa.PublicKey
	err error
	at  time.Time
}

func newKeyCache(fetch keyFetcher, now func() time.Time, ttl time.Duration) *keyCache {
	return &keyCache{fetch: fetch, now: now, ttl: ttl, failTTL: 15 * time.Second, max: 1000, entries: map[string]keyEntry{}}
}

// get returns the key and when it was fetched; fresh skips a cached key that is older than
// keyRefreshAfter.
func (c *keyCache) get(ctx context.Context, t *store.Tenant, appID string, fresh bool) (*rsa.PublicKey, time.Time, error) {
	id := t.ID + "\x00" + t.Zendesk.BaseURL + "\x00" + appID
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok {
		age := now.Sub(e.at)
		switch {
		case e.err != nil && age < c.failTTL:
			return nil, e.at, fetchError(e.err)
		case e.err == nil && age < c.ttl && !(fresh && age > keyRefreshAfter):
			return e.key, e.at, nil
		}
	}
	key, err := c.fetch(ctx, t, appID)
	e = keyEntry{key: key, err: err, at: now}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		for k, old := range c.entries {
			if now.Sub(old.at) >= c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[id] = e
	c.mu.Unlock()
	if err != nil {
		return nil, now, fetchError(err)
	}
	return key, now, nil
}

// fetchError classifies a failed key fetch: an app Zendesk does not know is the token's fault,
// anything else (network, rate limit, refused credentials) is clvd's or Zendesk's.
func fetchError(err error) error {
	if errors.Is(err, zendesk.ErrNotFound) || errors.Is(err, zendesk.ErrBadPublicKey) {
		return fmt.Errorf("%w: %v", errUnknownApp, err)
	}
	return fmt.Errorf("%w: %v", errKeyUnavailable, err)
}
