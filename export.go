package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/voximplant"
)

// ExportCmd writes a spec that asks for exactly the account's current
// bindings: the starting point for adopting voxbind on an existing account.
type ExportCmd struct {
	Out     string        `help:"Write the spec to FILE instead of stdout. FILE is replaced atomically (a complete old or new file, never half of one)." placeholder:"FILE" predictor:"file"`
	Output  string        `short:"o" enum:"yaml,csv" default:"yaml" placeholder:"FORMAT" help:"Spec format: yaml or csv (a CSV spec holds no account_id guard)."`
	Rate    float64       `env:"VOXBIND_RATE" help:"Never send more than N requests per second (0: no ceiling); with --children, to each account." placeholder:"N"`
	Timeout time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 5m), then stop with exit 1 (0: no limit)."`

	// Children exports a fleet: every child account of the key's account.
	Children            bool   `help:"Export every child account of the key's account instead, one file each, into --out-dir DIR (frozen and inactive ones are skipped)."`
	OutDir              string `name:"out-dir" placeholder:"DIR" predictor:"dir" help:"With --children: write DIR/<account_id>.yaml for each child account (DIR is created if missing; other files in it are left alone)."`
	AccountsParallelism int    `name:"accounts-parallelism" default:"4" env:"VOXBIND_ACCOUNTS_PARALLELISM" placeholder:"N" help:"With --children, read at most N accounts at once."`

	// Schema is for editors: yaml-language-server reads the modeline.
	Schema string `help:"Start the spec with the modeline '# yaml-language-server: $schema=REF', so that editors check it against the schema at REF (a URL, or a path relative to the spec)." placeholder:"REF"`

	Scope scopeFlags `embed:""`

	AccountFlags
	LogFlags
}

// Help is the examples under export's --help.
func (ExportCmd) Help() string {
	return `Examples:

    voxbind export --out voxbind.yaml              # adopt voxbind on an existing account
    voxbind export --schema ./voxbind.schema.json > voxbind.yaml
    voxbind export --children --out-dir fleet/      # one file per child account`
}

// Run reads the whole account and writes the spec.
func (c *ExportCmd) Run(ctx context.Context, s *session) error {
	stdio := s.stdio
	if err := dashOut(c.Out, "leave out --out to write the spec to stdout"); err != nil {
		return err
	}
	if err := checkRate(c.Rate); err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	if c.Schema == "" && s.given["schema"] {
		return failure(codeUsage, "--schema '': give REF, the URL of the spec's JSON schema or its path relative to the spec (such as ./voxbind.schema.json), or leave --schema out for no modeline; nothing was written", "")
	}
	if strings.ContainsFunc(c.Schema, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return failure(codeUsage, fmt.Sprintf("--schema %q: a modeline ends at the first blank, so REF cannot hold blanks or control characters", c.Schema), "percent-encode them (%20 for a space)")
	}
	format, err := c.format()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	if err := c.childrenFlags(format); err != nil {
		return err
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	reads := c.reads()
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return err
	}
	defer cancel()
	if c.Children {
		return c.runChildren(ctx, s, reads)
	}
	acct, closeAccount, err := c.openAccount(ctx, s, c.Rate, nil)
	if err != nil {
		return err
	}
	defer closeWarn(s, closeAccount)

	current, err := func() (*reconcile.Current, error) {
		defer s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))()
		current, err := reconcile.ObserveBound(ctx, acct)
		return current, timedOutWhile(err, fmt.Sprintf("reading account %d", acct.AccountID()))
	}()
	if err != nil {
		return err
	}
	buf, written, err := c.spec(current, sel, format)
	if err != nil {
		return err
	}
	if c.Out == "" {
		_, err := stdio.Out.Write(buf.Bytes())
		return err
	}
	if err := writeOut(c.Out, buf.Bytes(), reads); err != nil {
		return err
	}
	what := english.Plural(written, "registration")
	if !sel.Empty() {
		what = english.Plural(written, "selected registration")
	}
	fmt.Fprintf(stdio.Err, "Wrote %s of account %d to %s.\n", what, current.Account.ID, reconcile.Printable(c.Out))
	if format == "csv" {
		fmt.Fprintf(stdio.Err, "A CSV spec has no account_id guard: to keep one, put \"version: 1\" and \"account_id: %d\" in a YAML file beside it and plan with -f on both (or on their directory).\n", current.Account.ID)
	}
	return nil
}

