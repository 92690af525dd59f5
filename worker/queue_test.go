package worker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/zendesk"
)

// redisTestDB is this package's database on a shared test Redis, apart from other packages' tests.
const redisTestDB = 2

// testRedis returns clients for every Redis the tests run against: always an in-process one, plus the
// real server named by CLVD_TEST_REDIS_URL (required when CI=true), flushed.
func testRedis(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	m := miniredis.RunT(t)
	out := map[string]redis.UniversalClient{"miniredis": redis.NewClient(&redis.Options{Addr: m.Addr()})}
	raw := os.Getenv("CLVD_TEST_REDIS_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CLVD_TEST_REDIS_URL is unset")
		}
		return out
	}
	if _, err := url.Parse(raw); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	opt.DB = redisTestDB
	rc := redis.NewClient(opt)
	if err := rc.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("CLVD_TEST_REDIS_URL: %v", err)
	}
	out["redis"] = rc
	for _, c := range out {
		c := c
		t.Cleanup(func() { c.Close() })
	}
	return out
}

func TestRescoreDebounceCoalesces(t *testing.T) {
	for name, rc := range testRedis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			client := asynq.NewClientFromRedisClient(rc)
			q := NewQueue(client, time.Second)
			clock := time.Date(2026, 11, 23, 12, 0, 0, 100e6, time.UTC)
			q.now = func() time.Time { return clock }
			// A burst of 50 events for one customer in one window: one task.
			for i := 0; i < 50; i++ {
				if err := q.EnqueueRescore(ctx, "t1", 7); err != nil {
					t.Fatal(err)
				}
			}
			// Another customer, and the same customer in the next window: a task each.
			if err := q.EnqueueRescore(ctx, "t1", 8); err != nil {
				t.Fatal(err)
			}
			clock = clock.Add(time.Second)
			if err := q.EnqueueRescore(ctx, "t1", 7); err != nil {
				t.Fatal(err)
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			tasks, err := insp.ListScheduledTasks(queueScore)
			if err != nil {
				t.Fatal(err)
			}
			if len(tasks) != 3 {
				t.Fatalf("%d scheduled rescores, want 3", len(tasks))
			}
			// The first window's task runs only after its window has closed.
			windowEnd := time.Date(2026, 11, 23, 12, 0, 1, 0, time.UTC)
			for _, ti := range tasks {
				if ti.NextProcessAt.Before(windowEnd) {
					t.Fatalf("rescore due at %s, before its window closed at %s", ti.NextProcessAt, windowEnd)
				}
			}
		})
	}
}

// TestRescoreWindowRunsAfterItCloses: asynq truncates a scheduled time to the second, so the time a
// rescore is scheduled for, truncated, must still be after its window and the margin, for every
// moment within a second and every debounce.
func TestRescoreWindowRunsAfterItCloses(t *testing.T) {
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, debounce := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, time.Second, 2 * time.Second} {
		for ms := 0; ms < 3000; ms += 7 {
			now := base.Add(time.Duration(ms) * time.Millisecond)
			window, runAt := rescoreWindow(now, debounce)
			if now.Before(window) || !now.Before(window.Add(debounce)) {
				t.Fatalf("debounce %s, now %s: not in its window [%s, +%s)", debounce, now.Format("15:04:05.000"), window.Format("15:04:05.000"), debounce)
			}
			if debounce%time.Second == 0 && !runAt.Equal(window.Add(debounce+debounceMargin)) {
				t.Fatalf("debounce %s, now %s: runs at %s, %s after its window and margin end: rounding that a whole-second debounce need not pay",
					debounce, now.Format("15:04:05.000"), runAt.Format("15:04:05.000"), runAt.Sub(window.Add(debounce+debounceMargin)))
			}
			asynqRuns := runAt.Truncate(time.Second)
			if end := window.Add(debounce + debounceMargin); asynqRuns.Before(end) {
				t.Fatalf("debounce %s, now %s: asynq would run the rescore at %s, before its window and margin end at %s",
					debounce, now.Format("15:04:05.000"), asynqRuns.Format("15:04:05.000"), end.Format("15:04:05.000"))
			}
			if runAt.Sub(window.Add(debounce+debounceMargin)) >= time.Second {
				t.Fatalf("debounce %s, now %s: runs %s after the window, more than the rounding", debounce, now, runAt.Sub(window.Add(debounce)))
			}
		}
	}
}

