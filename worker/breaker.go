package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations/zendesk"
)

// ErrHelpdeskDown means a call was not made because the tenant's helpdesk was found down (rate
// limited, failing or not answering) by recent calls from any worker process. The task waits, without
// using up its retries.
var ErrHelpdeskDown = errors.New("helpdesk down: call held back")

const (
	// breakerThreshold is how many consecutive failures (429s, 5xx, timeouts, refused connections)
	// open the breaker. One 429 only delays its own task, by its Retry-After: Zendesk also limits
	// single endpoints, and one limited endpoint must not stop the others.
	breakerThreshold = 3
	// breakerMaxPause bounds the pause after failures; it doubles from 1 s with each further failure.
	breakerMaxPause = time.Minute
	// breakerMemory is how long a failure count is remembered without another failure.
	breakerMemory = 10 * time.Minute
)

// breaker keeps a tenant's helpdesk calls away from a helpdesk that is down, across every worker
// process: without it, each queued push retries on its own schedule and the reconciler adds more, so
// a helpdesk that is rate limiting or failing for minutes receives more calls the longer it is down
// (a 6 s outage with 8 customers drew about 200 calls). With it, once the helpdesk is known down,
// calls wait for the pause (1 s doubling per pause to 1 min, at least a 429's Retry-After), then one call probes;
// its success lets every other call through again. State lives in Redis under clvd:helpdesk:{tenant}:.
// A nil breaker lets every call through.
type breaker struct {
	rc  redis.UniversalClient
	log *slog.Logger
}

// breakerAllowScript answers, for KEYS down, fails, probe and ARGV threshold, probe_ms: the pause
// left in ms (> 0), 0 to go ahead, or -1 when another call is probing. While failures are recorded,
// only the caller that takes the probe key goes ahead.
var breakerAllowScript = redis.NewScript(`
local d = redis.call('pttl', KEYS[1])
if d > 0 then return d end
local f = tonumber(redis.call('get', KEYS[2]) or '0')
if f < tonumber(ARGV[1]) then return 0 end
if redis.call('set', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return 0 end
return -1`)

// breakerFailScript counts a failure (KEYS down, fails, probe, level; ARGV memory_ms, threshold,
// max_ms, retry_after_ms). From the threshold on, a failure with no pause running starts one of 1 s,
// doubled for each pause since the helpdesk last answered, up to max_ms, and at least the failure's
// Retry-After. Failures of calls made before the running pause began do not lengthen it. The probe
// key is released. It returns the pause started in ms, 0 for none.
var breakerFailScript = redis.NewScript(`
local n = redis.call('incr', KEYS[2])
redis.call('pexpire', KEYS[2], ARGV[1])
redis.call('del', KEYS[3])
if n < tonumber(ARGV[2]) or redis.call('pttl', KEYS[1]) > 0 then return 0 end
local level = redis.call('incr', KEYS[4])
redis.call('pexpire', KEYS[4], ARGV[1])
local pause = math.floor(math.max(math.min(1000 * 2 ^ math.min(level - 1, 20), tonumber(ARGV[3])), tonumber(ARGV[4])))
redis.call('set', KEYS[1], '1', 'PX', pause)
return pause`)

func breakerKeys(tenantID string) []string {
	p := "clvd:helpdesk:" + tenantID + ":"
	return []string{p + "down", p + "fails", p + "probe", p + "level"}
}

// allow reports whether a call may be made now; when not, the error is a delayedError for the time
// left. A Redis error lets the call through: the breaker protects the helpdesk, it must not stop
// work on its own.
func (b *breaker) allow(ctx context.Context, tenantID string, probeFor time.Duration) error {
	if b == nil || b.rc == nil {
		return nil
	}
	left, err := breakerAllowScript.Run(ctx, b.rc, breakerKeys(tenantID)[:3], breakerThreshold, probeFor.Milliseconds()).Int64()
	switch {
	case err != nil || left == 0:
		return nil
	case left < 0:
		return &delayedError{delay: time.Second, err: fmt.Errorf("%w: another call is checking whether it is back", ErrHelpdeskDown)}
	default:
		d := time.Duration(left) * time.Millisecond
		return &delayedError{delay: d, err: fmt.Errorf("%w for %s more", ErrHelpdeskDown, d.Round(time.Millisecond))}
	}
}

