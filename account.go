package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

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
	notices := &retryNotices{w: stderr, terminal: planIsTerminal(stderr), seen: map[voximplant.Cause]bool{}}
	opts := voximplant.Options{Rate: rate, Debug: debug, UserAgent: "voxbind/" + version, OnRetry: notices.retry}

	if g.Sandbox != "" {
		running, err := sandbox.Start(g.Sandbox, sandbox.Options{})
		if err != nil {
			return nil, nil, err
		}
		if err := sandboxAccountID(running, g.AccountID, g.Sandbox); err != nil {
			running.Close()
			return nil, nil, err
		}
		opts.Endpoint, opts.Credentials, opts.AccountID = running.Endpoint, running.Credentials, g.AccountID
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
	creds, err := loadCredentials(ctx, g.Credentials, stderr)
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

// sandboxAccountID checks that --account-id, when given, names the
// sandbox's account or one of its child accounts.
func sandboxAccountID(running *sandbox.Running, id int64, path string) error {
	top := running.Credentials.AccountID
	if id == 0 || id == top {
		return nil
	}
	var children []string
	for _, c := range running.Server.State().Children {
		if c.Account.ID == id {
			return nil
		}
		children = append(children, strconv.FormatInt(c.Account.ID, 10))
	}
	if len(children) == 0 {
		return fmt.Errorf("--account-id %d with --sandbox: the sandbox in %s has only account %d and no child accounts ('voxbind sandbox init --children N DIR' makes some)", id, path, top)
	}
	if len(children) > 5 {
		children = append(children[:5], fmt.Sprintf("… (%d in all)", len(children)))
	}
	return fmt.Errorf("--account-id %d with --sandbox: account %d in %s has no such child account; its children are %s", id, top, path, strings.Join(children, ", "))
}

// loadCredentials reads the key file, giving up when ctx ends: a path
// that blocks (a FIFO nobody writes to) must still yield to Ctrl-C. The
// read goes on in the background, and ends with the process.
func loadCredentials(ctx context.Context, path string, warn io.Writer) (*voximplant.Credentials, error) {
	type loaded struct {
		creds *voximplant.Credentials
		err   error
	}
	done := make(chan loaded, 1)
	go func() {
		c, err := voximplant.LoadCredentials(path, warn)
		done <- loaded{c, err}
	}()
	select {
	case l := <-done:
		return l.creds, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("credentials file %s: still reading: %w", path, context.Cause(ctx))
	}
}

// retryNotices says on stderr, the first time a call is retried for each
// kind of cause, what is wrong and for how long voxbind will retry:
//
//	voxbind: the API is not reachable (connection refused); retrying for up to 2m0s — Ctrl-C to stop
//
// Further retries of the same kind stay quiet (--debug traces each one).
// Its retry method is a voximplant.Options.OnRetry.
type retryNotices struct {
	w        io.Writer
	terminal bool // clear apply's progress line first

	mu   sync.Mutex
	seen map[voximplant.Cause]bool
}

func (n *retryNotices) retry(e voximplant.RetryEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[e.Cause] {
		return
	}
	n.seen[e.Cause] = true
	clear := ""
	if n.terminal {
		clear = "\r\x1b[K"
	}
	fmt.Fprintf(n.w, "%svoxbind: %s; retrying for up to %s — Ctrl-C to stop\n", clear, e.Reason(), e.Budget)
}
