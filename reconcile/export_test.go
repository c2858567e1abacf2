package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/voxbind/voxbind/spec"
)

// demoCurrent is the sandbox demo account (see sandbox init) as observed.
func demoCurrent() Current {
	const domain = ".demo.voximplant.com"
	support := Ref{ID: 10, Name: "support" + domain}
	sales := Ref{ID: 11, Name: "sales" + domain}
	fax := Ref{ID: 12, Name: "fax" + domain}
	inboundMain := &Ref{ID: 100, Name: "inbound-main"}
	inboundSales := &Ref{ID: 102, Name: "inbound-sales"}
	faxIn := &Ref{ID: 103, Name: "fax-in"}
	user := func(id int64, name string) *Ref { return &Ref{ID: id, Name: name} }
	reg := func(id int64, u, proxy string, t *Target) Registration {
		return Registration{RegistrationRef: RegistrationRef{ID: id, SIPUsername: u, Proxy: proxy}, Target: t}
	}
	old := reg(3012, "old", "pbx.example.com", &Target{Application: sales, Rule: inboundSales})
	old.Deactivated = true
	return Current{
		Account:      AccountInfo{ID: 1000001, Name: "demo"},
		Applications: []Application{{10, support.Name}, {11, sales.Name}, {12, fax.Name}},
		Rules: map[int64][]Rule{
			10: {{100, 10, "inbound-main"}, {101, 10, "after-hours"}},
			11: {{102, 11, "inbound-sales"}},
			12: {{103, 12, "fax-in"}},
		},
		Users: map[int64][]User{
			10: {{200, 10, "alice"}, {201, 10, "bob"}, {202, 10, "carol"}},
			11: {{203, 11, "dave"}, {204, 11, "erin"}},
			12: nil,
		},
		Registrations: []Registration{
			reg(3001, "alice", "pbx.example.com", &Target{Application: support, User: user(200, "alice")}),
			reg(3002, "bob", "pbx.example.com", &Target{Application: support, User: user(201, "bob")}),
			reg(3003, "carol", "pbx.example.com", nil),
			reg(3004, "dave", "pbx.example.com", &Target{Application: sales, User: user(203, "dave")}),
			reg(3005, "erin", "pbx.example.com", nil),
			reg(3006, "frontdesk", "pbx.example.com", &Target{Application: support, Rule: inboundMain}),
			reg(3007, "fax", "fax.example.net", &Target{Application: fax, Rule: faxIn}),
			reg(3008, "trunk1", "sip.carrier.example", &Target{Application: sales, Rule: inboundSales}),
			reg(3009, "trunk2", "sip.carrier.example", nil),
			reg(3010, "lobby", "pbx.example.com", nil),
			reg(3011, "conf", "pbx.example.com", &Target{Application: support}),
			old,
		},
	}
}

const demoExport = `# Exported by voxbind from account 1000001 (demo): every SIP registration
# and its current binding. ` + "`voxbind plan` on this file shows `No changes.`" + `
version: 1
account_id: 1000001 # plan and apply act on this account, and only on it
# Every registration is listed below, so prune changes nothing today.
# Set it to true to have apply unbind registrations that no entry lists
# (for example ones added to the account later).
prune: false
bindings:
  # registration 3007
  - registration: fax@fax.example.net
    application: fax
    rule: fax-in
  # registration 3001
  - registration: alice@pbx.example.com
    application: support
    user: alice
  # registration 3002
  - registration: bob@pbx.example.com
    application: support
    user: bob
  # registration 3003
  - registration: carol@pbx.example.com
    unbound: true
  # registration 3011
  - registration: conf@pbx.example.com
    application: support
  # registration 3004
  - registration: dave@pbx.example.com
    application: sales
    user: dave
  # registration 3005
  - registration: erin@pbx.example.com
    unbound: true
  # registration 3006
  - registration: frontdesk@pbx.example.com
    application: support
    rule: inbound-main
  # registration 3010
  - registration: lobby@pbx.example.com
    unbound: true
  # registration 3012 (frozen: deactivated, voxbind never changes it)
  - registration: old@pbx.example.com
    application: sales
    rule: inbound-sales
  # registration 3008
  - registration: trunk1@sip.carrier.example
    application: sales
    rule: inbound-sales
  # registration 3009
  - registration: trunk2@sip.carrier.example
    unbound: true
`