// format checks -o against --out: voxbind reads a file named *.csv as
// CSV and any other as YAML, so a spec written under the other kind of
// name would not read back.
func (c *ExportCmd) format() (string, error) {
	outCSV := c.Out != "" && strings.EqualFold(filepath.Ext(c.Out), ".csv")
	switch {
	case c.Out != "" && outCSV && c.Output != "csv":
		return "", fmt.Errorf("--out %s: a file named *.csv is read as CSV, so write it with -o csv (or name the file .yaml); nothing was written", c.Out)
	case c.Out != "" && !outCSV && c.Output == "csv":
		return "", fmt.Errorf("-o csv with --out %s: voxbind reads a file as CSV only when its name ends in .csv; name the file .csv (or use -o yaml); nothing was written", c.Out)
	case c.Output == "csv" && c.Schema != "":
		return "", errors.New("--schema writes a YAML modeline and has no place in a CSV spec: leave it out with -o csv; nothing was written")
	}
	return c.Output, nil
}

// childrenFlags checks --children, --out-dir and --accounts-parallelism
// against the other flags, before anything is read.
func (c *ExportCmd) childrenFlags(format string) error {
	if err := checkAccountsParallelism(c.AccountsParallelism); err != nil {
		return err
	}
	var msg, fix string
	switch {
	case c.Children && c.OutDir == "":
		msg, fix = "--children needs --out-dir DIR", "give the directory to write one spec file per child account into"
	case c.Children && c.Out != "":
		msg, fix = "--children writes one file per child account into --out-dir DIR; --out FILE is for one account", "give one of the two"
	case !c.Children && c.OutDir != "":
		msg, fix = "--out-dir DIR is for --children (one file per child account)", "for one account give --out FILE"
	case c.Children && format == "csv":
		msg, fix = "--children writes YAML: each file names the child account it is for, and a CSV spec cannot name its account", "leave out -o csv"
	case c.Children && c.Scope.given():
		msg, fix = "--only and --except pick registrations of one account; --children exports every child account whole", "leave them out, or export one child with --account-id ID and the selectors"
	case c.Children && c.AccountID != 0:
		msg, fix = fmt.Sprintf("--children exports the child accounts of the key's own account, not of --account-id %d", c.AccountID), "leave out --account-id (to export that account alone, leave out --children)"
	default:
		return nil
	}
	return failure(codeUsage, msg, fix)
}

// spec is the exported spec of the registrations of current in sel, in
// format (yaml, with the --schema modeline, or csv).
func (c *ExportCmd) spec(current *reconcile.Current, sel reconcile.Selection, format string) (buf *bytes.Buffer, registrations int, err error) {
	buf = new(bytes.Buffer)
	if format == "csv" {
		registrations, err = reconcile.ExportCSV(buf, current, sel)
	} else {
		if c.Schema != "" {
			fmt.Fprintf(buf, "# yaml-language-server: $schema=%s\n", c.Schema)
		}
		registrations, err = reconcile.Export(buf, current, sel)
	}
	if err != nil {
		return nil, 0, err
	}
	return buf, registrations, nil
}

