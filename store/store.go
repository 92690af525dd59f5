// Package store is clvd's persistence: tenants, customers, orders, refunds, tickets, scores, fitted
// models and the bookkeeping that lets lost queue work be recovered. One implementation over
// database/sql serves both SQLite (modernc.org/sqlite, for single-node installs) and PostgreSQL (pgx,
// for scaled-out installs); dialect.go holds the few differences.
//
// Concurrency model. Every operation that reads-then-writes runs in one write transaction.
//   - SQLite has a single database-wide write lock. Writes go through a dedicated pool of exactly one
//     connection that opens transactions with BEGIN IMMEDIATE: goroutines of this process queue in
//     database/sql for that connection (cheap, FIFO-ish, no polling), and other processes on the same
//     file wait in SQLite's busy handler (busy_timeout) for the write lock at BEGIN — never in the
//     middle of a transaction, where a lock upgrade could fail with SQLITE_BUSY without waiting.
//     Reads use a separate pool of read-only (query_only) connections that WAL lets run alongside the
//     writer.
//   - PostgreSQL uses one pool, READ COMMITTED, SELECT ... FOR UPDATE on the rows a decision depends
//     on, and unique indexes as the arbiter for concurrent inserts: a transaction that loses an insert
//     race is rolled back and run again, and then finds the winner's row.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned (wrapped) when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) when a row to be created already exists.
var ErrConflict = errors.New("conflict")

// Cipher encrypts secrets at rest (implemented by *secretbox.Box).
type Cipher interface {
	Seal(plaintext string) (string, error)
	Open(sealed string) (string, error)
}

// DB is a clvd database. It is safe for concurrent use.
type DB struct {
	w      *sql.DB // write transactions (SQLite: one connection, BEGIN IMMEDIATE)
	r      *sql.DB // reads (SQLite: query_only pool; PostgreSQL: the same pool as w)
	d      dialect
	cipher Cipher
}

const (
	// sqliteBusyTimeout is how long an SQLite connection waits for a lock held by another process
	// before giving up with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	// defaultPGMaxConns bounds one process's PostgreSQL connections; several API and worker
	// processes share the server's max_connections (100 by default). Override with the DSN parameter
	// pool_max_conns.
	defaultPGMaxConns = 10
	// maxTxAttempts bounds how often a transaction that lost a race is run again.
	maxTxAttempts = 10
)

// Open connects to the database named by dsn:
//
//	""                            SQLite file filepath.Join(dataDir, "clvd.db"); dataDir is created if missing
//	"sqlite:PATH", "file:PATH"    that SQLite file
//	"postgres://…", "postgresql://…"  PostgreSQL; the extra parameter pool_max_conns sets the pool size,
//	                              any other parameter (e.g. search_path) is passed to the server
//
// An in-memory SQLite database is not supported: the read and write pools would each get their own.
// cipher may be nil for commands that never touch secrets (e.g. migrate); storing or reading a
// non-empty secret then fails. Open checks the connection but does not migrate.
func Open(ctx context.Context, dsn, dataDir string, cipher Cipher) (*DB, error) {
	lower := strings.ToLower(dsn)
	switch {
	case dsn == "":
		if dataDir == "" {
			return nil, errors.New("open database: neither a DSN nor a data directory given")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("open database: create data directory: %w", err)
		}
		return openSQLite(ctx, filepath.Join(dataDir, "clvd.db"), cipher)
	case strings.HasPrefix(lower, "sqlite:"):
		return openSQLite(ctx, dsn[len("sqlite:"):], cipher)
	case strings.HasPrefix(lower, "file:"):
		path := dsn[len("file:"):]
		if strings.HasPrefix(path, "//") { // file:///abs/path URI form
			path = strings.TrimPrefix(path, "//")
		}
		return openSQLite(ctx, path, cipher)
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return openPostgres(ctx, dsn, cipher)
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok {
		return nil, errors.New("open database: DSN has no scheme; want sqlite:PATH, file:PATH or postgres://…")
	}
	return nil, fmt.Errorf("open database: unsupported scheme %q; want sqlite:, file:, postgres:// or postgresql://", scheme)
}

func openSQLite(ctx context.Context, path string, cipher Cipher) (*DB, error) {
	switch {
	case path == "":
		return nil, errors.New("open sqlite: empty path")
	case path == ":memory:" || strings.Contains(path, "mode=memory"):
		return nil, errors.New("open sqlite: in-memory databases are not supported (each pool would get its own); use a file")
	case strings.ContainsRune(path, '?'):
		// The driver reads everything after '?' as its parameters; the store sets those itself.
		return nil, fmt.Errorf("open sqlite %q: parameters are not supported in the path", path)
	}
	// Create the file owner-only before SQLite does (SQLite would use 0644): it holds customer data
	// and sealed credentials. SQLite gives the -wal and -shm files the database file's permissions.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	} else if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	busy := "_pragma=busy_timeout(" + strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10) + ")"
	// journal_mode(WAL) is persistent in the file; setting it on the writer (pinged first) converts a
	// new database before any reader connects. foreign_keys is per connection and off by default.
	wdsn := path + "?" + busy + "&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	rdsn := path + "?" + busy + "&_pragma=foreign_keys(1)&_pragma=query_only(1)"

	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s (readers): %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open sqlite %s (readers): %w", path, err)
	}
	return &DB{w: w, r: r, d: dialect{DialectSQLite}, cipher: cipher}, nil
}

