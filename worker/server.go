package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ServerOptions tune the asynq server.
type ServerOptions struct {
	Concurrency     int
	Poll            time.Duration // how often idle workers look for new and due tasks
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// NewServer returns an asynq server on rc, with clvd's queues, retry policy and logging.
func NewServer(rc redis.UniversalClient, o ServerOptions) *asynq.Server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency:              o.Concurrency,
		Queues:                   Queues,
		RetryDelayFunc:           RetryDelay,
		IsFailure:                IsFailure,
		TaskCheckInterval:        o.Poll,
		DelayedTaskCheckInterval: o.Poll,
		ShutdownTimeout:          o.ShutdownTimeout,
		Logger:                   asynqLogger{log.With("component", "asynq")},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			if errors.Is(err, ErrHelpdeskDown) { // the breaker logged the pause once; each held-back task would flood the log
				log.DebugContext(ctx, "task waits for the helpdesk", "task_type", t.Type(), "task_id", id, "error", err)
				return
			}
			retry, _ := asynq.GetRetryCount(ctx)
			max, _ := asynq.GetMaxRetry(ctx)
			log.WarnContext(ctx, "task failed", "task_type", t.Type(), "task_id", id, "retry", retry, "max_retry", max, "error", err)
		}),
	})
}

// NewScheduler registers clvd's periodic work: the reconciler and the nightly refit of every tenant.
// Every worker process runs a scheduler; asynq's Unique option makes their enqueues of one period
// collapse into one task, and refits are unique per tenant and day, so many processes still cause one
// refit per tenant.
func NewScheduler(rc redis.UniversalClient, reconcileEvery time.Duration, refitCron string, log *slog.Logger) (*asynq.Scheduler, error) {
	if log == nil {
		log = slog.Default()
	}
	s := asynq.NewSchedulerFromRedisClient(rc, &asynq.SchedulerOpts{
		Location: time.UTC,
		Logger:   asynqLogger{log.With("component", "scheduler")},
		LogLevel: asynq.WarnLevel,
	})
	if _, err := s.Register(fmt.Sprintf("@every %s", reconcileEvery), asynq.NewTask(TypeReconcile, nil),
		asynq.Queue(queueMaintenance), asynq.Unique(reconcileEvery), asynq.MaxRetry(0)); err != nil {
		return nil, fmt.Errorf("scheduling the reconciler: %w", err)
	}
	if _, err := s.Register(refitCron, asynq.NewTask(TypeRefitAll, nil),
		asynq.Queue(queueMaintenance), asynq.Unique(time.Hour), asynq.MaxRetry(maintenanceMaxTry)); err != nil {
		return nil, fmt.Errorf("CLVD_REFIT_CRON=%q: %w", refitCron, err)
	}
	return s, nil
}

// asynqLogger routes asynq's own logs into slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) {
	msg := fmt.Sprint(args...)
	if strings.Contains(msg, "connection is shared") {
		// asynq reports that it did not close a Redis client it does not own: that is by design here.
		a.l.Debug(msg)
		return
	}
	a.l.Error(msg)
}
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
