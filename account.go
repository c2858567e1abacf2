package main

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// openAccount returns a client for the account the flags name
// (--account-id, else the key's own account); see connect. The returned
// func releases everything.
func (f *AccountFlags) openAccount(ctx context.Context, s *session, rate float64, onRetry retryHook) (*voximplant.Client, func() error, error) {
	conn, err := f.connect(ctx, s, rate, onRetry, 1)
	if err != nil {
		return nil, nil, err
	}
	client, err := conn.client(f.AccountID, "")
	if err != nil {
		conn.close()
		return nil, nil, err
	}
	return client, conn.close, nil
}

// connection reaches the accounts of one run: a client per account, each
// with its own rate limiter, all signing with the same key and sharing
// one pool of connections (and, with --sandbox, one emulator).
type connection struct {
	opts    voximplant.Options // what every client shares; AccountID and OnRetry are per client
	running *sandbox.Running   // --sandbox: the emulator this run started
	path    string             // --sandbox: its state file
	notices *retryNotices      // the retry notices on stderr, for every client
	onRetry retryHook          // also told of every retry, when set
}

// retryHook hears of each call that a client of account is about to
// repeat (apply -o json's retry and rate_limit events).
type retryHook func(account int64, e voximplant.RetryEvent)

// connect prepares the clients of a run. With --sandbox it starts the
// emulator in-process on a loopback port, with an ephemeral key, over the
// state file (which it locks and saves changes to); otherwise it loads
// the key file (--credentials or $VOXIMPLANT_CREDENTIALS) and talks to
// --endpoint. rate is each client's ceiling in requests per second (0 =
// none). Retries are told on stderr (the first of each kind) and to
// onRetry, when set, with the account of the client. accounts is how
// many accounts the run works on at once, to size the pool of
// connections.
func (f *AccountFlags) connect(ctx context.Context, s *session, rate float64, onRetry retryHook, accounts int) (*connection, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // the --timeout or the interrupt, not "context deadline exceeded"
		switch {
		case f.Sandbox != "":
			return nil, endedWhile(ctx, "opening the sandbox "+f.Sandbox)
		case f.Credentials != "":
			return nil, endedWhile(ctx, "reading the credentials file "+f.Credentials)
		}
		return nil, endedWhile(ctx, "connecting to the API")
	}
	c := &connection{opts: voximplant.Options{Rate: rate, Logger: s.log, UserAgent: "voxbind/" + version},
		notices: newRetryNotices(s), onRetry: onRetry}
	if accounts > 1 {
		// One pool for every account: a step, a page or a verification
		// read of each account at once.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 8 * accounts
		c.opts.HTTPClient = &http.Client{Transport: t}
	}

	if f.Sandbox != "" {
		running, err := sandbox.Start(f.Sandbox, sandbox.Options{Logger: s.log})
		if err != nil {
			return nil, err
		}
		c.running, c.path = running, f.Sandbox
		c.opts.Endpoint, c.opts.Credentials = running.Endpoint, running.Credentials
		return c, nil
	}

	if f.Credentials == "" {
		return nil, failure(codeCredentials, "no credentials",
			"pass --credentials FILE or set VOXIMPLANT_CREDENTIALS to a service-account key file, or try the built-in emulator with --sandbox STATEFILE (see 'voxbind sandbox init')")
	}
	creds, err := loadCredentials(ctx, f.Credentials, func(problem, fix string) { s.warn(codeKeyFileMode, problem, fix) })
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &codedError{code: codeCredentials, msg: escapedError(err),
			fix: "pass the JSON key file Voximplant gave, unchanged ('voxbind doctor' checks it)", err: err}
	}
	c.opts.Endpoint, c.opts.Credentials = f.Endpoint, creds
	return c, nil
}

// keyAccount is the id of the account the key belongs to.
func (c *connection) keyAccount() int64 { return c.opts.Credentials.AccountID }

// client returns a new client acting on account id (0: the key's own).
// source says where id comes from, for messages ("" = --account-id; a
// spec's "file:line", "the plan FILE").
func (c *connection) client(id int64, source string) (*voximplant.Client, error) {
	if c.running != nil && source == "" {
		if err := sandboxAccountID(c.running, id, c.path); err != nil {
			return nil, err
		}
	}
	opts := c.opts
	opts.AccountID, opts.AccountSource = id, source
	account := id
	if account == 0 {
		account = c.keyAccount()
	}
	opts.OnRetry = func(e voximplant.RetryEvent) {
		c.notices.retry(e)
		if c.onRetry != nil {
			c.onRetry(account, e)
		}
	}
	return voximplant.New(opts)
}

// close releases the connection: it stops the emulator it started.
func (c *connection) close() error {
	if c.running != nil {
		return c.running.Close()
	}
	return nil
}

// applyPlanCommand is the command that applies the saved plan in path,
// for the hint after 'plan --out' and 'undo --out' and for the way on
// when a saved plan unbinds too many: it repeats the flags of f that were
// given on the command line (given: by name), so that it works when
// pasted, and none that came from the environment, which the shell it is
// pasted into has too. Each value is joined to its flag with '=' and
// quoted for a shell, so that one beginning with '-' (a plan saved as
// -p.json) is not taken for a flag. An endpoint that carries a password
// is not repeated: the hint says --endpoint=URL instead.
func (f *AccountFlags) applyPlanCommand(given map[string]bool, path string) string {
	return reconcile.Printable("voxbind apply --plan=" + reconcile.ShellQuote(path) + f.givenArgs(given))
}

