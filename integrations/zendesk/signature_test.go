package zendesk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

// Zendesk's published verification example (developer.zendesk.com, "Verifying webhook
// authenticity"): the secret string is the HMAC key as is.
const (
	exampleSecret    = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="
	exampleBody      = `{"say": "hello"}`
	exampleTimestamp = "2021-07-25T10:00:00Z"
	exampleSignature = "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw="
)

func sign(secret, message string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(message))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	exampleTime, err := time.Parse(time.RFC3339, exampleTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	now := exampleTime.Add(time.Minute)
	const tolerance = 5 * time.Minute
	// Relative to the receiver's clock, which is what the tolerance is measured against.
	sixMinOld := now.Add(-6 * time.Minute).Format(time.RFC3339)
	sixMinAhead := now.Add(6 * time.Minute).Format(time.RFC3339)

	tests := []struct {
		name      string
		secret    string
		timestamp string
		body      string
		signature string
		wantErr   string // "" means the signature verifies; otherwise a substring of the error
	}{
		{name: "Zendesk's published example (body+timestamp order)",
			secret: exampleSecret, timestamp: exampleTimestamp, body: exampleBody, signature: exampleSignature},
		{name: "timestamp+body order, as the docs state it",
			secret: exampleSecret, timestamp: exampleTimestamp, body: exampleBody,
			signature: sign(exampleSecret, exampleTimestamp+exampleBody)},
		{name: "empty body",
			secret: exampleSecret, timestamp: exampleTimestamp, body: "",
			signature: sign(exampleSecret, exampleTimestamp)},
		{name: "wrong secret",
			secret: "another-secret", timestamp: exampleTimestamp, body: exampleBody, signature: exampleSignature,
			wantErr: "mismatch"},
		{name: "tampered body",
			secret: exampleSecret, timestamp: exampleTimestamp, body: `{"say": "hellO"}`, signature: exampleSignature,
			wantErr: "mismatch"},
		{name: "timestamp swapped for a fresher one",
			secret: exampleSecret, timestamp: "2021-07-25T10:00:30Z", body: exampleBody, signature: exampleSignature,
			wantErr: "mismatch"},
		{name: "missing signature header",
			secret: exampleSecret, timestamp: exampleTimestamp, body: exampleBody, signature: "",
			wantErr: "missing signature"},
		{name: "missing timestamp header",
			secret: exampleSecret, timestamp: "", body: exampleBody, signature: exampleSignature,
			wantErr: "missing timestamp"},
		{name: "signature not base64",
			secret: exampleSecret, timestamp: exampleTimestamp, body: exampleBody, signature: "not base64!!",
			wantErr: "not base64"},
		{name: "hex signature instead of base64",
			secret: exampleSecret, timestamp: exampleTimestamp, body: exampleBody,
			signature: "b510d217b51163c06c0c395a05b43b147bb4e75664f9a001d0d28c3e77ed7a31",
			wantErr:   "mismatch"},
		{name: "timestamp six minutes old",
			secret: exampleSecret, timestamp: sixMinOld, body: exampleBody,
			signature: sign(exampleSecret, sixMinOld+exampleBody),
			wantErr:   "stale timestamp"},
		{name: "timestamp six minutes in the future",
			secret: exampleSecret, timestamp: sixMinAhead, body: exampleBody,
			signature: sign(exampleSecret, sixMinAhead+exampleBody),
			wantErr:   "stale timestamp"},
		{name: "unparsable timestamp",
			secret: exampleSecret, timestamp: "yesterday", body: exampleBody,
			signature: sign(exampleSecret, "yesterday"+exampleBody),
			wantErr:   "not an RFC 3339 time"},
		{name: "unix seconds timestamp",
			secret: exampleSecret, timestamp: "1627207200", body: exampleBody,
			signature: sign(exampleSecret, "1627207200"+exampleBody),
			wantErr:   "not an RFC 3339 time"},
		{name: "no secret configured",
			secret: "", timestamp: exampleTimestamp, body: exampleBody, signature: sign("", exampleTimestamp+exampleBody),
			wantErr: "no webhook signing secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature([]byte(tc.secret), tc.timestamp, []byte(tc.body), tc.signature, now, tolerance)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifySignature: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifySignature: nil, want an error containing %q", tc.wantErr)
			}
			if !errors.Is(err, integrations.ErrBadSignature) {
				t.Errorf("error %v does not wrap ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q echoes the secret", err)
			}
		})
	}
}

func TestVerifySignatureToleranceEdges(t *testing.T) {
	base, _ := time.Parse(time.RFC3339, exampleTimestamp)
	sig := exampleSignature
	// Exactly at the tolerance is still accepted, one second more is not.
	if err := VerifySignature([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), sig, base.Add(5*time.Minute), 5*time.Minute); err != nil {
		t.Errorf("at the tolerance: %v", err)
	}
	if err := VerifySignature([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), sig, base.Add(5*time.Minute+time.Second), 5*time.Minute); err == nil {
		t.Error("one second past the tolerance verified")
	}
	// A non-positive tolerance falls back to the 5-minute default instead of rejecting everything.
	if err := VerifySignature([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), sig, base.Add(4*time.Minute), 0); err != nil {
		t.Errorf("zero tolerance, 4 minutes: %v", err)
	}
	if err := VerifySignature([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), sig, base.Add(6*time.Minute), 0); err == nil {
		t.Error("zero tolerance, 6 minutes: verified")
	}
}
