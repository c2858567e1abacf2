package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/spec"
)

// journalAPIError is a Bind failure with an API error code, as the
// Voximplant client returns.
type journalAPIError struct{ code int }

func (e journalAPIError) Error() string {
	return fmt.Sprintf("BindSipRegistration: api error %d: nope", e.code)
}
func (e journalAPIError) APICode() int { return e.code }

// journalLines reads a journal file back as one generic object per line.
func journalLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %q", i+1, err, line)
		}
		out = append(out, m)
	}
	return out
}

// TestJournalRecordsApply applies a plan with a chain, a displacement of
// an unmanaged registration, a failing step (and one skipped behind it)
// and one whose answer is lost, with a journal, and checks that each
// intent is in the file when its call starts, and the file line by line.
func TestJournalRecordsApply(t *testing.T) {
	// r000 holds u000, r001 holds u001 (unmanaged), r002 u002, r003 free.
	current := applyTestCurrent(6)
	for i := range 3 {
		current.Registrations[i].Target = applyUserTarget(int64(1001 + i))
	}
	desired := &spec.Spec{Version: 1, Bindings: []spec.Binding{
		{RegistrationID: 101, ApplicationID: 1, UserID: 1004}, // step: r000 leaves u000 for u003
		{RegistrationID: 104, ApplicationID: 1, UserID: 1001}, // then r003 takes u000
		{RegistrationID: 105, ApplicationID: 1, UserID: 1002}, // r004 takes u001 from unmanaged r001
		{RegistrationID: 103, Unbound: true},                  // r002: fails
		{RegistrationID: 106, ApplicationID: 1, UserID: 1003}, // r005 takes u002 after r002: skipped
	}}
	p, err := Diff(desired, &current, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 5 || len(p.SideEffects) != 1 {
		t.Fatalf("the test wants 5 steps and 1 side effect:\n%s", planFmt(p))
	}
	stepOf := map[int64]int{}
	for _, s := range p.Changes {
		stepOf[s.Registration.ID] = s.Step
	}

	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := CreateJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 28, 6, 15, 0, 0, time.UTC)
	if err := j.Start(p, &current, "v9.9.9", started); err != nil {
		t.Fatal(err)
	}
	fake := newFakeAccount(current)
	var missingIntent []int64
	fake.fail = func(id int64, target *Target) error {
		// The intent of this call must be on disk already.
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, []byte(fmt.Sprintf(`"kind":"intent","step":%d,`, stepOf[id]))) {
			missingIntent = append(missingIntent, id)
		}
		switch id {
		case 103:
			return journalAPIError{393}
		case 105:
			return fmt.Errorf("connection reset: %w", ErrOutcomeUnknown)
		}
		return nil
	}
	res := Apply(context.Background(), fake, p, ApplyOptions{Parallelism: 1, BeforeCall: j.Intent, Progress: j.Result})
	verified := false
	if err := j.End(&res, &verified, started.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if len(missingIntent) > 0 {
		t.Errorf("registrations %v were called before their intent was in the journal", missingIntent)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode: %v %v; want 0600", fi.Mode(), err)
	}

	app := map[string]any{"id": 1.0, "name": "support.acme.voximplant.com"}
	user := func(id int) map[string]any {
		return map[string]any{"application": app, "rule": nil, "user": map[string]any{"id": float64(1001 + id), "name": fmt.Sprintf("u%03d", id)}}
	}
	reg := func(i int) map[string]any {
		return map[string]any{"id": float64(101 + i), "sip_username": fmt.Sprintf("r%03d", i), "proxy": "pbx.example.com"}
	}
	intent := func(r, before, after int, displaces map[string]any) map[string]any {
		m := map[string]any{"kind": "intent", "step": float64(stepOf[int64(101+r)]), "registration": reg(r), "displaces": nil}
		if displaces != nil {
			m["displaces"] = displaces
		}
		m["before"], m["after"] = any(nil), any(nil)
		if before >= 0 {
			m["before"] = user(before)
		}
		if after >= 0 {
			m["after"] = user(after)
		}
		return m
	}
	result := func(r int, outcome string, code int, message string) map[string]any {
		m := map[string]any{"kind": "result", "step": float64(stepOf[int64(101+r)]), "outcome": outcome, "error": nil}
		if outcome != "applied" {
			m["error"] = map[string]any{"code": float64(code), "message": message}
		}
		return m
	}
	// Parallelism 1: the steps run in plan order, one at a time.
	var want []map[string]any
	want = append(want, map[string]any{"kind": "start", "journal_version": 1.0, "account_id": 42.0, "voxbind_version": "v9.9.9",
		"started": "2026-11-28T06:15:00Z", "plan_steps": 5.0})
	byStep := map[int][]map[string]any{
		stepOf[101]: {intent(0, 0, 3, nil), result(0, "applied", 0, "")},
		stepOf[104]: {intent(3, -1, 0, nil), result(3, "applied", 0, "")},
		stepOf[105]: {intent(4, -1, 1, map[string]any{"registration": reg(1), "before": user(1)}),
			result(4, "unknown", 0, "connection reset: the outcome is unknown: the answer was lost")},
		stepOf[103]: {intent(2, 2, -1, nil), result(2, "failed", 393, "BindSipRegistration: api error 393: nope")},
	}
	for step := 1; step <= 5; step++ {
		want = append(want, byStep[step]...)
	}
	want = append(want, map[string]any{"kind": "end", "finished": "2026-11-28T06:15:03Z", "interrupted": false, "verified": false,
		"summary": map[string]any{"applied": 2.0, "failed": 1.0, "skipped": 1.0, "unknown": 1.0, "not_started": 0.0}})
	if diff := cmp.Diff(want, journalLines(t, path)); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}

	// And it reads back.
	data, _ := os.ReadFile(path)
	records, err := ReadJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	if c := records.Counts(); c != (JournalCounts{Intents: 4, Applied: 2, Failed: 1, Unknown: 1}) || records.End == nil || records.CutShort {
		t.Errorf("read back: %+v, end %v, cut short %v", c, records.End, records.CutShort)
	}
}

