package zendesk

// Zendesk apps: the call a server-side app makes to check the JWT Zendesk signs when it loads the
// app's page with "signedUrls": true.
//
// Zendesk's "Get App Public Key" (Apps API) is GET /api/v2/apps/{app_id}/public_key.pem: the PEM
// public half of the RSA key Zendesk signs that app's ZAF JWTs with (RS256). The answer is PEM text,
// not JSON, so this file sends its own request rather than going through do, but classifies the
// answer the same way (401/403 ErrUnauthorized, 404 ErrNotFound, 429 *RateLimitError, other
// non-2xx *APIError).

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MinAppKeyBits is the smallest RSA key AppPublicKey accepts.
const MinAppKeyBits = 2048

// maxPEMBytes bounds the public key answer: a 4096-bit key's PEM is under 1 KiB.
const maxPEMBytes = 16 << 10

// ErrBadPublicKey: Zendesk answered 2xx, but not with a usable RSA public key.
var ErrBadPublicKey = errors.New("not a usable RSA public key")

// AppPublicKey fetches the public key Zendesk signs app appID's JWTs with:
// GET /api/v2/apps/{app_id}/public_key.pem. The PEM may be a PKIX "PUBLIC KEY" or a PKCS#1 "RSA
// PUBLIC KEY"; it must be RSA of at least MinAppKeyBits bits, else the error wraps ErrBadPublicKey.
func (c *Client) AppPublicKey(ctx context.Context, appID string) (*rsa.PublicKey, error) {
	id, err := checkID("app", appID)
	if err != nil {
		return nil, err
	}
	path := "/api/v2/apps/" + id + "/public_key.pem"
	where := http.MethodGet + " " + path
	u := *c.base
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("zendesk: %s: %w", where, err)
	}
	req.SetBasicAuth(c.email+"/token", c.token)
	req.Header.Set("Accept", "application/x-pem-file, text/plain;q=0.9, */*;q=0.5")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("zendesk: %s: %w", where, err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxPEMBytes+1))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code == http.StatusTooManyRequests:
		return nil, fmt.Errorf("zendesk: %s: %w", where, &RateLimitError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now())})
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, fmt.Errorf("zendesk: %s: HTTP %d: %w", where, code, ErrUnauthorized)
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("zendesk: %s: HTTP 404: %w", where, ErrNotFound)
	default:
		return nil, fmt.Errorf("zendesk: %s: %w", where, &APIError{Status: code, Body: c.errorBody(data)})
	}
	if readErr != nil {
		return nil, fmt.Errorf("zendesk: %s: reading response: %w", where, readErr)
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("zendesk: %s: %w: answer larger than %d bytes", where, ErrBadPublicKey, maxPEMBytes)
	}
	key, err := ParseRSAPublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("zendesk: %s: %w", where, err)
	}
	return key, nil
}

// ParseRSAPublicKeyPEM reads the first PEM block of data as an RSA public key (PKIX "PUBLIC KEY" or
// PKCS#1 "RSA PUBLIC KEY") of at least MinAppKeyBits bits. Errors wrap ErrBadPublicKey.
func ParseRSAPublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadPublicKey)
	}
	var key *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPublicKey, err)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: a %T, not RSA", ErrBadPublicKey, pub)
		}
		key = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPublicKey, err)
		}
		key = k
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrBadPublicKey, block.Type)
	}
	if bits := key.N.BitLen(); bits < MinAppKeyBits {
		return nil, fmt.Errorf("%w: %d-bit key, want at least %d", ErrBadPublicKey, bits, MinAppKeyBits)
	}
	return key, nil
}
