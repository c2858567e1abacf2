package main

import (
	"fmt"
	"strconv"

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

// validateSummary is validate's JSON document.
type validateSummary struct {
	FormatVersion int          `json:"format_version"`
	Valid         bool         `json:"valid"`
	Files         []string     `json:"files"`
	Bindings      int          `json:"bindings"`
	AccountID     int64        `json:"account_id,omitempty"`
	Prune         bool         `json:"prune"`
	Exceptions    int          `json:"exceptions"` // ignore entries, ended ones included
	Diagnostics   []Diagnostic `json:"diagnostics"`
}

// Run loads the spec. Success prints one summary line on stdout; problems
// are printed on stderr, every one of them, one per line, and exit 1.
// With -o json stdout holds one document either way. Ignore entries that
// have ended are warnings, or with --strict problems.
func (c *ValidateCmd) Run(s *session) error {
	s.diag.json = c.Output == "json"
	today := runDay()
	desired, err := spec.LoadWith(c.Files, spec.Options{Today: today, Strict: c.Strict})
	if err != nil {
		return s.specErrors(err)
	}
	warnExpired(s, desired, today)
	if c.Output == "json" {
		s.diag.written = true
		return writeJSON(s.stdio.Out, validateSummary{FormatVersion: 1, Valid: true, Files: desired.Files, Bindings: len(desired.Bindings),
			AccountID: desired.AccountID, Prune: desired.Prune, Exceptions: len(desired.Ignores), Diagnostics: s.diag.diagnostics()}, true)
	}
	where := english.Plural(len(desired.Files), "file")
	if len(desired.Files) == 1 {
		where = desired.Files[0]
	}
	var notes string
	if desired.AccountID != 0 {
		notes += ", account_id " + strconv.FormatInt(desired.AccountID, 10)
	}
	if desired.Prune {
		notes += ", prune: true"
	}
	if n := len(desired.Ignores); n > 0 {
		notes += ", " + english.Plural(n, "exception")
		if ended := len(desired.Expired(today)); ended > 0 {
			notes += " (" + strconv.Itoa(ended) + " ended)"
		}
	}
	_, err = fmt.Fprintf(s.stdio.Out, "%s: %s OK%s\n", where, english.Plural(len(desired.Bindings), "binding"), notes)
	return err
}
