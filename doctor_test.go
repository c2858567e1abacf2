package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxbind/voxbind/sandbox"
)

// doctorServer is a sandbox behind an httptest server that records the
// method of every request, so that a test can check that doctor never
// writes.
type doctorServer struct {
	dir, creds, endpoint string

	mu      sync.Mutex
	methods []string
}

// newDoctorServer initialises a sandbox directory (with children child
// accounts), lets mutate change its state, and serves it with opts.
func newDoctorServer(t *testing.T, children int, mutate func(*sandbox.State), opts sandbox.Options) *doctorServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sbx")
	if err := sandbox.Init(dir, children); err != nil {
		t.Fatal(err)
	}
	st, err := sandbox.Load(filepath.Join(dir, sandbox.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(st)
	}
	srv := sandbox.New(st, opts)
	d := &doctorServer{dir: dir, creds: filepath.Join(dir, sandbox.CredentialsFile)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Path
		if rest, ok := strings.CutPrefix(r.URL.Path, "/platform_api"); ok {
			method = strings.TrimPrefix(rest, "/")
			if method == "" {
				r.ParseMultipartForm(1 << 20)
				method = r.FormValue("cmd")
			}
		}
		d.mu.Lock()
		d.methods = append(d.methods, method)
		d.mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	d.endpoint = ts.URL + "/platform_api/"
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, m := range d.methods {
			if strings.Contains(strings.ToLower(m), "bind") {
				t.Errorf("doctor sent %s: it must only read", m)
			}
		}
	})
	return d
}

