package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestGinMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	m := New()
	r := gin.New()
	r.Use(m.GinMiddleware(), gin.RecoveryWithWriter(io.Discard))
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/boom", func(c *gin.Context) { panic("boom") })
	wh := r.Group("/webhooks/:tenant")
	for _, source := range []string{"zendesk", "shopify"} {
		wh.POST("/"+source, func(c *gin.Context) {
			if c.GetHeader("X-Sig") != "good" {
				c.AbortWithStatus(http.StatusUnauthorized)
				return
			}
			c.Status(http.StatusAccepted)
		})
	}
	r.GET("/api/v1/private", func(c *gin.Context) { c.AbortWithStatus(http.StatusUnauthorized) })

	do := func(method, path, sig string) int {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("X-Sig", sig)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code
	}
	do(http.MethodGet, "/healthz", "")
	do(http.MethodPost, "/webhooks/tenant-aaa/zendesk", "good")
	do(http.MethodPost, "/webhooks/tenant-bbb/zendesk", "bad")
	do(http.MethodPost, "/webhooks/tenant-ccc/zendesk", "bad")
	do(http.MethodPost, "/webhooks/tenant-aaa/shopify", "bad")
	do(http.MethodGet, "/api/v1/private", "") // a 401 that is not a webhook
	do(http.MethodGet, "/random/tenant-zzz/path", "")
	do("BREW", "/healthz", "")
	if code := do(http.MethodGet, "/boom", ""); code != http.StatusInternalServerError {
		t.Fatalf("panic answered %d", code)
	}

	reg := m.Registry()
	req := "clvd_http_requests_total"
	want(t, reg, req, map[string]string{"route": "/healthz", "method": "GET", "status": "200"}, 1)
	want(t, reg, req, map[string]string{"route": "/webhooks/:tenant/zendesk", "method": "POST", "status": "202"}, 1)
	want(t, reg, req, map[string]string{"route": "/webhooks/:tenant/zendesk", "method": "POST", "status": "401"}, 2)
	want(t, reg, req, map[string]string{"route": "/webhooks/:tenant/shopify", "method": "POST", "status": "401"}, 1)
	want(t, reg, req, map[string]string{"route": "/api/v1/private", "method": "GET", "status": "401"}, 1)
	want(t, reg, req, map[string]string{"route": "unmatched", "method": "GET", "status": "404"}, 1)
	want(t, reg, req, map[string]string{"route": "unmatched", "method": "other", "status": "404"}, 1)
	want(t, reg, req, map[string]string{"route": "/boom", "method": "GET", "status": "500"}, 1)

	want(t, reg, "clvd_http_request_duration_seconds", map[string]string{"route": "/webhooks/:tenant/zendesk"}, 3)
	want(t, reg, "clvd_http_request_duration_seconds", map[string]string{"route": "unmatched"}, 2)

	sig := "clvd_webhook_signature_failures_total"
	want(t, reg, sig, map[string]string{"source": "zendesk"}, 2)
	want(t, reg, sig, map[string]string{"source": "shopify"}, 1)
	if n := len(family(t, reg, sig).GetMetric()); n != 2 {
		t.Errorf("%d signature failure series, want 2 (the admin 401 is not one)", n)
	}

	// No raw path or tenant id ever becomes a label value.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if strings.Contains(l.GetValue(), "tenant-") || strings.Contains(l.GetValue(), "random") || l.GetValue() == "BREW" {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
