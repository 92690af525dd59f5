package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clvd/clvd/internal/testdata"
)

func runModelCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	env := &cliEnv{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
	code = run(context.Background(), env, append([]string{"model"}, args...))
	return code, out.String(), errb.String()
}

func TestModelFitCDNOW(t *testing.T) {
	d := testdata.CDNOWDir(t)
	inputs := map[string][]string{
		"sample": {"--transactions", filepath.Join(d, "CDNOW_sample.txt"), "--no-header",
			"--customer-col", "2", "--date-col", "3", "--amount-col", "5", "--calibration-end", "1997-09-30"},
		"master by index": {"--transactions", filepath.Join(d, "CDNOW_master.txt"),
			"--customer-col", "1", "--date-col", "2", "--amount-col", "4", "--calibration-end", "19970930"},
		"summary": {"--summary", filepath.Join(d, "cdnow_customers_summary_with_transactions.csv")},
	}
	for name, in := range inputs {
		code, out, stderr := runModelCmd(append([]string{"fit", "--period", "week"}, in...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		var got struct {
			Customers int `json:"customers"`
			BGNBD     struct {
				R, Alpha, A, B, LogLik float64
			} `json:"bgnbd"`
			GammaGamma *struct {
				P, Q, V   float64
				Customers int
			} `json:"gammagamma"`
			Seconds *float64 `json:"seconds"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v in %q", name, err, out)
		}
		if got.GammaGamma == nil || got.Seconds == nil {
			t.Fatalf("%s: %s", name, out)
		}
		if name == "master by index" {
			if got.Customers != 23570 {
				t.Errorf("master: %d customers", got.Customers)
			}
			continue
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"r", got.BGNBD.R, 0.243}, {"alpha", got.BGNBD.Alpha, 4.414}, {"a", got.BGNBD.A, 0.793}, {"b", got.BGNBD.B, 2.426},
			{"loglik", got.BGNBD.LogLik, -9582.4}, {"p", got.GammaGamma.P, 6.25}, {"q", got.GammaGamma.Q, 3.74}, {"v", got.GammaGamma.V, 15.44}} {
			if math.Abs(c.got-c.want) > 0.005*math.Abs(c.want) {
				t.Errorf("%s: %s = %v, want %v", name, c.name, c.got, c.want)
			}
		}
		if got.Customers != 2357 || got.GammaGamma.Customers != 946 {
			t.Errorf("%s: customers %d, gamma-gamma %d", name, got.Customers, got.GammaGamma.Customers)
		}
	}
}

func TestModelPredictCDNOW(t *testing.T) {
	d := testdata.CDNOWDir(t)
	code, out, stderr := runModelCmd("predict", "--summary", filepath.Join(d, "cdnow_customers_summary_with_transactions.csv"),
		"--period", "week", "--horizon", "39", "--discount-rate", "0", "--margin", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "customer_id,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_avg_value,clv" || len(rows) != 2358 {
		t.Fatalf("header %q, %d rows", rows[0], len(rows))
	}
	if r := rows[1]; r[0] != "1" || !strings.HasPrefix(r[6], "1.22") || !strings.HasPrefix(r[5], "0.726") {
		t.Errorf("customer 1: %q", r)
	}
}

func TestModelUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"train"},
		{"fit", "--period", "week"}, // no input
		{"fit", "--summary", "x.csv", "--transactions", "y.csv", "--period", "week"}, // both
		{"fit", "--summary", "x.csv", "--period", "month"},
		{"fit", "--transactions", "x.csv", "--period", "day"}, // no calibration end
		{"predict", "--summary", "x.csv", "--period", "week"}, // no horizon
		{"fit", "--bogus"},
	} {
		if code, _, stderr := runModelCmd(args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want usage error 2", args, code, stderr)
		}
	}
	if code, _, stderr := runModelCmd("fit", "--summary", filepath.Join(t.TempDir(), "missing.csv"), "--period", "week"); code != 1 || !strings.Contains(stderr, "missing.csv") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
	if code, _, _ := runModelCmd("fit", "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}