// journalCheckAccount is an Account that checks, at each call, that the
// call's intent is in the journal file as a whole line and that the
// journal has synced it; and counts the calls that found an intent
// written ahead, of a step not sent yet.
type journalCheckAccount struct {
	Account
	j      *Journal
	stepOf map[int64]int // registration id → step

	mu       sync.Mutex
	sent     int
	problems []string
	ahead    int
}

func (a *journalCheckAccount) Bind(ctx context.Context, id int64, target *Target) error {
	a.mu.Lock()
	a.sent++
	a.mu.Unlock()
	step := a.stepOf[id]
	data, err := os.ReadFile(a.j.path)
	line := []byte(fmt.Sprintf(`{"kind":"intent","step":%d,`, step))
	at := bytes.Index(data, line)
	a.j.mu.Lock()
	n, written := a.j.intents[step]
	durable := a.j.durable
	a.j.mu.Unlock()
	switch {
	case err != nil:
		a.problem(err.Error())
	case at < 0 || at > 0 && data[at-1] != '\n' || !bytes.Contains(data[at:], []byte("\n")):
		a.problem(fmt.Sprintf("step %d was sent before its intent was in the journal", step))
	case !written || durable < n:
		a.problem(fmt.Sprintf("step %d was sent before its intent was synced to disk", step))
	}
	time.Sleep(2 * time.Millisecond) // the call's latency: the next steps' intents are written meanwhile
	data, _ = os.ReadFile(a.j.path)
	a.mu.Lock()
	if bytes.Count(data, []byte(`{"kind":"intent",`)) > a.sent {
		a.ahead++
	}
	a.mu.Unlock()
	return a.Account.Bind(ctx, id, target)
}

func (a *journalCheckAccount) problem(p string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.problems = append(a.problems, p)
}