// givenArgs is the flags of f that were given on the command line, each
// with a leading blank, as applyPlanCommand repeats them.
func (f *AccountFlags) givenArgs(given map[string]bool) string {
	cmd := f.connectionArgs(given)
	if given["account-id"] {
		cmd += " --account-id=" + strconv.FormatInt(f.AccountID, 10)
	}
	return cmd
}

// connectionArgs is givenArgs without --account-id: the flags for a
// command that acts on the account its input names (undo of a journal).
func (f *AccountFlags) connectionArgs(given map[string]bool) string {
	cmd := ""
	if given["sandbox"] {
		cmd += " --sandbox=" + reconcile.ShellQuote(f.Sandbox)
	}
	if given["credentials"] {
		cmd += " --credentials=" + reconcile.ShellQuote(f.Credentials)
	}
	if given["endpoint"] {
		endpoint := reconcile.ShellQuote(f.Endpoint)
		if u, err := url.Parse(f.Endpoint); err != nil || u.User != nil {
			endpoint = "URL"
		}
		cmd += " --endpoint=" + endpoint
	}
	return cmd
}

// actingOn is the account a run acts on for desired: --account-id, else
// the spec's account_id, else 0 (the key's own account). source says
// where it comes from, for messages: "" for --account-id, the spec's
// "file:line" for its account_id.
func (f *AccountFlags) actingOn(desired *spec.Spec) (id int64, source string) {
	switch {
	case f.AccountID != 0:
		return f.AccountID, ""
	case desired != nil && desired.AccountID != 0:
		return desired.AccountID, desired.AccountIDPos.Short()
	}
	return 0, ""
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
// read goes on in the background, and ends with the process. A file that
// group or others may read is told to warn, with the chmod to paste (nil:
// not told).
func loadCredentials(ctx context.Context, path string, warn func(problem, fix string)) (*voximplant.Credentials, error) {
	type loaded struct {
		creds        *voximplant.Credentials
		problem, fix string
		err          error
	}
	if ctx.Err() != nil { // a --timeout that passed already: say so every time
		return nil, endedWhile(ctx, "reading the credentials file "+path)
	}
	done := make(chan loaded, 1)
	go func() {
		var l loaded
		l.creds, l.err = voximplant.LoadCredentials(path, func(read string, mode fs.FileMode) {
			l.problem = fmt.Sprintf("credentials file %s is readable by group or others (mode %04o)", reconcile.Printable(read), mode)
			l.fix = "run: chmod 600 " + pasted(read)
		})
		done <- l
	}()
	select {
	case l := <-done:
		if l.problem != "" && warn != nil {
			warn(l.problem, l.fix)
		}
		return l.creds, l.err
	case <-ctx.Done():
		return nil, endedWhile(ctx, "still reading the credentials file "+path)
	}
}

// retryNotices says on stderr, the first time a call is retried for each
// kind of cause, what is wrong and for how long voxbind will retry:
//
//	voxbind: the API is not reachable (connection refused); retrying for up to 2m0s — Ctrl-C to stop
//
// Further retries of the same kind stay quiet (--log-level info logs each
// one). On a terminal every wait also shows on the status line. Its retry
// method is a voximplant.Options.OnRetry.
type retryNotices struct {
	progress *reconcile.ProgressWriter

	mu   sync.Mutex
	seen map[voximplant.Cause]bool
}

func newRetryNotices(s *session) *retryNotices {
	return &retryNotices{progress: s.progressLine(), seen: map[voximplant.Cause]bool{}}
}

func (n *retryNotices) retry(e voximplant.RetryEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.seen[e.Cause] {
		n.seen[e.Cause] = true
		n.progress.Note(fmt.Sprintf("voxbind: %s; retrying for up to %s — Ctrl-C to stop", e.Reason(), retryFor(e, time.Now())))
	}
	n.progress.Wait(fmt.Sprintf("Waiting %s before retrying %s (attempt %d): %s", waitText(e.Wait), e.Method, e.Attempt+1, e.Reason()), e.Wait)
}

// retryFor is how long a retried call may go on, as of now: its retry
// budget, unless the run's --timeout ends sooner.
func retryFor(e voximplant.RetryEvent, now time.Time) string {
	if !e.Deadline.IsZero() {
		if left := e.Deadline.Sub(now); left < e.Budget {
			return waitText(max(left, 0)) + " (the rest of --timeout)"
		}
	}
	return e.Budget.String()
}

// waitText is a retry's wait in words that never read as no wait at all:
// to the millisecond under a second, to 10 ms above.
func waitText(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "less than 1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// check refuses an --account-id that cannot name an account, before the
// account is contacted.
func (f *AccountFlags) check() error {
	if f.AccountID < 0 {
		return failure(codeUsage, fmt.Sprintf("--account-id %d: give the id of an account, a positive number", f.AccountID), "")
	}
	return nil
}
