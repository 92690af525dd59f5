package admin

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clvd/clvd/store"
)

type customerAnswer struct {
	Customer struct {
		ID           int64  `json:"id"`
		Email        string `json:"email"`
		ExternalID   string `json:"external_id"`
		Name         string `json:"name"`
		ScoreCurrent bool   `json:"score_current"`
	} `json:"customer"`
	Score *struct {
		Model             string     `json:"model"`
		Currency          string     `json:"currency"`
		HistoricMinor     int64      `json:"historic_minor"`
		Historic          string     `json:"historic"`
		SimpleCLV         float64    `json:"simple_clv"`
		PredictedCLV      float64    `json:"predicted_clv"`
		PAlive            float64    `json:"p_alive"`
		ChurnProbability  float64    `json:"churn_probability"`
		ChurnBand         string     `json:"churn_band"`
		ChurnReasons      []string   `json:"churn_reasons"`
		Tier              string     `json:"tier"`
		Segment           string     `json:"segment"`
		ExpectedNextOrder *time.Time `json:"expected_next_order"`
		Orders            int        `json:"orders"`
		LastOrder         *time.Time `json:"last_order"`
	} `json:"score"`
	Orders []struct {
		OrderID       string `json:"order_id"`
		Status        string `json:"status"`
		Currency      string `json:"currency"`
		TotalMinor    int64  `json:"total_minor"`
		RefundedMinor int64  `json:"refunded_minor"`
		NetMinor      int64  `json:"net_minor"`
		Net           string `json:"net"`
	} `json:"orders"`
	Tickets []struct {
		TicketID     string     `json:"ticket_id"`
		Status       string     `json:"status"`
		Priority     string     `json:"priority"`
		Satisfaction string     `json:"satisfaction"`
		CreatedAt    *time.Time `json:"created_at"`
	} `json:"tickets"`
}

func TestCustomerRoute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, db)
		adminA, adminB := token(t, f.a, RoleAdmin), token(t, f.b, RoleAdmin)
		get := func(tok, key string) customerAnswer {
			t.Helper()
			w := call(t, r, http.MethodGet, "/api/v1/customers/"+key, tok, "")
			wantStatus(t, w, http.StatusOK, "customer "+key)
			var a customerAnswer
			decode(t, w, &a)
			return a
		}

		a := get(adminA, fmt.Sprint(f.ana))
		c, s := a.Customer, a.Score
		if c.ID != f.ana || c.Email != "ana@example.com" || c.ExternalID != "orders:c-1" || c.Name != "Ana" || !c.ScoreCurrent {
			t.Errorf("customer %+v", c)
		}
		if s == nil || s.Model != "bgnbd" || s.Tier != "gold" || s.Segment != "loyal" || s.HistoricMinor != 4990 || s.Historic != "49.90" ||
			s.Currency != "EUR" || s.PredictedCLV != 321.5 || s.SimpleCLV != 149.7 || s.PAlive != 0.8 || s.ChurnProbability != 0.45 ||
			s.ChurnBand != "medium" || !slices.Equal(s.ChurnReasons, []string{"urgent open ticket"}) || s.Orders != 1 ||
			s.LastOrder == nil || !s.LastOrder.Equal(day("2024-06-01")) || s.ExpectedNextOrder == nil || !s.ExpectedNextOrder.Equal(day("2025-04-01")) {
			t.Errorf("score %+v", s)
		}
		if len(a.Orders) != 2 || a.Orders[0].OrderID != "A-1" || a.Orders[0].TotalMinor != 5990 || a.Orders[0].RefundedMinor != 1000 ||
			a.Orders[0].NetMinor != 4990 || a.Orders[0].Net != "49.90" || a.Orders[1].Status != "cancelled" || a.Orders[1].NetMinor != 0 {
			t.Errorf("orders %+v", a.Orders)
		}
		if len(a.Tickets) != 2 || a.Tickets[0].TicketID != "101" || a.Tickets[0].Satisfaction != "good" || a.Tickets[0].CreatedAt == nil ||
			a.Tickets[1].TicketID != "102" || a.Tickets[1].Priority != "urgent" || a.Tickets[1].CreatedAt != nil {
			t.Errorf("tickets %+v", a.Tickets)
		}
		// By email, matched case-insensitively.
		if got := get(adminA, url.PathEscape("ANA@Example.com")); got.Customer.ID != f.ana {
			t.Errorf("by email: customer %d, want %d", got.Customer.ID, f.ana)
		}

		// Tenant B: its own Ana by email; A's customers by id are not found.
		if got := get(adminB, "ana@example.com"); got.Customer.ID != f.bAna || got.Customer.Name != "Ana at B" ||
			len(got.Orders) != 1 || got.Orders[0].Currency != "USD" || got.Orders[0].Net != "7.77" || len(got.Tickets) != 0 {
			t.Errorf("B's ana: %+v", got)
		}
		for _, id := range []int64{f.ana, f.bob} {
			w := call(t, r, http.MethodGet, fmt.Sprintf("/api/v1/customers/%d", id), adminB, "")
			wantStatus(t, w, http.StatusNotFound, "A's customer with B's token")
			if strings.Contains(w.Body.String(), "example.com") {
				t.Errorf("404 leaks data: %s", w.Body)
			}
		}
		wantStatus(t, call(t, r, http.MethodGet, fmt.Sprintf("/api/v1/customers/%d", f.bAna), adminA, ""), http.StatusNotFound, "B's customer with A's token")
		wantStatus(t, call(t, r, http.MethodGet, "/api/v1/customers/bob@example.com", adminB, ""), http.StatusNotFound, "A's email with B's token")

		// A customer not scored yet.
		fresh := must(mustResolve(t.Context(), db, f.a, store.Identity{Email: "new@example.com"}))
		if got := get(adminA, fmt.Sprint(fresh)); got.Score != nil || got.Customer.ScoreCurrent || len(got.Orders) != 0 {
			t.Errorf("unscored customer %+v", got)
		}

		// Bad input.
		for key, status := range map[string]int{
			"abc":                  http.StatusBadRequest,
			"12abc":                http.StatusBadRequest,
			"-5":                   http.StatusBadRequest,
			"0":                    http.StatusNotFound,
			"99999999":             http.StatusNotFound,
			"99999999999999999999": http.StatusNotFound,
			"nobody@example.com":   http.StatusNotFound,
		} {
			wantStatus(t, call(t, r, http.MethodGet, "/api/v1/customers/"+key, adminA, ""), status, "customer "+key)
		}
		wantStatus(t, call(t, r, http.MethodGet, fmt.Sprintf("/api/v1/customers/%d?expand=1", f.ana), adminA, ""), http.StatusBadRequest, "unknown parameter")
	})
}

