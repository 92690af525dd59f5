package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/integrations/orders"
	"github.com/clvd/clvd/integrations/shopify"
	"github.com/clvd/clvd/internal/money"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

const importUsage = `Usage: clvd import --tenant ID [--format auto|orders|shopify|transactions] [--skip-bad] [flags] FILE.csv

Backfills a tenant's order history from a CSV file (FILE "-" reads standard input). Each order is
stored exactly as a webhook delivery of it would be, so importing a file twice, or a file that
overlaps what webhooks delivered, changes nothing the second time. Afterwards a model refit is
requested; the running service picks the request up (and gets it at once when REDIS_URL is set).

Formats (--format auto, the default, tells them apart by the header row):
  orders   clvd's generic order CSV, one row per order, columns in any order:
           order_id,customer_id,email,name,created_at,updated_at,amount,currency,status,refunded_amount
           (required: order_id, created_at, amount, currency, and customer_id or email on each row)
  shopify  the CSV from Shopify admin > Orders > Export (one row per line item)
  transactions  (never detected: name it) one purchase per row, customer id, date and amount in
           the columns --customer-col, --date-col and --amount-col name (header names or 1-based
           numbers; --no-header when the first line is data); comma, tab, semicolon or blank
           separated; every row a paid order in --currency. The CDNOW sample, for instance:
           clvd import --tenant ID --format transactions --no-header --customer-col 2 \
             --date-col 3 --amount-col 5 --currency USD CDNOW_sample.txt

A bad row stops the import with its file, line and column; rows before it stay stored, so fix it and
run the import again. With --skip-bad, bad rows are counted and skipped (the first 10 are shown).

Flags:
`

// importMaxShownBad is how many skipped rows --skip-bad prints; the rest are only counted.
const importMaxShownBad = 10

// importPeekSize bounds the header row auto-detection looks at. Shopify's header is ~1.3 KB.
const importPeekSize = 64 << 10

// importSource is what both CSV readers offer.
type importSource interface {
	Next() (integrations.OrderEvent, error)
	Line() int
}

func runImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "import")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, importUsage)
		fs.PrintDefaults()
	}
	tenantID := fs.String("tenant", "", "tenant id (required; see 'clvd tenant list')")
	format := fs.String("format", "auto", "file format: auto, orders, shopify or transactions")
	skipBad := fs.Bool("skip-bad", false, "skip and count bad rows instead of stopping at the first")
	customerCol := fs.String("customer-col", "customer_id", "transactions: customer id column (header name or 1-based number)")
	dateCol := fs.String("date-col", "date", "transactions: date column (YYYY-MM-DD, YYYYMMDD or RFC 3339)")
	amountCol := fs.String("amount-col", "amount", "transactions: amount column (decimal, major units)")
	noHeader := fs.Bool("no-header", false, "transactions: the first line is data (columns by number)")
	currency := fs.String("currency", "", "transactions: the currency of every amount (ISO 4217, e.g. USD)")
	var f serverFlags
	f.bindStore(fs)
	fs.StringVar(&f.redisURL, "redis-url", "", "Redis URL (overrides REDIS_URL): queue the refit directly")
	files, err := importParseArgs(fs, args)
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		fmt.Fprintf(env.Stderr, "clvd import: %s\n", fmt.Sprintf(format, a...))
		return errUsage
	}
	switch {
	case *tenantID == "":
		return usage("--tenant is required")
	case len(files) != 1:
		return usage("give exactly one FILE.csv (or - for standard input), got %d", len(files))
	case *format != "auto" && *format != "orders" && *format != "shopify" && *format != "transactions":
		return usage("--format must be auto, orders, shopify or transactions, not %q", *format)
	case *format == "transactions" && !money.ValidCurrency(strings.ToUpper(*currency)):
		return usage("--format transactions needs --currency, the ISO 4217 code of the amounts (e.g. USD), not %q", *currency)
	}
	if *format != "transactions" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "customer-col", "date-col", "amount-col", "no-header", "currency":
				set = append(set, "--"+f.Name)
			}
		})
		if len(set) > 0 {
			return usage("%s: only for --format transactions (the other formats name their columns and currency themselves)", strings.Join(set, ", "))
		}
	}
	cfg, err := loadConfig(env, &f)
	if err != nil {
		return err
	}

	// The file first: a mistyped path should not wait for the database.
	in, err := importOpen(env, files[0])
	if err != nil {
		return err
	}
	defer in.close()

	log := newLogger(cfg, os.Stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.GetTenant(ctx, *tenantID); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tenant %q does not exist (see 'clvd tenant list')", *tenantID)
	} else if err != nil {
		return fmt.Errorf("tenant %q: %w", *tenantID, err)
	}

	var src importSource
	unit := "rows"
	if *format == "transactions" {
		// Its errors name the file already.
		if src, err = newTransactionSource(in.name, in.br, transactionColumns(*customerCol, *dateCol, *amountCol, *noHeader), strings.ToUpper(*currency)); err != nil {
			return err
		}
	} else if src, unit, err = importDetect(in.br, *format); err != nil {
		return fmt.Errorf("%s: %w", in.name, err)
	}
	st, err := importRows(ctx, env, in, src, unit, *tenantID, db, *skipBad)
	if err != nil {
		return err
	}

	// Always, even when nothing changed: the request is cheap, and a refit skipped now would leave
	// a tenant whose earlier import failed half-way without one until the nightly run.
	refit := "refit requested"
	if err := worker.RequestRefit(ctx, db, *tenantID, "import"); err != nil {
		fmt.Fprintln(env.Stdout, st.summary(unit, "refit NOT requested"))
		return fmt.Errorf("the orders are stored, but requesting a model refit failed (run the import again to retry): %w", err)
	}
	if cfg.RedisURL != "" {
		if err := importEnqueueRefit(ctx, cfg, *tenantID, "import:"+hex.EncodeToString(in.sum.Sum(nil))); err != nil {
			// The request in the store stands: the service's reconciler queues it on its next pass.
			fmt.Fprintf(env.Stderr, "warning: could not queue the refit directly (%v); the running service will start it from the request recorded in the database\n", err)
		} else {
			refit = "refit requested and queued"
		}
	}
	fmt.Fprintln(env.Stdout, st.summary(unit, refit))
	return nil
}

// importParseArgs parses flags wherever they are among the arguments (the flag package stops at the
// first argument that is not a flag, and `clvd import orders.csv --tenant t_x` is a natural way to
// type it) and returns the rest. After "--" everything is a file.
func importParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if consumed := len(args) - fs.NArg(); consumed > 0 && args[consumed-1] == "--" {
			return append(files, fs.Args()...), nil
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// importInput is the file being imported, read through a byte counter (for the percentage) and a
// hash (the import's identity for the refit task).
type importInput struct {
	name  string
	size  int64 // > 0 only for a regular file: the percentage needs a known end
	read  *importCountingReader
	sum   hash.Hash
	br    *bufio.Reader
	close func()
}

func importOpen(env *cliEnv, path string) (*importInput, error) {
	in := &importInput{name: path, sum: sha256.New(), close: func() {}}
	var r io.Reader
	if path == "-" {
		in.name, r = "stdin", env.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if fi.IsDir() {
			f.Close()
			return nil, fmt.Errorf("%s is a directory, not a CSV file", path)
		}
		if fi.Mode().IsRegular() {
			in.size = fi.Size()
		}
		r, in.close = f, func() { f.Close() }
	}
	in.read = &importCountingReader{r: r}
	in.br = bufio.NewReaderSize(io.TeeReader(in.read, in.sum), importPeekSize)
	return in, nil
}

// importCountingReader counts the bytes read from the file. Less what the peek buffer holds, that is
// how far the rows have got, give or take the readers' own small buffers (8 KB).
type importCountingReader struct {
	r io.Reader
	n int64
}

func (c *importCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// importDetect chooses the reader from --format, or from the header row for auto. The header is
// peeked, not consumed, so the chosen reader reads it again and checks it in its own terms. unit is
// what one event is called in the progress line and summary.
func importDetect(br *bufio.Reader, format string) (src importSource, unit string, err error) {
	if format == "auto" {
		peek, _ := br.Peek(importPeekSize) // fewer bytes at the end of a small file: that is fine
		cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(peek, []byte("\ufeff"))))
		cr.FieldsPerRecord = -1
		header, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil, "", errors.New("the file is empty")
		}
		if err != nil {
			return nil, "", fmt.Errorf("reading the header row: %w", err)
		}
		isOrders, isShopify := orders.IsCSVHeader(header), shopify.IsExportHeader(header)
		switch {
		case isOrders && isShopify:
			return nil, "", errors.New("the header fits both the generic order CSV and Shopify's export: pass --format orders or --format shopify")
		case isOrders:
			format = "orders"
		case isShopify:
			format = "shopify"
		default:
			return nil, "", errors.New("the header row is neither the generic order CSV's (order_id,created_at,amount,currency,...) " +
				"nor Shopify's orders export's (Name,Email,Financial Status,...); pass --format orders or --format shopify to see which columns are missing")
		}
	}
	if format == "shopify" {
		r, err := shopify.NewExportReader(br)
		return r, "orders", err
	}
	r, err := orders.NewCSVReader(br)
	return r, "rows", err
}

