package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

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

	current, err := observeForExport(ctx, acct)
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
	if err := exportWriteFile(c.Out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "Wrote %d registrations of account %d to %s.\n", len(current.Registrations), current.Account.ID, c.Out)
	return nil
}

// observeForExport reads what Export needs: the account, every registration
// and application, and the rules (users) of each application that some
// registration is bound to with a rule (user), a few lists at a time.
func observeForExport(ctx context.Context, acct reconcile.Account) (*reconcile.Current, error) {
	info, err := acct.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read account info: %w", err)
	}
	regs, err := acct.Registrations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sip registrations: %w", err)
	}
	apps, err := acct.Applications(ctx)
	if err != nil {
		return nil, fmt.Errorf("read applications: %w", err)
	}
	current := &reconcile.Current{
		Account:       info,
		Registrations: regs,
		Applications:  apps,
		Rules:         map[int64][]reconcile.Rule{},
		Users:         map[int64][]reconcile.User{},
	}

	var ruleApps, userApps []int64
	for _, r := range regs {
		switch t := r.Target; {
		case t == nil:
		case t.Rule != nil:
			ruleApps = append(ruleApps, t.Application.ID)
		case t.User != nil:
			userApps = append(userApps, t.Application.ID)
		}
	}
	slices.Sort(ruleApps)
	slices.Sort(userApps)

	type read func(ctx context.Context) error
	var reads []read
	var mu sync.Mutex
	for _, id := range slices.Compact(ruleApps) {
		reads = append(reads, func(ctx context.Context) error {
			rules, err := acct.Rules(ctx, id)
			if err != nil {
				return fmt.Errorf("read rules of application %d: %w", id, err)
			}
			mu.Lock()
			current.Rules[id] = rules
			mu.Unlock()
			return nil
		})
	}
	for _, id := range slices.Compact(userApps) {
		reads = append(reads, func(ctx context.Context) error {
			users, err := acct.Users(ctx, id)
			if err != nil {
				return fmt.Errorf("read users of application %d: %w", id, err)
			}
			mu.Lock()
			current.Users[id] = users
			mu.Unlock()
			return nil
		})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const parallel = 4
	sem := make(chan struct{}, parallel)
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, r := range reads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if errs[i] = r(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// Report the first real failure, not a "context canceled" it caused in
	// the other reads.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errs[slices.IndexFunc(errs, func(e error) bool { return e != nil })]
	}
	return current, nil
}

// exportWriteFile replaces path with data through a temporary file in the
// same directory and a rename, so a reader (or an interrupted run) sees the
// old file or the new one, never a part.
func exportWriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: no such file, harmless
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
