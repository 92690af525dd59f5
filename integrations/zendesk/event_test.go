package zendesk

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

// subscriptionPayload builds an event-subscription body in the shape Zendesk documents for ticket
// events: ids as strings, machine values upper case, detail = the ticket's current state.
func subscriptionPayload(eventType, eventJSON string) string {
	return `{
  "type": "zen:event-type:` + eventType + `",
  "account_id": 10394857,
  "id": "0f9d6a52-3c1b-4e07-9a55-6d2b8e1c4f70",
  "time": "2025-03-04T09:15:42.123456789Z",
  "zendesk_event_version": "2022-11-06",
  "subject": "zen:ticket:48213",
  "detail": {
    "actor_id": "9120034412",
    "assignee_id": "9120034412",
    "brand_id": "360001122334",
    "created_at": "2025-03-01T17:02:11Z",
    "custom_status": "360009988776",
    "description": "My order arrived damaged",
    "external_id": null,
    "form_id": "360000112233",
    "group_id": "360004455667",
    "id": "48213",
    "is_public": true,
    "organization_id": "0",
    "priority": "LOW",
    "requester_id": "9120077781",
    "status": "OPEN",
    "subject": "Damaged parcel",
    "submitter_id": "9120077781",
    "tags": ["shipping", "damaged"],
    "type": "INCIDENT",
    "updated_at": "2025-03-04T09:15:41Z",
    "via": {"channel": "email"}
  },
  "event": ` + eventJSON + `
}`
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

func TestParseEventSubscription(t *testing.T) {
	received := time.Date(2025, 3, 4, 9, 16, 0, 0, time.UTC)
	occurred := mustTime(t, "2025-03-04T09:15:42.123456789Z")
	created := mustTime(t, "2025-03-01T17:02:11Z")
	base := integrations.TicketEvent{
		Source:          integrations.SourceZendesk,
		EventID:         "0f9d6a52-3c1b-4e07-9a55-6d2b8e1c4f70",
		TicketID:        "48213",
		RequesterID:     "9120077781",
		Subject:         "Damaged parcel",
		Status:          "open",
		Priority:        "low",
		Tags:            []string{"shipping", "damaged"},
		OccurredAt:      occurred,
		TicketCreatedAt: created,
	}
	with := func(f func(*integrations.TicketEvent)) integrations.TicketEvent {
		ev := base
		ev.Tags = append([]string(nil), base.Tags...)
		f(&ev)
		return ev
	}

	tests := []struct {
		name string
		body string
		want integrations.TicketEvent
	}{
		{"ticket.created", subscriptionPayload("ticket.created", `{}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketCreated })},
		{"ticket.status_changed takes event.current",
			// detail still says OPEN: event.current is the value the change set.
			subscriptionPayload("ticket.status_changed", `{"current": "SOLVED", "previous": "OPEN", "meta": {"sequence": {"id": "abc", "position": 1}}}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketStatusChanged; e.Status = "solved" })},
		{"ticket.priority_changed", subscriptionPayload("ticket.priority_changed", `{"current": "URGENT", "previous": "LOW"}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketPriorityChanged; e.Priority = "urgent" })},
		{"ticket.priority_changed to no priority keeps the detail",
			subscriptionPayload("ticket.priority_changed", `{"current": null, "previous": "LOW"}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketPriorityChanged })},
		{"ticket.comment_added",
			subscriptionPayload("ticket.comment_added", `{"comment": {"id": "771100", "body": "Any news?", "is_public": true, "author": {"id": "9120077781", "is_staff": false, "name": "Ana"}}}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketCommentAdded })},
		{"other ticket event carries the state as ticket.updated",
			subscriptionPayload("ticket.group_assignment_changed", `{"current": {"id": "360004455667", "name": "Returns"}, "previous": null}`),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketUpdated })},
		{"no event object at all", strings.Replace(subscriptionPayload("ticket.tags_changed", `null`), `"event": null`, `"zendesk_x": 1`, 1),
			with(func(e *integrations.TicketEvent) { e.Type = integrations.TicketUpdated })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok, err := ParseEvent([]byte(tc.body), received)
			if err != nil || !ok {
				t.Fatalf("ParseEvent: ok=%v err=%v", ok, err)
			}
			if !reflect.DeepEqual(ev, tc.want) {
				t.Errorf("event\n got %+v\nwant %+v", ev, tc.want)
			}
		})
	}
}

func TestParseEventSubscriptionVariants(t *testing.T) {
	received := time.Now()
	t.Run("ticket id from subject when detail has none", func(t *testing.T) {
		body := `{"type":"zen:event-type:ticket.created","id":"e1","time":"2025-03-04T09:15:42Z","subject":"zen:ticket:77","detail":{"status":"NEW"}}`
		ev, ok, err := ParseEvent([]byte(body), received)
		if err != nil || !ok || ev.TicketID != "77" || ev.Status != "new" {
			t.Fatalf("got %+v ok=%v err=%v", ev, ok, err)
		}
	})
	t.Run("numeric ids are accepted and canonical", func(t *testing.T) {
		body := `{"type":"zen:event-type:ticket.created","id":"e2","time":"2025-03-04T09:15:42Z","subject":"zen:ticket:0077","detail":{"id":77,"requester_id":5}}`
		ev, ok, err := ParseEvent([]byte(body), received)
		if err != nil || !ok || ev.TicketID != "77" || ev.RequesterID != "5" {
			t.Fatalf("got %+v ok=%v err=%v", ev, ok, err)
		}
	})
	t.Run("deleted status is not said, not an error", func(t *testing.T) {
		body := subscriptionPayload("ticket.status_changed", `{"current":"DELETED","previous":"SOLVED"}`)
		body = strings.Replace(body, `"status": "OPEN"`, `"status": "DELETED"`, 1)
		ev, ok, err := ParseEvent([]byte(body), received)
		if err != nil || !ok || ev.Status != "" {
			t.Fatalf("got status %q ok=%v err=%v", ev.Status, ok, err)
		}
	})
	t.Run("requester_id 0 means none", func(t *testing.T) {
		body := strings.Replace(subscriptionPayload("ticket.created", `{}`), `"requester_id": "9120077781"`, `"requester_id": "0"`, 1)
		ev, _, err := ParseEvent([]byte(body), received)
		if err != nil || ev.RequesterID != "" {
			t.Fatalf("requester %q err=%v", ev.RequesterID, err)
		}
	})
}

func TestParseEventNotAboutTickets(t *testing.T) {
	// The user event example shape from Zendesk's "Webhook event types" page.
	user := `{
  "type": "zen:event-type:user.active_changed",
  "account_id": 10394857,
  "id": "5d2f0c1e-8a43-4b6e-b0f1-2a9c7e3d1f55",
  "time": "2025-03-04T05:33:18Z",
  "zendesk_event_version": "2022-06-20",
  "subject": "zen:user:9120077781",
  "detail": {"created_at": "2025-01-04T05:27:58Z", "email": "ana@example.com", "external_id": "", "default_group_id": "0", "id": "9120077781", "organization_id": "0", "role": "end-user", "updated_at": "2025-03-04T05:33:18Z"},
  "event": {"current": false, "previous": true}
}`
	org := `{"type":"zen:event-type:organization.created","id":"o1","time":"2025-03-04T05:33:18Z","subject":"zen:organization:1","detail":{"id":"1"},"event":{}}`
	for name, body := range map[string]string{"user": user, "organization": org} {
		ev, ok, err := ParseEvent([]byte(body), time.Now())
		if err != nil || ok || !reflect.DeepEqual(ev, integrations.TicketEvent{}) {
			t.Errorf("%s event: ev=%+v ok=%v err=%v, want zero, false, nil", name, ev, ok, err)
		}
	}
}

func TestParseEventTrigger(t *testing.T) {
	received := time.Date(2025, 3, 4, 9, 20, 30, 0, time.UTC)
	// What Zendesk renders from TriggerPayloadTemplate for a solved, rated ticket.
	full := `{
  "ticket_id": "48213",
  "status": "Solved",
  "priority": "High",
  "satisfaction": "Good, I'm satisfied",
  "requester_id": "9120077781",
  "requester_email": "  Ana.Silva@Example.COM ",
  "tags": "shipping damaged vip",
  "created_at": "2025-03-01T17:02Z",
  "updated_at": "2025-03-04T09:19Z"
}`
	ev, ok, err := ParseEvent([]byte(full), received)
	if err != nil || !ok {
		t.Fatalf("full trigger payload: ok=%v err=%v", ok, err)
	}
	want := integrations.TicketEvent{
		Source:          integrations.SourceZendesk,
		EventID:         ev.EventID, // checked separately below
		Type:            integrations.TicketUpdated,
		TicketID:        "48213",
		RequesterID:     "9120077781",
		RequesterEmail:  "ana.silva@example.com",
		Status:          "solved",
		Priority:        "high",
		Satisfaction:    "good",
		Tags:            []string{"shipping", "damaged", "vip"},
		OccurredAt:      time.Date(2025, 3, 4, 9, 19, 0, 0, time.UTC),
		TicketCreatedAt: time.Date(2025, 3, 1, 17, 2, 0, 0, time.UTC),
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	if !strings.HasPrefix(ev.EventID, "zendesk-trigger:") {
		t.Errorf("EventID %q", ev.EventID)
	}

	// An identical re-delivery, even received later, is the same event; any change is a new one.
	again, _, _ := ParseEvent([]byte(full), received.Add(time.Hour))
	if again.EventID != ev.EventID {
		t.Errorf("re-delivery got EventID %q, first %q", again.EventID, ev.EventID)
	}
	changed, _, _ := ParseEvent([]byte(strings.Replace(full, `"Solved"`, `"Closed"`, 1)), received)
	if changed.EventID == ev.EventID {
		t.Error("a different status kept the same EventID")
	}

	// A new ticket with no priority, no rating and a requester without email: the placeholders
	// render as "", and updated_at too, so OccurredAt falls back to the receive time.
	sparse := `{
  "ticket_id": "48214",
  "status": "New",
  "priority": "",
  "satisfaction": "",
  "requester_id": "9120077782",
  "requester_email": "",
  "tags": "",
  "created_at": "",
  "updated_at": ""
}`
	ev, ok, err = ParseEvent([]byte(sparse), received)
	if err != nil || !ok {
		t.Fatalf("sparse trigger payload: ok=%v err=%v", ok, err)
	}
	wantSparse := integrations.TicketEvent{
		Source: integrations.SourceZendesk, EventID: ev.EventID, Type: integrations.TicketUpdated,
		TicketID: "48214", RequesterID: "9120077782", Status: "new", OccurredAt: received,
	}
	if !reflect.DeepEqual(ev, wantSparse) {
		t.Errorf("sparse event\n got %+v\nwant %+v", ev, wantSparse)
	}

	t.Run("display labels", func(t *testing.T) {
		for _, tc := range []struct{ status, priority, rating, wantStatus, wantPriority, wantRating string }{
			{"On-hold", "Urgent", "Bad, I'm unsatisfied", "hold", "urgent", "bad"},
			{"Pending", "Low", "Offered", "pending", "low", "offered"},
			{"Open", "Normal", "Unoffered", "open", "normal", "unoffered"},
			// Unrecognised (e.g. localised or custom) labels are "not said", not a failure.
			{"Offen", "-", "Gut", "", "", ""},
		} {
			body := `{"ticket_id":"5","status":"` + tc.status + `","priority":"` + tc.priority + `","satisfaction":"` + tc.rating + `"}`
			ev, ok, err := ParseEvent([]byte(body), received)
			if err != nil || !ok {
				t.Fatalf("%s: ok=%v err=%v", body, ok, err)
			}
			if ev.Status != tc.wantStatus || ev.Priority != tc.wantPriority || ev.Satisfaction != tc.wantRating {
				t.Errorf("%s: got %q/%q/%q", body, ev.Status, ev.Priority, ev.Satisfaction)
			}
		}
	})
	t.Run("tags as an array, numeric ticket id, subject and name", func(t *testing.T) {
		body := `{"ticket_id":48215,"tags":["a","b"],"subject":" Refund? ","requester_name":"Ana \"AS\" Silva"}`
		ev, ok, err := ParseEvent([]byte(body), received)
		if err != nil || !ok || ev.TicketID != "48215" || !reflect.DeepEqual(ev.Tags, []string{"a", "b"}) ||
			ev.Subject != "Refund?" || ev.RequesterName != `Ana "AS" Silva` {
			t.Fatalf("got %+v ok=%v err=%v", ev, ok, err)
		}
	})
}

func TestTriggerPayloadTemplate(t *testing.T) {
	// The template itself must be valid JSON, and so must what Zendesk renders from it whether the
	// placeholders are filled or empty.
	if !json.Valid([]byte(TriggerPayloadTemplate)) {
		t.Fatal("TriggerPayloadTemplate is not valid JSON")
	}
	for _, placeholder := range []string{"{{ticket.id}}", "{{ticket.requester.email}}", "{{ticket.requester.id}}",
		"{{ticket.status}}", "{{ticket.priority}}", "{{satisfaction.current_rating}}", "{{ticket.updated_at_with_timestamp}}",
		"{{ticket.created_at_with_timestamp}}", "{{ticket.tags}}"} {
		if !strings.Contains(TriggerPayloadTemplate, placeholder) {
			t.Errorf("template lacks %s", placeholder)
		}
	}
	render := func(values map[string]string) string {
		out := TriggerPayloadTemplate
		for {
			start := strings.Index(out, "{{")
			if start < 0 {
				return out
			}
			end := strings.Index(out[start:], "}}") + start
			out = out[:start] + values[out[start+2:end]] + out[end+2:]
		}
	}
	received := time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)

	empty := render(map[string]string{"ticket.id": "901"})
	ev, ok, err := ParseEvent([]byte(empty), received)
	if err != nil || !ok || ev.TicketID != "901" || !ev.OccurredAt.Equal(received) {
		t.Fatalf("all-empty rendering: %+v ok=%v err=%v", ev, ok, err)
	}

	filled := render(map[string]string{
		"ticket.id": "902", "ticket.status": "Pending", "ticket.priority": "Normal",
		"satisfaction.current_rating": "Unoffered", "ticket.requester.id": "31", "ticket.requester.email": "bo@example.org",
		"ticket.tags": "clv_tier_gold returns", "ticket.created_at_with_timestamp": "2025-03-02T08:00Z",
		"ticket.updated_at_with_timestamp": "2025-03-04T09:29Z",
	})
	ev, ok, err = ParseEvent([]byte(filled), received)
	if err != nil || !ok {
		t.Fatalf("filled rendering: ok=%v err=%v", ok, err)
	}
	if ev.TicketID != "902" || ev.Status != "pending" || ev.Priority != "normal" || ev.Satisfaction != "unoffered" ||
		ev.RequesterID != "31" || ev.RequesterEmail != "bo@example.org" || len(ev.Tags) != 2 ||
		!ev.OccurredAt.Equal(time.Date(2025, 3, 4, 9, 29, 0, 0, time.UTC)) {
		t.Errorf("filled rendering parsed as %+v", ev)
	}
}

func TestParseEventMalformed(t *testing.T) {
	valid := subscriptionPayload("ticket.created", `{}`)
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `{"type": "zen:event-type:ticket.created",`, "not JSON"},
		{"empty body", ``, "not JSON"},
		{"JSON array", `[1,2]`, "want a JSON object, got array"},
		{"JSON null", `null`, "want a JSON object, got null"},
		{"neither shape", `{"hello":"world"}`, `neither a Zendesk event`},
		{"type not a string", `{"type": 5}`, "type: want a string, got number"},
		{"type without prefix", `{"type": "ticket.created"}`, "not a Zendesk event type"},
		{"missing id", strings.Replace(valid, `"id": "0f9d6a52-3c1b-4e07-9a55-6d2b8e1c4f70",`, "", 1), "id is missing"},
		{"empty id", strings.Replace(valid, `"id": "0f9d6a52-3c1b-4e07-9a55-6d2b8e1c4f70"`, `"id": ""`, 1), "id is empty"},
		{"id wrong type", strings.Replace(valid, `"id": "0f9d6a52-3c1b-4e07-9a55-6d2b8e1c4f70"`, `"id": {"x":1}`, 1), "id: want a string, got object"},
		{"missing time", strings.Replace(valid, `"time": "2025-03-04T09:15:42.123456789Z",`, "", 1), "time is missing"},
		{"bad time", strings.Replace(valid, `"2025-03-04T09:15:42.123456789Z"`, `"last tuesday"`, 1), `time "last tuesday" is not an ISO 8601 time`},
		{"missing detail", `{"type":"zen:event-type:ticket.created","id":"e","time":"2025-03-04T09:15:42Z","subject":"zen:ticket:1"}`, "detail is missing"},
		{"detail not an object", `{"type":"zen:event-type:ticket.created","id":"e","time":"2025-03-04T09:15:42Z","detail":"x"}`, "detail: want a JSON object, got string"},
		{"missing ticket id", `{"type":"zen:event-type:ticket.created","id":"e","time":"2025-03-04T09:15:42Z","detail":{}}`, "ticket id is missing"},
		{"ticket id not numeric", strings.Replace(valid, `"id": "48213"`, `"id": "48213/../../users"`, 1), `detail.id "48213/../../users" is not a Zendesk id`},
		{"ticket id wrong type", strings.Replace(valid, `"id": "48213"`, `"id": true`, 1), "detail.id: want an id (string or integer), got boolean"},
		{"ticket id fractional", strings.Replace(valid, `"id": "48213"`, `"id": 4.5`, 1), `detail.id "4.5" is not a Zendesk id`},
		{"ids disagree", strings.Replace(valid, `"zen:ticket:48213"`, `"zen:ticket:1"`, 1), "name different tickets"},
		{"subject names ticket 0", `{"type":"zen:event-type:ticket.created","id":"e","time":"2025-03-04T09:15:42Z","subject":"zen:ticket:0","detail":{}}`, "does not end in a ticket id"},
		{"bad subject id", strings.Replace(valid, `"zen:ticket:48213"`, `"zen:ticket:abc"`, 1), "does not end in a ticket id"},
		{"unknown status", strings.Replace(valid, `"status": "OPEN"`, `"status": "WAITING"`, 1), `detail.status "WAITING" is not a known Zendesk value`},
		{"status wrong type", strings.Replace(valid, `"status": "OPEN"`, `"status": 2`, 1), "detail.status: want a string, got number"},
		{"unknown priority in event", subscriptionPayload("ticket.priority_changed", `{"current":"MEGA"}`), `event.current "MEGA"`},
		{"event not an object", subscriptionPayload("ticket.status_changed", `"SOLVED"`), "event: want a JSON object, got string"},
		{"tags not an array", strings.Replace(valid, `"tags": ["shipping", "damaged"]`, `"tags": "shipping"`, 1), "detail.tags: want an array of strings, got string"},
		{"tag not a string", strings.Replace(valid, `"tags": ["shipping", "damaged"]`, `"tags": ["shipping", 3]`, 1), "detail.tags[1]: want a string, got number"},
		{"bad created_at", strings.Replace(valid, `"created_at": "2025-03-01T17:02:11Z"`, `"created_at": "01/03/2025"`, 1), "detail.created_at"},
		{"trigger: empty ticket id", `{"ticket_id": "", "status": "Open"}`, "ticket_id is empty"},
		{"trigger: ticket id not numeric", `{"ticket_id": "#48213"}`, `ticket_id "#48213" is not a Zendesk id`},
		{"trigger: ticket id negative", `{"ticket_id": -3}`, `ticket_id "-3" is not a Zendesk id`},
		{"trigger: bad email", `{"ticket_id": "1", "requester_email": "ana at example.com"}`, `requester_email "ana at example.com" is not an email address`},
		{"trigger: status wrong type", `{"ticket_id": "1", "status": ["Open"]}`, "status: want a string, got array"},
		{"trigger: tags wrong type", `{"ticket_id": "1", "tags": 7}`, "tags: want a string or an array of strings, got number"},
		{"trigger: bad updated_at", `{"ticket_id": "1", "updated_at": "2025-13-40T99:99Z"}`, "updated_at"},
		{"trailing garbage", valid + "x", "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok, err := ParseEvent([]byte(tc.body), time.Now())
			if err == nil {
				t.Fatalf("ParseEvent accepted it: %+v", ev)
			}
			if !errors.Is(err, integrations.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if ok || !reflect.DeepEqual(ev, integrations.TicketEvent{}) {
				t.Errorf("error came with ok=%v ev=%+v", ok, ev)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
