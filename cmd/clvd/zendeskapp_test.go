package main

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clvd/clvd/integrations/zendesk/zendesktest"
	"github.com/clvd/clvd/store"
)

// appManifest is the part of manifest.json the tests read.
type appManifest struct {
	Name   string `json:"name"`
	Author struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		URL   string `json:"url"`
	} `json:"author"`
	DefaultLocale string `json:"defaultLocale"`
	Private       bool   `json:"private"`
	Location      map[string]map[string]struct {
		URL      string `json:"url"`
		Flexible bool   `json:"flexible"`
	} `json:"location"`
	Version          string `json:"version"`
	FrameworkVersion string `json:"frameworkVersion"`
	SignedURLs       bool   `json:"signedUrls"`
}

// readAppZip opens a packaged app and returns its files by name.
func readAppZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	return files
}

func sidebarURLOf(t *testing.T, files map[string][]byte) (appManifest, string) {
	t.Helper()
	var m appManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, files["manifest.json"])
	}
	return m, m.Location["support"]["ticket_sidebar"].URL
}

func TestZendeskAppPackage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "app.zip")
	code, stdout, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": dir},
		"zendesk-app", "package", "--out", out, "--service-url", "https://clvd.example.com/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "Upload private app") || !strings.Contains(stdout, "https://clvd.example.com/apps/zendesk/sidebar") {
		t.Errorf("stdout %q", stdout)
	}
	files := readAppZip(t, out)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"assets/logo-small.png", "assets/logo.png", "manifest.json", "translations/en.json"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	m, sidebarURL := sidebarURLOf(t, files)
	if m.FrameworkVersion != "2.0" || !m.SignedURLs || m.DefaultLocale != "en" || !m.Private || m.Name != "clvd customer value" ||
		m.Version != "1.0.0" || m.Author.Name != "clvd" || m.Author.Email != "noreply@clvd.example.com" || m.Author.URL != "https://clvd.example.com" ||
		sidebarURL != "https://clvd.example.com/apps/zendesk/sidebar" || !m.Location["support"]["ticket_sidebar"].Flexible {
		t.Errorf("manifest %+v", m)
	}
	var tr struct {
		App map[string]string `json:"app"`
	}
	if err := json.Unmarshal(files["translations/en.json"], &tr); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "description", "short_description", "long_description", "installation_instructions"} {
		if tr.App[k] == "" {
			t.Errorf("translations/en.json: app.%s is empty", k)
		}
	}
	for name, size := range map[string]int{"assets/logo.png": 320, "assets/logo-small.png": 128} {
		img, err := png.Decode(bytes.NewReader(files[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("%s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), size, size)
		}
	}

	// The same inputs give the same bytes.
	first, _ := os.ReadFile(out)
	if code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": dir}, "zendesk-app", "package", "--out", out, "--service-url", "https://clvd.example.com"); code != 0 {
		t.Fatal(stderr)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(first, again) {
		t.Error("packaging twice gave different zips")
	}

	// The service URL defaults to CLVD_PUBLIC_URL; --tenant goes into the sidebar URL.
	out2 := filepath.Join(dir, "tenant.zip")
	code, _, stderr = runCLI(t, map[string]string{"CLVD_DATA_DIR": dir, "CLVD_PUBLIC_URL": "https://clv.acme.io/base"},
		"zendesk-app", "package", "--out", out2, "--tenant", "t_abc123", "--app-version", "2.1.0", "--author-email", "ops@acme.io")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, sidebarURL = sidebarURLOf(t, readAppZip(t, out2))
	if sidebarURL != "https://clv.acme.io/base/apps/zendesk/sidebar/t_abc123" || m.Version != "2.1.0" || m.Author.Email != "ops@acme.io" {
		t.Errorf("manifest %+v, sidebar %s", m, sidebarURL)
	}

	// Without CLVD_PUBLIC_URL it warns that Zendesk cannot reach the default.
	code, _, stderr = runCLI(t, map[string]string{"CLVD_DATA_DIR": dir}, "zendesk-app", "package", "--out", filepath.Join(dir, "local.zip"))
	if code != 0 || !strings.Contains(stderr, "CLVD_PUBLIC_URL is not set") {
		t.Errorf("default URL: exit %d, stderr %q", code, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no subcommand", nil},
		{"unknown subcommand", []string{"publish"}},
		{"no --out", []string{"package", "--service-url", "https://x.example.com"}},
		{"ftp URL", []string{"package", "--out", out, "--service-url", "ftp://x.example.com"}},
		{"URL with a query", []string{"package", "--out", out, "--service-url", "https://x.example.com/?a=1"}},
		{"bad tenant", []string{"package", "--out", out, "--service-url", "https://x.example.com", "--tenant", "../x"}},
		{"bad version", []string{"package", "--out", out, "--service-url", "https://x.example.com", "--app-version", "one"}},
		{"stray argument", []string{"package", "--out", out, "--service-url", "https://x.example.com", "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": dir}, append([]string{"zendesk-app"}, tc.args...)...); code != 2 || stderr == "" {
				t.Fatalf("exit %d (want 2), stderr %q", code, stderr)
			}
		})
	}
}

// TestZendeskAppServedByService packages the app for a running service and loads its sidebar URL
// the way Zendesk does: a signed POST, then the page's data call with the session it carries.
func TestZendeskAppServedByService(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t, backend{})
	s := startTestService(t, cfg)

	fake := zendesktest.New(t, "api@acme.example", "zd-T0KEN")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddApp("31337", key)
	tn := &store.Tenant{Name: "Acme", Zendesk: store.ZendeskAccount{BaseURL: fake.URL, Email: "api@acme.example", APIToken: "zd-T0KEN"}}
	if err := s.db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "app.zip")
	if code, _, stderr := runCLI(t, map[string]string{"CLVD_DATA_DIR": cfg.DataDir}, "zendesk-app", "package", "--out", out, "--service-url", s.URL()); code != 0 {
		t.Fatalf("package: %s", stderr)
	}
	_, sidebarURL := sidebarURLOf(t, readAppZip(t, out))

	claims := fake.AppClaims("31337", "555", "42", time.Now(), 5*time.Minute)
	tok, err := fake.SignAppToken("31337", claims)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(sidebarURL+"?origin=https%3A%2F%2Facme.zendesk.com&app_guid=g", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("app_guid") != "g" {
		t.Fatalf("sidebar page: %d %s", resp.StatusCode, page)
	}
	m := regexp.MustCompile(`<meta name="clvd-session" content="([^"]+)">`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no session in the page:\n%s", page)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/apps/zendesk/api/customer?email=nobody@example.com", nil)
	req.Header.Set("Authorization", "Bearer "+string(m[1]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"found":false`) {
		t.Fatalf("customer API: %d %s", resp.StatusCode, body)
	}
	if fake.AppKeyRequests("31337") != 1 {
		t.Errorf("public key fetched %d times, want 1", fake.AppKeyRequests("31337"))
	}
}
