package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/internal/loadtest"
)

// TestLoadtest runs `clvd loadtest` against the service started in-process: 300 signed Shopify and
// Zendesk webhooks at 150/s for 40 customers, with bursts and duplicates, and a fake Zendesk that
// answers 10 % of calls 429 and 5 % 503. The audit must pass: every event stored once, nothing
// counted twice, and the fake's tags equal to what the store says each ticket and user should have.
func TestLoadtest(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			cfg := testConfig(t, b)
			// The shipped debounce: below 1 s a rescore can start inside its own debounce window, because
			// asynq schedules to the whole second, and an event later in that window then finds the
			// running task's id taken and gets no rescore until the reconciler's next sweep.
			cfg.RescoreDebounce, _ = defaultsForBench()
			s := startTestService(t, cfg)
			args := []string{"loadtest", "--url", s.URL(), "--data-dir", cfg.DataDir, "--create-tenant", "--fake-zendesk",
				"--count", "300", "--rate", "150", "--customers", "40", "--burst-share", "0.2", "--duplicate-share", "0.05",
				"--ticket-share", "0.35", "--zendesk-429-rate", "0.1", "--zendesk-5xx-rate", "0.05", "--zendesk-retry-after", "1s",
				"--settle", "30s", "--seed", "42", "--json"}
			if b.dbURL != "" {
				args = append(args, "--database-url", b.dbURL)
			}
			rep, _ := runLoadtestPassing(t, args...)
			ev := rep.Audit.Events
			switch {
			case rep.Intake.Requests != 300 || ev.Requests != 300 || ev.Acknowledged != 300 || len(ev.Rejected) != 0:
				t.Fatalf("requests %d/%d, acknowledged %d, rejected %v", rep.Intake.Requests, ev.Requests, ev.Acknowledged, ev.Rejected)
			case ev.DuplicatesSent == 0 || ev.Unique+ev.DuplicatesSent != 300 || ev.NotAcknowledged != 0 ||
				ev.DuplicatesAnswered+ev.DuplicatesReingested != ev.DuplicatesSent:
				t.Fatalf("events %+v", ev)
			case ev.Orders == 0 || ev.TicketEvents == 0:
				t.Fatalf("no mix: %+v", ev)
			case rep.Audit.TicketsChecked == 0 || rep.Audit.UsersChecked == 0 || rep.Audit.CustomersChecked == 0:
				t.Fatalf("nothing compared: %+v", rep.Audit)
			case rep.EndToEnd == nil || rep.EndToEnd.Tickets == 0 || rep.EndToEnd.NotTagged != 0:
				t.Fatalf("end to end %+v", rep.EndToEnd)
			case rep.FakeZendesk == nil || rep.FakeZendesk.ByStatus["429"] == 0 || rep.FakeZendesk.ByStatus["503"] == 0:
				t.Fatalf("the fake injected no faults: %+v", rep.FakeZendesk)
			}
			for _, c := range rep.Audit.Stored {
				if !c.OK || c.Got != c.Max {
					t.Fatalf("stored %+v", c)
				}
			}
		})
	}
}

// runLoadtestPassing runs `clvd loadtest` with args (which ask for --json), logs the report as text,
// and fails the test unless the command exited 0 with a passing audit.
func runLoadtestPassing(t *testing.T, args ...string) (loadtest.Report, string) {
	t.Helper()
	code, out, stderr := runCLI(t, nil, args...)
	var rep loadtest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, stdout is not a JSON report: %v\n%s\nstderr: %s", code, err, out, stderr)
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	t.Logf("report:\n%s", text.String())
	if code != 0 || !rep.Audit.Pass {
		t.Fatalf("exit %d, audit pass=%v; stderr: %s", code, rep.Audit.Pass, stderr)
	}
	return rep, text.String()
}

// TestLoadtestZendeskOutage: --zendesk-outage takes the fake Zendesk down during the run; the service
// catches up once it is back, the audit passes, and the report says what the outage drew.
func TestLoadtestZendeskOutage(t *testing.T) {
	cfg := testConfig(t, backend{})
	cfg.RescoreDebounce, _ = defaultsForBench()
	cfg.HelpdeskTimeout = time.Second
	s := startTestService(t, cfg)
	rep, text := runLoadtestPassing(t, "loadtest", "--url", s.URL(), "--data-dir", cfg.DataDir, "--create-tenant", "--fake-zendesk",
		"--count", "200", "--rate", "50", "--customers", "20", "--ticket-share", "0.4", "--seed", "7", "--settle", "40s",
		"--zendesk-outage", "hang", "--zendesk-outage-at", "1s", "--zendesk-outage-for", "2s", "--json")
	switch {
	case rep.Outage == nil || rep.Outage.Mode != "hang" || rep.Outage.AtSeconds != 1 || rep.Outage.ForSeconds != 2:
		t.Fatalf("outage %+v", rep.Outage)
	case rep.FakeZendesk.OutageCalls["0"] == 0:
		t.Fatalf("no call was held during the outage: %+v", rep.FakeZendesk)
	case !strings.Contains(text, "outage     fake Zendesk down (hang) from 1s to 3s"):
		t.Fatalf("the text report does not describe the outage")
	}
}

