package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoStateIsTheDocumentedAccount(t *testing.T) {
	st := demoState(t)
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	if st.Account != (AccountRecord{ID: 1000001, Name: "demo", Email: "demo@example.com"}) {
		t.Errorf("account = %+v", st.Account)
	}
	if len(st.Applications) < 3 || len(st.Registrations) < 12 {
		t.Errorf("%d applications, %d registrations; want ≥3 and ≥12", len(st.Applications), len(st.Registrations))
	}
	var bound, unbound, frozen int
	for _, r := range st.Registrations {
		switch {
		case r.Deactivated:
			frozen++
		case r.bound():
			bound++
		default:
			unbound++
		}
	}
	if bound == 0 || unbound == 0 || frozen != 1 {
		t.Errorf("bound %d, unbound %d, frozen %d; want some, some, 1", bound, unbound, frozen)
	}
	want := map[string]binding{
		"alice@pbx.example.com":      {10, 0, 200},
		"bob@pbx.example.com":        {10, 0, 201},
		"carol@pbx.example.com":      {},
		"dave@pbx.example.com":       {11, 0, 203},
		"erin@pbx.example.com":       {},
		"frontdesk@pbx.example.com":  {10, 100, 0},
		"fax@fax.example.net":        {12, 103, 0},
		"trunk1@sip.carrier.example": {11, 102, 0},
		"trunk2@sip.carrier.example": {},
		"lobby@pbx.example.com":      {},
		"conf@pbx.example.com":       {10, 0, 0},
		"old@pbx.example.com":        {11, 102, 0},
	}
	for i, r := range st.Registrations {
		name := r.SIPUsername + "@" + r.Proxy
		if r.ID != int64(3001+i) {
			t.Errorf("%s has id %d, want %d", name, r.ID, 3001+i)
		}
		if got := (binding{r.ApplicationID, r.RuleID, r.UserID}); got != want[name] {
			t.Errorf("%s bound to %+v, want %+v", name, got, want[name])
		}
		if r.Deactivated != (name == "old@pbx.example.com") {
			t.Errorf("%s deactivated = %v", name, r.Deactivated)
		}
	}
	names := map[int64]string{}
	for _, a := range st.Applications {
		names[a.ID] = a.Name
	}
	for _, r := range st.Rules {
		names[r.ID] = r.Name
	}
	for _, u := range st.Users {
		names[u.ID] = u.Name
	}
	wantNames := map[int64]string{10: "support", 11: "sales", 12: "fax",
		100: "inbound-main", 101: "after-hours", 102: "inbound-sales", 103: "fax-in",
		200: "alice", 201: "bob", 202: "carol", 203: "dave", 204: "erin"}
	for id, n := range wantNames {
		if names[id] != n {
			t.Errorf("id %d is %q, want %q", id, names[id], n)
		}
	}
}

