package worker

// BenchmarkDrain measures how fast workers work off a backlog: N order events are queued (not timed)
// for a tenant that already has a fitted model and every customer scored, then a worker server
// (NewServer + NewHandlers, the production concurrency) is started and the time until every ingest
// and rescore task is done is measured: the ingest and score queues empty (pending, scheduled, active,
// retry) and every customer's ScoredVersion equal to its DataVersion. Rescore debounce 50 ms, queue
// poll 20 ms. See docs/PERFORMANCE.md for figures. Run against the local Redis (database 6, flushed)
// and, when CLVD_TEST_DATABASE_URL is set, PostgreSQL too (a fresh schema, dropped afterwards):
//
//	CLVD_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
//	CLVD_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	go test -run '^$' -bench Drain -benchtime 1x -timeout 30m ./worker/
//
// Without CLVD_TEST_REDIS_URL an in-process miniredis is used and the output says so. Knobs:
// CLVD_BENCH_DRAIN_EVENTS (default 10000), CLVD_BENCH_DRAIN_CUSTOMERS (default events/5),
// CLVD_BENCH_DRAIN_HISTORY (orders per customer before the backlog, default 2),
// CLVD_BENCH_WORKER_CONCURRENCY (default 10, the production default).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

// drainRedisDB is the Redis database this benchmark uses (and flushes) on the CLVD_TEST_REDIS_URL
// server, apart from the tests' databases 1 and 2 and the intake benchmark's 5.
const drainRedisDB = 6

const (
	drainDebounce = 50 * time.Millisecond
	drainPoll     = 20 * time.Millisecond
	drainTimeout  = 15 * time.Minute
)

func drainEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// drainRedis returns a client on CLVD_TEST_REDIS_URL's server, database drainRedisDB, or a miniredis.
func drainRedis(b *testing.B) (*redis.Client, string) {
	raw := os.Getenv("CLVD_TEST_REDIS_URL")
	if raw == "" {
		m := miniredis.RunT(b)
		return redis.NewClient(&redis.Options{Addr: m.Addr()}),
			"NOTE: CLVD_TEST_REDIS_URL is unset: using an in-process miniredis, NOT a real Redis; these figures are not representative"
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		b.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	opt.DB = drainRedisDB
	rc := redis.NewClient(opt)
	if err := rc.Ping(context.Background()).Err(); err != nil {
		b.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	return rc, "redis " + opt.Addr + " db " + strconv.Itoa(drainRedisDB)
}

// drainSchema creates a fresh PostgreSQL schema and returns base with search_path set to it; the
// schema is dropped when b ends.
func drainSchema(b *testing.B, base string) string {
	b.Helper()
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	schema := "bench_" + hex.EncodeToString(buf)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		b.Fatalf("CLVD_TEST_DATABASE_URL: %v", err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func BenchmarkDrain(b *testing.B) {
	events := drainEnv("CLVD_BENCH_DRAIN_EVENTS", 10000)
	customers := drainEnv("CLVD_BENCH_DRAIN_CUSTOMERS", max(1, events/5))
	history := drainEnv("CLVD_BENCH_DRAIN_HISTORY", 2)
	concurrency := drainEnv("CLVD_BENCH_WORKER_CONCURRENCY", 10)
	rc, where := drainRedis(b)
	defer rc.Close()
	backends := []struct{ name, dsn string }{{"sqlite", ""}}
	if pg := os.Getenv("CLVD_TEST_DATABASE_URL"); pg != "" {
		backends = append(backends, struct{ name, dsn string }{"postgres", pg})
	}
	for _, be := range backends {
		b.Run(fmt.Sprintf("%s/events=%d", be.name, events), func(b *testing.B) {
			b.Logf("%s; %d events over %d customers (%d orders each before), worker concurrency %d, debounce %s, poll %s",
				where, events, customers, history, concurrency, drainDebounce, drainPoll)
			for range b.N {
				dsn := be.dsn
				if dsn != "" {
					b.StopTimer()
					dsn = drainSchema(b, be.dsn)
					b.StartTimer()
				}
				drainOnce(b, rc, dsn, events, customers, history, concurrency)
			}
		})
	}
}

// drainOrder is the i-th order of customer c, at a time in the past year.
func drainOrder(c, i, total int, prefix string, now time.Time) integrations.Order {
	at := now.Add(-time.Duration(360-300*(i+1)/(total+1)) * 24 * time.Hour).Add(-time.Duration(c%1440) * time.Minute).UTC().Truncate(time.Second)
	cust := strconv.Itoa(c)
	return integrations.Order{Source: integrations.SourceOrders, OrderID: prefix + cust + "-" + strconv.Itoa(i), CustomerExternalID: "cus_" + cust,
		Email: "c" + cust + "@example.com", CreatedAt: at, UpdatedAt: at, Currency: "EUR", TotalMinor: int64(2000 + (c*37+i*101)%15000),
		Status: integrations.OrderPaid}
}

func drainOnce(b *testing.B, rc *redis.Client, dsn string, events, customers, history, concurrency int) {
	b.StopTimer()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	box, err := secretbox.New(make([]byte, secretbox.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, dsn, b.TempDir(), box)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tenant := &store.Tenant{Name: "Bench"}
	if err := db.CreateTenant(ctx, tenant); err != nil {
		b.Fatal(err)
	}
	if err := rc.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rc)
	q := NewQueue(client, drainDebounce)
	h := NewHandlers(db, q, func(*store.Tenant) (Helpdesk, error) { return nil, ErrNoHelpdesk }, log)

	// The tenant's past: history orders per customer, a fitted model and population, every customer
	// scored, so the backlog is steady-state work (no bootstrap refit).
	setup := time.Now()
	now := time.Now()
	perCustomer := (events + customers - 1) / customers
	parallel(customers, 4, func(c int) {
		for i := range history {
			o := drainOrder(c, i, history+perCustomer, "h", now)
			if _, err := StoreOrderEvent(ctx, db, tenant.ID, integrations.OrderEvent{Topic: "order", Order: &o}, false); err != nil {
				b.Error(err)
			}
		}
	})
	if err := h.Refit(ctx, tenant.ID, "bench"); err != nil {
		b.Fatal(err)
	}
	rec, err := db.LatestModel(ctx, tenant.ID)
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for after := int64(0); ; {
		page, err := db.CustomerIDs(ctx, tenant.ID, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	parallel(len(ids), 4, func(i int) {
		if err := h.rescore(ctx, tenant.ID, ids[i]); err != nil {
			b.Error(err)
		}
	})
	if err := rc.FlushDB(ctx).Err(); err != nil { // the refit's rescore batch, done above
		b.Fatal(err)
	}
	b.Logf("setup: %d customers, %d history orders, model %q (%d customers), rescored, in %s",
		len(ids), customers*history, rec.Kind, rec.Customers, time.Since(setup).Round(time.Millisecond))

	// The backlog: events round-robin over the customers, as webhooks would have queued them.
	enq := time.Now()
	parallel(events, 8, func(k int) {
		c, i := k%customers, history+k/customers
		o := drainOrder(c, i, history+perCustomer, "b", now)
		ev := integrations.OrderEvent{Topic: "order", EventID: "bench-" + strconv.Itoa(k), Order: &o}
		if dup, err := q.EnqueueOrder(ctx, tenant.ID, ev); err != nil || dup {
			b.Errorf("enqueue %d: duplicate=%v err=%v", k, dup, err)
		}
	})
	if b.Failed() {
		b.FailNow()
	}
	b.Logf("queued %d events in %s", events, time.Since(enq).Round(time.Millisecond))

	srv := NewServer(rc, ServerOptions{Concurrency: concurrency, Poll: drainPoll, ShutdownTimeout: 10 * time.Second, Logger: log})
	mux := asynq.NewServeMux()
	h.Register(mux)

	b.StartTimer()
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	var ingestDone time.Duration
	for {
		ingest := drainQueueLen(b, rc, queueIngest)
		if ingest == 0 && ingestDone == 0 {
			ingestDone = time.Since(start)
		}
		if ingest == 0 && drainQueueLen(b, rc, queueScore) == 0 {
			stale, err := db.StaleScores(ctx, time.Now().Add(time.Hour), 1)
			if err != nil {
				b.Fatal(err)
			}
			if len(stale) == 0 {
				break
			}
		}
		if time.Since(start) > drainTimeout {
			b.Fatalf("backlog not drained after %s", drainTimeout)
		}
		time.Sleep(drainPoll)
	}
	drain := time.Since(start)
	b.StopTimer()
	srv.Shutdown()

	// Check: queue statistics, every event stored, every customer scored at its data version.
	insp := asynq.NewInspectorFromRedisClient(rc)
	var processed [2]int
	for i, qn := range []string{queueIngest, queueScore} {
		qi, err := insp.GetQueueInfo(qn)
		if err != nil {
			b.Fatal(err)
		}
		if qi.Size != 0 || qi.Failed != 0 {
			b.Fatalf("queue %s: size %d, failed %d", qn, qi.Size, qi.Failed)
		}
		processed[i] = qi.Processed
	}
	if qi, err := insp.GetQueueInfo(queueMaintenance); err == nil && qi.Processed+qi.Size > 0 {
		b.Logf("maintenance queue: %d processed, %d left (a refit would add rescores outside the count)", qi.Processed, qi.Size)
	}
	orders := 0
	if err := db.ForEachCustomerOrders(ctx, tenant.ID, 1000, func(_ int64, recs []store.OrderRecord) error {
		orders += len(recs)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if want := customers*history + events; orders != want {
		b.Fatalf("%d orders stored, want %d", orders, want)
	}
	for _, id := range ids {
		c, err := db.GetCustomer(ctx, tenant.ID, id)
		if err != nil {
			b.Fatal(err)
		}
		if c.ScoredVersion != c.DataVersion {
			b.Fatalf("customer %d: scored version %d, data version %d", id, c.ScoredVersion, c.DataVersion)
		}
	}
	if len(ids) != customers {
		b.Fatalf("%d customers, want %d", len(ids), customers)
	}
	b.Logf("drained in %s (ingest queue empty after %s): %d ingest and %d rescore tasks",
		drain.Round(time.Millisecond), ingestDone.Round(time.Millisecond), processed[0], processed[1])
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(ingestDone.Seconds(), "ingest-s")
	b.ReportMetric(float64(events)/drain.Seconds(), "events/s")
	b.ReportMetric(float64(processed[1]), "rescores")
	b.ReportMetric(float64(processed[1])/drain.Seconds(), "rescores/s")
	b.ReportMetric(math.Round(float64(events)/float64(customers)*10)/10, "events/customer")
}

// drainQueueLen is the number of a queue's pending, scheduled, active and retry tasks (the keys the
// asynq Inspector counts), read with one cheap round trip.
func drainQueueLen(b *testing.B, rc *redis.Client, qname string) int64 {
	ctx := context.Background()
	p := rc.Pipeline()
	cmds := []interface{ Val() int64 }{
		p.LLen(ctx, "asynq:{"+qname+"}:pending"),
		p.LLen(ctx, "asynq:{"+qname+"}:active"),
		p.ZCard(ctx, "asynq:{"+qname+"}:scheduled"),
		p.ZCard(ctx, "asynq:{"+qname+"}:retry"),
	}
	if _, err := p.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
