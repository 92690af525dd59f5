package zendesk

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

var (
	validStatuses     = map[string]bool{"": true, "new": true, "open": true, "pending": true, "hold": true, "solved": true, "closed": true}
	validPriorities   = map[string]bool{"": true, "low": true, "normal": true, "high": true, "urgent": true}
	validSatisfaction = map[string]bool{"": true, "good": true, "bad": true, "offered": true, "unoffered": true}
	validTypes        = map[string]bool{
		integrations.TicketCreated: true, integrations.TicketUpdated: true, integrations.TicketStatusChanged: true,
		integrations.TicketPriorityChanged: true, integrations.TicketCommentAdded: true, integrations.TicketSatisfactionChanged: true,
	}
)

func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{
		subscriptionPayload("ticket.created", `{}`),
		subscriptionPayload("ticket.status_changed", `{"current":"SOLVED","previous":"OPEN"}`),
		subscriptionPayload("ticket.priority_changed", `{"current":"HIGH","previous":null}`),
		subscriptionPayload("ticket.comment_added", `{"comment":{"id":"1","body":"x","is_public":true}}`),
		subscriptionPayload("ticket.tags_changed", `{"added":["a"],"removed":[]}`),
		`{"type":"zen:event-type:user.created","id":"u","time":"2025-01-01T00:00:00Z","detail":{"id":"1"}}`,
		`{"ticket_id":"1","status":"Open","priority":"","satisfaction":"Good, I'm satisfied","requester_id":"2","requester_email":"a@b.c","tags":"x y","created_at":"2025-01-01T00:00Z","updated_at":""}`,
		`{"ticket_id":7,"tags":["a",""]}`,
		`{"ticket_id":"0"}`,
		`{"type":"zen:event-type:ticket.created","id":"e","time":"2025-01-01T00:00:00Z","subject":"zen:ticket:99999999999999999999","detail":{}}`,
		`[]`, `null`, `"x"`, ``, `{`, `{"type":null,"ticket_id":null}`,
	} {
		f.Add([]byte(seed))
	}
	received := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, ok, err := ParseEvent(body, received)
		if err != nil {
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if ok {
				t.Fatal("ok with an error")
			}
			return
		}
		if !ok {
			if ev.Source != "" || ev.TicketID != "" || ev.EventID != "" {
				t.Fatalf("ignored event came with content %+v", ev)
			}
			return
		}
		if ev.Source != integrations.SourceZendesk || !validTypes[ev.Type] || ev.EventID == "" || ev.OccurredAt.IsZero() {
			t.Fatalf("incomplete event %+v", ev)
		}
		if _, err := canonicalID(ev.TicketID); err != nil || ev.TicketID == "0" {
			t.Fatalf("ticket id %q is not a positive decimal id", ev.TicketID)
		}
		if ev.RequesterID != "" {
			if _, err := canonicalID(ev.RequesterID); err != nil || ev.RequesterID == "0" {
				t.Fatalf("requester id %q is not a positive decimal id", ev.RequesterID)
			}
		}
		if !validStatuses[ev.Status] || !validPriorities[ev.Priority] || !validSatisfaction[ev.Satisfaction] {
			t.Fatalf("value outside the vocabulary: %q %q %q", ev.Status, ev.Priority, ev.Satisfaction)
		}
		if ev.RequesterEmail != "" && integrations.NormalizeEmail(ev.RequesterEmail) != ev.RequesterEmail {
			t.Fatalf("email %q is not normalised", ev.RequesterEmail)
		}
		// Parsing is deterministic: a re-delivery is recognised as the same event.
		again, _, _ := ParseEvent(body, received.Add(time.Minute))
		if again.EventID != ev.EventID {
			t.Fatalf("EventID changed between deliveries: %q, %q", ev.EventID, again.EventID)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), exampleSignature)
	f.Add([]byte(exampleSecret), exampleTimestamp, []byte(exampleBody), "")
	f.Add([]byte(""), exampleTimestamp, []byte(exampleBody), exampleSignature)
	f.Add([]byte("k"), "2021-07-25T10:00:00.999999999+14:00", []byte{}, "AAAA")
	f.Add([]byte("k"), "not a time", []byte("{}"), "====")
	f.Fuzz(func(t *testing.T, secret []byte, timestamp string, body []byte, signature string) {
		now := time.Date(2021, 7, 25, 10, 1, 0, 0, time.UTC)
		err := VerifySignature(secret, timestamp, body, signature, now, 5*time.Minute)
		if err != nil {
			if !errors.Is(err, integrations.ErrBadSignature) {
				t.Fatalf("error %v does not wrap ErrBadSignature", err)
			}
			// The message quotes the caller's timestamp and signature (%q): a secret found inside
			// their quoted form came from them, not from the secret.
			s := string(secret)
			inInput := func(v string) bool { return strings.Contains(v, s) || strings.Contains(fmt.Sprintf("%q", v), s) }
			if len(s) >= 6 && !inInput(timestamp) && !inInput(signature) && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q echoes the secret", err)
			}
		}
		// A correct signature over the same inputs always verifies when the timestamp is fresh.
		if len(secret) > 0 && timestamp != "" {
			if ts, perr := time.Parse(time.RFC3339, timestamp); perr == nil {
				good := signWith(secret, timestamp, body)
				if err := VerifySignature(secret, timestamp, body, good, ts, time.Minute); err != nil {
					t.Fatalf("a correct signature failed: %v", err)
				}
			}
		}
	})
}

func signWith(secret []byte, timestamp string, body []byte) string {
	return sign(string(secret), timestamp+string(body))
}
