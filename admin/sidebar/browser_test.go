package sidebar

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// parentPage plays Zendesk's side of the app: it POSTs the signed token into the app's iframe, as
// Zendesk does, with ?origin= (its own origin) and &app_guid=, and answers the ZAF client's
// postMessage protocol: the handshake with app.registered, get('ticket.requester') with the
// requester below, invoke('resize') by resizing the iframe. window.zaf records what it saw.
var parentPage = template.Must(template.New("parent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Ticket #4711 – Zendesk (test double)</title>
<style>
body { margin: 0; font: 14px system-ui, sans-serif; color: #2f3941; background: #f8f9f9; }
.top { height: 44px; background: #03363d; color: #fff; display: flex; align-items: center; padding: 0 16px; font-weight: 600; }
.wrap { display: flex; gap: 0; }
.ticket { flex: 1; padding: 20px 24px; }
.ticket h1 { font-size: 20px; margin: 0 0 12px; }
.msg { background: #fff; border: 1px solid #e9ebed; border-radius: 6px; padding: 12px 14px; margin-bottom: 12px; }
.msg .from { font-weight: 600; margin-bottom: 4px; }
aside { width: 340px; background: #fff; border-left: 1px solid #e9ebed; min-height: 900px; }
aside .apphead { padding: 10px 12px; font-weight: 600; border-bottom: 1px solid #e9ebed; }
iframe { border: 0; width: 340px; height: 200px; display: block; }
</style></head>
<body>
<div class="top">Zendesk (test double) · Support</div>
<div class="wrap">
  <main class="ticket">
    <h1>Ticket #4711: Where is my order?</h1>
    <div class="msg"><div class="from">{{.Name}} · requester</div>Hi, I ordered last week and nothing arrived yet. Can you check?</div>
    <div class="msg"><div class="from">Agent</div>Looking into it now.</div>
  </main>
  <aside><div class="apphead">clvd · customer value</div><iframe name="app" id="app" title="clvd"></iframe></aside>
</div>
<form id="launch" method="POST" target="app" action="{{.Action}}"><input type="hidden" name="token" value="{{.Token}}"></form>
<script>
window.zaf = { handshake: false, gets: [], resizes: 0, events: [] };
var requester = {{.Requester}};
var appOrigin = {{.AppOrigin}};
window.addEventListener('message', function (e) {
  if (e.origin !== appOrigin) { return; }
  var m = JSON.parse(e.data);
  var reply = function (o) { e.source.postMessage(JSON.stringify(o), appOrigin); };
  if (m.key === 'iframe.handshake') {
    window.zaf.handshake = m.appGuid === 'test-app-guid';
    reply({ key: 'zaf.app.registered', message: { context: { product: 'support', location: 'ticket_sidebar', ticketId: 4711 }, metadata: { appId: 880001 } } });
  } else if (m.key && m.key.indexOf('iframe.on:') === 0) {
    window.zaf.events.push(m.key.slice(10));
  } else if (m.request === 'get') {
    window.zaf.gets.push(m.params.join(','));
    var result = { errors: {} };
    m.params.forEach(function (p) { if (p === 'ticket.requester') { result[p] = requester; } });
    reply({ id: m.id, result: result });
  } else if (m.request === 'invoke') {
    if (m.params.resize) {
      document.getElementById('app').style.height = m.params.resize[0].height;
      window.zaf.resizes++;
    }
    reply({ id: m.id, result: {} });
  }
});
document.getElementById('launch').submit();
</script>
</body></html>`))

type requesterJS struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// frameEval evaluates expr in the document of the child frame whose URL contains urlPart, in an
// isolated world (same DOM, own globals), and decodes the result.
func frameEval[T any](urlPart, expr string) chromedp.Action[T] {
	return func(ctx context.Context, t *chromedp.Target) (T, error) {
		var zero T
		tree, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return zero, err
		}
		var id cdp.FrameID
		var walk func(*page.FrameTree)
		walk = func(ft *page.FrameTree) {
			for _, c := range ft.ChildFrames {
				if strings.Contains(c.Frame.URL, urlPart) {
					id = c.Frame.ID
				}
				walk(c)
			}
		}
		walk(tree.FrameTree)
		if id == "" {
			return zero, errNoFrame
		}
		w, err := cdp.Call(ctx, t, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: id, WorldName: "clvd-test"})
		if err != nil {
			return zero, err
		}
		return chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) { p.ContextID = w.ExecutionContextID })(ctx, t)
	}
}

var errNoFrame = errors.New("the app frame is not there yet")

// sidebarView is what the test reads off the rendered sidebar.
type sidebarView struct {
	State      string   `json:"state"`
	Name       string   `json:"name"`
	Tier       string   `json:"tier"`
	Segment    string   `json:"segment"`
	Predicted  string   `json:"predicted"`
	Historic   string   `json:"historic"`
	Band       string   `json:"band"`
	Churn      string   `json:"churn"`
	Alive      string   `json:"alive"`
	Next       string   `json:"next"`
	NextHint   string   `json:"nextHint"`
	Orders     string   `json:"orders"`
	Last       string   `json:"last"`
	Reasons    []string `json:"reasons"`
	Paths      int      `json:"paths"`
	Bars       int      `json:"bars"`
	Ahead      int      `json:"ahead"`
	OrderRows  int      `json:"orderRows"`
	Outreach   int      `json:"outreach"`
	NotFound   string   `json:"notFound"`
	ScrollH    int      `json:"scrollH"`
	Foot       string   `json:"foot"`
	ErrorText  string   `json:"errorText"`
	Unscored   bool     `json:"unscored"`
	ChartLabel string   `json:"chartLabel"`
}

const readSidebar = `(() => {
  const q = s => { const e = document.querySelector(s); return e ? e.textContent.trim() : ''; };
  const svg = document.querySelector('#chart svg');
  return {
    state: document.body.getAttribute('data-state') || '',
    name: q('#c-name'), tier: q('#c-tier'), segment: q('#c-segment'),
    predicted: q('#k-predicted'), historic: q('#k-historic'), band: q('#k-band'), churn: q('#k-churn'),
    alive: q('#k-alive'), next: q('#k-next'), nextHint: q('#k-next-hint'), orders: q('#k-orders'), last: q('#k-last'),
    reasons: Array.from(document.querySelectorAll('#reasons li')).map(e => e.textContent),
    paths: document.querySelectorAll('#chart svg path').length,
    bars: document.querySelectorAll('#chart svg rect.bar').length,
    ahead: document.querySelectorAll('#chart svg rect.bar-ahead').length,
    orderRows: document.querySelectorAll('#orders-body tr').length,
    outreach: document.querySelectorAll('#outreach li').length,
    notFound: q('#nf-who'), scrollH: document.documentElement.scrollHeight, foot: q('#foot'),
    errorText: q('#error-text'), unscored: !document.getElementById('c-unscored').hidden,
    chartLabel: svg ? svg.getAttribute('aria-label') : ''
  };
})()`

type parentView struct {
	Handshake bool     `json:"handshake"`
	Gets      []string `json:"gets"`
	Resizes   int      `json:"resizes"`
	Events    []string `json:"events"`
	Height    int      `json:"height"`
}

// TestSidebarBrowser renders the sidebar in headless Chromium inside a page that plays Zendesk,
// against a seeded store, and checks the figures, the chart, the ZAF conversation and the console.
// It saves screenshots to $CLVD_TEST_ARTIFACTS (else a temporary folder) and logs their paths.
func TestSidebarBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing (apt-get install chromium): the browser test must run in CI", chromiumPath)
		}
		t.Skipf("%s not found: browser test skipped (apt-get install chromium to run it)", chromiumPath)
	}
	artifacts := os.Getenv("CLVD_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	now := time.Now()
	e.seedCustomer(t, e.tenant.ID, now)

	// The page that plays Zendesk, on an origin of its own, as Zendesk's is.
	var clvdURL atomic.Value // set once the app's server runs, before the browser asks for a page
	parent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		req := requesterJS{ID: 9001, Email: "ana.lima@example.com", Name: "Ana Lima"}
		if r.URL.Query().Get("who") == "unknown" {
			req = requesterJS{ID: 777, Email: "new.person@example.com", Name: "New Person"}
		}
		origin, app := "http://"+r.Host, clvdURL.Load().(string)
		tok, err := e.fake.SignAppToken(testAppID, e.fake.AppClaims(testAppID, testInstallation, testAgent, time.Now(), 5*time.Minute))
		if err != nil {
			t.Error(err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = parentPage.Execute(w, map[string]any{
			"Action":    template.URL(app + MountPath + "/sidebar?origin=" + url.QueryEscape(origin) + "&app_guid=test-app-guid"),
			"Token":     tok,
			"Requester": req, "Name": req.Name, "AppOrigin": app,
		})
		if err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(parent.Close)
	_, router := newApp(t, e, nil, func(o *Options) { o.FrameAncestors = []string{parent.URL} })
	clvd := httptest.NewServer(router)
	t.Cleanup(clvd.Close)
	clvdURL.Store(clvd.URL)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1000),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)

	var mu sync.Mutex
	var console []chromedp.ConsoleMessage
	messages := chromedp.Console(ctx) // starts the browser, and listens from now on
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m)
			mu.Unlock()
		}
	}()

	// show loads the parent page for a requester and waits for the sidebar to settle in want.
	show := func(who, want string) (sidebarView, parentView) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(parent.URL+"/ticket?who="+who)); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		var v sidebarView
		for {
			var err error
			v, err = chromedp.Run(wctx, frameEval[sidebarView](MountPath+"/sidebar", readSidebar))
			if err == nil && (v.State == want || v.State == "error") {
				break
			}
			if wctx.Err() != nil {
				t.Fatalf("sidebar did not reach %q: last view %+v, error %v", want, v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if v.State != want {
			t.Fatalf("sidebar state %q (%s), want %q", v.State, v.ErrorText, want)
		}
		// Let the last resize reach the parent.
		var p parentView
		for range 50 {
			var err error
			p, err = chromedp.Run(ctx, chromedp.Evaluate[parentView](`({handshake: zaf.handshake, gets: zaf.gets, resizes: zaf.resizes, events: zaf.events, height: document.getElementById('app').offsetHeight})`))
			if err != nil {
				t.Fatal(err)
			}
			if p.Height >= v.ScrollH-2 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return v, p
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	v, p := show("found", "customer")
	shoot("zendesk-sidebar.png")
	digits := func(s string) string { return regexp.MustCompile(`\D`).ReplaceAllString(s, "") }
	checks := []struct {
		what string
		ok   bool
	}{
		{"name", v.Name == "Ana Lima"},
		{"tier", v.Tier == "gold" && v.Segment == "loyal"},
		{"predicted CLV 1234.56 EUR (whole units from 1000)", digits(v.Predicted) == "1235" && strings.Contains(v.Predicted, "€")},
		{"historic CLV 545.39 EUR", digits(v.Historic) == "54539" && strings.Contains(v.Historic, "€")},
		{"churn band", v.Band == "medium" && v.Churn == "47%"},
		{"P(alive)", v.Alive == "83%"},
		{"expected next order", v.Next != "–" && v.NextHint == "in 38 days"},
		{"orders", v.Orders == "4" && strings.HasPrefix(v.Last, "last ")},
		{"churn reasons", len(v.Reasons) == 2 && v.Reasons[0] == "2 open tickets"},
		{"chart paths (axis, today)", v.Paths >= 2},
		{"chart bars: 5 orders + 3 expected", v.Bars == 8 && v.Ahead == 3},
		{"recent orders", v.OrderRows == 5},
		{"past outreach", v.Outreach == 1},
		{"footer", strings.Contains(v.Foot, "bgnbd")},
		{"scored", !v.Unscored},
		{"ZAF handshake with the app guid", p.Handshake},
		{"requester read through ZAF", len(p.Gets) > 0 && p.Gets[0] == "ticket.requester"},
		{"requester changes subscribed", slices.Contains(p.Events, "ticket.requester.id.changed")},
		{"iframe resized to the content", p.Resizes > 0 && p.Height >= v.ScrollH-2 && p.Height > 400},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: view %+v, parent %+v", c.what, v, p)
		}
	}

	v, _ = show("unknown", "notfound")
	shoot("zendesk-sidebar-not-found.png")
	if v.NotFound != "new.person@example.com" {
		t.Errorf("not-found state names %q", v.NotFound)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException:
			t.Errorf("console %s (%s:%d)", m, m.URL, m.Line)
		default:
			t.Logf("console %s", m)
		}
	}
}
