package orders

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clvd/clvd/integrations"
)

// Headers of a signed delivery.
const (
	HeaderTimestamp = "X-CLV-Timestamp" // unix seconds, decimal
	HeaderSignature = "X-CLV-Signature" // one or more comma-separated "v1=<hex>" entries
)

// DefaultTolerance is the clock difference VerifySignature allows when given a tolerance ≤ 0. Five
// minutes absorbs ordinary clock skew and queueing while keeping a captured request's replay window short.
const DefaultTolerance = 5 * time.Minute

// signatureScheme prefixes each signature. A version tag lets a future scheme (another hash, say) be
// sent alongside v1 during a migration; verifiers skip entries whose scheme they do not know.
const signatureScheme = "v1"

// Sign returns the signature header value for body sent at timestamp (unix seconds as a decimal
// string): "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). The timestamp is inside the MAC so
// that a captured request cannot be replayed later with a fresh timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signatureScheme + "=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a delivery signed with Sign. header may hold several comma-separated entries
// ("v1=<hex>,v1=<hex>"): a sender rotating its secret signs with the old and the new one until every
// receiver has the new one, and any matching v1 entry passes. Entries of other schemes are skipped.
// timestamp must be unix seconds within tolerance of now in either direction (DefaultTolerance when
// tolerance ≤ 0); the future bound matters too, or a sender with a fast clock would mint signatures
// that stay replayable for as long as its clock is ahead.
//
// Every failure wraps integrations.ErrBadSignature and says which check failed. The signature is
// checked before the time, so "stale" means the secret was right and the clock or a replay is the issue.
func VerifySignature(secret []byte, timestamp string, body []byte, header string, now time.Time, tolerance time.Duration) error {
	// An empty key still yields a valid HMAC, one anybody can compute: refuse rather than accept forgeries.
	if len(secret) == 0 {
		return fmt.Errorf("%w: no signing secret configured", integrations.ErrBadSignature)
	}
	timestamp = strings.TrimSpace(timestamp)
	if timestamp == "" {
		return fmt.Errorf("%w: header %s is missing", integrations.ErrBadSignature, HeaderTimestamp)
	}
	sent, err := parseUnix(timestamp)
	if err != nil {
		return fmt.Errorf("%w: header %s: %v", integrations.ErrBadSignature, HeaderTimestamp, err)
	}
	if strings.TrimSpace(header) == "" {
		return fmt.Errorf("%w: header %s is missing", integrations.ErrBadSignature, HeaderSignature)
	}

	want := mac(secret, timestamp, body)
	v1, badHex := 0, 0
	matched := false
	for _, entry := range strings.Split(header, ",") {
		scheme, value, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || strings.TrimSpace(scheme) != signatureScheme {
			continue
		}
		v1++
		got, err := hex.DecodeString(strings.TrimSpace(value))
		if err != nil {
			badHex++
			continue
		}
		// hmac.Equal is constant-time, so timing does not reveal how close a forged entry came.
		if hmac.Equal(got, want) {
			matched = true
			break
		}
	}
	switch {
	case v1 == 0:
		return fmt.Errorf("%w: header %s has no %s= entry", integrations.ErrBadSignature, HeaderSignature, signatureScheme)
	case !matched && badHex == v1:
		return fmt.Errorf("%w: header %s: %s signature is not hexadecimal", integrations.ErrBadSignature, HeaderSignature, signatureScheme)
	case !matched:
		return fmt.Errorf("%w: header %s matches neither the body nor the timestamp (wrong secret, altered body, or the timestamp is not the one that was signed)",
			integrations.ErrBadSignature, HeaderSignature)
	}

	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// time.Time.Sub saturates instead of overflowing, so absurd timestamps still compare correctly.
	age := now.Sub(time.Unix(sent, 0))
	switch {
	case age > tolerance:
		return fmt.Errorf("%w: header %s is %s old, more than the %s allowed (replayed request, or the sender's clock is behind)",
			integrations.ErrBadSignature, HeaderTimestamp, age.Truncate(time.Second), tolerance)
	case age < -tolerance:
		return fmt.Errorf("%w: header %s is %s in the future, more than the %s allowed (the sender's clock is ahead)",
			integrations.ErrBadSignature, HeaderTimestamp, (-age).Truncate(time.Second), tolerance)
	}
	return nil
}

// parseUnix accepts only plain decimal digits: signs, spaces and fractions would let two different
// strings name the same second, and the string, not the number, is what the MAC covers.
func parseUnix(s string) (int64, error) {
	if len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not unix seconds", integrations.Clip(s))
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not unix seconds", integrations.Clip(s))
	}
	return v, nil
}