// doctorReport runs voxbind doctor -o json with args and returns the exit
// code and the checks by name.
func doctorReport(t *testing.T, args ...string) (int, map[string]doctorCheck) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"doctor", "-o", "json"}, args...), &Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	var rep struct {
		Checks []doctorCheck `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("doctor -o json: not one JSON document (%v):\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	checks := map[string]doctorCheck{}
	for _, c := range rep.Checks {
		if _, dup := checks[c.Name]; dup {
			t.Errorf("two checks named %q", c.Name)
		}
		if c.Status != "ok" && c.Status != "warn" && c.Status != "fail" {
			t.Errorf("check %q has status %q", c.Name, c.Status)
		}
		if c.Status != "ok" && c.Fix == "" {
			t.Errorf("check %q (%s) says nothing to do: %s", c.Name, c.Status, c.Detail)
		}
		if c.Fix != "" && strings.Contains(c.Detail, c.Fix) {
			t.Errorf("check %q: the fix repeats the detail: %s", c.Name, c.Fix)
		}
		checks[c.Name] = c
	}
	for _, secret := range []string{"PRIVATE KEY", "eyJ", "Bearer"} {
		if strings.Contains(out.String(), secret) || strings.Contains(errb.String(), secret) {
			t.Errorf("the report holds %q", secret)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", out.String())
	}
	return code, checks
}

// wantStatus checks the status of named checks; "-" means absent.
func wantStatus(t *testing.T, checks map[string]doctorCheck, want map[string]string) {
	t.Helper()
	for name, status := range want {
		c, ok := checks[name]
		switch {
		case status == "-" && ok:
			t.Errorf("check %q ran (%s: %s); it should not", name, c.Status, c.Detail)
		case status != "-" && !ok:
			t.Errorf("no check %q", name)
		case ok && c.Status != status:
			t.Errorf("check %q is %s (%s; fix: %s), want %s", name, c.Status, c.Detail, c.Fix, status)
		}
	}
}

var allReads = map[string]string{
	"read GetSipRegistrations": "ok", "read GetApplications": "ok", "read GetRules": "ok", "read GetUsers": "ok",
}

func TestDoctorGood(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint)
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for name, c := range checks {
		if c.Status != "ok" {
			t.Errorf("check %q is %s: %s", name, c.Status, c.Detail)
		}
	}
	wantStatus(t, checks, allReads)
	wantStatus(t, checks, map[string]string{
		"key file": "ok", "key file mode": "ok", "endpoint": "ok", "proxy": "ok", "tls": "ok", "clock": "ok",
		"account": "ok", "account size": "ok", "plan reads": "ok", "api paging": "ok", "api rate limit": "ok",
	})
	for name, want := range map[string]string{
		"key file":     "RSA 2048-bit",
		"account":      "account 1000001 (demo)",
		"account size": "12 registrations (8 bound, 1 frozen), 3 applications, 4 rules, 5 users",
		"plan reads":   "4 calls",
		"api paging":   "the largest held 12 rows (voxbind asks for 1000); count meant the rows in the page",
	} {
		if !strings.Contains(checks[name].Detail, want) {
			t.Errorf("%s: %q does not say %q", name, checks[name].Detail, want)
		}
	}
}

func TestDoctorKeyFileProblems(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	t.Setenv("VOXIMPLANT_CREDENTIALS", "")
	// A blank in the name: the fix is a command to paste, so it quotes it.
	loose := filepath.Join(t.TempDir(), "loose key.json")
	data, err := os.ReadFile(s.creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o644)
	garbled := filepath.Join(t.TempDir(), "garbled.json")
	os.WriteFile(garbled, []byte(`{"account_email": "a@b", "account_id": 1, "key_id": "k"}`), 0o600)

	for _, tt := range []struct {
		name      string
		args      []string
		wantCode  int
		want      map[string]string
		wantInFix string
	}{
		{"no key file at all", nil, 1, map[string]string{"key file": "fail", "endpoint": "ok", "clock": "ok", "account": "-"}, "VOXIMPLANT_CREDENTIALS"},
		{"missing key file", []string{"--credentials", filepath.Join(s.dir, "nope.json")}, 1, map[string]string{"key file": "fail", "endpoint": "ok", "account": "-"}, "check the path"},
		{"not a key file", []string{"--credentials", garbled}, 1, map[string]string{"key file": "fail", "account": "-"}, "unchanged"},
		{"readable by others", []string{"--credentials", loose}, 0, map[string]string{"key file": "ok", "key file mode": "warn", "account": "ok"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, checks := doctorReport(t, append(tt.args, "--endpoint", s.endpoint)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			wantStatus(t, checks, tt.want)
			if tt.wantInFix != "" && !strings.Contains(checks["key file"].Fix, tt.wantInFix) {
				t.Errorf("fix %q does not say %q", checks["key file"].Fix, tt.wantInFix)
			}
		})
	}
	if _, checks := doctorReport(t, "--credentials", loose, "--endpoint", s.endpoint); checks["key file mode"].Fix != "chmod 600 '"+loose+"'" {
		t.Errorf("key file mode fix = %q", checks["key file mode"].Fix)
	}
}

func TestDoctorUnknownKeyID(t *testing.T) {
	s := newDoctorServer(t, 0, func(st *sandbox.State) { st.Keys[0].KeyID = "another-key" }, sandbox.Options{})
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantStatus(t, checks, map[string]string{"key file": "ok", "endpoint": "ok", "account": "fail", "read GetApplications": "-"})
	// The detail says what happened, the fix what to do.
	if c := checks["account"]; !strings.Contains(c.Detail, "433") || !strings.Contains(c.Detail, "key_id is unknown") ||
		!strings.Contains(c.Fix, "new key") || strings.Contains(c.Fix, "key_id is unknown") {
		t.Errorf("account check = %+v", c)
	}
}

// TestDoctorProxyUnreachable: when the proxy that HTTPS_PROXY names cannot
// be used, the proxy check fails and says what to do about the proxy; the
// endpoint check points at it instead of blaming the endpoint's URL. It
// runs voxbind as a process: net/http reads the proxy variables once per
// process.
func TestDoctorProxyUnreachable(t *testing.T) {
	bin := applyBinary(t)
	creds := filepath.Join(initSandbox(t), sandbox.CredentialsFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "doctor", "-o", "json", "--credentials", creds, "--endpoint", "https://api.voximplant.com/platform_api/")
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(name), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HTTPS_PROXY="+closed)
	cmd.Dir = t.TempDir() // no voxbind.yaml: no spec check
	out, _ := cmd.Output()
	var rep struct{ Checks []doctorCheck }
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("doctor -o json: %v\n%s", err, out)
	}
	checks := map[string]doctorCheck{}
	for _, c := range rep.Checks {
		checks[c.Name] = c
	}
	wantStatus(t, checks, map[string]string{"key file": "ok", "proxy": "fail", "endpoint": "fail", "account": "-"})
	if c := checks["proxy"]; !strings.Contains(c.Detail, closed) || !strings.Contains(c.Fix, "HTTPS_PROXY") {
		t.Errorf("proxy check = %+v", c)
	}
	if c := checks["endpoint"]; strings.Contains(c.Fix, "base URL") || !strings.Contains(c.Fix, "proxy") {
		t.Errorf("endpoint check = %+v; want it to point at the proxy, not the URL", c)
	}
}

func TestDoctorWrongEndpoint(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/platform_api/"
	ln.Close()
	// Each fails for its own reason: plain http far off is refused, never
	// sent (a lookup that fails would fail it too).
	for name, tt := range map[string]struct{ endpoint, detail string }{
		"not the API's path": {strings.TrimSuffix(s.endpoint, "platform_api/") + "api/v2/", "answers HTTP 404, but not as the Management API"},
		"nothing listens":    {closed, "no answer"},
		"plain http far off": {"http://api.example.com/platform_api/", `plain http:// is refused for non-loopback host "api.example.com"`},
		"not a URL":          {"api.voximplant.com", "no host"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", tt.endpoint)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			wantStatus(t, checks, map[string]string{"key file": "ok", "endpoint": "fail", "clock": "-", "account": "-"})
			if d := checks["endpoint"].Detail; !strings.Contains(d, tt.detail) {
				t.Errorf("endpoint detail %q does not say %q", d, tt.detail)
			}
			if !strings.Contains(checks["endpoint"].Fix, "platform_api/") {
				t.Errorf("endpoint fix %q does not name the right URL", checks["endpoint"].Fix)
			}
			if d := time.Since(start); d > 40*time.Second {
				t.Errorf("took %v: a wrong endpoint must fail fast", d)
			}
		})
	}
}