// TestLoadtestAuditFails: when the service cannot write tags (here: it refuses loopback helpdesk
// URLs), the audit names what is missing and the command exits 1.
func TestLoadtestAuditFails(t *testing.T) {
	cfg := testConfig(t, backend{})
	cfg.AllowLocalTargets = false
	s := startTestService(t, cfg)
	code, out, stderr := runCLI(t, nil, "loadtest", "--url", s.URL(), "--data-dir", cfg.DataDir, "--create-tenant", "--fake-zendesk",
		"--count", "20", "--rate", "0", "--workers", "4", "--customers", "3", "--ticket-share", "0.5", "--settle", "1500ms")
	if code != 1 || !strings.Contains(stderr, "audit failed") {
		t.Fatalf("exit %d, stderr %q, want 1 and 'audit failed'", code, stderr)
	}
	for _, want := range []string{"result       FAIL", "mismatch", "CLVD_ALLOW_LOCAL_TARGETS=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadtestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--url", "http://127.0.0.1:1"},                                                                 // neither --tenant nor --create-tenant
		{"--tenant", "t_x", "--create-tenant"},                                                          // both
		{"--create-tenant", "--fake-zendesk", "--duration", "0"},                                        // no end
		{"--create-tenant", "--fake-zendesk", "--duplicate-share", "1"},                                 // nothing new
		{"--create-tenant", "--fake-zendesk", "--zendesk-429-rate", "0.7", "--zendesk-5xx-rate", "0.5"}, // over 1
		{"--create-tenant", "--ticket-share", "0.3"},                                                    // tickets without the fake
		{"--create-tenant", "--fake-zendesk", "--zendesk-outage", "down"},                               // unknown outage
		{"--create-tenant", "--ticket-share", "0", "--zendesk-outage", "500"},                           // outage without the fake
		{"--create-tenant", "--fake-zendesk", "--zendesk-outage", "hang", "--zendesk-outage-for", "0s"}, // no length
	} {
		code, _, stderr := runCLI(t, nil, append([]string{"loadtest", "--data-dir", dir}, args...)...)
		if code != 2 || stderr == "" {
			t.Errorf("loadtest %v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
		}
	}
}

// TestLoadtestExistingTenant: --tenant reads the tenant's signing secrets from the store; with
// --fake-zendesk the fake takes the tenant's Zendesk credentials on the address its URL names, and a
// tenant whose Zendesk is elsewhere is refused rather than called.
func TestLoadtestExistingTenant(t *testing.T) {
	cfg := testConfig(t, backend{})
	cfg.RescoreDebounce, _ = defaultsForBench() // see TestLoadtest
	s := startTestService(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"CLVD_DATA_DIR": cfg.DataDir, "CLVD_ALLOW_LOCAL_TARGETS": "true"}
	add := func(args ...string) string {
		t.Helper()
		code, out, stderr := runCLI(t, env, append([]string{"tenant", "add", "--json", "--shopify-secret", "shp", "--zendesk-webhook-secret", "zd"}, args...)...)
		if code != 0 {
			t.Fatalf("tenant add: %d %s", code, stderr)
		}
		var got struct{ ID string }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		return got.ID
	}
	withFake := add("--name", "A", "--zendesk-url", "http://"+addr, "--zendesk-email", "agent@a.test", "--zendesk-token", "tok")
	common := []string{"loadtest", "--url", s.URL(), "--count", "60", "--rate", "0", "--workers", "4", "--customers", "5", "--settle", "20s"}

	code, out, stderr := runCLI(t, env, append(common, "--tenant", withFake, "--fake-zendesk", "--fake-zendesk-addr", addr)...)
	if code != 0 || !strings.Contains(out, "result       PASS") || !strings.Contains(out, "tickets compared") {
		t.Fatalf("tenant with the fake's address: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, env, append(common, "--tenant", add("--name", "B"), "--ticket-share", "0")...)
	if code != 0 || !strings.Contains(out, "result       PASS") {
		t.Fatalf("tenant without Zendesk, orders only: exit %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = runCLI(t, env, append(common, "--tenant", withFake, "--ticket-share", "0")...)
	if code != 1 || !strings.Contains(stderr, "use --fake-zendesk") {
		t.Fatalf("tenant with a Zendesk, without the fake: exit %d %s", code, stderr)
	}
}
