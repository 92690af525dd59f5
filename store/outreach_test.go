package store

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestUserFieldsPlan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cid := mustResolve(t, db, tid, Identity{Email: "a@example.com", ZendeskUserID: "u1"})
		s := sampleScore("clv_tier_gold")
		s.UserFields = map[string]any{"clv_predicted": 120.0, "clv_expected_next_order": nil, "clv_historic": 80.5}
		if _, err := db.SaveScore(ctx, tid, cid, 0, s); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetCustomer(ctx, tid, cid)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Score.UserFields, s.UserFields) {
			t.Fatalf("user fields read back %v, want %v", got.Score.UserFields, s.UserFields)
		}
		plan, err := db.TagPlan(ctx, tid, cid)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Targets) != 1 || !plan.Targets[0].TagsDiffer || !plan.Targets[0].FieldsDiffer || !reflect.DeepEqual(plan.DesiredFields, s.UserFields) {
			t.Fatalf("plan %+v", plan)
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetUser, "u1", plan.Desired); err != nil {
			t.Fatal(err)
		}
		plan, _ = db.TagPlan(ctx, tid, cid)
		if len(plan.Targets) != 1 || plan.Targets[0].TagsDiffer || !plan.Targets[0].FieldsDiffer {
			t.Fatalf("after tags pushed, plan %+v: want fields only", plan)
		}
		if refs, _ := db.UnsyncedTags(ctx, 0, 10); len(refs) != 1 {
			t.Fatalf("UnsyncedTags = %v: unwritten fields must count", refs)
		}
		if err := db.MarkUserFieldsPushed(ctx, tid, cid, "u1", plan.DesiredFields); err != nil {
			t.Fatal(err)
		}
		if plan, _ = db.TagPlan(ctx, tid, cid); len(plan.Targets) != 0 {
			t.Fatalf("after fields pushed, plan %+v", plan)
		}
		if refs, _ := db.UnsyncedTags(ctx, 0, 10); len(refs) != 0 {
			t.Fatalf("UnsyncedTags = %v after everything was pushed", refs)
		}
		if err := db.MarkUserFieldsPushed(ctx, tid, cid, "u2", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("fields pushed to another user: %v, want ErrNotFound", err)
		}
		s.UserFields = map[string]any{"bad": map[string]int{}}
		if _, err := db.SaveScore(ctx, tid, cid, 0, s); err == nil {
			t.Fatal("a field value of an unsupported type was stored")
		}
	})
}

