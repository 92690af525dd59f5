package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migrations live in migrations/<dialect>/NNNN_name.sql. Both dialects carry the same numbers (a test
// checks it), so a schema version means the same thing on either backend.
//
//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func migrations(dialectName string) ([]migration, error) {
	dir := path.Join("migrations", dialectName)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", dir, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate brings the schema up to date. Each migration runs in its own transaction together with its
// schema_migrations row, so a crash leaves the schema at a whole version. It is idempotent and safe
// when several processes run it at once: each transaction first takes a lock that serialises
// migrators (PostgreSQL: a transaction-scoped advisory lock keyed by the schema; SQLite: the write
// lock of BEGIN IMMEDIATE), then re-reads which versions are applied.
func (db *DB) Migrate(ctx context.Context) error {
	all, err := migrations(db.d.name)
	if err != nil {
		return err
	}
	lockKey, err := db.migrationLockKey(ctx)
	if err != nil {
		return err
	}
	for {
		done := false
		err := db.inWriteTx(ctx, func(tx runner) error {
			done = false
			if db.d.postgres() {
				if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, lockKey); err != nil {
					return fmt.Errorf("take migration lock: %w", err)
				}
			}
			if _, err := tx.exec(ctx, db.schemaMigrationsDDL()); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
			applied, err := appliedVersions(ctx, tx)
			if err != nil {
				return err
			}
			known := map[int]bool{}
			for _, m := range all {
				known[m.version] = true
			}
			for v := range applied {
				if !known[v] {
					return fmt.Errorf("database has migration %d, which this binary does not know: it was migrated by a newer clvd", v)
				}
			}
			for _, m := range all {
				if applied[m.version] {
					continue
				}
				if _, err := tx.exec(ctx, m.sql); err != nil {
					return fmt.Errorf("apply migration %04d_%s: %w", m.version, m.name, err)
				}
				if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
					m.version, m.name, tx.d.ts(now())); err != nil {
					return fmt.Errorf("record migration %04d_%s: %w", m.version, m.name, err)
				}
				return nil // one migration per transaction
			}
			done = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", db.d.name, err)
		}
		if done {
			return nil
		}
	}
}

func (db *DB) schemaMigrationsDDL() string {
	if db.d.postgres() {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL) STRICT`
}

func appliedVersions(ctx context.Context, tx runner) (map[int]bool, error) {
	rows, err := tx.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// migrationLockKey is the PostgreSQL advisory lock that serialises migrators of one schema. It is
// keyed by the current schema so that installs (or test runs) sharing a database in different
// schemas do not wait for each other.
func (db *DB) migrationLockKey(ctx context.Context) (int64, error) {
	if !db.d.postgres() {
		return 0, nil
	}
	var schema sql.NullString
	if err := db.r.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return 0, fmt.Errorf("migrate: read current schema: %w", err)
	}
	if !schema.Valid {
		return 0, errors.New("migrate: no current schema: search_path names no existing schema")
	}
	h := fnv.New64a()
	h.Write([]byte("clvd.migrate." + schema.String))
	return int64(h.Sum64()), nil
}

// SchemaVersion returns the highest applied migration and the highest this binary knows; they are
// equal when the schema is up to date. An unmigrated database gives 0.
func (db *DB) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
	all, err := migrations(db.d.name)
	if err != nil {
		return 0, 0, err
	}
	if len(all) > 0 {
		latest = all[len(all)-1].version
	}
	var exists bool
	q := `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')`
	if db.d.postgres() {
		q = `SELECT to_regclass('schema_migrations') IS NOT NULL`
	}
	if err := db.r.QueryRowContext(ctx, q).Scan(&exists); err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, latest, nil
	}
	var v sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v.Int64), latest, nil
}
