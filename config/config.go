// Package config reads clvd's configuration from the environment (flags may override single fields)
// and validates all of it at start, so a bad value stops the process with a message naming the variable.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clvd/clvd/internal/secretbox"
)

// Config is the whole process configuration. Field comments name the environment variable.
type Config struct {
	Addr        string // CLVD_ADDR, default ":8080"
	MetricsAddr string // CLVD_METRICS_ADDR: where a worker-only process serves /metrics ("" = not served)
	PublicURL   string // CLVD_PUBLIC_URL: base URL senders reach us at, for printed webhook URLs; default from Addr
	DataDir     string // CLVD_DATA_DIR, default "./data"
	DatabaseURL string // DATABASE_URL: "" = SQLite in DataDir; postgres://... = PostgreSQL
	RedisURL    string // REDIS_URL: "" = in-process Redis (queued work lost on restart)

	SecretKeyHex string // CLVD_SECRET_KEY (hex or base64, 32 bytes); "" = read or create DataDir/secret.key
	JWTKey       string // CLVD_JWT_KEY: signs admin API tokens (hex or base64, >= 32 bytes); "" = DataDir/jwt.key

	MaxBodyBytes       int64         // CLVD_MAX_BODY_BYTES, default 1 MiB
	SignatureTolerance time.Duration // CLVD_SIGNATURE_TOLERANCE, default 5m: how far a signed timestamp may be from now
	AllowLocalTargets  bool          // CLVD_ALLOW_LOCAL_TARGETS: allow http and private/loopback helpdesk URLs (local trials and tests only)

	WorkerConcurrency int           // CLVD_WORKER_CONCURRENCY, default 10
	RescoreDebounce   time.Duration // CLVD_RESCORE_DEBOUNCE, default 1s: events for one customer within this window share one rescore
	QueuePoll         time.Duration // CLVD_QUEUE_POLL, default 100ms: how often idle workers look for new and delayed tasks
	ReconcileEvery    time.Duration // CLVD_RECONCILE_EVERY, default 1m: sweep the store for work a lost queue dropped
	RefitCron         string        // CLVD_REFIT_CRON, default "17 3 * * *": when every tenant's model is refitted (UTC)
	ShutdownTimeout   time.Duration // CLVD_SHUTDOWN_TIMEOUT, default 25s
	HelpdeskTimeout   time.Duration // CLVD_HELPDESK_TIMEOUT, default 30s: how long one helpdesk API call may take

	LogFormat string // CLVD_LOG_FORMAT: "json" (default) or "text"
	LogLevel  string // CLVD_LOG_LEVEL: debug|info|warn|error, default info
}

// Load reads the configuration from getenv and validates it.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		Addr:               ":8080",
		DataDir:            "./data",
		MaxBodyBytes:       1 << 20,
		SignatureTolerance: 5 * time.Minute,
		WorkerConcurrency:  10,
		RescoreDebounce:    time.Second,
		QueuePoll:          100 * time.Millisecond,
		ReconcileEvery:     time.Minute,
		RefitCron:          "17 3 * * *",
		ShutdownTimeout:    25 * time.Second,
		HelpdeskTimeout:    30 * time.Second,
		LogFormat:          "json",
		LogLevel:           "info",
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a non-negative duration such as 500ms or 5m", name, v))
				return
			}
			*dst = d
		}
	}
	integer := func(name string, dst *int64) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
				return
			}
			*dst = n
		}
	}
	str("CLVD_ADDR", &c.Addr)
	str("CLVD_METRICS_ADDR", &c.MetricsAddr)
	str("CLVD_PUBLIC_URL", &c.PublicURL)
	str("CLVD_DATA_DIR", &c.DataDir)
	str("DATABASE_URL", &c.DatabaseURL)
	str("REDIS_URL", &c.RedisURL)
	str("CLVD_SECRET_KEY", &c.SecretKeyHex)
	str("CLVD_JWT_KEY", &c.JWTKey)
	integer("CLVD_MAX_BODY_BYTES", &c.MaxBodyBytes)
	dur("CLVD_SIGNATURE_TOLERANCE", &c.SignatureTolerance)
	var conc int64 = int64(c.WorkerConcurrency)
	integer("CLVD_WORKER_CONCURRENCY", &conc)
	c.WorkerConcurrency = int(conc)
	dur("CLVD_RESCORE_DEBOUNCE", &c.RescoreDebounce)
	dur("CLVD_QUEUE_POLL", &c.QueuePoll)
	dur("CLVD_RECONCILE_EVERY", &c.ReconcileEvery)
	str("CLVD_REFIT_CRON", &c.RefitCron)
	dur("CLVD_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("CLVD_HELPDESK_TIMEOUT", &c.HelpdeskTimeout)
	str("CLVD_LOG_FORMAT", &c.LogFormat)
	str("CLVD_LOG_LEVEL", &c.LogLevel)
	if v := strings.TrimSpace(getenv("CLVD_ALLOW_LOCAL_TARGETS")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("CLVD_ALLOW_LOCAL_TARGETS=%q: want true or false", v))
		}
		c.AllowLocalTargets = b
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, c.Validate()
}

