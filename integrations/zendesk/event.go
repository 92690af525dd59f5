package zendesk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/internal/jsonscan"
)

// TriggerPayloadTemplate is the JSON body an admin pastes into a Zendesk trigger's "Notify active
// webhook" action (conditions: ticket is created, or ticket is updated). Zendesk renders each
// {{placeholder}} as plain text; a placeholder with no value renders as "", which ParseEvent reads
// as "not said".
//
// Every value is quoted, ids included, so empty placeholders still leave valid JSON. Only values
// that cannot contain a quote are used: free text (ticket subject, requester name) is left out
// because a quote or backslash in it would break the JSON and lose the whole event. ParseEvent still accepts optional "subject" and
// "requester_name" keys for admins who add them. {{ticket.tags}} renders the tags space-separated.
// {{ticket.*_at_with_timestamp}} render ISO 8601 to the minute (e.g. 2013-12-12T05:35Z).
const TriggerPayloadTemplate = `{
  "ticket_id": "{{ticket.id}}",
  "status": "{{ticket.status}}",
  "priority": "{{ticket.priority}}",
  "satisfaction": "{{satisfaction.current_rating}}",
  "requester_id": "{{ticket.requester.id}}",
  "requester_email": "{{ticket.requester.email}}",
  "tags": "{{ticket.tags}}",
  "created_at": "{{ticket.created_at_with_timestamp}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}"
}`

// eventTypePrefix starts every Zendesk event-subscription type, e.g. zen:event-type:ticket.created.
const eventTypePrefix = "zen:event-type:"

// subscriptionTypes maps the ticket event types clvd distinguishes. Every other ticket.* type
// becomes integrations.TicketUpdated: their detail object still carries the ticket's current
// state. No satisfaction event is mapped because none appears among the ticket event types
// Zendesk documents for webhooks; satisfaction arrives through trigger payloads.
var subscriptionTypes = map[string]string{
	"ticket.created":          integrations.TicketCreated,
	"ticket.status_changed":   integrations.TicketStatusChanged,
	"ticket.priority_changed": integrations.TicketPriorityChanged,
	"ticket.comment_added":    integrations.TicketCommentAdded,
}

// ParseEvent parses one Zendesk webhook body. It accepts two shapes:
//
//   - an event-subscription payload: {"type":"zen:event-type:ticket.status_changed","id":...,
//     "time":...,"subject":"zen:ticket:123","detail":{"id":"123","requester_id":"...",
//     "status":"OPEN","priority":"LOW",...},"event":{"current":"SOLVED","previous":"OPEN"}};
//   - the trigger payload rendered from TriggerPayloadTemplate (recognised by having "ticket_id"
//     and no "type").
//
// ok=false with a nil error means a valid event that is not about a ticket (user, organization,
// article… events): the caller acknowledges and ignores it. Any other problem is an error wrapping
// integrations.ErrMalformed that names the offending field.
//
// The event is normalised: Status, Priority and Satisfaction lower case in clvd's vocabulary,
// RequesterEmail through integrations.NormalizeEmail, ids as canonical decimal strings, times in
// UTC. EventID is the payload's id; a trigger payload has none, so it gets a hash of its content,
// which an identical re-delivery reproduces. OccurredAt is the event time; for a trigger payload
// it is the ticket's updated_at, or receivedAt when that rendered empty.
func ParseEvent(body []byte, receivedAt time.Time) (ev integrations.TicketEvent, ok bool, err error) {
	top, err := parseObject(body, "")
	if err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if top.present("type") {
		ev, ok, err = parseSubscription(top)
	} else if top.present("ticket_id") {
		ev, err = parseTrigger(top, receivedAt)
		ok = err == nil
	} else {
		err = integrations.Malformed(`neither a Zendesk event (no "type") nor a clvd trigger payload (no "ticket_id")`)
	}
	if err != nil || !ok {
		return integrations.TicketEvent{}, false, err
	}
	return ev, true, nil
}

