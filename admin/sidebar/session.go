package sidebar

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The sidebar's own session. Zendesk's JWT arrives once, with the page load; the page's later
// requests (the customer data) carry a session token of clvd's own instead. The token is written
// into the page (a <meta> tag) and sent by the page's fetch calls as "Authorization: Bearer …":
// no cookie, so browsers that block third-party cookies in Zendesk's iframe change nothing, and no
// ambient credential a cross-site request could ride on (no CSRF).
//
// It is an HS256 JWT with iss "clvd", aud "clvd-zendesk-sidebar", the tenant, the agent (sub, the
// ZAF token's sub), exp, iat and a random jti, signed with a key derived from the server's admin
// token key by HMAC-SHA256 with a fixed label: it can never pass as an admin token (different key
// and audience), and an admin token never passes here.
const (
	sessionIssuer   = "clvd"
	sessionAudience = "clvd-zendesk-sidebar"
	sessionKeyLabel = "clvd zendesk sidebar session v1"
	// DefaultSessionTTL is how long a page may keep asking for data: a ticket stays open in an
	// agent's tab for a working day; after it the page asks to be reloaded.
	DefaultSessionTTL = 8 * time.Hour
)

// sessionClaims are a sidebar session's claims.
type sessionClaims struct {
	Tenant       string `json:"tenant"`
	Installation string `json:"inst,omitempty"`
	jwt.RegisteredClaims
}

var errSessionTenant = errors.New("session without tenant")

// deriveSessionKey turns the server key into the sidebar's session key.
func deriveSessionKey(serverKey []byte) []byte {
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte(sessionKeyLabel))
	return m.Sum(nil)
}

// sessions issues and checks sidebar session tokens.
type sessions struct {
	key    []byte
	ttl    time.Duration
	leeway time.Duration
	now    func() time.Time
}

func (s *sessions) issue(tenant, agent, installation string) (string, time.Time, error) {
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp := now.Add(s.ttl)
	c := sessionClaims{Tenant: tenant, Installation: installation, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: sessionIssuer, Audience: jwt.ClaimStrings{sessionAudience}, Subject: agent,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp), ID: hex.EncodeToString(jti),
	}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	return tok, exp, err
}

func (s *sessions) verify(raw string) (*sessionClaims, error) {
	c := &sessionClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithIssuer(sessionIssuer),
		jwt.WithAudience(sessionAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(s.leeway),
		jwt.WithTimeFunc(s.now),
	)
	if _, err := p.ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return s.key, nil }); err != nil {
		return nil, err
	}
	if c.Tenant == "" {
		return nil, errSessionTenant
	}
	return c, nil
}
