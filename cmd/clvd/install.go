package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/integrations/zendesk"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/store"
)

// zendeskInstallStateKey is the tenant state key under which install-zendesk records what it set
// up (ids only; the secrets live, encrypted, on the tenant).
const zendeskInstallStateKey = "zendesk_install"

type zendeskInstallState struct {
	zendesk.Installation
	ZendeskURL       string     `json:"zendesk_url"`
	InstalledByEmail string     `json:"installed_by,omitempty"`
	InstalledAt      time.Time  `json:"installed_at"`
	UninstalledAt    *time.Time `json:"uninstalled_at,omitempty"`
}

// Rate limits during an install are waited out when Zendesk asks for a short wait.
const (
	installRateLimitRetries = 3
	installMaxRateLimitWait = 2 * time.Minute
)

var subdomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// runInstallZendesk is `clvd tenant install-zendesk TENANT_ID [--subdomain S | --zendesk-url URL]
// --zendesk-email E --zendesk-token T [--triggers] [--public-url URL] [--json]`: it connects a
// Zendesk account to the tenant (what README's "Connect a Zendesk account by hand" does in Admin
// Center), idempotently, and stores the credentials and webhook signing secrets on the tenant.
func runInstallZendesk(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "tenant install-zendesk")
	subdomain := fs.String("subdomain", "", "Zendesk subdomain: acme for https://acme.zendesk.com")
	zendeskURL := fs.String("zendesk-url", "", "Zendesk account base URL, https://SUBDOMAIN.zendesk.com (instead of --subdomain)")
	email := fs.String("zendesk-email", "", "email of the Zendesk admin the API token belongs to (default: the tenant's stored one)")
	token := fs.String("zendesk-token", "", `Zendesk API token; "-" reads it from stdin (default: the tenant's stored one)`)
	triggers := fs.Bool("triggers", false, "also create a trigger webhook and a trigger, for satisfaction ratings and requester emails")
	publicURL := fs.String("public-url", "", "base URL Zendesk reaches clvd at (default CLVD_PUBLIC_URL)")
	asJSON := fs.Bool("json", false, "print one JSON object and nothing else on stdout")
	var f serverFlags
	f.bindStore(fs)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(env.Stderr, "usage: clvd tenant install-zendesk TENANT_ID [--subdomain S | --zendesk-url URL] --zendesk-email E --zendesk-token T [--triggers] [--public-url URL] [--json]")
		return errUsage
	}
	id := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "clvd tenant install-zendesk: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *subdomain != "" && *zendeskURL != "" {
		fmt.Fprintln(env.Stderr, "clvd tenant install-zendesk: give --subdomain or --zendesk-url, not both")
		return errUsage
	}
	if *token == "-" {
		read, err := readToken(env.Stdin)
		if err != nil {
			return err
		}
		*token = read
	}
	cfg, db, err := openFromFlags(ctx, env, &f)
	if err != nil {
		return err
	}
	defer db.Close()
	webhookURL, err := zendeskWebhookURL(cfg, *publicURL, id)
	if err != nil {
		return err
	}
	t, err := db.GetTenant(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}

	base := t.Zendesk.BaseURL
	switch {
	case *subdomain != "":
		if !subdomainPattern.MatchString(*subdomain) {
			return fmt.Errorf("--subdomain %q: want the lower-case name before .zendesk.com, e.g. acme", *subdomain)
		}
		base = "https://" + *subdomain + ".zendesk.com"
	case *zendeskURL != "":
		base = *zendeskURL
	}
	if *email == "" {
		*email = t.Zendesk.Email
	}
	if *token == "" {
		*token = t.Zendesk.APIToken
	}
	if base == "" || *email == "" || *token == "" {
		return errors.New("the Zendesk account is not known yet: give --subdomain (or --zendesk-url), --zendesk-email and --zendesk-token")
	}
	if !strings.Contains(*email, "@") {
		return fmt.Errorf("--zendesk-email %q is not an email address", *email)
	}
	u, err := safehttp.CheckBaseURL(base, cfg.AllowLocalTargets)
	if err != nil {
		return fmt.Errorf("--zendesk-url: %w", err)
	}
	base = strings.TrimRight(u.String(), "/")
	c, err := zendesk.NewClient(base, *email, *token, safehttp.NewClient(cfg.AllowLocalTargets, 30*time.Second))
	if err != nil {
		return redact(err, *token)
	}

	inst, err := zendesk.Install(ctx, c, zendesk.InstallOptions{
		WebhookURL:       webhookURL,
		Name:             "clvd " + t.ID,
		Triggers:         *triggers,
		RateLimitRetries: installRateLimitRetries,
		MaxRateLimitWait: installMaxRateLimitWait,
		OnRateLimit: func(d time.Duration) {
			fmt.Fprintf(env.Stderr, "Zendesk rate limit: waiting %s\n", d)
		},
	})
	if err != nil {
		if len(inst.Steps) > 0 {
			err = fmt.Errorf("%w\n(some objects were already set up in Zendesk; nothing was stored on the tenant: run the command again to finish, it creates nothing twice)", err)
		}
		return redact(err, *token)
	}

	previousSecret := t.Zendesk.WebhookSecret
	t.Zendesk.BaseURL, t.Zendesk.Email, t.Zendesk.APIToken = base, *email, *token
	t.Zendesk.WebhookSecret = strings.Join(inst.Secrets(), ",")
	if err := db.UpdateTenant(ctx, t); err != nil {
		return redact(fmt.Errorf("storing the Zendesk credentials on tenant %s: %w (run the command again: it creates nothing twice)", t.ID, err), *token)
	}
	state := zendeskInstallState{Installation: inst, ZendeskURL: base, InstalledByEmail: inst.InstalledBy.Email, InstalledAt: time.Now().UTC()}
	raw, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := db.PutTenantState(ctx, t.ID, zendeskInstallStateKey, raw); err != nil {
		return fmt.Errorf("recording the installation on tenant %s: %w (run the command again: it creates nothing twice)", t.ID, err)
	}

	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(struct {
			TenantID      string                `json:"tenant_id"`
			ZendeskURL    string                `json:"zendesk_url"`
			WebhookURL    string                `json:"webhook_url"`
			User          map[string]string     `json:"user"`
			Installation  zendesk.Installation  `json:"installation"`
			Steps         []zendesk.InstallStep `json:"steps"`
			SecretsStored int                   `json:"secrets_stored"`
		}{t.ID, base, webhookURL, map[string]string{"id": inst.InstalledBy.ID, "name": inst.InstalledBy.Name, "email": inst.InstalledBy.Email, "role": inst.InstalledBy.Role},
			inst, inst.Steps, len(inst.Secrets())})
	}
	fmt.Fprintf(env.Stdout, "Zendesk %s: API credentials work (%s <%s>, %s)\nwebhook URL: %s\n\n", base, inst.InstalledBy.Name, inst.InstalledBy.Email, inst.InstalledBy.Role, webhookURL)
	printSteps(env.Stdout, inst.Steps, map[bool]string{true: "created", false: "exists"})
	fmt.Fprintf(env.Stdout, "\ntenant %s: stored the Zendesk API credentials and %d webhook signing secret(s)", t.ID, len(inst.Secrets()))
	if previousSecret != "" && previousSecret != t.Zendesk.WebhookSecret {
		fmt.Fprint(env.Stdout, ", replacing the previously stored one(s)")
	}
	fmt.Fprintln(env.Stdout, ".\nIf not done yet, enable tags on users in Admin Center (People > Configuration > Tags): clvd writes its tags to users too.")
	return nil
}

