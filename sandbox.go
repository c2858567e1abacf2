package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
)

// SandboxCmd is the built-in emulator of the Voximplant Management API: a
// demo account to try voxbind on, and a server for tests and CI.
type SandboxCmd struct {
	Init  SandboxInitCmd  `cmd:"" help:"Write DIR/credentials.json (a fresh key) and DIR/account.json (a demo account); existing files are never overwritten."`
	Serve SandboxServeCmd `cmd:"" help:"Serve a sandbox state file on a loopback address until interrupted, saving every change to it."`
}

// SandboxInitCmd writes a demo account and a key for it.
type SandboxInitCmd struct {
	Dir      string `arg:"" name:"DIR" predictor:"dir" help:"Directory to write into; created if missing."`
	Children int    `placeholder:"N" help:"Also make N child accounts of the demo account, each with its own demo data; the key acts on them with --account-id or a spec's account_id."`
	Bulk     *int   `placeholder:"N" help:"Make the account of the bulk example instead of the demo account: N phone lines, all unbound, that examples/bulk.yaml and examples/bulk.csv bind (N=520; other sizes: go run ./examples/genbulk -n N)."`
}

// Help is the examples under sandbox init's --help.
func (SandboxInitCmd) Help() string {
	return `Examples:

    voxbind sandbox init sandbox-demo && voxbind --sandbox sandbox-demo/account.json export
    voxbind sandbox init --children 3 sandbox-fleet`
}

// Run writes the files and says what to do next on stderr.
func (c *SandboxInitCmd) Run(stdio *Stdio) error {
	var err error
	if c.Bulk != nil {
		err = sandbox.InitBulk(c.Dir, *c.Bulk, c.Children)
	} else {
		err = sandbox.Init(c.Dir, c.Children)
	}
	if err != nil {
		return err
	}
	state := filepath.Join(c.Dir, sandbox.StateFile)
	creds := filepath.Join(c.Dir, sandbox.CredentialsFile)
	what := fmt.Sprintf("demo account %d \"%s\"", sandbox.DemoAccountID, sandbox.DemoAccountName)
	with := " with "
	try, generate := "export", ""
	if c.Bulk != nil {
		bulk := *c.Bulk
		what = fmt.Sprintf("account %d \"%s\" of the bulk example: %s, all unbound", sandbox.DemoAccountID, sandbox.DemoAccountName, english.Plural(bulk, "phone line"))
		with = "; and "
		try = "plan -f examples/bulk.csv"
		if bulk != sandboxBulkExample {
			try = "plan -f bulk.csv"
			generate = fmt.Sprintf("Write the spec for %s first, in a checkout of voxbind:\n  go run ./examples/genbulk -n %d -o bulk.csv\n", english.Plural(bulk, "line"), bulk)
		}
	}
	var children string
	if c.Children > 0 {
		children = fmt.Sprintf("%s%s (ids %d to %d; act on one with --account-id ID or a spec's account_id: ID)",
			with, english.Plural(c.Children, "child account"), sandbox.DemoAccountID+1, sandbox.DemoAccountID+c.Children)
	}
	_, err = fmt.Fprintf(stdio.Err, `sandbox: wrote %s (a new RSA-2048 key, mode 0600) and %s (%s%s)
%sTry it in-process, no credentials needed:
  voxbind --sandbox %s %s
Or serve it over HTTP and talk to it with the key:
  voxbind sandbox serve --state %s
  voxbind --credentials %s --endpoint http://127.0.0.1:8080/platform_api/ %s
`, reconcile.Printable(creds), reconcile.Printable(state), what, children, generate, pasted(state), try, pasted(state), pasted(creds), try)
	if err != nil {
		return err
	}
	warnUnignoredKey(stdio.Err, creds)
	return nil
}

// warnUnignoredKey warns when the key file just written lies inside a git
// work tree that does not ignore it, where one 'git add .' would commit a
// private key. Without git, or outside a work tree, it says nothing: the
// warning is a courtesy, never a reason to fail.
func warnUnignoredKey(w io.Writer, keyFile string) {
	git, err := exec.LookPath("git")
	if err != nil {
		return
	}
	dir, name := filepath.Split(keyFile)
	if dir == "" {
		dir = "."
	}
	// check-ignore exits 0 when the path is ignored, 1 when it is not, and
	// 128 outside a work tree or on any other error.
	check := exec.Command(git, "-C", dir, "check-ignore", "--quiet", "--", name)
	var ee *exec.ExitError
	if err := check.Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		return
	}
	top, err := exec.Command(git, "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return
	}
	root := strings.TrimSpace(string(top))
	fix := "add its directory to .gitignore"
	if abs, err := filepath.Abs(dir); err == nil {
		abs, _ = filepath.EvalSymlinks(abs)
		realRoot, _ := filepath.EvalSymlinks(root)
		if rel, err := filepath.Rel(realRoot, abs); err == nil && !strings.HasPrefix(rel, "..") {
			line := "/" + gitignorePattern(name)
			if rel != "." {
				line = "/" + gitignorePattern(filepath.ToSlash(rel)) + "/"
			}
			if reconcile.Printable(line) == line { // else no line that git would read as written
				fix = fmt.Sprintf("add the line %s to %s", line, reconcile.Printable(filepath.Join(root, ".gitignore")))
			}
		}
	}
	fmt.Fprintf(w, "sandbox: warning: %s holds a private key and lies in the git work tree %s, which does not ignore it: %s, or use a directory outside the work tree\n", reconcile.Printable(keyFile), reconcile.Printable(root), fix)
}

