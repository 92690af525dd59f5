// Package webhook is clvd's inbound HTTP intake: it finds the tenant, limits the body, verifies the
// sender's signature, parses the payload into the neutral event, and answers 202 only once the event
// is durably queued. Errors are mapped to HTTP statuses in one place (writeError).
package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/integrations/shopify"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/logctx"
	"github.com/clvd/clvd/store"
)

// Tenants finds a tenant and its secrets.
type Tenants interface {
	GetTenant(ctx context.Context, id string) (*store.Tenant, error)
}

// Queue takes events for processing. duplicate=true means the same delivery is already queued.
type Queue interface {
	EnqueueOrder(ctx context.Context, tenantID string, ev integrations.OrderEvent) (duplicate bool, err error)
	EnqueueTicket(ctx context.Context, tenantID string, ev integrations.TicketEvent) (duplicate bool, err error)
}

// Check is a readiness probe of a dependency (database, Redis).
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Options configure the router.
type Options struct {
	Tenants            Tenants
	Queue              Queue
	Ready              []Check
	MaxBodyBytes       int64
	SignatureTolerance time.Duration
	TenantCacheTTL     time.Duration // how long a tenant's secrets are cached; default 10s
	Now                func() time.Time
	Logger             *slog.Logger
	Middleware         []gin.HandlerFunc // run first on every request, matched or not (e.g. metrics)
}

// errQueueUnavailable marks an event that could not be queued: the sender must retry (503).
var errQueueUnavailable = errors.New("queue unavailable")

// errSecretNotSet marks a source whose signing secret the tenant has not configured (401).
var errSecretNotSet = errors.New("no signing secret configured for this source")

type handler struct {
	opts    Options
	tenants *tenantCache
}

// NewRouter returns the Gin engine serving the webhooks and the health probes. Routes can be added to
// the returned engine (the admin API does).
func NewRouter(o Options) *gin.Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TenantCacheTTL == 0 {
		o.TenantCacheTTL = 10 * time.Second
	}
	h := &handler{opts: o, tenants: &tenantCache{src: o.Tenants, ttl: o.TenantCacheTTL, entries: map[string]tenantEntry{}}}
	r := gin.New()
	r.Use(o.Middleware...)
	r.Use(gin.Recovery(), h.logRequests)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", h.ready)
	wh := r.Group("/webhooks/:tenant")
	wh.POST("/zendesk", h.zendesk)
	wh.POST("/shopify", h.shopify)
	wh.POST("/orders", h.orders)
	return r
}

// logRequests gives every request an id (the caller's X-Request-Id when it is a plain token, else a
// new one), answers it in X-Request-Id, puts it in the context for every log line of the request and
// for the task it queues, and logs the request when it is done.
func (h *handler) logRequests(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if !logctx.ValidRequestID(id) {
		id = logctx.NewRequestID()
	}
	c.Header("X-Request-Id", id)
	c.Request = c.Request.WithContext(logctx.With(c.Request.Context(), slog.String(logctx.RequestIDKey, id)))
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	// Checked first because building the arguments costs allocations on every request, and request
	// lines are debug: off in production.
	if ctx := c.Request.Context(); h.opts.Logger.Enabled(ctx, level) {
		h.opts.Logger.Log(ctx, level, "request", "method", c.Request.Method, "route", c.FullPath(),
			"status", status, "ms", float64(time.Since(start).Microseconds())/1000, "tenant", c.Param("tenant"))
	}
}

func (h *handler) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	failed := gin.H{}
	for _, chk := range h.opts.Ready {
		if err := chk.Ping(ctx); err != nil {
			// The probe is public: the error (host names, users) goes to the log, not the answer.
			h.opts.Logger.WarnContext(ctx, "readiness check failed", "dependency", chk.Name, "error", err)
			failed[chk.Name] = "unreachable"
		}
	}
	if len(failed) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "failed": failed})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// intake does what every webhook shares: tenant, body within the limit, then the source-specific
// verify+parse, then the queue.
func (h *handler) intake(c *gin.Context, verifyParse func(t *store.Tenant, body []byte) (enqueue func(context.Context) (bool, error), err error)) {
	t, err := h.tenants.get(c.Request.Context(), c.Param("tenant"))
	if err != nil {
		writeError(c, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.opts.MaxBodyBytes))
	if err != nil {
		writeError(c, err)
		return
	}
	enqueue, err := verifyParse(t, body)
	if err != nil {
		writeError(c, err)
		return
	}
	if enqueue == nil {
		accepted(c, answerIgnored)
		return
	}
	duplicate, err := enqueue(c.Request.Context())
	if err != nil {
		h.opts.Logger.ErrorContext(c.Request.Context(), "event not queued", "tenant", t.ID, "error", err)
		writeError(c, errors.Join(errQueueUnavailable, err))
		return
	}
	if duplicate {
		accepted(c, answerDuplicate)
		return
	}
	accepted(c, answerQueued)
}

