package main

import (
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// assertNoLeaks fails the test for every secret leakcheck finds in text.
func assertNoLeaks(t *testing.T, what, text string, secrets leakcheck.Secrets) {
	t.Helper()
	for _, leak := range leakcheck.Find(text, secrets) {
		t.Errorf("%s contains a secret: %s", what, leak)
	}
}

// TestDebugTraceHoldsNoSecrets runs plan and apply with --debug against a
// sandbox that fails a third of the requests (so calls are retried) and
// answers one write with an API error (a step that fails for good): stderr
// and stdout hold none of the tokens the server received and nothing of
// the key file's key.
func TestDebugTraceHoldsNoSecrets(t *testing.T) {
	dir := initSandbox(t)
	credsFile := filepath.Join(dir, sandbox.CredentialsFile)
	creds, err := voximplant.LoadCredentials(credsFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sandbox.Load(filepath.Join(dir, sandbox.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var tokens leakcheck.Recorder
	srv := sandbox.New(st, sandbox.Options{FailRate: 0.3, Seed: 19})
	ts := httptest.NewServer(tokens.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The write to alice@ fails for good.
		r.ParseForm()
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && r.Form.Get("sip_registration_id") == "3001" {
			w.Write([]byte(`{"error":{"code":117,"msg":"Invalid user_id"}}`))
			return
		}
		srv.ServeHTTP(w, r)
	})))
	defer ts.Close()
	global := []string{"--debug", "--credentials", credsFile, "--endpoint", ts.URL + "/platform_api/"}
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)

	planFile := filepath.Join(t.TempDir(), "plan.json")
	code, stdout, stderr := applyRun(t, "", append(global, "plan", "-f", spec, "--out", planFile)...)
	if code != 0 {
		t.Fatalf("plan: exit %d:\n%s", code, stderr)
	}
	outputs := []string{stdout, stderr}

	code, stdout, stderr = applyRun(t, "", append(global, "apply", "--plan", planFile)...)
	if code != 1 || !strings.Contains(stderr, "api error 117") {
		t.Errorf("apply with a failing step: exit %d, want 1 and api error 117:\n%s", code, stderr)
	}
	outputs = append(outputs, stdout, stderr)

	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, "retry=1") || !strings.Contains(all, "method=BindSipRegistration") || len(tokens.Tokens()) == 0 {
		t.Fatalf("the runs traced no retried request and no write, or sent no token: the check would check nothing:\n%s", all)
	}
	assertNoLeaks(t, "plan and apply output with --debug", all, leakcheck.Secrets{Tokens: tokens.Tokens(), Keys: []*rsa.PrivateKey{creds.PrivateKey}})
	if t.Failed() {
		t.Logf("output:\n%s", all)
	}
}