// gitignorePattern is path as a .gitignore pattern that matches it alone:
// the characters git would take for a wildcard (* ? [ ]) or an escape
// (\), and trailing blanks, which git drops, after a backslash.
func gitignorePattern(path string) string {
	var b strings.Builder
	trailing := len(strings.TrimRight(path, " "))
	for i, r := range path {
		if strings.ContainsRune(`*?[]\`, r) || i >= trailing {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sandboxBulkExample is the number of lines of examples/bulk.yaml.
const sandboxBulkExample = 520

// SandboxServeCmd serves a state file over HTTP on loopback.
type SandboxServeCmd struct {
	State   string        `required:"" placeholder:"FILE" predictor:"file" help:"Sandbox state file (see 'voxbind sandbox init'); every change is saved to it."`
	Addr    string        `default:"127.0.0.1:8080" placeholder:"HOST:PORT" help:"Loopback address to listen on (127.0.0.1, ::1 or localhost; port 0 picks a free one)."`
	Latency time.Duration `placeholder:"DUR" help:"Delay every request by this much (e.g. 200ms)."`
	Rate    float64       `placeholder:"N" help:"Accept at most N requests per second from each account; answer the excess with API error 340 (0 = no limit)."`
	// Per-account faults, for fleets: one slow or tightly limited child.
	AccountLatency []string      `name:"account-latency" sep:"none" placeholder:"ID=DUR" help:"Delay the requests of account ID by DUR instead of --latency (repeat for several accounts)."`
	AccountRate    []string      `name:"account-rate" sep:"none" placeholder:"ID=N" help:"Accept at most N requests per second from account ID instead of --rate (repeat for several accounts)."`
	FailRate       float64       `name:"fail-rate" placeholder:"P" help:"Fail this fraction (0 to 1) of requests: HTTP 502/503, or the connection dropped before or after handling."`
	Seed           int64         `default:"1" help:"Seed of the --fail-rate choices, to repeat a run."`
	ClockSkew      time.Duration `name:"clock-skew" placeholder:"DUR" help:"Run the server's clock this far off (5m: ahead; -5m: behind): its Date header and its token checks, to test clients' clock handling."`
	TLS            bool          `name:"tls" help:"Serve https with a fresh self-signed certificate, written beside the state file (its path is printed), for clients that only speak https."`

	LogFlags
}

// Help is the examples under sandbox serve's --help.
func (SandboxServeCmd) Help() string {
	return `Examples:

    voxbind sandbox serve --state sandbox-demo/account.json --log-level debug   # log every request
    voxbind sandbox serve --state sandbox-demo/account.json --addr 127.0.0.1:0 --rate 5 --fail-rate 0.1
    voxbind sandbox serve --state sandbox-fleet/account.json --rate 20 --account-latency 1000003=500ms   # one slow child`
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down:
// requests in flight finish, the lock is released, and voxbind exits 130
// like any interrupted command. With --log-level debug every request is
// logged.
func (c *SandboxServeCmd) Run(ctx context.Context, s *session) error {
	stdio := s.stdio
	addr, err := loopbackAddr(c.Addr)
	if err != nil {
		return err
	}
	if err := checkRate(c.Rate); err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	if c.Latency < 0 {
		return failure(codeUsage, fmt.Sprintf("--latency %v: give a delay of 0 or more, such as 200ms", c.Latency), "")
	}
	if !(c.FailRate >= 0 && c.FailRate <= 1) {
		return failure(codeUsage, fmt.Sprintf("--fail-rate %v: give the fraction of requests to fail, from 0 to 1 (0.1: one in ten)", c.FailRate), "")
	}
	opts := sandbox.Options{Latency: c.Latency, Rate: c.Rate, FailRate: c.FailRate, Seed: c.Seed, ClockSkew: c.ClockSkew}
	if opts.AccountLatency, err = perAccount("--account-latency", "1000002=200ms", "a duration with its unit (200ms, 1.5s)", c.AccountLatency, time.ParseDuration); err != nil {
		return err
	}
	if opts.AccountRate, err = perAccount("--account-rate", "1000002=5", fmt.Sprintf("a number of requests per second, at least %g, or 0 for no limit", minRate), c.AccountRate, func(s string) (float64, error) {
		r, err := strconv.ParseFloat(s, 64)
		if err == nil {
			err = checkRate(r)
		}
		return r, err
	}); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("sandbox serve: %w", err)
	}
	opts.Logger = s.log
	srv, err := sandbox.Open(c.State, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	// The certificate is written before the port opens: a client that
	// waits for the port finds it.
	var tlsConfig *tls.Config
	if c.TLS {
		cert := sandbox.CertPath(c.State)
		if tlsConfig, err = sandbox.SelfSignedTLS(cert); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "sandbox: TLS certificate (self-signed, new each start) in %s; trust it with SSL_CERT_FILE=%s for voxbind, NODE_EXTRA_CA_CERTS=%s for Node.js\n", reconcile.Printable(cert), pasted(cert), pasted(cert))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sandbox serve: listen on %s: %w (is another server using the port? try --addr 127.0.0.1:0)", addr, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		scheme = "https"
	}
	acct := srv.Account()
	fmt.Fprintf(stdio.Err, "sandbox: serving account %d (%s) at %s://%s/platform_api/ from %s\n", acct.ID, reconcile.Printable(acct.Name), scheme, ln.Addr(), reconcile.Printable(c.State))
	if n := len(srv.State().Children); n > 0 {
		fmt.Fprintf(stdio.Err, "sandbox: and its %s (its keys act on them with --account-id or a spec's account_id)\n", english.Plural(n, "child account"))
	}
	if len(srv.State().Keys) == 0 {
		fmt.Fprintf(stdio.Err, "sandbox: warning: %s records no keys, so every request will be refused (error 433); 'voxbind sandbox init DIR' writes a key and a state file that accepts it\n", reconcile.Printable(c.State))
	}
	if faults := describeFaults(opts); faults != "" {
		fmt.Fprintf(stdio.Err, "sandbox: injecting %s\n", faults)
	}
	fmt.Fprintln(stdio.Err, "sandbox: press Ctrl-C to stop")

	if err := sandbox.Serve(ctx, ln, srv); err != nil {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(stdio.Err, "sandbox: stopped after %s, %s saved\n", english.Plural(int(st.Requests), "request"), english.Plural(int(st.Writes), "change"))
	return srv.Close()
}

// perAccount parses the values of a repeatable ID=VALUE flag; what says
// what a value is, for the message when one is not.
func perAccount[V any](flag, example, what string, values []string, parse func(string) (V, error)) (map[int64]V, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make(map[int64]V, len(values))
	usage := fmt.Sprintf("write ID=VALUE, the account's id, '=' and its value (e.g. %s %s)", flag, example)
	for _, v := range values {
		idText, valueText, ok := strings.Cut(v, "=")
		id, err := strconv.ParseInt(idText, 10, 64)
		if !ok || err != nil || id <= 0 {
			return nil, fmt.Errorf("sandbox serve: %s %q: %s", flag, v, usage)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("sandbox serve: %s: account %d is given twice; give each account once", flag, id)
		}
		value, err := parse(valueText)
		if err != nil {
			return nil, fmt.Errorf("sandbox serve: %s %q: %q is not %s; %s", flag, v, valueText, what, usage)
		}
		out[id] = value
	}
	return out, nil
}

// loopbackAddr checks that addr is on a loopback interface: the sandbox
// accepts any key recorded in its state file, so it must not be reachable
// from other machines.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("sandbox serve: --addr %q: %w; want HOST:PORT such as 127.0.0.1:8080", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, nil
	}
	return "", fmt.Errorf("sandbox serve: --addr %q is not a loopback address: the sandbox accepts any key in its state file and must not be reachable from other machines; use 127.0.0.1, ::1 or localhost", addr)
}

func describeFaults(o sandbox.Options) string {
	var parts []string
	if o.Latency > 0 {
		parts = append(parts, fmt.Sprintf("%v latency", o.Latency))
	}
	if o.Rate > 0 {
		parts = append(parts, fmt.Sprintf("a limit of %g requests/s (error 340)", o.Rate))
	}
	for _, id := range slices.Sorted(maps.Keys(o.AccountLatency)) {
		parts = append(parts, fmt.Sprintf("%v latency for account %d", o.AccountLatency[id], id))
	}
	for _, id := range slices.Sorted(maps.Keys(o.AccountRate)) {
		if r := o.AccountRate[id]; r > 0 {
			parts = append(parts, fmt.Sprintf("a limit of %g requests/s for account %d", r, id))
		} else {
			parts = append(parts, fmt.Sprintf("no limit for account %d", id))
		}
	}
	if o.FailRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% failures (seed %d)", o.FailRate*100, o.Seed))
	}
	if o.ClockSkew != 0 {
		parts = append(parts, fmt.Sprintf("a clock %v off", o.ClockSkew))
	}
	return strings.Join(parts, ", ")
}
