package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/clvd/clvd/integrations"
)

func TestVerifySignatureVectors(t *testing.T) {
	cases := []struct {
		name, secret, body, header string
	}{
		// Computed outside Go: printf '%s' BODY | openssl dgst -sha256 -hmac SECRET -binary | base64
		{"openssl vector", "shpss_test", `{"id":820982911946154508,"total_price":"199.00"}`,
			"wy9I6llthsLB3e3JJpe3/RYZ0N0fVZiYexW5PEiIQKs="},
		// Shopify's docs publish the scheme but no secret/body/digest triple. This one is published by
		// SQLPage's tests of Shopify webhook validation (sqlpage.hmac(..., 'sha256-base64')), and the
		// openssl command above reproduces it.
		{"published vector", "test-webhook-secret", `{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}`,
			"QNyObTlKbMx2qDlPF/ZOZcBqg5OgPg+2oky3zldc0Gw="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := VerifySignature([]byte(c.secret), []byte(c.body), c.header); err != nil {
				t.Fatalf("valid signature refused: %v", err)
			}
			// Surrounding whitespace is how some proxies pass headers on; it is not part of the value.
			if err := VerifySignature([]byte(c.secret), []byte(c.body), " "+c.header+"\t"); err != nil {
				t.Fatalf("valid signature with whitespace refused: %v", err)
			}
			if err := VerifySignature([]byte(c.secret), []byte(c.body+" "), c.header); !errors.Is(err, integrations.ErrBadSignature) {
				t.Fatalf("altered body: got %v, want ErrBadSignature", err)
			}
			if err := VerifySignature([]byte(c.secret+"x"), []byte(c.body), c.header); !errors.Is(err, integrations.ErrBadSignature) {
				t.Fatalf("wrong secret: got %v, want ErrBadSignature", err)
			}
		})
	}
}

// sign computes the header with crypto/hmac directly, independently of VerifySignature's code path.
func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestVerifySignatureFailures(t *testing.T) {
	secret, body := "s3cret", `{"id":1}`
	good := sign(secret, body)
	if err := VerifySignature([]byte(secret), []byte(body), good); err != nil {
		t.Fatalf("independently computed signature refused: %v", err)
	}
	other := sign(secret, `{"id":2}`)
	cases := []struct {
		name, secret, header, wantMsg string
	}{
		{"missing", secret, "", "missing"},
		{"blank", secret, "   ", "missing"},
		{"not base64", secret, "%%%not-base64%%%", "base64"},
		{"hex instead of base64", secret, strings.Repeat("ab", 32), "SHA-256"}, // hex digits are base64 too, so it is the length that gives it away
		{"truncated digest", secret, base64.StdEncoding.EncodeToString([]byte("short")), "SHA-256"},
		{"other body's digest", secret, other, "does not match"},
		{"one bit flipped", secret, flipFirst(good), "does not match"},
		{"empty secret", "", good, "no Shopify signing secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature([]byte(c.secret), []byte(body), c.header)
			if !errors.Is(err, integrations.ErrBadSignature) {
				t.Fatalf("got %v, want ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("error %q does not say %q", err, c.wantMsg)
			}
		})
	}
}

func flipFirst(b64 string) string {
	raw, _ := base64.StdEncoding.DecodeString(b64)
	raw[0] ^= 1
	return base64.StdEncoding.EncodeToString(raw)
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("s3cret"), []byte(`{"id":1}`), "")
	f.Add([]byte("s3cret"), []byte(`{"id":1}`), sign("s3cret", `{"id":1}`))
	f.Add([]byte("test-webhook-secret"), []byte(`{"id":1234567890,"email":"customer@example.com","total_price":"123.45"}`),
		"QNyObTlKbMx2qDlPF/ZOZcBqg5OgPg+2oky3zldc0Gw=")
	f.Add([]byte{}, []byte{}, "====")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		err := VerifySignature(secret, body, header)
		if err != nil && !errors.Is(err, integrations.ErrBadSignature) {
			t.Fatalf("error does not wrap ErrBadSignature: %v", err)
		}
		correct := sign(string(secret), string(body))
		if err == nil {
			// Different texts can decode to the same bytes (base64 skips newlines and ignores padding
			// bits), so acceptance is checked on the decoded digest.
			got, decErr := base64.StdEncoding.DecodeString(strings.TrimSpace(header))
			want, _ := base64.StdEncoding.DecodeString(correct)
			if len(secret) == 0 || decErr != nil || !hmac.Equal(got, want) {
				t.Fatalf("accepted header %q; the valid digest is %q", header, correct)
			}
		}
		// The correct header must always pass for a non-empty secret.
		if len(secret) > 0 {
			if err := VerifySignature(secret, body, correct); err != nil {
				t.Fatalf("correct signature refused: %v", err)
			}
		}
	})
}
