package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
)

func sampleScore(tags ...string) Score {
	next := utcMicro(at(30 * 24 * time.Hour))
	last := utcMicro(at(-24 * time.Hour))
	return Score{
		Model: "bgnbd", Currency: "USD", HistoricMinor: 123456, SimpleCLV: 1234.56, PredictedCLV: 2345.67,
		PAlive: 0.87, ChurnProbability: 0.13, ChurnBand: "low", ChurnReasons: []string{"long gap", "open ticket"},
		Tier: "gold", Segment: "champions", ExpectedPurchases: 2.5, ExpectedNextOrder: &next, Orders: 7,
		LastOrder: &last, Tags: tags, ScoredAt: utcMicro(at(time.Hour)),
	}
}

func TestSaveScore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cid := mustResolve(t, db, tid, Identity{Email: "a@example.com"})
		for i := range 3 { // data version 3
			if _, err := db.ApplyOrder(ctx, tid, cid, order(fmt.Sprint(i), 0, paid, 100)); err != nil {
				t.Fatal(err)
			}
		}

		s := sampleScore("clv-gold", "churn-low", "clv-gold")
		if stale, err := db.SaveScore(ctx, tid, cid, 2, s); err != nil || stale {
			t.Fatalf("SaveScore(v2) = %v, %v", stale, err)
		}
		c := mustCustomer(t, db, tid, cid)
		want := s
		want.Tags = []string{"churn-low", "clv-gold"} // a set
		if c.ScoredVersion != 2 || c.Score == nil || !reflect.DeepEqual(*c.Score, want) {
			t.Fatalf("stored score v%d = %+v\nwant %+v", c.ScoredVersion, c.Score, want)
		}

		// An older rescore finishing late is dropped.
		older := sampleScore("clv-bronze")
		older.Tier = "bronze"
		if stale, err := db.SaveScore(ctx, tid, cid, 1, older); err != nil || !stale {
			t.Fatalf("SaveScore(v1 after v2) = %v, %v", stale, err)
		}
		if c := mustCustomer(t, db, tid, cid); c.Score.Tier != "gold" || c.ScoredVersion != 2 {
			t.Errorf("stale score overwrote: %s v%d", c.Score.Tier, c.ScoredVersion)
		}
		// The same version may be rescored (e.g. a refit); a newer one replaces.
		same := sampleScore()
		same.Tier, same.Model, same.ChurnReasons, same.ExpectedNextOrder, same.LastOrder = "silver", "heuristic", nil, nil, nil
		if stale, err := db.SaveScore(ctx, tid, cid, 2, same); err != nil || stale {
			t.Fatalf("SaveScore(v2 again) = %v, %v", stale, err)
		}
		c = mustCustomer(t, db, tid, cid)
		if c.Score.Tier != "silver" || c.Score.ExpectedNextOrder != nil || c.Score.LastOrder != nil || c.Score.ChurnReasons != nil ||
			c.Score.Tags == nil || len(c.Score.Tags) != 0 {
			t.Errorf("rescored = %+v", c.Score)
		}
		if stale, err := db.SaveScore(ctx, tid, cid, 3, sampleScore()); err != nil || stale {
			t.Fatalf("SaveScore(v3) = %v, %v", stale, err)
		}
		if c := mustCustomer(t, db, tid, cid); c.ScoredVersion != 3 {
			t.Errorf("ScoredVersion = %d", c.ScoredVersion)
		}
		// A version the data has not reached is a caller bug.
		if _, err := db.SaveScore(ctx, tid, cid, 4, sampleScore()); err == nil {
			t.Error("score for a future version accepted")
		}
		bad := sampleScore()
		bad.PredictedCLV = nan()
		if _, err := db.SaveScore(ctx, tid, cid, 3, bad); err == nil {
			t.Error("NaN score accepted")
		}
		noAt := sampleScore()
		noAt.ScoredAt = time.Time{}
		if _, err := db.SaveScore(ctx, tid, cid, 3, noAt); err != nil {
			t.Fatal(err)
		}
		if c := mustCustomer(t, db, tid, cid); time.Since(c.Score.ScoredAt) > time.Minute {
			t.Errorf("ScoredAt default = %v", c.Score.ScoredAt)
		}
		if _, err := db.SaveScore(ctx, tid, 999999, 0, sampleScore()); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown customer: %v", err)
		}
	})
}