func TestDoctorClock(t *testing.T) {
	for _, tt := range []struct {
		skew     time.Duration
		status   string
		wantCode int
		word     string
	}{
		{20 * time.Second, "warn", 0, "behind"},
		{-20 * time.Second, "warn", 0, "ahead of"},
		{60 * time.Second, "fail", 1, "behind"},
		{-60 * time.Second, "fail", 1, "ahead of"},
	} {
		t.Run(tt.skew.String(), func(t *testing.T) {
			s := newDoctorServer(t, 0, nil, sandbox.Options{ClockSkew: tt.skew})
			code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			// voxbind corrects its own tokens, so the account still answers.
			wantStatus(t, checks, map[string]string{"clock": tt.status, "account": "ok"})
			wantStatus(t, checks, allReads)
			if c := checks["clock"]; !strings.Contains(c.Detail, tt.word) || !strings.Contains(c.Fix, "NTP") {
				t.Errorf("clock check = %+v", c)
			}
		})
	}
}

func TestDoctorRoleWithoutReads(t *testing.T) {
	s := newDoctorServer(t, 0, func(st *sandbox.State) { st.Keys[0].Roles = []string{"Accountant"} }, sandbox.Options{})
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantStatus(t, checks, map[string]string{
		"account": "ok", "read GetSipRegistrations": "ok", "read GetApplications": "fail",
		"read GetRules": "warn", "read GetUsers": "warn", "account size": "-",
	})
	if fix := checks["read GetApplications"].Fix; !strings.Contains(fix, "Owner, Admin, Developer, Supervisor or Support") {
		t.Errorf("fix %q does not name the roles that may read applications", fix)
	}
}

