package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/clvd/clvd/config"
	"github.com/clvd/clvd/internal/safehttp"
	"github.com/clvd/clvd/store"
	"github.com/clvd/clvd/worker"
)

func runTenant(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: clvd tenant add|list|update|install-zendesk|uninstall-zendesk [flags]")
		return errUsage
	}
	switch args[0] {
	case "add":
		return tenantAdd(ctx, env, args[1:])
	case "list":
		return tenantList(ctx, env, args[1:])
	case "update":
		return tenantUpdate(ctx, env, args[1:])
	case "install-zendesk":
		return runInstallZendesk(ctx, env, args[1:])
	case "uninstall-zendesk":
		return runUninstallZendesk(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "clvd tenant: unknown subcommand %q (want add, list, update, install-zendesk or uninstall-zendesk)\n", args[0])
	return errUsage
}

// newSecret returns a random signing secret for the generic orders endpoint.
func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// zendeskFlags are the helpdesk account flags shared by add and update.
type zendeskFlags struct {
	url, email, token, webhookSecret, shopifySecret string
}

func (z *zendeskFlags) bind(fsAdd *flag.FlagSet) {
	fsAdd.StringVar(&z.url, "zendesk-url", "", "Zendesk account base URL, https://SUBDOMAIN.zendesk.com")
	fsAdd.StringVar(&z.email, "zendesk-email", "", "Zendesk agent email for the API token")
	fsAdd.StringVar(&z.token, "zendesk-token", "", "Zendesk API token")
	fsAdd.StringVar(&z.webhookSecret, "zendesk-webhook-secret", "", "signing secret of the Zendesk webhook that calls clvd")
	fsAdd.StringVar(&z.shopifySecret, "shopify-secret", "", "Shopify webhook signing secret")
}

// apply validates the flags and copies the set ones onto t.
func (z *zendeskFlags) apply(cfg *config.Config, t *store.Tenant) error {
	if z.url != "" {
		u, err := safehttp.CheckBaseURL(z.url, cfg.AllowLocalTargets)
		if err != nil {
			return fmt.Errorf("--zendesk-url: %w", err)
		}
		t.Zendesk.BaseURL = strings.TrimRight(u.String(), "/")
	}
	if z.email != "" {
		if !strings.Contains(z.email, "@") {
			return fmt.Errorf("--zendesk-email %q is not an email address", z.email)
		}
		t.Zendesk.Email = z.email
	}
	if z.token != "" {
		t.Zendesk.APIToken = z.token
	}
	if z.webhookSecret != "" {
		t.Zendesk.WebhookSecret = z.webhookSecret
	}
	if z.shopifySecret != "" {
		t.ShopifySecret = z.shopifySecret
	}
	api := []string{t.Zendesk.BaseURL, t.Zendesk.Email, t.Zendesk.APIToken}
	set := 0
	for _, v := range api {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("--zendesk-url, --zendesk-email and --zendesk-token go together: give all three (or none)")
	}
	return nil
}

type webhookInfo struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

type tenantOutput struct {
	ID       string                 `json:"id"`
	Name     string                 `json:"name"`
	Webhooks map[string]webhookInfo `json:"webhooks"`
}

func webhooksOf(cfg *config.Config, t *store.Tenant) map[string]webhookInfo {
	base := cfg.BaseURL() + "/webhooks/" + t.ID + "/"
	return map[string]webhookInfo{
		"zendesk": {URL: base + "zendesk", Secret: t.Zendesk.WebhookSecret},
		"shopify": {URL: base + "shopify", Secret: t.ShopifySecret},
		"orders":  {URL: base + "orders", Secret: t.OrdersSecret},
	}
}

func printTenant(env *cliEnv, cfg *config.Config, t *store.Tenant, asJSON bool) error {
	out := tenantOutput{ID: t.ID, Name: t.Name, Webhooks: webhooksOf(cfg, t)}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(env.Stdout, "tenant %s (%s)\n\nwebhooks (URL, then signing secret):\n", t.ID, t.Name)
	for _, k := range []string{"zendesk", "shopify", "orders"} {
		w := out.Webhooks[k]
		secret := w.Secret
		if secret == "" {
			secret = "(not set: add it with 'clvd tenant update " + t.ID + " --" + map[string]string{"zendesk": "zendesk-webhook-secret", "shopify": "shopify-secret"}[k] + " ...')"
		}
		fmt.Fprintf(env.Stdout, "  %-8s %s\n           %s\n", k, w.URL, secret)
	}
	if t.Zendesk.BaseURL == "" {
		fmt.Fprintln(env.Stdout, "\nno Zendesk API credentials: tags cannot be written back until --zendesk-url/--zendesk-email/--zendesk-token are set")
	}
	return nil
}

