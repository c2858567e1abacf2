package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// openAccount returns a client for the account the global flags name. With
// --sandbox it starts the emulator in-process on a loopback port, with an
// ephemeral key, over the state file (which it locks and saves changes
// to); otherwise it loads the key file (--credentials or
// $VOXIMPLANT_CREDENTIALS) and talks to --endpoint. rate is the ceiling in
// requests per second (0 = none). The returned func releases everything.
func (g *Globals) openAccount(ctx context.Context, rate float64, stderr io.Writer) (*voximplant.Client, func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var debug io.Writer
	if g.Debug {
		debug = stderr
	}
	opts := voximplant.Options{Rate: rate, Debug: debug, UserAgent: "voxbind/" + version}

	if g.Sandbox != "" {
		running, err := sandbox.Start(g.Sandbox, sandbox.Options{})
		if err != nil {
			return nil, nil, err
		}
		if acct := running.Credentials.AccountID; g.AccountID != 0 && g.AccountID != acct {
			running.Close()
			return nil, nil, fmt.Errorf("--account-id %d with --sandbox: the sandbox in %s has only account %d", g.AccountID, g.Sandbox, acct)
		}
		opts.Endpoint, opts.Credentials = running.Endpoint, running.Credentials
		client, err := voximplant.New(opts)
		if err != nil {
			running.Close()
			return nil, nil, err
		}
		return client, running.Close, nil
	}

	if g.Credentials == "" {
		return nil, nil, errors.New("no credentials: pass --credentials FILE or set VOXIMPLANT_CREDENTIALS to a service-account key file, or try the built-in emulator with --sandbox STATEFILE (see 'voxbind sandbox init')")
	}
	creds, err := voximplant.LoadCredentials(g.Credentials, stderr)
	if err != nil {
		return nil, nil, err
	}
	opts.Endpoint, opts.Credentials, opts.AccountID = g.Endpoint, creds, g.AccountID
	client, err := voximplant.New(opts)
	if err != nil {
		return nil, nil, err
	}
	return client, func() error { return nil }, nil
}
