// Command voxbind keeps the SIP-registration bindings of a Voximplant account
// equal to a YAML spec kept in git. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/alecthomas/kong"
)

// Globals are the flags every command accepts, before or after its name.
type Globals struct {
	Credentials string `help:"Service-account key file {account_email, account_id, key_id, private_key}." env:"VOXIMPLANT_CREDENTIALS" placeholder:"FILE"`
	Endpoint    string `help:"Management API base URL; plain http:// only for loopback hosts." env:"VOXIMPLANT_ENDPOINT" default:"https://api.voximplant.com/platform_api/" placeholder:"URL"`
	AccountID   int64  `name:"account-id" help:"Act on this child account (the parent's key signs)." env:"VOXIMPLANT_ACCOUNT_ID" placeholder:"ID"`
	Sandbox     string `help:"Talk to the built-in emulator backed by STATEFILE instead of Voximplant (no network, no credentials)." placeholder:"STATEFILE"`
	NoColor     bool   `name:"no-color" help:"Never colour output (also: NO_COLOR set to anything)."`
	Debug       bool   `help:"Trace every API request on stderr (tokens and keys are never shown)."`

	// ShowVersion is --version: it ends voxbind before any command runs.
	ShowVersion versionFlag `name:"version" help:"Print voxbind's version and exit."`
}

// Stdio is where a command reads and writes; tests replace it.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// CLI is voxbind's command line: one struct per command, each with Run.
type CLI struct {
	Globals

	Validate   ValidateCmd `cmd:"" help:"Check spec files offline: every problem at once, with file:line:col."`
	Doctor     DoctorCmd   `cmd:"" help:"Check, without writing anything, that voxbind can work with the account: key, endpoint, clock, roles, size, spec."`
	Plan       PlanCmd     `cmd:"" help:"Show the calls that would make the account equal the spec; writes nothing."`
	Apply      ApplyCmd    `cmd:"" help:"Make the account equal the spec: show the plan, ask, apply in parallel, verify."`
	Undo       UndoCmd     `cmd:"" help:"Take back what an apply changed, from its journal: show the restore, ask, apply it, verify."`
	Export     ExportCmd   `cmd:"" help:"Write a spec of the account's current bindings (to stdout or --out FILE)."`
	Schema     SchemaCmd   `cmd:"" help:"Print the JSON Schema of the spec format, for editors."`
	SandboxCmd SandboxCmd  `cmd:"" name:"sandbox" help:"Run the built-in Voximplant API emulator: a demo account for first use, examples and tests."`
	Version    VersionCmd  `cmd:"" help:"Print voxbind's version, the commit it was built from, and the Go version."`
}

// exitError carries an exit code other than 1 up to main.
type exitError struct {
	code int
	err  error // nil: nothing more to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit status the error asks for.
func (e *exitError) ExitCode() int { return e.code }

// exitCode returns err wrapped so that main exits with code; a nil err
// means that nothing more is printed.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	os.Exit(run(os.Args[1:], &Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}

// run parses args, runs the command and returns the exit status.
func run(args []string, stdio *Stdio) int {
	ctx, intr, stop := signalContext()
	defer stop()
	// Progress, notices from the API client's goroutines and the summary
	// all write to stderr.
	stdio = &Stdio{In: stdio.In, Out: stdio.Out, Err: &lockedWriter{w: stdio.Err}}

	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("voxbind"),
		kong.Description("Keep the SIP-registration bindings of a Voximplant account equal to a YAML spec."),
		kong.UsageOnError(),
		kong.Writers(stdio.Out, stdio.Err),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(stdio, intr),
	)
	if err != nil {
		fmt.Fprintf(stdio.Err, "voxbind: internal error: %v\n", err)
		return 1
	}
	kctx, code, done := parseArgs(parser, args, stdio)
	if done {
		return code
	}
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		cli.NoColor = true
	}
	err = runCommand(kctx, &cli.Globals)
	if ctx.Err() != nil {
		return interrupted(stdio.Err, err)
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stdio.Err, "voxbind: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stdio.Err, "voxbind: %v\n", err)
	return 1
}

// runCommand runs the parsed command and turns a panic into an error, so
// that a bug ends in one clear line rather than a stack dump (--debug
// keeps the stack).
func runCommand(kctx *kong.Context, g *Globals) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if g.Debug {
				fmt.Fprintf(os.Stderr, "%s\n", debug.Stack())
			}
			err = fmt.Errorf("internal error: %v (a bug in voxbind %s: please report it with the command you ran)", r, version)
		}
	}()
	return kctx.Run(g)
}

// kongExit is what kong.Exit panics with so that --help and usage errors
// return to run instead of ending the process (tests call run directly).
type kongExit int

func parseArgs(parser *kong.Kong, args []string, stdio *Stdio) (kctx *kong.Context, code int, done bool) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			kctx, code, done = nil, int(c), true
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stdio.Err, "voxbind: %v (see voxbind --help)\n", err)
		return nil, 1, true
	}
	return kctx, 0, false
}
