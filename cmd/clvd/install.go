package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clvd/clvd/admin"
	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/integrations/zendesk"
)

// The install state is admin's: the CLI and the admin API share one implementation (admin/zendesk.go).
const zendeskInstallStateKey = admin.ZendeskInstallStateKey

type zendeskInstallState = admin.ZendeskInstallState

// Rate limits during an install are waited out when Zendesk asks for a short wait.
const (
	installRateLimitRetries = 3
	installMaxRateLimitWait = 2 * time.Minute
)

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
	publicBase, publicName := zendeskPublicURL(cfg, *publicURL)
	res, err := admin.InstallZendesk(ctx, db, admin.ZendeskInstallRequest{
		TenantID: id, Subdomain: *subdomain, ZendeskURL: *zendeskURL, Email: *email, APIToken: *token, Triggers: *triggers,
		PublicURL: publicBase, AllowLocalTargets: cfg.AllowLocalTargets,
		Names: admin.ZendeskFieldNames{Subdomain: "--subdomain", ZendeskURL: "--zendesk-url", Email: "--zendesk-email",
			APIToken: "--zendesk-token", PublicURL: publicName},
		RateLimit: cliRateLimit(env),
	})
	if err != nil {
		return err
	}

	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	fmt.Fprintf(env.Stdout, "Zendesk %s: API credentials work (%s <%s>, %s)\nwebhook URL: %s\n\n", res.ZendeskURL, res.User.Name, res.User.Email, res.User.Role, res.WebhookURL)
	printSteps(env.Stdout, res.Steps, map[bool]string{true: "created", false: "exists"})
	fmt.Fprintf(env.Stdout, "\ntenant %s: stored the Zendesk API credentials and %d webhook signing secret(s)", res.TenantID, res.SecretsStored)
	if res.SecretsReplaced {
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
	publicBase, publicName := zendeskPublicURL(cfg, *publicURL)
	res, err := admin.UninstallZendesk(ctx, db, admin.ZendeskUninstallRequest{
		TenantID: id, RemoveUserFields: *removeFields, PublicURL: publicBase, AllowLocalTargets: cfg.AllowLocalTargets,
		Names: admin.ZendeskFieldNames{PublicURL: publicName}, RateLimit: cliRateLimit(env),
	})
	if err != nil {
		return err
	}

	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	fmt.Fprintf(env.Stdout, "Zendesk %s, webhook URL %s\n\n", res.ZendeskURL, res.WebhookURL)
	if len(res.Removed)+len(res.AlreadyGone) == 0 {
		fmt.Fprintln(env.Stdout, "nothing to remove: no clvd webhook or trigger found")
	}
	printSteps(env.Stdout, res.Removed, map[bool]string{false: "removed"})
	printSteps(env.Stdout, res.AlreadyGone, map[bool]string{false: "was gone"})
	if len(res.Remaining.UserFieldIDs) > 0 {
		fmt.Fprintf(env.Stdout, "\nkept %d clv_* user field(s) and their values (--remove-user-fields deletes them for good)\n", len(res.Remaining.UserFieldIDs))
	}
	if res.SecretCleared {
		fmt.Fprintf(env.Stdout, "\ntenant %s: cleared the Zendesk webhook signing secret(s); the API credentials stay stored\n", res.TenantID)
	}
	return nil
}

// zendeskPublicURL is the base URL Zendesk reaches clvd at, and its name for error messages:
// --public-url, else CLVD_PUBLIC_URL (else the listen address: config.BaseURL).
func zendeskPublicURL(cfg *config.Config, flag string) (base, name string) {
	if flag != "" {
		return flag, "--public-url"
	}
	return cfg.BaseURL(), "CLVD_PUBLIC_URL"
}

// zendeskWebhookURL is the URL the commands register in Zendesk for a tenant (admin.ZendeskWebhookURL
// on zendeskPublicURL).
func zendeskWebhookURL(cfg *config.Config, publicURL, tenantID string) (string, error) {
	base, name := zendeskPublicURL(cfg, publicURL)
	return admin.ZendeskWebhookURL(base, name, tenantID, cfg.AllowLocalTargets)
}

// cliRateLimit waits out Zendesk's short rate limits, saying so on stderr.
func cliRateLimit(env *cliEnv) admin.ZendeskRateLimit {
	return admin.ZendeskRateLimit{Retries: installRateLimitRetries, MaxWait: installMaxRateLimitWait, OnWait: func(d time.Duration) {
		fmt.Fprintf(env.Stderr, "Zendesk rate limit: waiting %s\n", d)
	}}
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
