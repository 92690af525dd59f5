package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/store"
)

// serverFlags binds the flags that may override the environment for the long-running commands.
type serverFlags struct {
	addr, dataDir, databaseURL, redisURL string
}

func (f *serverFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "", "listen address (overrides CLVD_ADDR)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data folder (overrides CLVD_DATA_DIR)")
	fs.StringVar(&f.databaseURL, "database-url", "", "database URL (overrides DATABASE_URL)")
	fs.StringVar(&f.redisURL, "redis-url", "", "Redis URL (overrides REDIS_URL)")
}

// bindStore binds the overrides a command that only needs the database takes.
func (f *serverFlags) bindStore(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "", "data folder (overrides CLVD_DATA_DIR)")
	fs.StringVar(&f.databaseURL, "database-url", "", "database URL (overrides DATABASE_URL)")
}

// openFromFlags loads the configuration with the flags' overrides and opens (and migrates) the store.
func openFromFlags(ctx context.Context, env *cliEnv, f *serverFlags) (*config.Config, *store.DB, error) {
	cfg, err := loadConfig(env, f)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, env.Stderr))
	if err != nil {
		return nil, nil, err
	}
	return cfg, db, nil
}

// loadConfig reads the environment, applies flag overrides and validates the result.
func loadConfig(env *cliEnv, f *serverFlags) (*config.Config, error) {
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if f != nil {
		for _, o := range []struct {
			v   string
			dst *string
		}{{f.addr, &cfg.Addr}, {f.dataDir, &cfg.DataDir}, {f.databaseURL, &cfg.DatabaseURL}, {f.redisURL, &cfg.RedisURL}} {
			if o.v != "" {
				*o.dst = o.v
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
	}
	return cfg, nil
}

func runServe(ctx context.Context, env *cliEnv, args []string) error {
	return runParts(ctx, env, "serve", args, parts{api: true, worker: true, embeddedRedis: true})
}

func runAPI(ctx context.Context, env *cliEnv, args []string) error {
	return runParts(ctx, env, "api", args, parts{api: true})
}

func runWorker(ctx context.Context, env *cliEnv, args []string) error {
	return runParts(ctx, env, "worker", args, parts{worker: true})
}

func runParts(ctx context.Context, env *cliEnv, name string, args []string, p parts) error {
	fs := newFlagSet(env, name)
	var f serverFlags
	f.bind(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, &f)
	if err != nil {
		return err
	}
	log := newLogger(cfg, env.Stderr)
	s, err := startService(ctx, cfg, p, log)
	if err != nil {
		return err
	}
	log.Info("clvd started", "command", name, "database", dbKind(cfg), "redis", redisKind(cfg))
	err = s.wait(ctx)
	log.Info("shutting down")
	s.Close(context.Background())
	return err
}

func dbKind(cfg *config.Config) string {
	if cfg.DatabaseURL == "" {
		return "sqlite (" + cfg.DataDir + "/clvd.db)"
	}
	return "postgres"
}

func redisKind(cfg *config.Config) string {
	if cfg.RedisURL == "" {
		return "in-process"
	}
	return config.Redacted(cfg.RedisURL)
}

func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "migrate")
	var f serverFlags
	f.bind(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, db, err := openFromFlags(ctx, env, &f)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(env.Stdout, "migrations applied (%s)\n", dbKind(cfg))
	return nil
}
