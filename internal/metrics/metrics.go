// Package metrics holds clvd's Prometheus metrics: HTTP intake by route and status, webhook signature
// failures, queue sizes and latencies, task outcomes and durations, helpdesk API calls and rate-limit
// waits. Each process creates one Metrics with New; it owns a dedicated registry (not the global one),
// so several services can run in one process (tests) without colliding.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "clvd"

// Metrics is one process's metrics and the registry they are exposed from. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	sigFailures  *prometheus.CounterVec

	tasks          *prometheus.CounterVec
	taskDuration   *prometheus.HistogramVec
	rateLimitWaits prometheus.Counter

	apiCalls    *prometheus.CounterVec
	apiDuration prometheus.Histogram
}

// New creates the metrics on a new registry, with the Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern (\"unmatched\" for no route), method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		sigFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_signature_failures_total",
			Help: "Webhooks answered 401 (missing or wrong signature, timestamp out of tolerance, or no secret configured), by source.",
		}, []string{"source"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tasks_total",
			Help: "Queue tasks processed, by type and outcome (ok, error, rate_limited, skip_retry). " +
				"type=\"customer:rescore\" counts the customer rescores.",
		}, []string{"type", "outcome"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "task_duration_seconds",
			Help:    "Time a queue task took to process, by type. type=\"tenant:refit\" is the model fit duration.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"type"}),
		rateLimitWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limit_waits_total",
			Help: "Tasks put back to wait out a helpdesk rate limit (Retry-After); not counted as failures.",
		}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "helpdesk_api_calls_total",
			Help: "Calls to the helpdesk (Zendesk) API, by HTTP status code, or \"error\" when no answer came (transport error).",
		}, []string{"status"}),
		apiDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "helpdesk_api_call_duration_seconds",
			Help:    "Time until the helpdesk (Zendesk) API answered (response headers) or the call failed.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.sigFailures,
		m.tasks, m.taskDuration, m.rateLimitWaits,
		m.apiCalls, m.apiDuration,
	)
	return m
}

// Registry is the registry the metrics are on; more collectors can be registered to it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