// importStats are the counts the summary reports.
type importStats struct {
	events, unchanged, bad int
	store                  *importStore
}

// summary is one line of plain numbers (no thousands separators), so scripts can pick it apart.
func (s *importStats) summary(unit, refit string) string {
	customers := fmt.Sprintf("%d customers", len(s.store.customers))
	if s.store.guests > 0 {
		customers += fmt.Sprintf(" (+%d orders without email, credited to no customer)", s.store.guests)
	}
	return fmt.Sprintf("imported %d %s: %d orders new or changed, %d refunds new, %d unchanged, %s, %d bad rows; %s",
		s.events, unit, s.store.orders, s.store.refunds, s.unchanged, customers, s.bad, refit)
}

// importRows stores every event of src. A bad row ends the import unless skipBad; anything else that
// fails (the file, the database) always does.
func importRows(ctx context.Context, env *cliEnv, in *importInput, src importSource, unit, tenantID string,
	db *store.DB, skipBad bool) (*importStats, error) {
	st := &importStats{store: &importStore{db: db, customers: map[int64]struct{}{}}}
	prog := newImportProgress(env.Stderr, in, unit)
	defer prog.finish(st)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted after %d %s (those are stored; importing the file again is safe): %w", st.events, unit, err)
		}
		ev, err := src.Next()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			if !errors.Is(err, integrations.ErrMalformed) {
				return nil, fmt.Errorf("%s: reading after line %d: %w", in.name, src.Line(), err)
			}
			if !skipBad {
				return nil, fmt.Errorf("%s: %w (the %d %s before it are stored: fix the file and import it again, or pass --skip-bad)",
					in.name, err, st.events, unit)
			}
			st.bad++
			if st.bad <= importMaxShownBad {
				prog.clear()
				fmt.Fprintf(env.Stderr, "skipped %s: %v\n", in.name, err)
			}
			continue
		}
		st.events++
		st.store.changed = false
		if _, err := worker.StoreOrderEvent(ctx, st.store, tenantID, ev, false); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", in.name, src.Line(), err)
		}
		if !st.store.changed {
			st.unchanged++
		}
		prog.tick(st.events)
	}
}

// importStore passes the event through to the store, counting what changed: StoreOrderEvent reports
// only the customers affected, and an order counts even when it is a guest's.
type importStore struct {
	db        *store.DB
	customers map[int64]struct{} // distinct customers the file's orders belong to
	guests    int                // orders with no identity at all
	orders    int                // orders inserted or updated
	refunds   int                // refunds inserted
	changed   bool               // the current event changed something
}

