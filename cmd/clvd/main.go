// Command clvd is the whole service in one binary: see `clvd help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// cliEnv is what a subcommand may touch of the outside world, so tests can run commands in-process.
type cliEnv struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv func(string) string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "HTTP API, webhook intake, workers and scheduler in one process", runServe},
		{"api", "HTTP API and webhook intake only (scale out with many)", runAPI},
		{"worker", "queue workers and scheduler only (scale out with many)", runWorker},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"tenant", "manage tenants: add, list, update, install-zendesk, uninstall-zendesk", runTenant},
		{"model", "fit and apply the CLV models to CSV files: fit, predict", runModel},
		{"import", "backfill historical orders from CSV into a tenant", runImport},
		{"token", "issue an admin API token: --tenant ID --role admin|operator --ttl 24h", runToken},
		{"loadtest", "drive a running service with signed webhooks and audit the outcome", runLoadtest},
		{"zendesk-app", "build the Zendesk sidebar app: package --out app.zip [--service-url URL] [--tenant ID]", runZendeskApp},
	}
}

// errUsage marks a command-line mistake: the command has already printed what was wrong.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
	os.Exit(run(ctx, env, os.Args[1:]))
}

// run dispatches to a subcommand and turns its error into an exit code: 2 for usage, 1 otherwise.
func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(env.Stderr, "clvd %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "clvd: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "clvd: customer lifetime value and churn for your helpdesk\n\nUsage: clvd <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'clvd <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors to env.Stderr and never exits the process.
func newFlagSet(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("clvd "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseFlags parses args and maps a parse failure to errUsage (the flag package has printed why).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
