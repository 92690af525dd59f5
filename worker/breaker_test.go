package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations/zendesk"
)

// pausedFor returns how long allow holds a call back (0: allowed).
func pausedFor(t *testing.T, b *breaker, tenant string) time.Duration {
	t.Helper()
	err := b.allow(context.Background(), tenant, 5*time.Second)
	if err == nil {
		return 0
	}
	var d *delayedError
	if !errors.As(err, &d) || !errors.Is(err, ErrHelpdeskDown) {
		t.Fatalf("allow: %v, want a delayedError for ErrHelpdeskDown", err)
	}
	if IsFailure(err) {
		t.Fatal("a held-back call counts as a failure: it would use up the task's retries")
	}
	return d.Delay()
}

func TestBreaker(t *testing.T) {
	ctx := context.Background()
	serverError := fmt.Errorf("zendesk: PUT x: %w", &zendesk.APIError{Status: 503})
	timeout := fmt.Errorf("zendesk: PUT x: %w", &url.Error{Op: "Put", URL: "https://x", Err: context.DeadlineExceeded})
	for name, rc := range leaseRedis(t) {
		t.Run(name, func(t *testing.T) {
			var logged bytes.Buffer
			b := &breaker{rc: rc, log: slog.New(slog.NewTextHandler(&logged, nil))}
			tenant := "t-" + name

			// Refusals of the request are not trouble with the helpdesk.
			for range 5 {
				b.record(ctx, tenant, fmt.Errorf("zendesk: %w", &zendesk.APIError{Status: 422}))
				b.record(ctx, tenant, zendesk.ErrNotFound)
			}
			if d := pausedFor(t, b, tenant); d != 0 {
				t.Fatalf("4xx answers paused calls for %v", d)
			}
			// Below the threshold, calls go on; at it, they pause for 1 s.
			b.record(ctx, tenant, serverError)
			b.record(ctx, tenant, timeout)
			if d := pausedFor(t, b, tenant); d != 0 {
				t.Fatalf("paused after %d failures", breakerThreshold-1)
			}
			b.record(ctx, tenant, serverError)
			if d := pausedFor(t, b, tenant); d <= 900*time.Millisecond || d > time.Second {
				t.Fatalf("first pause %v, want 1 s", d)
			}
			// Calls that were already in flight fail too: they do not lengthen the pause.
			b.record(ctx, tenant, serverError)
			b.record(ctx, tenant, timeout)
			if d := pausedFor(t, b, tenant); d > time.Second {
				t.Fatalf("in-flight failures lengthened the pause to %v", d)
			}
			// A call cancelled by its caller says nothing about the helpdesk.
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			b.record(cancelled, tenant, timeout)

			time.Sleep(1100 * time.Millisecond)
			// After the pause, one call probes; the others wait for it.
			if d := pausedFor(t, b, tenant); d != 0 {
				t.Fatalf("no probe after the pause: held %v", d)
			}
			if d := pausedFor(t, b, tenant); d != time.Second {
				t.Fatalf("a second call went ahead during the probe (held %v)", d)
			}
			// The probe fails: the next pause is twice as long.
			b.record(ctx, tenant, serverError)
			if d := pausedFor(t, b, tenant); d <= 1900*time.Millisecond || d > 2*time.Second {
				t.Fatalf("second pause %v, want 2 s", d)
			}
			time.Sleep(2100 * time.Millisecond)
			if d := pausedFor(t, b, tenant); d != 0 {
				t.Fatalf("no probe after the second pause: held %v", d)
			}
			// The probe succeeds: every call goes ahead again, and the next outage starts at 1 s.
			b.record(ctx, tenant, nil)
			for range 3 {
				if d := pausedFor(t, b, tenant); d != 0 {
					t.Fatalf("held %v after the helpdesk answered", d)
				}
			}
			// One 429 delays only its own call (Zendesk also limits single endpoints); three in a row
			// pause every call, for at least their Retry-After.
			limited := fmt.Errorf("zendesk: %w", &zendesk.RateLimitError{RetryAfter: 3 * time.Second})
			b.record(ctx, tenant, limited)
			if d := pausedFor(t, b, tenant); d != 0 {
				t.Fatalf("one 429 paused every call for %v", d)
			}
			b.record(ctx, tenant, limited)
			b.record(ctx, tenant, limited)
			if d := pausedFor(t, b, tenant); d <= 2900*time.Millisecond || d > 3*time.Second {
				t.Fatalf("429 pause %v, want their Retry-After of 3 s", d)
			}
			// One warning per pause (1 s, 2 s, the 429), not one per failure.
			if n := strings.Count(logged.String(), "helpdesk down: its calls are paused"); n != 3 {
				t.Fatalf("%d pause warnings, want 3:\n%s", n, logged.String())
			}
			// Other tenants are not affected.
			if d := pausedFor(t, b, tenant+"-other"); d != 0 {
				t.Fatalf("another tenant held %v", d)
			}
		})
	}
}

func TestBreakerWithoutRedisLetsCallsThrough(t *testing.T) {
	var b *breaker
	b.record(context.Background(), "t", &zendesk.APIError{Status: 500})
	if err := b.allow(context.Background(), "t", time.Second); err != nil {
		t.Fatal(err)
	}
}
