package orders

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

// The vector was computed outside Go, the way README.md tells senders to:
//
//	printf '%s.%s' 1762000000 "$BODY" | openssl dgst -sha256 -hmac clvd-test-secret -hex
const (
	vectorBody      = `{"order_id":"A-1001","email":"ana@example.com","created_at":"2026-11-01T10:00:00Z","amount":"59.90","currency":"EUR","status":"paid"}`
	vectorTimestamp = "1762000000"
	vectorSecret    = "clvd-test-secret"
	vectorHeader    = "v1=dd64de24d70e2ae862a8756bc0e75dc9a3a8856bca517869e418f2431645d4e2"
	// The same body and timestamp signed with "clvd-old-secret".
	vectorOldHeader = "v1=7467b8d62db8bc98b627bb24ac5bb88065d210908c1d00bcf361076abd69e7db"
)

var vectorTime = time.Unix(1762000000, 0)

func TestSignKnownVector(t *testing.T) {
	if got := Sign([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody)); got != vectorHeader {
		t.Fatalf("Sign = %s, want %s", got, vectorHeader)
	}
	if got := Sign([]byte("clvd-old-secret"), vectorTimestamp, []byte(vectorBody)); got != vectorOldHeader {
		t.Fatalf("Sign = %s, want %s", got, vectorOldHeader)
	}
	if err := VerifySignature([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), vectorHeader, vectorTime, time.Minute); err != nil {
		t.Fatalf("known vector refused: %v", err)
	}
}

