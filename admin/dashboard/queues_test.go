package dashboard

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/worker"
)

// TestQueueMonitor: asynqmon is served under /admin/queues to operator sessions only.
func TestQueueMonitor(t *testing.T) {
	e := newEnv(t, "")
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rc.Close() })
	api, err := admin.NewHandler(admin.Options{Store: e.db, Key: e.key, Now: e.clock.now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{API: api, Logger: quiet(), Queues: worker.QueueMonitor(rc, QueuesPath)})
	if err != nil {
		t.Fatal(err)
	}
	e.r = gin.New()
	d.Register(e.r)

	w := e.do(http.MethodGet, "/admin/queues/", "", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/" {
		t.Fatalf("no session: %d %s, want a redirect to sign in", w.Code, w.Header().Get("Location"))
	}
	adminCookie, _ := e.signIn(t, e.token(t, e.a, admin.RoleAdmin, time.Hour))
	wantCode(t, e.do(http.MethodGet, "/admin/queues/api/queues", "", adminCookie), http.StatusForbidden, "a tenant admin")

	op, _ := e.signIn(t, e.token(t, "", admin.RoleOperator, time.Hour))
	w = e.do(http.MethodGet, "/admin/queues/", "", op)
	wantCode(t, w, http.StatusOK, "operator: the monitor's page")
	if !strings.Contains(w.Body.String(), "/admin/queues") {
		t.Fatalf("the page does not use its mount path: %.300s", w.Body)
	}
	w = e.do(http.MethodGet, "/admin/queues/api/queues", "", op)
	wantCode(t, w, http.StatusOK, "operator: the monitor's API")
	if !strings.Contains(w.Body.String(), `"queues"`) {
		t.Fatalf("queues answer %s", w.Body)
	}
	wantCode(t, e.do(http.MethodPost, "/admin/queues/api/queues/push:pause", "", op, "Sec-Fetch-Site", "cross-site"),
		http.StatusForbidden, "a change from another site")
}