// record notes a call's outcome. Only the helpdesk's own trouble counts as a failure: a 429, a 5xx,
// a timeout or a connection that failed. Any answer that shows the helpdesk working (a success, a
// 404, a 422) ends the outage. A call cancelled by the caller itself says nothing.
func (b *breaker) record(ctx context.Context, tenantID string, callErr error) {
	if b == nil || b.rc == nil || ctx.Err() != nil {
		return
	}
	keys := breakerKeys(tenantID)
	bg := context.WithoutCancel(ctx)
	var rl *zendesk.RateLimitError
	var retryAfter time.Duration
	switch {
	case errors.As(callErr, &rl):
		retryAfter = rl.RetryAfter
	case helpdeskTrouble(callErr):
	default:
		_ = b.rc.Del(bg, keys[1], keys[2], keys[3]).Err()
		return
	}
	started, err := breakerFailScript.Run(bg, b.rc, keys, breakerMemory.Milliseconds(), breakerThreshold, breakerMaxPause.Milliseconds(),
		retryAfter.Milliseconds()).Int64()
	if err == nil && started > 0 && b.log != nil {
		// Once per pause, not per held-back call: those are logged at debug level.
		b.log.WarnContext(ctx, "helpdesk down: its calls are paused", "tenant", tenantID,
			"pause", (time.Duration(started) * time.Millisecond).String(), "error", callErr)
	}
}

// helpdeskTrouble reports whether err shows the helpdesk failing, as opposed to refusing the request.
func helpdeskTrouble(err error) bool {
	if err == nil {
		return false
	}
	var api *zendesk.APIError
	if errors.As(err, &api) {
		return api.Status >= 500
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// guardedHelpdesk puts a tenant's helpdesk client behind the breaker.
type guardedHelpdesk struct {
	Helpdesk
	tenantID string
	b        *breaker
	probeFor time.Duration
}

func (g guardedHelpdesk) call(ctx context.Context, f func() error) error {
	if err := g.b.allow(ctx, g.tenantID, g.probeFor); err != nil {
		return err
	}
	err := f()
	g.b.record(ctx, g.tenantID, err)
	return err
}

func (g guardedHelpdesk) GetUser(ctx context.Context, userID string) (u zendesk.User, err error) {
	err = g.call(ctx, func() error { u, err = g.Helpdesk.GetUser(ctx, userID); return err })
	return u, err
}

func (g guardedHelpdesk) UpdateManyTicketTags(ctx context.Context, ticketIDs []string, add, remove []string) (job string, err error) {
	err = g.call(ctx, func() error { job, err = g.Helpdesk.UpdateManyTicketTags(ctx, ticketIDs, add, remove); return err })
	return job, err
}

func (g guardedHelpdesk) UpdateUserTags(ctx context.Context, userID string, add, remove []string) error {
	return g.call(ctx, func() error { return g.Helpdesk.UpdateUserTags(ctx, userID, add, remove) })
}

func (g guardedHelpdesk) SetUserFields(ctx context.Context, userID string, fields map[string]any) error {
	return g.call(ctx, func() error { return g.Helpdesk.SetUserFields(ctx, userID, fields) })
}

func (g guardedHelpdesk) CreateTicket(ctx context.Context, t zendesk.NewTicket, idempotencyKey string) (id string, err error) {
	err = g.call(ctx, func() error { id, err = g.Helpdesk.CreateTicket(ctx, t, idempotencyKey); return err })
	return id, err
}
