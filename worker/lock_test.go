package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// leaseRedis returns testRedis's clients, with miniredis's clock following the wall clock, so its
// keys expire in real time as a real server's do.
func leaseRedis(t *testing.T) map[string]redis.UniversalClient {
	out := testRedis(t)
	m := miniredis.RunT(t)
	out["miniredis"] = redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { out["miniredis"].Close() })
	followWallClock(t, m)
	return out
}

func followWallClock(t *testing.T, m *miniredis.Miniredis) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			now := time.Now()
			m.FastForward(now.Sub(last))
			last = now
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func TestLeaseHeldOutlivesItsTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for name, rc := range leaseRedis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := &locker{rc: rc}
			held, release, ok, err := l.hold(ctx, "t:outlives", ttl)
			if err != nil || !ok {
				t.Fatalf("hold: ok=%v err=%v", ok, err)
			}
			time.Sleep(4 * ttl) // without renewals the lease would have expired three times over
			if held.Err() != nil {
				t.Fatalf("held context ended: %v", context.Cause(held))
			}
			if _, ok, err := l.acquire(ctx, "t:outlives", ttl); err != nil || ok {
				t.Fatalf("a second taker got a held lease: ok=%v err=%v", ok, err)
			}
			release()
			if held.Err() == nil {
				t.Fatal("held context still open after release")
			}
			if _, ok, err := l.acquire(ctx, "t:outlives", ttl); err != nil || !ok {
				t.Fatalf("lease not free after release: ok=%v err=%v", ok, err)
			}
		})
	}
}

func TestLeaseTakenByAnotherEndsTheWork(t *testing.T) {
	const ttl = 300 * time.Millisecond
	for name, rc := range leaseRedis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := &locker{rc: rc}
			held, release, ok, err := l.hold(ctx, "t:taken", ttl)
			if err != nil || !ok {
				t.Fatalf("hold: ok=%v err=%v", ok, err)
			}
			// As if it had expired and another worker took it (or Redis restarted empty and it did).
			if err := rc.Set(ctx, leaseKey("t:taken"), "someone-else", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-held.Done():
			case <-time.After(ttl + time.Second):
				t.Fatal("work went on under a lease that is someone else's")
			}
			if cause := context.Cause(held); !errors.Is(cause, errLeaseLost) {
				t.Fatalf("cause = %v, want errLeaseLost", cause)
			}
			err = leaseLost(held, held.Err())
			if !errors.Is(err, errLeaseLost) || !strings.Contains(err.Error(), "held by another worker") {
				t.Fatalf("task error = %v", err)
			}
			release()
			if v, _ := rc.Get(ctx, leaseKey("t:taken")).Result(); v != "someone-else" {
				t.Fatalf("release removed another worker's lease: %q", v)
			}
		})
	}
}

// TestLeaseUnrenewableEndsTheWork: with Redis unreachable the lease cannot be confirmed; the work is
// stopped before the lease can have expired, so no other worker can start on it meanwhile.
func TestLeaseUnrenewableEndsTheWork(t *testing.T) {
	const ttl = 600 * time.Millisecond
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 20 * time.Millisecond})
	t.Cleanup(func() { rc.Close() })
	l := &locker{rc: rc}
	taken := time.Now()
	held, release, ok, err := l.hold(context.Background(), "t:unreachable", ttl)
	if err != nil || !ok {
		t.Fatalf("hold: ok=%v err=%v", ok, err)
	}
	defer release()
	m.Close()
	select {
	case <-held.Done():
	case <-time.After(2 * ttl):
		t.Fatal("work went on under a lease that could not be renewed")
	}
	if ended := time.Since(taken); ended > ttl {
		t.Errorf("work stopped %v after the lease was taken: later than its %v life", ended, ttl)
	}
	if cause := context.Cause(held); !errors.Is(cause, errLeaseLost) || !strings.Contains(cause.Error(), "could not be renewed") {
		t.Fatalf("cause = %v", cause)
	}
}

func TestLeaseWithoutRedisIsGranted(t *testing.T) {
	var l *locker
	ctx := context.Background()
	held, release, ok, err := l.hold(ctx, "k", time.Second)
	if err != nil || !ok || held != ctx {
		t.Fatalf("nil locker: ok=%v err=%v", ok, err)
	}
	release()
}
