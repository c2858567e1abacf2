package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/voxbind/voxbind/reconcile"
)

// ExportCmd writes a spec that asks for exactly the account's current
// bindings: the starting point for adopting voxbind on an existing account.
type ExportCmd struct {
	Out     string        `help:"Write the spec to FILE instead of stdout. FILE is replaced atomically (a complete old or new file, never half of one)." placeholder:"FILE" predictor:"file"`
	Output  string        `short:"o" enum:"yaml,csv" default:"yaml" placeholder:"FORMAT" help:"Spec format: yaml or csv (a CSV spec holds no account_id guard)."`
	Rate    float64       `env:"VOXBIND_RATE" help:"Never send more than N requests per second (0: no ceiling)." placeholder:"N"`
	Timeout time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 5m), then stop with exit 1 (0: no limit)."`

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
    voxbind export --schema ./voxbind.schema.json > voxbind.yaml`
}

// Run reads the whole account and writes the spec.
func (c *ExportCmd) Run(ctx context.Context, s *session) error {
	stdio := s.stdio
	if err := checkRate(c.Rate); err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	if strings.ContainsFunc(c.Schema, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("--schema %q: a modeline ends at the first blank, so REF cannot hold blanks or control characters; percent-encode them (%%20 for a space)", c.Schema)
	}
	format, err := c.format()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
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
	acct, closeAccount, err := c.openAccount(ctx, s, c.Rate, nil)
	if err != nil {
		return err
	}
	defer closeWarn(s, closeAccount)

	current, err := func() (*reconcile.Current, error) {
		defer s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))()
		return reconcile.ObserveBound(ctx, acct)
	}()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if format == "csv" {
		err = reconcile.ExportCSVSelection(&buf, current, sel)
	} else {
		if c.Schema != "" {
			fmt.Fprintf(&buf, "# yaml-language-server: $schema=%s\n", c.Schema)
		}
		err = reconcile.ExportSelection(&buf, current, sel)
	}
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
	what := fmt.Sprintf("%d registrations", len(current.Registrations))
	if !sel.Empty() {
		what = "the selected registrations"
	}
	fmt.Fprintf(stdio.Err, "Wrote %s of account %d to %s.\n", what, current.Account.ID, c.Out)
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
