package webhook

// Intake benchmarks: how many signed, unique webhooks per second the real router accepts durably
// (202 only once the task is in Redis), compared with the least work a durable intake must do, with
// one load generator and one Redis. See docs/PERFORMANCE.md for figures. Run against the local Redis
// (this benchmark uses its database 5 and flushes it):
//
//	CLVD_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench Intake -benchtime 3s -count 3 ./webhook/
//
// Without CLVD_TEST_REDIS_URL an in-process miniredis is used and every sub-benchmark says so.
// CLVD_BENCH_CLIENTS sets the number of client goroutines, each with its own keep-alive connection
// (default 64: on the 2-core machine of docs/PERFORMANCE.md, throughput peaks at 64-128).
//
// Sub-benchmarks:
//
//	clvd-{shopify,zendesk,orders}  the real router and worker.Queue over loopback HTTP, saturated
//	minimal                        net/http handler: read body, HMAC check, one asynq Enqueue of a
//	                               payload as large as clvd's; same requests as clvd-shopify
//	bare-enqueue                   asynq Enqueue of that payload in a loop, no HTTP
//	queue-only                     worker.Queue.EnqueueOrder (JSON, task id, options) in a loop, no HTTP
//	router-noqueue                 the router in-process (no HTTP, a no-op queue): Gin, verify, parse, log
//	paired                         0.5 s saturated slices of clvd-shopify, -zendesk, -orders and minimal
//	                               in rotating order, one round per b.N: clvd/minimal throughput ratios
//	                               that slow drifts of a shared machine do not bias
//	latency-half/clvd-*            paced, open-loop load at half of that source's saturated rate;
//	                               latency runs from each request's scheduled send time when the
//	                               generator is behind schedule (queueing is not hidden)
//	latency-half/minimal           the same offered rate as latency-half/clvd-shopify
//	latency-half/minimal-own       half of minimal's own saturated rate: the same load, relative to
//	                               capacity, as each clvd source gets
//	latency-half-gogc400/*         latency-half/clvd-shopify and /minimal with GOGC=400

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/integrations/shopify"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// intakeRedisDB is the Redis database these benchmarks use (and flush) on the CLVD_TEST_REDIS_URL
// server, apart from the tests' databases 1 and 2.
const intakeRedisDB = 5

// intakeQueue is the asynq queue clvd puts ingest tasks on (worker's queueIngest).
const intakeQueue = "ingest"

const intakeTenant = "bench"

// intakeSeq numbers requests; with intakeNonce every delivery of every run is unique.
var (
	intakeSeq   atomic.Uint64
	intakeNonce = strconv.FormatInt(time.Now().UnixNano(), 36)
)

// intakeGen builds one correctly signed, unique request for delivery n.
type intakeGen func(base string, n uint64) *http.Request