func TestStaleScores(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		t1, t2 := mustTenant(t, db), mustTenant(t, db)
		a := mustResolve(t, db, t1, Identity{Email: "a@example.com"})
		b := mustResolve(t, db, t2, Identity{Email: "b@example.com"})
		mustResolve(t, db, t1, Identity{Email: "idle@example.com"}) // no data: nothing to score
		if _, err := db.ApplyOrder(ctx, t1, a, order("1", 0, paid, 100)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyOrder(ctx, t2, b, order("1", 0, paid, 100)); err != nil {
			t.Fatal(err)
		}
		soon := time.Now().Add(time.Minute)
		got, err := db.StaleScores(ctx, soon, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []CustomerRef{{t1, a}, {t2, b}}; !reflect.DeepEqual(got, want) {
			t.Errorf("StaleScores = %v, want %v (oldest change first)", got, want)
		}
		if got, _ := db.StaleScores(ctx, soon, 1); len(got) != 1 || got[0].CustomerID != a {
			t.Errorf("limit 1 = %v", got)
		}
		// Changes newer than changedBefore are left to their own queued rescore.
		if got, _ := db.StaleScores(ctx, time.Now().Add(-time.Hour), 10); len(got) != 0 {
			t.Errorf("changedBefore in the past = %v", got)
		}
		if _, err := db.SaveScore(ctx, t1, a, 1, sampleScore()); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.StaleScores(ctx, soon, 10); !reflect.DeepEqual(got, []CustomerRef{{t2, b}}) {
			t.Errorf("after scoring a = %v", got)
		}
		// New data makes a stale again.
		if _, _, err := db.ApplyRefund(ctx, t1, refund("1", "r1", 10)); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.StaleScores(ctx, time.Now().Add(time.Minute), 10); len(got) != 2 {
			t.Errorf("after a refund = %v", got)
		}
		if _, err := db.StaleScores(ctx, soon, 0); err == nil {
			t.Error("limit 0 accepted")
		}
	})
}

func TestForEachScore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		other := mustTenant(t, db)
		var scored []int64
		for i := range 5 {
			cid := mustResolve(t, db, tid, Identity{Email: fmt.Sprintf("c%d@example.com", i)})
			if i == 2 {
				continue // never scored: skipped
			}
			s := sampleScore()
			s.HistoricMinor = int64(i)
			if _, err := db.SaveScore(ctx, tid, cid, 0, s); err != nil {
				t.Fatal(err)
			}
			scored = append(scored, cid)
		}
		oc := mustResolve(t, db, other, Identity{Email: "x@example.com"})
		if _, err := db.SaveScore(ctx, other, oc, 0, sampleScore()); err != nil {
			t.Fatal(err)
		}
		for _, batch := range []int{1, 2, 3, 50} {
			var got []int64
			err := db.ForEachScore(ctx, tid, batch, func(cid int64, s Score) error {
				got = append(got, cid)
				if s.Tier != "gold" || s.ExpectedNextOrder == nil {
					t.Errorf("score of %d = %+v", cid, s)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, scored) {
				t.Errorf("batch %d: visited %v, want %v", batch, got, scored)
			}
		}
		stop := errors.New("stop")
		if err := db.ForEachScore(ctx, tid, 2, func(int64, Score) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("callback error: %v", err)
		}
	})
}

