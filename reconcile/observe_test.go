package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/spec"
)

func observeTestAccount() Current {
	return Current{
		Account:      AccountInfo{ID: 1, Name: "acme"},
		Applications: []Application{{77, "support.acme.voximplant.com"}, {78, "sales.acme.voximplant.com"}, {79, "fax.acme.voximplant.com"}},
		Rules: map[int64][]Rule{
			77: {{5, 77, "inbound-main"}},
			78: {{6, 78, "sales-in"}},
			79: {},
		},
		Users: map[int64][]User{
			77: {{9, 77, "alice"}},
			78: {{12, 78, "dave"}},
			79: {},
		},
		Registrations: []Registration{{RegistrationRef: RegistrationRef{101, "alice", "pbx.example.com"}}},
	}
}

// observeReads are the reads beyond info, registrations and applications,
// sorted (they run concurrently).
func observeReads(f *fakeAccount) []string {
	var out []string
	for _, r := range f.reads {
		if strings.HasPrefix(r, "rules ") || strings.HasPrefix(r, "users ") {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// TestObserveReadsWhatTheSpecNames: rules and users only of the
// applications named together with a rule or user, found by short name
// (any case), full name or id.
func TestObserveReadsWhatTheSpecNames(t *testing.T) {
	f := newFakeAccount(observeTestAccount())
	desired := &spec.Spec{Version: 1, Bindings: []spec.Binding{
		{Registration: "alice@pbx.example.com", Application: "SUPPORT", Rule: "inbound-main"},
		{Registration: "alice@pbx.example.com", ApplicationID: 78, User: "dave"},
		{Registration: "alice@pbx.example.com", Application: "fax.acme.voximplant.com"}, // no rule or user: nothing to read
	}}
	c, err := Observe(context.Background(), f, desired)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"rules 77", "users 78"}, observeReads(f)); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	if _, ok := c.Rules[77]; !ok {
		t.Error("rules of 77 not in Current")
	}
	if _, ok := c.Users[77]; ok {
		t.Error("users of 77 in Current, never read")
	}
	if c.Account.ID != 1 || len(c.Registrations) != 1 || len(c.Applications) != 3 {
		t.Errorf("current: %+v", c)
	}
}

// TestObserveNilSpec reads no rules and no users.
func TestObserveNilSpec(t *testing.T) {
	f := newFakeAccount(observeTestAccount())
	c, err := Observe(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := observeReads(f); len(r) != 0 || len(c.Rules) != 0 || len(c.Users) != 0 {
		t.Errorf("reads %v, rules %v, users %v", r, c.Rules, c.Users)
	}
}

// TestObserveReadsOthersWhenMissing: a user not found in its application
// makes Observe read the other applications' users, so that Diff can say
// where it belongs.
func TestObserveReadsOthersWhenMissing(t *testing.T) {
	f := newFakeAccount(observeTestAccount())
	desired := &spec.Spec{Version: 1, Bindings: []spec.Binding{
		{Pos: spec.Pos{File: "v.yaml", Line: 3, Col: 5}, Registration: "alice@pbx.example.com", Application: "support", User: "dave"},
	}}
	c, err := Observe(context.Background(), f, desired)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"users 77", "users 78", "users 79"}, observeReads(f)); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	_, err = Diff(desired, c, Options{})
	want := `v.yaml:3:5: user "dave" belongs to application sales (sales.acme.voximplant.com), not support (support.acme.voximplant.com); name the application it belongs to, or pick a user of this one`
	if err == nil || err.Error() != want {
		t.Errorf("Diff: %v\nwant %s", err, want)
	}
}

// TestObserveErrorNamePrintable: the name of an application whose rules
// could not be read reaches the error escaped, as every name the server
// sends does: it cannot clear the screen or forge a line.
func TestObserveErrorNamePrintable(t *testing.T) {
	cause := errors.New("api error 100: authorization failed")
	cur := observeTestAccount()
	cur.Applications[0].Name = "support\x1b[2J\nvoxbind: all good\r.acme.voximplant.com"
	f := newFakeAccount(cur)
	f.failRead = func(r string) error {
		if r == "rules 77" {
			return cause
		}
		return nil
	}
	c := &Current{Applications: cur.Applications, Rules: map[int64][]Rule{}, Users: map[int64][]User{}}
	err := ObserveMembers(context.Background(), f, c)
	want := `read rules of application 77 (support\x1b[2J\nvoxbind: all good\r.acme.voximplant.com): ` + cause.Error()
	if err == nil || err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}

// TestObserveErrors: a failed read names what was being read and wraps
// the cause.
func TestObserveErrors(t *testing.T) {
	cause := errors.New("api error 100: authorization failed")
	for read, want := range map[string]string{
		"info":          "read account info: ",
		"registrations": "read sip registrations: ",
		"applications":  "read applications: ",
		"users 78":      "read users of application 78 (sales.acme.voximplant.com): ",
		"rules 77":      "read rules of application 77 (support.acme.voximplant.com): ",
	} {
		f := newFakeAccount(observeTestAccount())
		f.failRead = func(r string) error {
			if r == read {
				return cause
			}
			return nil
		}
		desired := &spec.Spec{Version: 1, Bindings: []spec.Binding{
			{Registration: "alice@pbx.example.com", Application: "support", Rule: "inbound-main"},
			{Registration: "alice@pbx.example.com", Application: "sales", User: "dave"},
		}}
		_, err := Observe(context.Background(), f, desired)
		if !errors.Is(err, cause) || err.Error() != want+cause.Error() {
			t.Errorf("failing %s: %v, want %s…", read, err, want)
		}
	}
}