// TestJournalIntentOnDiskBeforeEachCall: with the journal hooked as apply
// hooks it (the intents of the next steps written ahead, while the calls
// before them are in flight), every call sent finds its intent in the
// file, whole, and synced; and intents are indeed written ahead.
func TestJournalIntentOnDiskBeforeEachCall(t *testing.T) {
	const n = 60
	current := applyTestCurrent(n)
	desired := &spec.Spec{Version: 1}
	for i := range n {
		desired.Bindings = append(desired.Bindings, spec.Binding{RegistrationID: int64(101 + i), ApplicationID: applyTestApp.ID, UserID: int64(1001 + i)})
	}
	p, err := Diff(desired, &current, Options{})
	if err != nil || len(p.Changes) != n {
		t.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	stepOf := map[int64]int{}
	for _, s := range p.Changes {
		stepOf[s.Registration.ID] = s.Step
	}
	for _, par := range []int{1, 4, 16} {
		t.Run(fmt.Sprint("parallelism=", par), func(t *testing.T) {
			j, err := CreateJournal(filepath.Join(t.TempDir(), "j.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Start(p, &current, "v", time.Now()); err != nil {
				t.Fatal(err)
			}
			acct := &journalCheckAccount{Account: newFakeAccount(current), j: j, stepOf: stepOf}
			opts := ApplyOptions{Parallelism: par}
			j.Hook(&opts)
			res := Apply(context.Background(), acct, p, opts)
			if err := j.End(&res, nil, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if !res.OK() || res.Applied != n {
				t.Fatalf("apply: %+v", res)
			}
			if len(acct.problems) > 0 {
				t.Errorf("%d of %d calls:\n%s", len(acct.problems), n, strings.Join(acct.problems, "\n"))
			}
			if acct.ahead == 0 {
				t.Errorf("no intent was written ahead of its call")
			}
		})
	}
}

// TestJournalWriteFailureStopsApply: when an intent cannot be written,
// its call is not made and the apply stops, saying why.
func TestJournalWriteFailureStopsApply(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil}, applyHandStep{2, 2, nil})
	current := applyTestCurrent(3)
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := CreateJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(p, &current, "v", time.Now()); err != nil {
		t.Fatal(err)
	}
	fake := newFakeAccount(current)
	intents := 0
	before := func(s Step) error {
		if intents++; intents == 2 {
			// The disk goes away: the file can no longer be written.
			ro, err := os.Open(path)
			if err != nil {
				t.Error(err)
			}
			j.mu.Lock()
			j.f.Close()
			j.f = ro
			j.mu.Unlock()
		}
		return j.Intent(s)
	}
	res := Apply(context.Background(), fake, p, ApplyOptions{Parallelism: 1, BeforeCall: before, Progress: j.Result})
	if len(fake.calls) != 1 || res.Applied != 1 || res.NotStarted != 2 {
		t.Errorf("%d calls, %+v; want the first step applied and the others not started", len(fake.calls), res)
	}
	if res.Stopped == nil || !strings.Contains(res.Stopped.Error(), "before the call of step 2: journal "+path+": write:") {
		t.Errorf("Stopped = %v; want the journal's write error before step 2", res.Stopped)
	}
	if err := j.Close(); err == nil || !errors.Is(res.Stopped, err) {
		t.Errorf("Close = %v; want the error that stopped the apply", err)
	}
}

func TestCreateJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	now := time.Date(2026, 11, 28, 6, 15, 0, 0, time.FixedZone("X", 3600))
	var paths []string
	for range 3 {
		j, err := CreateJournalIn(dir, 1234567, now)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(j.Path()))
		j.Close()
	}
	want := []string{"1234567-20261128T051500Z.jsonl", "1234567-20261128T051500Z-2.jsonl", "1234567-20261128T051500Z-3.jsonl"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("journal names (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v; want mode 0700", fi, err)
	}

	// An existing file is never overwritten.
	existing := filepath.Join(dir, "mine.jsonl")
	os.WriteFile(existing, []byte("keep"), 0o600)
	if _, err := CreateJournal(existing); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("CreateJournal over a file = %v; want a refusal", err)
	}
	if data, _ := os.ReadFile(existing); string(data) != "keep" {
		t.Errorf("the existing file was changed: %q", data)
	}
	if _, err := CreateJournal(filepath.Join(existing, "x.jsonl")); err == nil {
		t.Error("CreateJournal under a file succeeded")
	}
	if _, err := CreateJournalIn(filepath.Join(existing, "d"), 1, now); err == nil {
		t.Error("CreateJournalIn under a file succeeded")
	}
	// CreateJournal never makes a directory: a --journal FILE's missing
	// directory is more likely a typo.
	missing := filepath.Join(t.TempDir(), "no", "such")
	if _, err := CreateJournal(filepath.Join(missing, "x.jsonl")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+missing+" does not exist") {
		t.Errorf("CreateJournal in a missing directory = %v; want fs.ErrNotExist naming it", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Errorf("the missing directory was created: %v", err)
	}
}

