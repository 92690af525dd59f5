// Package loadtest drives a running clvd with correctly signed, unique Shopify and Zendesk webhooks
// (built on vegeta), can play the Zendesk API itself (FakeZendesk), and audits the outcome: what was
// acknowledged against what the store holds, and the tags the fake Zendesk holds against the tags the
// store says each ticket and user should carry. `clvd loadtest` is its command line.
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// Options configure one run.
type Options struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Tenant is the tenant the webhooks are sent for; its data is read from Store.
	Tenant string
	// ShopifySecret and ZendeskSecret sign the webhooks (the tenant's Shopify secret and Zendesk
	// webhook signing secret).
	ShopifySecret, ZendeskSecret string
	// Rate is requests per second; 0 sends as fast as Workers allow.
	Rate int
	// Workers is how many requests may be in flight at once with Rate 0, and the initial number
	// otherwise (vegeta adds workers when the service falls behind a rate).
	Workers int
	// Duration and Count end the attack, whichever comes first; at least one must be set.
	Duration time.Duration
	Count    int
	Mix      Mix
	// Settle is how long to wait after the last response for the pipeline to drain before the
	// final audit. The audit is repeated until it passes or Settle is over.
	Settle time.Duration
	// Seed makes the traffic reproducible; 0 picks one.
	Seed uint64
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
	Store   *store.DB
	// Zendesk is the built-in fake the tenant's Zendesk points at; nil when the run has none (then
	// the helpdesk side is not audited and no end-to-end latency is measured).
	Zendesk *FakeZendesk
	// Outage takes the fake Zendesk down for a while during the run; needs Zendesk.
	Outage Outage
	// Progress receives a few lines while the run goes on; nil for none.
	Progress io.Writer
}

func (o *Options) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.URL == "" {
		add("the service URL is required")
	}
	if o.Tenant == "" {
		add("a tenant is required")
	}
	if o.Store == nil {
		add("the store is required for the audit")
	}
	if o.Rate < 0 {
		add("rate %d: want ≥ 0", o.Rate)
	}
	if o.Workers < 1 {
		add("workers %d: want ≥ 1", o.Workers)
	}
	if o.Duration < 0 || o.Count < 0 || (o.Duration == 0 && o.Count == 0) {
		add("give a positive duration or count")
	}
	if o.Mix.Customers < 1 {
		add("customers %d: want ≥ 1", o.Mix.Customers)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"burst share", o.Mix.BurstShare}, {"duplicate share", o.Mix.DuplicateShare}, {"ticket share", o.Mix.TicketShare}} {
		if s.v < 0 || s.v > 1 {
			add("%s %g: want 0 to 1", s.name, s.v)
		}
	}
	if o.Mix.DuplicateShare >= 1 {
		add("duplicate share must be below 1: something has to be sent first")
	}
	if o.Mix.TicketShare > 0 && o.ZendeskSecret == "" {
		add("the tenant has no Zendesk webhook secret to sign ticket events with (or use ticket share 0)")
	}
	if o.Outage.Mode != zendesktest.Up && (o.Zendesk == nil || o.Outage.For <= 0 || o.Outage.At < 0) {
		add("a Zendesk outage needs the fake Zendesk, a positive length and a start at or after 0")
	}
	if o.Mix.TicketShare < 1 && o.ShopifySecret == "" {
		add("the tenant has no Shopify secret to sign orders with")
	}
	return errors.Join(errs...)
}

// Outage is a period during which the fake Zendesk is down: from At after the first request, for
// For, answering every call as Mode says (429, 500, or nothing at all).
type Outage struct {
	Mode    zendesktest.Outage
	At, For time.Duration
}

// sendRec is one request as it left: which event, whether it was a deliberate duplicate, and when.
type sendRec struct {
	event int
	dup   bool
	at    time.Time
}

// recorder is the attack's transport: it notes which event each vegeta request carries (vegeta's
// results name only their sequence number) and when it left, and strips the bookkeeping headers.
type recorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	sends map[uint64]sendRec
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	mark := req.Header.Get(headerEvent)
	seq, seqErr := strconv.ParseUint(req.Header.Get(headerSeq), 10, 64)
	out := req.Clone(req.Context())
	out.Header.Del(headerEvent)
	out.Header.Del(headerSeq)
	if idx, err := strconv.Atoi(strings.TrimSuffix(mark, "d")); err == nil && seqErr == nil {
		r.mu.Lock()
		r.sends[seq] = sendRec{event: idx, dup: strings.HasSuffix(mark, "d"), at: time.Now()}
		r.mu.Unlock()
	}
	return r.base.RoundTrip(out)
}