// TestObserveCancelled stops at a cancelled context.
func TestObserveCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newFakeAccount(observeTestAccount())
	f.failRead = func(r string) error {
		cancel()
		return ctx.Err()
	}
	if _, err := Observe(ctx, f, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if !slices.Equal(f.reads, []string{"info"}) {
		t.Errorf("reads %q after the context was cancelled by the first; want that one only", f.reads)
	}
}

// TestObserveBounded: rules and users of many applications are read
// concurrently, observeParallel at a time and never more. Each read waits
// at a gate that opens once observeParallel reads wait at it together:
// reads that do not overlap never open it and fail at the deadline.
func TestObserveBounded(t *testing.T) {
	c := observeTestAccount()
	desired := &spec.Spec{Version: 1}
	for i := range 12 {
		app := Application{ID: int64(200 + i), Name: fmt.Sprintf("app%d.acme.voximplant.com", i)}
		c.Applications = append(c.Applications, app)
		c.Users[app.ID] = []User{{int64(300 + i), app.ID, "u"}}
		desired.Bindings = append(desired.Bindings, spec.Binding{Registration: "alice@pbx.example.com", ApplicationID: app.ID, User: "u"})
	}
	f := newFakeAccount(c)
	acct := &observeGatedAccount{fakeAccount: f, gate: make(chan struct{}), deadline: time.After(30 * time.Second)}
	if _, err := Observe(context.Background(), acct, desired); err != nil {
		t.Fatal(err)
	}
	if n := len(observeReads(f)); n != 12 {
		t.Errorf("%d reads of users, want 12", n)
	}
	if m := acct.most.Load(); m != observeParallel {
		t.Errorf("%d reads at once at most, want exactly %d", m, observeParallel)
	}
	if acct.timedOut.Load() {
		t.Errorf("fewer than %d reads were ever in flight together", observeParallel)
	}
}

// observeGatedAccount holds each Users call until observeParallel calls
// are in flight together (or the deadline passes), and records how many
// ran at once.
type observeGatedAccount struct {
	*fakeAccount
	inFlight, most atomic.Int32
	gate           chan struct{}
	open           sync.Once
	deadline       <-chan time.Time
	timedOut       atomic.Bool
}

func (a *observeGatedAccount) Users(ctx context.Context, app int64) ([]User, error) {
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for {
		m := a.most.Load()
		if n <= m || a.most.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= observeParallel {
		a.open.Do(func() { close(a.gate) })
	}
	select {
	case <-a.gate:
	case <-a.deadline:
		a.timedOut.Store(true)
		a.open.Do(func() { close(a.gate) })
	}
	return a.fakeAccount.Users(ctx, app)
}

// TestObserveUserOnSeveralRegistrations: a read that binds one user to
// several registrations is refused by Observe (and so by ObserveBound),
// naming each such user and its registrations in id order, whatever
// order they were read in. Before, the planner kept only the last holder
// of each user, so binding the user planned one displacement and made
// more.
func TestObserveUserOnSeveralRegistrations(t *testing.T) {
	c := observeTestAccount()
	bob := &Target{Application: Ref{77, "support.acme.voximplant.com"}, User: &Ref{10, "bob"}}
	dave := &Target{Application: Ref{78, "sales.acme.voximplant.com"}, User: &Ref{12, "dave"}}
	c.Registrations = []Registration{
		{RegistrationRef: RegistrationRef{107, "bob3", "pbx.example.com"}, Target: bob},
		{RegistrationRef: RegistrationRef{104, "dave", "pbx.example.com"}, Target: dave},
		{RegistrationRef: RegistrationRef{102, "bob", "pbx.example.com"}, Target: bob},
		{RegistrationRef: RegistrationRef{101, "alice", "pbx.example.com"}, Target: &Target{Application: Ref{77, "support.acme.voximplant.com"}, User: &Ref{9, "alice"}}},
		{RegistrationRef: RegistrationRef{103, "dave2", "pbx.example.com"}, Target: dave, Deactivated: true},
		{RegistrationRef: RegistrationRef{105, "bob2", "pbx.example.com"}, Target: bob},
	}
	want := "the API's answer is inconsistent: " +
		"user bob (10) of application support is bound to registrations 102 (bob@pbx.example.com), 105 (bob2@pbx.example.com) and 107 (bob3@pbx.example.com) at once; " +
		"user dave (12) of application sales is bound to registrations 103 (dave2@pbx.example.com) and 104 (dave@pbx.example.com) at once; " +
		"a user holds one registration at a time, so voxbind cannot plan, apply or export safely from this answer"
	for name, observe := range map[string]func(Account) (*Current, error){
		"Observe":      func(a Account) (*Current, error) { return Observe(context.Background(), a, nil) },
		"ObserveBound": func(a Account) (*Current, error) { return ObserveBound(context.Background(), a) },
	} {
		got, err := observe(newFakeAccount(c))
		var inc *InconsistentError
		if !errors.As(err, &inc) || inc.Message() != want || !strings.HasSuffix(err.Error(), ": "+inc.Fix()) {
			t.Errorf("%s: %v, %v\nwant an *InconsistentError: %s", name, got, err, want)
		}
	}
	// Each user on one registration: read as it is.
	c.Registrations = c.Registrations[1:4]
	if _, err := Observe(context.Background(), newFakeAccount(c), nil); err != nil {
		t.Errorf("one holder each: %v", err)
	}
}