// runChildren exports every child account of the key's account into
// --out-dir, one file each named by its id, --accounts-parallelism at a
// time. Each file is written atomically as soon as its account is read;
// an account that fails is named and the others go on (exit 1). Frozen and
// inactive children are listed and skipped.
func (c *ExportCmd) runChildren(ctx context.Context, s *session, reads []readFile) error {
	stderr := s.stdio.Err
	fc, err := c.openFleetClients(ctx, s, c.Rate, nil, c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)
	parent, err := fc.client(0, "")
	if err != nil {
		return err
	}
	children, err := func() ([]voximplant.ChildAccount, error) {
		defer s.phase(fmt.Sprintf("Listing the child accounts of account %d", parent.AccountID()))()
		return parent.GetChildrenAccounts(ctx)
	}()
	if err != nil {
		return fmt.Errorf("list the child accounts of account %d: %w", parent.AccountID(), err)
	}
	var usable []voximplant.ChildAccount
	for _, child := range children {
		if ok, why := child.Usable(); !ok {
			note := ""
			if _, err := os.Stat(exportChildPath(c.OutDir, child.AccountID)); err == nil {
				note = "; " + exportChildPath(c.OutDir, child.AccountID) + " from an earlier export is left as it is"
			}
			fmt.Fprintf(stderr, "%s is %s: skipped%s\n", fleetAccountLabel(reconcile.AccountInfo{ID: child.AccountID, Name: child.AccountName}), why, note)
			continue
		}
		usable = append(usable, child)
	}
	if len(usable) == 0 {
		fmt.Fprintf(stderr, "Account %d has %s to export; nothing was written.\n", parent.AccountID(), exportNone(len(children)))
		return nil
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return failure(codeOutFile, fmt.Sprintf("--out-dir %s: %v; nothing was written", c.OutDir, err), "give a directory voxbind may create and write in")
	}
	fmt.Fprintf(stderr, "Exporting %s of account %d to %s, %d at a time.\n",
		english.Plural(len(usable), "child account"), parent.AccountID(), c.OutDir, min(c.AccountsParallelism, len(usable)))
	failed := make([]error, len(usable))
	done := s.phase("Exporting " + english.Plural(len(usable), "child account"))
	reconcile.ForEachAccount(len(usable), c.AccountsParallelism, func(i int) {
		failed[i] = c.exportChild(ctx, s, fc, usable[i], reads)
	})
	done()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	var ids []int64
	for i, err := range failed {
		if err != nil {
			ids = append(ids, usable[i].AccountID)
			fmt.Fprintf(stderr, "voxbind: %s: %v; its file was not written\n",
				fleetAccountLabel(reconcile.AccountInfo{ID: usable[i].AccountID, Name: usable[i].AccountName}), s.shown(cannotActMessage(err).Error()))
		}
	}
	fmt.Fprintf(stderr, "Exported %d of %s to %s.\n", len(usable)-len(ids), english.Plural(len(children), "child account"), reconcile.Printable(c.OutDir))
	if len(ids) > 0 {
		return exitCode(1, failure(codeFleetFailed, fmt.Sprintf("%d of %s could not be exported (%s)", len(ids), english.Plural(len(usable), "child account"), accountIDs(ids)), ""))
	}
	return nil
}

// exportChild reads one child account and writes its spec.
func (c *ExportCmd) exportChild(ctx context.Context, s *session, fc *fleetClients, child voximplant.ChildAccount, reads []readFile) error {
	acct, err := fc.client(child.AccountID, "GetChildrenAccounts")
	if err != nil {
		return err
	}
	current, err := reconcile.ObserveBound(ctx, acct)
	if err != nil {
		return err
	}
	buf, written, err := c.spec(current, reconcile.Selection{}, "yaml")
	if err != nil {
		return err
	}
	path := exportChildPath(c.OutDir, child.AccountID)
	if err := writeOut(path, buf.Bytes(), reads); err != nil {
		return err
	}
	s.progressLine().Note(fmt.Sprintf("Wrote %s of %s to %s.", english.Plural(written, "registration"), fleetAccountLabel(current.Account), path))
	return nil
}

// exportChildPath is DIR/<account_id>.yaml.
func exportChildPath(dir string, id int64) string {
	return filepath.Join(dir, strconv.FormatInt(id, 10)+".yaml")
}

// exportNone says why there is nothing to export: "no child accounts", or
// "no active child account (2 of them are frozen or inactive)".
func exportNone(children int) string {
	if children == 0 {
		return "no child accounts"
	}
	return fmt.Sprintf("no active child account (%d of them %s frozen or inactive)", children, english.Choose(children, "is", "are"))
}