func TestDoctorChildAccount(t *testing.T) {
	s := newDoctorServer(t, 2, nil, sandbox.Options{})
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "--account-id", "1000002")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	wantStatus(t, checks, map[string]string{"account": "ok", "child account": "ok"})
	if d := checks["account"].Detail; !strings.Contains(d, "1000002 (demo-child1)") {
		t.Errorf("account = %q", d)
	}
	code, checks = doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "--account-id", "4242")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantStatus(t, checks, map[string]string{"account": "fail", "child account": "-"})
	if c := checks["account"]; !strings.Contains(c.Detail, "cannot act on account 4242") || !strings.Contains(c.Fix, "child") {
		t.Errorf("account = %+v", c)
	}
}

func TestDoctorSpec(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "version: 1\naccount_id: 1000001\nbindings:\n  - registration: lobby@pbx.example.com\n    application: fax\n")
	other := write("other.yaml", "version: 1\naccount_id: 42\nbindings: []\n")
	unknown := write("unknown.yaml", "version: 1\nbindings:\n  - registration: nobody@pbx.example.com\n    application: fax\n")
	broken := write("broken.yaml", "version: 1\nbindngs: []\n")
	// The entry starts at line 4; its until, where validate and plan name
	// it, is at line 6.
	ended := write("ended.yaml", "version: 1\nbindings: []\nignore:\n  - registration_id: 3010\n    reason: r\n    until: 2020-01-01\n")
	csv := write("lines.csv", "registration,application\nlobby@pbx.example.com,fax\n")
	for _, tt := range []struct {
		file string
		args []string
		code int
		want map[string]string
		say  string
	}{
		{good, nil, 0, map[string]string{"spec": "ok", "spec guard": "ok", "plan reads": "ok", "spec plan": "ok"}, "1 to bind"},
		// The spec's account_id is the account acted on: account 42 is not
		// one the key may act on.
		{other, nil, 1, map[string]string{"spec": "ok", "account": "fail", "spec guard": "-"}, "cannot act on account 42 (" + other + ":2)"},
		{other, []string{"--account-id", "1000001"}, 1, map[string]string{"spec": "ok", "spec guard": "fail", "spec plan": "-"}, "account_id 42"},
		{unknown, nil, 1, map[string]string{"spec": "ok", "spec guard": "ok", "spec plan": "fail"}, "nobody@pbx.example.com"},
		{broken, nil, 1, map[string]string{"spec": "fail", "account": "ok", "spec guard": "-"}, "bindngs"},
		{ended, nil, 0, map[string]string{"spec": "ok", "spec ignore": "warn", "spec plan": "ok"}, "the first at " + ended + ":6 ended with 2020-01-01"},
		// A CSV file cannot hold account_id: the hint is export's.
		{csv, nil, 0, map[string]string{"spec": "ok", "spec guard": "ok", "spec plan": "ok"}, "a CSV file cannot hold one (to keep one, put 'version: 1' and 'account_id: 1000001' in a YAML file beside it"},
		{good, nil, 0, map[string]string{"spec ignore": "-"}, "1 to bind"},
	} {
		t.Run(filepath.Base(tt.file)+strings.Join(tt.args, ""), func(t *testing.T) {
			args := append([]string{"--credentials", s.creds, "--endpoint", s.endpoint, "-f", tt.file}, tt.args...)
			code, checks := doctorReport(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			wantStatus(t, checks, tt.want)
			var all strings.Builder
			for _, c := range checks {
				all.WriteString(c.Detail + "\n")
			}
			if !strings.Contains(all.String(), tt.say) {
				t.Errorf("the report does not say %q", tt.say)
			}
		})
	}
}

