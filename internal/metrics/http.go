package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// webhookRoutePrefix is the route pattern of the webhooks; what follows it is the source.
const webhookRoutePrefix = "/webhooks/:tenant/"

// GinMiddleware counts and times HTTP requests. The route label is the matched pattern (c.FullPath()),
// or "unmatched", never the raw path: tenant ids and random paths do not become label values. A
// webhook answered 401 counts as a signature failure of its source (the last segment of the pattern).
// Use it first on the engine, so the status a recovered panic is answered with (500) is the one counted.
func (m *Metrics) GinMiddleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		m.httpRequests.WithLabelValues(route, method(c.Request.Method), strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if status == http.StatusUnauthorized {
			if source, ok := strings.CutPrefix(route, webhookRoutePrefix); ok && source != "" && !strings.Contains(source, "/") {
				m.sigFailures.WithLabelValues(source).Inc()
			}
		}
	}
}

// method bounds the method label to the standard methods: a client can send any token as a method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}