func (r *recorder) take(seq uint64) (sendRec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sends[seq]
	delete(r.sends, seq)
	return s, ok
}

// agentTag is a tag an agent put on each ticket: clvd must never remove it.
const agentTag = "agent_own_tag"

// Run attacks, waits for the pipeline to drain and audits. The error is for a run that could not
// be made; a failed audit is Report.Audit.Pass == false.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if err := o.validate(); err != nil {
		return nil, err
	}
	raw, err := o.Store.TenantSettings(ctx, o.Tenant)
	if err != nil {
		return nil, err
	}
	settings, err := worker.ParseSettings(raw)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", o.Tenant, err)
	}
	before, err := o.Store.CountTenantData(ctx, o.Tenant)
	if err != nil {
		return nil, err
	}

	g := newGenerator(o.URL, o.Tenant, o.ShopifySecret, o.ZendeskSecret, o.Mix, o.Count, o.Seed)
	if o.Zendesk != nil {
		for _, c := range g.customers {
			o.Zendesk.Fake.AddUser(c.userID, c.email, c.first+" "+c.last)
		}
		fake := o.Zendesk.Fake
		g.onNewTicket = func(id string) { fake.AddTicket(id, "new", agentTag) }
	}

	rep := &Report{
		URL: o.URL, Tenant: o.Tenant, Rate: o.Rate, Workers: o.Workers, Duration: o.Duration.String(), Count: o.Count,
		Customers: o.Mix.Customers, BurstShare: o.Mix.BurstShare, DuplicateShare: o.Mix.DuplicateShare,
		TicketShare: o.Mix.TicketShare, Seed: o.Seed,
	}
	progress(o.Progress, "loadtest: sending to %s (tenant %s): %s, %s", o.URL, o.Tenant, rateText(o.Rate, o.Workers), limitText(o.Duration, o.Count))

	rec := &recorder{sends: map[uint64]sendRec{}, base: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConns: 0, MaxIdleConnsPerHost: 10000, IdleConnTimeout: time.Minute,
	}}
	attackOpts := []func(*vegeta.Attacker){
		vegeta.Client(&http.Client{Timeout: o.Timeout, Transport: rec}),
		vegeta.Workers(uint64(o.Workers)),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if o.Rate == 0 {
		attackOpts = append(attackOpts, vegeta.MaxWorkers(uint64(o.Workers)))
	}
	atk := vegeta.NewAttacker(attackOpts...)
	stopOnCancel := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stopOnCancel()

	var metrics vegeta.Metrics
	cpuBefore := processCPU()
	started := time.Now()
	if o.Outage.Mode != zendesktest.Up {
		down := time.AfterFunc(o.Outage.At, func() {
			progress(o.Progress, "loadtest: fake Zendesk down (%s) for %s", o.Outage.Mode, o.Outage.For)
			o.Zendesk.SetOutage(o.Outage.Mode)
		})
		up := time.AfterFunc(o.Outage.At+o.Outage.For, func() {
			o.Zendesk.SetOutage(zendesktest.Up)
			progress(o.Progress, "loadtest: fake Zendesk back up")
		})
		defer down.Stop()
		defer up.Stop()
		rep.Outage = &OutageReport{Mode: o.Outage.Mode.String(), AtSeconds: o.Outage.At.Seconds(), ForSeconds: o.Outage.For.Seconds()}
	}
	in := &rep.Intake
	in.Answers = map[string]int{}
	ev := &rep.Audit.Events
	ev.Rejected = map[string]int{}
	errorsSeen := map[string]bool{}
	for res := range atk.Attack(vegeta.Targeter(g.Next), vegeta.ConstantPacer{Freq: o.Rate, Per: time.Second}, o.Duration, "") {
		if res.Method == "" && res.Error == vegeta.ErrNoTargets.Error() {
			continue // the count is reached: not a request
		}
		metrics.Add(res)
		if res.Error != "" && res.Code == 0 && !errorsSeen[res.Error] && len(in.Errors) < 5 {
			errorsSeen[res.Error] = true
			in.Errors = append(in.Errors, res.Error)
		}
		s, ok := rec.take(res.Seq)
		if !ok {
			ev.Rejected["not sent"]++
			continue
		}
		e := g.event(s.event)
		e.sends++
		if e.firstSent.IsZero() || s.at.Before(e.firstSent) {
			e.firstSent = s.at
		}
		if s.dup {
			ev.DuplicatesSent++
		}
		if res.Code != http.StatusAccepted {
			key := strconv.Itoa(int(res.Code))
			if res.Code == 0 {
				key = "error"
			}
			ev.Rejected[key]++
			continue
		}
		e.acked++
		ev.Acknowledged++
		var answer struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(res.Body, &answer)
		if answer.Status == "" {
			answer.Status = "other"
		}
		in.Answers[answer.Status]++
		switch answer.Status {
		case "duplicate":
			e.answeredDuplicate++
		case "queued":
			e.answeredQueued++
		}
	}
	metrics.Close()
	attackEnd := time.Now()
	in.ClientCPUSeconds = (processCPU() - cpuBefore).Seconds()
	ev.Requests = int(metrics.Requests)
	in.fill(&metrics)
	progress(o.Progress, "loadtest: %d requests in %.2fs; waiting up to %s for the pipeline to drain", metrics.Requests,
		metrics.Duration.Seconds(), o.Settle)

	a := newAuditor(&o, g, settings, before)
	a.summarise(ev)
	actx := ctx
	if ctx.Err() != nil { // interrupted: still say what the store holds, once
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	deadline := attackEnd.Add(o.Settle)
	for {
		final := !time.Now().Before(deadline) || ctx.Err() != nil
		res, err := a.run(actx, final)
		if err != nil {
			return nil, err
		}
		if res != nil && (res.Pass || final) {
			res.Events = rep.Audit.Events
			rep.Audit = *res
			if res.Pass {
				rep.Audit.DrainSeconds = time.Since(attackEnd).Seconds()
				if rep.Outage != nil {
					rep.Outage.PassedAfterSeconds = time.Since(started).Seconds() - rep.Outage.AtSeconds - rep.Outage.ForSeconds
				}
			}
			break
		}
		wait := min(time.Second, time.Until(deadline))
		select {
		case <-ctx.Done():
		case <-time.After(max(wait, 0)):
		}
	}
	if o.Zendesk != nil {
		rep.EndToEnd = endToEnd(g, o.Zendesk)
		st := o.Zendesk.Stats()
		rep.FakeZendesk = &st
	}
	return rep, nil
}

// event returns event idx (the targeter appends to the list concurrently).
func (g *generator) event(idx int) *event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.events[idx]
}

