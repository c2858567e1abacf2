package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// DoctorCmd checks, without writing anything, that voxbind can work with
// the account: the key file, the endpoint, the clock, authentication, the
// roles that plan and export need, the account's size, and the spec.
type DoctorCmd struct {
	Files  []string `name:"file" short:"f" sep:"none" placeholder:"PATH" predictor:"file" help:"Spec file or directory to check against the account too (default: voxbind.yaml when it exists); repeat for several."`
	Output string   `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output format: text, or json to paste into a bug report (it holds nothing secret)."`

	AccountFlags
	LogFlags
}

// Help is the examples under doctor's --help.
func (DoctorCmd) Help() string {
	return `Examples:

    voxbind doctor --credentials key.json          # first run on a new machine or CI runner
    voxbind doctor -o json > doctor.json           # attach to a bug report`
}

// Limits of a doctor run: a wrong endpoint must not keep it waiting for
// the retry budget of plan and apply.
const (
	doctorTimeout     = 20 * time.Second
	doctorRetryBudget = 30 * time.Second
)

// Clock thresholds: past doctorClockWarn the clock is worth fixing, past
// doctorClockFail the server refuses tokens made on this machine's time.
const (
	doctorClockWarn = 10 * time.Second
	doctorClockFail = 30 * time.Second
)

// doctorCheck is one line of the report; its JSON is what bug reports
// carry, so it holds nothing secret.
type doctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// doctor collects the checks of one run.
type doctor struct {
	f      *AccountFlags
	s      *session
	checks []doctorCheck
	spec   []doctorCheck // the spec's own check: reported next to the others about the spec
	today  time.Time     // the day ignore entries are judged on
	fleet  []*spec.Spec  // spec files for several accounts (without --account-id): one spec each
	files  []string      // the spec files given with -f
}

func (d *doctor) add(status, name, detail, fix string) {
	d.checks = append(d.checks, doctorCheck{Name: name, Status: status, Detail: detail, Fix: fix})
}
func (d *doctor) ok(name, detail string)        { d.add("ok", name, detail, "") }
func (d *doctor) warn(name, detail, fix string) { d.add("warn", name, detail, fix) }
func (d *doctor) fail(name, detail, fix string) { d.add("fail", name, detail, fix) }

func (d *doctor) count(status string) int {
	n := 0
	for _, c := range d.checks {
		if c.Status == status {
			n++
		}
	}
	return n
}

// Run checks and prints the report on stdout. It exits 1 when a check
// failed (warnings are allowed). It never writes to the account: the
// client it uses is read-only.
func (c *DoctorCmd) Run(ctx context.Context, s *session) error {
	stdio := s.stdio
	d := &doctor{f: &c.AccountFlags, s: s, today: runDay(), files: c.Files}
	desired := d.checkSpec(ctx, c.Files)
	creds, endpoint, closeAccount := d.checkKey(ctx)
	defer closeAccount()
	if endpoint != "" && d.checkEndpoint(ctx, endpoint) && creds != nil {
		d.checkAccount(ctx, creds, endpoint, desired)
	}
	if ctx.Err() != nil {
		// The checks cut short would read as failures; say only that the
		// run was interrupted, as plan and export do.
		return context.Cause(ctx)
	}
	d.flushSpec()
	if err := d.render(stdio.Out, c.Output); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if d.count("fail") > 0 {
		return exitCode(1, nil)
	}
	return nil
}

// flushSpec reports the spec's own check, once, where it stands.
func (d *doctor) flushSpec() {
	d.checks = append(d.checks, d.spec...)
	d.spec = nil
}