func TestTagPlan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cid := mustResolve(t, db, tid, Identity{Email: "a@example.com", ZendeskUserID: "u1"})
		noUser := mustResolve(t, db, tid, Identity{Email: "b@example.com"})
		for id, status := range map[string]string{"t-open": "open", "t-new": "", "t-solved": "solved", "t-closed": "closed", "t-pending": "pending"} {
			ev := ticketEvent("e-"+id, id, time.Minute)
			ev.Status = status
			if _, err := db.ApplyTicketEvent(ctx, tid, cid, ev); err != nil {
				t.Fatal(err)
			}
		}
		unsynced := func() []CustomerRef {
			t.Helper()
			refs, err := db.UnsyncedTags(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			return refs
		}
		plan := func(c int64) *TagPlan {
			t.Helper()
			p, err := db.TagPlan(ctx, tid, c)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		targets := func(p *TagPlan) []string {
			var out []string
			for _, tg := range p.Targets {
				out = append(out, tg.Kind+":"+tg.ID)
			}
			return out
		}

		// Never scored: nothing to push.
		if p := plan(cid); p.Desired != nil || len(p.Targets) != 0 || p.ZendeskUserID != "u1" || p.CustomerID != cid {
			t.Errorf("unscored plan = %+v", p)
		}
		if got := unsynced(); len(got) != 0 {
			t.Errorf("UnsyncedTags before scoring = %v", got)
		}

		// Scored with an empty tag set: never-pushed targets count as empty, so nothing to do.
		if _, err := db.SaveScore(ctx, tid, cid, 0, sampleScore()); err != nil {
			t.Fatal(err)
		}
		if p := plan(cid); p.Desired == nil || len(p.Desired) != 0 || len(p.Targets) != 0 {
			t.Errorf("empty-tags plan = %+v", p)
		}

		// Scored with tags: user and unresolved tickets ("" counts as unresolved), sorted like CustomerTickets.
		if _, err := db.SaveScore(ctx, tid, cid, 0, sampleScore("clv-gold", "churn-low")); err != nil {
			t.Fatal(err)
		}
		p := plan(cid)
		if !reflect.DeepEqual(p.Desired, []string{"churn-low", "clv-gold"}) {
			t.Errorf("Desired = %v", p.Desired)
		}
		if got, want := targets(p), []string{"user:u1", "ticket:t-new", "ticket:t-open", "ticket:t-pending"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("targets = %v, want %v", got, want)
		}
		for _, tg := range p.Targets {
			if tg.Pushed != nil {
				t.Errorf("%s Pushed = %v, want nil (never)", tg.ID, tg.Pushed)
			}
			if tg.Kind == TagTargetTicket && tg.ID == "t-open" && tg.Status != "open" {
				t.Errorf("ticket status = %q", tg.Status)
			}
		}
		if got := unsynced(); !reflect.DeepEqual(got, []CustomerRef{{tid, cid}}) {
			t.Errorf("UnsyncedTags = %v", got)
		}

		// Pushing (as a set, any order) removes targets one by one.
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetUser, "u1", []string{"clv-gold", "churn-low", "clv-gold"}); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetTicket, "t-open", []string{"churn-low", "clv-gold"}); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkTicketClosed(ctx, tid, integrations.SourceZendesk, "t-pending"); err != nil {
			t.Fatal(err)
		}
		if got := targets(plan(cid)); !reflect.DeepEqual(got, []string{"ticket:t-new"}) {
			t.Errorf("after pushes = %v", got)
		}
		if c := mustCustomer(t, db, tid, cid); !reflect.DeepEqual(c.UserTagsPushed, []string{"churn-low", "clv-gold"}) {
			t.Errorf("UserTagsPushed = %v", c.UserTagsPushed)
		}
		if tk, _ := db.GetTicket(ctx, tid, integrations.SourceZendesk, "t-pending"); tk == nil || tk.Status != "closed" {
			t.Errorf("MarkTicketClosed: %+v", tk)
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetTicket, "t-new", []string{"churn-low", "clv-gold"}); err != nil {
			t.Fatal(err)
		}
		if p := plan(cid); len(p.Targets) != 0 {
			t.Errorf("all pushed, plan = %+v", p)
		}
		if got := unsynced(); len(got) != 0 {
			t.Errorf("UnsyncedTags when in sync = %v", got)
		}

		// Desired tags change: the pushed targets are out of sync again, with what they carry.
		if _, err := db.SaveScore(ctx, tid, cid, 0, sampleScore("clv-silver")); err != nil {
			t.Fatal(err)
		}
		p = plan(cid)
		if got := targets(p); !reflect.DeepEqual(got, []string{"user:u1", "ticket:t-new", "ticket:t-open"}) {
			t.Errorf("after retag = %v", got)
		}
		if !reflect.DeepEqual(p.Targets[0].Pushed, []string{"churn-low", "clv-gold"}) {
			t.Errorf("user Pushed = %v", p.Targets[0].Pushed)
		}
		if len(unsynced()) != 1 {
			t.Error("UnsyncedTags misses a retagged customer")
		}

		// "Pushed nothing" is stored as an empty set, distinct from "never pushed".
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetUser, "u1", []string{}); err != nil {
			t.Fatal(err)
		}
		c := mustCustomer(t, db, tid, cid)
		if c.UserTagsPushed == nil || len(c.UserTagsPushed) != 0 {
			t.Errorf("empty push stored as %#v", c.UserTagsPushed)
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetTicket, "t-open", nil); err != nil {
			t.Fatal(err)
		}
		if tk, _ := db.GetTicket(ctx, tid, integrations.SourceZendesk, "t-open"); tk.TagsPushed == nil || len(tk.TagsPushed) != 0 {
			t.Errorf("nil push stored as %#v", tk.TagsPushed)
		}
		if tk, _ := db.GetTicket(ctx, tid, integrations.SourceZendesk, "t-solved"); tk.TagsPushed != nil {
			t.Errorf("never-pushed ticket = %#v", tk.TagsPushed)
		}

		// A scored customer without a helpdesk user has no user target.
		if _, err := db.SaveScore(ctx, tid, noUser, 0, sampleScore("clv-gold")); err != nil {
			t.Fatal(err)
		}
		if p := plan(noUser); len(p.Targets) != 0 || p.ZendeskUserID != "" {
			t.Errorf("no-user plan = %+v", p)
		}

		// Errors.
		if err := db.MarkTagsPushed(ctx, tid, cid, "org", "1", nil); err == nil {
			t.Error("unknown kind accepted")
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetUser, "u-other", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("wrong user id: %v", err)
		}
		if err := db.MarkTagsPushed(ctx, tid, cid, TagTargetTicket, "404", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown ticket: %v", err)
		}
		if err := db.MarkTicketClosed(ctx, tid, integrations.SourceZendesk, "404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkTicketClosed(unknown): %v", err)
		}
		if _, err := db.TagPlan(ctx, tid, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("TagPlan(unknown): %v", err)
		}
		if _, err := db.UnsyncedTags(ctx, 0, 0); err == nil {
			t.Error("limit 0 accepted")
		}
	})
}

