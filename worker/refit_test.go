package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/testdata"

	"github.com/hibiken/asynq"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/store"
)

// TestRefitReproducesCDNOW stores the CDNOW sample as orders through the same path webhooks use, refits
// the tenant as the scheduler would on 1997-09-30, and checks the stored model against the published
// BG/NBD and Gamma-Gamma estimates (Fader, Hardie & Lee 2005); then runs the rescore of every customer.
func TestRefitReproducesCDNOW(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	file, err := os.Open(filepath.Join(testdata.CDNOWDir(t), "CDNOW_sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	end := time.Date(1997, 9, 30, 12, 0, 0, 0, time.UTC) // calibration ends with 1997-09-30
	sc := bufio.NewScanner(file)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 {
			t.Fatalf("line %d: %q", line, sc.Text())
		}
		day, err := time.Parse("20060102", fields[2])
		if err != nil {
			t.Fatal(err)
		}
		if day.After(end) {
			continue // the holdout period
		}
		cents, err := strconv.ParseFloat(fields[4], 64)
		if err != nil {
			t.Fatal(err)
		}
		o := integrations.Order{Source: "orders", OrderID: strconv.Itoa(line), CustomerExternalID: fields[1], CreatedAt: day, UpdatedAt: day,
			Currency: "USD", TotalMinor: int64(math.Round(cents * 100)), Status: integrations.OrderPaid}
		if _, err := StoreOrderEvent(ctx, f.db, f.tenantID, integrations.OrderEvent{Order: &o}, false); err != nil {
			t.Fatal(err)
		}
	}
	f.h.now = func() time.Time { return end }
	if err := f.h.Refit(ctx, f.tenantID, "test"); err != nil {
		t.Fatal(err)
	}
	rec, err := f.db.LatestModel(ctx, f.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != modelKindBGNBD || !rec.Converged || rec.Customers != 2357 || rec.RepeatCustomers != 946 {
		t.Fatalf("model record %+v", rec)
	}
	var m clv.Model
	if err := json.Unmarshal(rec.Params, &m); err != nil {
		t.Fatal(err)
	}
	within := func(name string, got, want float64) {
		if math.Abs(got-want)/math.Abs(want) > 0.005 {
			t.Errorf("%s = %.4f, published %.4f (more than 0.5%% off)", name, got, want)
		}
	}
	within("r", m.BGNBD.R, 0.243)
	within("alpha", m.BGNBD.Alpha, 4.414)
	within("a", m.BGNBD.A, 0.793)
	within("b", m.BGNBD.B, 2.426)
	within("loglik", rec.LogLik, -9582.4)
	if m.GammaGamma == nil {
		t.Fatal("no Gamma-Gamma model stored")
	}
	within("p", m.GammaGamma.P, 6.25)
	within("q", m.GammaGamma.Q, 3.74)
	within("v", m.GammaGamma.V, 15.44)
	if _, _, err := f.db.GetTenantState(ctx, f.tenantID, populationKey); err != nil {
		t.Fatalf("population not stored: %v", err)
	}

	// The refit queued the first batch of the rescore of every customer; run the batches as a worker would.
	batches := 0
	for {
		pending, err := f.insp.ListPendingTasks(queueMaintenance)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		ti := pending[0]
		if err := f.h.handleRescoreBatch(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
			t.Fatal(err)
		}
		if err := f.insp.DeleteTask(queueMaintenance, ti.ID); err != nil {
			t.Fatal(err)
		}
		batches++
	}
	if want := 2358/rescoreBatchSize + 1; batches != want { // 2,357 CDNOW customers plus the fixture's own
		t.Fatalf("%d rescore batches, want %d", batches, want)
	}
	tiers := map[string]int{}
	err = f.db.ForEachScore(ctx, f.tenantID, 1000, func(_ int64, s store.Score) error {
		if s.Model != "bgnbd" && s.Orders > 0 {
			t.Errorf("customer with orders scored by %q after the refit", s.Model)
		}
		tiers[s.Tier]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tiers["platinum"] == 0 || tiers["gold"] == 0 || tiers["bronze"] == 0 {
		t.Fatalf("tiers after refit: %v", tiers)
	}
	t.Logf("tiers after refit: %v", tiers)
}
