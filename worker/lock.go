package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// locker takes short leases in Redis, so work that must not overlap (two tag pushes for one customer,
// two reconcilers) does not, whatever the number of worker processes. A nil locker grants every lease:
// a single process with one Redis connection needs none in tests.
type locker struct{ rc redis.UniversalClient }

// workLeaseTTL is the life of a held lease (see hold) between renewals. It bounds how long work that
// died with its process, or whose release was lost while Redis was away, blocks the next run.
const workLeaseTTL = 15 * time.Second

// errLeaseLost is the cause of a held lease's context ending because the lease was taken by someone
// else (it expired, or Redis lost it) or could not be renewed before it would expire.
var errLeaseLost = errors.New("lease lost")

// releaseScript deletes the lease only if it is still ours (it may have expired and been taken).
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// renewScript extends the lease to ARGV[2] ms only if it is still ours.
var renewScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)

// acquire takes the lease key for ttl. ok=false means someone else holds it. release gives it back
// early; a lease never released (a crashed worker) expires after ttl.
func (l *locker) acquire(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error) {
	if l == nil || l.rc == nil {
		return func() {}, true, nil
	}
	token, ok, err := l.take(ctx, key, ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	return func() { l.release(ctx, key, token) }, true, nil
}

// hold takes the lease key like acquire and keeps it while the work runs, renewing it every ttl/3, so
// ttl can be short whatever the work's length. The returned context ends, with cause errLeaseLost,
// when the lease turns out to be someone else's or cannot be confirmed before it would expire: work
// that must not overlap then stops rather than go on unprotected. release stops the renewals and gives
// the lease back.
func (l *locker) hold(ctx context.Context, key string, ttl time.Duration) (held context.Context, release func(), ok bool, err error) {
	if l == nil || l.rc == nil {
		return ctx, func() {}, true, nil
	}
	taken := time.Now()
	token, ok, err := l.take(ctx, key, ttl)
	if err != nil || !ok {
		return nil, nil, false, err
	}
	held, cancel := context.WithCancelCause(ctx)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		every := ttl / 3
		tick := time.NewTicker(every)
		defer tick.Stop()
		// confirmed is when the lease was last known to run for ttl more: taken before the command
		// was sent, so never later than Redis's own clock started the ttl.
		confirmed := taken
		for {
			select {
			case <-stop:
				return
			case <-held.Done():
				return
			case <-tick.C:
			}
			sent := time.Now()
			// Half a period per try: a failed try still leaves time to give up before the lease ends.
			callCtx, done := context.WithTimeout(held, every/2)
			n, err := renewScript.Run(callCtx, l.rc, []string{leaseKey(key)}, token, ttl.Milliseconds()).Int()
			done()
			switch {
			case err == nil && n == 1:
				confirmed = sent
			case err == nil:
				cancel(fmt.Errorf("%w: %s is held by another worker", errLeaseLost, key))
				return
			case time.Since(confirmed)+every >= ttl:
				// The next try would come too late: the lease may have expired by then.
				cancel(fmt.Errorf("%w: %s could not be renewed: %v", errLeaseLost, key, err))
				return
			}
		}
	}()
	return held, func() {
		close(stop)
		<-stopped
		cancel(nil)
		l.release(ctx, key, token)
	}, true, nil
}

func leaseKey(key string) string { return "clvd:lease:" + key }

func (l *locker) take(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token = hex.EncodeToString(b)
	ok, err = l.rc.SetNX(ctx, leaseKey(key), token, ttl).Result()
	return token, ok, err
}

func (l *locker) release(ctx context.Context, key, token string) {
	_ = releaseScript.Run(context.WithoutCancel(ctx), l.rc, []string{leaseKey(key)}, token).Err()
}

// leaseLost rewrites err as the loss of the lease when that is why held ended, so the task's error
// says why its calls were cancelled.
func leaseLost(held context.Context, err error) error {
	if err == nil || held.Err() == nil {
		return err
	}
	if cause := context.Cause(held); errors.Is(cause, errLeaseLost) {
		return fmt.Errorf("%w (stopped: %v)", cause, err)
	}
	return err
}