func TestValidateRefusesInconsistentStates(t *testing.T) {
	tests := []struct {
		name   string
		change func(*State)
		want   string
	}{
		{"no account id", func(s *State) { s.Account.ID = 0 }, "account: id must be a positive number"},
		{"dotted account name", func(s *State) { s.Account.Name = "a.b" }, "without dots"},
		{"duplicate key id", func(s *State) { s.Keys = append(s.Keys, s.Keys[0]) }, `keys[1]: duplicate key_id "test-key"`},
		{"bad public key", func(s *State) { s.Keys[0].PublicKey = "nope" }, "public_key: not PEM"},
		{"duplicate application id", func(s *State) { s.Applications[1].ID = 10 }, "applications[1]: duplicate id 10"},
		{"full application name", func(s *State) { s.Applications[0].Name = "support.demo.voximplant.com" }, "must be a short name"},
		{"duplicate application name", func(s *State) { s.Applications[1].Name = "SUPPORT" }, "is also the name of application 10"},
		{"duplicate rule id", func(s *State) { s.Rules[1].ID = 100 }, "rules[1]: duplicate id 100"},
		{"rule of no application", func(s *State) { s.Rules[0].ApplicationID = 99 }, "rules[0] (id 100): application 99 does not exist"},
		{"duplicate rule name", func(s *State) { s.Rules[1].Name = "inbound-main" }, "is also the name of rule 100"},
		{"duplicate user id", func(s *State) { s.Users[1].ID = 200 }, "users[1]: duplicate id 200"},
		{"user of no application", func(s *State) { s.Users[0].ApplicationID = 99 }, "users[0] (id 200): application 99 does not exist"},
		{"duplicate user name", func(s *State) { s.Users[1].Name = "Alice" }, "is also the name of user 200"},
		{"duplicate registration id", func(s *State) { s.Registrations[1].ID = 3001 }, "registrations[1] (id 3001): duplicate sip_registration_id"},
		{"registration without proxy", func(s *State) { s.Registrations[0].Proxy = "" }, "sip_username and proxy must both be set"},
		{"registration of no application", func(s *State) { s.Registrations[0].ApplicationID = 99 }, "application 99 does not exist"},
		{"rule without application", func(s *State) { s.Registrations[2].RuleID = 100 }, "rule_id or user_id set without application_id"},
		{"unknown rule", func(s *State) { s.Registrations[5].RuleID = 999 }, "rule 999 does not exist"},
		{"rule of another application", func(s *State) { s.Registrations[5].RuleID = 102 }, "rule 102 belongs to application 11, not 10"},
		{"unknown user", func(s *State) { s.Registrations[0].UserID = 999 }, "user 999 does not exist"},
		{"user of another application", func(s *State) { s.Registrations[0].UserID = 203 }, "user 203 belongs to application 11, not 10"},
		{"rule and user", func(s *State) { s.Registrations[0].RuleID = 100 }, "bound to both rule 100 and user 200"},
		{"user on two registrations", func(s *State) {
			s.Registrations[2].ApplicationID, s.Registrations[2].UserID = 10, 200
		}, "registrations[2] (id 3003): user 200 is also bound to registration 3001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := demoState(t)
			tt.change(st)
			err := st.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	st := demoState(t)
	st.Rules[0].ApplicationID = 99
	st.Users[0].ApplicationID = 98
	err := st.Validate()
	if err == nil || !strings.Contains(err.Error(), "application 99") || !strings.Contains(err.Error(), "application 98") {
		t.Fatalf("Validate() = %v, want both problems", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	data, err := demoState(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, data, 0o644)
	st, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Registrations) != 12 {
		t.Errorf("loaded %d registrations", len(st.Registrations))
	}

	tests := []struct{ name, content, want string }{
		{"unknown key", `{"account": {"id": 1, "name": "x", "emial": "typo"}}`, `unknown field "emial"`},
		{"not JSON", `{"account":`, "invalid JSON"},
		{"two values", `{"account": {"id": 1, "name": "x"}} {}`, "more than one value"},
		{"inconsistent", `{"account": {"id": 1, "name": "x"}, "rules": [{"id": 1, "application_id": 5, "name": "r"}]}`, "application 5 does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			os.WriteFile(path, []byte(tt.content), 0o644)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load() = %v, want an error naming %s and containing %q", err, path, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestMarshalRoundTrips(t *testing.T) {
	st := demoState(t)
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if string(again) != string(data) {
		t.Errorf("state changed in a round trip:\n%s\n---\n%s", data, again)
	}
}

// TestLooksLikeState: a state file is recognised from its first key; a
// plan, a spec, a directory or a missing file is not one.
func TestLooksLikeState(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, err := demoState(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	state := write("account.json", string(data))
	for path, want := range map[string]bool{
		state: true,
		write("plan.json", `{"format_version": 1, "account": 5}`): false,
		write("spec.yaml", "version: 1\nbindings: []\n"):          false,
		write("empty.json", ""):                                   false,
		dir:                                                       false,
		filepath.Join(dir, "missing.json"):                        false,
	} {
		if got := LooksLikeState(path); got != want {
			t.Errorf("LooksLikeState(%s) = %v, want %v", path, got, want)
		}
	}
}