func parseSubscription(top object) (integrations.TicketEvent, bool, error) {
	typ, err := top.requiredString("type")
	if err != nil {
		return integrations.TicketEvent{}, false, err
	}
	name, found := strings.CutPrefix(typ, eventTypePrefix)
	if !found || name == "" {
		return integrations.TicketEvent{}, false, integrations.Malformed("type %.80q is not a Zendesk event type (want %s<domain>.<event>)", typ, eventTypePrefix)
	}
	if !strings.HasPrefix(name, "ticket.") {
		return integrations.TicketEvent{}, false, nil
	}

	ev := integrations.TicketEvent{Source: integrations.SourceZendesk, Type: integrations.TicketUpdated}
	if t, known := subscriptionTypes[name]; known {
		ev.Type = t
	}
	if ev.EventID, err = top.requiredString("id"); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	occurred, found, err := top.time("time")
	if err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if !found {
		return integrations.TicketEvent{}, false, integrations.Malformed("time is missing")
	}
	ev.OccurredAt = occurred

	detail, found, err := top.object("detail")
	if err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if !found {
		return integrations.TicketEvent{}, false, integrations.Malformed("detail is missing")
	}
	if ev.TicketID, err = subscriptionTicketID(top, detail); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if ev.RequesterID, err = detail.optionalID("requester_id"); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if ev.Subject, _, err = detail.string("subject"); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	ev.Subject = strings.TrimSpace(ev.Subject)
	if ev.Tags, _, err = detail.stringList("tags"); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if ev.TicketCreatedAt, _, err = detail.time("created_at"); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if ev.Status, err = enumField(detail, "status", subscriptionStatus); err != nil {
		return integrations.TicketEvent{}, false, err
	}
	if ev.Priority, err = enumField(detail, "priority", subscriptionPriority); err != nil {
		return integrations.TicketEvent{}, false, err
	}

	change, found, err := top.object("event")
	if err != nil {
		return integrations.TicketEvent{}, false, err
	}
	// For the two "changed" events, event.current is the value this change set, which is what
	// the event type is about; the detail snapshot is only the fallback when it is null.
	if found && (ev.Type == integrations.TicketStatusChanged || ev.Type == integrations.TicketPriorityChanged) {
		field, vocabulary := "status", subscriptionStatus
		if ev.Type == integrations.TicketPriorityChanged {
			field, vocabulary = "priority", subscriptionPriority
		}
		current, err := enumField(change, "current", vocabulary)
		if err != nil {
			return integrations.TicketEvent{}, false, err
		}
		if current != "" {
			if field == "status" {
				ev.Status = current
			} else {
				ev.Priority = current
			}
		}
	}
	return ev, true, nil
}

// subscriptionTicketID takes the ticket id from detail.id, or from subject ("zen:ticket:123")
// when detail lacks it, and refuses a payload whose two ids disagree.
func subscriptionTicketID(top, detail object) (string, error) {
	fromDetail, err := detail.optionalID("id")
	if err != nil {
		return "", err
	}
	subject, _, err := top.string("subject")
	if err != nil {
		return "", err
	}
	var fromSubject string
	if rest, found := strings.CutPrefix(subject, "zen:ticket:"); found {
		if fromSubject, err = canonicalID(rest); err != nil || fromSubject == "0" {
			return "", integrations.Malformed("subject %.80q does not end in a ticket id", subject)
		}
	}
	switch {
	case fromDetail == "" && fromSubject == "":
		return "", integrations.Malformed("ticket id is missing: no detail.id and no subject zen:ticket:<id>")
	case fromDetail == "":
		return fromSubject, nil
	case fromSubject != "" && fromSubject != fromDetail:
		return "", integrations.Malformed("detail.id %s and subject %.80q name different tickets", fromDetail, subject)
	}
	return fromDetail, nil
}

