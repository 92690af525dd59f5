package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/internal/loadtest"
	"github.com/clvd/clvd/store"
)

// loadtestEmail is the agent email of the fake Zendesk a created tenant points at.
const loadtestEmail = "loadtest@clvd.invalid"

// runLoadtest drives a running service with signed webhooks and audits the outcome (internal/loadtest).
func runLoadtest(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "loadtest")
	var sf serverFlags
	sf.bindStore(fs)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the running service")
	tenantID := fs.String("tenant", "", "send for this existing tenant (its secrets are read from the store)")
	create := fs.Bool("create-tenant", false, "create a tenant for the run, with generated secrets (its Zendesk is the fake with --fake-zendesk)")
	rate := fs.Int("rate", 100, "requests per second; 0 = as fast as --workers allow")
	workers := fs.Int("workers", 64, "requests in flight at once with --rate 0 (initial workers otherwise)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send; with --count and no --duration, until the count is reached")
	count := fs.Int("count", 0, "how many requests to send, duplicates included (0: for --duration; with both, whichever ends first)")
	customers := fs.Int("customers", 1000, "distinct customers the events are spread over")
	burst := fs.Float64("burst-share", 0.2, "share of events sent in bursts of 10 for one customer")
	dup := fs.Float64("duplicate-share", 0.05, "share of requests that re-send an earlier event (same id and body)")
	tickets := fs.Float64("ticket-share", 0.3, "share of events that are Zendesk ticket events (the rest are Shopify orders)")
	fake := fs.Bool("fake-zendesk", false, "play the tenant's Zendesk API with a built-in fake, and audit the tags it receives")
	fakeAddr := fs.String("fake-zendesk-addr", "127.0.0.1:0", "listen address of the fake Zendesk")
	rate429 := fs.Float64("zendesk-429-rate", 0, "share of fake Zendesk requests answered 429 with Retry-After")
	rate5xx := fs.Float64("zendesk-5xx-rate", 0, "share of fake Zendesk requests answered 503")
	retryAfter := fs.Duration("zendesk-retry-after", time.Second, "Retry-After of the fake's 429 answers")
	outage := fs.String("zendesk-outage", "", "take the fake Zendesk down during the run: 429 (every call rate limited), 500, or hang (no answer until the service gives up)")
	outageAt := fs.Duration("zendesk-outage-at", 0, "when the outage starts, after the first request")
	outageFor := fs.Duration("zendesk-outage-for", time.Minute, "how long the outage lasts")
	settle := fs.Duration("settle", time.Minute, "how long to wait for the pipeline to drain before the final audit")
	seed := fs.Uint64("seed", 0, "random seed of the traffic (0: random)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dump := fs.String("dump-zendesk", "", "write every request the fake Zendesk received to this file, one JSON object a line (to investigate a failed audit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if *count > 0 && !durationSet {
		*duration = 0
	}
	usageErr := func(format string, args ...any) error {
		fmt.Fprintf(env.Stderr, "clvd loadtest: "+format+"\n", args...)
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case (*tenantID == "") == !*create:
		return usageErr("give either --tenant ID or --create-tenant")
	case *rate < 0 || *workers < 1 || *customers < 1:
		return usageErr("--rate must be ≥ 0, --workers and --customers ≥ 1")
	case *duration < 0 || *count < 0 || (*duration == 0 && *count == 0):
		return usageErr("give a positive --duration or --count")
	case *settle < 0:
		return usageErr("--settle must be ≥ 0")
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"burst-share", *burst}, {"duplicate-share", *dup}, {"ticket-share", *tickets}, {"zendesk-429-rate", *rate429}, {"zendesk-5xx-rate", *rate5xx}} {
		if s.v < 0 || s.v > 1 {
			return usageErr("--%s %g: want a share from 0 to 1", s.name, s.v)
		}
	}
	if *dup >= 1 {
		return usageErr("--duplicate-share must be below 1")
	}
	if *rate429+*rate5xx > 1 {
		return usageErr("--zendesk-429-rate and --zendesk-5xx-rate add up to more than 1")
	}
	var out loadtest.Outage
	if *outage != "" {
		mode, err := zendesktest.ParseOutage(*outage)
		switch {
		case err != nil || mode == zendesktest.Up:
			return usageErr("--zendesk-outage %q: want 429, 500 or hang", *outage)
		case !*fake:
			return usageErr("--zendesk-outage needs --fake-zendesk")
		case *outageAt < 0 || *outageFor <= 0:
			return usageErr("--zendesk-outage-at must be ≥ 0 and --zendesk-outage-for positive")
		}
		out = loadtest.Outage{Mode: mode, At: *outageAt, For: *outageFor}
	}
	if *tickets > 0 && !*fake {
		// A ticket event names only the requester's Zendesk id, which the service resolves through
		// the tenant's Zendesk API: without the fake, tickets could not be matched to orders.
		return usageErr("--ticket-share above 0 needs --fake-zendesk (the service looks ticket requesters up in the tenant's Zendesk); or pass --ticket-share 0")
	}

	_, db, err := openFromFlags(ctx, env, &sf)
	if err != nil {
		return err
	}
	defer db.Close()

	var tenant *store.Tenant
	if *create {
		tenant = &store.Tenant{Name: "loadtest " + time.Now().UTC().Format(time.RFC3339), ShopifySecret: newSecret(),
			OrdersSecret: newSecret(), Zendesk: store.ZendeskAccount{WebhookSecret: newSecret()}}
	} else {
		if tenant, err = db.GetTenant(ctx, *tenantID); err != nil {
			return err
		}
	}

	var fz *loadtest.FakeZendesk
	if *fake {
		email, token := loadtestEmail, newSecret()
		if !*create {
			if tenant.Zendesk.Email == "" || tenant.Zendesk.APIToken == "" {
				return fmt.Errorf("tenant %s has no Zendesk API credentials for the fake to accept: use --create-tenant, or set them with 'clvd tenant update %s --zendesk-url http://ADDR --zendesk-email E --zendesk-token T' and pass --fake-zendesk-addr ADDR",
					tenant.ID, tenant.ID)
			}
			email, token = tenant.Zendesk.Email, tenant.Zendesk.APIToken
		}
		fz, err = loadtest.StartFakeZendesk(loadtest.FakeZendeskOptions{Addr: *fakeAddr, Email: email, Token: token,
			Rate429: *rate429, Rate5xx: *rate5xx, RetryAfter: *retryAfter, Seed: *seed})
		if err != nil {
			return err
		}
		defer fz.Close()
		if *create {
			tenant.Zendesk.BaseURL, tenant.Zendesk.Email, tenant.Zendesk.APIToken = fz.URL, email, token
		} else if strings.TrimRight(tenant.Zendesk.BaseURL, "/") != fz.URL {
			return fmt.Errorf("tenant %s's Zendesk is %s, not the fake at %s: pass --fake-zendesk-addr matching it, or point it at the fake with 'clvd tenant update %s --zendesk-url %s' (or use --create-tenant)",
				tenant.ID, tenant.Zendesk.BaseURL, fz.URL, tenant.ID, fz.URL)
		}
	} else if tenant.Zendesk.BaseURL != "" {
		// The service would write tags and open retention tickets in the tenant's Zendesk: never in
		// a real account because of a load test.
		return fmt.Errorf("tenant %s has a Zendesk account (%s): the load test would make the service write to it; use --fake-zendesk",
			tenant.ID, tenant.Zendesk.BaseURL)
	}
	if *create {
		if err := db.CreateTenant(ctx, tenant); err != nil {
			return err
		}
	}

	zendeskSecret, _, _ := strings.Cut(tenant.Zendesk.WebhookSecret, ",")
	rep, err := loadtest.Run(ctx, loadtest.Options{
		URL: *url, Tenant: tenant.ID, ShopifySecret: tenant.ShopifySecret, ZendeskSecret: strings.TrimSpace(zendeskSecret),
		Rate: *rate, Workers: *workers, Duration: *duration, Count: *count,
		Mix:    loadtest.Mix{Customers: *customers, BurstShare: *burst, DuplicateShare: *dup, TicketShare: *tickets},
		Settle: *settle, Seed: *seed, Store: db, Zendesk: fz, Outage: out, Progress: env.Stderr,
	})
	if err != nil {
		return err
	}
	rep.TenantCreated = *create
	if *dump != "" && fz != nil {
		if err := fz.DumpRequests(*dump); err != nil {
			return err
		}
	}
	if *asJSON {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout)
	}
	if err != nil {
		return err
	}
	if !rep.Audit.Pass {
		return errors.New("audit failed")
	}
	return nil
}