func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func rateText(rate, workers int) string {
	if rate == 0 {
		return fmt.Sprintf("as fast as %d workers go", workers)
	}
	return fmt.Sprintf("%d requests/s", rate)
}

func limitText(d time.Duration, count int) string {
	switch {
	case d > 0 && count > 0:
		return fmt.Sprintf("for %s or %d requests, whichever comes first", d, count)
	case count > 0:
		return fmt.Sprintf("%d requests", count)
	}
	return "for " + d.String()
}

// endToEnd measures, for each ticket whose creation was acknowledged, the time from sending its
// first webhook to the fake Zendesk's first successful tag call naming it.
func endToEnd(g *generator, fz *FakeZendesk) *EndToEnd {
	g.mu.Lock()
	defer g.mu.Unlock()
	var lat []time.Duration
	missing := 0
	for _, e := range g.events {
		if e.source != sourceZendesk || e.topic != "ticket.created" || e.acked == 0 {
			continue
		}
		at, ok := fz.FirstTagCall(e.ticket)
		if !ok {
			missing++
			continue
		}
		lat = append(lat, at.Sub(e.firstSent))
	}
	slices.Sort(lat)
	out := &EndToEnd{Tickets: len(lat), NotTagged: missing}
	if len(lat) > 0 {
		q := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		out.P50, out.P95, out.P99, out.Max = q(0.50), q(0.95), q(0.99), ms(lat[len(lat)-1])
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
