package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/voxbind/voxbind/reconcile"
)

// ExportCmd writes a spec that asks for exactly the account's current
// bindings: the starting point for adopting voxbind on an existing account.
type ExportCmd struct {
	Out     string        `help:"Write the spec to FILE instead of stdout. FILE is replaced atomically (a complete old or new file, never half of one)." placeholder:"FILE"`
	Rate    float64       `help:"Never send more than N requests per second (default: no ceiling)." placeholder:"N"`
	Timeout time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 5m), then stop with exit 1 (default: no limit)."`

	// Schema is for editors: yaml-language-server reads the modeline.
	Schema string `help:"Start the spec with the modeline '# yaml-language-server: $schema=REF', so that editors check it against the schema at REF (a URL, or a path relative to the spec)." placeholder:"REF"`

	Scope scopeFlags `embed:""`
}

// Run reads the whole account and writes the spec.
func (c *ExportCmd) Run(ctx context.Context, stdio *Stdio, g *Globals) error {
	if c.Rate < 0 {
		return fmt.Errorf("--rate %v: must be 0 (no ceiling) or more", c.Rate)
	}
	if strings.ContainsFunc(c.Schema, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("--schema %q: a modeline ends at the first blank, so REF cannot hold blanks or control characters; percent-encode them (%%20 for a space)", c.Schema)
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return err
	}
	reads := g.reads()
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return err
	}
	defer cancel()
	acct, closeAccount, err := g.openAccount(ctx, c.Rate, stdio.Err)
	if err != nil {
		return err
	}
	defer closeAccount()

	current, err := reconcile.ObserveBound(ctx, acct)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if c.Schema != "" {
		fmt.Fprintf(&buf, "# yaml-language-server: $schema=%s\n", c.Schema)
	}
	if err := reconcile.ExportSelection(&buf, current, sel); err != nil {
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
	return nil
}