func (s *importStore) ResolveCustomer(ctx context.Context, tenantID string, id store.Identity) (int64, bool, error) {
	cid, created, err := s.db.ResolveCustomer(ctx, tenantID, id)
	if err == nil {
		if cid != 0 {
			s.customers[cid] = struct{}{}
		} else {
			s.guests++
		}
	}
	return cid, created, err
}

func (s *importStore) ApplyOrder(ctx context.Context, tenantID string, customerID int64, o integrations.Order) (bool, error) {
	changed, err := s.db.ApplyOrder(ctx, tenantID, customerID, o)
	if changed {
		s.orders++
		s.changed = true
	}
	return changed, err
}

func (s *importStore) ApplyRefund(ctx context.Context, tenantID string, r integrations.Refund) (int64, bool, error) {
	cid, changed, err := s.db.ApplyRefund(ctx, tenantID, r)
	if changed {
		s.refunds++
		s.changed = true
	}
	return cid, changed, err
}

// importEnqueueRefit puts the refit on the service's queue, so it starts without waiting for the
// reconciler. The key is the file's content hash: importing the same file again while the first
// refit is still queued or kept (asynq retains it a day) does not queue a second.
func importEnqueueRefit(ctx context.Context, cfg *config.Config, tenantID, key string) error {
	rc, _, err := openRedis(ctx, cfg, false, newLogger(cfg, os.Stderr))
	if err != nil {
		return err
	}
	defer rc.Close()
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = worker.NewQueue(asynq.NewClientFromRedisClient(rc), cfg.RescoreDebounce).EnqueueRefit(ectx, tenantID, key, "import")
	return err
}

// importProgress redraws one status line on a terminal. Elsewhere (a log file, CI) it prints
// nothing: carriage returns would fill a log with thousands of lines.
type importProgress struct {
	w       io.Writer
	on      bool
	in      *importInput
	unit    string
	now     func() time.Time
	start   time.Time
	last    time.Time
	drawn   bool
	minStep time.Duration
}

func newImportProgress(w io.Writer, in *importInput, unit string) *importProgress {
	p := &importProgress{w: w, on: importIsTerminal(w), in: in, unit: unit, now: time.Now, minStep: 100 * time.Millisecond}
	p.start, p.last = p.now(), p.now()
	return p
}

// importIsTerminal reports whether w is a character device (a terminal) rather than a file or pipe.
func importIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// tick redraws at most every minStep: drawing every row would cost more than storing it.
func (p *importProgress) tick(events int) {
	if !p.on {
		return
	}
	now := p.now()
	if now.Sub(p.last) < p.minStep {
		return
	}
	p.last = now
	p.draw(events, now)
}

func (p *importProgress) draw(events int, now time.Time) {
	line := "\r  " + importThousands(int64(events)) + " " + p.unit
	if p.in.size > 0 {
		// What the rows came from: read from the file, less what waits in the peek buffer.
		done := max(0, p.in.read.n-int64(p.in.br.Buffered()))
		pct := min(100, done*100/p.in.size)
		line += "  (" + strconv.FormatInt(pct, 10) + "%)"
	}
	if secs := now.Sub(p.start).Seconds(); secs > 0 {
		line += "  " + importThousands(int64(float64(events)/secs)) + " " + p.unit + "/s"
	}
	fmt.Fprint(p.w, line+"\x1b[K") // erase what a longer earlier line left
	p.drawn = true
}

// clear removes the status line before other output, which would otherwise be appended to it.
func (p *importProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// finish leaves the final count on the terminal, on a line of its own.
func (p *importProgress) finish(st *importStats) {
	if !p.on {
		return
	}
	p.draw(st.events, p.now())
	fmt.Fprintln(p.w)
}

// importThousands formats n with comma thousands separators: 12345 → "12,345".
func importThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}
