package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/clvd/clvd/admin"
)

const chromiumPath = "/usr/bin/chromium"

// artifactsDir is where the browser test leaves its screenshots and downloads: $CLVD_TEST_ARTIFACTS
// when set (CI keeps it), else a temporary folder.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CLVD_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleLog collects what the page writes to its console.
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *consoleLog) all() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// pageState is what the checks read from the page.
type pageState struct {
	Tiles []string `json:"tiles"`
	KPIs  []struct {
		Key    string `json:"key"`
		Latest string `json:"latest"`
		Dots   int    `json:"dots"`
		Path   string `json:"path"`
	} `json:"kpis"`
	TierCharts   int       `json:"tierCharts"`
	TierBars     int       `json:"tierBars"`
	SegmentBars  int       `json:"segmentBars"`
	HistBars     []float64 `json:"histBars"`
	CLVStats     string    `json:"clvStats"`
	CohortRows   int       `json:"cohortRows"`
	CohortCells  []string  `json:"cohortCells"`
	AtRiskRows   int       `json:"atRiskRows"`
	ZendeskLinks []string  `json:"zendeskLinks"`
	OutreachRows int       `json:"outreachRows"`
	OutreachText string    `json:"outreachText"`
	ModelText    string    `json:"modelText"`
	SettingsIn   int       `json:"settingsInputs"`
	AppText      string    `json:"appText"`
	Errors       []string  `json:"errors"`
	Cookie       string    `json:"cookie"`
	Storage      string    `json:"storage"`
	Title        string    `json:"title"`
}

const readPage = `(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  const text = (s) => { const e = document.querySelector(s); return e ? e.innerText : ''; };
  return {
    tiles: q('#panel-summary .tile .value').map(e => e.textContent),
    kpis: q('#kpis-body .kpi-card').map(c => ({ key: c.dataset.kpi, latest: c.querySelector('.kpi-latest').textContent,
      dots: c.querySelectorAll('circle.dot').length, path: (c.querySelector('path.line') || { getAttribute: () => '' }).getAttribute('d') || '' })),
    tierCharts: q('#tiers-body svg').length,
    tierBars: q('#tiers-body svg rect.bar').length,
    segmentBars: q('#segments-body svg rect.bar').length,
    histBars: q('#clv-body svg rect.bar').map(b => parseFloat(b.getAttribute('height'))),
    clvStats: text('#clv-body dl'),
    cohortRows: q('#cohorts-body table.cohort tbody tr').length,
    cohortCells: q('#cohorts-body td.cell').map(td => td.style.backgroundColor).filter(c => c),
    atRiskRows: q('#at-risk-body tbody tr').length,
    zendeskLinks: q('#at-risk-body a[href*="/agent/users/"]').map(a => a.href),
    outreachRows: q('#outreach-body tbody tr').length,
    outreachText: text('#outreach-body'),
    modelText: text('#model-body'),
    settingsInputs: q('#settings-form [data-path]').length,
    appText: document.getElementById('app').innerText,
    errors: q('#app .error').map(e => e.textContent),
    cookie: document.cookie,
    storage: JSON.stringify(Object.assign({}, sessionStorage, localStorage)),
    title: document.title,
  };
})()`