func TestClaimOutreach(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		a := mustResolve(t, db, tid, Identity{Email: "a@example.com"})
		b := mustResolve(t, db, tid, Identity{Email: "b@example.com"})
		c := mustResolve(t, db, tid, Identity{Email: "c@example.com"})
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		claim := func(cust int64, at time.Time, dry bool) *Outreach {
			t.Helper()
			o, err := db.ClaimOutreach(ctx, tid, OutreachClaim{Outreach: Outreach{CustomerID: cust, Rules: []string{"valuable_at_risk"},
				Reasons: []string{"overdue"}, Tier: "platinum", ChurnBand: "high", PredictedCLV: 900, HistoricMinor: 120000, Currency: "EUR", ChurnProbability: 0.8},
				DryRun: dry, Cooldown: 30 * 24 * time.Hour, MaxPerDay: 2, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			return o
		}

		first := claim(a, now, false)
		if first == nil || first.Status != OutreachPending || first.Tier != "platinum" || first.Rules[0] != "valuable_at_risk" {
			t.Fatalf("first claim = %+v", first)
		}
		// A retry (or a second worker) gets the same pending record back.
		if again := claim(a, now.Add(time.Minute), false); again == nil || again.ID != first.ID {
			t.Fatalf("claim while pending = %+v, want record %d", again, first.ID)
		}
		if err := db.UpdateOutreach(ctx, tid, first.ID, OutreachProgress{ZendeskTicketID: "77", Attempt: true}); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateOutreach(ctx, tid, first.ID, OutreachProgress{WebhookStatus: 200, Status: OutreachSent}); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateOutreach(ctx, tid, first.ID, OutreachProgress{Status: OutreachFailed}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of a completed outreach: %v, want ErrNotFound", err)
		}
		got, err := db.GetOutreach(ctx, tid, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != OutreachSent || got.ZendeskTicketID != "77" || got.WebhookStatus != 200 || got.Attempts != 1 || got.CompletedAt == nil {
			t.Fatalf("completed record = %+v", got)
		}
		// Within the cooldown: nothing; after it: a new one. Dry runs have their own cooldown.
		if o := claim(a, now.Add(29*24*time.Hour), false); o != nil {
			t.Fatalf("claim within the cooldown = %+v", o)
		}
		if o := claim(a, now.Add(time.Hour), true); o == nil || o.Status != OutreachDryRun || o.CompletedAt == nil {
			t.Fatalf("dry run within the real cooldown = %+v", o)
		}
		if o := claim(a, now.Add(2*time.Hour), true); o != nil {
			t.Fatalf("second dry run within the cooldown = %+v", o)
		}
		// Daily limit 2: b is the second real one today, c is capped (and not in cooldown).
		if o := claim(b, now.Add(time.Hour), false); o == nil || o.Status != OutreachPending {
			t.Fatalf("b = %+v", o)
		}
		if o := claim(c, now.Add(2*time.Hour), false); o == nil || o.Status != OutreachCapped {
			t.Fatalf("c over the limit = %+v", o)
		}
		if o := claim(c, now.Add(25*time.Hour), false); o == nil || o.Status != OutreachPending {
			t.Fatalf("c the next day = %+v (a capped record must not start a cooldown)", o)
		}
		if o := claim(a, now.Add(31*24*time.Hour), false); o == nil || o.Status != OutreachPending || o.ID == first.ID {
			t.Fatalf("claim after the cooldown = %+v", o)
		}

		list, next, err := db.ListOutreach(ctx, tid, OutreachFilter{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || next == "" || list[0].ID < list[1].ID || list[0].Email == "" {
			t.Fatalf("first page %+v next %q", list, next)
		}
		rest, next2, err := db.ListOutreach(ctx, tid, OutreachFilter{Limit: 3, Cursor: next})
		if err != nil || next2 != "" || len(rest) != 3 {
			t.Fatalf("second page %d rows, next %q, %v", len(rest), next2, err)
		}
		mine, _, _ := db.ListOutreach(ctx, tid, OutreachFilter{CustomerID: a})
		if len(mine) != 3 {
			t.Fatalf("outreach of a: %d, want 3", len(mine))
		}
		if _, _, err := db.ListOutreach(ctx, tid, OutreachFilter{Cursor: "x"}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
		pending, err := db.PendingOutreach(ctx, now.Add(100*24*time.Hour), 10)
		if err != nil || len(pending) != 3 {
			t.Fatalf("pending = %d rows, %v; want b, c and a's second", len(pending), err)
		}
		if _, err := db.ClaimOutreach(ctx, "nope", OutreachClaim{Outreach: Outreach{CustomerID: a}}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown tenant: %v", err)
		}
	})
}

// TestClaimOutreachConcurrent: claims racing for one customer start one outreach.
func TestClaimOutreachConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cid := mustResolve(t, db, tid, Identity{Email: "a@example.com"})
		var wg sync.WaitGroup
		ids := make([]int64, 8)
		for i := range ids {
			wg.Go(func() {
				o, err := db.ClaimOutreach(ctx, tid, OutreachClaim{Outreach: Outreach{CustomerID: cid, Tier: "gold", ChurnBand: "high", Currency: "EUR"},
					Cooldown: time.Hour})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = o.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("concurrent claims got different records: %v", ids)
			}
		}
		list, _, _ := db.ListOutreach(ctx, tid, OutreachFilter{})
		if len(list) != 1 {
			t.Fatalf("%d records, want 1", len(list))
		}
	})
}