// Validate checks every field; call it again after flags changed some.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("CLVD_ADDR=%q: want host:port such as :8080 (%v)", c.Addr, err))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("CLVD_METRICS_ADDR=%q: want host:port such as :9090 (%v)", c.MetricsAddr, err))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("CLVD_PUBLIC_URL=%q: want an absolute http(s) URL", c.PublicURL))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("CLVD_DATA_DIR must not be empty"))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		switch {
		case err != nil:
			// url's error quotes the whole URL, password included: say only that it does not parse.
			errs = append(errs, errors.New("DATABASE_URL does not parse as a URL (postgres://user:password@host:5432/db?sslmode=...)"))
		case u.Scheme != "postgres" && u.Scheme != "postgresql" && u.Scheme != "sqlite" && u.Scheme != "file":
			errs = append(errs, fmt.Errorf("DATABASE_URL: scheme %q not supported: use postgres://... (or leave it empty for SQLite in CLVD_DATA_DIR)", u.Scheme))
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "redis-sentinel" && u.Scheme != "redis-cluster") {
			errs = append(errs, fmt.Errorf("REDIS_URL=%q: want redis://[:password@]host:port[/db] or rediss://...", redact(c.RedisURL)))
		}
	}
	if c.SecretKeyHex != "" {
		if _, err := secretbox.ParseKey(c.SecretKeyHex); err != nil {
			errs = append(errs, fmt.Errorf("CLVD_SECRET_KEY: %v", err))
		}
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("CLVD_MAX_BODY_BYTES must be positive"))
	}
	if c.SignatureTolerance <= 0 {
		errs = append(errs, errors.New("CLVD_SIGNATURE_TOLERANCE must be positive"))
	}
	if c.WorkerConcurrency <= 0 {
		errs = append(errs, errors.New("CLVD_WORKER_CONCURRENCY must be positive"))
	}
	if c.QueuePoll <= 0 || c.QueuePoll > time.Minute {
		errs = append(errs, fmt.Errorf("CLVD_QUEUE_POLL=%s: want between 1ms and 1m", c.QueuePoll))
	}
	if c.HelpdeskTimeout < 100*time.Millisecond || c.HelpdeskTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("CLVD_HELPDESK_TIMEOUT=%s: want between 100ms and 10m", c.HelpdeskTimeout))
	}
	if c.ReconcileEvery < time.Second {
		errs = append(errs, fmt.Errorf("CLVD_RECONCILE_EVERY=%s: want at least 1s", c.ReconcileEvery))
	}
	if len(strings.Fields(c.RefitCron)) != 5 && !strings.HasPrefix(c.RefitCron, "@") {
		errs = append(errs, fmt.Errorf("CLVD_REFIT_CRON=%q: want a 5-field cron spec such as \"17 3 * * *\" or @daily", c.RefitCron))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("CLVD_LOG_FORMAT=%q: want json or text", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("CLVD_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// BaseURL is where senders reach this service: CLVD_PUBLIC_URL, else http://localhost:PORT.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.Addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// SecretKey returns the key that encrypts stored secrets: CLVD_SECRET_KEY, else DataDir/secret.key,
// created with a fresh random key (mode 0600) on first use. generated reports that a new file was written.
func (c *Config) SecretKey() (key []byte, generated bool, err error) {
	if c.SecretKeyHex != "" {
		k, err := secretbox.ParseKey(c.SecretKeyHex)
		if err != nil {
			return nil, false, fmt.Errorf("CLVD_SECRET_KEY: %w", err)
		}
		return k, false, nil
	}
	path := filepath.Join(c.DataDir, "secret.key")
	raw, err := os.ReadFile(path)
	if err == nil {
		k, err := secretbox.ParseKey(string(raw))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("CLVD_DATA_DIR=%q: %w", c.DataDir, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race: use its key
		return c.SecretKey()
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating %s: %w", path, err)
	}
	hexKey := secretbox.NewKey()
	if _, err := f.WriteString(hexKey + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	k, _ := secretbox.ParseKey(hexKey)
	return k, true, nil
}

// redact hides a password in a URL for messages; a URL that does not parse is not shown at all.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redacted returns s with any URL password hidden, for logs.
func Redacted(s string) string { return redact(s) }