// TestDoctorNeverWrites runs doctor in every set-up above and under
// injected failures and rate limits: the server must never see
// BindSipRegistration (newDoctorServer checks), and doctor must end with
// a report, whatever happens.
func TestDoctorNeverWrites(t *testing.T) {
	t.Parallel()
	for _, opts := range []sandbox.Options{
		{FailRate: 0.3, Seed: 1},
		{FailRate: 0.3, Seed: 2},
		{Rate: 20},
	} {
		s := newDoctorServer(t, 0, nil, opts)
		code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", filepath.Join("examples", "quickstart.yaml"))
		if code != 0 && code != 1 {
			t.Errorf("%+v: exit %d", opts, code)
		}
		if len(checks) == 0 {
			t.Errorf("%+v: no checks", opts)
		}
	}
}

// TestDoctorTellsRetries: doctor's client tells its retries on stderr as
// every command's does.
func TestDoctorTellsRetries(t *testing.T) {
	dir := initSandbox(t)
	srv, err := sandbox.Open(filepath.Join(dir, sandbox.StateFile), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var failed atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" && !failed.Swap(true) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	var out, errb bytes.Buffer
	code := run([]string{"doctor", "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", ts.URL + "/platform_api/"},
		&Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 || !strings.Contains(errb.String(), "voxbind: the API is failing (http status 503); retrying for up to ") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// TestDoctorFleetSpec: spec files for several accounts are checked as a
// fleet: the key's own account as usual, every spec valid, and that the
// key may act on each account they name; --account-id picks one of them,
// which is then the account checked, and one child's file acts on the
// child.
func TestDoctorFleetSpec(t *testing.T) {
	s := newDoctorServer(t, 2, nil, sandbox.Options{})
	dir := t.TempDir()
	for id, reg := range map[int64]string{1000002: "lobby", 1000003: "conf"} {
		text := fmt.Sprintf("version: 1\naccount_id: %d\nbindings:\n  - registration: %s@pbx.example.com\n    application: fax\n", id, reg)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.yaml", id)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", dir)
	if code != 0 {
		t.Errorf("a valid fleet: exit %d, want 0", code)
	}
	wantStatus(t, checks, map[string]string{"spec": "ok", "account": "ok", "fleet accounts": "ok", "spec guard": "-", "spec plan": "-"})
	if c := checks["spec"]; !strings.Contains(c.Detail, "2 bindings for 2 accounts (1000002, 1000003), valid") {
		t.Errorf("spec = %+v", c)
	}
	if c := checks["fleet accounts"]; !strings.Contains(c.Detail, "the key of account 1000001 may act on each of the 2 accounts (1000002, 1000003)") {
		t.Errorf("fleet accounts = %+v", c)
	}

	// An account the key may not act on fails the fleet's check, naming
	// its file's line; the specs are valid all the same.
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("version: 1\naccount_id: 424242\nbindings: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, checks = doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", dir)
	if code != 1 {
		t.Errorf("a fleet with an account the key may not act on: exit %d, want 1", code)
	}
	wantStatus(t, checks, map[string]string{"spec": "ok", "account": "ok", "fleet accounts": "fail"})
	if c := checks["fleet accounts"]; !strings.Contains(c.Detail, "1 of the 3 accounts (424242, 1000002, 1000003) fail: the key of account 1000001 cannot act on account 424242 ("+other+":2)") ||
		!strings.Contains(c.Fix, "child accounts") {
		t.Errorf("fleet accounts = %+v", c)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}

	code, checks = doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", dir, "--account-id", "1000003")
	if code != 0 {
		t.Errorf("with --account-id: exit %d, want 0", code)
	}
	wantStatus(t, checks, map[string]string{"spec": "ok", "child account": "ok", "spec guard": "ok", "spec plan": "ok"})
	code, checks = doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", filepath.Join(dir, "1000002.yaml"))
	if code != 0 {
		t.Errorf("one child's file: exit %d, want 0", code)
	}
	if d := checks["account"].Detail; !strings.Contains(d, "account 1000002 (demo-child1)") {
		t.Errorf("one child's file: the account checked is %q, want the child's", d)
	}
}

// TestDoctorCountsRateLimits: the rate-limit answers doctor's reads get
// are counted in its "api rate limit" check, in text and in -o json, out
// of the requests it sent; the calls are retried, so the account checks
// still pass. The server refuses the first attempt of the methods named
// with the sandbox's own answer to a request over its --rate.
func TestDoctorCountsRateLimits(t *testing.T) {
	dir := initSandbox(t)
	srv, err := sandbox.Open(filepath.Join(dir, sandbox.StateFile), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	for _, tc := range []struct {
		name   string
		refuse []string
		want   *regexp.Regexp
	}{
		// GetUsers comes after enough accepted answers for the client to
		// estimate the API's rate and slow down to it.
		{"after reads", []string{"GetAccountInfo", "GetUsers"},
			regexp.MustCompile(`^2 rate-limit answers in (\d+) requests; voxbind slowed down by itself to [1-9]\d* requests/s$`)},
		// The very first call: nothing accepted yet to estimate a rate by.
		{"first call", []string{"GetAccountInfo"},
			regexp.MustCompile(`^1 rate-limit answer in (\d+) requests; voxbind backed off and retried each \(the API had accepted too few requests, in too short a time, to measure its rate by\)$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0 // with a token: the client's, not the endpoint probe's
			refused := map[string]bool{}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					method := path.Base(r.URL.Path)
					mu.Lock()
					requests++
					refuse := slices.Contains(tc.refuse, method) && !refused[method]
					refused[method] = true
					mu.Unlock()
					if refuse {
						w.Write([]byte(`{"error":{"code":340,"msg":"rate limit exceeded: the sandbox accepts 1 requests per second for account 1000001"}}`))
						return
					}
				}
				srv.ServeHTTP(w, r)
			}))
			defer ts.Close()
			args := []string{"--credentials", creds, "--endpoint", ts.URL + "/platform_api/"}

			code, checks := doctorReport(t, args...)
			if code != 0 {
				t.Errorf("-o json: exit %d, want 0: the refused calls are retried", code)
			}
			wantStatus(t, checks, allReads)
			wantStatus(t, checks, map[string]string{"account": "ok", "account size": "ok", "api rate limit": "ok"})
			mu.Lock()
			sent := requests
			requests = 0
			clear(refused)
			mu.Unlock()
			detail := checks["api rate limit"].Detail
			if m := tc.want.FindStringSubmatch(detail); m == nil || m[1] != strconv.Itoa(sent) {
				t.Errorf("-o json: api rate limit says %q; want it to match %s with the %d requests the server got", detail, tc.want, sent)
			}

			var out, errb bytes.Buffer
			code = run(append([]string{"doctor"}, args...), &Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
			line := regexp.MustCompile(`(?m)^ok +api rate limit +(.*)$`).FindStringSubmatch(out.String())
			if code != 0 || line == nil || !tc.want.MatchString(line[1]) {
				t.Errorf("text: exit %d; want 0 and an api rate limit line matching %s:\n%s", code, tc.want, out.String())
			}
			if !strings.Contains(errb.String(), "voxbind: the API is limiting the request rate (api error 340); retrying for up to ") {
				t.Errorf("text: stderr does not tell the retry:\n%s", errb.String())
			}
		})
	}
}

// TestDoctorEscapesAccountData: the names doctor shows come from the
// account; escape codes, newlines and bidirectional-text controls in them
// are shown escaped, in text and in JSON.
func TestDoctorEscapesAccountData(t *testing.T) {
	const account, app = "demo\u001b[2J\nFAKE\u202e", "fax\u001b]0;x\u0007\r\nFAKE-app\u009b"
	state := fleetTestState(t, 0, func(st *sandbox.State) {
		st.Account.Name = account
		for i := range st.Applications {
			st.Applications[i].Name = app + strconv.Itoa(i)
		}
	})
	for _, format := range []string{"text", "json"} {
		code, stdout, stderr := runCLI(t, "--sandbox", state, "doctor", "-o", format)
		if code != 0 {
			t.Fatalf("%s: exit %d:\n%s\n%s", format, code, stdout, stderr)
		}
		for _, raw := range []string{"\x1b", "\nFAKE", "\rFAKE", "\u202e", "\u009b", "\a"} {
			if strings.Contains(stdout+stderr, raw) {
				t.Errorf("%s: the report holds %q raw:\n%q", format, raw, stdout)
			}
		}
		shown := stdout
		if format == "json" {
			var rep struct{ Checks []doctorCheck }
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			shown = fmt.Sprint(rep.Checks)
		}
		for _, want := range []string{`demo\x1b[2J\nFAKE\u202e`, `fax\x1b]0;x\x07\r\nFAKE-app\x9b`} {
			if !strings.Contains(shown, want) {
				t.Errorf("%s: the report does not show %q escaped:\n%s", format, want, shown)
			}
		}
	}
}

// TestDoctorWrongAccount: when GetAccountInfo answers for another account
// than the one the key asks for, doctor's account check fails, as plan
// and export refuse to go on.
func TestDoctorWrongAccount(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, strings.TrimSuffix(s.endpoint, "/platform_api/")+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if strings.HasSuffix(r.URL.Path, "/GetAccountInfo") {
			answer = bytes.ReplaceAll(answer, []byte(`"account_id":1000001`), []byte(`"account_id":424242`))
		}
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(liar.Close)
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", liar.URL+"/platform_api/")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantStatus(t, checks, map[string]string{"endpoint": "ok", "account": "fail", "account size": "-"})
	want := "voxbind acts on account 1000001 (the key file's account_id), but the API answered for account 424242"
	if c := checks["account"]; !strings.Contains(c.Detail, want) || !strings.Contains(c.Fix, "--endpoint") {
		t.Errorf("account = %+v; want it to say %q, and a fix about --endpoint", c, want)
	}
}

// TestDoctorRefusesRedirect: the endpoint check reports a redirect,
// naming its Location, and never contacts where it points.
func TestDoctorRefusesRedirect(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	var contacted atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contacted.Add(1)
		w.Write([]byte(`{"error":{"code":100,"msg":"Authorization failed"}}`))
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	code, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", redirector.URL+"/platform_api/")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := contacted.Load(); n != 0 {
		t.Errorf("doctor followed the redirect: %d requests reached its target", n)
	}
	wantStatus(t, checks, map[string]string{"endpoint": "fail", "account": "-"})
	if d := checks["endpoint"].Detail; !strings.Contains(d, "a redirect (Location "+target.URL+"/platform_api/GetAccountInfo)") || strings.Contains(d, "no answer") {
		t.Errorf("endpoint = %q; want it to name the redirect's Location", d)
	}
}

// TestDoctorEndpointWithPassword: user:password@ in --endpoint fails the
// endpoint check, and the password is printed nowhere.
func TestDoctorEndpointWithPassword(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	endpoint := strings.Replace(s.endpoint, "http://", "http://bob:hunter2pass@", 1)
	for _, format := range []string{"text", "json"} {
		code, stdout, stderr := runCLI(t, "--credentials", s.creds, "--endpoint", endpoint, "doctor", "-o", format)
		if code != 1 || !strings.Contains(stdout, "remove user:password@ from --endpoint") || strings.Contains(stdout+stderr, "hunter2pass") {
			t.Errorf("%s: exit %d, want 1 and the endpoint refused without the password:\n%s\n%s", format, code, stdout, stderr)
		}
	}
}

// TestDoctorFixes: each failed check gives the one fix that fits it. A
// spec file that does not exist is to be looked for, not validated (the
// validate hint stays for a spec with several problems); a key file that
// is not one says "unchanged" once.
func TestDoctorFixes(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("version: 1\nbindngs: []\nprune: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, detail, fix string }{
		{missing, missing + ": no such file or directory", "check the path given with -f (the default is voxbind.yaml in the current directory)"},
		{broken, "2 problems in " + broken + "; the first: " + broken + ":2:1: unknown key", "to see every problem with its file:line:col, run: voxbind validate -f " + broken},
	} {
		_, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", tt.file)
		c := checks["spec"]
		if c.Status != "fail" || !strings.HasPrefix(c.Detail, tt.detail) || c.Fix != tt.fix {
			t.Errorf("-f %s: spec check %+v; want fail, detail %q..., fix %q", tt.file, c, tt.detail, tt.fix)
		}
	}

	key := filepath.Join(dir, "key.json")
	if err := os.WriteFile(key, []byte(`{"account_id": 1, "key_id": "k", "private_key": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, checks := doctorReport(t, "--credentials", key, "--endpoint", s.endpoint)
	if c := checks["key file"]; c.Status != "fail" || strings.Count(c.Fix, "unchanged") != 1 {
		t.Errorf("key file check %+v; want fail, and a fix that says unchanged once", c)
	}
}

// TestDoctorSpecPlanFixes: a spec that fails to resolve against the
// account with one problem gives that problem alone and its own fix; with
// several, the plan command that lists them, with the -f files and the
// account flags doctor was given, to paste (a bare 'voxbind plan' reads
// voxbind.yaml, not the files doctor checked).
func TestDoctorSpecPlanFixes(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	dir := t.TempDir()
	one := filepath.Join(dir, "one.yaml")
	two := filepath.Join(dir, "two.yaml")
	if err := os.WriteFile(one, []byte("version: 1\nbindings:\n  - registration: \"z@y\"\n    unbound: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(two, []byte("version: 1\nbindings:\n  - registration: \"z@y\"\n    unbound: true\n  - registration: \"q@y\"\n    unbound: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, detail, fix string }{
		{one, one + `:3:5: registration "z@y" not found in account 1000001: no registration has that sip_username and proxy`,
			"check the spelling: voxbind export lists the registrations"},
		{two, "3 problems when the spec meets the account; the first: " + two + ":3: none of the spec's 2 registrations",
			"to see every problem with its file:line, run: voxbind plan -f " + two + " --credentials=" + s.creds + " --endpoint='" + s.endpoint + "'"},
	} {
		_, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", tt.file)
		c := checks["spec plan"]
		if c.Status != "fail" || !strings.HasPrefix(c.Detail, tt.detail) || c.Fix != tt.fix {
			t.Errorf("-f %s: spec plan check %+v;\nwant fail, detail %q...,\nfix %q", tt.file, c, tt.detail, tt.fix)
		}
	}
	if _, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", one); checks["spec plan"].Detail != one+`:3:5: registration "z@y" not found in account 1000001: no registration has that sip_username and proxy` {
		t.Errorf("one problem: detail %q; want the problem alone, without its fix", checks["spec plan"].Detail)
	}
	// A file name holding an escape sequence is quoted and shown escaped
	// in the command to paste.
	odd := filepath.Join(dir, "two\x1b[31m.yaml")
	if err := os.Rename(two, odd); err != nil {
		t.Fatal(err)
	}
	_, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "-f", odd)
	if fix := checks["spec plan"].Fix; !strings.Contains(fix, " plan -f '"+dir+`/two\x1b[31m.yaml' --credentials=`) {
		t.Errorf("fix %q; want the file quoted and escaped", fix)
	}
}

// TestDoctorCannotActSaysItOnce: an account the key may not act on fails
// the account check with one sentence and the API's code, not voxbind's
// sentence, then the API's message saying it again, then the hint for 100.
func TestDoctorCannotActSaysItOnce(t *testing.T) {
	s := newDoctorServer(t, 0, nil, sandbox.Options{})
	_, checks := doctorReport(t, "--credentials", s.creds, "--endpoint", s.endpoint, "--account-id", "999")
	c := checks["account"]
	want := "the key of account 1000001 cannot act on account 999 (--account-id): the API refuses GetAccountInfo on it with error 100, and answers it on the key's own account"
	if c.Status != "fail" || c.Detail != want {
		t.Errorf("account check %+v;\nwant detail %q", c, want)
	}
}