// checkSpec loads the spec given with -f, or voxbind.yaml when it exists;
// the guard and the names are checked against the account later. Its
// check is reported with those (flushSpec).
func (d *doctor) checkSpec(ctx context.Context, files []string) *spec.Spec {
	defer func(n int) {
		d.spec = append(d.spec, d.checks[n:]...)
		d.checks = d.checks[:n]
	}(len(d.checks))
	if len(files) == 0 {
		if _, err := os.Stat("voxbind.yaml"); err != nil {
			return nil
		}
		files = []string{"voxbind.yaml"}
	}
	fleet, err := loadFleet(ctx, files, spec.Options{Today: d.today})
	var desired *spec.Spec
	switch {
	case err != nil:
	case !fleet.Several():
		desired = fleet.Specs[0] // the guard is checked against the account
	case d.f.AccountID == 0:
		// The key's own account is checked as usual, and then that the
		// key may act on each account of the fleet (checkFleet).
		d.fleet = fleet.Specs
		bindings := 0
		for _, s := range fleet.Specs {
			bindings += len(s.Bindings)
		}
		d.ok("spec", fmt.Sprintf("%s: %s for %s, valid", doctorFiles(fleet.Files), english.Plural(bindings, "binding"), spec.AccountList(fleet.AccountIDs())))
		d.warnExpired(fleet.Specs)
		return nil
	default:
		var specs []*spec.Spec
		if specs, err = d.f.selectAccounts(fleet); err == nil {
			desired = specs[0]
		}
	}
	if err != nil {
		if !d.failProblems("spec", err, "in "+strings.Join(files, ", "), "to see every problem with its file:line:col, run: voxbind validate "+fileArgs(files)) {
			d.fail("spec", err.Error(), "check the -f paths")
		}
		return nil
	}
	d.ok("spec", fmt.Sprintf("%s: %s, valid", strings.Join(desired.Files, ", "), english.Plural(len(desired.Bindings), "binding")))
	d.warnExpired([]*spec.Spec{desired})
	return desired
}

// warnExpired warns of the ignore entries of specs that have ended.
func (d *doctor) warnExpired(specs []*spec.Spec) {
	var expired []spec.Ignore
	for _, s := range specs {
		expired = append(expired, s.Expired(d.today)...)
	}
	if len(expired) > 0 {
		d.warn("spec ignore", fmt.Sprintf("%s ended and no longer %s; the first at %s ended with %s",
			english.Plural(len(expired), "exception"), english.Choose(len(expired), "applies", "apply"), expired[0].UntilPos.Short(), spec.DayString(expired[0].Until)),
			"remove the entries that ended, or give them a later until ('voxbind validate' lists them)")
	}
}

// doctorFiles names the spec files of a check: each of a few, or how many.
func doctorFiles(files []string) string {
	if len(files) > 3 {
		return english.Plural(len(files), "file")
	}
	return strings.Join(files, ", ")
}

// fileArgs is the -f arguments that give files, quoted for a shell; a
// path beginning with '-' is joined to --file so that it is not taken
// for a flag.
func fileArgs(files []string) string {
	var b strings.Builder
	for i, f := range files {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.HasPrefix(f, "-") {
			b.WriteString("--file=" + reconcile.ShellQuote(f))
		} else {
			b.WriteString("-f " + reconcile.ShellQuote(f))
		}
	}
	return reconcile.Printable(b.String())
}