type listAnswer struct {
	Customers []struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
		Score struct {
			Tier         string  `json:"tier"`
			PredictedCLV float64 `json:"predicted_clv"`
		} `json:"score"`
	} `json:"customers"`
	NextCursor *string `json:"next_cursor"`
}

func (a listAnswer) ids() []int64 {
	out := []int64{}
	for _, c := range a.Customers {
		out = append(out, c.ID)
	}
	return out
}

// readCSV parses a CSV answer and checks its header.
func readCSV(t *testing.T, w *httptest.ResponseRecorder) [][]string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q: %s", ct, w.Body)
	}
	recs, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, w.Body)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], csvHeader) {
		t.Fatalf("CSV header %v", recs)
	}
	return recs[1:]
}

func TestCustomerList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, db)
		adminA, adminB := token(t, f.a, RoleAdmin), token(t, f.b, RoleAdmin)
		list := func(tok, query string) listAnswer {
			t.Helper()
			w := call(t, r, http.MethodGet, "/api/v1/customers"+query, tok, "")
			wantStatus(t, w, http.StatusOK, "list "+query)
			var a listAnswer
			decode(t, w, &a)
			return a
		}

		if got := list(adminA, ""); !slices.Equal(got.ids(), []int64{f.ana, f.bob}) || got.NextCursor != nil ||
			got.Customers[0].Score.Tier != "gold" || got.Customers[0].Score.PredictedCLV != 321.5 {
			t.Errorf("default list %+v", got)
		}
		page := list(adminA, "?limit=1")
		if !slices.Equal(page.ids(), []int64{f.ana}) || page.NextCursor == nil {
			t.Fatalf("first page %+v", page)
		}
		page = list(adminA, "?limit=1&cursor="+url.QueryEscape(*page.NextCursor))
		if !slices.Equal(page.ids(), []int64{f.bob}) || page.NextCursor != nil {
			t.Fatalf("second page %+v", page)
		}
		for q, want := range map[string][]int64{
			"?sort=churn&order=asc":               {f.ana, f.bob},
			"?sort=churn":                         {f.bob, f.ana},
			"?sort=historic&order=desc":           {f.ana, f.bob},
			"?sort=last_order&order=asc":          {f.bob, f.ana}, // bob has no last order
			"?sort=predicted_clv&order=asc":       {f.bob, f.ana},
			"?tier=silver":                        {f.bob},
			"?segment=loyal":                      {f.ana},
			"?churn_band=low":                     {},
			"?tier=gold&churn_band=medium":        {f.ana},
			"?tier=gold&churn_band=high":          {},
			"?format=json&tier=gold&limit=500":    {f.ana},
			"?tenant=" + url.QueryEscape(f.a):     {f.ana, f.bob},
			"?sort=last_order&order=desc&limit=2": {f.ana, f.bob},
		} {
			if got := list(adminA, q); !slices.Equal(got.ids(), want) {
				t.Errorf("list %s = %v, want %v", q, got.ids(), want)
			}
		}
		// Tenant B lists only its own.
		if got := list(adminB, ""); !slices.Equal(got.ids(), []int64{f.bAna}) {
			t.Errorf("B lists %v", got.ids())
		}
		if got := list(adminB, "?churn_band=low"); !slices.Equal(got.ids(), []int64{f.bAna}) {
			t.Errorf("B lists %v", got.ids())
		}

		// Bad input.
		churnCursor := list(adminA, "?sort=churn&limit=1").NextCursor
		for _, q := range []string{
			"?tier=diamond", "?segment=vip", "?churn_band=extreme", "?sort=name", "?order=up", "?limit=0", "?limit=501",
			"?limit=ten", "?cursor=garbage", "?cursor=" + url.QueryEscape(*churnCursor), "?sort=churn&order=asc&cursor=" + url.QueryEscape(*churnCursor),
			"?format=xml", "?teir=gold", "?tier=gold&tier=silver", "?format=csv&limit=0", "?format=csv&cursor=garbage",
		} {
			wantStatus(t, call(t, r, http.MethodGet, "/api/v1/customers"+q, adminA, ""), http.StatusBadRequest, "list "+q)
		}

		// CSV, by parameter or by Accept header.
		w := call(t, r, http.MethodGet, "/api/v1/customers?format=csv", adminA, "")
		wantStatus(t, w, http.StatusOK, "export")
		recs := readCSV(t, w)
		if len(recs) != 2 || recs[0][0] != strconv.FormatInt(f.ana, 10) || recs[0][1] != "ana@example.com" || recs[0][5] != "gold" ||
			recs[0][13] != "4990" || recs[0][14] != "49.90" || recs[0][12] != "EUR" || recs[0][16] != "2024-06-01T00:00:00Z" {
			t.Errorf("CSV rows %v", recs)
		}
		// A name that is a spreadsheet formula is neutralised.
		if len(recs) == 2 && recs[1][2] != `'=HYPERLINK("http://x")` {
			t.Errorf("formula name exported as %q", recs[1][2])
		}
		for accept, wantCSV := range map[string]bool{
			"text/csv":                               true,
			"text/csv, application/json;q=0.5":       true,
			"application/json, text/csv;q=0.5":       false,
			"application/json;q=0.2, text/csv;q=0.9": true,
			"*/*":                                    false,
			"":                                       false,
		} {
			w := call(t, r, http.MethodGet, "/api/v1/customers", adminA, "", "Accept", accept)
			wantStatus(t, w, http.StatusOK, "list with Accept "+accept)
			if got := strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv"); got != wantCSV {
				t.Errorf("Accept %q: CSV = %v", accept, got)
			}
		}
		w = call(t, r, http.MethodGet, "/api/v1/customers?format=json", adminA, "", "Accept", "text/csv")
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("format=json did not win over Accept")
		}
		if recs := readCSV(t, call(t, r, http.MethodGet, "/api/v1/customers?tier=silver", adminA, "", "Accept", "text/csv")); len(recs) != 1 ||
			recs[0][0] != strconv.FormatInt(f.bob, 10) {
			t.Errorf("filtered CSV %v", recs)
		}
		if recs := readCSV(t, call(t, r, http.MethodGet, "/api/v1/customers?format=csv&limit=1&sort=churn", adminA, "")); len(recs) != 1 ||
			recs[0][0] != strconv.FormatInt(f.bob, 10) {
			t.Errorf("CSV limit=1: %v", recs)
		}
		if recs := readCSV(t, call(t, r, http.MethodGet, "/api/v1/customers?format=csv", adminB, "")); len(recs) != 1 ||
			recs[0][0] != strconv.FormatInt(f.bAna, 10) {
			t.Errorf("B's CSV %v", recs)
		}
	})
}

