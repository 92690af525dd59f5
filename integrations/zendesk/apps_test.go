package zendesk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
)

func TestAppPublicKey(t *testing.T) {
	const email, token = "agent@acme.example", "app-key-T0KEN"
	fake := zendesktest.New(t, email, token)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddApp("4242", key)
	c, err := NewClient(fake.URL, email, token, nil)
	if err != nil {
		t.Fatal(err)
	}

	got, err := c.AppPublicKey(t.Context(), "4242")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(&key.PublicKey) {
		t.Fatal("AppPublicKey returned another key")
	}
	reqs := fake.Requests()
	if last := reqs[len(reqs)-1]; last.Method != http.MethodGet || last.Path != "/api/v2/apps/4242/public_key.pem" {
		t.Fatalf("request %s %s", last.Method, last.Path)
	}

	if _, err := c.AppPublicKey(t.Context(), "999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown app: %v, want ErrNotFound", err)
	}
	if _, err := c.AppPublicKey(t.Context(), "../users/1"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("path in app id: %v, want ErrInvalidInput", err)
	}
	bad, err := NewClient(fake.URL, email, "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.AppPublicKey(t.Context(), "4242"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want ErrUnauthorized", err)
	}
	fake.FailNext(1, http.StatusTooManyRequests)
	var rl *RateLimitError
	if _, err := c.AppPublicKey(t.Context(), "4242"); !errors.As(err, &rl) {
		t.Fatalf("429: %v, want *RateLimitError", err)
	}

	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddApp("77", weak)
	if _, err := c.AppPublicKey(t.Context(), "77"); !errors.Is(err, ErrBadPublicKey) {
		t.Fatalf("1024-bit key: %v, want ErrBadPublicKey", err)
	}
}

func TestAppPublicKeyPEMParsing(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})
	if got, err := ParseRSAPublicKeyPEM(pkcs1); err != nil || !got.Equal(&key.PublicKey) {
		t.Fatalf("PKCS#1: %v", err)
	}
	if got, err := ParseRSAPublicKeyPEM(zendesktest.PublicKeyPEM(&key.PublicKey)); err != nil || !got.Equal(&key.PublicKey) {
		t.Fatalf("PKIX: %v", err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"EC key":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"private key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"garbage DER": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := ParseRSAPublicKeyPEM(data); !errors.Is(err, ErrBadPublicKey) {
			t.Errorf("%s: %v, want ErrBadPublicKey", name, err)
		}
	}
}
