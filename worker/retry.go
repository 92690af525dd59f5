package worker

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/clvd/clvd/integrations/zendesk"
)

// delayedError asks for a retry after a given delay, as the helpdesk's Retry-After says. It is not a
// failure: waiting out a rate limit does not use up the task's retry budget.
type delayedError struct {
	delay time.Duration
	err   error
}

func (e *delayedError) Error() string        { return e.err.Error() }
func (e *delayedError) Unwrap() error        { return e.err }
func (e *delayedError) Delay() time.Duration { return e.delay }

// classify turns helpdesk errors into what the queue should do with them: rate limits wait the time
// Zendesk asked for, without counting as failures; credentials that do not work and requests that cannot succeed are not retried (the
// reconciler tries again later, and an admin fixes them); everything else retries with backoff.
func classify(err error) error {
	var rl *zendesk.RateLimitError
	if errors.As(err, &rl) {
		return &delayedError{delay: rl.RetryAfter, err: err}
	}
	if errors.Is(err, zendesk.ErrUnauthorized) || errors.Is(err, zendesk.ErrInvalidInput) {
		return errors.Join(err, asynq.SkipRetry)
	}
	return err
}

// RetryDelay is the asynq RetryDelayFunc: the delay a rate-limited call was told to wait (plus jitter,
// so many workers do not come back at the same instant), else exponential backoff from 1s to 5 minutes.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var d interface{ Delay() time.Duration }
	if errors.As(err, &d) {
		return d.Delay() + time.Duration(rand.Int64N(int64(time.Second)))
	}
	backoff := time.Second << min(n, 9)
	if backoff > 5*time.Minute {
		backoff = 5 * time.Minute
	}
	return backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
}

// IsFailure is the asynq IsFailure predicate: waiting out a rate limit is not a failure of the task
// and must not burn its retry budget.
func IsFailure(err error) bool {
	var d *delayedError
	return !errors.As(err, &d)
}
