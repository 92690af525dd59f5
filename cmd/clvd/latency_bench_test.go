package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

// BenchmarkWebhookToTagLatency measures end-to-end latency with the default settings (1 s rescore
// debounce, 100 ms queue poll): a signed Zendesk ticket.created for a known customer, sent to the
// running service, until the fake Zendesk receives the tag call for that ticket. Each iteration is
// one new ticket; p50/p95/max are reported. Run with:
//
//	go test -run '^$' -bench WebhookToTagLatency -benchtime 30x ./cmd/clvd/
func BenchmarkWebhookToTagLatency(b *testing.B) {
	ctx := context.Background()
	fz := zendesktest.New(b, e2eZendeskEmail, e2eZendeskToken)
	fz.AddUser("9001", "jon@example.com", "Jon Doe")
	cfg := testConfig(b, backend{})
	cfg.RescoreDebounce, cfg.QueuePoll = defaultsForBench()
	s, err := startService(ctx, cfg, parts{api: true, worker: true, embeddedRedis: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	tenant := &store.Tenant{Name: "Bench", ShopifySecret: e2eShopifySecret, OrdersSecret: "x",
		Zendesk: store.ZendeskAccount{BaseURL: fz.URL, Email: e2eZendeskEmail, APIToken: e2eZendeskToken, WebhookSecret: e2eZendeskSecret}}
	if err := s.db.CreateTenant(ctx, tenant); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	postShopify(b, s.URL(), tenant.ID, "orders/create", "ev-1", shopifyOrderJSON(1, "jon@example.com", now.AddDate(0, 0, -40), now.AddDate(0, 0, -40), "50.00", "paid", false))
	fz.AddTicket("1", "new")
	postZendesk(b, s.URL(), tenant.ID, ticketEventJSON("warm", "ticket.created", "1", "9001", "NEW", now))
	waitFor(b, "warm-up ticket tagged", 30*time.Second, func() bool { return len(managed(fz.TicketTags("1"))) == 2 })
	time.Sleep(3 * time.Second) // let the bootstrap refit and its rescore settle

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := strconv.Itoa(100 + i)
		fz.AddTicket(id, "new")
		sent := time.Now()
		postZendesk(b, s.URL(), tenant.ID, ticketEventJSON("ev-"+id, "ticket.created", id, "9001", "NEW", time.Now().UTC()))
		waitFor(b, "ticket "+id+" tagged", 30*time.Second, func() bool { return len(managed(fz.TicketTags(id))) == 2 })
		for _, r := range fz.Requests() {
			if r.Method == http.MethodPut && r.Path == "/api/v2/tickets/update_many.json" && r.RawQuery == "ids="+id {
				lat = append(lat, r.Time.Sub(sent))
				break
			}
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Milliseconds()), "p95-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
	}
}

// defaultsForBench returns the shipped defaults of the settings the tests shorten.
func defaultsForBench() (debounce, poll time.Duration) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	return cfg.RescoreDebounce, cfg.QueuePoll
}