// Event subscriptions send the ticket's machine values in upper case. DELETED, ARCHIVED and
// SCRUBBED describe what happened to the record, not where the support conversation stands, and
// clvd has no word for them: they map to "" (not said) rather than being rejected.
var subscriptionStatus = map[string]string{
	"NEW": "new", "OPEN": "open", "PENDING": "pending", "HOLD": "hold", "SOLVED": "solved", "CLOSED": "closed",
	"DELETED": "", "ARCHIVED": "", "SCRUBBED": "",
}

var subscriptionPriority = map[string]string{
	"LOW": "low", "NORMAL": "normal", "HIGH": "high", "URGENT": "urgent",
}

// enumField reads an optional string field and maps it through vocabulary (matched
// case-insensitively). An absent, null or empty field gives "". Event subscriptions document a
// closed set of values, so anything else is malformed rather than silently dropped.
func enumField(o object, name string, vocabulary map[string]string) (string, error) {
	raw, _, err := o.string(name)
	if err != nil || raw == "" {
		return "", err
	}
	v, known := vocabulary[strings.ToUpper(strings.TrimSpace(raw))]
	if !known {
		return "", integrations.Malformed("%s %.40q is not a known Zendesk value", o.name(name), raw)
	}
	return v, nil
}

func parseTrigger(top object, receivedAt time.Time) (integrations.TicketEvent, error) {
	ev := integrations.TicketEvent{Source: integrations.SourceZendesk, Type: integrations.TicketUpdated}
	var err error
	if ev.TicketID, err = top.optionalID("ticket_id"); err != nil {
		return ev, err
	}
	if ev.TicketID == "" {
		return ev, integrations.Malformed("ticket_id is empty or 0: the trigger's {{ticket.id}} rendered no ticket id")
	}
	if ev.RequesterID, err = top.optionalID("requester_id"); err != nil {
		return ev, err
	}
	email, _, err := top.string("requester_email")
	if err != nil {
		return ev, err
	}
	if email = strings.TrimSpace(email); email != "" {
		if ev.RequesterEmail = integrations.NormalizeEmail(email); ev.RequesterEmail == "" {
			return ev, integrations.Malformed("requester_email %.80q is not an email address", email)
		}
	}
	if ev.RequesterName, _, err = top.string("requester_name"); err != nil {
		return ev, err
	}
	ev.RequesterName = strings.TrimSpace(ev.RequesterName)
	if ev.Subject, _, err = top.string("subject"); err != nil {
		return ev, err
	}
	ev.Subject = strings.TrimSpace(ev.Subject)

	status, _, err := top.string("status")
	if err != nil {
		return ev, err
	}
	ev.Status = triggerStatus(status)
	priority, _, err := top.string("priority")
	if err != nil {
		return ev, err
	}
	ev.Priority = triggerPriority(priority)
	satisfaction, _, err := top.string("satisfaction")
	if err != nil {
		return ev, err
	}
	ev.Satisfaction = triggerSatisfaction(satisfaction)

	if ev.Tags, err = triggerTags(top); err != nil {
		return ev, err
	}
	if ev.TicketCreatedAt, _, err = top.time("created_at"); err != nil {
		return ev, err
	}
	updated, found, err := top.time("updated_at")
	if err != nil {
		return ev, err
	}
	if found {
		ev.OccurredAt = updated
	} else {
		ev.OccurredAt = receivedAt.UTC()
	}
	ev.EventID = triggerEventID(ev, updated)
	return ev, nil
}

// Trigger placeholders render display text, not machine values: {{ticket.status}} gives e.g.
// "Open", and Zendesk may localise or customise such labels. A label clvd does not recognise is
// read as "not said" instead of failing the whole delivery, so the requester and the ticket's
// other fields still reach clvd.
func triggerStatus(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "new":
		return "new"
	case "open":
		return "open"
	case "pending":
		return "pending"
	case "hold", "on-hold", "on hold", "on_hold":
		return "hold"
	case "solved":
		return "solved"
	case "closed":
		return "closed"
	}
	return ""
}

