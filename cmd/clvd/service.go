package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/admin/dashboard"
	"github.com/clvd/clvd/admin/sidebar"
	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/internal/logctx"
	"github.com/clvd/clvd/internal/metrics"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/internal/secretbox"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/webhook"
	"github.com/clvd/clvd/worker"
)

// parts says which roles a process plays.
type parts struct {
	api    bool // HTTP intake
	worker bool // queue workers and scheduler
	// embeddedRedis allows an in-process Redis when REDIS_URL is empty (only `serve`: separate api and
	// worker processes must share a real Redis).
	embeddedRedis bool
}

// service is a running clvd process: its store, its Redis and the parts it runs.
type service struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *store.DB
	redis    redis.UniversalClient
	mini     *miniredis.Miniredis
	queue    *worker.Queue
	handlers *worker.Handlers
	http     *http.Server
	listener net.Listener
	asynqSrv *asynq.Server
	sched    *asynq.Scheduler
	httpErr  chan error
	metrics  *metrics.Metrics
}

// newLogger builds the process logger from the configuration.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	// logctx.Handler adds the request and task ids the context carries to every line.
	if cfg.LogFormat == "text" {
		return slog.New(logctx.NewHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(logctx.NewHandler(slog.NewJSONHandler(w, opts)))
}

// openStore opens (and migrates) the database with the secret key from the configuration.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.DB, error) {
	key, generated, err := cfg.SecretKey()
	if err != nil {
		return nil, err
	}
	if generated {
		log.Warn("CLVD_SECRET_KEY is not set: generated a new key into the data folder; keep it safe, stored credentials cannot be read without it",
			"path", cfg.DataDir+"/secret.key")
	}
	box, err := secretbox.New(key)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, box)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating the database: %w", err)
	}
	return db, nil
}

// openRedis connects to REDIS_URL, or starts an in-process Redis when allowed.
func openRedis(ctx context.Context, cfg *config.Config, embedded bool, log *slog.Logger) (redis.UniversalClient, *miniredis.Miniredis, error) {
	if cfg.RedisURL == "" {
		if !embedded {
			return nil, nil, errors.New("REDIS_URL is required: separate api and worker processes share their queue through Redis (or run 'clvd serve' for the embedded one)")
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("starting the in-process Redis: %w", err)
		}
		log.Warn("REDIS_URL is not set: using an IN-PROCESS Redis. Queued work does NOT survive a restart (the reconciler recovers rescores and tag pushes from the store, but events acknowledged and not yet ingested are lost). Set REDIS_URL for production.",
			"addr", m.Addr())
		go runMiniredisClock(m)
		return redis.NewClient(&redis.Options{Addr: m.Addr()}), m, nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rc := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rc.Ping(pctx).Err(); err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("REDIS_URL=%s: %w", config.Redacted(cfg.RedisURL), err)
	}
	return rc, nil, nil
}

// runMiniredisClock makes the in-process Redis expire keys in real time. miniredis is built for unit
// tests and only moves TTLs on FastForward; without this, leases and asynq's uniqueness locks that rely
// on expiry would never end. It stops when the server is closed.
func runMiniredisClock(m *miniredis.Miniredis) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-m.Ctx.Done():
			return
		case now := <-t.C:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// startService opens the store and Redis and starts the requested parts. Close stops them.