// runUninstallZendesk is `clvd tenant uninstall-zendesk TENANT_ID [--remove-user-fields] [--json]`:
// it removes what install-zendesk set up in Zendesk (the trigger, the webhooks; the user fields,
// which hold every customer's scores, only with --remove-user-fields) and clears the tenant's
// webhook secret. The API credentials stay stored (they still write tags). Running it again is
// harmless.
func runUninstallZendesk(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "tenant uninstall-zendesk")
	removeFields := fs.Bool("remove-user-fields", false, "also delete the clv_* user fields and their values (Zendesk never lets those keys be used again)")
	publicURL := fs.String("public-url", "", "base URL Zendesk reaches clvd at, to find the webhooks when no installation was recorded (default CLVD_PUBLIC_URL)")
	asJSON := fs.Bool("json", false, "print one JSON object and nothing else on stdout")
	var f serverFlags
	f.bindStore(fs)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(env.Stderr, "usage: clvd tenant uninstall-zendesk TENANT_ID [--remove-user-fields] [--json]")
		return errUsage
	}
	id := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "clvd tenant uninstall-zendesk: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	cfg, db, err := openFromFlags(ctx, env, &f)
	if err != nil {
		return err
	}
	defer db.Close()
	t, err := db.GetTenant(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}
	if t.Zendesk.BaseURL == "" || t.Zendesk.Email == "" || t.Zendesk.APIToken == "" {
		return fmt.Errorf("tenant %s has no Zendesk API credentials: there is nothing clvd can uninstall with", t.ID)
	}

	state := zendeskInstallState{ZendeskURL: t.Zendesk.BaseURL}
	raw, _, err := db.GetTenantState(ctx, t.ID, zendeskInstallStateKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(raw, &state); err != nil {
			return fmt.Errorf("tenant %s: stored %s state: %w", t.ID, zendeskInstallStateKey, err)
		}
	}
	if state.WebhookURL == "" {
		// No recorded installation: find the webhooks by the URL install-zendesk would have used.
		if state.WebhookURL, err = zendeskWebhookURL(cfg, *publicURL, t.ID); err != nil {
			return err
		}
	}
	u, err := safehttp.CheckBaseURL(t.Zendesk.BaseURL, cfg.AllowLocalTargets)
	if err != nil {
		return fmt.Errorf("tenant %s's Zendesk URL: %w", t.ID, err)
	}
	token := t.Zendesk.APIToken
	c, err := zendesk.NewClient(strings.TrimRight(u.String(), "/"), t.Zendesk.Email, token, safehttp.NewClient(cfg.AllowLocalTargets, 30*time.Second))
	if err != nil {
		return redact(err, token)
	}
	res, err := zendesk.Uninstall(ctx, c, state.Installation, zendesk.UninstallOptions{
		RemoveUserFields: *removeFields,
		RateLimitRetries: installRateLimitRetries,
		MaxRateLimitWait: installMaxRateLimitWait,
		OnRateLimit: func(d time.Duration) {
			fmt.Fprintf(env.Stderr, "Zendesk rate limit: waiting %s\n", d)
		},
	})
	if err != nil {
		return redact(err, token)
	}

	secretCleared := t.Zendesk.WebhookSecret != ""
	if secretCleared {
		t.Zendesk.WebhookSecret = ""
		if err := db.UpdateTenant(ctx, t); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	state.Installation, state.UninstalledAt = res.Remaining, &now
	if raw, err = json.Marshal(state); err != nil {
		return err
	}
	if err := db.PutTenantState(ctx, t.ID, zendeskInstallStateKey, raw); err != nil {
		return err
	}

	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(struct {
			TenantID      string                `json:"tenant_id"`
			ZendeskURL    string                `json:"zendesk_url"`
			Removed       []zendesk.InstallStep `json:"removed"`
			AlreadyGone   []zendesk.InstallStep `json:"already_gone"`
			Remaining     zendesk.Installation  `json:"remaining"`
			SecretCleared bool                  `json:"webhook_secret_cleared"`
		}{t.ID, t.Zendesk.BaseURL, nonNil(res.Removed), nonNil(res.AlreadyGone), res.Remaining, secretCleared})
	}
	fmt.Fprintf(env.Stdout, "Zendesk %s, webhook URL %s\n\n", t.Zendesk.BaseURL, state.WebhookURL)
	if len(res.Removed)+len(res.AlreadyGone) == 0 {
		fmt.Fprintln(env.Stdout, "nothing to remove: no clvd webhook or trigger found")
	}
	printSteps(env.Stdout, res.Removed, map[bool]string{false: "removed"})
	printSteps(env.Stdout, res.AlreadyGone, map[bool]string{false: "was gone"})
	if len(res.Remaining.UserFieldIDs) > 0 {
		fmt.Fprintf(env.Stdout, "\nkept %d clv_* user field(s) and their values (--remove-user-fields deletes them for good)\n", len(res.Remaining.UserFieldIDs))
	}
	if secretCleared {
		fmt.Fprintf(env.Stdout, "\ntenant %s: cleared the Zendesk webhook signing secret(s); the API credentials stay stored\n", t.ID)
	}
	return nil
}

