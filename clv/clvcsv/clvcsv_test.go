package clvcsv

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/testdata"

	"github.com/clvd/clvd/clv"
)

func load(t *testing.T, name string, in Input) *Loaded {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata.CDNOWDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in.Name, in.R = name, f
	if in.Unit == 0 {
		in.Unit = clv.Week
	}
	l, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var calEnd = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)

func near(t *testing.T, name string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s = %v, want %v ± %v%%", name, got, want, rel*100)
	}
}

// fitJSON runs the fit command's logic and decodes what it prints.
func fitJSON(t *testing.T, l *Loaded) map[string]any {
	t.Helper()
	_, out, err := Fit(l, clv.Week, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("not one line of JSON: %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkPublished(t *testing.T, m map[string]any, withGG bool) {
	t.Helper()
	if m["customers"] != 2357.0 {
		t.Errorf("customers %v", m["customers"])
	}
	bg := m["bgnbd"].(map[string]any)
	near(t, "r", bg["r"].(float64), 0.243, 0.005)
	near(t, "alpha", bg["alpha"].(float64), 4.414, 0.005)
	near(t, "a", bg["a"].(float64), 0.793, 0.005)
	near(t, "b", bg["b"].(float64), 2.426, 0.005)
	near(t, "loglik", bg["loglik"].(float64), -9582.4, 0.005)
	if _, ok := m["seconds"].(float64); !ok {
		t.Error("no seconds")
	}
	if !withGG {
		if m["gammagamma"] != nil || m["gammagamma_problem"] == nil {
			t.Errorf("gammagamma %v, problem %v", m["gammagamma"], m["gammagamma_problem"])
		}
		return
	}
	gg := m["gammagamma"].(map[string]any)
	near(t, "p", gg["p"].(float64), 6.25, 0.005)
	near(t, "q", gg["q"].(float64), 3.74, 0.005)
	near(t, "v", gg["v"].(float64), 15.44, 0.005)
	if gg["customers"] != 946.0 {
		t.Errorf("gamma-gamma customers %v", gg["customers"])
	}
}

func TestFitCDNOWSampleTransactions(t *testing.T) {
	l := load(t, "CDNOW_sample.txt", Input{CalibrationEnd: calEnd,
		Columns: Columns{Customer: "2", Date: "3", Amount: "5", NoHeader: true}})
	if len(l.Customers) != 2357 || l.Rows != 6919 || l.AfterEnd == 0 || l.Skipped != 0 {
		t.Fatalf("%d customers, %d rows, %d after end, %d skipped", len(l.Customers), l.Rows, l.AfterEnd, l.Skipped)
	}
	checkPublished(t, fitJSON(t, l), true)
}

func TestFitCDNOWSummaries(t *testing.T) {
	checkPublished(t, fitJSON(t, load(t, "cdnow_customers_summary_with_transactions.csv", Input{Summary: true})), true)
	checkPublished(t, fitJSON(t, load(t, "cdnow_customers_summary.csv", Input{Summary: true})), false)
}

func TestFitCDNOWMaster(t *testing.T) {
	l := load(t, "CDNOW_master.txt", Input{CalibrationEnd: calEnd,
		Columns: Columns{Customer: "customer_id", Date: "date", Amount: "DOLLAR_VALUE"}})
	if len(l.Customers) != 23570 || l.Rows != 69659 {
		t.Fatalf("%d customers, %d rows", len(l.Customers), l.Rows)
	}
	m := fitJSON(t, l)
	if m["customers"] != 23570.0 || m["gammagamma"] == nil {
		t.Errorf("%v", m)
	}
}

func TestPredictCSV(t *testing.T) {
	l := load(t, "cdnow_customers_summary_with_transactions.csv", Input{Summary: true})
	model, _, err := Fit(l, clv.Week, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePredictions(&buf, l, model, PredictOptions{HorizonPeriods: 39, AnnualDiscountRate: 0.1, Margin: 1}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "customer_id,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_avg_value,clv" {
		t.Errorf("header %q", rows[0])
	}
	if len(rows) != 2358 {
		t.Fatalf("%d rows", len(rows))
	}
	r1 := rows[1]
	num := func(i int) float64 {
		v, err := strconv.ParseFloat(r1[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if r1[0] != "1" || num(1) != 2 || num(2) != 30.43 || num(3) != 38.86 || num(4) != 22.35 {
		t.Errorf("customer 1 row %q", r1)
	}
	near(t, "p_alive", num(5), 0.7266, 0.001)
	near(t, "expected purchases (39 weeks)", num(6), 1.226, 0.005)
	em := model.GammaGamma.P * (model.GammaGamma.V + 2*22.35) / (model.GammaGamma.P*2 + model.GammaGamma.Q - 1)
	near(t, "expected avg value", num(7), em, 1e-9)
	// Discounted at 10%/yr over 39 weeks: a little below purchases × value.
	if c := num(8); !(c < num(6)*em && c > num(6)*em*0.93) {
		t.Errorf("clv %v vs undiscounted %v", c, num(6)*em)
	}
}

// The same purchases in every supported layout give the same customers.
func TestDelimitersAndFormats(t *testing.T) {
	files := map[string]string{
		"comma":     "customer_id,date,amount\n\"a\",2024-01-01,10\nb,2024-01-02,5.5\na,\"2024-02-01\",2\n",
		"tab":       "customer_id\tdate\tamount\r\na\t2024-01-01\t10\r\nb\t20240102\t5.5\r\na\t2024-02-01T10:00:00Z\t2\r\n",
		"semicolon": "\ufeffcustomer_id;date;amount\na;2024-01-01;10\nb;2024-01-02 08:00:00;5.5\na;2024-02-01;2\n",
		"blanks":    " customer_id  date amount\r\n a 20240101  10\r\n\r\n b   20240102 5.5\r\n a 20240201 2\r\n",
	}
	for name, content := range files {
		l, err := Load(Input{Name: name, R: strings.NewReader(content), Unit: clv.Day,
			CalibrationEnd: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), Columns: DefaultColumns})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(l.Customers) != 2 || l.Customers[0].ID != "a" || l.Customers[1].ID != "b" {
			t.Fatalf("%s: %+v", name, l.Customers)
		}
		a := l.Customers[0].Summary
		if a.Frequency != 1 || a.Recency != 31 || a.T != 60 || a.MonetaryValue != 2 || l.Customers[1].Summary.Total != 5.5 {
			t.Errorf("%s: a = %+v", name, a)
		}
	}
}

func TestBadRows(t *testing.T) {
	content := "customer_id,date,amount\na,2024-01-01,10\nb,2024-13-01,5\nc,2024-01-03,abc\nd\n,2024-01-01,3\n"
	in := Input{Name: "orders.csv", Unit: clv.Day, CalibrationEnd: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), Columns: DefaultColumns}
	in.R = strings.NewReader(content)
	_, err := Load(in)
	var re *RowError
	if !errors.As(err, &re) || re.Line != 3 || re.Column != 2 || !strings.HasPrefix(err.Error(), "orders.csv:3: column 2 (date): bad date") {
		t.Fatalf("err = %v", err)
	}
	in.R, in.SkipBad = strings.NewReader(content), true
	l, err := Load(in)
	if err != nil || l.Skipped != 4 || len(l.Customers) != 1 || len(l.Problems) != 4 {
		t.Fatalf("skip: %v, %+v", err, l)
	}
	if !strings.Contains(l.Problems[1], "orders.csv:4: column 3 (amount): bad amount") {
		t.Errorf("problems %q", l.Problems)
	}
	// Column mistakes are reported before reading rows.
	for _, c := range []Columns{
		{Customer: "customer_id", Date: "day", Amount: "amount"},
		{Customer: "customer_id", Date: "date", Amount: "amount", NoHeader: true},
		{Customer: "0", Date: "date"},
	} {
		in := Input{Name: "orders.csv", R: strings.NewReader(content), Unit: clv.Day, Columns: c}
		if _, err := Load(in); err == nil || !strings.Contains(err.Error(), "column") {
			t.Errorf("%+v: err = %v", c, err)
		}
	}
	// Summaries: a missing required column, a negative value, t_x > T.
	for _, s := range []string{"id,x,t_x\n1,1,2\n", "id,x,t_x,T\n1,-1,0,3\n", "id,x,t_x,T\n1,1,4,3\n"} {
		if _, err := Load(Input{Name: "s.csv", R: strings.NewReader(s), Unit: clv.Week, Summary: true}); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(1997, 1, 18, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"1997-01-18", "19970118", "1997-01-18T00:00:00Z", "1997-01-18 00:00:00"} {
		if d, err := ParseDate(s); err != nil || !d.Equal(want) {
			t.Errorf("%q: %v %v", s, d, err)
		}
	}
	if d, err := ParseDate("1997-01-18T23:30:00-05:00"); err != nil || d.UTC().Day() != 19 {
		t.Errorf("zone: %v %v", d, err)
	}
	for _, s := range []string{"18/01/1997", "1997-1-18", "", "19971318"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
