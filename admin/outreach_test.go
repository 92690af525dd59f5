package admin

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/store"
)

func TestListOutreach(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		ctx := t.Context()
		claim := func(tenant string, cid int64, dry bool, at time.Time) *store.Outreach {
			t.Helper()
			o, err := db.ClaimOutreach(ctx, tenant, store.OutreachClaim{Outreach: store.Outreach{CustomerID: cid, Rules: []string{"valuable_at_risk"},
				Reasons: []string{"=cmd|' /C calc'!A0"}, Tier: "gold", PreviousTier: "gold", ChurnBand: "high", PreviousBand: "medium",
				PredictedCLV: 321.5, HistoricMinor: 4990, Currency: "EUR", ChurnProbability: 0.7}, DryRun: dry, Cooldown: time.Hour, Now: at})
			if err != nil || o == nil {
				t.Fatalf("claim: %+v %v", o, err)
			}
			return o
		}
		sent := claim(f.a, f.ana, false, day("2025-02-02"))
		if err := db.UpdateOutreach(ctx, f.a, sent.ID, store.OutreachProgress{ZendeskTicketID: "555", Status: store.OutreachSent}); err != nil {
			t.Fatal(err)
		}
		claim(f.a, f.bob, true, day("2025-02-03"))
		claim(f.b, f.bAna, false, day("2025-02-04"))
		r := newRouter(t, db)
		tokA := token(t, f.a, RoleAdmin)

		var page struct {
			Outreach   []outreachJSON `json:"outreach"`
			NextCursor *string        `json:"next_cursor"`
		}
		w := call(t, r, http.MethodGet, "/api/v1/outreach", tokA, "")
		wantStatus(t, w, http.StatusOK, "list")
		decode(t, w, &page)
		if len(page.Outreach) != 2 || page.NextCursor != nil {
			t.Fatalf("tenant A sees %d records (next %v), want its own 2", len(page.Outreach), page.NextCursor)
		}
		if o := page.Outreach[1]; o.ID != sent.ID || o.Status != "sent" || o.ZendeskTicketID != "555" || o.Email != "ana@example.com" ||
			o.Historic != "49.90" || o.CompletedAt == nil || o.Rules[0] != "valuable_at_risk" || o.PreviousBand != "medium" {
			t.Fatalf("sent record %+v", o)
		}
		if o := page.Outreach[0]; o.Status != "dry_run" || !o.DryRun || o.CustomerID != f.bob {
			t.Fatalf("dry run record %+v", o)
		}

		w = call(t, r, http.MethodGet, "/api/v1/outreach?status=dry_run", tokA, "")
		decode(t, w, &page)
		if len(page.Outreach) != 1 || page.Outreach[0].Status != "dry_run" {
			t.Fatalf("status filter: %+v", page.Outreach)
		}
		w = call(t, r, http.MethodGet, "/api/v1/outreach?limit=1", tokA, "")
		decode(t, w, &page)
		if len(page.Outreach) != 1 || page.NextCursor == nil {
			t.Fatalf("page of 1: %+v next %v", page.Outreach, page.NextCursor)
		}
		w = call(t, r, http.MethodGet, "/api/v1/outreach?limit=1&cursor="+*page.NextCursor, tokA, "")
		decode(t, w, &page)
		if len(page.Outreach) != 1 || page.Outreach[0].ID != sent.ID || page.NextCursor != nil {
			t.Fatalf("second page: %+v next %v", page.Outreach, page.NextCursor)
		}
		w = call(t, r, http.MethodGet, "/api/v1/outreach?customer_id="+itoa(f.bAna), tokA, "")
		decode(t, w, &page)
		if len(page.Outreach) != 0 {
			t.Fatalf("tenant A filtered on tenant B's customer sees %+v", page.Outreach)
		}

		w = call(t, r, http.MethodGet, "/api/v1/outreach?format=csv", tokA, "")
		wantStatus(t, w, http.StatusOK, "csv")
		rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
		if err != nil || len(rows) != 3 || rows[0][0] != "id" {
			t.Fatalf("csv %v %v", rows, err)
		}
		if reason := rows[2][15]; !strings.HasPrefix(reason, "'=") {
			t.Fatalf("a formula in the reasons was not neutralised: %q", reason)
		}

		for q, want := range map[string]int{"?status=lost": 400, "?customer_id=x": 400, "?limit=0": 400, "?limit=1001": 400,
			"?cursor=abc": 400, "?colour=red": 400, "?tenant=" + f.b: 403} {
			wantStatus(t, call(t, r, http.MethodGet, "/api/v1/outreach"+q, tokA, ""), want, q)
		}
		var opPage struct {
			Outreach []outreachJSON `json:"outreach"`
		}
		w = call(t, r, http.MethodGet, "/api/v1/outreach?tenant="+f.b, token(t, "", RoleOperator), "")
		decode(t, w, &opPage)
		if len(opPage.Outreach) != 1 || opPage.Outreach[0].CustomerID != f.bAna {
			t.Fatalf("operator on tenant B: %+v", opPage.Outreach)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
