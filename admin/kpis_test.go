package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations"
	"github.com/clvd/clvd/store"
)

type kpiAnswer struct {
	Tenant string `json:"tenant"`
	Period struct {
		From, To   string
		Start, End time.Time
	} `json:"period"`
	ActiveWindowDays int `json:"active_window_days"`
	Customers        struct {
		ActiveAtStart int64 `json:"active_at_start"`
		Retained      int64 `json:"retained"`
		Lost          int64 `json:"lost"`
		ActiveAtEnd   int64 `json:"active_at_end"`
		Won           int64 `json:"won"`
		New           int64 `json:"new"`
		Buyers        int64 `json:"buyers"`
		RepeatBuyers  int64 `json:"repeat_buyers"`
	} `json:"customers"`
	Orders             int64    `json:"orders"`
	GuestOrders        int64    `json:"guest_orders"`
	RetentionRate      *float64 `json:"retention_rate"`
	ChurnRate          *float64 `json:"churn_rate"`
	RepeatPurchaseRate *float64 `json:"repeat_purchase_rate"`
	PurchaseFrequency  *float64 `json:"purchase_frequency"`
	AverageOrderValue  []struct {
		Currency     string    `json:"currency"`
		Orders       int64     `json:"orders"`
		Revenue      moneyJSON `json:"revenue"`
		AverageOrder moneyJSON `json:"average_order"`
	} `json:"average_order_value"`
	CSAT          *float64         `json:"csat"`
	Ratings       map[string]int64 `json:"ratings"`
	RevenueByTier []struct {
		Tier      string    `json:"tier"`
		Customers int64     `json:"customers"`
		Orders    int64     `json:"orders"`
		Revenue   moneyJSON `json:"revenue"`
	} `json:"revenue_by_tier"`
}

func is(p *float64, v float64) bool { return p != nil && *p == v }

