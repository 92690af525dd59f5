package dashboard

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clvd/clvd/admin"
)

// Sessions. See the package comment for why the dashboard uses a cookie and how it is protected.
//
// The cookie's value is "v1.PAYLOAD.MAC": PAYLOAD the base64url JSON of a session, MAC the
// base64url HMAC-SHA256 of "v1.PAYLOAD" under a key derived from the admin token key for this one
// purpose (admin.Handler.DerivedKey), so a session cookie is never an API token and an API token
// never a session. It carries no secret: the role, the tenant, a random session id and its times.

const (
	// CookieName is the session cookie's name; its path is MountPath.
	CookieName = "clvd_admin_session"
	// CSRFHeader carries the session's CSRF token on every request that changes something.
	CSRFHeader = "X-CSRF-Token"
	// DefaultIdleTTL is how long a session lives without being used; each use extends it (the
	// cookie is renewed once half of it has passed), up to DefaultMaxTTL after the sign-in.
	DefaultIdleTTL = 30 * time.Minute
	// DefaultMaxTTL is the longest a session lives, however busy; never longer than the token it
	// was made from.
	DefaultMaxTTL = 12 * time.Hour

	sessionKeyPurpose = "admin dashboard session v1"
	cookieVersion     = "v1"
)

// session is what the cookie says.
type session struct {
	ID     string `json:"sid"`
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"`
	Start  int64  `json:"iat"` // sign-in, unix seconds
	Exp    int64  `json:"exp"` // this cookie's end (idle timeout)
	End    int64  `json:"end"` // the session's hard end
}

var errNoSession = errors.New("not signed in")

type sessionCodec struct{ key []byte }

func (s sessionCodec) mac(msg string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s sessionCodec) encode(se session) (string, error) {
	raw, err := json.Marshal(se)
	if err != nil {
		return "", err
	}
	msg := cookieVersion + "." + base64.RawURLEncoding.EncodeToString(raw)
	return msg + "." + base64.RawURLEncoding.EncodeToString(s.mac(msg)), nil
}

// decode checks the value's MAC and times and returns its session.
func (s sessionCodec) decode(value string, now time.Time) (session, error) {
	var se session
	parts := strings.Split(value, ".")
	if len(parts) != 3 || parts[0] != cookieVersion {
		return se, errNoSession
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return se, errNoSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return se, errNoSession
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&se); err != nil || se.ID == "" {
		return session{}, errNoSession
	}
	if t := now.Unix(); t >= se.Exp || t >= se.End {
		return session{}, errors.New("session expired")
	}
	switch {
	case se.Role == admin.RoleAdmin && se.Tenant != "":
	case se.Role == admin.RoleOperator && se.Tenant == "":
	default:
		return session{}, errNoSession
	}
	return se, nil
}

// csrfToken is the session's CSRF token: a MAC of its id, so it needs no storage and changes with
// every sign-in.
func (s sessionCodec) csrfToken(se session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf." + se.ID))
}

// hmacEqual compares two tokens in constant time.
func hmacEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// secureRequest reports whether the browser reached the service over https: directly, through a
// proxy that says so, or because the service's public URL is https.
func (d *Handler) secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || d.publicHTTPS
}

// setCookie writes the session's cookie (an empty session clears it).
func (d *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, exp time.Time) {
	c := &http.Cookie{Name: CookieName, Value: value, Path: MountPath, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: d.secureRequest(r)}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = exp
		c.MaxAge = max(1, int(exp.Sub(d.now()).Seconds()))
	}
	http.SetCookie(w, c)
}

// sameOrigin reports whether a request that changes something comes from the dashboard's own
// pages: Sec-Fetch-Site, when the browser sends it, must be same-origin, and Origin, when present,
// the request's own host or the public URL's origin.
func (d *Handler) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return d.publicOrigin != "" && strings.EqualFold(origin, d.publicOrigin)
}