func triggerPriority(s string) string {
	switch p := strings.ToLower(strings.TrimSpace(s)); p {
	case "low", "normal", "high", "urgent":
		return p
	}
	return ""
}

// triggerSatisfaction reads {{satisfaction.current_rating}}, "the text of the current satisfaction
// rating". The exact wording is not documented (the survey shows "Good, I'm satisfied"), so the
// rating is taken from the leading word.
func triggerSatisfaction(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "good"):
		return "good"
	case strings.HasPrefix(s, "bad"):
		return "bad"
	case strings.HasPrefix(s, "unoffered"), strings.HasPrefix(s, "not offered"):
		return "unoffered"
	case strings.HasPrefix(s, "offered"):
		return "offered"
	}
	return ""
}

// triggerTags accepts the space-separated string {{ticket.tags}} renders, or a JSON array for
// admins who build the list themselves.
func triggerTags(top object) ([]string, error) {
	raw, found := top.fields.Get("tags")
	if !found || kindOf(raw) == "null" {
		return nil, nil
	}
	if kindOf(raw) == "array" {
		tags, _, err := top.stringList("tags")
		return tags, err
	}
	s, _, err := top.string("tags")
	if err != nil {
		return nil, integrations.Malformed("tags: want a string or an array of strings, got %s", kindOf(raw))
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, nil
	}
	return fields, nil
}

