package zendesk

import (
	"testing"
	"time"
)

func BenchmarkParseEvent(b *testing.B) {
	body := []byte(`{"type":"zen:event-type:ticket.created","account_id":123,"id":"01HX","time":"2026-11-23T11:59:00Z",` +
		`"subject":"zen:ticket:42","zendesk_event_version":"2022-11-06","detail":{"id":"42","requester_id":"9001",` +
		`"status":"NEW","priority":"HIGH","subject":"Where is my order?","created_at":"2026-11-23T11:59:00Z","updated_at":"2026-11-23T11:59:00Z","tags":[]},"event":{}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		if _, ok, err := ParseEvent(body, now); err != nil || !ok {
			b.Fatal(err)
		}
	}
}
