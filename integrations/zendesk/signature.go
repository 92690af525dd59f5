// Package zendesk translates Zendesk into clvd's neutral vocabulary: it verifies and parses the
// webhooks Zendesk sends about tickets (event subscriptions and trigger "Notify webhook" actions)
// and writes clvd's managed tags back through Zendesk's REST API.
//
// Nothing here knows about scoring or storage; the webhook handler and the worker call in.
package zendesk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/clvd/clvd/integrations"
)

// Headers Zendesk puts on every signed webhook request.
const (
	HeaderSignature = "X-Zendesk-Webhook-Signature"
	HeaderTimestamp = "X-Zendesk-Webhook-Signature-Timestamp"
)

// DefaultSignatureTolerance is how far a signature timestamp may be from the receiver's clock. It
// is used when VerifySignature is given a tolerance <= 0, because a zero window would reject every
// real delivery: that is a misconfiguration, not a policy.
const DefaultSignatureTolerance = 5 * time.Minute

// VerifySignature checks a Zendesk webhook signature: the X-Zendesk-Webhook-Signature header must
// be base64(HMAC-SHA256(secret, TIMESTAMP+BODY)), TIMESTAMP being the
// X-Zendesk-Webhook-Signature-Timestamp header exactly as sent. The secret is used as raw bytes
// (the signing secret string as Zendesk shows it, not base64-decoded).
//
// BODY+TIMESTAMP is accepted too: Zendesk's "Verifying webhook authenticity" page states
// TIMESTAMP+BODY, but its published worked example (secret HRkRd4Be…, body {"say": "hello"})
// only verifies with BODY+TIMESTAMP, so a receiver that accepts one order only may reject real
// deliveries. Both orders are keyed by the same secret, so accepting both does not let anyone
// without the secret forge a request.
//
// The timestamp must be RFC 3339 and within tolerance of now in either direction, which bounds
// how long a captured request can be replayed. Errors wrap integrations.ErrBadSignature and say
// why (missing header, undecodable signature, unparsable or stale timestamp, mismatch); they never
// contain the secret or the expected signature.
func VerifySignature(secret []byte, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		// Fail closed: with an empty key anyone can compute a "valid" signature.
		return badSignature("no webhook signing secret is configured")
	}
	if signature == "" {
		return badSignature("missing signature: no %s header", HeaderSignature)
	}
	if timestamp == "" {
		return badSignature("missing timestamp: no %s header", HeaderTimestamp)
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return badSignature("%s is not base64", HeaderSignature)
	}
	ts, err := time.Parse(time.RFC3339, timestamp)
	if err != nil {
		// %.64q: the header is attacker-controlled; quote it and keep the message short.
		return badSignature("%s %.64q is not an RFC 3339 time", HeaderTimestamp, timestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	if skew := now.Sub(ts); skew > tolerance || skew < -tolerance {
		return badSignature("stale timestamp: %s is %s away from now, more than the %s allowed",
			ts.UTC().Format(time.RFC3339), skew.Abs().Round(time.Second), tolerance)
	}

	// The documented order (timestamp, then body) first; the other order, which Zendesk's published
	// example uses, only when that fails. Each comparison is constant-time; which order matched is not
	// a secret (the sender chose it), so trying the second only on a mismatch leaks nothing.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write(body)
	if hmac.Equal(got, mac.Sum(nil)) {
		return nil
	}
	mac.Reset()
	mac.Write(body)
	mac.Write([]byte(timestamp))
	if hmac.Equal(got, mac.Sum(nil)) {
		return nil
	}
	return badSignature("signature mismatch")
}

func badSignature(format string, args ...any) error {
	return fmt.Errorf("%w: %s", integrations.ErrBadSignature, fmt.Sprintf(format, args...))
}