// TestJournalDiscard: a journal created for a run that went no further
// is removed with the directories made for it; one with a line stays.
func TestJournalDiscard(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	j, err := CreateJournalIn(filepath.Join(root, "a", "b"), 1, now)
	if err != nil {
		t.Fatal(err)
	}
	k, err := CreateJournalIn(filepath.Join(root, "a", "b"), 2, now)
	if err != nil {
		t.Fatal(err)
	}
	// The last made first: the directories go with the first.
	if err := k.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "a", "b")); err != nil {
		t.Errorf("the directory went while a journal was in it: %v", err)
	}
	if err := j.Discard(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("after Discard, %s holds %v; want nothing", root, entries)
	}

	l, err := CreateJournal(filepath.Join(root, "kept.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(&Plan{AccountID: 1}, &Current{}, "test", now); err != nil {
		t.Fatal(err)
	}
	if err := l.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Errorf("Discard removed a journal with a line in it: %v", err)
	}
}

// journalTestStart is a valid first line.
const journalTestStart = `{"kind":"start","journal_version":1,"account_id":42,"voxbind_version":"v1","started":"2026-11-28T06:15:00Z","plan_steps":2}`

const journalTestIntent = `{"kind":"intent","step":1,"registration":{"id":101,"sip_username":"r000","proxy":"p"},"before":null,"after":{"application":{"id":1,"name":"a"},"rule":null,"user":null},"displaces":null}`

