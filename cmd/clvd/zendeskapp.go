package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/clvd/clvd/admin/sidebar"
)

// runZendeskApp is `clvd zendesk-app`: for now one subcommand, package.
func runZendeskApp(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: clvd zendesk-app package --out app.zip [--service-url URL] [--tenant ID]")
		return errUsage
	}
	switch args[0] {
	case "package":
		return zendeskAppPackage(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "clvd zendesk-app: unknown subcommand %q (want package)\n", args[0])
	return errUsage
}

// zendeskApp describes the app to package.
type zendeskApp struct {
	Name        string
	Version     string
	AuthorName  string
	AuthorEmail string
	ServiceURL  string // where Zendesk reaches clvd
	Tenant      string // optional: the tenant, in the sidebar URL
}

// zendeskAppPackage writes an installable Zendesk Apps Framework v2 app: a server-side app whose
// ticket sidebar is clvd's page (admin/sidebar), with signed URLs.
//
//	clvd zendesk-app package --out app.zip [--service-url URL] [--tenant ID] [--name N] [--app-version V]
//	                         [--author-name N] [--author-email E]
//
// --service-url defaults to CLVD_PUBLIC_URL. Without --tenant the service finds the tenant from the
// Zendesk account the request comes from (one package serves every tenant); with it, the sidebar
// URL names the tenant (needed when several tenants share one Zendesk account).
func zendeskAppPackage(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "zendesk-app package")
	out := fs.String("out", "", "the zip file to write (required)")
	serviceURL := fs.String("service-url", "", "the base URL Zendesk reaches clvd at (default CLVD_PUBLIC_URL)")
	tenant := fs.String("tenant", "", "name this tenant in the sidebar URL (default: found from the Zendesk account)")
	name := fs.String("name", "clvd customer value", "the app's name in Zendesk")
	version := fs.String("app-version", "1.0.0", "the app's version (x.y.z)")
	authorName := fs.String("author-name", "clvd", "the app author's name")
	authorEmail := fs.String("author-email", "", "the app author's email (default noreply@ the service's host)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(env.Stderr, "clvd zendesk-app package: "+format+"\n", a...)
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return usageErr("--out is required: the zip file to write")
	}
	app := zendeskApp{Name: strings.TrimSpace(*name), Version: strings.TrimSpace(*version), AuthorName: strings.TrimSpace(*authorName),
		AuthorEmail: strings.TrimSpace(*authorEmail), ServiceURL: strings.TrimSpace(*serviceURL), Tenant: strings.TrimSpace(*tenant)}
	if app.ServiceURL == "" {
		cfg, err := loadConfig(env, nil)
		if err != nil {
			return err
		}
		app.ServiceURL = cfg.BaseURL()
		if strings.TrimSpace(env.Getenv("CLVD_PUBLIC_URL")) == "" {
			fmt.Fprintf(env.Stderr, "clvd zendesk-app package: CLVD_PUBLIC_URL is not set: using %s, which Zendesk cannot reach; pass --service-url https://…\n", app.ServiceURL)
		}
	}
	u, err := checkServiceURL(app.ServiceURL)
	if err != nil {
		return usageErr("--service-url: %v", err)
	}
	app.ServiceURL = strings.TrimRight(u.String(), "/")
	if u.Scheme == "http" {
		fmt.Fprintf(env.Stderr, "clvd zendesk-app package: %s is plain http: Zendesk (https) will not show it; fine for a local trial only\n", app.ServiceURL)
	}
	if app.AuthorEmail == "" {
		host := u.Hostname()
		if !strings.Contains(host, ".") || net.ParseIP(host) != nil {
			host = "example.com"
		}
		app.AuthorEmail = "noreply@" + host
	}
	switch {
	case app.Name == "" || len(app.Name) > 80:
		return usageErr("--name must be 1 to 80 characters")
	case !appVersion.MatchString(app.Version):
		return usageErr("--app-version %q: want x.y.z", app.Version)
	case app.AuthorName == "":
		return usageErr("--author-name must not be empty")
	case !strings.Contains(app.AuthorEmail, "@") || strings.ContainsAny(app.AuthorEmail, " <>"):
		return usageErr("--author-email %q is not an email address", app.AuthorEmail)
	case app.Tenant != "" && !tenantID.MatchString(app.Tenant):
		return usageErr("--tenant %q: want a tenant id such as t_abc123 (see 'clvd tenant list')", app.Tenant)
	}

	data, err := buildZendeskApp(app)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s: Zendesk app %q %s\nsidebar URL: %s\n", *out, app.Name, app.Version,
		sidebar.SidebarURL(app.ServiceURL, app.Tenant))
	fmt.Fprintln(env.Stdout, "upload it in Zendesk Admin Center > Apps and integrations > Zendesk Support apps > Upload private app")
	return nil
}

