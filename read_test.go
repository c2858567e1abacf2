package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/voxbind/voxbind/sandbox"
)

// readServer serves a fresh sandbox over HTTP, except that the answer of
// method's first page is passed through rewrite first. It returns the global flags
// that point voxbind at it and a count of BindSipRegistration requests.
func readServer(t *testing.T, method string, rewrite func(answer map[string]any)) (global []string, binds *atomic.Int64) {
	t.Helper()
	dir := initSandbox(t)
	srv, err := sandbox.Open(filepath.Join(dir, sandbox.StateFile), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	binds = new(atomic.Int64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") {
			binds.Add(1)
		}
		if !strings.HasSuffix(r.URL.Path, "/"+method) {
			srv.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Errorf("%s: the sandbox's answer is not JSON: %v", method, err)
		}
		if answer["error"] == nil && form.Get("offset") == "0" {
			rewrite(answer)
		}
		var b bytes.Buffer
		json.NewEncoder(&b).Encode(answer)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b.Bytes())
	}))
	t.Cleanup(ts.Close)
	return []string{"--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", ts.URL + "/platform_api/"}, binds
}

// appendRows adds rows to a list answer's result.
func appendRows(rows ...any) func(map[string]any) {
	return func(answer map[string]any) {
		list, _ := answer["result"].([]any)
		answer["result"] = append(list, rows...)
		if _, ok := answer["total_count"]; ok {
			answer["total_count"] = len(list) + len(rows)
		}
	}
}

// TestUserOnTwoRegistrationsRefused: an answer that binds user bob to two
// registrations at once (the API keeps a user on one) is refused by plan,
// apply, export and doctor with a message naming the user and both
// registrations, and nothing is written. Before, apply bound lobby to bob,
// planned one displacement, and unbound the other holder unannounced,
// then reported it verified.
func TestUserOnTwoRegistrationsRefused(t *testing.T) {
	global, binds := readServer(t, "GetSipRegistrations", appendRows(map[string]any{
		"sip_registration_id": 3013, "sip_username": "bob2", "proxy": "pbx.example.com",
		"application_id": 10, "application_name": "support.sandbox.voximplant.com", "user_id": 201, "user_name": "bob",
	}))
	dir := t.TempDir()
	spec := applyWrite(t, filepath.Join(dir, "voxbind.yaml"), "version: 1\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n    user: bob\n")
	journal := filepath.Join(dir, "journal.jsonl")
	out := filepath.Join(dir, "exported.yaml")
	const want = "the API's answer is inconsistent: user bob (201) of application support is bound to registrations 3002 (bob@pbx.example.com) and 3013 (bob2@pbx.example.com) at once"
	for _, args := range [][]string{
		{"plan", "-f", spec},
		{"apply", "-f", spec, "--auto-approve", "--journal", journal},
		{"export", "--out", out},
		{"doctor"},
	} {
		code, stdout, stderr := applyRun(t, "", append(global, args...)...)
		if code != 1 || !strings.Contains(stdout+stderr, want) || !strings.Contains(stdout+stderr, "unbind all but one of them") {
			t.Errorf("%s: exit %d, want 1 and %q with what to do:\n%s%s", args[0], code, want, stdout, stderr)
		}
	}
	if n := binds.Load(); n != 0 {
		t.Errorf("%d BindSipRegistration requests, want none", n)
	}
	for _, f := range []string{journal, out} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was written", f)
		}
	}
	code, stdout, _ := applyRun(t, "", append(global, "plan", "-f", spec, "-o", "json")...)
	if code != 1 || !strings.Contains(stdout, `"code": "inconsistent"`) || !strings.Contains(stdout, `"fix": "run again in a minute`) {
		t.Errorf("plan -o json: exit %d, want 1 and the inconsistent diagnostic with its fix:\n%s", code, stdout)
	}
}

// TestExportRefusesRowWithoutID: a null registration row fails export
// (exit 1, nothing written) instead of writing an entry without a
// registration, which validate then rejects.
func TestExportRefusesRowWithoutID(t *testing.T) {
	global, _ := readServer(t, "GetSipRegistrations", appendRows(nil))
	out := filepath.Join(t.TempDir(), "exported.yaml")
	code, _, stderr := applyRun(t, "", append(global, "export", "--out", out)...)
	const want = "GetSipRegistrations: a row without a positive sip_registration_id (row 13 of the page at offset 0 has none)"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("export: exit %d, want 1 and %q:\n%s", code, want, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}

// TestExportChildrenRefusesTheParent: a GetChildrenAccounts answer that
// lists account 0, or the parent itself, fails export --children whole
// (exit 1, no file). Before, account 0 (to the client: the key's own
// account) had the parent's spec written as kids/0.yaml.
func TestExportChildrenRefusesTheParent(t *testing.T) {
	for _, tc := range []struct {
		id   int64
		want string
	}{
		{0, "GetChildrenAccounts: a row without a positive account_id (row 1 of the page at offset 0 has none)"},
		{-5, "GetChildrenAccounts: a row without a positive account_id (row 1 of the page at offset 0 has -5)"},
		{1000001, "GetChildrenAccounts: the answer lists account 1000001 (sandbox), the account acted on, as its own child"},
	} {
		global, _ := readServer(t, "GetChildrenAccounts", appendRows(map[string]any{"account_id": tc.id, "account_name": "sandbox", "active": true}))
		kids := filepath.Join(t.TempDir(), "kids")
		code, _, stderr := applyRun(t, "", append(global, "export", "--children", "--out-dir", kids)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("account_id %d: exit %d, want 1 and %q:\n%s", tc.id, code, tc.want, stderr)
		}
		if entries, _ := os.ReadDir(kids); len(entries) > 0 {
			t.Errorf("account_id %d: %s holds %d files, want none", tc.id, kids, len(entries))
		}
	}
}
