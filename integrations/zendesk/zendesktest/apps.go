package zendesktest

// The fake's apps endpoint, and the ZAF JWTs Zendesk signs for a server-side app with
// "signedUrls": true.
//
//	GET /api/v2/apps/{app_id}/public_key.pem     the app's RSA public key, PEM (PKIX "PUBLIC KEY")
//
// AddApp registers an app with its signing key; SignAppToken signs a token the way Zendesk does
// (RS256) and AppClaims gives the claims Zendesk puts in it, so a test can change one and sign:
//
//	iss      the account's host, e.g. "acme.zendesk.com" (here the fake's host:port)
//	aud      the app installation's URL: {base}/api/v2/apps/installations/{installation_id}.json
//	sub      the agent's user URL: {base}/api/v2/users/{user_id}.json
//	cnf.jku  where the app's public key is: {base}/api/v2/apps/{app_id}/public_key.pem
//	iat, nbf, exp, qsh, context {product, location}
//
// The claim set follows the Apps framework's JWT claims as read from Zendesk's documentation and
// from public integrations that check them; the qsh value here is the fake's own (a hash of nothing).

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"
)

// appsState is the apps part of the fake, guarded by Server.mu like the rest.
type appsState struct {
	keys map[string]*rsa.PrivateKey // app id → signing key
}

// The apps state lives beside the Server, like the install state (see install.go).
var appsStates = struct {
	sync.Mutex
	m map[weak.Pointer[Server]]*appsState
}{m: map[weak.Pointer[Server]]*appsState{}}

func (s *Server) apps() *appsState {
	key := weak.Make(s)
	appsStates.Lock()
	defer appsStates.Unlock()
	st, ok := appsStates.m[key]
	if !ok {
		st = &appsState{keys: map[string]*rsa.PrivateKey{}}
		appsStates.m[key] = st
		runtime.AddCleanup(s, func(k weak.Pointer[Server]) {
			appsStates.Lock()
			delete(appsStates.m, k)
			appsStates.Unlock()
		}, key)
	}
	return st
}

// AddApp registers (or re-keys) app appID, whose ZAF JWTs are signed with key.
func (s *Server) AddApp(appID string, key *rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps().keys[appID] = key
}

// AppClaims returns the claims Zendesk puts in a ZAF JWT of app appID, installed as
// installationID, for agent userID, issued at now and valid for ttl. Change them and pass them to
// SignAppToken to forge a wrong one.
func (s *Server) AppClaims(appID, installationID, userID string, now time.Time, ttl time.Duration) map[string]any {
	u, _ := url.Parse(s.URL)
	return map[string]any{
		"iss": u.Host,
		"aud": s.URL + "/api/v2/apps/installations/" + installationID + ".json",
		"sub": s.URL + "/api/v2/users/" + userID + ".json",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"cnf": map[string]any{"jku": s.URL + "/api/v2/apps/" + appID + "/public_key.pem"},
		"qsh": hex.EncodeToString(sha256.New().Sum(nil)),
		"context": map[string]any{
			"product":  "support",
			"location": "ticket_sidebar",
		},
	}
}

// SignAppToken signs claims with app appID's key, RS256, as Zendesk does. The app must have been
// added with AddApp.
func (s *Server) SignAppToken(appID string, claims map[string]any) (string, error) {
	s.mu.Lock()
	key := s.apps().keys[appID]
	s.mu.Unlock()
	if key == nil {
		return "", fmt.Errorf("zendesktest: no app %s (AddApp first)", appID)
	}
	return SignRS256(key, claims)
}

// SignRS256 builds a compact JWT {"alg":"RS256","typ":"JWT"} over claims signed with key.
func SignRS256(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// PublicKeyPEM is key's public half as a PKIX "PUBLIC KEY" PEM block.
func PublicKeyPEM(key *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// handleApps serves the apps endpoint; ok=false leaves the request to server.go's routes. It runs
// with s.mu held, after auth.
func (s *Server) handleApps(r *http.Request, segs []string) (answer, bool) {
	if len(segs) != 3 || segs[0] != "apps" || segs[2] != "public_key.pem" {
		return answer{}, false
	}
	if r.Method != http.MethodGet {
		return methodNotAllowed("GET"), true
	}
	id, ok := jsonID(segs[1] + ".json")
	if !ok {
		return errorAnswer(http.StatusNotFound, "InvalidEndpoint", "Not found"), true
	}
	key := s.apps().keys[id]
	if key == nil {
		return errorAnswer(http.StatusNotFound, "RecordNotFound", "Not found"), true
	}
	return answer{status: http.StatusOK, header: http.Header{"Content-Type": {"application/x-pem-file"}},
		body: PublicKeyPEM(&key.PublicKey)}, true
}

// AppKeyRequests counts the public key requests the fake received for app appID.
func (s *Server) AppKeyRequests(appID string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/apps/"+appID+"/public_key.pem") {
			n++
		}
	}
	return n
}
