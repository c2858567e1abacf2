package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// TestRedirectToTheTokenLeaksNothing: a server that answers 302 with the
// request's own bearer token in Location (as the path, and as the host
// name) gets it printed nowhere: not on stderr, not in plan -o json's
// diagnostics, not in the --debug trace, not in apply's journal.
func TestRedirectToTheTokenLeaksNothing(t *testing.T) {
	dir := initSandbox(t)
	credsFile := filepath.Join(dir, sandbox.CredentialsFile)
	creds, err := voximplant.LoadCredentials(credsFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sandbox.Open(filepath.Join(dir, sandbox.StateFile), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct{ name, method, location string }{
		{"token as the path", "GetSipRegistrations", "http://127.0.0.1:9/TOKEN"},
		{"token as the host", "GetSipRegistrations", "http://TOKEN:9/x"},
		{"token in a write's redirect", "BindSipRegistration", "http://127.0.0.1:9/p/TOKEN/q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tokens leakcheck.Recorder
			ts := httptest.NewServer(tokens.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/"+tc.method) {
					tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
					w.Header().Set("Location", strings.ReplaceAll(tc.location, "TOKEN", tok))
					w.WriteHeader(http.StatusFound)
					return
				}
				srv.ServeHTTP(w, r)
			})))
			defer ts.Close()
			global := []string{"--debug", "--credentials", credsFile, "--endpoint", ts.URL + "/platform_api/"}
			spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
			journal := filepath.Join(t.TempDir(), "journal.jsonl")

			var outputs []string
			code, stdout, stderr := applyRun(t, "", append(global, "plan", "-f", spec, "-o", "json")...)
			outputs = append(outputs, stdout, stderr)
			wantCode := 1
			if tc.method == "BindSipRegistration" {
				wantCode = 0 // plan only reads
			}
			if code != wantCode {
				t.Errorf("plan -o json: exit %d, want %d:\n%s", code, wantCode, stderr)
			}
			code, stdout, stderr = applyRun(t, "", append(global, "apply", "-f", spec, "--auto-approve", "--journal", journal)...)
			outputs = append(outputs, stdout, stderr)
			if code != 1 || !strings.Contains(stderr, "redirect") {
				t.Errorf("apply: exit %d, want 1 and the redirect refused:\n%s", code, stderr)
			}
			if tc.method == "BindSipRegistration" {
				j := applyRead(t, journal)
				if !strings.Contains(j, "redirect") {
					t.Errorf("the journal does not record the refused redirect:\n%s", j)
				}
				outputs = append(outputs, j)
			} else if _, err := os.Stat(journal); err == nil {
				t.Errorf("apply wrote a journal although reading the account failed")
			}
			all := strings.Join(outputs, "\n")
			if len(tokens.Tokens()) == 0 || !strings.Contains(all, "127.0.0.1:9") && !strings.Contains(all, ":9/x") {
				t.Fatalf("no token sent or no redirect reported: the check would check nothing:\n%s", all)
			}
			assertNoLeaks(t, "output after a redirect to the token", all, leakcheck.Secrets{Tokens: tokens.Tokens(), Keys: []*rsa.PrivateKey{creds.PrivateKey}})
			if t.Failed() || testing.Verbose() {
				t.Logf("output:\n%s", all)
			}
		})
	}
}

// TestKeyBodyInSpecNotShown: a private key's base64 (its PEM body without
// the BEGIN line, on one line or wrapped) put in a spec's name field, in
// YAML and in CSV, is a spec error that does not show it: validate and
// plan (text and JSON) exit 1 and print nothing of the key.
func TestKeyBodyInSpecNotShown(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(key))
	dir := t.TempDir()
	specs := map[string]string{
		"one line.yaml": "version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: " + body + "\n",
		"wrapped.yaml":  "version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: |\n      " + body[:64] + "\n      " + body[64:128] + "\n",
		"one line.csv":  "registration,application,user\nalice@pbx.example.com,support," + body + "\n",
		"wrapped.csv":   "registration,application,user\nalice@pbx.example.com,support,\"" + body[:64] + "\n" + body[64:128] + "\"\n",
	}
	for name, text := range specs {
		spec := applyWrite(t, filepath.Join(dir, name), text)
		for _, args := range [][]string{
			{"validate", "-f", spec},
			{"validate", "-f", spec, "-o", "json"},
			{"plan", "-f", spec},
			{"plan", "-f", spec, "-o", "json"},
		} {
			code, stdout, stderr := applyRun(t, "", append([]string{"--sandbox", state}, args...)...)
			if code != 1 || !strings.Contains(stdout+stderr, "the base64 of a key or a token (not shown)") {
				t.Errorf("%s: %v: exit %d, want 1 and the value reported as a key:\n%s%s", name, args, code, stdout, stderr)
			}
			assertNoLeaks(t, fmt.Sprintf("%s: %v", name, args), stdout+stderr, leakcheck.Secrets{Keys: []*rsa.PrivateKey{key}})
		}
	}
}

