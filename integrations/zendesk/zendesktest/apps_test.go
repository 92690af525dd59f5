package zendesktest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAppPublicKeyAndToken(t *testing.T) {
	s := New(t, adminEmail, adminToken)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.AddApp("123", key)

	status, body := do(t, s, http.MethodGet, "/api/v2/apps/123/public_key.pem", "")
	if status != http.StatusOK {
		t.Fatalf("public key: %d %s", status, body)
	}
	block, _ := pem.Decode([]byte(body))
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("not a PUBLIC KEY PEM: %s", body)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil || !key.PublicKey.Equal(pub) {
		t.Fatalf("served key differs: %v", err)
	}
	if status, _ := do(t, s, http.MethodGet, "/api/v2/apps/999/public_key.pem", ""); status != http.StatusNotFound {
		t.Fatalf("unknown app: %d", status)
	}
	if status, _ := do(t, s, http.MethodPost, "/api/v2/apps/123/public_key.pem", ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", status)
	}
	resp, err := http.Get(s.URL + "/api/v2/apps/123/public_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", resp.StatusCode)
	}
	if s.AppKeyRequests("123") != 2 { // the GETs, refused or not; not the POST
		t.Fatalf("AppKeyRequests = %d, want 2", s.AppKeyRequests("123"))
	}

	now := time.Unix(1_700_000_000, 0)
	claims := s.AppClaims("123", "77", "5", now, 5*time.Minute)
	tok, err := s.SignAppToken("123", claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var header map[string]string
	var payload map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(h, &header) != nil || header["alg"] != "RS256" || json.Unmarshal(p, &payload) != nil {
		t.Fatalf("header %s payload %s", h, p)
	}
	host := strings.TrimPrefix(s.URL, "http://")
	if payload["iss"] != host || payload["aud"] != s.URL+"/api/v2/apps/installations/77.json" ||
		payload["exp"] != float64(now.Add(5*time.Minute).Unix()) ||
		payload["cnf"].(map[string]any)["jku"] != s.URL+"/api/v2/apps/123/public_key.pem" {
		t.Fatalf("payload %v", payload)
	}
	if _, err := s.SignAppToken("nope", claims); err == nil {
		t.Fatal("signed for an unknown app")
	}
}