func startService(ctx context.Context, cfg *config.Config, p parts, log *slog.Logger) (_ *service, err error) {
	s := &service{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil { // whatever was started before the failure is stopped again
			s.Close(context.Background())
		}
	}()
	if s.db, err = openStore(ctx, cfg, log); err != nil {
		return nil, err
	}
	if s.redis, s.mini, err = openRedis(ctx, cfg, p.embeddedRedis, log); err != nil {
		return nil, err
	}
	s.queue = worker.NewQueueFromRedis(s.redis, cfg.RescoreDebounce)
	if err = s.metrics.WatchQueues(asynq.NewInspectorFromRedisClient(s.redis), worker.Queues); err != nil {
		return nil, err
	}

	if p.worker {
		httpClient := safehttp.NewClient(cfg.AllowLocalTargets, cfg.HelpdeskTimeout)
		httpClient.Transport = s.metrics.InstrumentTransport(httpClient.Transport)
		s.handlers = worker.NewHandlers(s.db, s.queue, worker.ZendeskFactory(httpClient), log)
		s.handlers.UseRedis(s.redis, cfg.ReconcileEvery)
		s.handlers.AllowLocalTargets = cfg.AllowLocalTargets
		s.handlers.HelpdeskTimeout = cfg.HelpdeskTimeout
		mux := asynq.NewServeMux()
		mux.Use(worker.LogContext, s.metrics.TaskMiddleware)
		s.handlers.Register(mux)
		s.asynqSrv = worker.NewServer(s.redis, worker.ServerOptions{
			Concurrency: cfg.WorkerConcurrency, Poll: cfg.QueuePoll, ShutdownTimeout: cfg.ShutdownTimeout, Logger: log,
		})
		if err = s.asynqSrv.Start(mux); err != nil {
			return nil, fmt.Errorf("starting workers: %w", err)
		}
		if s.sched, err = worker.NewScheduler(s.redis, cfg.ReconcileEvery, cfg.RefitCron, log); err != nil {
			return nil, err
		}
		if err = s.sched.Start(); err != nil {
			return nil, fmt.Errorf("starting the scheduler: %w", err)
		}
	}
	if p.api {
		gin.SetMode(gin.ReleaseMode)
		router := webhook.NewRouter(webhook.Options{
			Tenants:            s.db,
			Queue:              s.queue,
			MaxBodyBytes:       cfg.MaxBodyBytes,
			SignatureTolerance: cfg.SignatureTolerance,
			Logger:             log,
			Middleware:         []gin.HandlerFunc{s.metrics.GinMiddleware()},
			Ready: []webhook.Check{
				{Name: "database", Ping: s.db.Ping},
				{Name: "redis", Ping: func(ctx context.Context) error { return s.redis.Ping(ctx).Err() }},
			},
		})
		// The admin API; its key comes from CLVD_JWT_KEY (validated there) or the data folder.
		jwtKey, err := admin.LoadKey(cfg.DataDir, func(k string) string {
			if k == admin.KeyEnv {
				return cfg.JWTKey
			}
			return ""
		})
		if err != nil {
			return nil, err
		}
		adminAPI, err := admin.NewHandler(admin.Options{Store: s.db, Key: jwtKey, PublicURL: cfg.BaseURL(), AllowLocalTargets: cfg.AllowLocalTargets, Logger: log})
		if err != nil {
			return nil, err
		}
		adminAPI.Register(router.Group("/api/v1"))
		// The admin dashboard at /admin/ (admin/dashboard): embedded pages, sessions signed in with admin tokens.
		// Operators also get asynq's queue monitor there, at /admin/queues/.
		dash, err := dashboard.New(dashboard.Options{API: adminAPI, PublicURL: cfg.BaseURL(), Logger: log,
			Queues: worker.QueueMonitor(s.redis, dashboard.QueuesPath)})
		if err != nil {
			return nil, err
		}
		dash.Register(router)
		// The Zendesk sidebar app (admin/sidebar); its session key is derived from the same key.
		sidebarHTTP := safehttp.NewClient(cfg.AllowLocalTargets, 10*time.Second)
		sidebarHTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		sidebarHTTP.Transport = s.metrics.InstrumentTransport(sidebarHTTP.Transport)
		sidebarApp, err := sidebar.NewHandler(sidebar.Options{Store: s.db, Key: jwtKey, HTTPClient: sidebarHTTP, Logger: log})
		if err != nil {
			return nil, err
		}
		sidebarApp.Register(router.Group(sidebar.MountPath))
		router.GET("/metrics", gin.WrapH(s.metrics.Handler()))
		if s.listener, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("CLVD_ADDR=%s: %w", cfg.Addr, err)
		}
		s.http = &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		s.httpErr = make(chan error, 1)
		go func() { s.httpErr <- s.http.Serve(s.listener) }()
		log.Info("listening", "addr", s.listener.Addr().String(), "webhooks", cfg.BaseURL()+"/webhooks/{tenant}/{zendesk|shopify|orders}")
	} else if cfg.MetricsAddr != "" {
		// A worker-only process has no HTTP intake: its metrics get a listener of their own.
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
		if s.listener, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("CLVD_METRICS_ADDR=%s: %w", cfg.MetricsAddr, err)
		}
		s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		s.httpErr = make(chan error, 1)
		go func() { s.httpErr <- s.http.Serve(s.listener) }()
		log.Info("serving metrics", "addr", s.listener.Addr().String())
	}
	return s, nil
}

// URL is the base URL of the running HTTP part.
func (s *service) URL() string { return "http://" + s.listener.Addr().String() }

// wait blocks until ctx ends or the HTTP server fails.
func (s *service) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.httpErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Close stops intake first (no new events), then lets workers finish or hand back in-flight tasks,
// then closes Redis and the database.
func (s *service) Close(ctx context.Context) {
	if s.http != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = s.http.Shutdown(sctx)
		cancel()
	}
	if s.sched != nil {
		s.sched.Shutdown()
	}
	if s.asynqSrv != nil {
		s.asynqSrv.Shutdown()
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	if s.mini != nil {
		s.mini.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}