// TestHostileNamesAtThePrompt: names read from the account that hold
// terminal escapes, a bell, a carriage return or a newline (an
// application's and a user's, the account's own) reach neither stdout nor
// stderr raw on the way to apply's "Type 'yes'" question: the plan shows
// them escaped, so none can clear the screen, retitle the terminal or
// forge a line above the question. Checked with the plan on a buffer and
// in colour on a pseudo-terminal.
func TestHostileNamesAtThePrompt(t *testing.T) {
	const (
		userName = "bob\x1b[2J\nFORGED-user-line"
		appName  = "fax\x1b]0;pwned\x07\r\nFORGED-app-line"
	)
	state := fleetTestState(t, 0, func(st *sandbox.State) {
		st.Account.Name = "demo\x1b[8m\nFORGED-account-line"
		var bob, fax int64
		for i := range st.Users {
			if st.Users[i].Name == "bob" {
				st.Users[i].Name, bob = userName, st.Users[i].ID
			}
		}
		for i := range st.Applications {
			if st.Applications[i].Name == "fax" {
				st.Applications[i].Name, fax = appName, st.Applications[i].ID
			}
		}
		for i := range st.Registrations {
			switch r := &st.Registrations[i]; r.ID {
			case 3001: // alice@: rebound by the spec, from bob
				r.UserID = bob
			case 3002: // bob@: bound to the application only, bob being alice@'s
				r.RuleID, r.UserID = 0, 0
			case 3011: // conf@: unbound by the spec, from the application
				r.ApplicationID, r.RuleID, r.UserID = fax, 0, 0
			}
		}
	})
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	before := applyRead(t, state)
	applyFakeTerminal(t, true, false)

	check := func(how, stdout, stderr string, colour bool) {
		t.Helper()
		if !strings.Contains(stderr, "Type 'yes' to apply 3 changes to account 1000001") {
			t.Fatalf("%s: no question:\nstdout:\n%q\nstderr:\n%q", how, stdout, stderr)
		}
		out := stdout + stderr
		raw := []string{"\x1b[2J", "\x1b]", "\x07", "\x1b[8m", "\rFORGED", "\nFORGED"}
		if !colour {
			raw = append(raw, "\x1b") // no escape at all without colour
		}
		for _, r := range raw {
			if strings.Contains(out, r) {
				t.Errorf("%s: the output holds %q raw:\n%q", how, r, out)
			}
		}
		for _, want := range []string{`bob\x1b[2J\nFORGED-user-line`, `fax\x1b]0;pwned\x07\r\nFORGED-app-line`} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: the plan does not show %q escaped:\n%q", how, want, stdout)
			}
		}
	}

	code, stdout, stderr := applyRun(t, "no\n", "--sandbox", state, "apply", "-f", spec)
	if code != 1 {
		t.Errorf("no: exit %d, want 1", code)
	}
	check("plan on a buffer", stdout, stderr, false)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, ptmx); close(done) }()
	var errOut bytes.Buffer
	code = run([]string{"--sandbox", state, "apply", "-f", spec}, &Stdio{In: strings.NewReader("no\n"), Out: tty, Err: &errOut})
	tty.Close()
	<-done
	if code != 1 {
		t.Errorf("no, plan on a terminal: exit %d, want 1", code)
	}
	// The terminal turns each \n into \r\n; the names' own must not be
	// among them.
	stdout = strings.ReplaceAll(out.String(), "\r\n", "\n")
	if !strings.Contains(stdout, "\x1b[") {
		t.Errorf("no colour on the terminal: the check would not check the coloured plan:\n%q", stdout)
	}
	check("plan in colour on a terminal", stdout, errOut.String(), true)
	if applyRead(t, state) != before {
		t.Error("the state changed after a no")
	}
}

