package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Report is the outcome of a run; its JSON form is what `clvd loadtest --json` prints.
type Report struct {
	URL            string  `json:"url"`
	Tenant         string  `json:"tenant"`
	TenantCreated  bool    `json:"tenant_created"`
	Rate           int     `json:"rate"` // requests per second asked for; 0 = as fast as possible
	Workers        int     `json:"workers"`
	Duration       string  `json:"duration"`
	Count          int     `json:"count"`
	Customers      int     `json:"customers"`
	BurstShare     float64 `json:"burst_share"`
	DuplicateShare float64 `json:"duplicate_share"`
	TicketShare    float64 `json:"ticket_share"`
	Seed           uint64  `json:"seed"`

	Intake      Intake            `json:"intake"`
	EndToEnd    *EndToEnd         `json:"end_to_end,omitempty"`
	FakeZendesk *FakeZendeskStats `json:"fake_zendesk,omitempty"`
	Outage      *OutageReport     `json:"zendesk_outage,omitempty"`
	Audit       Audit             `json:"audit"`
}

// OutageReport describes the fake Zendesk's outage; the calls it drew are in FakeZendeskStats.
type OutageReport struct {
	Mode       string  `json:"mode"`
	AtSeconds  float64 `json:"at_seconds"`  // after the first request
	ForSeconds float64 `json:"for_seconds"` // how long
	// PassedAfterSeconds is how long after the outage ended the audit first passed (0 when it did
	// not pass; negative if it passed before the outage ended, which a helpdesk-side audit cannot).
	PassedAfterSeconds float64 `json:"passed_after_seconds,omitempty"`
}

// Intake is what the webhook endpoints did under the load (vegeta's metrics).
type Intake struct {
	Requests         uint64         `json:"requests"`
	Seconds          float64        `json:"seconds"`            // first to last request sent
	RequestsPerSec   float64        `json:"requests_per_sec"`   // sent
	ThroughputPerSec float64        `json:"throughput_per_sec"` // answered with a 2xx, over the whole attack including the wait for the last answers
	LatencyMs        Latency        `json:"latency_ms"`
	StatusCodes      map[string]int `json:"status_codes"` // "0": no HTTP answer
	Answers          map[string]int `json:"answers"`      // the 202 bodies: queued, duplicate, ignored
	Errors           []string       `json:"errors,omitempty"`
	// ClientCPUSeconds is the CPU this load-test process used while sending (generator, vegeta and
	// the fake Zendesk), which a service on the same machine did not have.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
}

// Latency quantiles in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func (in *Intake) fill(m *vegeta.Metrics) {
	in.Requests = m.Requests
	in.Seconds = m.Duration.Seconds()
	in.RequestsPerSec = m.Rate
	in.ThroughputPerSec = m.Throughput
	in.LatencyMs = Latency{Mean: ms(m.Latencies.Mean), P50: ms(m.Latencies.P50), P95: ms(m.Latencies.P95),
		P99: ms(m.Latencies.P99), Max: ms(m.Latencies.Max)}
	in.StatusCodes = m.StatusCodes
	if in.StatusCodes == nil {
		in.StatusCodes = map[string]int{}
	}
}

// EndToEnd is the time from sending a ticket's first webhook to the fake Zendesk's first tag call
// on that ticket, over the tickets whose creation was acknowledged.
type EndToEnd struct {
	Tickets   int     `json:"tickets"`    // measured
	NotTagged int     `json:"not_tagged"` // acknowledged, but no tag call seen
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
}

// EventCounts are what was sent and how the service answered.
type EventCounts struct {
	Requests           int            `json:"requests"`            // every request, duplicates included
	Unique             int            `json:"unique"`              // distinct events sent
	Orders             int            `json:"orders"`              // distinct Shopify order events
	TicketEvents       int            `json:"ticket_events"`       // distinct Zendesk ticket events
	Acknowledged       int            `json:"acknowledged"`        // requests answered 202
	UniqueAcknowledged int            `json:"unique_acknowledged"` // distinct events answered 202 at least once
	NotAcknowledged    int            `json:"not_acknowledged"`    // distinct events never answered 202
	Rejected           map[string]int `json:"rejected"`            // requests not answered 202, by status ("error": no answer)
	DuplicatesSent     int            `json:"duplicates_sent"`
	// Of the repeated deliveries (every send of an event after its first answer "queued"):
	DuplicatesAnswered   int `json:"duplicates_answered_duplicate"` // the first still queued: recognised at intake
	DuplicatesReingested int `json:"duplicates_reingested"`         // the first already processed: queued again, must change nothing
}

// StoredCount is one kind of row the run added to the store, against the range it must be in: at
// least what was acknowledged, at most what was sent.
type StoredCount struct {
	What string `json:"what"`
	Got  int    `json:"got"`
	Min  int    `json:"min"`
	Max  int    `json:"max"`
	OK   bool   `json:"ok"`
}

func (c StoredCount) want() string { return rangeText(c.Min, c.Max) }