// zendeskWebhookURL is where Zendesk sends the tenant's events: the public base URL (--public-url,
// else CLVD_PUBLIC_URL, else the listen address) + /webhooks/ID/zendesk. Zendesk must reach it, so
// it gets the same check as a helpdesk URL: https and a public address unless
// CLVD_ALLOW_LOCAL_TARGETS.
func zendeskWebhookURL(cfg *config.Config, publicURL, tenantID string) (string, error) {
	base, what := cfg.BaseURL(), "CLVD_PUBLIC_URL"
	if publicURL != "" {
		base, what = publicURL, "--public-url"
	}
	u, err := safehttp.CheckURL(base, cfg.AllowLocalTargets)
	if err != nil {
		return "", fmt.Errorf("%s: Zendesk must reach clvd at it: %w", what, err)
	}
	return strings.TrimRight(u.String(), "/") + "/webhooks/" + url.PathEscape(tenantID) + "/zendesk", nil
}

func printSteps(w io.Writer, steps []zendesk.InstallStep, verb map[bool]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t(%s)\n", verb[s.Created], s.Object, s.Name, s.ID)
		if s.Note != "" {
			fmt.Fprintf(tw, "  \t\tnote: %s\t\n", s.Note)
		}
	}
	_ = tw.Flush()
}

func nonNil(steps []zendesk.InstallStep) []zendesk.InstallStep {
	if steps == nil {
		return []zendesk.InstallStep{}
	}
	return steps
}

// readToken reads an API token from the first line of r (for --zendesk-token -), so it need not
// appear in the process list or shell history.
func readToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the Zendesk API token from stdin: %w", err)
	}
	token := strings.TrimSpace(line)
	if token == "" {
		return "", errors.New("--zendesk-token -: stdin holds no token")
	}
	return token, nil
}

// redact hides the API token in err's message, whatever echoed it, keeping errors.Is/As working.
func redact(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return redactedError{err: err, token: token}
}

type redactedError struct {
	err   error
	token string
}

func (e redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.token, "[redacted]")
}
func (e redactedError) Unwrap() error { return e.err }
