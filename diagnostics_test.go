package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// diagDoc is what a JSON document of validate, plan or apply says about
// diagnostics, and whether it is a plan.
type diagDoc struct {
	FormatVersion int          `json:"format_version"`
	Kind          string       `json:"kind"`
	Valid         *bool        `json:"valid"`
	Changes       []any        `json:"changes"`
	Diagnostics   []Diagnostic `json:"diagnostics"`
}

// oneDoc parses stdout, which must hold exactly one JSON document.
func oneDoc(t *testing.T, stdout string) diagDoc {
	t.Helper()
	if err := oneJSONDocument(stdout); err != nil {
		t.Fatalf("stdout: %v:\n%s", err, stdout)
	}
	var d diagDoc
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.FormatVersion != 1 || d.Diagnostics == nil {
		t.Errorf("format_version %d, diagnostics %v: want 1 and a list:\n%s", d.FormatVersion, d.Diagnostics, stdout)
	}
	return d
}

// codes lists the severity:code of each diagnostic.
func codes(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Severity+":"+d.Code)
	}
	return out
}

// TestValidateJSON: validate -o json writes one document, valid or not,
// each problem a diagnostic with its place, code, message and fix apart.
func TestValidateJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "validate", "-f", "examples/quickstart.yaml", "-o", "json")
	d := oneDoc(t, stdout)
	if code != 0 || d.Valid == nil || !*d.Valid || len(d.Diagnostics) != 0 || stderr != "" {
		t.Errorf("a good spec: exit %d, document %+v, stderr %q", code, d, stderr)
	}

	code, stdout, stderr = runCLI(t, "validate", "-f", "testdata/spec/bad/rule_and_user.yaml", "-f", "testdata/spec/bad/unknown_key.yaml", "-o", "json")
	d = oneDoc(t, stdout)
	if code != 1 || d.Valid != nil {
		t.Errorf("a bad spec: exit %d, valid %v", code, d.Valid)
	}
	want := Diagnostic{Severity: "error", File: "testdata/spec/bad/unknown_key.yaml", Line: 5, Col: 5, Code: "unknown-key",
		Message: `unknown key "aplication" in a binding entry`, Fix: `did you mean "application"?`}
	if !containsDiagnostic(d.Diagnostics, want) {
		t.Errorf("diagnostics lack %+v:\n%+v", want, d.Diagnostics)
	}
	// 11 problems in the entries, and the 3 registrations both files
	// list, reported beside them.
	if n := len(d.Diagnostics); n != 14 || strings.Count(stderr, "\n") != n+1 || strings.Count(stderr, "is listed twice") != 3 {
		t.Errorf("%d diagnostics, stderr:\n%s\nwant 14 (3 registrations listed twice), each on stderr too, and the count", n, stderr)
	}
	for _, x := range d.Diagnostics {
		if x.Code == "" || x.Fix == "" || x.Line == 0 || strings.Contains(x.Message, x.Fix) {
			t.Errorf("diagnostic without a code, fix or line, or the fix inside the message: %+v", x)
		}
	}
}

func containsDiagnostic(ds []Diagnostic, want Diagnostic) bool {
	for _, d := range ds {
		if d == want {
			return true
		}
	}
	return false
}

// TestPlanJSONDiagnostics: plan -o json leaves one document in every
// case: failures before planning as diagnostics alone, a blocked plan as
// the plan with its diagnostics, warnings inside a good plan.
func TestPlanJSONDiagnostics(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	good := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	t.Setenv("VOXIMPLANT_CREDENTIALS", "")

	// No credentials: nothing planned.
	code, stdout, stderr := runCLI(t, "plan", "-f", good, "-o", "json")
	d := oneDoc(t, stdout)
	if diff := cmp.Diff([]string{"error:credentials"}, codes(d.Diagnostics)); code != 1 || diff != "" || d.Changes != nil {
		t.Errorf("no credentials: exit %d, changes %v, diagnostics (-want +got):\n%s", code, d.Changes, diff)
	}
	if !strings.Contains(stderr, "voxbind: no credentials; pass --credentials FILE") {
		t.Errorf("stderr does not tell people: %q", stderr)
	}

	// A command line it cannot parse, asking for JSON.
	code, stdout, _ = runCLI(t, "plan", "-f", good, "-o", "json", "--rate", "fast")
	d = oneDoc(t, stdout)
	if diff := cmp.Diff([]string{"error:usage"}, codes(d.Diagnostics)); code != 1 || diff != "" {
		t.Errorf("--rate fast: exit %d, diagnostics (-want +got):\n%s", code, diff)
	}

	// An endpoint that is no URL voxbind sends the token to: code
	// endpoint, with a fix.
	code, stdout, _ = runCLI(t, "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "plan", "-f", good, "-o", "json", "--endpoint", "ftp://api.voximplant.com/")
	d = oneDoc(t, stdout)
	if diff := cmp.Diff([]string{"error:endpoint"}, codes(d.Diagnostics)); code != 1 || diff != "" || !strings.Contains(d.Diagnostics[0].Fix, "--endpoint") {
		t.Errorf("ftp endpoint: exit %d, diagnostics (-want +got):\n%s\n%+v", code, diff, d.Diagnostics)
	}

	// A blocked change: the plan with its fields and the diagnostic.
	blocked := applyWrite(t, filepath.Join(t.TempDir(), "blocked.yaml"), "version: 1\nbindings:\n  - registration: old@pbx.example.com\n    application: support\n")
	code, stdout, _ = runCLI(t, "--sandbox", state, "plan", "-f", blocked, "-o", "json")
	d = oneDoc(t, stdout)
	var plan struct {
		AccountID int64 `json:"account_id"`
		Blocked   []any `json:"blocked"`
	}
	json.Unmarshal([]byte(stdout), &plan)
	if diff := cmp.Diff([]string{"error:blocked"}, codes(d.Diagnostics)); code != 1 || diff != "" || plan.AccountID != 1000001 || len(plan.Blocked) != 1 {
		t.Errorf("blocked: exit %d, account %d, %d blocked, diagnostics (-want +got):\n%s", code, plan.AccountID, len(plan.Blocked), diff)
	}

	// A warning (a key file others may read) travels inside a good plan.
	srv := newSandboxHTTP(t, state, sandbox.Options{})
	// Named with a blank: the warning's fix is a command to paste.
	key := filepath.Join(dir, "loose key.json")
	if err := os.Rename(filepath.Join(dir, sandbox.CredentialsFile), key); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "plan", "-f", good, "-o", "json", "--credentials", key, "--endpoint", srv.endpoint())
	d = oneDoc(t, stdout)
	if diff := cmp.Diff([]string{"warning:key-file-mode"}, codes(d.Diagnostics)); code != 0 || diff != "" || len(d.Changes) != 3 {
		t.Errorf("loose key: exit %d, %d changes, diagnostics (-want +got):\n%s\nstderr: %s", code, len(d.Changes), diff, stderr)
	}
	if !strings.Contains(stderr, "voxbind: warning: credentials file "+key+" is readable by group or others (mode 0644); run: chmod 600 '"+key+"'\n") {
		t.Errorf("stderr does not warn people: %q", stderr)
	}
}