func tenantAdd(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "tenant add")
	name := fs.String("name", "", "tenant name (required)")
	asJSON := fs.Bool("json", false, "print one JSON object and nothing else on stdout")
	var z zendeskFlags
	z.bind(fs)
	var f serverFlags
	f.bindStore(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		fmt.Fprintln(env.Stderr, "clvd tenant add: --name is required")
		return errUsage
	}
	cfg, db, err := openFromFlags(ctx, env, &f)
	if err != nil {
		return err
	}
	defer db.Close()
	t := &store.Tenant{Name: strings.TrimSpace(*name), OrdersSecret: newSecret(), Settings: json.RawMessage(`{}`)}
	if err := z.apply(cfg, t); err != nil {
		return err
	}
	if err := db.CreateTenant(ctx, t); err != nil {
		return err
	}
	return printTenant(env, cfg, t, *asJSON)
}

func tenantUpdate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "tenant update")
	name := fs.String("name", "", "new tenant name")
	rotate := fs.Bool("rotate-orders-secret", false, "generate a new signing secret for the generic orders endpoint")
	settings := fs.String("settings", "", `tenant settings as JSON, e.g. '{"tag_prefix":"clv_","period":"week"}' (replaces the stored settings)`)
	asJSON := fs.Bool("json", false, "print one JSON object and nothing else on stdout")
	var z zendeskFlags
	z.bind(fs)
	var f serverFlags
	f.bindStore(fs)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(env.Stderr, "usage: clvd tenant update TENANT_ID [flags]")
		return errUsage
	}
	id := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
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
	if *name != "" {
		t.Name = *name
	}
	if *rotate {
		t.OrdersSecret = newSecret()
	}
	if *settings != "" {
		parsed, err := worker.ParseSettings(json.RawMessage(*settings))
		if err != nil {
			return fmt.Errorf("--settings: %w", err)
		}
		if u := parsed.Outreach.Webhook.URL; u != "" {
			if _, err := worker.CheckOutreachWebhookURL(u, cfg.AllowLocalTargets); err != nil {
				return fmt.Errorf("--settings: outreach: webhook.url: %w", err)
			}
		}
		t.Settings = json.RawMessage(*settings)
	}
	if err := z.apply(cfg, t); err != nil {
		return err
	}
	if err := db.UpdateTenant(ctx, t); err != nil {
		return err
	}
	if *settings != "" {
		// New settings (a tag prefix, the model's period) apply to every customer: the refit that the
		// service's reconciler starts for this request rescores them all and pushes the changed tags.
		if err := worker.RequestRefit(ctx, db, t.ID, "settings changed"); err != nil {
			return err
		}
	}
	return printTenant(env, cfg, t, *asJSON)
}

func tenantList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "tenant list")
	asJSON := fs.Bool("json", false, "print JSON")
	var f serverFlags
	f.bindStore(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, db, err := openFromFlags(ctx, env, &f)
	if err != nil {
		return err
	}
	defer db.Close()
	tenants, err := db.ListTenants(ctx)
	if err != nil {
		return err
	}
	type row struct {
		ID         string          `json:"id"`
		Name       string          `json:"name"`
		CreatedAt  string          `json:"created_at"`
		ZendeskURL string          `json:"zendesk_url,omitempty"`
		Secrets    map[string]bool `json:"secrets_set"` // never the secrets themselves
	}
	rows := make([]row, 0, len(tenants))
	for _, t := range tenants {
		rows = append(rows, row{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), ZendeskURL: t.Zendesk.BaseURL,
			Secrets: map[string]bool{"zendesk_webhook": t.Zendesk.WebhookSecret != "", "zendesk_api_token": t.Zendesk.APIToken != "",
				"shopify": t.ShopifySecret != "", "orders": t.OrdersSecret != ""}})
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tZENDESK\tSECRETS SET")
	for _, r := range rows {
		var set []string
		for _, k := range []string{"zendesk_webhook", "zendesk_api_token", "shopify", "orders"} {
			if r.Secrets[k] {
				set = append(set, k)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CreatedAt, r.ZendeskURL, strings.Join(set, ","))
	}
	return tw.Flush()
}
