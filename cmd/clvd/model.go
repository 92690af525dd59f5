package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clvd/clvd/clv"
	"github.com/clvd/clvd/clv/clvcsv"
)

const modelUsage = `Usage:
  clvd model fit     (--transactions FILE --calibration-end YYYY-MM-DD | --summary FILE) --period day|week [flags]
  clvd model predict (same inputs) --horizon N [--discount-rate 0.10] [--margin 1] [flags]

fit fits the BG/NBD and Gamma-Gamma models and prints one JSON object:
  {"customers":N,"bgnbd":{"r","alpha","a","b","loglik"},"gammagamma":{"p","q","v","customers"},"seconds":S}
("gammagamma" is null, with "gammagamma_problem", when the spend model is not usable).
predict fits the same way, then writes CSV to stdout, one row per customer:
  customer_id,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_avg_value,clv
over the next N periods, discounted at an annual rate, times the margin.

Transaction files: the delimiter is detected from the first line (comma, tab, semicolon, else
blanks, as in the CDNOW files; CRLF is fine). Columns are header names or 1-based numbers.
Dates: YYYY-MM-DD, YYYYMMDD, RFC 3339 or "YYYY-MM-DD HH:MM:SS" (UTC). Purchases after the
calibration end are ignored; same-day purchases are one transaction. Summary files have a header
with frequency|x, recency|t_x, T, optional monetary_value|zbar and id|customer_id, in --period.

Examples (CDNOW):
  clvd model fit --transactions CDNOW_master.txt --amount-col dollar_value --calibration-end 1997-09-30 --period week
  clvd model fit --transactions CDNOW_sample.txt --no-header --customer-col 2 --date-col 3 --amount-col 5 --calibration-end 1997-09-30 --period week
  clvd model predict --summary cdnow_customers_summary_with_transactions.csv --period week --horizon 39

Flags:
`

// runModel implements `clvd model fit|predict`; the logic lives in clv/clvcsv.
func runModel(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, modelUsage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	sub := args[0]
	if sub != "fit" && sub != "predict" {
		fmt.Fprintf(env.Stderr, "clvd model: unknown subcommand %q (want fit or predict)\n", sub)
		return errUsage
	}
	fs := newFlagSet(env, "model "+sub)
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, modelUsage)
		fs.PrintDefaults()
	}
	var (
		txFile   = fs.String("transactions", "", "transactions file (CSV or whitespace-separated)")
		sumFile  = fs.String("summary", "", "per-customer summary file, instead of --transactions")
		custCol  = fs.String("customer-col", clvcsv.DefaultColumns.Customer, "customer id column: header name or 1-based number")
		dateCol  = fs.String("date-col", clvcsv.DefaultColumns.Date, "date column: header name or 1-based number")
		amtCol   = fs.String("amount-col", clvcsv.DefaultColumns.Amount, `amount column: header name or 1-based number ("" for none)`)
		noHeader = fs.Bool("no-header", false, "the transactions file has no header line (give columns by number)")
		calEnd   = fs.String("calibration-end", "", "last day of the calibration period, YYYY-MM-DD (required with --transactions)")
		period   = fs.String("period", "", "model time unit: day or week (required)")
		skipBad  = fs.Bool("skip-bad", false, "skip and count bad rows instead of failing on the first")
		pen      = fs.Float64("penalizer", 0, "L2 penaliser on the BG/NBD parameters")
		minCust  = fs.Int("min-customers", 0, "cold-start minimum of customers (0: 50, negative: none)")
		minRep   = fs.Int("min-repeat", 0, "cold-start minimum of repeat customers (0: 20, negative: none)")
		horizon  = fs.Float64("horizon", 0, "predict: horizon in model periods (required)")
		discount = fs.Float64("discount-rate", 0.10, "predict: annual discount rate")
		margin   = fs.Float64("margin", 1, "predict: profit margin applied to value")
	)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		fmt.Fprintf(env.Stderr, "clvd model %s: %s\n", sub, fmt.Sprintf(format, a...))
		return errUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if (*txFile == "") == (*sumFile == "") {
		return usage("give exactly one of --transactions and --summary")
	}
	unit, err := clv.ParseUnit(*period)
	if *period == "" || err != nil {
		return usage("--period must be day or week")
	}
	in := clvcsv.Input{Unit: unit, SkipBad: *skipBad,
		Columns: clvcsv.Columns{Customer: *custCol, Date: *dateCol, Amount: *amtCol, NoHeader: *noHeader}}
	if *txFile != "" {
		if *calEnd == "" {
			return usage("--calibration-end is required with --transactions")
		}
		if in.CalibrationEnd, err = clvcsv.ParseDate(*calEnd); err != nil {
			return usage("--calibration-end: %v", err)
		}
		in.Name = *txFile
	} else {
		in.Summary, in.Name = true, *sumFile
	}
	if sub == "predict" && !(*horizon > 0) {
		return usage("--horizon N (periods, > 0) is required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	f, err := os.Open(in.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	in.R = f
	loaded, err := clvcsv.Load(in)
	if err != nil {
		return err
	}
	if loaded.Skipped > 0 {
		fmt.Fprintf(env.Stderr, "clvd model %s: skipped %d bad rows of %d:\n  %s\n", sub, loaded.Skipped,
			loaded.Rows+loaded.Skipped, strings.Join(loaded.Problems, "\n  "))
	}
	m, out, err := clvcsv.Fit(loaded, unit, clv.FitOptions{Penalizer: *pen, MinCustomers: *minCust,
		MinRepeatCustomers: *minRep, Now: time.Now().UTC()})
	if err != nil {
		if errors.Is(err, clv.ErrNotEnoughData) {
			return fmt.Errorf("%w (lower --min-customers/--min-repeat to fit anyway)", err)
		}
		return err
	}
	if sub == "fit" {
		return clvcsv.WriteJSON(env.Stdout, out)
	}
	return clvcsv.WritePredictions(env.Stdout, loaded, m, clvcsv.PredictOptions{
		HorizonPeriods: *horizon, AnnualDiscountRate: *discount, Margin: *margin})
}
