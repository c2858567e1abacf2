package sandbox

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBulkState: the bulk account has one unbound registration per line and
// one user per desk phone, in the application its line asks for.
func TestBulkState(t *testing.T) {
	st, err := BulkState(nil, "", 520)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Registrations) != 520 || len(st.Users) != 400 {
		t.Fatalf("%d registrations and %d users, want 520 and 400", len(st.Registrations), len(st.Users))
	}
	apps := map[int64]string{}
	for _, a := range st.Applications {
		apps[a.ID] = a.Name
	}
	users := map[string]string{} // user name → application name
	for _, u := range st.Users {
		users[u.Name] = apps[u.ApplicationID]
	}
	counts := map[string]int{}
	for i, l := range BulkLines(520) {
		r := st.Registrations[i]
		if r.SIPUsername+"@"+r.Proxy != l.Registration() || r.ApplicationID != 0 {
			t.Fatalf("registration %d is %s@%s bound to %d, want %s unbound", r.ID, r.SIPUsername, r.Proxy, r.ApplicationID, l.Registration())
		}
		switch {
		case l.User != "":
			counts["desk"]++
			if users[l.User] != l.Application {
				t.Errorf("user %s is in %q, want %q", l.User, users[l.User], l.Application)
			}
		case l.Rule == "inbound-sales" && l.Application == "sales":
			counts["trunk"]++
		case l.Application == "" && strings.HasPrefix(l.SIPUsername, "retired"):
			counts["retired"]++
		default:
			t.Errorf("line %d: %+v", i, l)
		}
	}
	if counts["desk"] != 400 || counts["trunk"] != 100 || counts["retired"] != 20 {
		t.Errorf("lines: %v, want 400 desk phones, 100 trunks, 20 retired", counts)
	}
}

func TestInitBulkLimits(t *testing.T) {
	for _, n := range []int{0, MaxBulk + 1} {
		dir := filepath.Join(t.TempDir(), "x")
		if err := InitBulk(dir, n, 0); err == nil || !strings.Contains(err.Error(), "--bulk") {
			t.Errorf("InitBulk(%d) = %v, want a refusal naming --bulk", n, err)
		}
	}
	dir := t.TempDir()
	if err := InitBulk(dir, 26, 1); err != nil {
		t.Fatal(err)
	}
	st, err := Load(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Registrations) != 26 || len(st.Children) != 1 || len(st.Keys) != 1 {
		t.Errorf("state: %d registrations, %d children, %d keys; want 26, 1, 1", len(st.Registrations), len(st.Children), len(st.Keys))
	}
}
