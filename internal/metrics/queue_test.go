package metrics

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestQueueCollector(t *testing.T) {
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	client := asynq.NewClientFromRedisClient(rc)
	for _, o := range [][]asynq.Option{
		{asynq.Queue("ingest")},
		{asynq.Queue("ingest")},
		{asynq.Queue("score"), asynq.ProcessIn(time.Hour)},
	} {
		if _, err := client.Enqueue(asynq.NewTask("x", nil), o...); err != nil {
			t.Fatal(err)
		}
	}
	m := New()
	// "push" never had a task: asynq does not know it yet, and it is reported empty, not as an error.
	if err := m.WatchQueues(asynq.NewInspectorFromRedisClient(rc), map[string]int{"ingest": 6, "score": 3, "push": 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)

	reg := m.Registry()
	qt := "clvd_queue_tasks"
	want(t, reg, "clvd_queue_up", nil, 1)
	want(t, reg, qt, map[string]string{"queue": "ingest", "state": "pending"}, 2)
	want(t, reg, qt, map[string]string{"queue": "ingest", "state": "scheduled"}, 0)
	want(t, reg, qt, map[string]string{"queue": "score", "state": "scheduled"}, 1)
	want(t, reg, qt, map[string]string{"queue": "score", "state": "pending"}, 0)
	for _, state := range []string{"pending", "active", "scheduled", "retry", "archived"} {
		want(t, reg, qt, map[string]string{"queue": "push", "state": state}, 0)
	}
	if n := len(family(t, reg, qt).GetMetric()); n != 15 {
		t.Errorf("%d queue task series, want 3 queues x 5 states", n)
	}
	if lat := value(t, reg, "clvd_queue_latency_seconds", map[string]string{"queue": "ingest"}); lat < 0.04 {
		t.Errorf("ingest latency %v, want >= the 50ms its oldest task waited", lat)
	}
	want(t, reg, "clvd_queue_latency_seconds", map[string]string{"queue": "score"}, 0)
	want(t, reg, "clvd_queue_latency_seconds", map[string]string{"queue": "push"}, 0)

	// Redis down: the scrape still succeeds, and says so with clvd_queue_up 0.
	mr.Close()
	want(t, reg, "clvd_queue_up", nil, 0)
	if family(t, reg, qt) != nil || family(t, reg, "clvd_queue_latency_seconds") != nil {
		t.Error("queue sizes reported while Redis is down")
	}
	if family(t, reg, "go_goroutines") == nil {
		t.Error("the rest of the scrape is missing while Redis is down")
	}
}

// failingInspector knows the queues but cannot read one of them.
type failingInspector struct{}

func (failingInspector) Queues() ([]string, error) { return []string{"a", "b"}, nil }
func (failingInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if q == "b" {
		return nil, redis.ErrClosed
	}
	return &asynq.QueueInfo{Queue: q, Pending: 1}, nil
}

func TestQueueCollectorPartialFailure(t *testing.T) {
	m := New()
	if err := m.WatchQueues(failingInspector{}, map[string]int{"a": 1, "b": 1}); err != nil {
		t.Fatal(err)
	}
	want(t, m.Registry(), "clvd_queue_up", nil, 0)
	if family(t, m.Registry(), "clvd_queue_tasks") != nil {
		t.Error("a partial picture of the queues was reported")
	}
}

// hangingInspector never answers, like a black-holed Redis host.
type hangingInspector struct{ release chan struct{} }

func (h hangingInspector) Queues() ([]string, error) { <-h.release; return nil, redis.ErrClosed }
func (hangingInspector) GetQueueInfo(string) (*asynq.QueueInfo, error) {
	return nil, redis.ErrClosed
}

func TestQueueCollectorTimeout(t *testing.T) {
	h := hangingInspector{release: make(chan struct{})}
	defer close(h.release)
	m := New()
	m.reg.MustRegister(&queueCollector{insp: h, queues: []string{"a"}, timeout: 50 * time.Millisecond})
	start := time.Now()
	want(t, m.Registry(), "clvd_queue_up", nil, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the scrape waited %s for a Redis that does not answer", d)
	}
}
