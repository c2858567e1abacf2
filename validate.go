package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// ValidateCmd checks spec files offline: it reads no credentials and opens
// no connection, so it fits a pre-commit hook or the first CI step.
type ValidateCmd struct {
	Files  []string `name:"file" short:"f" sep:"none" default:"voxbind.yaml" placeholder:"PATH" predictor:"file" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several."`
	Output string   `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output format: text, or json (one document with the spec's summary and every problem as a diagnostic)."`
	Strict bool     `help:"Also fail on ignore entries that have ended (otherwise a warning)."`
}

// Help is the examples under validate's --help.
func (ValidateCmd) Help() string {
	return `Examples:

    voxbind validate                      # voxbind.yaml in this directory
    voxbind validate -f specs/ -o json    # every *.yaml in specs/, for a pipeline`
}

// validateSummary is validate's JSON document. For files of several
// accounts (a fleet), accounts has one entry per account and the top
// level counts the whole (prune and account_id, which the accounts do
// not share, are left out).
type validateSummary struct {
	FormatVersion int               `json:"format_version"`
	Valid         bool              `json:"valid"`
	Files         []string          `json:"files"`
	Bindings      int               `json:"bindings"`
	AccountID     int64             `json:"account_id,omitempty"`
	Prune         *bool             `json:"prune,omitempty"` // nil for a fleet
	Exceptions    int               `json:"exceptions"`      // ignore entries, ended ones included
	Accounts      []validateAccount `json:"accounts,omitempty"`
	Diagnostics   []Diagnostic      `json:"diagnostics"`
}

// validateAccount is one account of a fleet in validate's JSON document.
type validateAccount struct {
	AccountID  int64    `json:"account_id"`
	Files      []string `json:"files"`
	Bindings   int      `json:"bindings"`
	Prune      bool     `json:"prune"`
	Exceptions int      `json:"exceptions"`
}

// Run loads the spec. Success prints one summary line on stdout (for
// files of several accounts, one per account and one for the whole);
// problems are printed on stderr, every one of them, one per line, and
// exit 1. With -o json stdout holds one document either way. Ignore
// entries that have ended are warnings, or with --strict problems.
func (c *ValidateCmd) Run(ctx context.Context, s *session) error {
	s.diag.json = c.Output == "json"
	today := runDay()
	f, err := loadFleet(ctx, c.Files, spec.Options{Today: today, Strict: c.Strict})
	if err != nil {
		return s.specErrors(err)
	}
	for _, desired := range f.Specs {
		warnExpired(s, desired, today)
	}
	if c.Output == "json" {
		s.diag.written = true
		return writeJSON(s.stdio.Out, validateDocument(f, s.diag.diagnostics()), true)
	}
	if !f.Several() {
		_, err = fmt.Fprintln(s.stdio.Out, validateLine(f.Specs[0], today, false))
		return err
	}
	bindings := 0
	for _, desired := range f.Specs {
		bindings += len(desired.Bindings)
		if _, err := fmt.Fprintln(s.stdio.Out, validateLine(desired, today, true)); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(s.stdio.Out, "%s: %s OK, for %s\n", english.Plural(len(f.Files), "file"), english.Plural(bindings, "binding"), english.Plural(len(f.Specs), "account"))
	return err
}

// validateDocument is validate's JSON document for the fleet f.
func validateDocument(f *spec.Fleet, diags []Diagnostic) validateSummary {
	if !f.Several() {
		d := f.Specs[0]
		return validateSummary{FormatVersion: 1, Valid: true, Files: d.Files, Bindings: len(d.Bindings),
			AccountID: d.AccountID, Prune: &d.Prune, Exceptions: len(d.Ignores), Diagnostics: diags}
	}
	out := validateSummary{FormatVersion: 1, Valid: true, Files: f.Files, Diagnostics: diags}
	for _, d := range f.Specs {
		out.Bindings += len(d.Bindings)
		out.Exceptions += len(d.Ignores)
		out.Accounts = append(out.Accounts, validateAccount{AccountID: d.AccountID, Files: d.Files, Bindings: len(d.Bindings),
			Prune: d.Prune, Exceptions: len(d.Ignores)})
	}
	return out
}

// validateLine is "voxbind.yaml: 3 bindings OK, account_id 1000001", or
// for an account of a fleet "account 1000002: c1.yaml: 3 bindings OK".
func validateLine(s *spec.Spec, today time.Time, inFleet bool) string {
	where := english.Plural(len(s.Files), "file")
	if len(s.Files) == 1 {
		where = s.Files[0]
	}
	var notes string
	if s.AccountID != 0 && !inFleet {
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
	line := fmt.Sprintf("%s: %s OK%s", where, english.Plural(len(s.Bindings), "binding"), notes)
	if inFleet {
		line = "account " + strconv.FormatInt(s.AccountID, 10) + ": " + line
	}
	return line
}