func intakeShopify(base string, n uint64) *http.Request {
	id := strconv.FormatUint(1_000_000_000+n, 10)
	cust := strconv.FormatUint(n%5000, 10)
	body := []byte(`{"id":` + id + `,"email":"c` + cust + `@example.com","created_at":"2026-11-20T10:00:00-05:00","updated_at":"2026-11-20T10:05:00-05:00",` +
		`"total_price":"199.00","currency":"USD","financial_status":"paid","cancelled_at":null,"customer":{"id":` + cust + `,"email":"c` + cust +
		`@example.com","first_name":"Jon","last_name":"Doe"},"refunds":[]}`)
	r, _ := http.NewRequest(http.MethodPost, base+"/webhooks/"+intakeTenant+"/shopify", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(shopify.HeaderTopic, "orders/create")
	r.Header.Set(shopify.HeaderEventID, intakeNonce+"-"+id)
	r.Header.Set(shopify.HeaderHmac, signShopify(shopifySecret, body))
	return r
}

func intakeZendesk(base string, n uint64) *http.Request {
	id := strconv.FormatUint(n, 10)
	body := zendeskTicketCreated(intakeNonce+"-"+id, id)
	ts := time.Now().UTC().Format(time.RFC3339)
	r, _ := http.NewRequest(http.MethodPost, base+"/webhooks/"+intakeTenant+"/zendesk", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
	r.Header.Set("X-Zendesk-Webhook-Signature", signZendesk(zendeskSecret, ts, body))
	return r
}

func intakeOrders(base string, n uint64) *http.Request {
	id := strconv.FormatUint(n, 10)
	body := []byte(`{"order_id":"` + intakeNonce + `-` + id + `","customer_id":"cus_` + strconv.FormatUint(n%5000, 10) + `","email":"ada@example.com",` +
		`"name":"Ada Lovelace","created_at":"2026-11-14T09:26:53Z","amount":"59.90","currency":"EUR","status":"paid","event_id":"evt-` + intakeNonce + `-` + id + `"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	r, _ := http.NewRequest(http.MethodPost, base+"/webhooks/"+intakeTenant+"/orders", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(orders.HeaderTimestamp, ts)
	r.Header.Set(orders.HeaderSignature, orders.Sign([]byte(ordersSecret), ts, body))
	return r
}

// intakeRedis connects to CLVD_TEST_REDIS_URL's server, database intakeRedisDB, or starts a miniredis.
func intakeRedis(b *testing.B) (*redis.Client, string) {
	raw := os.Getenv("CLVD_TEST_REDIS_URL")
	if raw == "" {
		m := miniredis.RunT(b)
		return redis.NewClient(&redis.Options{Addr: m.Addr()}), intakeMiniNote
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		b.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	opt.DB = intakeRedisDB
	rc := redis.NewClient(opt)
	if err := rc.Ping(context.Background()).Err(); err != nil {
		b.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	return rc, "redis " + opt.Addr + " db " + strconv.Itoa(intakeRedisDB)
}

const intakeMiniNote = "NOTE: CLVD_TEST_REDIS_URL is unset: using an in-process miniredis, NOT a real Redis; these figures are not representative"

var (
	intakeSetup  string
	intakeNoted  = map[string]bool{}
	intakeNoteMu sync.Mutex
)

// intakeNote states the setup (Redis, clients, payload size) once in every sub-benchmark's output:
// the parent benchmark's own log is not printed. With miniredis that line says it is not a real Redis.
func intakeNote(b *testing.B) {
	intakeNoteMu.Lock()
	defer intakeNoteMu.Unlock()
	if !intakeNoted[b.Name()] {
		intakeNoted[b.Name()] = true
		b.Log(intakeSetup)
	}
}

func intakeFlush(b *testing.B, rc *redis.Client) {
	b.Helper()
	if err := rc.FlushDB(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

func intakeClients() int {
	if n, err := strconv.Atoi(os.Getenv("CLVD_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 64
}

func intakeHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout: time.Minute, DisableCompression: true}}
}

// intakeSend posts r and reports whether the answer was 202 "queued" (a new, durably queued event).
func intakeSend(c *http.Client, r *http.Request, buf []byte) bool {
	resp, err := c.Do(r)
	if err != nil {
		return false
	}
	n, _ := io.ReadFull(resp.Body, buf)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted && bytes.Contains(buf[:n], []byte(`"queued"`))
}

// intakeMinimal is the least a durable intake must do: read the body, check its HMAC (Shopify's
// scheme), enqueue one task of clvd's payload size, answer 202.
func intakeMinimal(client *asynq.Client, secret []byte, payloadSize int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got, err := base64.StdEncoding.DecodeString(r.Header.Get(shopify.HeaderHmac))
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if err != nil || !hmac.Equal(m.Sum(nil), got) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		payload := make([]byte, max(payloadSize, len(body)))
		copy(payload, body)
		if _, err := client.EnqueueContext(r.Context(), asynq.NewTask(worker.TypeIngestOrder, payload), asynq.Queue(intakeQueue)); err != nil {
			http.Error(w, "queue unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"queued"}`))
	})
}

// nopQueue accepts everything without storing it: for router-noqueue only.
type nopQueue struct{}

func (nopQueue) EnqueueOrder(context.Context, string, integrations.OrderEvent) (bool, error) {
	return false, nil
}
func (nopQueue) EnqueueTicket(context.Context, string, integrations.TicketEvent) (bool, error) {
	return false, nil
}

func intakeRouter(q Queue) http.Handler {
	tenants := fakeTenants{intakeTenant: {ID: intakeTenant, Name: "Bench", Zendesk: store.ZendeskAccount{WebhookSecret: zendeskSecret},
		ShopifySecret: shopifySecret, OrdersSecret: ordersSecret}}
	// As in production (cmd/clvd): Gin release mode, JSON logs at level info (request logs are debug).
	return NewRouter(Options{Tenants: tenants, Queue: q, MaxBodyBytes: 1 << 20, SignatureTolerance: 5 * time.Minute,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))})
}

