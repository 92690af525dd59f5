package metrics

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueInspector is the part of *asynq.Inspector the queue collector reads.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

var (
	queueTasksDesc = prometheus.NewDesc(namespace+"_queue_tasks",
		"Tasks in a queue by state (pending, active, scheduled, retry, archived), read from Redis at scrape time.",
		[]string{"queue", "state"}, nil)
	queueLatencyDesc = prometheus.NewDesc(namespace+"_queue_latency_seconds",
		"Age of the oldest pending task of a queue (0 when none is pending).",
		[]string{"queue"}, nil)
	queueUpDesc = prometheus.NewDesc(namespace+"_queue_up",
		"1 if the queues could be read from Redis at this scrape, 0 if not (the other queue metrics are then missing).",
		nil, nil)
)

// queueReadTimeout bounds a scrape's wait for Redis: a Redis that does not answer (a black-holed host
// costs go-redis several dial timeouts) makes clvd_queue_up 0 instead of outlasting the scrape timeout.
const queueReadTimeout = 4 * time.Second

// WatchQueues registers a collector that reads the given queues (the keys of a queue→priority map,
// worker.Queues) through insp each time the metrics are scraped. Redis errors do not fail the scrape:
// they make clvd_queue_up 0.
func (m *Metrics) WatchQueues(insp QueueInspector, queues map[string]int) error {
	return m.reg.Register(&queueCollector{insp: insp, queues: slices.Sorted(maps.Keys(queues)), timeout: queueReadTimeout})
}

type queueCollector struct {
	insp    QueueInspector
	queues  []string
	timeout time.Duration
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasksDesc
	ch <- queueLatencyDesc
	ch <- queueUpDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	type result struct {
		infos []*asynq.QueueInfo
		err   error
	}
	done := make(chan result, 1) // buffered: a read that outlives the timeout ends on its own
	go func() {
		infos, err := c.read()
		done <- result{infos, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(c.timeout):
		r.err = errQueueReadTimeout
	}
	if r.err != nil {
		ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 1)
	for _, info := range r.infos {
		for _, s := range []struct {
			state string
			n     int
		}{{"pending", info.Pending}, {"active", info.Active}, {"scheduled", info.Scheduled}, {"retry", info.Retry}, {"archived", info.Archived}} {
			ch <- prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, float64(s.n), info.Queue, s.state)
		}
		ch <- prometheus.MustNewConstMetric(queueLatencyDesc, prometheus.GaugeValue, info.Latency.Seconds(), info.Queue)
	}
}

var errQueueReadTimeout = errors.New("reading the queues timed out")

// read returns every queue's info, or an error: all or nothing, never a partial picture of the queues.
func (c *queueCollector) read() ([]*asynq.QueueInfo, error) {
	// asynq only knows a queue once a task was put in it; until then it is empty, not an error.
	known, err := c.insp.Queues()
	if err != nil {
		return nil, err
	}
	infos := make([]*asynq.QueueInfo, 0, len(c.queues))
	for _, q := range c.queues {
		info := &asynq.QueueInfo{Queue: q}
		if slices.Contains(known, q) {
			if info, err = c.insp.GetQueueInfo(q); err != nil {
				return nil, err
			}
			info.Queue = q
		}
		infos = append(infos, info)
	}
	return infos, nil
}