// The three 202 answers, encoded once: the sender only learns what became of its delivery.
var (
	answerQueued    = []byte(`{"status":"queued"}`)
	answerDuplicate = []byte(`{"status":"duplicate"}`)
	answerIgnored   = []byte(`{"status":"ignored"}`)
)

func accepted(c *gin.Context, answer []byte) {
	c.Data(http.StatusAccepted, "application/json; charset=utf-8", answer)
}

func (h *handler) zendesk(c *gin.Context) {
	h.intake(c, func(t *store.Tenant, body []byte) (func(context.Context) (bool, error), error) {
		if t.Zendesk.WebhookSecret == "" {
			return nil, errSecretNotSet
		}
		now := h.opts.Now()
		// Each Zendesk webhook has its own signing secret, and a tenant may use two (an event
		// subscription and a trigger webhook) or rotate one: the setting holds them comma-separated.
		var err error
		for _, secret := range strings.Split(t.Zendesk.WebhookSecret, ",") {
			err = zendesk.VerifySignature([]byte(strings.TrimSpace(secret)), c.GetHeader(zendesk.HeaderTimestamp), body,
				c.GetHeader(zendesk.HeaderSignature), now, h.opts.SignatureTolerance)
			if err == nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		ev, ok, err := zendesk.ParseEvent(body, now)
		if err != nil || !ok {
			return nil, err
		}
		return func(ctx context.Context) (bool, error) { return h.opts.Queue.EnqueueTicket(ctx, t.ID, ev) }, nil
	})
}

func (h *handler) shopify(c *gin.Context) {
	h.intake(c, func(t *store.Tenant, body []byte) (func(context.Context) (bool, error), error) {
		if t.ShopifySecret == "" {
			return nil, errSecretNotSet
		}
		if err := shopify.VerifySignature([]byte(t.ShopifySecret), body, c.GetHeader(shopify.HeaderHmac)); err != nil {
			return nil, err
		}
		topic := c.GetHeader(shopify.HeaderTopic)
		if topic == "" {
			return nil, integrations.Malformed("header %s is missing", shopify.HeaderTopic)
		}
		delivery := c.GetHeader(shopify.HeaderEventID)
		if delivery == "" {
			delivery = c.GetHeader(shopify.HeaderWebhookID)
		}
		ev, err := shopify.ParseEvent(topic, body, delivery)
		if errors.Is(err, shopify.ErrUnsupportedTopic) {
			return nil, nil // subscribed to more than we use: acknowledge so Shopify does not retry
		}
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (bool, error) { return h.opts.Queue.EnqueueOrder(ctx, t.ID, ev) }, nil
	})
}

func (h *handler) orders(c *gin.Context) {
	h.intake(c, func(t *store.Tenant, body []byte) (func(context.Context) (bool, error), error) {
		if t.OrdersSecret == "" {
			return nil, errSecretNotSet
		}
		err := orders.VerifySignature([]byte(t.OrdersSecret), c.GetHeader(orders.HeaderTimestamp), body,
			c.GetHeader(orders.HeaderSignature), h.opts.Now(), h.opts.SignatureTolerance)
		if err != nil {
			return nil, err
		}
		ev, err := orders.ParseOrder(body)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (bool, error) { return h.opts.Queue.EnqueueOrder(ctx, t.ID, ev) }, nil
	})
}

// writeError is the one place errors become HTTP answers.
func writeError(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, gin.H{"error": "body larger than the limit", "limit_bytes": tooBig.Limit})
	case errors.Is(err, store.ErrNotFound):
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": "unknown tenant"})
	case errors.Is(err, errSecretNotSet):
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "this tenant has no signing secret for this source; set it with 'clvd tenant update'"})
	case errors.Is(err, integrations.ErrBadSignature):
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": err.Error()})
	case errors.Is(err, integrations.ErrMalformed):
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": err.Error()})
	case errors.Is(err, errQueueUnavailable):
		c.Header("Retry-After", "5")
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "event not accepted: queue unavailable, retry later"})
	default:
		// Reading the body failed (client went away) or the tenant store is down: ask for a retry.
		c.Header("Retry-After", "5")
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "temporarily unavailable, retry later"})
	}
}

// tenantCache keeps tenants and their secrets for a short while, so intake does not hit the database
// on every request; unknown tenants are cached too, briefly, so a misconfigured sender cannot hammer it.
type tenantCache struct {
	src     Tenants
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]tenantEntry
}

type tenantEntry struct {
	t   *store.Tenant
	err error
	at  time.Time
}

func (c *tenantCache) get(ctx context.Context, id string) (*store.Tenant, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.t, e.err
	}
	t, err := c.src.GetTenant(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err // a database error is not cached
	}
	c.mu.Lock()
	if len(c.entries) > 10000 { // bound memory against random tenant ids
		clear(c.entries)
	}
	c.entries[id] = tenantEntry{t: t, err: err, at: now}
	c.mu.Unlock()
	return t, err
}
