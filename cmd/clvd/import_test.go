package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/internal/testdata"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

// importTestCLI runs clvd commands in-process against one data folder, with nothing else in the
// environment, so the store is SQLite there and no Redis is configured.
type importTestCLI struct {
	t       *testing.T
	dataDir string
	files   string // where test input files go, apart from the data
}

func newImportTestCLI(t *testing.T) *importTestCLI {
	return &importTestCLI{t: t, dataDir: t.TempDir(), files: t.TempDir()}
}

func (c *importTestCLI) env(stdin io.Reader) (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &cliEnv{Stdout: &stdout, Stderr: &stderr, Stdin: stdin, Getenv: func(k string) string {
		if k == "CLVD_DATA_DIR" {
			return c.dataDir
		}
		return ""
	}}, &stdout, &stderr
}

func (c *importTestCLI) runStdin(stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	env, out, errOut := c.env(stdin)
	code = run(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

func (c *importTestCLI) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	return c.runStdin(strings.NewReader(""), args...)
}

// tenant creates a tenant and returns its id, read from the JSON that `tenant add --json` prints.
func (c *importTestCLI) tenant() string {
	c.t.Helper()
	code, stdout, stderr := c.run("tenant", "add", "--name", "Acme", "--json")
	if code != 0 {
		c.t.Fatalf("tenant add: exit %d: %s", code, stderr)
	}
	var out struct{ ID string }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.ID == "" {
		c.t.Fatalf("tenant add printed %q: %v", stdout, err)
	}
	return out.ID
}

func (c *importTestCLI) file(name, content string) string {
	c.t.Helper()
	path := filepath.Join(c.files, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// store opens the data folder's database, as the commands do; closed when the test ends.
func (c *importTestCLI) store() *store.DB {
	c.t.Helper()
	env, _, _ := c.env(nil)
	cfg, err := loadConfig(env, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	db, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

func importTestCustomer(t *testing.T, db *store.DB, tenantID, email string) (*store.Customer, []store.OrderRecord) {
	t.Helper()
	ctx := context.Background()
	cust, err := db.CustomerByEmail(ctx, tenantID, email)
	if err != nil {
		t.Fatalf("customer %s: %v", email, err)
	}
	orders, err := db.CustomerOrders(ctx, tenantID, cust.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cust, orders
}

// importTestOrder is what the tests check of a stored order.
type importTestOrder struct {
	id                   string
	total, refunded, net int64
	status               integrations.OrderStatus
	source               string
	createdAt            string
}

func importTestCheckOrders(t *testing.T, got []store.OrderRecord, want []importTestOrder) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d orders %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.OrderID != w.id || g.Source != w.source || g.TotalMinor != w.total || g.RefundedMinor != w.refunded ||
			g.NetMinor != w.net || g.Status != w.status || g.CreatedAt.UTC().Format(time.RFC3339) != w.createdAt {
			t.Errorf("order %d: got %+v, want %+v", i, g, w)
		}
	}
}

func importTestRefitRequested(t *testing.T, db *store.DB, tenantID string) bool {
	t.Helper()
	raw, _, err := db.GetTenantState(context.Background(), tenantID, "refit_requested")
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"import"`) {
		t.Fatalf("refit request %s does not give the import as its reason", raw)
	}
	return true
}

const importTestGeneric = `order_id,customer_id,email,name,created_at,updated_at,amount,currency,status,refunded_amount
A-1,,Ada@Example.com,Ada Lovelace,2024-01-05,,100.00,EUR,paid,
A-2,,ADA@example.COM,,2024-02-10T12:00:00Z,2024-02-12T09:00:00Z,60.00,EUR,,15.50
A-3,cus_9,grace@example.com,Grace Hopper,20240301,,40.00,EUR,cancelled,
A-4,cus_9,,,2024-03-05,,25.00,EUR,refunded,25.00
`

func TestImportGenericCSVTwice(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	path := c.file("orders.csv", importTestGeneric)

	code, stdout, stderr := c.run("import", "--tenant", id, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "imported 4 rows: 4 orders new or changed, 2 refunds new, 0 unchanged, 2 customers, 0 bad rows; refit requested\n"; stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	// Standard error is not a terminal here: no progress line, nothing at all.
	if stderr != "" {
		t.Fatalf("stderr %q, want nothing", stderr)
	}

	db := c.store()
	ada, adaOrders := importTestCustomer(t, db, id, "ada@example.com")
	importTestCheckOrders(t, adaOrders, []importTestOrder{
		{id: "A-1", source: integrations.SourceOrders, total: 10000, net: 10000, status: integrations.OrderPaid, createdAt: "2024-01-05T00:00:00Z"},
		{id: "A-2", source: integrations.SourceOrders, total: 6000, refunded: 1550, net: 4450, status: integrations.OrderPaid, createdAt: "2024-02-10T12:00:00Z"},
	})
	if ada.Name != "Ada Lovelace" {
		t.Errorf("name %q: a row without a name must not clear it", ada.Name)
	}
	// A-4 has only the customer id: it is Grace's through the id her first row linked.
	grace, graceOrders := importTestCustomer(t, db, id, "grace@example.com")
	importTestCheckOrders(t, graceOrders, []importTestOrder{
		{id: "A-3", source: integrations.SourceOrders, total: 4000, net: 0, status: integrations.OrderCancelled, createdAt: "2024-03-01T00:00:00Z"},
		{id: "A-4", source: integrations.SourceOrders, total: 2500, refunded: 2500, net: 0, status: integrations.OrderRefunded, createdAt: "2024-03-05T00:00:00Z"},
	})
	if grace.ExternalID != "orders:cus_9" {
		t.Errorf("external id %q", grace.ExternalID)
	}
	if !importTestRefitRequested(t, db, id) {
		t.Fatal("no refit requested")
	}

	// Again: nothing changes, down to the customers' data versions (which would trigger rescoring).
	code, stdout, stderr = c.run("import", path, "--tenant", id) // flags after the file work too
	if code != 0 {
		t.Fatalf("second import: exit %d: %s", code, stderr)
	}
	if want := "imported 4 rows: 0 orders new or changed, 0 refunds new, 4 unchanged, 2 customers, 0 bad rows; refit requested\n"; stdout != want {
		t.Fatalf("second import: stdout %q, want %q", stdout, want)
	}
	for _, before := range []*store.Customer{ada, grace} {
		after, _ := importTestCustomer(t, db, id, before.Email)
		if after.DataVersion != before.DataVersion {
			t.Errorf("customer %s: data version %d → %d after a re-import", before.Email, before.DataVersion, after.DataVersion)
		}
	}
}

// TestImportTransactions: the CDNOW sample (blank-separated, no header) imports as paid orders,
// and importing it again changes nothing.
func TestImportTransactions(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	path := filepath.Join(testdata.CDNOWDir(t), "CDNOW_sample.txt")
	args := []string{"import", "--tenant", id, "--format", "transactions", "--no-header", "--customer-col", "2", "--date-col", "3",
		"--amount-col", "5", "--currency", "usd", path}
	code, stdout, stderr := c.run(args...)
	if want := "imported 6919 rows: 6919 orders new or changed, 0 refunds new, 0 unchanged, 2357 customers, 0 bad rows; refit requested\n"; code != 0 || stdout != want {
		t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	db := c.store()
	cust, created, err := db.ResolveCustomer(t.Context(), id, store.Identity{ExternalID: "orders:0001"})
	if err != nil || created {
		t.Fatalf("customer 0001: created %v, %v", created, err)
	}
	orders, err := db.CustomerOrders(t.Context(), id, cust)
	if err != nil {
		t.Fatal(err)
	}
	// CDNOW sample customer 0001 (master id 00004): 19970101 29.33; 19970118 29.73; 19970802 14.96; 19971212 26.48.
	importTestCheckOrders(t, orders, []importTestOrder{
		{id: "0001-1", source: integrations.SourceOrders, total: 2933, net: 2933, status: integrations.OrderPaid, createdAt: "1997-01-01T00:00:00Z"},
		{id: "0001-2", source: integrations.SourceOrders, total: 2973, net: 2973, status: integrations.OrderPaid, createdAt: "1997-01-18T00:00:00Z"},
		{id: "0001-3", source: integrations.SourceOrders, total: 1496, net: 1496, status: integrations.OrderPaid, createdAt: "1997-08-02T00:00:00Z"},
		{id: "0001-4", source: integrations.SourceOrders, total: 2648, net: 2648, status: integrations.OrderPaid, createdAt: "1997-12-12T00:00:00Z"},
	})
	code, stdout, _ = c.run(args...)
	if want := "imported 6919 rows: 0 orders new or changed, 0 refunds new, 6919 unchanged, 2357 customers, 0 bad rows; refit requested\n"; code != 0 || stdout != want {
		t.Fatalf("second import: exit %d, stdout %q", code, stdout)
	}
	// A bad row names its line and column.
	bad := c.file("bad.txt", "7 20240101 12.50\n8 2024-13-01 3\n")
	code, _, stderr = c.run("import", "--tenant", id, "--format", "transactions", "--no-header", "--customer-col", "1", "--date-col", "2",
		"--amount-col", "3", "--currency", "EUR", bad)
	if code != 1 || !strings.Contains(stderr, "bad.txt: malformed payload: line 2, column 2: bad date") {
		t.Fatalf("bad row: exit %d, stderr %q", code, stderr)
	}
}

func TestImportShopifyExport(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	path := filepath.Join("..", "..", "integrations", "shopify", "testdata", "orders_export.csv")

	code, stdout, stderr := c.run("import", "--tenant", id, path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "imported 5 orders: 5 orders new or changed, 2 refunds new, 0 unchanged, 3 customers (+1 orders without email, credited to no customer), 0 bad rows; refit requested\n"
	if stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	db := c.store()
	// #1001 and #1003 are Ada's under two spellings of her address.
	_, ada := importTestCustomer(t, db, id, "ada@example.com")
	importTestCheckOrders(t, ada, []importTestOrder{
		{id: "5104371106001", source: integrations.SourceShopify, total: 5950, net: 5950, status: integrations.OrderPaid, createdAt: "2024-01-15T15:23:45Z"},
		{id: "5104371106003", source: integrations.SourceShopify, total: 3500, refunded: 3500, net: 0, status: integrations.OrderRefunded, createdAt: "2024-02-03T12:00:00Z"},
	})
	_, grace := importTestCustomer(t, db, id, "grace@example.com")
	importTestCheckOrders(t, grace, []importTestOrder{
		{id: "5104371106002", source: integrations.SourceShopify, total: 11000, refunded: 2000, net: 9000, status: integrations.OrderPaid, createdAt: "2024-01-20T19:15:30Z"},
	})
	_, linus := importTestCustomer(t, db, id, "linus@example.com")
	importTestCheckOrders(t, linus, []importTestOrder{
		{id: "5104371106004", source: integrations.SourceShopify, total: 8000, net: 0, status: integrations.OrderCancelled, createdAt: "2024-02-20T16:00:00Z"},
	})

	// The export is a snapshot: a webhook delivery with a real, later updated_at replaces the order,
	// and importing the export again afterwards does not undo it.
	wh := integrations.Order{Source: integrations.SourceShopify, OrderID: "5104371106001", Email: "ada@example.com",
		CreatedAt: time.Date(2024, 1, 15, 15, 23, 45, 0, time.UTC), UpdatedAt: time.Date(2024, 1, 20, 8, 0, 0, 0, time.UTC),
		Currency: "USD", TotalMinor: 5950, Status: integrations.OrderCancelled}
	if _, err := worker.StoreOrderEvent(context.Background(), db, id, integrations.OrderEvent{Topic: "orders/cancelled", Order: &wh}, false); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.run("import", "--tenant", id, "--format", "shopify", path)
	if code != 0 {
		t.Fatalf("second import: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "imported 5 orders: 0 orders new or changed, 0 refunds new, 5 unchanged,") {
		t.Fatalf("second import: stdout %q", stdout)
	}
	_, ada = importTestCustomer(t, db, id, "ada@example.com")
	if ada[0].Status != integrations.OrderCancelled {
		t.Fatalf("the re-import undid the webhook's newer version: %+v", ada[0])
	}

	// Forcing the other format names what that format misses.
	code, _, stderr = c.run("import", "--tenant", id, "--format", "orders", path)
	if code != 1 || !strings.Contains(stderr, "orders_export.csv: line 1: the header lacks the required column(s) order_id, created_at, amount") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

const importTestBad = `order_id,email,created_at,amount,currency
B-1,a@example.com,2024-01-01,10.00,EUR
B-2,b@example.com,2024-01-02,ten,EUR
B-3,,2024-01-03,5.00,EUR
B-4,d@example.com,2024-01-04,7.00,EUR
`

func TestImportBadRowStops(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	path := c.file("bad.csv", importTestBad)
	code, stdout, stderr := c.run("import", "--tenant", id, path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, stdout)
	}
	if want := "bad.csv: line 3, column amount: amount \"ten\" is not a decimal number"; !strings.Contains(stderr, want) {
		t.Fatalf("stderr %q does not contain %q", stderr, want)
	}
	db := c.store()
	importTestCustomer(t, db, id, "a@example.com") // the row before it is stored
	if _, err := db.CustomerByEmail(context.Background(), id, "d@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a row after the bad one was imported: %v", err)
	}
	if importTestRefitRequested(t, db, id) {
		t.Fatal("a failed import requested a refit")
	}
}

func TestImportSkipBad(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	// One good row first imported on its own, so the skip run also shows an unchanged row.
	if code, _, stderr := c.runStdin(strings.NewReader("order_id,email,created_at,amount,currency\nB-1,a@example.com,2024-01-01,10.00,EUR\n"),
		"import", "--tenant", id, "-"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path := c.file("bad.csv", importTestBad)
	code, stdout, stderr := c.run("import", "--tenant", id, "--skip-bad", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "imported 2 rows: 1 orders new or changed, 0 refunds new, 1 unchanged, 2 customers, 2 bad rows; refit requested\n"; stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	for _, want := range []string{"skipped " + path + ": line 3, column amount:", "skipped " + path + ": line 4, column customer_id: customer_id and email are both empty"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not contain %q", stderr, want)
		}
	}
	importTestCustomer(t, c.store(), id, "d@example.com")

	// Only the first ten bad rows are shown; all are counted.
	var b strings.Builder
	b.WriteString("order_id,email,created_at,amount,currency\n")
	for i := range 12 {
		fmt.Fprintf(&b, "C-%d,c%d@example.com,2024-01-01,-%d.00,EUR\n", i, i, i+1)
	}
	code, stdout, stderr = c.run("import", "--tenant", id, "--skip-bad", c.file("many.csv", b.String()))
	if code != 0 || !strings.Contains(stdout, "imported 0 rows: 0 orders new or changed, 0 refunds new, 0 unchanged, 0 customers, 12 bad rows;") {
		t.Fatalf("exit %d: %q %q", code, stdout, stderr)
	}
	if n := strings.Count(stderr, "skipped "); n != importMaxShownBad {
		t.Fatalf("%d skipped rows shown, want %d:\n%s", n, importMaxShownBad, stderr)
	}
}

func TestImportErrors(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	good := c.file("good.csv", importTestGeneric)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown tenant", []string{"--tenant", "t_doesnotexist", good}, 1, `tenant "t_doesnotexist" does not exist`},
		{"missing file", []string{"--tenant", id, filepath.Join(c.files, "nope.csv")}, 1, "nope.csv: no such file or directory"},
		{"directory", []string{"--tenant", id, c.files}, 1, "is a directory"},
		{"unknown header", []string{"--tenant", id, c.file("other.csv", "date,total\n2024-01-01,5\n")}, 1,
			"other.csv: the header row is neither the generic order CSV's"},
		{"empty file", []string{"--tenant", id, c.file("empty.csv", "")}, 1, "empty.csv: the file is empty"},
		{"no tenant", []string{good}, 2, "--tenant is required"},
		{"no file", []string{"--tenant", id}, 2, "give exactly one FILE.csv"},
		{"two files", []string{"--tenant", id, good, good}, 2, "give exactly one FILE.csv (or - for standard input), got 2"},
		{"bad format", []string{"--tenant", id, "--format", "xlsx", good}, 2, `--format must be auto, orders, shopify or transactions, not "xlsx"`},
		{"transactions without currency", []string{"--tenant", id, "--format", "transactions", good}, 2, "--format transactions needs --currency"},
		{"columns for another format", []string{"--tenant", id, "--customer-col", "2", good}, 2, "--customer-col: only for --format transactions"},
		{"transactions: unknown column", []string{"--tenant", id, "--format", "transactions", "--currency", "EUR", good}, 1,
			`good.csv: date column "date" not in header`},
		{"unknown flag", []string{"--tenant", id, "--dry-run", good}, 2, "flag provided but not defined: -dry-run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := c.run(append([]string{"import"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, tc.code, stderr, tc.stderr, stdout)
			}
		})
	}
	if importTestRefitRequested(t, c.store(), id) {
		t.Fatal("a failed import requested a refit")
	}
}

func TestImportQueuesRefit(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	m := miniredis.RunT(t)
	path := c.file("orders.csv", importTestGeneric)
	for i := range 2 {
		code, stdout, stderr := c.run("import", "--tenant", id, "--redis-url", "redis://"+m.Addr(), path)
		if code != 0 || !strings.HasSuffix(stdout, "; refit requested and queued\n") {
			t.Fatalf("import %d: exit %d: %q %q", i+1, code, stdout, stderr)
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rc.Close()
	tasks, err := asynq.NewInspectorFromRedisClient(rc).ListPendingTasks("maintenance")
	if err != nil {
		t.Fatal(err)
	}
	// One task for two imports of the same file: its id comes from the file's content.
	if len(tasks) != 1 || tasks[0].Type != worker.TypeRefit || !strings.Contains(string(tasks[0].Payload), id) {
		t.Fatalf("queued %+v, want one refit of %s", tasks, id)
	}
	if !importTestRefitRequested(t, c.store(), id) {
		t.Fatal("no refit requested in the store")
	}
}

func TestImportRedisDownIsAWarning(t *testing.T) {
	c := newImportTestCLI(t)
	id := c.tenant()
	m := miniredis.RunT(t)
	addr := m.Addr()
	m.Close() // nothing listens there any more
	code, stdout, stderr := c.run("import", "--tenant", id, "--redis-url", "redis://"+addr, c.file("orders.csv", importTestGeneric))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasSuffix(stdout, "0 bad rows; refit requested\n") || !strings.Contains(stderr, "warning: could not queue the refit directly") {
		t.Fatalf("stdout %q, stderr %q", stdout, stderr)
	}
	if !importTestRefitRequested(t, c.store(), id) {
		t.Fatal("no refit requested in the store")
	}
}

func TestImportProgressLine(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	in := &importInput{size: 1000, read: &importCountingReader{n: 430}, br: bufio.NewReader(strings.NewReader(""))}
	p := &importProgress{w: &out, on: true, in: in, unit: "rows", now: func() time.Time { return now }, start: t0, last: t0, minStep: 100 * time.Millisecond}

	now = t0.Add(50 * time.Millisecond)
	p.tick(10)
	if out.Len() != 0 {
		t.Fatalf("drew %q within the first 100ms", out.String())
	}
	now = t0.Add(10 * time.Second)
	p.tick(12345)
	if want := "\r  12,345 rows  (43%)  1,234 rows/s\x1b[K"; out.String() != want {
		t.Fatalf("drew %q, want %q", out.String(), want)
	}
	out.Reset()
	now = now.Add(99 * time.Millisecond)
	p.tick(12400)
	if out.Len() != 0 {
		t.Fatalf("redrew %q within 100ms", out.String())
	}
	p.clear()
	if out.String() != "\r\x1b[K" {
		t.Fatalf("clear wrote %q", out.String())
	}

	// Off (not a terminal): nothing, ever.
	out.Reset()
	p.on = false
	now = now.Add(time.Hour)
	p.tick(99999)
	p.finish(&importStats{events: 99999})
	if out.Len() != 0 {
		t.Fatalf("wrote %q while off", out.String())
	}
}

func TestImportIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if importIsTerminal(f) || importIsTerminal(&bytes.Buffer{}) {
		t.Fatal("a regular file or a buffer taken for a terminal")
	}
}

func TestImportThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := importThousands(n); got != want {
			t.Errorf("importThousands(%d) = %q, want %q", n, got, want)
		}
	}
}