func TestKPIsRoute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := seed(t, db) // tenants A and B, for isolation
		tn := &store.Tenant{Name: "KPI shop"}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		k := tn.ID
		n := 0
		buy := func(cid int64, at string, total int64) {
			t.Helper()
			n++
			o := integrations.Order{Source: integrations.SourceShopify, OrderID: fmt.Sprint(n), CreatedAt: day(at), UpdatedAt: day(at),
				Currency: "EUR", TotalMinor: total, Status: integrations.OrderPaid}
			if _, err := db.ApplyOrder(ctx, k, cid, o); err != nil {
				t.Fatal(err)
			}
		}
		// 10 customers active at the start of 2024; 8 buy again in 2024, 2 do not; 4 new ones.
		var regulars []int64
		for i := range 10 {
			cid := must(mustResolve(ctx, db, k, store.Identity{Email: fmt.Sprintf("r%d@example.com", i)}))
			buy(cid, "2023-06-15", 1000)
			if i < 8 {
				buy(cid, "2024-06-15", 1999)
			}
			regulars = append(regulars, cid)
		}
		for i := range 4 {
			cid := must(mustResolve(ctx, db, k, store.Identity{Email: fmt.Sprintf("n%d@example.com", i)}))
			buy(cid, "2024-07-01", 500)
			if i == 0 {
				buy(cid, "2024-08-01", 500)
			}
		}
		buy(0, "2024-05-05", 12345) // a guest
		for i, rating := range []string{"good", "bad", "good", "bad", "offered"} {
			if _, err := db.ApplyTicketEvent(ctx, k, 0, integrations.TicketEvent{Source: integrations.SourceZendesk, EventID: fmt.Sprint(i),
				TicketID: fmt.Sprint(i), Satisfaction: rating, OccurredAt: day("2024-03-03")}); err != nil {
				t.Fatal(err)
			}
		}
		scoreFor(t, db, k, regulars[0], store.Score{Model: "heuristic", Tier: "gold", ChurnBand: "low"})

		r := newRouter(t, db)
		get := func(tok, query string) kpiAnswer {
			t.Helper()
			w := call(t, r, http.MethodGet, "/api/v1/kpis"+query, tok, "")
			wantStatus(t, w, http.StatusOK, "kpis"+query)
			var a kpiAnswer
			decode(t, w, &a)
			return a
		}
		a := get(token(t, k, RoleAdmin), "?from=2024-01-01&to=2024-12-31")
		c := a.Customers
		if a.Tenant != k || a.Period.From != "2024-01-01" || a.Period.To != "2024-12-31" || !a.Period.Start.Equal(day("2024-01-01")) ||
			!a.Period.End.Equal(day("2025-01-01")) || a.ActiveWindowDays != 365 {
			t.Errorf("period %+v", a.Period)
		}
		if c.ActiveAtStart != 10 || c.Retained != 8 || c.Lost != 2 || c.New != 4 || c.Won != 4 || c.ActiveAtEnd != 12 ||
			c.Buyers != 12 || c.RepeatBuyers != 1 {
			t.Errorf("customers %+v", c)
		}
		// 10 at the start, 2 lost, 4 new: 80 %, not 120 %.
		if !is(a.RetentionRate, 0.8) || !is(a.ChurnRate, 0.2) {
			t.Errorf("retention %v, churn %v; want 0.8 and 0.2", deref(a.RetentionRate), deref(a.ChurnRate))
		}
		if !is(a.RepeatPurchaseRate, 1.0/12) || !is(a.PurchaseFrequency, 13.0/12) || a.Orders != 13 || a.GuestOrders != 1 {
			t.Errorf("repeat %v, frequency %v, orders %d, guests %d", deref(a.RepeatPurchaseRate), deref(a.PurchaseFrequency), a.Orders, a.GuestOrders)
		}
		// 8 × 19.99 + 5 × 5.00 = 184.92 over 13 orders = 14.2246… → 14.22.
		if len(a.AverageOrderValue) != 1 || a.AverageOrderValue[0].Revenue != (moneyJSON{"EUR", 18492, "184.92"}) ||
			a.AverageOrderValue[0].AverageOrder != (moneyJSON{"EUR", 1422, "14.22"}) || a.AverageOrderValue[0].Orders != 13 {
			t.Errorf("average order value %+v", a.AverageOrderValue)
		}
		if !is(a.CSAT, 0.5) || a.Ratings["good"] != 2 || a.Ratings["bad"] != 2 {
			t.Errorf("csat %v %v", deref(a.CSAT), a.Ratings)
		}
		if len(a.RevenueByTier) != 2 || a.RevenueByTier[0].Tier != "gold" || a.RevenueByTier[0].Revenue.Minor != 1999 ||
			a.RevenueByTier[1].Tier != "unscored" || a.RevenueByTier[1].Customers != 11 || a.RevenueByTier[1].Revenue != (moneyJSON{"EUR", 16493, "164.93"}) {
			t.Errorf("revenue by tier %+v", a.RevenueByTier)
		}
		// The same through an operator token.
		if b := get(token(t, "", RoleOperator), "?from=2024-01-01&to=2024-12-31&tenant="+k); !is(b.RetentionRate, 0.8) {
			t.Errorf("operator view differs: %+v", b)
		}

		// Isolation: tenant B's numbers are B's alone (one USD order in June 2024, nobody active before).
		b := get(token(t, f.b, RoleAdmin), "?from=2024-01-01&to=2024-12-31")
		if b.Tenant != f.b || b.Customers.ActiveAtStart != 0 || b.RetentionRate != nil || b.ChurnRate != nil || b.Customers.Buyers != 1 ||
			len(b.AverageOrderValue) != 1 || b.AverageOrderValue[0].Revenue != (moneyJSON{"USD", 777, "7.77"}) || b.CSAT != nil {
			t.Errorf("B's KPIs %+v", b)
		}
		// Defaults: the 30 days up to today. All 12 customers active then (the 2024 purchases) still are.
		if d := get(token(t, k, RoleAdmin), ""); d.Period.From != "2025-01-31" || d.Period.To != "2025-03-01" || d.Orders != 0 ||
			d.Customers.ActiveAtStart != 12 || !is(d.RetentionRate, 1) {
			t.Errorf("default period %+v", d)
		}
		if d := get(token(t, k, RoleAdmin), "?to=2024-06-30"); d.Period.From != "2024-06-01" {
			t.Errorf("from defaults to to − 29 days: %+v", d.Period)
		}

		for _, q := range []string{"?from=2024-13-01", "?from=2024-1-1", "?to=tomorrow", "?from=2024-02-01&to=2024-01-31",
			"?from=2000-01-01&to=2024-01-01", "?period=year", "?from=2024-01-01&from=2024-02-01"} {
			wantStatus(t, call(t, r, http.MethodGet, "/api/v1/kpis"+q, token(t, k, RoleAdmin), ""), http.StatusBadRequest, "kpis"+q)
		}
	})
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestModelRoute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *store.DB) {
		f := seed(t, db)
		r := newRouter(t, db)
		type answer struct {
			Models []struct {
				ID              int64           `json:"id"`
				Kind            string          `json:"kind"`
				FittedAt        time.Time       `json:"fitted_at"`
				Params          json.RawMessage `json:"params"`
				Customers       int             `json:"customers"`
				RepeatCustomers int             `json:"repeat_customers"`
				LogLikelihood   *float64        `json:"log_likelihood"`
				Converged       bool            `json:"converged"`
				Seconds         float64         `json:"seconds"`
				Quality         json.RawMessage `json:"quality"`
			} `json:"models"`
		}
		get := func(tok, q string) answer {
			t.Helper()
			w := call(t, r, http.MethodGet, "/api/v1/model"+q, tok, "")
			wantStatus(t, w, http.StatusOK, "model"+q)
			var a answer
			decode(t, w, &a)
			return a
		}
		a := get(token(t, f.a, RoleAdmin), "")
		if len(a.Models) != 1 {
			t.Fatalf("latest: %+v", a)
		}
		m := a.Models[0]
		if !m.FittedAt.Equal(day("2025-02-01")) || m.LogLikelihood != nil || m.Converged || m.Customers != 70 || m.RepeatCustomers != 30 ||
			string(m.Params) != `{"r":0.3}` || string(m.Quality) != `{}` || m.Seconds != 1.5 {
			t.Errorf("latest model %+v", m)
		}
		a = get(token(t, f.a, RoleAdmin), "?limit=10")
		if len(a.Models) != 2 || !a.Models[1].FittedAt.Equal(day("2025-01-01")) || a.Models[1].LogLikelihood == nil ||
			*a.Models[1].LogLikelihood != -123.5 || !a.Models[1].Converged || string(a.Models[1].Quality) != `{"iterations":12}` {
			t.Errorf("history %+v", a)
		}
		if b := get(token(t, f.b, RoleAdmin), "?limit=10"); len(b.Models) != 1 || b.Models[0].Kind != "heuristic" {
			t.Errorf("B's models %+v", b)
		}
		tn := &store.Tenant{Name: "New"}
		if err := db.CreateTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
		if got := get(token(t, tn.ID, RoleAdmin), ""); got.Models == nil || len(got.Models) != 0 {
			t.Errorf("no models: %+v", got)
		}
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?kind=bgnbd"} {
			wantStatus(t, call(t, r, http.MethodGet, "/api/v1/model"+q, token(t, f.a, RoleAdmin), ""), http.StatusBadRequest, "model"+q)
		}
	})
}