func TestEnqueueDuplicateDelivery(t *testing.T) {
	for name, rc := range testRedis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := NewQueue(asynq.NewClientFromRedisClient(rc), time.Second)
			ev := integrations.TicketEvent{Source: "zendesk", EventID: "e-1", Type: integrations.TicketCreated, TicketID: "1"}
			for i, want := range []bool{false, true} {
				dup, err := q.EnqueueTicket(ctx, "t1", ev)
				if err != nil || dup != want {
					t.Fatalf("delivery %d: duplicate=%v err=%v, want duplicate=%v", i, dup, err, want)
				}
			}
			// The same event id for another tenant is not a duplicate.
			if dup, err := q.EnqueueTicket(ctx, "t2", ev); err != nil || dup {
				t.Fatalf("other tenant: duplicate=%v err=%v", dup, err)
			}
			order := integrations.OrderEvent{Topic: "orders/create", Order: &integrations.Order{Source: "shopify", OrderID: "1", UpdatedAt: time.Unix(1, 0)}}
			newer := order
			o2 := *order.Order
			o2.UpdatedAt = time.Unix(2, 0)
			newer.Order = &o2
			for i, c := range []struct {
				ev  integrations.OrderEvent
				dup bool
			}{{order, false}, {order, true}, {newer, false}} {
				dup, err := q.EnqueueOrder(ctx, "t1", c.ev)
				if err != nil || dup != c.dup {
					t.Fatalf("order %d: duplicate=%v err=%v, want %v", i, dup, err, c.dup)
				}
			}
		})
	}
}

func TestEnqueueFailsWhenRedisDown(t *testing.T) {
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	q := NewQueue(asynq.NewClientFromRedisClient(rc), time.Second)
	m.Close()
	_, err := q.EnqueueTicket(context.Background(), "t1", integrations.TicketEvent{Source: "zendesk", EventID: "e"})
	if err == nil {
		t.Fatal("enqueue succeeded with Redis down: the webhook would acknowledge an event it did not queue")
	}
}

func TestRetryClassification(t *testing.T) {
	rl := classify(fmt.Errorf("tagging: %w", &zendesk.RateLimitError{RetryAfter: 42 * time.Second}))
	if IsFailure(rl) {
		t.Fatal("a rate limit must not count against the retry budget")
	}
	if d := RetryDelay(3, rl, nil); d < 42*time.Second || d > 43*time.Second {
		t.Fatalf("rate-limited retry after %s, want Retry-After (42s) plus under 1s jitter", d)
	}
	server := classify(&zendesk.APIError{Status: 503})
	if !IsFailure(server) {
		t.Fatal("a 5xx is a failure")
	}
	for n := 0; n < 20; n++ {
		d := RetryDelay(n, server, nil)
		if d <= 0 || d > 5*time.Minute {
			t.Fatalf("backoff %d = %s, want within (0, 5m]", n, d)
		}
	}
	if !errors.Is(classify(fmt.Errorf("x: %w", zendesk.ErrUnauthorized)), asynq.SkipRetry) {
		t.Fatal("bad credentials must not be retried")
	}
}

func TestSettings(t *testing.T) {
	s, err := ParseSettings(nil)
	if err != nil || s.TagPrefix != "clv_" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	if got := s.ManagedTags("gold", "high", "loyal"); !slices.Equal(got, []string{"clv_churn_high", "clv_tier_gold"}) {
		t.Fatalf("ManagedTags = %v (segment tags are off by default)", got)
	}
	seg, err := ParseSettings([]byte(`{"write":{"tags":["segment","tier"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := seg.ManagedTags("gold", "high", "loyal"); !slices.Equal(got, []string{"clv_segment_loyal", "clv_tier_gold"}) {
		t.Fatalf("ManagedTags with segment, tier = %v", got)
	}
	if len(s.AllManagedTags()) != 16 {
		t.Fatalf("AllManagedTags = %v", s.AllManagedTags())
	}
	for _, bad := range []string{`{"tag_prefix":"CLV-"}`, `{"period":"month"}`, `{"tag_prefix":1}`, `not json`} {
		if _, err := ParseSettings([]byte(bad)); err == nil {
			t.Errorf("settings %s accepted", bad)
		}
	}
}

// TestRedeliveryRevivesArchivedTask: an ingest task that used up its retries is archived under its
// id; the sender delivering the event again must get it processed, not "duplicate".
func TestRedeliveryRevivesArchivedTask(t *testing.T) {
	for name, rc := range testRedis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := NewQueueFromRedis(rc, time.Second)
			ev := integrations.TicketEvent{Source: "zendesk", EventID: "archived-1", Type: integrations.TicketCreated, TicketID: "1"}
			if dup, err := q.EnqueueTicket(ctx, "t-arch", ev); err != nil || dup {
				t.Fatalf("first delivery: %v %v", dup, err)
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			id := taskID("ticket", "t-arch", ev.Source, ev.EventID)
			if err := insp.ArchiveTask(queueIngest, id); err != nil {
				t.Fatal(err)
			}
			dup, err := q.EnqueueTicket(ctx, "t-arch", ev)
			if err != nil || dup {
				t.Fatalf("re-delivery of an archived event: duplicate=%v err=%v, want it queued again", dup, err)
			}
			info, err := insp.GetTaskInfo(queueIngest, id)
			if err != nil || info.State != asynq.TaskStatePending {
				t.Fatalf("task state after re-delivery: %v %v", info, err)
			}
			if dup, err := q.EnqueueTicket(ctx, "t-arch", ev); err != nil || !dup {
				t.Fatalf("a delivery while it is pending is a duplicate: %v %v", dup, err)
			}
		})
	}
}
