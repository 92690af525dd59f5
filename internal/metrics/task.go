package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// Task outcomes (the outcome label of clvd_tasks_total).
const (
	OutcomeOK          = "ok"
	OutcomeError       = "error"        // failed; asynq retries it (or archives it when its retries are used up)
	OutcomeRateLimited = "rate_limited" // waits out a helpdesk rate limit; not a failure
	OutcomeSkipRetry   = "skip_retry"   // failed for good (asynq.SkipRetry): archived without retries
)

// TaskOutcome classifies a handler's result the way the queue treats it: asynq.SkipRetry first (asynq
// archives those whatever else the error says), then an error whose chain has a Delay() method (the
// worker's rate-limit wait, see worker/retry.go), then any other error.
func TaskOutcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if errors.Is(err, asynq.SkipRetry) {
		return OutcomeSkipRetry
	}
	var d interface{ Delay() time.Duration }
	if errors.As(err, &d) {
		return OutcomeRateLimited
	}
	return OutcomeError
}

// TaskMiddleware counts and times the tasks next processes (register it with mux.Use). A panicking
// handler is counted as an error (asynq recovers the panic and retries the task).
func (m *Metrics) TaskMiddleware(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		outcome := OutcomeError // stays so if next panics
		defer func() {
			m.taskDuration.WithLabelValues(t.Type()).Observe(time.Since(start).Seconds())
			m.tasks.WithLabelValues(t.Type(), outcome).Inc()
			if outcome == OutcomeRateLimited {
				m.rateLimitWaits.Inc()
			}
		}()
		err := next.ProcessTask(ctx, t)
		outcome = TaskOutcome(err)
		return err
	})
}
