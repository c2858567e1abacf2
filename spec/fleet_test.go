package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// writeFiles writes name → content under a new temporary directory and
// returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadFleet groups the files of a directory by account_id: each
// account gets its own files' entries in load order and its own prune, in
// account-id order whatever the file names.
func TestLoadFleet(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "version: 1\naccount_id: 300\nbindings:\n  - registration: alice@pbx\n    application: support\n    user: alice\n",
		"b.yaml": "version: 1\naccount_id: 200\nprune: true\nbindings:\n  - registration: alice@pbx\n    application: support\n    user: alice\n",
		"c.yaml": "version: 1\naccount_id: 300\nbindings:\n  - registration_id: 7\n    unbound: true\n",
	})
	f, err := LoadFleet([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Several() {
		t.Errorf("Several() = false for two accounts")
	}
	want := []*Spec{
		{Version: 1, AccountID: 200, Prune: true, Files: []string{filepath.Join(dir, "b.yaml")},
			Bindings: []Binding{{Registration: "alice@pbx", Application: "support", User: "alice"}}},
		{Version: 1, AccountID: 300, Files: []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "c.yaml")},
			Bindings: []Binding{
				{Registration: "alice@pbx", Application: "support", User: "alice"},
				{RegistrationID: 7, Unbound: true},
			}},
	}
	opts := cmp.Options{ignorePos, cmpopts.IgnoreFields(Spec{}, "AccountIDPos", "PrunePos")}
	if diff := cmp.Diff(want, f.Specs, opts); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
	if got := f.Specs[1].AccountIDPos; got.File != filepath.Join(dir, "a.yaml") || got.Line != 2 {
		t.Errorf("account 300's account_id at %v, want a.yaml:2", got)
	}
	if diff := cmp.Diff([]int64{200, 300}, f.AccountIDs()); diff != "" {
		t.Errorf("AccountIDs (-want +got):\n%s", diff)
	}
	if f.Spec(300) != f.Specs[1] || f.Spec(1) != nil {
		t.Errorf("Spec(id) does not find the accounts")
	}
	if len(f.Files) != 3 {
		t.Errorf("Files = %v, want the three files", f.Files)
	}
	if _, err := Load([]string{dir}); err == nil || !strings.Contains(err.Error(), "2 accounts (200, 300)") {
		t.Errorf("Load of a fleet: %v, want an error naming both accounts", err)
	}
}

// TestLoadFleetOfOne: files that name one account_id between them, some
// of them none, are one account, checked together as before fleets.
func TestLoadFleetOfOne(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "version: 1\naccount_id: 300\nbindings:\n  - registration: alice@pbx\n    application: support\n",
		"b.yaml": "version: 1\nbindings:\n  - registration: alice@pbx\n    application: sales\n",
	})
	_, err := LoadFleet([]string{dir})
	if err == nil || !strings.Contains(err.Error(), "b.yaml:3:5: registration alice@pbx is listed twice") {
		t.Fatalf("LoadFleet = %v, want the registration listed twice across the two files", err)
	}
	dir = writeFiles(t, map[string]string{
		"a.yaml": "version: 1\naccount_id: 300\nbindings: []\n",
		"b.yaml": "version: 1\nprune: true\nbindings:\n  - registration: alice@pbx\n    application: sales\n",
	})
	f, err := LoadFleet([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if f.Several() || len(f.Specs) != 1 {
		t.Fatalf("%d specs, Several %v: want one account", len(f.Specs), f.Several())
	}
	if s := f.Specs[0]; s.AccountID != 300 || !s.Prune || len(s.Bindings) != 1 || len(s.Files) != 2 {
		t.Errorf("spec = %+v, want account 300, prune, one binding, two files", s)
	}
}

// TestLoadFleetCSV: a CSV file cannot name its account; in a fleet it
// belongs to the account the YAML files in its directory name, and is an
// error when they name none or several.
func TestLoadFleetCSV(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a/settings.yaml": "version: 1\naccount_id: 200\nprune: true\n",
		"a/bulk.csv":      "registration,application\nalice@pbx,support\n",
		"b/settings.yaml": "version: 1\naccount_id: 300\n",
		"b/bulk.csv":      "registration,application\nalice@pbx,sales\nbob@pbx,sales\n",
	})
	f, err := LoadFleet([]string{filepath.Join(dir, "a"), filepath.Join(dir, "b")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range f.Specs {
		got = append(got, fmt.Sprintf("%d prune=%v bindings=%d files=%d", s.AccountID, s.Prune, len(s.Bindings), len(s.Files)))
	}
	want := []string{"200 prune=true bindings=1 files=2", "300 prune=false bindings=2 files=2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}

	// One directory for both accounts: the CSV file belongs to neither.
	flat := writeFiles(t, map[string]string{
		"200.yaml": "version: 1\naccount_id: 200\nbindings: []\n",
		"300.yaml": "version: 1\naccount_id: 300\nbindings: []\n",
		"bulk.csv": "registration,application\nalice@pbx,support\n",
	})
	_, err = LoadFleet([]string{flat})
	if err == nil || !strings.Contains(err.Error(), "bulk.csv:1:1: a CSV file names no account, and the YAML files beside it name 2 accounts (200, 300)") {
		t.Errorf("a CSV file beside two accounts: %v", err)
	}
	// A CSV file with no YAML file beside it, in a fleet run.
	_, err = LoadFleet([]string{filepath.Join(dir, "a", "settings.yaml"), filepath.Join(dir, "b"), filepath.Join(flat, "bulk.csv")})
	if err == nil || !strings.Contains(err.Error(), "a CSV file names no account, and these spec files are for 2 accounts (200, 300): a CSV file belongs to the account of the YAML files beside it, and none is in its directory") {
		t.Errorf("a CSV file alone in its directory: %v", err)
	}
	// One account: the CSV file is that account's, wherever it is.
	one, err := Load([]string{filepath.Join(dir, "a", "settings.yaml"), filepath.Join(dir, "b", "bulk.csv")})
	if err != nil || one.AccountID != 200 || len(one.Bindings) != 2 {
		t.Errorf("one account with a CSV file elsewhere: %+v, %v", one, err)
	}
}
