package main

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestDebugTracesEveryAttempt: --debug writes one "api request" record
// per HTTP attempt, numbered by its retry: a call the server fails three
// times (HTTP 503, a dropped connection, a rate-limit answer) before it
// answers is traced four times, retry=0 to retry=3, each with what came
// back, and each retry is logged once.
func TestDebugTracesEveryAttempt(t *testing.T) {
	dir := initSandbox(t)
	srv, err := sandbox.Open(filepath.Join(dir, sandbox.StateFile), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var received atomic.Int64 // GetApplications requests
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/GetApplications") {
			srv.ServeHTTP(w, r)
			return
		}
		switch received.Add(1) {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		case 3:
			w.Write([]byte(`{"error":{"code":340,"msg":"rate limit exceeded"}}`))
		default:
			srv.ServeHTTP(w, r)
		}
	}))
	defer ts.Close()
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	code, _, stderr := applyRun(t, "", "--debug", "--credentials", filepath.Join(dir, sandbox.CredentialsFile),
		"--endpoint", ts.URL+"/platform_api/", "plan", "-f", spec)
	if code != 0 {
		t.Fatalf("plan: exit %d, want 0 (the call answers at its fourth attempt):\n%s", code, stderr)
	}
	if n := received.Load(); n != 4 {
		t.Fatalf("the server got %d GetApplications requests, want 4:\n%s", n, stderr)
	}
	var traced []string
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, `level=DEBUG msg="api request" method=GetApplications `) {
			traced = append(traced, line)
		}
	}
	if len(traced) != 4 {
		t.Fatalf("%d trace records of GetApplications, want 4, one per attempt:\n%s", len(traced), stderr)
	}
	for i, want := range []string{"status=503 ", "status=0 ", "status=200 ", "status=200 "} {
		if !strings.Contains(traced[i], want) || !strings.Contains(traced[i], fmt.Sprintf(" retry=%d", i)) {
			t.Errorf("attempt %d traced as %q; want %q and retry=%d", i+1, traced[i], want, i)
		}
	}
	if !strings.Contains(traced[2], " code=340") {
		t.Errorf("the rate-limit answer is traced without its code: %q", traced[2])
	}
	if n := strings.Count(stderr, "level=INFO msg=retry method=GetApplications "); n != 3 {
		t.Errorf("%d retry records of GetApplications, want 3:\n%s", n, stderr)
	}
}
