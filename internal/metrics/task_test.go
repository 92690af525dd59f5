package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// delayed is shaped like worker's delayedError: an error with a Delay method.
type delayed struct{ err error }

func (e *delayed) Error() string        { return e.err.Error() }
func (e *delayed) Unwrap() error        { return e.err }
func (e *delayed) Delay() time.Duration { return time.Minute }

func TestTaskOutcome(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{boom, OutcomeError},
		{&delayed{boom}, OutcomeRateLimited},
		{fmt.Errorf("push tags: %w", &delayed{boom}), OutcomeRateLimited},
		{errors.Join(boom, asynq.SkipRetry), OutcomeSkipRetry},
		{fmt.Errorf("x: %w", asynq.SkipRetry), OutcomeSkipRetry},
	} {
		if got := TaskOutcome(c.err); got != c.want {
			t.Errorf("TaskOutcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestTaskMiddleware(t *testing.T) {
	m := New()
	results := map[string]error{
		"customer:rescore":   nil,
		"ingest:order":       errors.New("db down"),
		"customer:push_tags": fmt.Errorf("zendesk: %w", &delayed{errors.New("429")}),
		"ingest:ticket":      errors.Join(errors.New("unauthorized"), asynq.SkipRetry),
	}
	mux := asynq.NewServeMux()
	mux.Use(m.TaskMiddleware)
	for typ, err := range results {
		mux.HandleFunc(typ, func(context.Context, *asynq.Task) error { return err })
	}
	mux.HandleFunc("tenant:refit", func(context.Context, *asynq.Task) error { panic("fit exploded") })

	ctx := context.Background()
	for typ, err := range results {
		if got := mux.ProcessTask(ctx, asynq.NewTask(typ, nil)); got != err {
			t.Fatalf("%s: the middleware changed the error: %v", typ, got)
		}
	}
	_ = mux.ProcessTask(ctx, asynq.NewTask("customer:rescore", nil))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the middleware swallowed a panic")
			}
		}()
		_ = mux.ProcessTask(ctx, asynq.NewTask("tenant:refit", nil))
	}()

	reg := m.Registry()
	tt := "clvd_tasks_total"
	want(t, reg, tt, map[string]string{"type": "customer:rescore", "outcome": "ok"}, 2)
	want(t, reg, tt, map[string]string{"type": "ingest:order", "outcome": "error"}, 1)
	want(t, reg, tt, map[string]string{"type": "customer:push_tags", "outcome": "rate_limited"}, 1)
	want(t, reg, tt, map[string]string{"type": "ingest:ticket", "outcome": "skip_retry"}, 1)
	want(t, reg, tt, map[string]string{"type": "tenant:refit", "outcome": "error"}, 1)
	want(t, reg, "clvd_rate_limit_waits_total", nil, 1)
	want(t, reg, "clvd_task_duration_seconds", map[string]string{"type": "customer:rescore"}, 2)
	want(t, reg, "clvd_task_duration_seconds", map[string]string{"type": "tenant:refit"}, 1)
}
