package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// conformanceDir holds the official-client conformance test: a Node.js
// program, its package.json and the package-lock.json that pins the
// client.
const conformanceDir = "testdata/conformance"

// officialClientVersion is the @voximplant/apiclient-nodejs version the
// conformance test pins.
const officialClientVersion = "4.11.0"

// TestConformance runs Voximplant's official Node.js client, unchanged,
// against 'voxbind sandbox serve --tls' (testdata/conformance/*.txtar).
// It needs node and npm, and the client installed with 'npm ci' in
// testdata/conformance (.ci/run does it); without them it skips and says
// why (go test -v -run TestConformance . shows it).
func TestConformance(t *testing.T) {
	dir, err := filepath.Abs(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED the official-client conformance test: %s is not on PATH; install Node.js, then run 'npm ci' in %s", tool, conformanceDir)
		}
	}
	installed := filepath.Join(dir, "node_modules", "@voximplant", "apiclient-nodejs", "package.json")
	data, err := os.ReadFile(installed)
	if err != nil {
		t.Skipf("SKIPPED the official-client conformance test: @voximplant/apiclient-nodejs is not installed; run 'npm ci' in %s", conformanceDir)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(data, &pkg); err != nil || pkg.Version != officialClientVersion {
		t.Fatalf("%s: version %q, want %s (from package-lock.json): run 'npm ci' in %s again", installed, pkg.Version, officialClientVersion, conformanceDir)
	}
	testscript.Run(t, testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("CONFORMANCE", dir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeport": cmdFreeport,
			"waitport": cmdWaitport,
		},
	})
}

// TestConformanceClientIsPinned: the lock file pins the official client
// at the version the test was written against, with an integrity hash,
// so that 'npm ci' installs exactly it.
func TestConformanceClientIsPinned(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(conformanceDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	got := lock.Packages["node_modules/@voximplant/apiclient-nodejs"]
	if got.Version != officialClientVersion || got.Integrity == "" {
		t.Errorf("package-lock.json pins @voximplant/apiclient-nodejs %q (integrity %q), want %s with its hash", got.Version, got.Integrity, officialClientVersion)
	}
}
