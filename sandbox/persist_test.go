package sandbox

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeState writes the demo account to a new state file.
func writeState(t *testing.T) string {
	t.Helper()
	data, err := demoState(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "account.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openEnv serves a state file through Open.
func openEnv(t *testing.T, path string) *env {
	t.Helper()
	srv, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := newEnv(t, demoState(t), Options{})
	e.srv = srv
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	return e
}

func TestEveryChangeIsSaved(t *testing.T) {
	path := writeState(t)
	e := openEnv(t, path)
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10", "user_id", "200"))

	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := bindings(st)
	if got[3003] != (binding{10, 0, 200}) || got[3001] != (binding{}) {
		t.Errorf("saved state: 3003 %+v, 3001 %+v", got[3003], got[3001])
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want the original 0600 kept", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, en := range entries {
		if en.Name() != "account.json" {
			t.Errorf("left behind: %s", en.Name())
		}
	}

	// A change of nothing does not rewrite the file.
	before, _ := os.Stat(path)
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10", "user_id", "200"))
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("an unchanged state was rewritten")
	}
}

// TestFailedSaveChangesNothing: when the file cannot be written the call
// fails with an API error that is not "try again later", naming the
// cause, and memory keeps the state the file has.
func TestFailedSaveChangesNothing(t *testing.T) {
	path := writeState(t)
	e := openEnv(t, path)
	e.srv.mu.Lock()
	e.srv.path = filepath.Join(t.TempDir(), "missing-dir", "account.json")
	e.srv.mu.Unlock()

	status, body, err := e.rawCall(noRetryClient(), "BindSipRegistration", map[string][]string{
		"sip_registration_id": {"3003"}, "application_id": {"10"}, "user_id": {"200"}})
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 || !strings.Contains(string(body), `"code":900`) || !strings.Contains(string(body), "cannot save") ||
		!strings.Contains(string(body), "no such file or directory") {
		t.Errorf("HTTP %d %s; want API error 900 saying the state cannot be saved and why", status, body)
	}
	if diff := bindings(e.srv.State()); diff[3003] != (binding{}) || diff[3001] != (binding{10, 0, 200}) {
		t.Errorf("memory changed after a failed save: 3003 %+v, 3001 %+v", diff[3003], diff[3001])
	}
	if err := e.srv.State().Validate(); err != nil {
		t.Error(err)
	}
	// The user index was restored too: displacing alice still works.
	e.srv.mu.Lock()
	e.srv.path = path
	e.srv.mu.Unlock()
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3005", "application_id", "10", "user_id", "200"))
	if got := bindings(e.srv.State()); got[3001] != (binding{}) {
		t.Errorf("3001 still holds alice: %+v", got[3001])
	}
}

func TestSecondServerOfOneFileIsRefused(t *testing.T) {
	path := writeState(t)
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if err == nil {
		t.Fatal("a second Open of the same state file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another voxbind is serving it") {
		t.Errorf("error %q does not name the file and say it is in use", err)
	}
	if _, err := Start(path, Options{}); err == nil {
		t.Error("Start of a served state file succeeded")
	}
	// Every save replaces the file: the lock must move with it.
	e := newEnv(t, demoState(t), Options{})
	e.ts.Config.Handler = first
	for _, user := range []string{"200", "201"} {
		mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10", "user_id", user))
		if _, err := Open(path, Options{}); err == nil {
			t.Fatal("a second Open succeeded after the first server saved a change")
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

func TestOpenRefusesBadFilesAndReleasesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(`{"account": {"id": 0, "name": "x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("Open(bad) = %v", err)
	}
	if _, err := Open(path, Options{}); err == nil || strings.Contains(err.Error(), "another voxbind") {
		t.Errorf("the failed Open kept the lock: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.json")
	if _, err := Open(missing, Options{}); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "sandbox init") {
		t.Errorf("Open(missing) = %v, want it named and 'sandbox init' suggested", err)
	}
	if _, err := Open(writeState(t), Options{FailRate: 2}); err == nil {
		t.Error("bad options accepted")
	}

	// Options that the state turns down (a rate for an account it does
	// not have) fail Open after the lock is taken: it is released too.
	good := writeState(t)
	if _, err := Open(good, Options{AccountRate: map[int64]float64{4242: 1}}); err == nil || !strings.Contains(err.Error(), "account 4242") {
		t.Fatalf("Open(rate for an unknown account) = %v", err)
	}
	s, err := Open(good, Options{})
	if err != nil {
		t.Fatalf("the Open refused for its options kept the lock: %v", err)
	}
	s.Close()
}