// The vector's body is also the repository README's quick-start order, so it must parse.
func TestVectorBodyParses(t *testing.T) {
	ev, err := ParseOrder([]byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Order.OrderID != "A-1001" || ev.Order.TotalMinor != 5990 || ev.Order.Email != "ana@example.com" {
		t.Fatalf("got %+v", *ev.Order)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, body := range []string{"", "{}", Example, strings.Repeat("x", 1<<16)} {
		h := Sign([]byte("k"), ts, []byte(body))
		if err := VerifySignature([]byte("k"), ts, []byte(body), h, now, time.Minute); err != nil {
			t.Fatalf("round trip of %d-byte body failed: %v", len(body), err)
		}
	}
}

func TestVerifySignatureRotation(t *testing.T) {
	cases := []struct{ name, header string }{
		{"new first", vectorHeader + "," + vectorOldHeader},
		{"new second", vectorOldHeader + "," + vectorHeader},
		{"spaces around entries", " " + vectorOldHeader + " ,  " + vectorHeader + " "},
		{"unknown scheme skipped", "v0=deadbeef,v2=abc," + vectorHeader},
		{"a garbled entry does not spoil a good one", "v1=zz," + vectorHeader},
		{"upper-case hex", "v1=" + strings.ToUpper(strings.TrimPrefix(vectorHeader, "v1="))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := VerifySignature([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), c.header, vectorTime, time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The old secret's receiver accepts the same rotated header.
	if err := VerifySignature([]byte("clvd-old-secret"), vectorTimestamp, []byte(vectorBody), vectorHeader+","+vectorOldHeader, vectorTime, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySignatureFailures(t *testing.T) {
	tol := 5 * time.Minute
	cases := []struct {
		name      string
		secret    string
		timestamp string
		body      string
		header    string
		now       time.Time
		tolerance time.Duration
		wantMsg   string
	}{
		{"empty secret", "", vectorTimestamp, vectorBody, vectorHeader, vectorTime, tol, "no signing secret"},
		{"missing timestamp", vectorSecret, "", vectorBody, vectorHeader, vectorTime, tol, "X-CLV-Timestamp is missing"},
		{"timestamp not a number", vectorSecret, "yesterday", vectorBody, vectorHeader, vectorTime, tol, "not unix seconds"},
		{"timestamp with sign", vectorSecret, "+1762000000", vectorBody, vectorHeader, vectorTime, tol, "not unix seconds"},
		{"timestamp fractional", vectorSecret, "1762000000.5", vectorBody, vectorHeader, vectorTime, tol, "not unix seconds"},
		{"timestamp in milliseconds", vectorSecret, "1762000000000", vectorBody,
			Sign([]byte(vectorSecret), "1762000000000", []byte(vectorBody)), vectorTime, tol, "in the future"},
		{"timestamp overflowing int64", vectorSecret, "99999999999999999999", vectorBody, vectorHeader, vectorTime, tol, "not unix seconds"},
		{"missing header", vectorSecret, vectorTimestamp, vectorBody, "", vectorTime, tol, "X-CLV-Signature is missing"},
		{"no v1 entry", vectorSecret, vectorTimestamp, vectorBody, "v2=" + strings.TrimPrefix(vectorHeader, "v1="), vectorTime, tol, "no v1= entry"},
		{"bare hex without scheme", vectorSecret, vectorTimestamp, vectorBody, strings.TrimPrefix(vectorHeader, "v1="), vectorTime, tol, "no v1= entry"},
		{"bad hex", vectorSecret, vectorTimestamp, vectorBody, "v1=not-hex-at-all", vectorTime, tol, "not hexadecimal"},
		{"odd-length hex", vectorSecret, vectorTimestamp, vectorBody, vectorHeader[:len(vectorHeader)-1], vectorTime, tol, "not hexadecimal"},
		{"truncated digest", vectorSecret, vectorTimestamp, vectorBody, vectorHeader[:len(vectorHeader)-2], vectorTime, tol, "matches neither"},
		{"wrong secret", "other", vectorTimestamp, vectorBody, vectorHeader, vectorTime, tol, "matches neither"},
		{"altered body", vectorSecret, vectorTimestamp, vectorBody + " ", vectorHeader, vectorTime, tol, "matches neither"},
		{"timestamp swapped after signing", vectorSecret, "1762000001", vectorBody, vectorHeader, vectorTime, tol, "matches neither"},
		{"only the old secret's entry", vectorSecret, vectorTimestamp, vectorBody, vectorOldHeader, vectorTime, tol, "matches neither"},
		{"stale", vectorSecret, vectorTimestamp, vectorBody, vectorHeader, vectorTime.Add(tol + time.Second), tol, "old"},
		{"future", vectorSecret, vectorTimestamp, vectorBody, vectorHeader, vectorTime.Add(-tol - time.Second), tol, "in the future"},
		{"default tolerance when zero", vectorSecret, vectorTimestamp, vectorBody, vectorHeader, vectorTime.Add(DefaultTolerance + time.Second), 0, "old"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature([]byte(c.secret), c.timestamp, []byte(c.body), c.header, c.now, c.tolerance)
			if !errors.Is(err, integrations.ErrBadSignature) {
				t.Fatalf("got %v, want ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("error %q does not say %q", err, c.wantMsg)
			}
		})
	}
}

func TestVerifySignatureToleranceEdges(t *testing.T) {
	tol := 5 * time.Minute
	for _, skew := range []time.Duration{0, tol, -tol, time.Second, -time.Second} {
		if err := VerifySignature([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), vectorHeader, vectorTime.Add(skew), tol); err != nil {
			t.Errorf("skew %s within tolerance refused: %v", skew, err)
		}
	}
	// A tolerance of zero means the default, not "exactly now".
	if err := VerifySignature([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), vectorHeader, vectorTime.Add(time.Minute), 0); err != nil {
		t.Errorf("zero tolerance should mean %s: %v", DefaultTolerance, err)
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), vectorHeader, int64(0))
	f.Add([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody), vectorOldHeader+","+vectorHeader, int64(299))
	f.Add([]byte("k"), "0", []byte{}, "v1=,v1", int64(-1<<62))
	f.Add([]byte{}, "99999999999999999", []byte("{}"), "v1=00", int64(1<<62))
	f.Fuzz(func(t *testing.T, secret []byte, ts string, body []byte, header string, skewSeconds int64) {
		now := vectorTime.Add(time.Duration(skewSeconds) * time.Second)
		err := VerifySignature(secret, ts, body, header, now, time.Minute)
		if err != nil && !errors.Is(err, integrations.ErrBadSignature) {
			t.Fatalf("error does not wrap ErrBadSignature: %v", err)
		}
		// What Sign produces must verify at the signing time, whatever the inputs, when the timestamp is
		// well-formed and the secret non-empty.
		if sec, perr := strconv.ParseInt(ts, 10, 64); perr == nil && len(ts) <= 18 && len(secret) > 0 && sec >= 0 && ts == strconv.FormatInt(sec, 10) {
			if err := VerifySignature(secret, ts, body, Sign(secret, ts, body), time.Unix(sec, 0), time.Minute); err != nil {
				t.Fatalf("Sign output refused: %v", err)
			}
		}
	})
}