// clvdPayloadSize enqueues one Shopify event through worker.Queue and returns its task's payload size.
func clvdPayloadSize(b *testing.B, rc *redis.Client, q *worker.Queue) int {
	b.Helper()
	r := intakeShopify("http://x", 0)
	body, _ := io.ReadAll(r.Body)
	ev, err := shopify.ParseEvent("orders/create", body, "size-probe")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := q.EnqueueOrder(context.Background(), intakeTenant, ev); err != nil {
		b.Fatal(err)
	}
	tasks, err := asynq.NewInspectorFromRedisClient(rc).ListPendingTasks(intakeQueue)
	if err != nil || len(tasks) != 1 {
		b.Fatalf("size probe: %d tasks, %v", len(tasks), err)
	}
	intakeFlush(b, rc)
	return len(tasks[0].Payload)
}

// latencies are percentiles of a sample, in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func numGC() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}

// checkQueued verifies that want tasks are pending in Redis: every 202 was a real, distinct task.
func checkQueued(b *testing.B, rc *redis.Client, want int) {
	b.Helper()
	n, err := rc.LLen(context.Background(), "asynq:{"+intakeQueue+"}:pending").Result()
	if err != nil {
		b.Fatal(err)
	}
	if int(n) != want {
		b.Fatalf("%d tasks pending in Redis, want %d", n, want)
	}
}

// saturate drives url with b.N unique requests from intakeClients() goroutines over keep-alive
// connections and reports req/s and latency percentiles. It returns the rate.
func saturate(b *testing.B, rc *redis.Client, url string, gen intakeGen) float64 {
	intakeFlush(b, rc)
	clients := intakeClients()
	hc := intakeHTTPClient(clients)
	defer hc.CloseIdleConnections()
	warm := intakeWarmUp(b, hc, url, gen, clients)
	var (
		mu  sync.Mutex
		all []time.Duration
		bad atomic.Int64
	)
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	gc0 := numGC()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 4096)
		buf := make([]byte, 256)
		for pb.Next() {
			r := gen(url, intakeSeq.Add(1))
			t0 := time.Now()
			if !intakeSend(hc, r, buf) {
				bad.Add(1)
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d of %d requests not answered 202 queued", n, b.N)
	}
	checkQueued(b, rc, b.N+warm)
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(float64(numGC()-gc0)/b.Elapsed().Seconds(), "GCs/s")
	reportLatency(b, all)
	return rate
}

// intakeWarmUp opens the keep-alive connections (and warms the tenant cache) before timing.
func intakeWarmUp(b *testing.B, hc *http.Client, url string, gen intakeGen, clients int) int {
	b.Helper()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !intakeSend(hc, gen(url, intakeSeq.Add(1)), make([]byte, 256)) {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		b.Fatalf("warm-up: %d requests not answered 202 queued", bad.Load())
	}
	return clients
}

// paced sends b.N requests on an open-loop schedule of rate req/s (request k is due at start+k/rate),
// from enough goroutines that a slow answer does not hold the schedule back. A request's latency runs
// from its due time when its goroutine was still busy at that time (so queueing is not hidden), else
// from when it was sent (so timer slack is not counted).
func paced(b *testing.B, rc *redis.Client, url string, gen intakeGen, rate float64) {
	intakeFlush(b, rc)
	workers := 4 * intakeClients()
	hc := intakeHTTPClient(workers)
	defer hc.CloseIdleConnections()
	warm := intakeWarmUp(b, hc, url, gen, workers)
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, b.N)
	var (
		next atomic.Int64
		bad  atomic.Int64
		wg   sync.WaitGroup
	)
	gc0 := numGC()
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for {
				k := next.Add(1) - 1
				if k >= int64(b.N) {
					return
				}
				due := start.Add(time.Duration(k) * interval)
				from := due
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
					from = time.Now()
				}
				r := gen(url, intakeSeq.Add(1))
				if !intakeSend(hc, r, buf) {
					bad.Add(1)
				}
				lat[k] = time.Since(from)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d of %d requests not answered 202 queued", n, b.N)
	}
	checkQueued(b, rc, b.N+warm)
	b.ReportMetric(rate, "offered-req/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	reportLatency(b, lat)
	b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
	over := 0
	for _, l := range lat {
		if l > 10*time.Millisecond {
			over++
		}
	}
	b.ReportMetric(100*float64(over)/float64(len(lat)), "%>10ms")
	b.ReportMetric(float64(numGC()-gc0)/b.Elapsed().Seconds(), "GCs/s")
}

