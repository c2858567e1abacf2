package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxbind/voxbind/internal/leakcheck"
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