func TestMarkTicketClosedBumps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		cid := mustResolve(t, db, tid, Identity{Email: "a@example.com"})
		ev := ticketEvent("e1", "1", time.Minute)
		ev.Status = "open"
		if _, err := db.ApplyTicketEvent(ctx, tid, cid, ev); err != nil {
			t.Fatal(err)
		}
		v := mustCustomer(t, db, tid, cid).DataVersion
		for range 2 { // the second call changes nothing
			if err := db.MarkTicketClosed(ctx, tid, integrations.SourceZendesk, "1"); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustCustomer(t, db, tid, cid).DataVersion; got != v+1 {
			t.Errorf("DataVersion %d → %d, want one bump", v, got)
		}
	})
}

// TestUnsyncedTagsPages: the scan goes through unsynced customers in pages by id, so a caller can
// continue after the last id it got and reach every customer however many come first.
func TestUnsyncedTagsPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		tid := mustTenant(t, db)
		var ids []int64
		for i := range 5 {
			cid := mustResolve(t, db, tid, Identity{Email: fmt.Sprintf("p%d@example.com", i), ZendeskUserID: fmt.Sprintf("u%d", i)})
			if _, err := db.SaveScore(ctx, tid, cid, 0, sampleScore("clv-gold")); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, cid)
		}
		var got []int64
		after := int64(0)
		for page := 0; ; page++ {
			refs, err := db.UnsyncedTags(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if page > 3 || len(refs) > 2 {
				t.Fatalf("page %d: %v", page, refs)
			}
			for _, r := range refs {
				got = append(got, r.CustomerID)
			}
			if len(refs) < 2 {
				break
			}
			after = refs[len(refs)-1].CustomerID
		}
		if !reflect.DeepEqual(got, ids) {
			t.Fatalf("paged through %v, want %v", got, ids)
		}
	})
}
