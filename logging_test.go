package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// TestLogsHoldNoSecrets runs plan and apply at every log level, in both
// log formats, against a server that records every token it is sent,
// and looks for the run's exact tokens and the exact key in everything
// voxbind printed: not whole, not in part.
func TestLogsHoldNoSecrets(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	keyFile := filepath.Join(dir, sandbox.CredentialsFile)
	creds, err := voximplant.LoadCredentials(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	tokens := map[string]bool{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] = true
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	unbind := applyWrite(t, filepath.Join(t.TempDir(), "back.yaml"), "version: 1\nbindings:\n  - registration: lobby@pbx.example.com\n    unbound: true\n")

	var outputs []string
	records := 0
	for _, level := range []string{"debug", "info", "warn", "error"} {
		for _, format := range []string{"text", "json"} {
			t.Setenv("VOXBIND_LOG_FORMAT", format)
			for _, args := range [][]string{
				{"plan", "-f", spec, "--log-level", level},
				{"apply", "-f", spec, "--auto-approve", "--log-level", level, "-o", "json"},
				{"apply", "-f", unbind, "--auto-approve", "--log-level", level},
			} {
				code, stdout, stderr := runCLI(t, append(args, "--credentials", keyFile, "--endpoint", ts.URL+"/platform_api/")...)
				if code != 0 {
					t.Fatalf("%v: exit %d:\n%s", args, code, stderr)
				}
				outputs = append(outputs, stdout, stderr)
				for _, line := range strings.Split(stderr, "\n") {
					if format == "json" && strings.HasPrefix(line, "{") {
						var rec map[string]any
						if err := json.Unmarshal([]byte(line), &rec); err != nil {
							t.Errorf("a JSON log line does not parse: %v\n%s", err, line)
						}
						records++
					}
				}
				if level == "debug" && !strings.Contains(stderr, "api request") {
					t.Errorf("%v at debug: no API request logged:\n%s", args, stderr)
				}
			}
		}
	}
	if records == 0 {
		t.Fatal("no JSON log records at all")
	}
	if len(tokens) == 0 {
		t.Fatal("the server saw no token")
	}

	// The secrets: every token (its signature in particular) and the key,
	// as PEM, as DER in base64, and as numbers.
	var secrets []string
	for tok := range tokens {
		secrets = append(secrets, tok)
		if i := strings.LastIndexByte(tok, '.'); i > 0 {
			secrets = append(secrets, windows(tok[i+1:], 16)...)
		}
	}
	der := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(creds.PrivateKey))
	secrets = append(secrets, windows(der[64:], 24)...) // past the header bytes every RSA key shares
	secrets = append(secrets, creds.PrivateKey.D.String()[:20], creds.PrivateKey.Primes[0].String()[:20])
	all := strings.Join(outputs, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Fatalf("the output holds a secret (%q…)", s[:8])
		}
	}
	if strings.Contains(all, "PRIVATE KEY") || strings.Contains(all, "Bearer ") {
		t.Fatal("the output names the key or a bearer token")
	}
}

// windows is every n-character piece of s, stepping by n/2.
func windows(s string, n int) []string {
	var out []string
	for i := 0; i+n <= len(s); i += n / 2 {
		out = append(out, s[i:i+n])
	}
	return out
}

// TestDebugIsDebugLevel: --debug logs the API requests as --log-level
// debug does, in the format asked for; without a level nothing is logged.
func TestDebugIsDebugLevel(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	_, _, quiet := runCLI(t, "--sandbox", state, "plan", "-f", spec)
	if quiet != "" {
		t.Errorf("no log level: stderr %q", quiet)
	}
	_, _, debug := runCLI(t, "--sandbox", state, "--debug", "plan", "-f", spec, "--log-format", "json")
	var methods []string
	for _, line := range strings.Split(strings.TrimSpace(debug), "\n") {
		var rec struct {
			Level, Msg, Method string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--debug --log-format json: %q is not a record: %v", line, err)
		}
		if rec.Msg == "api request" {
			methods = append(methods, rec.Method)
		}
	}
	if len(methods) < 3 || methods[0] != "GetAccountInfo" {
		t.Errorf("--debug logged the requests %v", methods)
	}
	// The sandbox's own request log goes to the same place.
	if !strings.Contains(debug, `"msg":"sandbox request"`) {
		t.Errorf("--debug: no sandbox request records:\n%s", debug)
	}
	t.Setenv("VOXBIND_LOG_LEVEL", "info")
	_, _, info := runCLI(t, "--sandbox", state, "plan", "-f", spec)
	if !strings.Contains(info, "level=INFO msg=\"read the account\"") || strings.Contains(info, "api request") {
		t.Errorf("VOXBIND_LOG_LEVEL=info:\n%s", info)
	}
	os.Unsetenv("VOXBIND_LOG_LEVEL")
}