// TestApplyJSONDiagnostics: apply -o json is JSON Lines whose last line is
// the diagnostics when apply refuses: alone when it fails before the
// plan, after the plan line when it refuses the plan.
func TestApplyJSONDiagnostics(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	bad := applyWrite(t, filepath.Join(t.TempDir(), "bad.yaml"), "version: 1\nbindings:\n  - registration: alice@pbx.example.com\n")
	code, stdout, _ := runCLI(t, "--sandbox", state, "apply", "-f", bad, "-o", "json", "--auto-approve")
	d := oneDoc(t, stdout)
	if diff := cmp.Diff([]string{"error:missing-key"}, codes(d.Diagnostics)); code != 1 || d.Kind != "diagnostics" || diff != "" {
		t.Errorf("bad spec: exit %d, kind %q, diagnostics (-want +got):\n%s", code, d.Kind, diff)
	}

	good := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	applyFakeTerminal(t, false, false)
	code, stdout, _ = runCLI(t, "--sandbox", state, "apply", "-f", good, "-o", "json")
	lines := jsonLines(t, stdout)
	if code != 1 || len(lines) != 2 || lines[0]["kind"] != "plan" || lines[1]["kind"] != "diagnostics" {
		t.Fatalf("no terminal: exit %d, lines %v", code, lines)
	}
	if got := lines[1]["diagnostics"].([]any)[0].(map[string]any)["code"]; got != "not-confirmed" {
		t.Errorf("refusal code %v, want not-confirmed", got)
	}
}

// jsonLines parses JSON Lines, failing on a line that is not one object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", len(out)+1, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// TestAPIErrorDiagnosticFix: an API error's diagnostic says what to do in
// its fix, also for an unknown key id, whose hint says what happened.
func TestAPIErrorDiagnosticFix(t *testing.T) {
	for _, tc := range []struct {
		code    int
		wantFix string
	}{
		{voximplant.CodeInvalidKeyID, "give the key file of a key the service account has now"},
		{voximplant.CodeTokenExpired, "sync it with NTP"},
	} {
		err := fmt.Errorf("read account info: %w", &voximplant.APIError{Method: "GetAccountInfo", Code: tc.code, Msg: "refused"})
		d := diagnosticOf(err)
		if d.Code != codeAPIError || !strings.Contains(d.Fix, tc.wantFix) || strings.Contains(d.Fix, "the key_id is unknown") {
			t.Errorf("API error %d: diagnostic %+v; want code %s and a fix saying %q", tc.code, d, codeAPIError, tc.wantFix)
		}
	}
}

// TestWarningsFromConcurrentAccounts: the accounts of a fleet apply run
// in goroutines of their own, and each may warn (a journal that could
// not be closed): every warning is kept, none lost to another's (go test
// -race reports the unsynchronised append this once was).
func TestWarningsFromConcurrentAccounts(t *testing.T) {
	s := testSession(&Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &lockedWriter{w: io.Discard}})
	const accounts, each = 2, 500
	var wg sync.WaitGroup
	for a := range accounts {
		wg.Go(func() {
			for i := range each {
				s.warn(codeJournal, fmt.Sprintf("account %d: journal %d: close: input/output error", a, i), "")
			}
		})
	}
	wg.Wait()
	if got := len(s.diag.diagnostics()); got != accounts*each {
		t.Errorf("%d warnings kept, want %d", got, accounts*each)
	}
}