// Audit is the final comparison of what was sent, what the store holds and what the fake Zendesk
// holds.
type Audit struct {
	Pass bool `json:"pass"`
	// Drained: the stored counts are in range and no customer of the tenant has a stale score or
	// unwritten tags.
	Drained          bool          `json:"drained"`
	DrainSeconds     float64       `json:"drain_seconds,omitempty"` // from the end of the attack to the passing audit
	Events           EventCounts   `json:"events"`
	Stored           []StoredCount `json:"stored"`
	Stale            int64         `json:"stale_scores"`
	Unsynced         int64         `json:"unsynced_customers"`
	CustomersChecked int           `json:"customers_checked"`
	UsersChecked     int           `json:"zendesk_users_checked"`
	TicketsChecked   int           `json:"zendesk_tickets_checked"`
	MismatchCount    int           `json:"mismatch_count"`
	Mismatches       []string      `json:"mismatches,omitempty"` // the first 10
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	created := ""
	if r.TenantCreated {
		created = ", created for this run"
	}
	p("clvd loadtest against %s, tenant %s%s", r.URL, r.Tenant, created)
	limit := "for " + r.Duration
	if r.Count > 0 {
		limit = fmt.Sprintf("%d requests", r.Count)
		if d, _ := time.ParseDuration(r.Duration); d > 0 {
			limit += " or " + r.Duration
		}
	}
	p("load       %s, %s; %d customers, %.0f%% ticket events, %.0f%% in bursts, %.0f%% duplicates (seed %d)",
		rateText(r.Rate, r.Workers), limit, r.Customers, 100*r.TicketShare, 100*r.BurstShare, 100*r.DuplicateShare, r.Seed)
	in := r.Intake
	p("intake     %d requests in %.2fs: %.1f req/s sent, %.1f req/s answered 2xx (load test process: %.1f s CPU)", in.Requests, in.Seconds,
		in.RequestsPerSec, in.ThroughputPerSec, in.ClientCPUSeconds)
	p("latency    p50 %s  p95 %s  p99 %s  max %s  (mean %s)", msText(in.LatencyMs.P50), msText(in.LatencyMs.P95),
		msText(in.LatencyMs.P99), msText(in.LatencyMs.Max), msText(in.LatencyMs.Mean))
	p("status     %s", countsText(in.StatusCodes))
	p("answers    %s", countsText(in.Answers))
	for _, e := range in.Errors {
		p("error      %s", e)
	}
	if e := r.EndToEnd; e != nil {
		line := fmt.Sprintf("end-to-end webhook → first tag call on the ticket, %d tickets: p50 %s  p95 %s  p99 %s  max %s",
			e.Tickets, msText(e.P50), msText(e.P95), msText(e.P99), msText(e.Max))
		if e.NotTagged > 0 {
			line += fmt.Sprintf("; %d acknowledged tickets never tagged", e.NotTagged)
		}
		p("%s", line)
	}
	if z := r.FakeZendesk; z != nil {
		p("zendesk    fake at %s: %d requests (%s): %d tag writes, %d user look-ups, %d outreach tickets created", z.URL, z.Requests,
			countsText(z.ByStatus), z.TagCalls, z.UserLookups, z.TicketsCreated)
		if z.Requests == 0 && r.Audit.Events.TicketEvents > 0 {
			p("           the fake received nothing: does the service run with CLVD_ALLOW_LOCAL_TARGETS=true, and does the tenant's Zendesk URL point at the fake?")
		}
	}
	if o := r.Outage; o != nil {
		calls := 0
		if r.FakeZendesk != nil {
			for _, n := range r.FakeZendesk.OutageCalls {
				calls += n
			}
		}
		line := fmt.Sprintf("outage     fake Zendesk down (%s) from %.0fs to %.0fs: %d calls during it", o.Mode, o.AtSeconds, o.AtSeconds+o.ForSeconds, calls)
		if calls > 0 {
			line += " (" + countsText(r.FakeZendesk.OutageCalls) + ")"
		}
		if r.Audit.Pass {
			line += fmt.Sprintf("; audit passed %.1fs after it ended", o.PassedAfterSeconds)
		}
		p("%s", line)
	}
	a := r.Audit
	ev := a.Events
	p("audit")
	p("  sent         %d requests: %d distinct events (%d order, %d ticket) and %d deliberate duplicates", ev.Requests, ev.Unique,
		ev.Orders, ev.TicketEvents, ev.DuplicatesSent)
	p("  acknowledged %d requests; %d distinct events, %d never acknowledged; rejected: %s", ev.Acknowledged, ev.UniqueAcknowledged,
		ev.NotAcknowledged, countsText(ev.Rejected))
	p("  duplicates   %d answered \"duplicate\", %d re-ingested after the first was processed (must change nothing)",
		ev.DuplicatesAnswered, ev.DuplicatesReingested)
	var stored []string
	for _, c := range a.Stored {
		s := fmt.Sprintf("%s %d", c.What, c.Got)
		if !c.OK {
			s += " (want " + c.want() + ")"
		}
		stored = append(stored, s)
	}
	p("  stored       %s", strings.Join(stored, ", "))
	p("  pipeline     %d stale scores, %d customers with unwritten tags", a.Stale, a.Unsynced)
	if r.FakeZendesk != nil {
		p("  tags         %d customers checked; %d Zendesk users and %d tickets compared with the store", a.CustomersChecked, a.UsersChecked, a.TicketsChecked)
	} else {
		p("  tags         %d customers checked in the store; the helpdesk side is not checked without --fake-zendesk", a.CustomersChecked)
	}
	for _, m := range a.Mismatches {
		p("  mismatch     %s", m)
	}
	if a.MismatchCount > len(a.Mismatches) {
		p("  mismatch     … and %d more", a.MismatchCount-len(a.Mismatches))
	}
	switch {
	case a.Pass:
		p("  result       PASS (drained %.1fs after the last answer)", a.DrainSeconds)
	default:
		p("  result       FAIL: %d mismatches", a.MismatchCount)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func msText(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