// listFails is a store whose customer list fails from call number failAt on.
type listFails struct {
	*store.DB
	calls  atomic.Int32
	failAt int32
}

func (s *listFails) ListCustomers(ctx context.Context, tenantID string, f store.CustomerFilter) ([]store.CustomerRow, string, error) {
	if s.calls.Add(1) >= s.failAt {
		return nil, "", errors.New("database went away")
	}
	return s.DB.ListCustomers(ctx, tenantID, f)
}

func TestCustomerExportPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		tn := &store.Tenant{Name: "Big"}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		const n = 2*store.MaxCustomerPage + 7
		var want []int64 // by predicted CLV, descending
		for i := range n {
			cid := must(mustResolve(ctx, db, tn.ID, store.Identity{Email: fmt.Sprintf("c%d@example.com", i)}))
			if _, err := db.SaveScore(ctx, tn.ID, cid, 0, store.Score{Model: "heuristic", PredictedCLV: float64(i) / 7, ChurnBand: "low", Tier: "bronze"}); err != nil {
				t.Fatal(err)
			}
			want = append([]int64{cid}, want...)
		}
		r := newRouter(t, db)
		tok := token(t, tn.ID, RoleAdmin)

		w := call(t, r, http.MethodGet, "/api/v1/customers?format=csv", tok, "")
		wantStatus(t, w, http.StatusOK, "export")
		var got []int64
		for _, rec := range readCSV(t, w) {
			got = append(got, must(strconv.ParseInt(rec[0], 10, 64)))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("CSV has %d rows (want %d) or the wrong order", len(got), len(want))
		}
		if recs := readCSV(t, call(t, r, http.MethodGet, "/api/v1/customers?format=csv&limit=600", tok, "")); len(recs) != 600 ||
			recs[599][0] != strconv.FormatInt(want[599], 10) {
			t.Fatalf("CSV limit=600: %d rows", len(recs))
		}
		// The same through JSON pages of 500.
		got = nil
		cursor := ""
		for pages := 1; ; pages++ {
			q := "?limit=500"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			w := call(t, r, http.MethodGet, "/api/v1/customers"+q, tok, "")
			wantStatus(t, w, http.StatusOK, "page")
			var a listAnswer
			decode(t, w, &a)
			got = append(got, a.ids()...)
			if a.NextCursor == nil {
				if pages != 3 {
					t.Fatalf("%d pages", pages)
				}
				break
			}
			cursor = *a.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Fatal("JSON pages differ from the expected order")
		}

		// A failure before anything is sent is an ordinary error answer.
		w = call(t, newRouter(t, &listFails{DB: db, failAt: 1}), http.MethodGet, "/api/v1/customers?format=csv", tok, "")
		wantStatus(t, w, http.StatusInternalServerError, "export with the store down")
		if strings.Contains(w.Body.String(), "went away") {
			t.Errorf("internal error leaked: %s", w.Body)
		}
		// A failure mid-stream cuts the connection: the client sees a broken transfer, never a short
		// file that looks complete.
		srv := httptest.NewServer(newRouter(t, &listFails{DB: db, failAt: 2}))
		defer srv.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/customers?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err == nil {
			t.Fatalf("mid-stream failure: status %d, read error %v after %d bytes", resp.StatusCode, err, len(body))
		}
		if lines := strings.Count(string(body), "\n"); lines != 1+store.MaxCustomerPage {
			t.Errorf("%d lines arrived before the cut, want the header and the first page", lines)
		}
		// Unbroken, the same request over a real connection ends cleanly.
		srv2 := httptest.NewServer(r)
		defer srv2.Close()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv2.URL+"/api/v1/customers?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err = srv2.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.Count(string(body), "\n") != n+1 {
			t.Fatalf("export over HTTP: %v, %d lines", err, strings.Count(string(body), "\n"))
		}
	})
}
