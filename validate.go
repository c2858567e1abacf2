package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// ValidateCmd checks spec files offline: it reads no credentials and opens
// no connection, so it fits a pre-commit hook or the first CI step.
type ValidateCmd struct {
	Files  []string `name:"file" short:"f" sep:"none" default:"voxbind.yaml" placeholder:"PATH" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several."`
	Strict bool     `help:"Also fail on ignore entries that have ended (otherwise a warning)."`
}

// Run loads the spec. Success prints one summary line on stdout; problems
// are printed on stderr, every one of them, one per line, and exit 1.
// Ignore entries that have ended are warnings, or with --strict problems.
func (c *ValidateCmd) Run(stdio *Stdio) error {
	today := runDay()
	s, err := spec.LoadWith(c.Files, spec.Options{Today: today, Strict: c.Strict})
	if err != nil {
		var errs spec.Errors
		if !errors.As(err, &errs) {
			return err
		}
		for _, e := range errs {
			fmt.Fprintln(stdio.Err, e.Error())
		}
		return exitCode(1, fmt.Errorf("%s in the spec", english.Plural(len(errs), "problem")))
	}
	warnExpired(stdio.Err, s, today)
	where := english.Plural(len(s.Files), "file")
	if len(s.Files) == 1 {
		where = s.Files[0]
	}
	var notes string
	if s.AccountID != 0 {
		notes += ", account_id " + strconv.FormatInt(s.AccountID, 10)
	}
	if s.Prune {
		notes += ", prune: true"
	}
	if n := len(s.Ignores); n > 0 {
		notes += ", " + english.Plural(n, "exception")
		if ended := len(s.Expired(today)); ended > 0 {
			notes += " (" + strconv.Itoa(ended) + " ended)"
		}
	}
	_, err = fmt.Fprintf(stdio.Out, "%s: %s OK%s\n", where, english.Plural(len(s.Bindings), "binding"), notes)
	return err
}