// burst drives url from clients goroutines for d and returns the requests answered 202 queued and
// the time until the last one was answered.
func burst(hc *http.Client, url string, gen intakeGen, clients int, d time.Duration) (int64, time.Duration, int64) {
	var n, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for time.Now().Before(stop) {
				if intakeSend(hc, gen(url, intakeSeq.Add(1)), buf) {
					n.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start), bad.Load()
}

// pairedSlice is how long each target is driven in one round of the paired sub-benchmark.
const pairedSlice = 500 * time.Millisecond

// paired alternates saturated slices of every target (the order rotating each round), so that slow
// drifts of the shared machine affect all of them alike, and reports each clvd source's throughput as
// a ratio of minimal's over the same rounds. One b.N iteration is one round.
func paired(b *testing.B, rc *redis.Client, targets []pairedTarget) {
	clients := intakeClients()
	for i := range targets {
		targets[i].hc = intakeHTTPClient(clients)
		defer targets[i].hc.CloseIdleConnections()
		intakeWarmUp(b, targets[i].hc, targets[i].url, targets[i].gen, clients)
	}
	done := make([]int64, len(targets))
	took := make([]time.Duration, len(targets))
	var rounds []string
	b.ResetTimer()
	for r := range b.N {
		line := ""
		for k := range targets {
			t := &targets[(r+k)%len(targets)]
			b.StopTimer()
			intakeFlush(b, rc)
			b.StartTimer()
			n, d, bad := burst(t.hc, t.url, t.gen, clients, pairedSlice)
			if bad > 0 {
				b.Fatalf("%s: %d requests not answered 202 queued", t.name, bad)
			}
			done[(r+k)%len(targets)] += n
			took[(r+k)%len(targets)] += d
			line += fmt.Sprintf(" %s=%.0f", t.name, float64(n)/d.Seconds())
		}
		rounds = append(rounds, line)
	}
	b.StopTimer()
	rate := func(i int) float64 { return float64(done[i]) / took[i].Seconds() }
	base := rate(len(targets) - 1) // minimal is last
	for i, t := range targets[:len(targets)-1] {
		b.ReportMetric(rate(i)/base, t.name+"/minimal")
	}
	b.ReportMetric(base, "minimal-req/s")
	if len(rounds) > 1 {
		for i, l := range rounds {
			b.Logf("round %d req/s:%s", i+1, l)
		}
	}
}

type pairedTarget struct {
	name, url string
	gen       intakeGen
	hc        *http.Client
}

// probeRate measures a saturated rate outside the benchmark timer, for a latency-half run started
// without the saturated run before it (e.g. -bench Intake/latency).
func probeRate(b *testing.B, rc *redis.Client, url string, gen intakeGen) float64 {
	b.Helper()
	clients := intakeClients()
	hc := intakeHTTPClient(clients)
	defer hc.CloseIdleConnections()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(3 * time.Second)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for time.Now().Before(stop) {
				if intakeSend(hc, gen(url, intakeSeq.Add(1)), buf) {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(n.Load()) / time.Since(start).Seconds()
	intakeFlush(b, rc)
	b.Logf("probed saturated rate: %.0f req/s", rate)
	return rate
}

func BenchmarkIntake(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	rc, where := intakeRedis(b)
	defer rc.Close()
	intakeFlush(b, rc)
	client := asynq.NewClientFromRedisClient(rc)
	queue := worker.NewQueue(client, time.Second)
	payloadSize := clvdPayloadSize(b, rc, queue)
	intakeSetup = fmt.Sprintf("%s; GOMAXPROCS=%d; %d client goroutines; clvd task payload %d bytes (minimal and bare-enqueue use the same size)",
		where, runtime.GOMAXPROCS(0), intakeClients(), payloadSize)

	clvdSrv := httptest.NewServer(intakeRouter(queue))
	defer clvdSrv.Close()
	minimalSrv := httptest.NewServer(intakeMinimal(client, []byte(shopifySecret), payloadSize))
	defer minimalSrv.Close()

	sources := []struct {
		name string
		gen  intakeGen
	}{{"shopify", intakeShopify}, {"zendesk", intakeZendesk}, {"orders", intakeOrders}}
	saturated := map[string]float64{}
	for _, s := range sources {
		b.Run("clvd-"+s.name, func(b *testing.B) {
			intakeNote(b)
			saturated[s.name] = saturate(b, rc, clvdSrv.URL, s.gen)
		})
	}
	b.Run("minimal", func(b *testing.B) {
		intakeNote(b)
		saturated["minimal"] = saturate(b, rc, minimalSrv.URL, intakeShopify)
	})
	b.Run("bare-enqueue", func(b *testing.B) {
		intakeNote(b)
		intakeFlush(b, rc)
		template := make([]byte, payloadSize)
		var (
			mu  sync.Mutex
			all []time.Duration
		)
		b.SetParallelism((intakeClients() + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			lat := make([]time.Duration, 0, 4096)
			for pb.Next() {
				payload := make([]byte, len(template))
				copy(payload, template)
				t0 := time.Now()
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(worker.TypeIngestOrder, payload), asynq.Queue(intakeQueue)); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
		b.StopTimer()
		checkQueued(b, rc, b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		reportLatency(b, all)
	})
	b.Run("queue-only", func(b *testing.B) {
		intakeNote(b)
		intakeFlush(b, rc)
		r := intakeShopify("http://x", 0)
		body, _ := io.ReadAll(r.Body)
		ev, err := shopify.ParseEvent("orders/create", body, "")
		if err != nil {
			b.Fatal(err)
		}
		b.SetParallelism((intakeClients() + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				e := ev
				e.EventID = intakeNonce + "-q-" + strconv.FormatUint(intakeSeq.Add(1), 10)
				if dup, err := queue.EnqueueOrder(ctx, intakeTenant, e); err != nil || dup {
					b.Errorf("duplicate=%v err=%v", dup, err)
					return
				}
			}
		})
		b.StopTimer()
		checkQueued(b, rc, b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("router-noqueue", func(b *testing.B) {
		intakeNote(b)
		h := intakeRouter(nopQueue{})
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, intakeShopify("http://x", intakeSeq.Add(1)))
				if w.Code != http.StatusAccepted {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})

	b.Run("paired", func(b *testing.B) {
		intakeNote(b)
		paired(b, rc, []pairedTarget{{name: "shopify", url: clvdSrv.URL, gen: intakeShopify}, {name: "zendesk", url: clvdSrv.URL, gen: intakeZendesk},
			{name: "orders", url: clvdSrv.URL, gen: intakeOrders}, {name: "minimal", url: minimalSrv.URL, gen: intakeShopify}})
	})

	rateFor := func(b *testing.B, name, url string, gen intakeGen) float64 {
		if r := saturated[name]; r > 0 {
			return r / 2
		}
		saturated[name] = probeRate(b, rc, url, gen)
		return saturated[name] / 2
	}
	for _, s := range sources {
		b.Run("latency-half/clvd-"+s.name, func(b *testing.B) {
			intakeNote(b)
			paced(b, rc, clvdSrv.URL, s.gen, rateFor(b, s.name, clvdSrv.URL, s.gen))
		})
	}
	b.Run("latency-half/minimal", func(b *testing.B) {
		intakeNote(b)
		paced(b, rc, minimalSrv.URL, intakeShopify, rateFor(b, "shopify", clvdSrv.URL, intakeShopify))
	})
	b.Run("latency-half/minimal-own", func(b *testing.B) {
		intakeNote(b)
		paced(b, rc, minimalSrv.URL, intakeShopify, rateFor(b, "minimal", minimalSrv.URL, intakeShopify))
	})
	// The same two paced runs with the collector set to GOGC=400 (a deployment setting), to show how
	// much of the tail is garbage collection on 2 cores.
	for _, t := range []struct {
		name string
		url  string
	}{{"clvd-shopify", clvdSrv.URL}, {"minimal", minimalSrv.URL}} {
		b.Run("latency-half-gogc400/"+t.name, func(b *testing.B) {
			intakeNote(b)
			rate := rateFor(b, "shopify", clvdSrv.URL, intakeShopify)
			defer debug.SetGCPercent(debug.SetGCPercent(400))
			paced(b, rc, t.url, intakeShopify, rate)
		})
	}
}