func TestReadJournal(t *testing.T) {
	ok := journalTestStart + "\n" + journalTestIntent + "\n" + `{"kind":"result","step":1,"outcome":"applied","error":null}` + "\n"
	j, err := ReadJournal([]byte(ok))
	if err != nil || len(j.Intents) != 1 || j.Intents[0].Line != 2 || j.Results[1].Outcome != StepApplied || j.End != nil || j.CutShort || j.Lines != 3 {
		t.Fatalf("ReadJournal = %+v, %v", j, err)
	}
	// A partial last line is left out.
	for _, cut := range []string{`{"kind":"res`, `{"kind":"result","step":1,"outcome":"applied","error":null}`} {
		j, err := ReadJournal([]byte(journalTestStart + "\n" + journalTestIntent + "\n" + cut))
		if err != nil || !j.CutShort || j.Lines != 2 || len(j.Results) != 0 {
			t.Errorf("cut %q: %+v, %v; want the two complete lines, CutShort", cut, j, err)
		}
	}

	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "no complete line"},
		{"only a partial line", `{"kind":"st`, "no complete line"},
		{"not JSON", "hello\n", "line 1: not a JSON object"},
		{"no start", journalTestIntent + "\n", `line 1: the first line must be the start record (kind "start"), not "intent"`},
		{"version 2", strings.Replace(journalTestStart, `"journal_version":1`, `"journal_version":2`, 1) + "\n", "unknown journal_version 2 (written by voxbind v1): this voxbind reads journal_version 1"},
		{"no version", strings.Replace(journalTestStart, `"journal_version":1,`, ``, 1) + "\n", "unknown journal_version none"},
		{"no account", strings.Replace(journalTestStart, `"account_id":42`, `"account_id":0`, 1) + "\n", "account_id 0: must be the positive id"},
		{"unknown key", strings.Replace(journalTestStart, `"plan_steps"`, `"plan_stepz"`, 1) + "\n", `line 1: in the start record, unknown key "plan_stepz": the journal was edited or damaged`},
		{"not an object", "[1]\n", "line 1: the value is a list, but must be an object"},
		{"kind a number", journalTestStart + "\n" + `{"kind":5}` + "\n", `line 2: "kind" is a number, but must be a string`},
		{"account id a string", strings.Replace(journalTestStart, `"account_id":42`, `"account_id":"42"`, 1) + "\n", `line 1: in the start record, "account_id" is a string, but must be a whole number`},
		{"after a string", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"after":{"application":{"id":1,"name":"a"},"rule":null,"user":null}`, `"after":"x"`, 1) + "\n", `line 2: in the intent record, "after" is a string, but must be an object: the journal was edited or damaged`},
		{"step a fraction", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"step":1`, `"step":1.5`, 1) + "\n", `line 2: in the intent record, "step" is the number 1.5, but must be a whole number`},
		{"key twice", strings.Replace(journalTestStart, `"plan_steps":2`, `"plan_steps":2,"plan_steps":3`, 1) + "\n", `key "plan_steps" is written twice`},
		{"bad line in the middle", journalTestStart + "\n{oops\n" + journalTestIntent + "\n", "line 2: not a JSON object"},
		{"unknown kind", journalTestStart + "\n" + `{"kind":"note"}` + "\n", `line 2: kind "note": must be`},
		{"second start", journalTestStart + "\n" + journalTestStart + "\n", "line 2: a second start record"},
		{"intent twice", journalTestStart + "\n" + journalTestIntent + "\n" + journalTestIntent + "\n", "line 3: a second intent for step 1"},
		{"result without intent", journalTestStart + "\n" + `{"kind":"result","step":1,"outcome":"applied","error":null}` + "\n", "line 2: a result for step 1, which has no intent before it"},
		{"bad outcome", journalTestStart + "\n" + journalTestIntent + "\n" + `{"kind":"result","step":1,"outcome":"skipped","error":null}` + "\n", `line 3: outcome "skipped"`},
		{"after the end", journalTestStart + "\n" + `{"kind":"end","finished":"x","interrupted":false,"verified":null,"summary":{"applied":0,"failed":0,"skipped":0,"unknown":0,"not_started":0}}` + "\n" + journalTestIntent + "\n", "line 3: a record after the end record"},
		{"bad target", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"id":1,"name":"a"`, `"id":0,"name":"a"`, 1) + "\n", "line 2: step 1: after: application id 0"},
		{"bad step", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"step":1`, `"step":0`, 1) + "\n", "line 2: step 0: must be positive"},
		{"displaces itself", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"displaces":null`, `"displaces":{"registration":{"id":101,"sip_username":"r000","proxy":"p"},"before":{"application":{"id":1,"name":"a"},"rule":null,"user":{"id":5,"name":"u"}}}`, 1) + "\n", "displaces registration 101: must be another"},
		{"displaces no user", journalTestStart + "\n" + strings.Replace(journalTestIntent, `"displaces":null`, `"displaces":{"registration":{"id":102,"sip_username":"r001","proxy":"p"},"before":null}`, 1) + "\n", "its before holds no user to lose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJournal([]byte(tc.data))
			if err == nil || !errors.Is(err, ErrJournalFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadJournal = %v; want ErrJournalFormat saying %q", err, tc.want)
			}
			// The file's words, not Go's.
			if err != nil && (strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "Go ")) {
				t.Errorf("ReadJournal = %v; want no Go type or package named", err)
			}
			// What to do is the command's to say, once (undo, show).
			if err != nil && (strings.Contains(err.Error(), "give ") || strings.Contains(err.Error(), "with the voxbind that wrote it")) {
				t.Errorf("ReadJournal = %v; want what is wrong, without a hint", err)
			}
		})
	}
	_, err = ReadJournal([]byte(strings.Replace(journalTestStart, `"journal_version":1`, `"journal_version":2`, 1) + "\n"))
	if !errors.Is(err, ErrJournalVersion) {
		t.Errorf("version 2: %v; want ErrJournalVersion", err)
	}
}

// FuzzReadJournal: whatever the bytes, ReadJournal returns an error or
// records that Undo can plan from without panicking.
func FuzzReadJournal(f *testing.F) {
	f.Add([]byte(journalTestStart + "\n" + journalTestIntent + "\n"))
	f.Add([]byte(journalTestStart + "\n" + journalTestIntent + "\n" + `{"kind":"result","step":1,"outcome":"failed","error":{"code":393,"message":"x"}}` + "\n{\"ki"))
	current := applyTestCurrent(3)
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ReadJournal(data)
		if err != nil {
			return
		}
		j.Start.AccountID = current.Account.ID
		if _, err := Undo(j, "j", &current, Options{}); err != nil {
			t.Errorf("Undo of an accepted journal: %v", err)
		}
	})
}
