package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
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

// demo is a store holding a shop with a real purchase history, scored by the worker.
type demo struct {
	db         *store.DB
	shop       string // the tenant the dashboard shows
	other      string // another tenant, whose data must never show
	otherNames []string
	zendesk    string // the shop's Zendesk base URL
	customers  int
}

var firstNames = []string{"Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
	"Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ulla", "Vera", "Wim", "Ximena", "Yusuf", "Zoe"}
var lastNames = []string{"Almeida", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ivanova", "Jensen", "Kowalski",
	"Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zeller"}

// seedDemo stores the CDNOW sample (2,357 customers, 6,919 purchases in 1997–98) as one shop's
// orders, through worker.StoreOrderEvent like webhooks and `clvd import`, then refits the shop and
// rescores everyone through the worker's own task handlers.
//
// The CDNOW customers all made their first purchase in the first quarter of 1997. To give the shop
// new customers in every month (for the cohort table) and a history that reaches today (for the
// KPIs and the scores), each customer's history is moved, whole, to start on a day of the last
// two years (spread by customer id); purchases that would fall after yesterday are left out, as
// an observation window would. The intervals and amounts of each history are CDNOW's.
//
// A third of the customers get a Zendesk user, a quarter a rated ticket in the last year (CSAT),
// some an open urgent one (a churn signal); outreach runs in dry-run mode. A tenant's first scores
// never trigger outreach (they are what the shop already was, not customers turning at risk), so
// the valuable customers at high risk get the dry-run records the worker's claim would write.
func seedDemo(t *testing.T, db *store.DB) *demo {
	t.Helper()
	ctx := context.Background()
	d := &demo{db: db, zendesk: "https://demo-records.zendesk.com"}
	shop := &store.Tenant{Name: "Demo Records", Zendesk: store.ZendeskAccount{BaseURL: d.zendesk}}
	if err := db.CreateTenant(ctx, shop); err != nil {
		t.Fatal(err)
	}
	d.shop = shop.ID
	if err := db.SetTenantSettings(ctx, d.shop, json.RawMessage(`{"outreach":{"dry_run":true}}`)); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(testdata.CDNOWDir(t), "CDNOW_sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	cdnowStart := time.Date(1997, 1, 1, 0, 0, 0, 0, time.UTC)
	base := today.AddDate(0, 0, -730).Sub(cdnowStart)
	customers := map[string]bool{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 {
			t.Fatalf("CDNOW line %d: %q", line, sc.Text())
		}
		day, err := time.Parse("20060102", fields[2])
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.Atoi(fields[0])
		shift := base + time.Duration((id*7919)%690)*24*time.Hour
		at := day.Add(shift).Add(time.Duration(10+id%9) * time.Hour)
		if !at.Before(today) {
			continue
		}
		dollars, err := strconv.ParseFloat(fields[4], 64)
		if err != nil {
			t.Fatal(err)
		}
		name := firstNames[id%len(firstNames)] + " " + lastNames[(id/len(firstNames))%len(lastNames)]
		o := integrations.Order{Source: integrations.SourceOrders, OrderID: "cdnow-" + strconv.Itoa(line), CustomerExternalID: "cdnow-" + fields[0],
			Email: fmt.Sprintf("customer%s@example.com", fields[0]), Name: name, CreatedAt: at, UpdatedAt: at,
			Currency: "USD", TotalMinor: int64(math.Round(dollars * 100)), Status: integrations.OrderPaid}
		if _, err := worker.StoreOrderEvent(ctx, db, d.shop, integrations.OrderEvent{Order: &o}, false); err != nil {
			t.Fatal(err)
		}
		customers[fields[0]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	d.customers = len(customers)

	// Zendesk users and tickets.
	n := 0
	for key := range customers {
		id, _ := strconv.Atoi(key)
		email := fmt.Sprintf("customer%s@example.com", key)
		ident := store.Identity{Email: email}
		if id%3 == 0 {
			ident.ZendeskUserID = strconv.Itoa(360000000 + id)
		}
		cid, _, err := db.ResolveCustomer(ctx, d.shop, ident)
		if err != nil {
			t.Fatal(err)
		}
		if id%4 != 0 && id%25 != 0 {
			continue
		}
		n++
		ev := integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: "ev-" + key, Type: integrations.TicketCreated,
			TicketID: strconv.Itoa(9000 + id), RequesterID: ident.ZendeskUserID, Subject: "Question about my order", Status: "solved",
			Priority: "normal", Satisfaction: "good", TicketCreatedAt: today.AddDate(0, 0, -(id*37)%365), OccurredAt: today.AddDate(0, 0, -(id*37)%365)}
		switch {
		case id%25 == 0:
			ev.Status, ev.Priority, ev.Satisfaction, ev.Subject = "open", "urgent", "", "My order arrived damaged"
			ev.OccurredAt = today.AddDate(0, 0, -(id % 20))
			ev.TicketCreatedAt = ev.OccurredAt
		case id%20 == 0 || id%7 == 0:
			ev.Satisfaction = "bad"
		}
		if id%11 == 0 { // tickets of this month, so the current month has a CSAT too
			ev.OccurredAt = today.Add(-time.Duration(id%5) * time.Hour)
		}
		if _, err := db.ApplyTicketEvent(ctx, d.shop, cid, ev); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seeded %d CDNOW customers and %d tickets into tenant %s", d.customers, n, d.shop)

	// Another tenant, with customers the shop's dashboard must never show.
	other := &store.Tenant{Name: "Bravo Outfitters"}
	if err := db.CreateTenant(ctx, other); err != nil {
		t.Fatal(err)
	}
	d.other = other.ID
	for i, name := range []string{"Bravo Secretcustomer", "Bravo Hiddenbuyer"} {
		cid, _, err := db.ResolveCustomer(ctx, d.other, store.Identity{Email: fmt.Sprintf("bravo%d@example.com", i), Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyOrder(ctx, d.other, cid, integrations.Order{Source: integrations.SourceOrders, OrderID: fmt.Sprint("b", i),
			CreatedAt: today.AddDate(0, -1, 0), UpdatedAt: today.AddDate(0, -1, 0), Currency: "EUR", TotalMinor: 99900, Status: integrations.OrderPaid}); err != nil {
			t.Fatal(err)
		}
		c, err := db.GetCustomer(ctx, d.other, cid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SaveScore(ctx, d.other, cid, c.DataVersion, store.Score{Model: "heuristic", Currency: "EUR", HistoricMinor: 99900,
			PredictedCLV: 123456, PAlive: 0.1, ChurnProbability: 0.9, ChurnBand: "high", Tier: "platinum", Segment: "cant_lose",
			ChurnReasons: []string{"bravo secret reason"}, Orders: 1, ScoredAt: now}); err != nil {
			t.Fatal(err)
		}
		d.otherNames = append(d.otherNames, name)
	}

	runWorker(t, db, d.shop)
	claimDryRuns(t, db, d.shop)
	return d
}

// claimDryRuns records a dry-run outreach for every platinum and gold customer at high churn risk,
// as the worker does when such a customer turns at risk.
func claimDryRuns(t *testing.T, db *store.DB, tenant string) {
	t.Helper()
	ctx := context.Background()
	for _, tier := range []string{"platinum", "gold"} {
		rows, _, err := db.ListCustomers(ctx, tenant, store.CustomerFilter{Tier: tier, ChurnBand: "high", Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			s := r.Score
			if _, err := db.ClaimOutreach(ctx, tenant, store.OutreachClaim{Outreach: store.Outreach{CustomerID: r.ID,
				Rules: []string{"valuable_at_risk"}, Reasons: s.ChurnReasons, Tier: s.Tier, ChurnBand: s.ChurnBand, PreviousBand: "medium",
				PredictedCLV: s.PredictedCLV, HistoricMinor: s.HistoricMinor, Currency: s.Currency, ChurnProbability: s.ChurnProbability},
				DryRun: true, Cooldown: 30 * 24 * time.Hour, MaxPerDay: 50}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// runWorker refits the tenant with the worker's handlers and then runs every task that queues
// (rescore batches, pushes, outreach) through the worker's own task mux until none is left.
func runWorker(t *testing.T, db *store.DB, tenant string) {
	t.Helper()
	ctx := context.Background()
	m := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rc.Close() })
	q := worker.NewQueueFromRedis(rc, 0)
	noHelpdesk := func(*store.Tenant) (worker.Helpdesk, error) { return nil, worker.ErrNoHelpdesk }
	h := worker.NewHandlers(db, q, noHelpdesk, quiet())
	h.UseRedis(rc, time.Minute)
	mux := asynq.NewServeMux()
	h.Register(mux)
	insp := asynq.NewInspectorFromRedisClient(rc)
	started := time.Now()
	if err := h.Refit(ctx, tenant, "dashboard test"); err != nil {
		t.Fatal(err)
	}
	ran, failed := 0, 0
	for {
		var tasks []*asynq.TaskInfo
		for queue := range worker.Queues {
			for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListScheduledTasks} {
				ts, err := list(queue, asynq.PageSize(200))
				if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
					t.Fatal(err)
				}
				tasks = append(tasks, ts...)
			}
		}
		if len(tasks) == 0 {
			break
		}
		for _, ti := range tasks {
			if err := mux.ProcessTask(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
				failed++
				if failed <= 5 {
					t.Logf("task %s failed: %v", ti.Type, err)
				}
			}
			ran++
			if err := insp.DeleteTask(ti.Queue, ti.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				t.Fatal(err)
			}
		}
		if ran > 100000 {
			t.Fatal("the worker's tasks do not run out")
		}
	}
	t.Logf("worker: refit and %d tasks (%d failed) in %s", ran, failed, time.Since(started).Round(time.Millisecond))
}
