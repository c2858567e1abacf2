package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/voxbind/voxbind/reconcile"
)

// ExportCmd writes a spec that asks for exactly the account's current
// bindings: the starting point for adopting voxbind on an existing account.
type ExportCmd struct {
	Out  string  `help:"Write the spec to FILE instead of stdout. FILE is replaced atomically (a complete old or new file, never half of one)." placeholder:"FILE"`
	Rate float64 `help:"Never send more than N requests per second (default: no ceiling)." placeholder:"N"`
}

// Run reads the whole account and writes the spec.
func (c *ExportCmd) Run(ctx context.Context, stdio *Stdio, g *Globals) error {
	if c.Rate < 0 {
		return fmt.Errorf("--rate %v: must be 0 (no ceiling) or more", c.Rate)
	}
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
	if err := reconcile.Export(&buf, current); err != nil {
		return err
	}
	if c.Out == "" {
		_, err := stdio.Out.Write(buf.Bytes())
		return err
	}
	if err := writeFileAtomic(c.Out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "Wrote %d registrations of account %d to %s.\n", len(current.Registrations), current.Account.ID, c.Out)
	return nil
}