func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: install it (apt-get install -y chromium)", chromiumPath)
		}
		t.Skipf("%s not found: the browser test is skipped (install it with apt-get install -y chromium; with CI=true this fails)", chromiumPath)
	}
	db := openStore(t)
	d := seedDemo(t, db)
	key := []byte("browser-test-key-0123456789abcdef0123456789")
	api, err := admin.NewHandler(admin.Options{Store: db, Key: key, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	dash, err := New(Options{API: api, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	api.Register(engine.Group("/api/v1"))
	dash.Register(engine)
	srv := httptest.NewServer(engine)
	defer srv.Close()
	token, err := admin.IssueToken(key, d.shop, admin.RoleAdmin, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	artifacts := artifactsDir(t)
	t.Logf("screenshots and downloads: %s", artifacts)
	downloads := filepath.Join(artifacts, "downloads")
	if err := os.RemoveAll(downloads); err != nil { // a download of an earlier run would get another name
		t.Fatal(err)
	}
	if err := os.MkdirAll(downloads, 0o755); err != nil {
		t.Fatal(err)
	}

	profile, err := os.MkdirTemp("", "clvd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 { // the browser's helpers may still write there for a moment
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1366, 768))
	defer cancelAlloc()
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tabCtx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	var console consoleLog
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			console.mu.Lock()
			console.msgs = append(console.msgs, m)
			console.mu.Unlock()
		}
	}()
	// Failed requests the test makes on purpose; the browser logs each as a console error.
	expectedFailures := map[string]string{
		"/admin/session":                           "401", // the page asks for a session before signing in
		"/admin/api/v1/settings":                   "400", // the bad setting (later: 401 after signing out)
		"/admin/api/v1/settings?tenant=" + d.other: "403",
		"/api/v1/settings":                         "401",
	}

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	screenshot := func(name string, a chromedp.Action[[]byte]) {
		t.Helper()
		buf, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if !bytes.HasPrefix(buf, []byte("\x89PNG")) {
			t.Fatalf("screenshot %s is not a PNG", name)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KB)", path, len(buf)/1024)
	}
	loaded := chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`))

	// Sign in.
	step("open the dashboard", chromedp.Navigate(srv.URL+"/admin/"), chromedp.WaitVisible(chromedp.ID("login-form")))
	screenshot("dashboard-login.png", chromedp.CaptureScreenshot())
	step("sign in", chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS("#login-form button")), loaded)

	st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatal(err)
	}
	screenshot("dashboard-top-1366x768.png", chromedp.CaptureScreenshot())
	screenshot("dashboard-full.png", chromedp.FullScreenshot(100))

	// Every panel shows real figures.
	if st.Title != "clvd · Demo Records" || len(st.Errors) > 0 {
		t.Errorf("title %q, errors %q", st.Title, st.Errors)
	}
	if len(st.Tiles) != 6 {
		t.Errorf("summary tiles %q", st.Tiles)
	}
	for _, tile := range st.Tiles {
		if tile == "" || tile == "—" || strings.Contains(tile, "NaN") {
			t.Errorf("summary tile %q in %q", tile, st.Tiles)
		}
	}
	if len(st.KPIs) != 6 {
		t.Errorf("%d KPI charts, want 6", len(st.KPIs))
	}
	for _, k := range st.KPIs {
		if k.Latest == "" || k.Latest == "—" || strings.Contains(k.Latest, "NaN") || k.Dots < 10 || !strings.HasPrefix(k.Path, "M") || strings.Contains(k.Path, "NaN") {
			t.Errorf("KPI %s: latest %q, %d points, path %.40q", k.Key, k.Latest, k.Dots, k.Path)
		}
	}
	if st.TierCharts != 2 || st.TierBars != 10 {
		t.Errorf("tier charts %d with %d bars, want 2 with 10", st.TierCharts, st.TierBars)
	}
	if st.SegmentBars != 8 {
		t.Errorf("segment bars %d, want 8", st.SegmentBars)
	}
	drawn := 0
	for _, h := range st.HistBars {
		if h > 1 {
			drawn++
		}
	}
	if len(st.HistBars) < 10 || drawn < 5 || !strings.Contains(st.CLVStats, "$") {
		t.Errorf("histogram bars %v, stats %q", st.HistBars, st.CLVStats)
	}
	colours := map[string]bool{}
	for _, c := range st.CohortCells {
		colours[c] = true
	}
	// The table covers the history back to the first purchase (the demo's two years), 12 to 24 months.
	if n := st.CohortRows; n < 12 || n > 24 || len(st.CohortCells) < n*(n+1)/2 || len(colours) < 8 {
		t.Errorf("cohort table: %d rows, %d coloured cells, %d colours", st.CohortRows, len(st.CohortCells), len(colours))
	}
	if st.AtRiskRows < 10 || len(st.ZendeskLinks) == 0 {
		t.Errorf("at-risk list: %d rows, Zendesk links %v", st.AtRiskRows, st.ZendeskLinks)
	}
	for _, l := range st.ZendeskLinks {
		if !strings.HasPrefix(l, d.zendesk+"/agent/users/36") {
			t.Errorf("Zendesk link %q", l)
		}
	}
	if st.OutreachRows == 0 && !strings.Contains(st.OutreachText, "No outreach yet") {
		t.Errorf("outreach panel: %q", st.OutreachText)
	}
	if st.OutreachRows == 0 {
		t.Errorf("outreach panel shows no rows although the rescore recorded dry runs: %q", st.OutreachText)
	}
	if !strings.Contains(st.ModelText, "bgnbd") || !strings.Contains(st.ModelText, "Log-likelihood") || !strings.Contains(st.ModelText, "bgnbd.r") {
		t.Errorf("model panel %q", st.ModelText)
	}
	if st.SettingsIn < 10 {
		t.Errorf("settings form has %d fields", st.SettingsIn)
	}
	for _, bad := range append([]string{"NaN", "undefined", "Infinity", "[object Object]", "bravo secret reason"}, d.otherNames...) {
		if strings.Contains(st.AppText, bad) {
			t.Errorf("the page shows %q", bad)
		}
	}
	// The token is nowhere a script can read it; the session cookie is HttpOnly.
	if strings.Contains(st.Cookie, CookieName) || strings.Contains(st.Storage, token) || strings.Contains(st.Storage, strings.Split(token, ".")[2]) {
		t.Errorf("readable credentials: cookie %q, storage %q", st.Cookie, st.Storage)
	}
	// Tenant isolation from the page itself, and the API under /api/v1 takes no cookie.
	status := func(path string) int {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch(`+jsString(path)+`).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status("api/v1/settings?tenant=" + d.other); s != 403 {
		t.Errorf("the shop's session reading the other tenant: %d, want 403", s)
	}
	if s := status("/api/v1/settings"); s != 401 {
		t.Errorf("the session on /api/v1: %d, want 401", s)
	}
	// One picture per panel, without the sticky top bar over it.
	step("unstick the top bar", chromedp.Evaluate[chromedp.Void](`document.querySelector('.topbar').style.position = 'static'`))
	for _, panel := range []string{"kpis", "tiers", "segments", "clv", "model", "cohorts", "at-risk", "outreach", "settings"} {
		screenshot("panel-"+panel+".png", chromedp.Screenshot(chromedp.ID("panel-"+panel)))
	}
	step("stick the top bar", chromedp.Evaluate[chromedp.Void](`document.querySelector('.topbar').style.position = ''`))

	// CSV exports: in the browser for the tables, from the server for the customer list.
	for _, c := range []struct{ button, file, header string }{
		{`#panel-cohorts [data-csv]`, d.shop + "-cohort-retention.csv", "cohort,customers,m0_share"},
		{`#panel-at-risk button[data-csv]`, d.shop + "-at-risk.csv", "id,name,email,tier"},
		{`#panel-kpis [data-csv]`, d.shop + "-kpis-monthly.csv", "month,from,to,retention_rate"},
		{`#customers-csv`, "customers-" + d.shop + ".csv", "id,email,name"},
	} {
		step("export "+c.file, chromedp.Click(chromedp.CSS(c.button)))
		raw := waitFile(t, filepath.Join(downloads, c.file))
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if !strings.HasPrefix(lines[0], c.header) || len(lines) < 3 || strings.Contains(string(raw), "NaN") {
			t.Errorf("%s: %d lines, header %q", c.file, len(lines), lines[0])
		}
		if c.file == "customers-"+d.shop+".csv" && len(lines) != d.customers+1 {
			t.Errorf("server CSV has %d rows, want %d", len(lines)-1, d.customers)
		}
	}

	// Settings: a change round-trips; a bad value shows the API's error and changes nothing.
	step("change settings", chromedp.ScrollIntoView(chromedp.ID("panel-settings")),
		chromedp.SetValue(chromedp.ID("set-tag_prefix"), "dash_"), chromedp.SetValue(chromedp.ID("set-margin"), "0.8"),
		chromedp.Click(chromedp.ID("settings-save")), chromedp.WaitVisible(chromedp.CSS("#settings-body .ok")))
	var stored struct {
		TagPrefix string  `json:"tag_prefix"`
		Margin    float64 `json:"margin"`
	}
	raw, err := db.TenantSettings(context.Background(), d.shop)
	if err != nil || json.Unmarshal(raw, &stored) != nil || stored.TagPrefix != "dash_" || stored.Margin != 0.8 {
		t.Fatalf("stored settings after saving: %s, %v", raw, err)
	}
	// Only what was changed is stored (with what was stored before): the rest keeps following the defaults.
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) != 3 || doc["outreach"] == nil {
		t.Errorf("stored settings after saving two fields: %s", raw)
	}
	step("reload", chromedp.Navigate(srv.URL+"/admin/"), loaded)
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("set-tag_prefix"))); err != nil || v != "dash_" {
		t.Fatalf("tag prefix after a reload: %q, %v", v, err)
	}
	step("save a bad value", chromedp.ScrollIntoView(chromedp.ID("panel-settings")),
		chromedp.SetValue(chromedp.ID("set-tag_prefix"), "Bad-Prefix"), chromedp.Click(chromedp.ID("settings-save")),
		chromedp.WaitVisible(chromedp.CSS("#settings-status .error")))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#settings-status .error")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, `tag_prefix "Bad-Prefix": want 1 to 20 of a-z, 0-9 and _`) {
		t.Errorf("error shown for a bad tag prefix: %q", msg)
	}
	step("unstick the top bar", chromedp.Evaluate[chromedp.Void](`document.querySelector('.topbar').style.position = 'static'`))
	screenshot("dashboard-settings-error.png", chromedp.Screenshot(chromedp.ID("panel-settings")))
	if raw, _ := db.TenantSettings(context.Background(), d.shop); !strings.Contains(string(raw), `"dash_"`) {
		t.Errorf("a refused save changed the settings: %s", raw)
	}

	// Sign out: the session is gone.
	step("sign out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form")))
	if s := status("api/v1/settings"); s != 401 {
		t.Errorf("after signing out: %d, want 401", s)
	}

	// An operator picks the tenant.
	operator, err := admin.IssueToken(key, "", admin.RoleOperator, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	step("sign in as operator", chromedp.SetValue(chromedp.ID("token"), operator), chromedp.Click(chromedp.CSS("#login-form button")), loaded)
	type pick struct {
		Options []string `json:"options"`
		Tenant  string   `json:"tenant"`
		Text    string   `json:"text"`
	}
	readPick := `({ options: Array.from(document.querySelectorAll('#tenant-picker option')).map(o => o.value),
		tenant: document.getElementById('tenant-name').textContent, text: document.getElementById('app').innerText })`
	p, err := chromedp.Run(ctx, chromedp.Evaluate[pick](readPick))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.Options, d.shop) || !slices.Contains(p.Options, d.other) || p.Tenant != "Demo Records" {
		t.Fatalf("operator's tenant picker %v, showing %q", p.Options, p.Tenant)
	}
	step("pick the other tenant", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('tenant-picker');
		s.value = `+jsString(d.other)+`; s.dispatchEvent(new Event('change')); })()`), loaded)
	if p, err = chromedp.Run(ctx, chromedp.Evaluate[pick](readPick)); err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "Bravo Outfitters" || !strings.Contains(p.Text, d.otherNames[0]) || strings.Contains(p.Text, "NaN") {
		t.Errorf("operator on the other tenant sees %q: %.300q", p.Tenant, p.Text)
	}
	screenshot("dashboard-operator-other-tenant.png", chromedp.CaptureScreenshot())
	step("sign out the operator", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form")))

	// No console errors or warnings, except the browser's notes on the failed requests above.
	time.Sleep(300 * time.Millisecond)
	for _, m := range console.all() {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleWarning && !m.IsException() {
			continue
		}
		if m.Source == "network" {
			path := strings.TrimPrefix(m.URL, srv.URL)
			if code, ok := expectedFailures[path]; ok && strings.Contains(m.Text, code) || path == "/admin/api/v1/settings" && strings.Contains(m.Text, "401") {
				continue
			}
		}
		t.Errorf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitFile waits for a download to land and returns its content.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("download %s did not arrive; the folder has %v", filepath.Base(path), names)
	return nil
}