// checkKey checks the key file (or starts the sandbox for --sandbox) and
// returns the credentials (nil when unusable), the endpoint to use ("" when
// there is none to check) and a func that releases what it started.
func (d *doctor) checkKey(ctx context.Context) (*voximplant.Credentials, string, func()) {
	g := d.f
	none := func() {}
	if g.Sandbox != "" {
		running, err := sandbox.Start(g.Sandbox, sandbox.Options{Logger: d.s.log})
		if err != nil {
			d.fail("key file", "--sandbox "+g.Sandbox+": "+err.Error(), "check the state file given to --sandbox")
			return nil, "", none
		}
		closeSandbox := func() { running.Close() }
		if err := sandboxAccountID(running, g.AccountID, g.Sandbox); err != nil {
			d.fail("key file", err.Error(), "pass an --account-id the sandbox has, or none")
			return nil, running.Endpoint, closeSandbox
		}
		d.ok("key file", fmt.Sprintf("--sandbox %s: an in-memory key made for this run (no key file needed)", g.Sandbox))
		return running.Credentials, running.Endpoint, closeSandbox
	}

	path, source := g.Credentials, "--credentials"
	if path != "" && os.Getenv(voximplant.CredentialsEnv) == path {
		source = "$" + voximplant.CredentialsEnv
	}
	const getKey = "create a key for a service account in the Voximplant control panel, save the JSON file it offers unchanged, and pass it with --credentials FILE or VOXIMPLANT_CREDENTIALS=FILE"
	if path == "" {
		d.fail("key file", "no key file: neither --credentials nor "+voximplant.CredentialsEnv+" is set",
			getKey+"; to try voxbind without an account, use --sandbox (see 'voxbind sandbox init')")
		return nil, g.Endpoint, none
	}
	where := path + " (" + source + ")"
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.fail("key file", where+" does not exist", "check the path; "+getKey)
		return nil, g.Endpoint, none
	case err != nil:
		d.fail("key file", where+": "+err.Error(), "check the path and its directories' permissions")
		return nil, g.Endpoint, none
	case fi.IsDir():
		d.fail("key file", where+" is a directory", "pass the key file itself, not its directory")
		return nil, g.Endpoint, none
	}
	// Read as every command reads it: a FIFO nobody writes to yields to
	// Ctrl-C and to the doctor's time limit.
	rctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	creds, err := loadCredentials(rctx, path, nil)
	var pe *fs.PathError
	switch {
	case err != nil && rctx.Err() != nil:
		d.fail("key file", where+": "+err.Error(), "a key file is a regular file: pass the JSON key file Voximplant gave")
		return nil, g.Endpoint, none
	case errors.As(err, &pe):
		d.fail("key file", where+": cannot read it: "+unwrapPathError(err), "make it readable by the user that runs voxbind (and by no one else: chmod 600)")
		return nil, g.Endpoint, none
	case err != nil:
		// ParseCredentials names the field at fault and never quotes the key.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		d.fail("key file", where+": "+err.Error(), "the file must be the JSON key file Voximplant gave, unchanged; if that file is lost, create a new key for the service account in the Voximplant control panel and pass the JSON file it offers with --credentials FILE or VOXIMPLANT_CREDENTIALS=FILE")
		return nil, g.Endpoint, none
	}
	detail := fmt.Sprintf("%s: key %s of account %d (%s), RSA %d-bit", where, reconcile.Printable(creds.KeyID), creds.AccountID, reconcile.Printable(creds.AccountEmail), creds.PrivateKey.N.BitLen())
	if bits := creds.PrivateKey.N.BitLen(); bits < 2048 {
		d.warn("key file", detail, "the key is shorter than the 2048 bits Voximplant issues: create a new key")
	} else {
		d.ok("key file", detail)
	}
	if runtime.GOOS != "windows" {
		if mode := fi.Mode().Perm(); mode&0o044 != 0 {
			d.warn("key file mode", fmt.Sprintf("mode %04o: group or others may read the private key", mode), "chmod 600 "+pasted(path))
		} else {
			d.ok("key file mode", fmt.Sprintf("mode %04o: only its owner may read it", mode))
		}
	}
	return creds, g.Endpoint, none
}

