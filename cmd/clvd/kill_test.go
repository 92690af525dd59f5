package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
)

// TestFaultWorkerKilled (about 20 s; skipped with -short): a `clvd serve` process is killed with
// SIGKILL while its worker is in the middle of a Zendesk call; a `clvd worker` started afterwards
// finishes the work: the reconciler queues the lost push again, which waits for the dead worker's
// per-customer push lease to expire (15 s, as it is no longer renewed). The audit then finds every
// acknowledged event stored once and every tag right.
func TestFaultWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds clvd, kills a process and waits out its push lease")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "clvd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	b := preferredBackend(t)
	dsn, redisURL := b.dbURL, b.redisURL
	if redisURL == "" {
		m := miniredis.RunT(t)  // reachable by the child processes over TCP
		go runMiniredisClock(m) // the dead worker's lease must expire, as on a real server
		redisURL = "redis://" + m.Addr()
	}
	secretHex := strings.Repeat("ab", 32)
	env := []string{"CLVD_DATA_DIR=" + dir, "DATABASE_URL=" + dsn, "REDIS_URL=" + redisURL, "CLVD_SECRET_KEY=" + secretHex,
		"CLVD_JWT_KEY=" + strings.Repeat("cd", 32), "CLVD_ALLOW_LOCAL_TARGETS=true", "CLVD_RESCORE_DEBOUNCE=100ms",
		"CLVD_QUEUE_POLL=50ms", "CLVD_RECONCILE_EVERY=2s", "CLVD_LOG_FORMAT=text", "CLVD_LOG_LEVEL=warn", "PATH=" + os.Getenv("PATH")}

	// The tenant, created in the store the processes will use.
	key, err := secretbox.ParseKey(secretHex)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, dsn, dir, box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// Zendesk, behind a gate that holds tag writes until the first worker is dead.
	fz := zendesktest.New(t, e2eZendeskEmail, e2eZendeskToken)
	target, _ := url.Parse(fz.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var held atomic.Int32
	gate := make(chan struct{})
	zd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			held.Add(1)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(zd.Close)
	tenant := &store.Tenant{Name: "Killed", ShopifySecret: e2eShopifySecret, OrdersSecret: "x",
		Zendesk: store.ZendeskAccount{BaseURL: zd.URL, Email: e2eZendeskEmail, APIToken: e2eZendeskToken, WebhookSecret: e2eZendeskSecret}}
	if err := db.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}

	start := func(args ...string) (*exec.Cmd, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "CLVD_ADDR="+addr)
		cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, "http://" + addr
	}
	first, base := start("serve")
	waitFor(t, "the first process ready", 30*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const customers = 4
	l := newFaultLoad(t, base, tenant.ID, fz, customers)
	for i := range customers {
		l.order(i, i == 0)
		l.order(i, false)
		l.ticket(i)
	}
	waitFor(t, "a Zendesk write in flight", 30*time.Second, func() bool { return held.Load() > 0 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killed := time.Now()
	t.Logf("killed the first process with %d Zendesk write(s) in flight", held.Load())
	close(gate)

	start("worker")
	// Well within asynq's own recovery of the dead worker's task (its 30 s lease plus a 30 s margin)
	// and far from the 2 minutes a push lease used to last: the reconciler and the lease's 15 s do it.
	l.audit(ctx, db, customers, 45*time.Second)
	t.Logf("the new worker finished the work %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}
