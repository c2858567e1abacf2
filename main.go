// Command voxbind keeps the SIP-registration bindings of a Voximplant account
// equal to a spec (YAML or CSV) kept in git. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/reconcile"
)

// CLI is voxbind's command line: one struct per command, each with Run.
// The flags every command shares are declared by the commands that use
// them (globals.go); the root holds only --help and --version.
type CLI struct {
	// ShowVersion is --version: it ends voxbind before any command runs.
	ShowVersion versionFlag `name:"version" group:"global" help:"Print voxbind's version and exit."`

	Validate   ValidateCmd   `cmd:"" help:"Check spec files offline: every problem at once, with file:line:col."`
	Doctor     DoctorCmd     `cmd:"" help:"Check, without writing anything, that voxbind can work with the account: key, endpoint, clock, roles, size, spec."`
	Plan       PlanCmd       `cmd:"" help:"Show the calls that would make the account equal the spec; writes nothing."`
	Apply      ApplyCmd      `cmd:"" help:"Make the account equal the spec: show the plan, ask, apply in parallel, verify."`
	Undo       UndoCmd       `cmd:"" help:"Take back what an apply changed, from its journal: show the restore, ask, apply it, verify."`
	Show       ShowCmd       `cmd:"" help:"Render a saved plan (plan --out) or an apply journal for a reviewer, as text, markdown or JSON; needs no credentials."`
	Export     ExportCmd     `cmd:"" help:"Write a spec of the account's current bindings (to stdout or --out FILE)."`
	Schema     SchemaCmd     `cmd:"" help:"Print the JSON Schema of the spec format, for editors."`
	SandboxCmd SandboxCmd    `cmd:"" name:"sandbox" help:"Run the built-in Voximplant API emulator: a demo account for first use, examples and tests."`
	Version    VersionCmd    `cmd:"" help:"Print voxbind's version, the commit it was built from, and the Go version."`
	Completion CompletionCmd `cmd:"" help:"Print a shell completion script for bash, zsh or fish."`
	Man        ManCmd        `cmd:"" help:"Print voxbind's manual page (roff), made from this command line."`
	Help       HelpCmd       `cmd:"" help:"Show the help of voxbind or of one command."`
}

// Stdio is where a command reads and writes; tests replace it.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

func main() {
	done := make(chan int, 1)
	go func() { done <- run(os.Args[1:], &Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}) }()
	select {
	case code := <-done:
		os.Exit(code)
	case code := <-quitNow: // a second Ctrl-C: the command had its moment to finish
		os.Exit(code)
	}
}

// run parses args, runs the command and returns the exit status.
func run(args []string, stdio *Stdio) int {
	ctx, intr, stop := signalContext()
	defer stop()
	// Progress, notices from the API client's goroutines and the summary
	// all write to stderr.
	stdio = &Stdio{In: stdio.In, Out: stdio.Out, Err: &lockedWriter{w: stdio.Err}}

	var cli CLI
	parser, err := newParser(&cli, stdio,
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(intr),
	)
	if err != nil {
		fmt.Fprintf(stdio.Err, "voxbind: internal error: %v\n", err)
		return 1
	}
	if code, done := complete(parser); done {
		return code
	}
	dropEmptyEnv(parser.Model)
	kctx, code, done := parseArgs(parser, hoistGlobals(parser.Model, args), stdio)
	if done {
		return code
	}
	s := newSession(kctx, stdio)
	kctx.Bind(s)
	err = fromEnv(parser.Model, args, runCommand(kctx, s))
	return s.finish(ctx, err)
}

// newParser builds the command line parser over cli, writing to stdio.
// Usage errors and --help return to run through a kongExit panic, so
// that tests can call run.
func newParser(cli any, stdio *Stdio, options ...kong.Option) (*kong.Kong, error) {
	return kong.New(cli, append([]kong.Option{
		kong.Name("voxbind"),
		kong.Description("Keep the SIP-registration bindings of a Voximplant account equal to a spec kept in YAML or CSV files."),
		kong.UsageOnError(),
		kong.Writers(stdio.Out, stdio.Err),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.Bind(stdio),
		kong.ExplicitGroups([]kong.Group{globalGroup}),
		kong.ValueFormatter(helpValue),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.PostBuild(func(k *kong.Kong) error {
			if k.Model.HelpFlag != nil {
				k.Model.HelpFlag.Group = &globalGroup
			}
			return nil
		}),
	}, options...)...)
}

// runCommand runs the parsed command and turns a panic into an error, so
// that a bug ends in one clear line rather than a stack dump (--debug
// keeps the stack).
func runCommand(kctx *kong.Context, s *session) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if c, ok := r.(kongExit); ok { // voxbind help COMMAND
				if c != 0 {
					err = exitCode(int(c), nil)
				}
				return
			}
			if s.debug {
				fmt.Fprintf(s.stdio.Err, "%s\n", debug.Stack())
			}
			err = &internalError{fmt.Sprintf("internal error: %v (a bug in voxbind %s: please report it with the command you ran)", r, version)}
		}
	}()
	return kctx.Run()
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
		refused := fromEnv(parser.Model, args, usageError(parser.Model, err))
		fmt.Fprintf(stdio.Err, "voxbind: %s (see voxbind %s)\n", reconcile.Printable(refused.Error()), helpHint(err)) // one line
		writeUsageDiagnostics(stdio.Out, args, refused)
		return nil, 1, true
	}
	return kctx, 0, false
}

// exitError carries an exit code other than 1 up to main.
type exitError struct {
	code     int
	err      error // nil: nothing more to print
	reported bool  // the run's diagnostics hold it already (spec errors, one by one)
	// endedFirst: the command ended for a reason of its own before any
	// signal came (apply stopped by the breaker, --timeout or its
	// journal, and said so): a signal that came later does not make its
	// run an interrupted one.
	endedFirst bool
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

// exitStatus is the exit status for a command's error: 0 for nil, the
// code an exitError asks for, else 1.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