func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkEndpoint checks the URL, the proxy, reachability, TLS and the
// clock with one request without credentials. It reports whether the
// endpoint answers as the Management API.
func (d *doctor) checkEndpoint(ctx context.Context, endpoint string) bool {
	const fixURL = "use the Management API's base URL: https://api.voximplant.com/platform_api/ (the default), set with --endpoint or VOXIMPLANT_ENDPOINT; plain http:// only for a loopback host such as the sandbox"
	if _, err := voximplant.CheckEndpoint(endpoint); err != nil {
		d.fail("endpoint", err.Error(), fixURL)
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	p := voximplant.Probe(pctx, endpoint, nil)
	var proxyErr *net.OpError
	switch {
	case p.Proxy != nil && errors.As(p.Err, &proxyErr) && proxyErr.Op == "proxyconnect":
		d.fail("proxy", fmt.Sprintf("through %s (from HTTPS_PROXY/HTTP_PROXY), which cannot be used: %v", p.Proxy.Redacted(), proxyErr.Err),
			"check that the proxy runs and that HTTPS_PROXY/HTTP_PROXY name it right (scheme, host, port, credentials), or list this host in NO_PROXY to connect directly")
		d.fail("endpoint", p.URL+": no answer: voxbind could not use the proxy", "see the proxy check")
		return false
	case p.Proxy != nil:
		d.ok("proxy", "through "+p.Proxy.Redacted()+" (from HTTPS_PROXY/HTTP_PROXY; NO_PROXY does not exempt this host)")
	default:
		d.ok("proxy", "none: a direct connection (no HTTPS_PROXY/HTTP_PROXY applies to this host)")
	}
	if p.Err != nil {
		if cerr := p.TLSError(); cerr != nil {
			d.fail("endpoint", p.URL+": the server answered, but its TLS certificate is not valid", "see the tls check")
			d.fail("tls", "certificate verification failed: "+cerr.Err.Error(),
				"check that --endpoint names Voximplant's host; if a proxy inspects TLS, trust its certificate authority (SSL_CERT_FILE=ca.pem); for 'sandbox serve --tls', SSL_CERT_FILE=its .cert.pem")
			return false
		}
		if p.Status != 0 { // an answer voxbind does not use: a redirect
			d.fail("endpoint", fmt.Sprintf("%s: %v", p.URL, p.Err), fixURL)
			return false
		}
		d.fail("endpoint", fmt.Sprintf("%s: no answer: %v", p.URL, p.Err), fixURL+"; check the network and the proxy settings")
		return false
	}
	if !p.APIAnswer {
		detail := fmt.Sprintf("%s answers HTTP %d, but not as the Management API", p.URL, p.Status)
		if p.Body != "" {
			detail += ": " + p.Body
		}
		d.fail("endpoint", detail, fixURL)
		return false
	}
	d.ok("endpoint", fmt.Sprintf("%s answers as the Management API (in %s)", p.URL, p.Received.Sub(p.Sent).Round(time.Millisecond)))
	d.checkTLS(p.TLS)
	d.checkClock(p)
	return true
}

func (d *doctor) checkTLS(cs *tls.ConnectionState) {
	if cs == nil {
		d.ok("tls", "not used: plain http to a loopback host")
		return
	}
	if len(cs.PeerCertificates) == 0 {
		d.ok("tls", tls.VersionName(cs.Version))
		return
	}
	cert := cs.PeerCertificates[0]
	detail := fmt.Sprintf("%s, certificate for %s issued by %s, valid until %s", tls.VersionName(cs.Version),
		cert.Subject.CommonName, cert.Issuer.CommonName, cert.NotAfter.UTC().Format("2006-01-02"))
	if left := time.Until(cert.NotAfter); left < 14*24*time.Hour {
		d.warn("tls", detail, "the certificate expires in less than two weeks; nothing to do on this side unless a proxy serves it")
		return
	}
	d.ok("tls", detail)
}

func (d *doctor) checkClock(p voximplant.ProbeResult) {
	offset, ok := p.Offset()
	if !ok {
		d.warn("clock", "the server sent no Date header: cannot compare the clocks", "check that this machine's clock is synchronised (NTP)")
		return
	}
	var detail string
	switch {
	case offset.Abs() <= time.Second:
		detail = "this machine's clock agrees with the server's (within 1 s)"
	case offset > 0:
		detail = fmt.Sprintf("this machine's clock is %s behind the server's (its Date header)", offset)
	default:
		detail = fmt.Sprintf("this machine's clock is %s ahead of the server's (its Date header)", -offset)
	}
	const fix = "synchronise this machine's clock (NTP: 'timedatectl set-ntp true', or 'chronyc makestep')"
	switch {
	case offset.Abs() > doctorClockFail:
		d.fail("clock", detail+"; past 30 s the server refuses tokens made on this machine's time (455, 456)",
			fix+"; voxbind corrects its own tokens by the server's Date header, but other tools using this key are refused")
	case offset.Abs() > doctorClockWarn:
		d.warn("clock", detail, fix+"; at 30 s the server starts refusing tokens made on this machine's time")
	default:
		d.ok("clock", detail)
	}
}

// checkAccount authenticates, reads what plan and export read, and
// reports the account's size, the spec's fit and what the API showed of
// its behaviour.
func (d *doctor) checkAccount(ctx context.Context, creds *voximplant.Credentials, endpoint string, desired *spec.Spec) {
	client, info, ok := d.authenticate(ctx, creds, endpoint, desired)
	if !ok {
		return
	}
	defer d.apiBehaviour(client)
	listing, ok := d.checkReads(ctx, client, info)
	d.flushSpec()
	if desired != nil && !d.checkGuard(desired, info) {
		return
	}
	if len(d.fleet) > 0 {
		d.checkFleet(ctx, creds, endpoint)
	}
	if ok {
		d.checkPlan(ctx, client, desired, listing)
	}
}

// checkFleet checks, for spec files of several accounts, that the key may
// act on each account they name: GetAccountInfo on each, with a read-only
// client of its own, a few accounts at a time.
func (d *doctor) checkFleet(ctx context.Context, creds *voximplant.Credentials, endpoint string) {
	notices := newRetryNotices(d.s)
	errs := make([]error, len(d.fleet))
	infos := make([]reconcile.AccountInfo, len(d.fleet))
	reconcile.ForEachAccount(len(d.fleet), 0, func(i int) {
		desired := d.fleet[i]
		client, err := voximplant.New(voximplant.Options{
			Endpoint: endpoint, Credentials: creds, AccountID: desired.AccountID, AccountSource: desired.AccountIDPos.Short(), ReadOnly: true,
			Logger: d.s.log, OnRetry: notices.retry, UserAgent: "voxbind/" + version, Timeout: doctorTimeout, RetryBudget: doctorRetryBudget,
		})
		if err == nil {
			infos[i], err = client.Info(ctx)
		}
		errs[i] = err
	})
	d.warnFleetStates(infos)
	ids := make([]int64, len(d.fleet))
	var problems []string
	var other error // the first failure that is not the key's refusal
	for i, err := range errs {
		ids[i] = d.fleet[i].AccountID
		if err == nil {
			continue
		}
		var cannot *voximplant.CannotActError
		if errors.As(err, &cannot) {
			problems = append(problems, cannot.Error())
			continue
		}
		detail, _ := apiAdvice(err)
		problems = append(problems, fmt.Sprintf("account %d (%s): %s", d.fleet[i].AccountID, d.fleet[i].AccountIDPos.Short(), detail))
		if other == nil {
			other = err
		}
	}
	if len(problems) == 0 {
		d.ok("fleet accounts", fmt.Sprintf("the key of account %d may act on each of the %s the spec files name: GetAccountInfo answers for each", creds.AccountID, spec.AccountList(ids)))
		return
	}
	const show = 3
	detail := fmt.Sprintf("%d of the %s fail: %s", len(problems), spec.AccountList(ids), strings.Join(problems[:min(show, len(problems))], "; "))
	if len(problems) > show {
		detail += fmt.Sprintf("; … (%d in all)", len(problems))
	}
	fix := "act on the key's own account or its child accounts: check the account_id of those files, or use that account's own key"
	if other != nil {
		_, fix = apiAdvice(other)
	}
	d.fail("fleet accounts", detail, fix)
}

// warnFleetStates warns of the accounts of a fleet (infos, as read; an
// account not read has a zero id) that are frozen or inactive.
func (d *doctor) warnFleetStates(infos []reconcile.AccountInfo) {
	var lines []string
	for _, a := range infos {
		if a.ID != 0 && a.State != "" {
			lines = append(lines, doctorStateLine(a))
		}
	}
	if len(lines) > 0 {
		d.warn("fleet account state", strings.Join(lines, "; "), doctorStateFix)
	}
}

// authenticate makes the read-only client for the account acted on
// (--account-id, else the spec's account_id, else the key's) and checks
// GetAccountInfo as plan and export do (Client.Info): it must answer for
// that account, and for another account than the key's, the key must
// be allowed to act on it.
func (d *doctor) authenticate(ctx context.Context, creds *voximplant.Credentials, endpoint string, desired *spec.Spec) (*voximplant.Client, reconcile.AccountInfo, bool) {
	notices := newRetryNotices(d.s)
	acting, source := d.f.actingOn(desired)
	client, err := voximplant.New(voximplant.Options{
		Endpoint: endpoint, Credentials: creds, AccountID: acting, AccountSource: source, ReadOnly: true,
		Logger: d.s.log, OnRetry: notices.retry, UserAgent: "voxbind/" + version, Timeout: doctorTimeout, RetryBudget: doctorRetryBudget,
	})
	if err != nil {
		d.fail("account", err.Error(), "see the key file and endpoint checks")
		return nil, reconcile.AccountInfo{}, false
	}
	child := acting != 0 && acting != creds.AccountID
	info, err := client.Info(ctx)
	var cannot *voximplant.CannotActError
	switch {
	case errors.As(err, &cannot):
		// The API's own words (the sandbox's say the same again) and the
		// hint for its code (the fix below) would repeat the line: the
		// evidence is the code, and that the key's own account answers.
		detail := cannot.Error()
		var apiErr *voximplant.APIError
		if errors.As(cannot.Err, &apiErr) {
			detail += fmt.Sprintf(": the API refuses %s on it with error %d, and answers it on the key's own account", apiErr.Method, apiErr.Code)
		}
		d.fail("account", detail,
			"act on the key's own account or one of its child accounts: check the id, or use that account's own key")
		return nil, reconcile.AccountInfo{}, false
	case errors.Is(err, voximplant.ErrWrongAccount):
		d.fail("account", err.Error(),
			"point --endpoint (or VOXIMPLANT_ENDPOINT) at the Management API, https://api.voximplant.com/platform_api/, not at a proxy or copy that answers for another account, and use the key file of the account to act on")
		return nil, reconcile.AccountInfo{}, false
	case err != nil:
		d.failAPI("account", "", err)
		return nil, reconcile.AccountInfo{}, false
	}
	d.ok("account", fmt.Sprintf("account %d (%s): GetAccountInfo works with key %s", info.ID, reconcile.Printable(info.Name), reconcile.Printable(creds.KeyID)))
	if child {
		d.ok("child account", fmt.Sprintf("the key of account %d may act on its child account %d", creds.AccountID, info.ID))
	}
	if info.State != "" {
		d.warn("account state", doctorStateLine(info), doctorStateFix)
	}
	return client, info, true
}

// doctorStateLine says what a frozen or inactive account means for a run.
func doctorStateLine(a reconcile.AccountInfo) string {
	return fmt.Sprintf("%s is %s: plan shows its drift as blocked changes, and apply and undo change nothing in it (a run with changes to it exits 1)",
		fleetAccountLabel(a), reconcile.Printable(a.State))
}

// doctorStateFix is what to do about a frozen or inactive account.
const doctorStateFix = "unfreeze (or activate) it in the Voximplant control panel, or leave its spec out of the run"

// checkReads calls each read method plan and export use, then, when all
// answer, reads every application's rules and users for the account's
// size. It returns the traffic that reading the registrations and
// applications took, and whether everything was read.
func (d *doctor) checkReads(ctx context.Context, client *voximplant.Client, info reconcile.AccountInfo) (voximplant.Stats, bool) {
	cur := &reconcile.Current{
		Account: info,
		Rules:   map[int64][]reconcile.Rule{}, Users: map[int64][]reconcile.User{},
	}
	start := client.Stats()
	regs, errRegs := client.Registrations(ctx)
	if errRegs == nil {
		errRegs = reconcile.CheckRegistrations(regs) // as every plan, apply and export checks it
	}
	d.read("GetSipRegistrations", errRegs, fmt.Sprintf("%s read", english.Plural(len(regs), "registration")))
	apps, errApps := client.Applications(ctx)
	d.read("GetApplications", errApps, fmt.Sprintf("%s read", english.Plural(len(apps), "application")))
	end := client.Stats()
	listing := voximplant.Stats{Calls: end.Calls - start.Calls, Requests: end.Requests - start.Requests}
	cur.Registrations, cur.Applications = regs, apps
	ok := errRegs == nil && errApps == nil
	for _, m := range []struct {
		method string
		read   func(context.Context, int64) error
	}{
		{"GetRules", func(ctx context.Context, app int64) error { _, err := client.GetRules(ctx, app); return err }},
		{"GetUsers", func(ctx context.Context, app int64) error { _, err := client.GetUsers(ctx, app); return err }},
	} {
		switch {
		case errApps != nil:
			d.warn("read "+m.method, "not checked: GetApplications failed, so there is no application to read from", "fix GetApplications, then run voxbind doctor again")
		case len(apps) == 0:
			d.ok("read "+m.method, "nothing to read: the account has no applications")
		default:
			err := m.read(ctx, apps[0].ID)
			d.read(m.method, err, fmt.Sprintf("answers (application %d, %s)", apps[0].ID, reconcile.Printable(apps[0].Name)))
			ok = ok && err == nil
		}
	}
	if !ok {
		return listing, false
	}
	if err := reconcile.ObserveMembers(ctx, client, cur); err != nil {
		d.failAPI("account size", "reading every application's rules and users failed: ", err)
		return listing, false
	}
	d.ok("account size", describeSize(cur))
	return listing, true
}

// checkGuard checks the spec's account_id guard against the account acted
// on, and reports whether it holds.
func (d *doctor) checkGuard(desired *spec.Spec, info reconcile.AccountInfo) bool {
	switch id := desired.AccountID; {
	case id != 0 && id != info.ID:
		d.fail("spec guard", fmt.Sprintf("the spec's account_id %d is not account %d, the one these credentials act on", id, info.ID),
			fmt.Sprintf("remove --account-id to act on account %d, use that account's key, or correct account_id in the spec", id))
		return false
	case id == 0 && doctorCSVOnly(desired.Files):
		// A CSV file cannot hold the guard: export says the same.
		d.ok("spec guard", fmt.Sprintf("the spec has no account_id guard, and a CSV file cannot hold one (to keep one, put 'version: 1' and 'account_id: %d' in a YAML file beside it and give -f both, or their directory: plan and apply then refuse any other account)", info.ID))
	case id == 0:
		d.ok("spec guard", fmt.Sprintf("the spec has no account_id guard (adding 'account_id: %d' makes plan and apply refuse any other account)", info.ID))
	default:
		d.ok("spec guard", fmt.Sprintf("account_id %d is the account acted on", id))
	}
	return true
}

// doctorCSVOnly reports whether the spec files are all CSV files, none of
// which can hold an account_id guard.
func doctorCSVOnly(files []string) bool {
	for _, f := range files {
		if !spec.IsCSV(f) {
			return false
		}
	}
	return len(files) > 0
}

// read records the check of one read method.
func (d *doctor) read(method string, err error, detail string) {
	name := "read " + method
	if err == nil {
		d.ok(name, detail)
		return
	}
	var apiErr *voximplant.APIError
	if errors.As(err, &apiErr) && apiErr.Code == voximplant.CodeForbidden {
		d.fail(name, fmt.Sprintf("forbidden (error 104): the service account may not call %s, which plan and export need", method),
			fmt.Sprintf("give the service account one of the roles %s (control panel: service accounts, roles)", voximplant.OneOf(voximplant.MethodRoles[method])))
		return
	}
	d.failAPI(name, "", err)
}

// failAPI fails check name with err, prefix before it. An API error's
// hint is what to do, so it becomes the fix and leaves the detail: the
// two do not say the same thing twice. The hint of an unknown key id
// (433) says what happened rather than what to do, so it stays in the
// detail and the fix says what to do. Other errors get the advice to
// trace the requests.
func (d *doctor) failAPI(name, prefix string, err error) {
	detail, fix := apiAdvice(err)
	d.fail(name, prefix+detail, fix)
}

// fixUnknownKeyID is what to do about an unknown key id (API error 433).
const fixUnknownKeyID = "give the key file of a key the service account has now (--credentials or VOXIMPLANT_CREDENTIALS), or make a new key for it (control panel: service accounts)"

// apiAdvice splits err into what happened and what to do, as failAPI
// reports them.
func apiAdvice(err error) (detail, fix string) {
	detail, fix = err.Error(), "run again with --debug to see each request"
	var apiErr *voximplant.APIError
	var inc *reconcile.InconsistentError
	if errors.As(err, &inc) {
		return inc.Message(), inc.Fix()
	}
	if errors.As(err, &apiErr) {
		switch h := apiErr.Hint(); {
		case apiErr.Code == voximplant.CodeInvalidKeyID:
			fix = fixUnknownKeyID
		case h != "":
			detail, fix = strings.Replace(detail, " ("+h+")", "", 1), h
		}
	}
	return detail, fix
}

func describeSize(c *reconcile.Current) string {
	var bound, frozen, rules, users int
	for _, r := range c.Registrations {
		if r.Target != nil {
			bound++
		}
		if r.Deactivated {
			frozen++
		}
	}
	for _, rs := range c.Rules {
		rules += len(rs)
	}
	for _, us := range c.Users {
		users += len(us)
	}
	return fmt.Sprintf("%s (%d bound, %d frozen), %s, %s, %s", english.Plural(len(c.Registrations), "registration"), bound, frozen,
		english.Plural(len(c.Applications), "application"), english.Plural(rules, "rule"), english.Plural(users, "user"))
}

// checkPlan reports the calls a plan makes, and with a spec, whether it
// resolves against the account. listing is the traffic that reading the
// registrations and applications took.
func (d *doctor) checkPlan(ctx context.Context, client *voximplant.Client, desired *spec.Spec, listing voximplant.Stats) {
	const perChange = "then one BindSipRegistration call per change"
	if desired == nil {
		d.ok("plan reads", fmt.Sprintf("a plan reads the account in %d calls (%d HTTP requests), plus the rules or users of each application the spec binds with a rule or user, %s",
			listing.Calls+1, listing.Requests+1, perChange))
		return
	}
	before := client.Stats()
	observed, err := reconcile.Observe(ctx, client, desired)
	if err != nil {
		d.failAPI("plan reads", "", err)
		return
	}
	after := client.Stats()
	d.ok("plan reads", fmt.Sprintf("a plan of this spec reads the account in %d calls (%d HTTP requests), %s",
		after.Calls-before.Calls, after.Requests-before.Requests, perChange))
	p, err := reconcile.Diff(desired, observed, reconcile.Options{Today: d.today})
	if err != nil {
		if !d.failProblems("spec plan", err, "when the spec meets the account", "to see every problem with its file:line, run: "+d.planCommand()) {
			d.fail("spec plan", err.Error(), "for details, run: "+d.planCommand())
		}
		return
	}
	d.ok("spec plan", planSummary(p))
}

// failProblems fails check name with the spec problems err holds and
// reports whether it held any. One problem (a missing file, a
// registration not in the account) is shown alone with its own fix, which
// says what to do: the command that lists every problem would say nothing
// more. Several are counted ("3 problems WHERE; the first: …") with fix,
// the command that lists them all.
func (d *doctor) failProblems(name string, err error, where, fix string) bool {
	var errs spec.Errors
	switch {
	case !errors.As(err, &errs) || len(errs) == 0:
		return false
	case len(errs) == 1 && errs[0].Fix != "":
		problem := *errs[0]
		problem.Fix = ""
		d.fail(name, problem.Error(), errs[0].Fix)
	default:
		d.fail(name, fmt.Sprintf("%s %s; the first: %v", english.Plural(len(errs), "problem"), where, errs[0]), fix)
	}
	return true
}

// planCommand is the plan command of the spec files and account flags
// doctor was given, to paste (see applyPlanCommand).
func (d *doctor) planCommand() string {
	cmd := "voxbind plan"
	if len(d.files) > 0 {
		cmd += " " + fileArgs(d.files)
	}
	return cmd + d.f.givenArgs(d.s.given)
}

// planSummary is a plan's summary in words.
func planSummary(p *reconcile.Plan) string {
	if p.Empty() {
		return "the spec resolves against the account: no changes"
	}
	s := fmt.Sprintf("the spec resolves against the account: %d to bind, %d to rebind, %d to unbind", p.Summary.Bind, p.Summary.Rebind, p.Summary.Unbind)
	if n := len(p.Blocked); n > 0 {
		s += fmt.Sprintf(", %d blocked", n)
	}
	return s
}

// apiBehaviour reports what voxbind observed of the API's behaviour that
// it relies on: the pages the server returned, what count meant in its
// answers, and rate-limit answers.
func (d *doctor) apiBehaviour(client *voximplant.Client) {
	pg, st := client.Paging(), client.Stats()
	if pg.Pages > 0 {
		var meant []string
		for _, m := range []struct {
			n    int
			what string
		}{
			{pg.CountIsPage, "the rows in the page"},
			{pg.CountIsTotal, "the whole list's size"},
			{pg.CountOther, "neither the page's rows nor total_count"},
			{pg.CountAbsent, "nothing (no count)"},
		} {
			if m.n > 0 {
				meant = append(meant, fmt.Sprintf("%s in %s", m.what, english.Plural(m.n, "answer")))
			}
		}
		if whole := pg.Pages - pg.CountIsPage - pg.CountIsTotal - pg.CountOther - pg.CountAbsent; whole > 0 {
			meant = append(meant, fmt.Sprintf("both in %s that held a whole list", english.Plural(whole, "answer")))
		}
		d.ok("api paging", fmt.Sprintf("%s read; the largest held %d rows (voxbind asks for %d); count meant %s (voxbind pages by the rows it gets, whatever count says)",
			english.Plural(pg.Pages, "page"), pg.LargestPage, pg.Asked, strings.Join(meant, ", ")))
	}
	if st.RateLimited == 0 {
		d.ok("api rate limit", fmt.Sprintf("no rate-limit answers (error 340, HTTP 429) in %s", english.Plural(int(st.Requests), "request")))
		return
	}
	answers := fmt.Sprintf("%s in %s", english.Plural(int(st.RateLimited), "rate-limit answer"), english.Plural(int(st.Requests), "request"))
	if st.Rate == 0 {
		// Every refusal came too early to measure the API's rate by (a
		// rate of 0 is no ceiling): the client only backed off.
		d.ok("api rate limit", answers+"; voxbind backed off and retried each (the API had accepted too few requests, in too short a time, to measure its rate by)")
		return
	}
	d.ok("api rate limit", fmt.Sprintf("%s; voxbind slowed down by itself to %.0f requests/s", answers, st.Rate))
}

// render writes the report as text (one line per check, a fix under each
// failure or warning, a summary) or as one JSON document.
func (d *doctor) render(w io.Writer, format string) error {
	if format == "json" {
		enc := reconcile.NewJSONEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Checks []doctorCheck `json:"checks"`
		}{d.checks})
	}
	width := 0
	for _, c := range d.checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	for _, c := range d.checks {
		status := c.Status
		if status == "fail" {
			status = "FAIL"
		}
		// One line each, whatever the file names in them hold.
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", status, width, c.Name, reconcile.Printable(c.Detail))
		if c.Fix != "" {
			fmt.Fprintf(&b, "%-4s  %-*s  fix: %s\n", "", width, "", reconcile.Printable(c.Fix))
		}
	}
	fmt.Fprintf(&b, "\n%s: %d ok, %s, %d failed.\n", english.Plural(len(d.checks), "check"), d.count("ok"), english.Plural(d.count("warn"), "warning"), d.count("fail"))
	_, err := io.WriteString(w, b.String())
	return err
}