func openPostgres(ctx context.Context, dsn string, cipher Cipher) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error repeats the DSN, password included; say only what kind of problem it is.
		return nil, errors.New("open postgres: DSN is not a valid URL")
	}
	maxConns := defaultPGMaxConns
	q := u.Query()
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("open postgres: pool_max_conns=%q: want a positive integer", v)
		}
		maxConns = n
		q.Del("pool_max_conns") // pgx would send it to the server as a runtime parameter
		u.RawQuery = q.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(max(2, maxConns/2))
	// Recycle connections so server restarts, failovers and pgbouncer rebalancing are picked up.
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s@%s/%s: %w", cfg.User, cfg.Host, cfg.Database, err)
	}
	return &DB{w: db, r: db, d: dialect{DialectPostgres}, cipher: cipher}, nil
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// Ping checks that the database answers (both pools on SQLite).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.d.name, err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s readers: %w", db.d.name, err)
		}
	}
	return nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	var errs []error
	if db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", db.d.name, err)
	}
	return nil
}

// now is the store's clock: UTC at the database's resolution.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs the store's "?"-placeholder SQL on a pool or transaction of either dialect.
type runner struct {
	q querier
	d dialect
}

func (r runner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, r.d.rebind(query), args...)
}

func (r runner) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, r.d.rebind(query), args...)
}

func (r runner) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, r.d.rebind(query), args...)
}

// reader runs single statements on the read pool.
func (db *DB) reader() runner { return runner{db.r, db.d} }

// writer runs single autocommit statements on the write pool.
func (db *DB) writer() runner { return runner{db.w, db.d} }

// errRetry marks an error after which the transaction is worth running again from the start,
// typically a unique violation caused by a concurrent insert of the same key.
var errRetry = errors.New("lost a race with a concurrent writer")

// retryOnUnique turns a unique violation into errRetry so that inWriteTx runs the transaction again
// (and its lookups then find the concurrent winner's row).
func retryOnUnique(err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	return err
}

// inWriteTx runs fn in a write transaction and commits it, running it again (up to maxTxAttempts)
// when it lost a race. fn must use only the runner it is given: on SQLite the write pool has one
// connection, which fn's transaction holds. fn must also reset any results it assigns, because it
// can run more than once.
func (db *DB) inWriteTx(ctx context.Context, fn func(tx runner) error) error {
	for attempt := 1; ; attempt++ {
		err := db.writeTxOnce(ctx, fn)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errRetry) && !isTransient(err) {
			return err
		}
		if attempt == maxTxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		// Jittered backoff so racing transactions do not collide again in lockstep.
		d := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(d):
		}
	}
}

func (db *DB) writeTxOnce(ctx context.Context, fn func(tx runner) error) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one worth reporting
		}
	}()
	if err := fn(runner{tx, db.d}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inReadTx runs fn in a read-only transaction so that its several queries see one snapshot
// (PostgreSQL needs REPEATABLE READ for that; an SQLite transaction is a snapshot already).
func (db *DB) inReadTx(ctx context.Context, fn func(tx runner) error) (err error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.d.postgres() {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer func() {
		// A read-only transaction has nothing to commit; rolling back releases the snapshot.
		if rerr := tx.Rollback(); rerr != nil && err == nil && !errors.Is(rerr, sql.ErrTxDone) {
			err = fmt.Errorf("end read: %w", rerr)
		}
	}()
	return fn(runner{tx, db.d})
}

// rowsAffected returns how many rows a statement changed.
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// bumpCustomers records that the stored data of the given customers changed: it increments their
// DataVersion (what a score is computed from) and stamps DataChangedAt. Zero ids (guests) and
// duplicates are skipped; ids are locked in ascending order so that two transactions bumping the same
// pair cannot deadlock on PostgreSQL. A missing customer is ErrNotFound.
func bumpCustomers(ctx context.Context, tx runner, tenantID string, ids ...int64) error {
	var uniq []int64
	for _, id := range ids {
		if id != 0 && !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	slices.Sort(uniq)
	at := tx.d.ts(now())
	for _, id := range uniq {
		res, err := tx.exec(ctx, `UPDATE customers SET data_version = data_version + 1, data_changed_at = ?
			WHERE tenant_id = ? AND id = ?`, at, tenantID, id)
		if err != nil {
			return fmt.Errorf("bump data version of customer %d: %w", id, err)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("customer %d of tenant %q: %w", id, tenantID, ErrNotFound)
		}
	}
	return nil
}

// nullID stores customer id 0 (guest / unknown) as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
