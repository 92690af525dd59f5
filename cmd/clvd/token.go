package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/store"
)

// runToken issues an admin API token and prints it, alone, on stdout:
//
//	clvd token --tenant ID [--role admin] [--ttl 24h]     manage one tenant
//	clvd token --role operator [--ttl 24h]                every tenant, and the tenant list
//
// The token is signed with CLVD_JWT_KEY, else with the key in the data folder (created on first
// use), which the service checks tokens with.
func runToken(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "token")
	tenant := fs.String("tenant", "", "the tenant an admin token manages (required for --role admin)")
	role := fs.String("role", admin.RoleAdmin, "admin (one tenant) or operator (every tenant)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token stays valid (at most 8760h)")
	var f serverFlags
	f.bindStore(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(msg string) error {
		fmt.Fprintln(env.Stderr, "clvd token: "+msg)
		return errUsage
	}
	*tenant = strings.TrimSpace(*tenant)
	switch {
	case fs.NArg() > 0:
		return usageErr(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *role != admin.RoleAdmin && *role != admin.RoleOperator:
		return usageErr(fmt.Sprintf("--role %q: want %s or %s", *role, admin.RoleAdmin, admin.RoleOperator))
	case *role == admin.RoleAdmin && *tenant == "":
		return usageErr("--tenant is required for --role admin")
	case *role == admin.RoleOperator && *tenant != "":
		return usageErr("an operator token is for every tenant: leave out --tenant")
	case *ttl <= 0 || *ttl > admin.MaxTTL:
		return usageErr(fmt.Sprintf("--ttl %s: want more than 0 and at most %s", *ttl, admin.MaxTTL))
	}
	cfg, err := loadConfig(env, &f)
	if err != nil {
		return err
	}
	if *role == admin.RoleAdmin {
		db, err := openStore(ctx, cfg, newLogger(cfg, env.Stderr))
		if err != nil {
			return err
		}
		err = db.CheckTenant(ctx, *tenant)
		db.Close()
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("tenant %q does not exist (see 'clvd tenant list')", *tenant)
		}
		if err != nil {
			return err
		}
	}
	keyPath := filepath.Join(cfg.DataDir, admin.KeyFile)
	_, statErr := os.Stat(keyPath)
	generating := strings.TrimSpace(env.Getenv(admin.KeyEnv)) == "" && errors.Is(statErr, os.ErrNotExist)
	key, err := admin.LoadKey(cfg.DataDir, env.Getenv)
	if err != nil {
		return err
	}
	if generating {
		fmt.Fprintf(env.Stderr, "clvd token: %s is not set: generated the token signing key %s. The service checks tokens with it; "+
			"processes that do not share this data folder need %s set to one key.\n", admin.KeyEnv, keyPath, admin.KeyEnv)
	}
	tok, err := admin.IssueToken(key, *tenant, *role, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, tok)
	return err
}