// TestEndpointWithPasswordRefused: user:password@ in --endpoint is refused
// before anything is sent, by every command that reaches the API, and the
// password is printed nowhere, --debug included.
func TestEndpointWithPasswordRefused(t *testing.T) {
	dir := initSandbox(t)
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	const endpoint = "http://bob:hunter2pass@127.0.0.1:1/platform_api/"
	for _, args := range [][]string{
		{"export"},
		{"--debug", "export"},
		{"plan", "-f", "examples/quickstart.yaml", "-o", "json"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"--credentials", creds, "--endpoint", endpoint}, args...)...)
		if code != 1 || !strings.Contains(stdout+stderr, "remove user:password@ from --endpoint") || strings.Contains(stdout+stderr, "hunter2pass") || strings.Contains(stderr, "retrying") {
			t.Errorf("%v: exit %d; want 1, the endpoint refused at once without the password:\n%s\n%s", args, code, stdout, stderr)
		}
	}
}

// TestJSONEscapesInvisibleCharacters: the C1 controls and the
// bidirectional-text controls, which encoding/json leaves raw, are
// written as \uXXXX in every JSON document voxbind writes (plan -o json,
// a saved plan, show -o json, apply's events, the journal), and the
// saved plan and the journal read back the very names the account has.
func TestJSONEscapesInvisibleCharacters(t *testing.T) {
	const bob = "bob\u009b31m\u202eevil\u2066"
	state := fleetTestState(t, 0, func(st *sandbox.State) {
		st.Account.Name = "demo\u009b\u200f"
		for i := range st.Users {
			if st.Users[i].Name == "bob" {
				st.Users[i].Name = bob
				for j := range st.Registrations {
					switch r := &st.Registrations[j]; r.ID {
					case 3001: // alice@, rebound by the spec from bob
						r.UserID = st.Users[i].ID
					case 3002: // bob@: the application only, bob being alice@'s
						r.RuleID, r.UserID = 0, 0
					}
				}
			}
		}
	})
	dir := t.TempDir()
	spec := applyWrite(t, filepath.Join(dir, "voxbind.yaml"), applyMoveSpec)
	planFile, journal := filepath.Join(dir, "plan.json"), filepath.Join(dir, "apply.jsonl")
	check := func(what, doc string) {
		t.Helper()
		for _, raw := range []string{"\u009b", "\u202e", "\u2066", "\u200f"} {
			if strings.Contains(doc, raw) {
				t.Errorf("%s holds %q raw:\n%s", what, raw, doc)
			}
		}
		if !strings.Contains(doc, `bob\u009b31m\u202eevil\u2066`) {
			t.Errorf("%s does not hold bob's name escaped:\n%s", what, doc)
		}
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d:\n%s\n%s", args, code, stdout, stderr)
		}
		return stdout
	}
	check("plan -o json", mustRun("--sandbox", state, "plan", "-f", spec, "-o", "json"))
	mustRun("--sandbox", state, "plan", "-f", spec, "--out", planFile)
	check("the saved plan", applyRead(t, planFile))
	check("show -o json of the plan", mustRun("show", planFile, "-o", "json"))
	p, err := reconcile.ReadPlan([]byte(applyRead(t, planFile)))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Changes[0].Before.User.Name; got != bob {
		t.Errorf("the saved plan reads back %q, want %q", got, bob)
	}
	check("apply -o json", mustRun("--sandbox", state, "apply", "--plan", planFile, "--auto-approve", "-o", "json", "--journal", journal))
	check("the journal", applyRead(t, journal))
	check("show -o json of the journal", mustRun("show", journal, "-o", "json"))
	j, err := reconcile.ReadJournal([]byte(applyRead(t, journal)))
	if err != nil {
		t.Fatal(err)
	}
	read := false
	for _, in := range j.Intents {
		read = read || in.Step == 1 && in.Before != nil && in.Before.User != nil && in.Before.User.Name == bob
	}
	if !read {
		t.Errorf("the journal does not read back %q", bob)
	}
}