func TestExportDemo(t *testing.T) {
	c := demoCurrent()
	var out bytes.Buffer
	if _, err := Export(&out, &c, Selection{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(demoExport, out.String()); diff != "" {
		t.Errorf("Export(demo) mismatch (-want +got):\n%s", diff)
	}
}

// exportedSpec is what Export wrote, read back with plain yaml.v3 so that
// the test checks names and quoting independently of the spec loader.
type exportedSpec struct {
	Version   int              `yaml:"version"`
	AccountID int64            `yaml:"account_id"`
	Prune     bool             `yaml:"prune"`
	Bindings  []map[string]any `yaml:"bindings"`
}

func exportAndRead(t *testing.T, c *Current) exportedSpec {
	t.Helper()
	var out bytes.Buffer
	if _, err := Export(&out, c, Selection{}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	var got exportedSpec
	dec := yaml.NewDecoder(&out)
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("read back the export: %v\n%s", err, out.String())
	}
	return got
}

func TestExportNames(t *testing.T) {
	app := func(id int64, name string) Application { return Application{ID: id, Name: name} }
	reg := func(id int64, u, proxy string, t *Target) Registration {
		return Registration{RegistrationRef: RegistrationRef{ID: id, SIPUsername: u, Proxy: proxy}, Target: t}
	}
	to := func(a Application) *Target { return &Target{Application: Ref{a.ID, a.Name}} }
	toUser := func(a Application, id int64, name string) *Target {
		t := to(a)
		t.User = &Ref{id, name}
		return t
	}
	toRule := func(a Application, id int64, name string) *Target {
		t := to(a)
		t.Rule = &Ref{id, name}
		return t
	}
	type entry = map[string]any
	tests := []struct {
		name    string
		current Current
		want    []entry
	}{{
		name: "short name shared case-insensitively: full name",
		current: Current{
			Applications: []Application{app(1, "support.acme.voximplant.com"), app(2, "Support.other.voximplant.com")},
			Registrations: []Registration{
				reg(11, "a", "p", to(app(1, "support.acme.voximplant.com"))),
				reg(12, "b", "p", to(app(2, "Support.other.voximplant.com"))),
			},
		},
		want: []entry{
			{"registration": "a@p", "application": "support.acme.voximplant.com"},
			{"registration": "b@p", "application": "Support.other.voximplant.com"},
		},
	}, {
		name: "full names clash case-insensitively: application_id",
		current: Current{
			Applications: []Application{app(1, "x.acme.voximplant.com"), app(2, "X.ACME.voximplant.com")},
			Registrations: []Registration{
				reg(11, "a", "p", to(app(1, "x.acme.voximplant.com"))),
			},
		},
		want: []entry{{"registration": "a@p", "application_id": 1}},
	}, {
		name: "a short name equal to another application's full name: full name",
		current: Current{
			Applications: []Application{app(1, "sales"), app(2, "sales.acme.voximplant.com")},
			Registrations: []Registration{
				reg(11, "a", "p", to(app(2, "sales.acme.voximplant.com"))),
			},
		},
		want: []entry{{"registration": "a@p", "application": "sales.acme.voximplant.com"}},
	}, {
		name: "unknown application: application_id",
		current: Current{
			Registrations: []Registration{reg(11, "a", "p", to(app(9, "gone.acme.voximplant.com")))},
		},
		want: []entry{{"registration": "a@p", "application_id": 9}},
	}, {
		name: "rule and user names shared case-insensitively: ids; unique ones by name",
		current: Current{
			Applications: []Application{app(1, "s.acme.voximplant.com")},
			Rules:        map[int64][]Rule{1: {{101, 1, "In"}, {102, 1, "in"}, {103, 1, "other"}}},
			Users:        map[int64][]User{1: {{201, 1, "Bob"}, {202, 1, "bob"}, {203, 1, "carol"}}},
			Registrations: []Registration{
				reg(11, "a", "p", toRule(app(1, "s.acme.voximplant.com"), 101, "In")),
				reg(12, "b", "p", toRule(app(1, "s.acme.voximplant.com"), 103, "other")),
				reg(13, "c", "p", toUser(app(1, "s.acme.voximplant.com"), 202, "bob")),
				reg(14, "d", "p", toUser(app(1, "s.acme.voximplant.com"), 203, "carol")),
			},
		},
		want: []entry{
			{"registration": "a@p", "application": "s", "rule_id": 101},
			{"registration": "b@p", "application": "s", "rule": "other"},
			{"registration": "c@p", "application": "s", "user_id": 202},
			{"registration": "d@p", "application": "s", "user": "carol"},
		},
	}, {
		name: "rule and user lists not read: ids",
		current: Current{
			Applications: []Application{app(1, "s.acme.voximplant.com")},
			Registrations: []Registration{
				reg(11, "a", "p", toRule(app(1, "s.acme.voximplant.com"), 101, "in")),
				reg(12, "b", "p", toUser(app(1, "s.acme.voximplant.com"), 201, "bob")),
			},
		},
		want: []entry{
			{"registration": "a@p", "application": "s", "rule_id": 101},
			{"registration": "b@p", "application": "s", "user_id": 201},
		},
	}, {
		name: "registrations sharing sip_username@proxy case-insensitively: registration_id",
		current: Current{
			Registrations: []Registration{
				reg(12, "Alice", "PBX.example.com", nil),
				reg(11, "alice", "pbx.example.com", nil),
				reg(13, "alice", "other.example.com", nil),
				reg(14, "", "pbx.example.com", nil),
				reg(15, "x", "odd@proxy", nil),
			},
		},
		want: []entry{
			{"registration_id": 15, "unbound": true},
			{"registration": "alice@other.example.com", "unbound": true},
			{"registration_id": 14, "unbound": true},
			{"registration_id": 12, "unbound": true}, // "PBX" sorts before "pbx"
			{"registration_id": 11, "unbound": true},
		},
	}, {
		name: "names that look like other YAML types stay strings",
		current: Current{
			Applications: []Application{app(1, "1001.acme.voximplant.com"), app(2, "true"), app(3, "null"), app(4, "~")},
			Users:        map[int64][]User{1: {{201, 1, "1001"}, {202, 1, "0x1F"}, {203, 1, "1e3"}, {204, 1, "yes"}, {205, 1, " padded "}, {206, 1, "a: b # c"}, {207, 1, "-"}, {208, 1, "'q\""}}},
			Rules:        map[int64][]Rule{2: {{101, 2, "on"}}, 3: {{102, 3, "[x]"}}},
			Registrations: []Registration{
				reg(1, "1", "1001", toUser(app(1, "1001.acme.voximplant.com"), 201, "1001")),
				reg(2, "2", "1001", toUser(app(1, "1001.acme.voximplant.com"), 202, "0x1F")),
				reg(3, "3", "1001", toUser(app(1, "1001.acme.voximplant.com"), 203, "1e3")),
				reg(4, "4", "1001", toUser(app(1, "1001.acme.voximplant.com"), 204, "yes")),
				reg(5, "5", "1001", toUser(app(1, "1001.acme.voximplant.com"), 205, " padded ")),
				reg(6, "6", "1001", toUser(app(1, "1001.acme.voximplant.com"), 206, "a: b # c")),
				reg(7, "7", "1001", toUser(app(1, "1001.acme.voximplant.com"), 207, "-")),
				reg(8, "8", "1001", toUser(app(1, "1001.acme.voximplant.com"), 208, "'q\"")),
				reg(9, "9", "1001", toRule(app(2, "true"), 101, "on")),
				reg(10, "10", "1001", toRule(app(3, "null"), 102, "[x]")),
				reg(11, "11", "1001", to(app(4, "~"))),
			},
		},
		want: []entry{
			{"registration": "1@1001", "application": "1001", "user": "1001"},
			{"registration": "10@1001", "application": "null", "rule": "[x]"},
			{"registration": "11@1001", "application": "~"},
			{"registration": "2@1001", "application": "1001", "user": "0x1F"},
			{"registration": "3@1001", "application": "1001", "user": "1e3"},
			{"registration": "4@1001", "application": "1001", "user": "yes"},
			{"registration": "5@1001", "application": "1001", "user": " padded "},
			{"registration": "6@1001", "application": "1001", "user": "a: b # c"},
			{"registration": "7@1001", "application": "1001", "user": "-"},
			{"registration": "8@1001", "application": "1001", "user": "'q\""},
			{"registration": "9@1001", "application": "true", "rule": "on"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exportAndRead(t, &tt.current)
			if diff := cmp.Diff(tt.want, got.Bindings); diff != "" {
				t.Errorf("bindings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExportHeader(t *testing.T) {
	c := Current{Account: AccountInfo{ID: 42, Name: "acme"}}
	got := exportAndRead(t, &c)
	want := exportedSpec{Version: 1, AccountID: 42, Prune: false, Bindings: []map[string]any{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("export of an empty account mismatch (-want +got):\n%s", diff)
	}
}

func TestExportFrozenComment(t *testing.T) {
	c := demoCurrent()
	var out bytes.Buffer
	if _, err := Export(&out, &c, Selection{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  # registration 3012 (frozen: deactivated, voxbind never changes it)\n  - registration: old@pbx.example.com\n",
		"  # registration 3001\n  - registration: alice@pbx.example.com\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export lacks %q:\n%s", want, out.String())
		}
	}
}

func TestExportRuleAndUserIsAnError(t *testing.T) {
	c := Current{
		Applications: []Application{{1, "s.acme.voximplant.com"}},
		Registrations: []Registration{{
			RegistrationRef: RegistrationRef{ID: 7, SIPUsername: "a", Proxy: "p"},
			Target:          &Target{Application: Ref{1, "s.acme.voximplant.com"}, Rule: &Ref{2, "r"}, User: &Ref{3, "u"}},
		}},
	}
	_, err := Export(io.Discard, &c, Selection{})
	if err == nil || !strings.Contains(err.Error(), "registration 7 (a@p)") {
		t.Errorf("Export(rule and user) = %v, want an error naming registration 7 (a@p)", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestExportWriteError(t *testing.T) {
	c := demoCurrent()
	_, err := Export(failingWriter{}, &c, Selection{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Export(failing writer) = %v, want the write error", err)
	}
}

// randomAccount builds an account whose names collide on purpose: short
// names shared across applications, names differing only in case, names
// that look like numbers or booleans, names holding CSV separators, quotes,
// blanks at the ends, line breaks, C1 controls, bidirectional-text
// controls or a spreadsheet formula, registrations
// sharing sip_username@proxy, frozen and unbound registrations, and rules
// and users used as targets. Each user holds at most one registration, as
// the API guarantees.
func randomAccount(rng *rand.Rand) Current {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	appShort := []string{"support", "Support", "sales", "1001", "true", "fax", "null", "a,b", "=1+1"}
	accounts := []string{"acme", "ACME", "other"}
	// Names a spec refuses as a key or a token (a run of 64 base64
	// characters mixing cases and digits, a JWT): export writes ids.
	const keyLike, tokenLike = "GrandCentralStationReceptionDesk2024MainLobbyNorthWingFloor2Desk7", "eyJhbGciOiJ.eyJzdWIiOiJ.sig"
	names := []string{"alice", "Alice", "bob", "1001", "007", "yes", "on", "a b", "x: y", "#tag", "-", "inbound-main",
		"a,b", "x;y", `say "hi"`, " padded ", "two\nlines", "=HYPERLINK(1)", keyLike, "after\u202ehours", "nel\u0085here", "line\u2028sep", "zero\u200bwidth", "tag\U000E0041s"}
	sipNames := []string{"alice", "Alice", "bob", "1001", "007", "yes", "a,b", `q"q`, "semi;colon", "+15551234567", " lead", keyLike, "al\u2066ice", "c1\u009b2J"}
	users := []string{"alice", "bob", "Bob", "carol", "1001", "2e3", "yes", "null", "+15551234567", "0042", `"quoted"`, "c;d", tokenLike, "\u061cdave", "eve\u200f"}
	proxies := []string{"pbx.example.com", "PBX.example.com", "sip.carrier.example", "10.0.0.1:5060", "1001", "p,q.example"}

	c := Current{
		Account: AccountInfo{ID: 1 + rng.Int64N(1e6), Name: pick(accounts)},
		Rules:   map[int64][]Rule{},
		Users:   map[int64][]User{},
	}
	var nextID int64 = 1
	id := func() int64 { nextID++; return nextID }
	for range 1 + rng.IntN(5) {
		name := pick(appShort)
		if rng.IntN(5) > 0 {
			name += "." + pick(accounts) + ".voximplant.com"
		}
		app := Application{ID: id(), Name: name}
		c.Applications = append(c.Applications, app)
		for range rng.IntN(4) {
			c.Rules[app.ID] = append(c.Rules[app.ID], Rule{ID: id(), ApplicationID: app.ID, Name: pick(names)})
		}
		for range rng.IntN(5) {
			c.Users[app.ID] = append(c.Users[app.ID], User{ID: id(), ApplicationID: app.ID, Name: pick(users)})
		}
	}
	held := map[int64]bool{}
	for range rng.IntN(25) {
		r := Registration{
			RegistrationRef: RegistrationRef{ID: id(), SIPUsername: pick(sipNames), Proxy: pick(proxies)},
			Deactivated:     rng.IntN(6) == 0,
		}
		if rng.IntN(4) > 0 {
			app := c.Applications[rng.IntN(len(c.Applications))]
			r.Target = &Target{Application: Ref{app.ID, app.Name}}
			switch rng.IntN(3) {
			case 1:
				if rules := c.Rules[app.ID]; len(rules) > 0 {
					x := rules[rng.IntN(len(rules))]
					r.Target.Rule = &Ref{x.ID, x.Name}
				}
			case 2:
				if us := c.Users[app.ID]; len(us) > 0 {
					if x := us[rng.IntN(len(us))]; !held[x.ID] {
						held[x.ID] = true
						r.Target.User = &Ref{x.ID, x.Name}
					}
				}
			}
		}
		c.Registrations = append(c.Registrations, r)
	}
	return c
}

// TestExportRoundTrip: for random accounts, the exported spec, YAML and
// CSV, loads, and planning it against the account (as observed in full,
// and as Observe reads it for that spec) gives no changes. The file holds
// no control character (but line ends) and no bidirectional-text control
// raw: in YAML they are escapes, in CSV such a name is written as its id.
func TestExportRoundTrip(t *testing.T) {
	for _, format := range []struct {
		ext    string
		export func(io.Writer, *Current, Selection) (int, error)
	}{{"yaml", Export}, {"csv", ExportCSV}} {
		t.Run(format.ext, func(t *testing.T) { exportRoundTrip(t, format.ext, format.export) })
	}
}

func exportRoundTrip(t *testing.T, ext string, export func(io.Writer, *Current, Selection) (int, error)) {
	n := 300
	if testing.Short() {
		n = 50
	}
	dir := t.TempDir()
	for seed := range n {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		current := randomAccount(rng)
		var out bytes.Buffer
		if _, err := export(&out, &current, Selection{}); err != nil {
			t.Fatalf("seed %d: Export: %v", seed, err)
		}
		if i := bytes.IndexFunc(out.Bytes(), func(r rune) bool { return r != '\n' && invisible(r) }); i >= 0 {
			t.Fatalf("seed %d: the export holds %q raw at byte %d:\n%s", seed, []rune(string(out.Bytes()[i:]))[0], i, out.String())
		}
		path := filepath.Join(dir, fmt.Sprintf("export-%d.%s", seed, ext))
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		desired, err := spec.Load([]string{path})
		if err != nil {
			t.Fatalf("seed %d: the export does not load:\n%v\n%s", seed, err, out.String())
		}
		observed, err := Observe(context.Background(), newFakeAccount(current), desired)
		if err != nil {
			t.Fatalf("seed %d: Observe: %v", seed, err)
		}
		for what, c := range map[string]*Current{"full account": &current, "observed": observed} {
			p, err := Diff(desired, c, Options{})
			if err != nil {
				t.Fatalf("seed %d: Diff against the %s: %v\n%s", seed, what, err, out.String())
			}
			if len(p.Changes)+len(p.Blocked)+len(p.SideEffects) > 0 || p.Summary.Unmanaged != 0 {
				t.Fatalf("seed %d: planning the export against the %s is not empty: %+v\n%s", seed, what, p, out.String())
			}
			if p.Summary.Unchanged != len(current.Registrations) {
				t.Errorf("seed %d: %d unchanged, want every registration (%d)", seed, p.Summary.Unchanged, len(current.Registrations))
			}
		}
	}
}

// TestExportDemoRoundTrip is the same check on the sandbox demo account.
func TestExportDemoRoundTrip(t *testing.T) {
	current := demoCurrent()
	path := filepath.Join(t.TempDir(), "voxbind.yaml")
	var out bytes.Buffer
	if _, err := Export(&out, &current, Selection{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	desired, err := spec.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if desired.AccountID != current.Account.ID || desired.Prune {
		t.Errorf("export guard and prune = %d, %v; want %d, false", desired.AccountID, desired.Prune, current.Account.ID)
	}
	p, err := Diff(desired, &current, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() || len(p.Blocked) > 0 {
		t.Errorf("plan of the demo export is not empty: %+v", p)
	}
}

func BenchmarkExport(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var current Current
	for current = randomAccount(rng); len(current.Registrations) < 20; current = randomAccount(rng) {
	}
	// Scale to a large account: 5000 registrations.
	base := current.Registrations
	current.Registrations = nil
	for i := 0; len(current.Registrations) < 5000; i++ {
		r := base[i%len(base)]
		r.ID = int64(100000 + i)
		r.SIPUsername = fmt.Sprintf("%s%d", r.SIPUsername, i)
		if r.Target != nil && r.Target.User != nil {
			r.Target = &Target{Application: r.Target.Application}
		}
		current.Registrations = append(current.Registrations, r)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Export(io.Discard, &current, Selection{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExportQuotesYAML11Booleans: yaml.v3 reads yes/off as strings, but a
// YAML 1.1 tool would not, so they are quoted anyway.
func TestExportQuotesYAML11Booleans(t *testing.T) {
	c := Current{
		Applications: []Application{{1, "on.acme.voximplant.com"}},
		Users:        map[int64][]User{1: {{2, 1, "Yes"}}},
		Registrations: []Registration{{
			RegistrationRef: RegistrationRef{ID: 7, SIPUsername: "a", Proxy: "p"},
			Target:          &Target{Application: Ref{1, "on.acme.voximplant.com"}, User: &Ref{2, "Yes"}},
		}},
	}
	var out bytes.Buffer
	if _, err := Export(&out, &c, Selection{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`application: "on"` + "\n", `user: "Yes"` + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export lacks %q:\n%s", want, out.String())
		}
	}
}

// exportSelectionCase is the account and the selection the selected
// exports are tested with: the demo account with a second "ALICE", and
// --only reg=alice@pbx.example.com --only app=sales --except id=3012. A
// second "alice" on another proxy would keep alice@pbx.example.com a name;
// one on the same proxy in another case makes it an id, even though the
// selection holds only one of the two.
func exportSelectionCase(t *testing.T) (Current, Selection) {
	t.Helper()
	current := demoCurrent()
	current.Registrations = append(current.Registrations, Registration{
		RegistrationRef: RegistrationRef{ID: 3099, SIPUsername: "ALICE", Proxy: "PBX.example.com"}})
	var sel Selection
	for _, s := range []string{"reg=alice@pbx.example.com", "app=sales"} {
		x, err := ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		sel.Only = append(sel.Only, x)
	}
	x, _ := ParseSelector("id=3012")
	sel.Except = append(sel.Except, x)
	return current, sel
}

// exportPlanInScope writes an exported spec to a file called name (its
// extension picks YAML or CSV), loads it and plans it against current in
// sel.
func exportPlanInScope(t *testing.T, name string, data []byte, current *Current, sel Selection) *Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	desired, err := spec.Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Diff(desired, current, Options{Selection: sel})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExport: only the selected registrations are written (app=
// matches what the account binds), names are chosen against the whole
// account, the header says it is a selection, the export plans to no
// changes in the same selection, and a selector matching nothing writes
// nothing.
func TestExport(t *testing.T) {
	current, sel := exportSelectionCase(t)

	var out bytes.Buffer
	if _, err := Export(&out, &current, sel); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"(demo): 3 of its 13 SIP\n# registrations and their current bindings, those selected by\n# --only reg=alice@pbx.example.com --only app=sales --except id=3012\n",
		"# registration 3001\n  - registration_id: 3001\n", // alice: ambiguous in the account
		"# registration 3004\n  - registration: dave@pbx.example.com\n",
		"# registration 3008\n  - registration: trunk1@sip.carrier.example\n",
		"with prune: true,\n# apply would unbind every other bound registration",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("export has no %q:\n%s", want, text)
		}
	}
	for _, absent := range []string{"registration 3099", "registration 3012", "bob@", "fax@"} {
		if strings.Contains(text, absent) {
			t.Errorf("export holds %s, which is not selected:\n%s", absent, text)
		}
	}

	if p := exportPlanInScope(t, "voxbind.yaml", out.Bytes(), &current, sel); !p.Empty() || p.Summary.Unchanged != 3 || p.Selection.Outside != 0 {
		t.Errorf("plan of the selected export in the same selection: %+v", p)
	}

	none, _ := ParseSelector("reg=nobody@*")
	out.Reset()
	_, err := Export(&out, &current, Selection{Only: []Selector{none}})
	if !errors.Is(err, ErrSelectsNothing) || out.Len() != 0 {
		t.Errorf("Export with a selector matching nothing: %v, wrote %d bytes", err, out.Len())
	}
}

const demoExportCSV = `registration,application,rule,user,unbound,x-note
fax@fax.example.net,fax,fax-in,,,registration 3007
alice@pbx.example.com,support,,alice,,registration 3001
bob@pbx.example.com,support,,bob,,registration 3002
carol@pbx.example.com,,,,true,registration 3003
conf@pbx.example.com,support,,,,registration 3011
dave@pbx.example.com,sales,,dave,,registration 3004
erin@pbx.example.com,,,,true,registration 3005
frontdesk@pbx.example.com,support,inbound-main,,,registration 3006
lobby@pbx.example.com,,,,true,registration 3010
old@pbx.example.com,sales,inbound-sales,,,"registration 3012 (frozen: deactivated, voxbind never changes it)"
trunk1@sip.carrier.example,sales,inbound-sales,,,registration 3008
trunk2@sip.carrier.example,,,,true,registration 3009
`

func TestExportCSVDemo(t *testing.T) {
	c := demoCurrent()
	var out bytes.Buffer
	if _, err := ExportCSV(&out, &c, Selection{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(demoExportCSV, out.String()); diff != "" {
		t.Errorf("ExportCSV(demo) mismatch (-want +got):\n%s", diff)
	}
}

// TestExportCSVCells: names with separators, quotes and blanks are quoted
// and read back exactly; names a spreadsheet would run as a formula, or
// that hold control characters, are written as ids (the YAML export keeps
// them as names).
func TestExportCSVCells(t *testing.T) {
	app := Application{ID: 1, Name: "support.acme.voximplant.com"}
	formula := Application{ID: 2, Name: "=cmd.acme.voximplant.com"}
	c := Current{
		Applications: []Application{app, formula},
		Rules:        map[int64][]Rule{1: {{ID: 5, ApplicationID: 1, Name: "a,b"}, {ID: 6, ApplicationID: 1, Name: "@SUM(1)"}}},
		Users: map[int64][]User{1: {
			{ID: 7, ApplicationID: 1, Name: `say "hi"`}, {ID: 8, ApplicationID: 1, Name: " padded "},
			{ID: 9, ApplicationID: 1, Name: "+15551234567"}, {ID: 10, ApplicationID: 1, Name: "tab\there"},
			{ID: 11, ApplicationID: 1, Name: "bad\x7fname"},
		}},
	}
	reg := func(id int64, user string, t *Target) {
		c.Registrations = append(c.Registrations, Registration{RegistrationRef: RegistrationRef{ID: id, SIPUsername: user, Proxy: "pbx.example.com"}, Target: t})
	}
	to := func(a Application, rule, user *Ref) *Target {
		return &Target{Application: Ref{a.ID, a.Name}, Rule: rule, User: user}
	}
	reg(101, "a", to(app, &Ref{5, "a,b"}, nil))
	reg(102, "b", to(app, &Ref{6, "@SUM(1)"}, nil))
	reg(103, "c", to(app, nil, &Ref{7, `say "hi"`}))
	reg(104, "d", to(app, nil, &Ref{8, " padded "}))
	reg(105, "e", to(app, nil, &Ref{9, "+15551234567"}))
	reg(106, "f", to(app, nil, &Ref{10, "tab\there"}))
	reg(109, "h", to(app, nil, &Ref{11, "bad\x7fname"}))
	reg(107, "-g", to(formula, nil, nil))
	reg(108, "semi;colon", nil)

	var out bytes.Buffer
	if _, err := ExportCSV(&out, &c, Selection{}); err != nil {
		t.Fatal(err)
	}
	want := `registration,registration_id,application,application_id,rule,rule_id,user,user_id,unbound,x-note
,107,,2,,,,,,registration 107
a@pbx.example.com,,support,,"a,b",,,,,registration 101
b@pbx.example.com,,support,,,6,,,,registration 102
c@pbx.example.com,,support,,,,"say ""hi""",,,registration 103
d@pbx.example.com,,support,,,," padded ",,,registration 104
e@pbx.example.com,,support,,,,,9,,registration 105
f@pbx.example.com,,support,,,,,10,,registration 106
h@pbx.example.com,,support,,,,,11,,registration 109
"semi;colon@pbx.example.com",,,,,,,,true,registration 108
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("ExportCSV (-want +got):\n%s", diff)
	}
}

// TestExportCSV: export -o csv with a selection writes the rows of
// the selected registrations only, names them against the whole account
// (alice, twice on the account, by id), plans to no changes in the same
// selection, and writes nothing when a selector matches nothing.
func TestExportCSV(t *testing.T) {
	current, sel := exportSelectionCase(t)

	var out bytes.Buffer
	if _, err := ExportCSV(&out, &current, sel); err != nil {
		t.Fatal(err)
	}
	want := `registration,registration_id,application,rule,user,unbound,x-note
,3001,support,,alice,,registration 3001
dave@pbx.example.com,,sales,,dave,,registration 3004
trunk1@sip.carrier.example,,sales,inbound-sales,,,registration 3008
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("ExportCSV (-want +got):\n%s", diff)
	}

	if p := exportPlanInScope(t, "phones.csv", out.Bytes(), &current, sel); !p.Empty() || p.Summary.Unchanged != 3 || p.Selection.Outside != 0 {
		t.Errorf("plan of the selected CSV export in the same selection: %+v", p)
	}

	none, _ := ParseSelector("app=nothing")
	out.Reset()
	_, err := ExportCSV(&out, &current, Selection{Except: []Selector{none}})
	if !errors.Is(err, ErrSelectsNothing) || out.Len() != 0 {
		t.Errorf("ExportCSV with a selector matching nothing: %v, wrote %d bytes", err, out.Len())
	}
}
