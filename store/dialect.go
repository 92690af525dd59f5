package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names returned by DB.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// dialect holds the few places where SQLite and PostgreSQL disagree. Everything else is shared SQL
// written with "?" placeholders.
type dialect struct {
	name string
}

func (d dialect) postgres() bool { return d.name == DialectPostgres }

// rebind turns "?" placeholders into PostgreSQL's "$n". The store's SQL never contains a literal "?"
// (no string constants with question marks, no JSON operators), so a plain scan is exact.
func (d dialect) rebind(q string) string {
	if !d.postgres() || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// forUpdate locks the rows a write transaction reads before it decides what to write. SQLite has no
// row locks and needs none: a write transaction there already holds the database's single write lock
// (BEGIN IMMEDIATE), so nobody else can change the row in between.
func (d dialect) forUpdate() string {
	if d.postgres() {
		return " FOR UPDATE"
	}
	return ""
}

// ts is how a time is written. SQLite stores INTEGER unix microseconds (exact, sortable, no text
// parsing); PostgreSQL stores TIMESTAMPTZ, whose resolution is the microsecond. Both get the time
// truncated here so that what Go compares and what the database compares are the same value.
func (d dialect) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.postgres() {
		return t
	}
	return t.UnixMicro()
}

// nullTS is ts with the zero time stored as NULL ("unknown").
func (d dialect) nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.ts(t)
}

// utcMicro normalises a time the way the database will hold it.
func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeCol scans a time column written by ts/nullTS from either backend; NULL gives the zero time.
type timeCol struct{ dst *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.dst = time.Time{}
	case int64:
		*c.dst = time.UnixMicro(v).UTC()
	case time.Time:
		*c.dst = v.UTC()
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

// nullTimeCol scans a nullable time column into a *time.Time (nil for NULL).
type nullTimeCol struct{ dst **time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.dst = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.dst = &t
	return nil
}

// isUniqueViolation reports whether err is a unique or primary-key constraint violation.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err says a referenced row (tenant, customer) does not exist.
func isForeignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// isTransient reports errors after which the whole transaction may simply be run again:
// PostgreSQL serialization failures and deadlocks (the server already rolled the victim back). A lost
// connection is deliberately not retried: a COMMIT may have succeeded before the connection died.
func isTransient(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "40001" || pg.Code == "40P01"
	}
	return false
}
