package sidebar

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
)

func newVerifier(e *env, now time.Time) *zafVerifier {
	fetch := zendeskKeyFetcher(nil)
	clock := func() time.Time { return now }
	return &zafVerifier{keys: newKeyCache(fetch, clock, time.Hour), now: clock, leeway: 30 * time.Second}
}

// TestZendeskAppTokenVerification is the table of ways a ZAF JWT can be right or wrong.
func TestZendeskAppTokenVerification(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	pubPEM := zendesktest.PublicKeyPEM(&e.key.PublicKey)
	fakeHost := strings.TrimPrefix(e.fake.URL, "http://")
	claims := func(mutate func(map[string]any)) map[string]any {
		c := e.fake.AppClaims(testAppID, testInstallation, testAgent, now, 5*time.Minute)
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	rs256 := func(mutate func(map[string]any)) string { return e.token(t, now, mutate) }
	sign := func(method jwt.SigningMethod, key any, c map[string]any) string {
		s, err := jwt.NewWithClaims(method, jwt.MapClaims(c)).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	cases := []struct {
		name  string
		token string
		want  error // nil: accepted; else errors.Is must match (errAny: any error)
	}{
		{"good token", rs256(nil), nil},
		{"expired", rs256(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), jwt.ErrTokenExpired},
		{"expired within leeway", rs256(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }), nil},
		{"missing exp", rs256(func(c map[string]any) { delete(c, "exp") }), jwt.ErrTokenRequiredClaimMissing},
		{"wrong aud: another installation path", rs256(func(c map[string]any) { c["aud"] = e.fake.URL + "/api/v2/users/1.json" }), errWrongAudience},
		{"wrong aud: another account", rs256(func(c map[string]any) {
			c["aud"] = "https://evil.zendesk.com/api/v2/apps/installations/" + testInstallation + ".json"
		}), errWrongAudience},
		{"wrong aud: two audiences", rs256(func(c map[string]any) {
			c["aud"] = []string{e.fake.URL + "/api/v2/apps/installations/1.json", e.fake.URL + "/api/v2/apps/installations/2.json"}
		}), errWrongAudience},
		{"wrong iss", rs256(func(c map[string]any) { c["iss"] = "evil.zendesk.com" }), errWrongIssuer},
		{"no iss", rs256(func(c map[string]any) { delete(c, "iss") }), errWrongIssuer},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), errAny},
		{"HS256 keyed with the public key PEM", sign(jwt.SigningMethodHS256, pubPEM, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS256 signed by another key", sign(jwt.SigningMethodRS256, e.other, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS512 by the right key", sign(jwt.SigningMethodRS512, e.key, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"PS256 by the right key", sign(jwt.SigningMethodPS256, e.key, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"issued in the future", rs256(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }), jwt.ErrTokenUsedBeforeIssued},
		{"not valid yet", rs256(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() }), jwt.ErrTokenNotValidYet},
		{"no cnf.jku", rs256(func(c map[string]any) { delete(c, "cnf") }), errNoAppKeyURL},
		{"jku on another host", rs256(func(c map[string]any) {
			c["cnf"] = map[string]any{"jku": "https://keys.example.com/api/v2/apps/" + testAppID + "/public_key.pem"}
		}), errNoAppKeyURL},
		{"jku names an app Zendesk does not have", rs256(func(c map[string]any) {
			c["cnf"] = map[string]any{"jku": e.fake.URL + "/api/v2/apps/123/public_key.pem"}
		}), errUnknownApp},
		{"garbage", "not.a.jwt", errMalformed},
		{"empty", "", errNoToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newVerifier(e, now).verify(t.Context(), tc.token, e.tenant)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == nil:
				if got.AppID != testAppID || got.InstallationID != testInstallation || got.Claims.Issuer != fakeHost ||
					got.Claims.Subject != e.fake.URL+"/api/v2/users/"+testAgent+".json" || got.Claims.Context.Location != "ticket_sidebar" {
					t.Fatalf("verified token %+v, claims %+v", got, got.Claims)
				}
			case err == nil:
				t.Fatal("accepted")
			case tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// errAny marks a case where any refusal will do (alg "none" is refused before the claims are read).
var errAny = errors.New("any error")

func TestZendeskAppKeyCache(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	clock := now
	v := newVerifier(e, now)
	v.now = func() time.Time { return clock }
	v.keys.now = v.now

	for range 3 {
		if _, err := v.verify(t.Context(), e.token(t, clock, nil), e.tenant); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.AppKeyRequests(testAppID); n != 1 {
		t.Fatalf("%d key requests for 3 tokens, want 1 (cached)", n)
	}

	// A forged token naming an unknown app costs one call, then is refused from the cache.
	bogus := func() string {
		return e.token(t, clock, func(c map[string]any) {
			c["cnf"] = map[string]any{"jku": e.fake.URL + "/api/v2/apps/77/public_key.pem"}
		})
	}
	for range 3 {
		if _, err := v.verify(t.Context(), bogus(), e.tenant); !errors.Is(err, errUnknownApp) {
			t.Fatalf("unknown app: %v", err)
		}
	}
	if n := e.fake.AppKeyRequests("77"); n != 1 {
		t.Fatalf("%d key requests for an unknown app, want 1", n)
	}

	// Zendesk re-keys the app: a token signed with the new key verifies once the cached key is
	// older than a minute (one refetch), and not before.
	e.fake.AddApp(testAppID, e.other)
	clock = clock.Add(30 * time.Second)
	if _, err := v.verify(t.Context(), e.token(t, clock, nil), e.tenant); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("new key within a minute of the fetch: %v", err)
	}
	clock = clock.Add(time.Minute)
	if _, err := v.verify(t.Context(), e.token(t, clock, nil), e.tenant); err != nil {
		t.Fatalf("after re-keying: %v", err)
	}
	if n := e.fake.AppKeyRequests(testAppID); n != 2 {
		t.Fatalf("%d key requests after re-keying, want 2", n)
	}

	// After the TTL the key is fetched again.
	clock = clock.Add(2 * time.Hour)
	if _, err := v.verify(t.Context(), e.token(t, clock, nil), e.tenant); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.AppKeyRequests(testAppID); n != 3 {
		t.Fatalf("%d key requests after the TTL, want 3", n)
	}

	// Zendesk refusing the tenant's credentials is not the token's fault.
	bad := *e.tenant
	bad.Zendesk.APIToken = "revoked"
	if _, err := newVerifier(e, clock).verify(t.Context(), e.token(t, clock, nil), &bad); !errors.Is(err, errKeyUnavailable) {
		t.Fatalf("revoked credentials: %v, want errKeyUnavailable", err)
	}
}

func TestAppIDAndInstallationClaims(t *testing.T) {
	acct, _ := url.Parse("https://acme.zendesk.com")
	for jku, want := range map[string]string{
		"https://acme.zendesk.com/api/v2/apps/42/public_key.pem":      "42",
		"https://ACME.zendesk.com/api/v2/apps/42/public_key.pem":      "42",
		"http://acme.zendesk.com/api/v2/apps/42/public_key.pem":       "",
		"https://acme.zendesk.com/api/v2/apps/42/public_key.pem?x=1":  "",
		"https://acme.zendesk.com/api/v2/apps/4a/public_key.pem":      "",
		"https://acme.zendesk.com.evil.com/api/v2/apps/42/public_key": "",
		"https://u:p@acme.zendesk.com/api/v2/apps/42/public_key.pem":  "",
	} {
		got, err := appIDOf(jku, acct)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("appIDOf(%q) = %q, %v; want %q", jku, got, err, want)
		}
	}
	for aud, want := range map[string]string{
		"https://acme.zendesk.com/api/v2/apps/installations/7.json":  "7",
		"https://acme.zendesk.com/api/v2/apps/installations/7":       "7",
		"https://acme.zendesk.com/api/v2/apps/installations/x.json":  "",
		"https://other.zendesk.com/api/v2/apps/installations/7.json": "",
	} {
		got, err := installationOf(jwt.ClaimStrings{aud}, acct)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("installationOf(%q) = %q, %v; want %q", aud, got, err, want)
		}
	}
}