var (
	appVersion = regexp.MustCompile(`^[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}$`)
	tenantID   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// checkServiceURL accepts an absolute http(s) URL with no query, fragment or credentials.
func checkServiceURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("does not parse as a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q: want https://HOST[/PATH]", raw)
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q: no credentials, query or fragment, please", raw)
	}
	return u, nil
}

// zipTime stamps every file, so the same inputs give the same zip.
var zipTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// buildZendeskApp returns the app zip: manifest.json, translations/en.json, assets/logo.png
// (320×320) and assets/logo-small.png (128×128).
func buildZendeskApp(app zendeskApp) ([]byte, error) {
	manifest := map[string]any{
		"name":          app.Name,
		"author":        map[string]string{"name": app.AuthorName, "email": app.AuthorEmail, "url": app.ServiceURL},
		"defaultLocale": "en",
		"private":       true,
		"location": map[string]any{
			"support": map[string]any{
				"ticket_sidebar": map[string]any{"url": sidebar.SidebarURL(app.ServiceURL, app.Tenant), "flexible": true},
			},
		},
		"version":          app.Version,
		"frameworkVersion": "2.0",
		"signedUrls":       true,
	}
	translations := map[string]any{
		"app": map[string]any{
			"name":        app.Name,
			"description": "Customer lifetime value and churn risk of the ticket's requester, from clvd.",
			"short_description": "See the requester's predicted and historic value, churn risk and what raised it, " +
				"expected next order and recent orders, next to the ticket.",
			"long_description": "clvd learns each customer's value from your shop's orders and your tickets. This app shows, " +
				"for the ticket's requester: predicted and historic CLV, value tier and RFM segment, churn risk with the " +
				"signals that raised it, the chance they are still active, the expected next order, a chart of past orders " +
				"and expected purchases ahead, recent orders, past outreach and recent tickets.",
			"installation_instructions": "Connect this Zendesk account to clvd first ('clvd tenant install-zendesk'). " +
				"The app loads from " + app.ServiceURL + "; Zendesk signs each load and clvd checks the signature.",
		},
	}
	logo, err := encodeLogo(320)
	if err != nil {
		return nil, err
	}
	small, err := encodeLogo(128)
	if err != nil {
		return nil, err
	}
	mj, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	tj, err := json.MarshalIndent(translations, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"manifest.json", append(mj, '\n')},
		{"translations/en.json", append(tj, '\n')},
		{"assets/logo.png", logo},
		{"assets/logo-small.png", small},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: zipTime})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeLogo draws clvd's logo at size×size: a rounded dark-teal square with three rising bars and
// an outlined fourth, the sidebar chart's "orders and expected purchases ahead".
func encodeLogo(size int) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	bg := color.NRGBA{R: 0x03, G: 0x36, B: 0x3d, A: 0xff}
	bar := color.NRGBA{R: 0x78, G: 0xc8, B: 0xf0, A: 0xff}
	s := float64(size)
	radius := s * 0.18
	inside := func(x, y float64) bool { // the rounded square
		cx := min(max(x, radius), s-radius)
		cy := min(max(y, radius), s-radius)
		return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= radius*radius
	}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if inside(float64(x)+0.5, float64(y)+0.5) {
				img.SetNRGBA(x, y, bg)
			}
		}
	}
	base := int(s * 0.78)
	w := int(s * 0.12)
	line := max(1, size/64)
	for i, h := range []float64{0.22, 0.34, 0.48, 0.40} {
		x0 := int(s*0.17) + i*int(s*0.18)
		y0 := base - int(s*h)
		for y := y0; y < base; y++ {
			for x := x0; x < x0+w; x++ {
				edge := x < x0+line || x >= x0+w-line || y < y0+line || y >= base-line
				if i < 3 || edge {
					img.SetNRGBA(x, y, bar)
				}
			}
		}
	}
	for x := int(s * 0.12); x < int(s*0.88); x++ { // baseline
		for y := base; y < base+line; y++ {
			img.SetNRGBA(x, y, color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFileAtomic writes data to path through a temporary file in the same folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".clvd-app-*.zip")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