// triggerEventID derives a delivery id from everything the payload said. Zendesk gives trigger
// deliveries no id of their own; a content hash makes an identical re-delivery a duplicate while
// any change of state gets a new id.
func triggerEventID(ev integrations.TicketEvent, updated time.Time) string {
	h := sha256.New()
	for _, part := range []string{
		ev.TicketID, ev.RequesterID, ev.RequesterEmail, ev.RequesterName, ev.Subject,
		ev.Status, ev.Priority, ev.Satisfaction, strings.Join(ev.Tags, " "),
		formatTime(ev.TicketCreatedAt), formatTime(updated),
	} {
		// Length-prefix each part so that moving text between fields changes the hash.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return "zendesk-trigger:" + hex.EncodeToString(h.Sum(nil)[:16])
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// object is one JSON object whose fields are read one at a time, so every error can name the field
// (with its path) and say what was wrong with it. Its values are sub-slices of the body.
type object struct {
	path   string // "" at the top level, "detail" inside detail, …
	fields jsonscan.Fields
}

// parseObject validates raw (the body, or a value cut from it) in one pass and splits the object.
func parseObject(raw []byte, path string) (object, error) {
	what := "body"
	if path != "" {
		what = path
	}
	fields, err := jsonscan.Object(raw, make(jsonscan.Fields, 0, 16))
	var kind *jsonscan.KindError
	switch {
	case errors.As(err, &kind):
		return object{}, integrations.Malformed("%s: want a JSON object, got %s", what, kind.Got)
	case err != nil && path == "":
		return object{}, integrations.Malformed("body is not JSON: %v", err)
	case err != nil:
		return object{}, integrations.Malformed("%s is not valid JSON: %v", what, err)
	}
	return object{path: path, fields: fields}, nil
}

func (o object) name(field string) string {
	if o.path == "" {
		return field
	}
	return o.path + "." + field
}

// present reports whether the field exists and is not null.
func (o object) present(field string) bool {
	raw, found := o.fields.Get(field)
	return found && kindOf(raw) != "null"
}

// string reads an optional string field; absent and null give found=false.
func (o object) string(field string) (s string, found bool, err error) {
	raw, ok := o.fields.Get(field)
	if !ok || kindOf(raw) == "null" {
		return "", false, nil
	}
	if k := kindOf(raw); k != "string" {
		return "", false, integrations.Malformed("%s: want a string, got %s", o.name(field), k)
	}
	if s, err = jsonscan.StringValue(raw); err != nil {
		return "", false, integrations.Malformed("%s: %v", o.name(field), err)
	}
	return s, true, nil
}

func (o object) requiredString(field string) (string, error) {
	s, found, err := o.string(field)
	if err != nil {
		return "", err
	}
	if !found {
		return "", integrations.Malformed("%s is missing", o.name(field))
	}
	if strings.TrimSpace(s) == "" {
		return "", integrations.Malformed("%s is empty", o.name(field))
	}
	return s, nil
}

// optionalID reads a Zendesk id. Event subscriptions send ids as strings and the REST API as
// integers, so both are accepted; the result is canonical decimal. Absent, null, "" and 0 (which
// Zendesk uses for "none", e.g. organization_id "0") give "".
func (o object) optionalID(field string) (string, error) {
	raw, ok := o.fields.Get(field)
	if !ok {
		return "", nil
	}
	var text string
	switch k := kindOf(raw); k {
	case "null":
		return "", nil
	case "string":
		var err error
		if text, err = jsonscan.StringValue(raw); err != nil {
			return "", integrations.Malformed("%s: %v", o.name(field), err)
		}
	case "number":
		text = string(bytes.TrimSpace(raw))
	default:
		return "", integrations.Malformed("%s: want an id (string or integer), got %s", o.name(field), k)
	}
	if strings.TrimSpace(text) == "" {
		return "", nil
	}
	id, err := canonicalID(text)
	if err != nil {
		return "", integrations.Malformed("%s %.40q is not a Zendesk id (a positive integer)", o.name(field), text)
	}
	if id == "0" {
		return "", nil
	}
	return id, nil
}

// canonicalID accepts only a decimal integer that fits in int64: the ids end up in REST paths, so
// nothing else may pass.
func canonicalID(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("not a decimal id")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(n, 10), nil
}

func (o object) object(field string) (object, bool, error) {
	raw, ok := o.fields.Get(field)
	if !ok || kindOf(raw) == "null" {
		return object{}, false, nil
	}
	sub, err := parseObject(raw, o.name(field))
	return sub, err == nil, err
}

// stringList reads an optional array of strings; empty strings are dropped and an empty list
// gives nil ("not said").
func (o object) stringList(field string) ([]string, bool, error) {
	raw, ok := o.fields.Get(field)
	if !ok || kindOf(raw) == "null" {
		return nil, false, nil
	}
	if k := kindOf(raw); k != "array" {
		return nil, false, integrations.Malformed("%s: want an array of strings, got %s", o.name(field), k)
	}
	items, err := jsonscan.Array(raw, nil)
	if err != nil {
		return nil, false, integrations.Malformed("%s: %v", o.name(field), err)
	}
	var out []string
	for i, item := range items {
		if k := kindOf(item); k != "string" {
			return nil, false, integrations.Malformed("%s[%d]: want a string, got %s", o.name(field), i, k)
		}
		s, err := jsonscan.StringValue(item)
		if err != nil {
			return nil, false, integrations.Malformed("%s[%d]: %v", o.name(field), i, err)
		}
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, true, nil
}

// time reads an optional ISO 8601 time; "" counts as absent because an empty placeholder renders
// that way.
func (o object) time(field string) (time.Time, bool, error) {
	s, found, err := o.string(field)
	if err != nil || !found || strings.TrimSpace(s) == "" {
		return time.Time{}, false, err
	}
	t, err := parseTime(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, false, integrations.Malformed("%s %.40q is not an ISO 8601 time", o.name(field), s)
	}
	return t, true, nil
}

// timeLayouts: RFC 3339 with optional fractional seconds (event subscriptions send nanoseconds),
// and RFC 3339 without seconds, which is how {{ticket.*_at_with_timestamp}} renders.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

func parseTime(s string) (time.Time, error) {
	var err error
	for _, layout := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// kindOf names the JSON type of a value cut from a document parseObject validated.
func kindOf(raw []byte) string { return jsonscan.KindOf(raw).String() }
