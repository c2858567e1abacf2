package reconcile_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// -undo.runs sets how many random accounts the undo property tests try.
var undoRuns = flag.Int("undo.runs", 500, "random accounts for the undo property tests")

// undoHandler is an http.RoundTripper that hands each request to the
// sandbox in-process: no sockets, so that hundreds of accounts take
// seconds.
type undoHandler struct{ h http.Handler }

func (u undoHandler) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	u.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// undoSandbox serves a random account from the sandbox and returns a
// client for it (the real HTTP client, talking to the server in-process).
func undoSandbox(tb testing.TB, c *reconcile.Current) (*sandbox.Server, *voximplant.Client) {
	tb.Helper()
	pemKey, err := sandbox.EncodePublicKey(&applyKey().PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	st := &sandbox.State{
		Account: sandbox.AccountRecord{ID: c.Account.ID, Name: c.Account.Name, Email: "ops@example.com"},
		Keys:    []sandbox.KeyRecord{{KeyID: "undo-key", PublicKey: pemKey}},
	}
	for _, a := range c.Applications {
		st.Applications = append(st.Applications, sandbox.ApplicationRecord{ID: a.ID, Name: strings.TrimSuffix(a.Name, "."+c.Account.Name+".voximplant.com")})
		for _, r := range c.Rules[a.ID] {
			st.Rules = append(st.Rules, sandbox.RuleRecord{ID: r.ID, ApplicationID: a.ID, Name: r.Name})
		}
		for _, u := range c.Users[a.ID] {
			st.Users = append(st.Users, sandbox.UserRecord{ID: u.ID, ApplicationID: a.ID, Name: u.Name})
		}
	}
	for _, r := range c.Registrations {
		reg := sandbox.Registration{ID: r.ID, SIPUsername: r.SIPUsername, Proxy: r.Proxy, Deactivated: r.Deactivated, Successful: true}
		if t := r.Target; t != nil {
			reg.ApplicationID = t.Application.ID
			if t.Rule != nil {
				reg.RuleID = t.Rule.ID
			}
			if t.User != nil {
				reg.UserID = t.User.ID
			}
		}
		st.Registrations = append(st.Registrations, reg)
	}
	srv := sandbox.New(st, sandbox.Options{})
	client, err := voximplant.New(voximplant.Options{
		Endpoint:    "http://127.0.0.1/platform_api/", // never dialled
		Credentials: voximplant.NewCredentials("ops@example.com", c.Account.ID, "undo-key", applyKey()),
		HTTPClient:  &http.Client{Transport: undoHandler{srv}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, client
}

// undoFaults makes some Bind calls go wrong the ways a real one can: fail
// for good without reaching the account (1), take effect and lose the
// answer (2), or lose the request (3).
type undoFaults struct {
	reconcile.Account
	kind map[int64]int // by registration id
	sent func(id int64)
}

func (f undoFaults) Bind(ctx context.Context, id int64, target *reconcile.Target) error {
	f.sent(id)
	switch f.kind[id] {
	case 1:
		return errors.New("BindSipRegistration: api error 393: refused")
	case 2:
		if err := f.Account.Bind(ctx, id, target); err != nil {
			return err
		}
		return fmt.Errorf("connection reset after the write: %w", reconcile.ErrOutcomeUnknown)
	case 3:
		return fmt.Errorf("connection reset before the write: %w", reconcile.ErrOutcomeUnknown)
	}
	return f.Account.Bind(ctx, id, target)
}

// undoTargets is every registration's target, by id.
func undoTargets(tb testing.TB, acct reconcile.Account) map[int64]*reconcile.Target {
	tb.Helper()
	regs, err := acct.Registrations(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	m := make(map[int64]*reconcile.Target, len(regs))
	for _, r := range regs {
		m[r.ID] = r.Target
	}
	return m
}

// undoApplied is one random apply, recorded in a journal: what the
// property tests start from.
type undoApplied struct {
	srv     *sandbox.Server
	acct    *voximplant.Client
	start   map[int64]*reconcile.Target // the account before the apply
	journal string
	records *reconcile.JournalRecords
	crashed bool
	faults  bool
	sent    map[int]bool // the steps whose call was sent
}

// undoApplyRandom makes a random account and spec, plans, and applies
// with a journal: in a quarter of the runs cleanly, in a quarter with
// faults, in a quarter stopped at a random step as a crash would (the
// context cancelled, the end never written, the file cut after the last
// intent, perhaps in the middle of a line), in a quarter both. Frozen
// registrations whose change would be blocked are thawed first: apply
// refuses such plans.
func undoApplyRandom(t *testing.T, rng *rand.Rand, dir string, run int) *undoApplied {
	t.Helper()
	ctx := context.Background()
	current := reconcile.RandomAccount(rng)
	desired, _, _ := reconcile.RandomSpec(rng, &current)
	var u undoApplied
	var observed *reconcile.Current
	var p *reconcile.Plan
	for {
		u.srv, u.acct = undoSandbox(t, &current)
		var err error
		if observed, err = reconcile.Observe(ctx, u.acct, desired); err != nil {
			t.Fatal(err)
		}
		if p, err = reconcile.Diff(desired, observed, reconcile.Options{}); err != nil {
			t.Fatal(err)
		}
		if len(p.Blocked) == 0 {
			break
		}
		for i := range current.Registrations {
			current.Registrations[i].Deactivated = false
		}
	}
	u.start = undoTargets(t, u.acct)

	u.journal = filepath.Join(dir, fmt.Sprintf("%d.jsonl", run))
	j, err := reconcile.CreateJournal(u.journal)
	if err != nil {
		t.Fatal(err)
	}
	reconcile.JournalWithoutSync(j)
	if err := j.Start(p, observed, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	mode := rng.IntN(4)
	u.faults, u.crashed = mode&1 != 0, mode&2 != 0 && len(p.Changes) > 0
	kind := map[int64]int{}
	if u.faults {
		for _, s := range p.Changes {
			if k := rng.IntN(6); k <= 3 {
				kind[s.Registration.ID] = k
			}
		}
	}
	crashAt, intentFirst := 0, rng.IntN(2) == 0
	if u.crashed {
		crashAt = 1 + rng.IntN(len(p.Changes))
	}
	applyCtx, crash := context.WithCancel(ctx)
	defer crash()
	// The journal is hooked as apply hooks it: the intents of the steps
	// next in line are written ahead, while the calls before them run.
	opts := reconcile.ApplyOptions{Parallelism: 1 + rng.IntN(4), Grace: 10 * time.Second}
	j.Hook(&opts)
	var calls atomic.Int64 // BeforeCall runs in the steps' goroutines
	before := func(s reconcile.Step) error {
		if calls.Add(1) != int64(crashAt) {
			return j.Intent(s)
		}
		// The crash comes just before this step's intent, or just after.
		var err error
		if intentFirst {
			err = j.Intent(s)
		}
		crash()
		return err
	}
	opts.BeforeCall = before
	stepOf := map[int64]int{}
	for _, s := range p.Changes {
		stepOf[s.Registration.ID] = s.Step
	}
	u.sent = map[int]bool{}
	var sentMu sync.Mutex
	sent := func(id int64) {
		sentMu.Lock()
		defer sentMu.Unlock()
		u.sent[stepOf[id]] = true
	}
	res := reconcile.Apply(applyCtx, undoFaults{u.acct, kind, sent}, p, opts)
	if !u.crashed {
		j.End(&res, nil, time.Now())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(u.journal)
	if err != nil {
		t.Fatal(err)
	}
	if u.crashed {
		// What a crash leaves: the start and the intent of every call
		// sent (each was synced before its call), then any part of what
		// followed, intents written ahead of calls never sent included.
		keep := strings.IndexByte(string(data), '\n') + 1
		for step := range u.sent {
			at := strings.Index(string(data), fmt.Sprintf(`{"kind":"intent","step":%d,`, step))
			if at < 0 {
				t.Fatalf("step %d was sent without an intent:\n%s", step, data)
			}
			keep = max(keep, at+strings.IndexByte(string(data[at:]), '\n')+1)
		}
		keep += rng.IntN(len(data) - keep + 1)
		data = data[:keep]
		if err := os.WriteFile(u.journal, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if u.records, err = reconcile.ReadJournal(data); err != nil {
		t.Fatalf("read the journal back: %v\n%s", err, data)
	}
	return &u
}

// undoBefores is, for every registration the journal names, the earliest
// before it records: where undo must put it back.
func undoBefores(j *reconcile.JournalRecords) (map[int64]*reconcile.Target, []int64) {
	m := map[int64]*reconcile.Target{}
	var order []int64
	add := func(id int64, t *reconcile.Target) {
		if _, ok := m[id]; !ok {
			m[id] = t
			order = append(order, id)
		}
	}
	for _, in := range j.Intents {
		add(in.Registration.ID, in.Before)
		if in.Displaces != nil {
			add(in.Displaces.Registration.ID, in.Displaces.Before)
		}
	}
	return m, order
}

// undoRestoreSpec is a spec that asks for each touched registration's
// earliest before: planning it must give the very steps undo gives.
func undoRestoreSpec(j *reconcile.JournalRecords) *spec.Spec {
	befores, order := undoBefores(j)
	s := &spec.Spec{Version: 1, Files: []string{"restore.yaml"}}
	for _, id := range order {
		b := spec.Binding{RegistrationID: id}
		if t := befores[id]; t == nil {
			b.Unbound = true
		} else {
			b.ApplicationID = t.Application.ID
			if t.Rule != nil {
				b.RuleID = t.Rule.ID
			}
			if t.User != nil {
				b.UserID = t.User.ID
			}
		}
		s.Bindings = append(s.Bindings, b)
	}
	return s
}

// undoComparable is what undo and plan must agree on: the steps without
// their reason and source.
func undoComparable(p *reconcile.Plan) *reconcile.Plan {
	out := *p
	out.Changes = slices.Clone(p.Changes)
	for i := range out.Changes {
		out.Changes[i].Reason, out.Changes[i].Source = "", ""
	}
	out.Journal = ""
	return &out
}

// TestUndoProperties: for random accounts and specs (binds, rebinds,
// unbinds, swaps, chains, unmanaged holders, prune), apply with a journal
// (sometimes with faults, sometimes crashed at a random step, leaving
// intents written ahead of calls never sent), then undo
// from the journal on the sandbox: nothing is blocked, the undo plan is
// exactly the plan of a spec asking for the journalled befores (the same
// planner), the account ends equal to how it started for every
// registration, and a second undo has nothing to do.
func TestUndoProperties(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2026, 1128))
	dir := t.TempDir()
	var steps, sideEffects, crashed, cut, faulted, noResult, ahead int
	for run := range *undoRuns {
		u := undoApplyRandom(t, rng, dir, run)
		ok := t.Run(fmt.Sprint(run), func(t *testing.T) {
			observed, err := reconcile.ObserveUndo(ctx, u.acct, u.records)
			if err != nil {
				t.Fatal(err)
			}
			p, err := reconcile.Undo(u.records, u.journal, observed, reconcile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Blocked) > 0 {
				t.Fatalf("nothing changed since the apply, yet the undo blocks:\n%s", undoFmt(p))
			}
			var saved strings.Builder
			if err := reconcile.RenderJSON(&saved, p, true); err != nil {
				t.Fatal(err)
			}
			if _, err := reconcile.ReadPlan([]byte(saved.String())); err != nil {
				t.Fatalf("the undo plan as undo --out saves it is refused: %v", err)
			}
			same, err := reconcile.Diff(undoRestoreSpec(u.records), observed, reconcile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(undoComparable(same), undoComparable(p), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the undo plan is not the plan of its befores (-plan +undo):\n%s", diff)
			}
			res := reconcile.Apply(ctx, u.acct, p, reconcile.ApplyOptions{Parallelism: 3})
			if !res.OK() {
				t.Fatalf("applying the undo: %+v", res)
			}
			if diff := cmp.Diff(u.start, undoTargets(t, u.acct), cmp.Comparer((*reconcile.Target).Equal)); diff != "" {
				t.Errorf("after undo the account differs from how it started (-start +now):\n%s", diff)
			}
			again, err := reconcile.ObserveUndo(ctx, u.acct, u.records)
			if err != nil {
				t.Fatal(err)
			}
			if q, err := reconcile.Undo(u.records, u.journal, again, reconcile.Options{}); err != nil || !q.Empty() || len(q.Blocked) > 0 {
				t.Errorf("a second undo: %v\n%s", err, undoFmt(q))
			}
			steps += len(p.Changes)
			sideEffects += len(p.SideEffects)
		})
		if !ok {
			data, _ := os.ReadFile(u.journal)
			t.Fatalf("run %d failed; journal:\n%s", run, data)
		}
		if u.crashed {
			crashed++
		}
		if u.records.CutShort {
			cut++
		}
		if u.faults {
			faulted++
		}
		noResult += u.records.Counts().NoResult
		for _, in := range u.records.Intents {
			if !u.sent[in.Step] {
				ahead++
			}
		}
	}
	t.Logf("%d runs: %d undo steps, %d side effects; %d with faults, %d crashed (%d journals cut mid-line, %d intents without a result, %d of calls never sent)",
		*undoRuns, steps, sideEffects, faulted, crashed, cut, noResult, ahead)
	if *undoRuns >= 500 && (sideEffects < 20 || crashed < 50 || cut < 20 || faulted < 50 || noResult < 20 || ahead < 20) {
		t.Errorf("the runs exercise too little: fix the generator")
	}
}

func undoFmt(p *reconcile.Plan) string {
	if p == nil {
		return "(no plan)"
	}
	var b strings.Builder
	reconcile.RenderText(&b, p, false)
	return b.String()
}

// TestUndoBlocksWhatChangedSince: after a random apply, someone changes
// one registration the apply touched (to an application alone, or to a
// user nobody holds: nothing else moves). Undo blocks exactly that
// restore and those that wait for it (a restore that needs its user back
// from a blocked registration, and so on), writes the rest back, and
// leaves the blocked ones as they are now.
func TestUndoBlocksWhatChangedSince(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2026, 1129))
	dir := t.TempDir()
	tried, waits := 0, 0
	for run := range *undoRuns {
		u := undoApplyRandom(t, rng, dir, run)
		befores, order := undoBefores(u.records)
		live := undoTargets(t, u.acct)
		x, target := undoChange(rng, u, befores, order, live)
		if target == nil {
			continue
		}
		tried++
		if err := u.acct.Bind(ctx, x, target); err != nil {
			t.Fatal(err)
		}
		live = undoTargets(t, u.acct)

		// What must be blocked: x, and every restore that needs a user
		// that a blocked registration holds, until nothing more is.
		want := map[int64]bool{x: true}
		for grew := true; grew; {
			grew = false
			for _, id := range order {
				b := befores[id]
				if want[id] || b.Equal(live[id]) || b == nil || b.User == nil {
					continue
				}
				for h, now := range live {
					if h != id && want[h] && now != nil && now.User != nil && now.User.ID == b.User.ID {
						want[id], grew = true, true
					}
				}
			}
		}
		waits += len(want) - 1

		ok := t.Run(fmt.Sprint(run), func(t *testing.T) {
			observed, err := reconcile.ObserveUndo(ctx, u.acct, u.records)
			if err != nil {
				t.Fatal(err)
			}
			p, err := reconcile.Undo(u.records, u.journal, observed, reconcile.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[int64]bool{}
			for _, b := range p.Blocked {
				got[b.Registration.ID] = true
				if b.Registration.ID == x && !strings.HasPrefix(b.Reason, "changed since the apply: now ") {
					t.Errorf("registration %d is blocked for %q; want changed since the apply", x, b.Reason)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("blocked (-want +got):\n%s\n%s", diff, undoFmt(p))
			}
			res := reconcile.Apply(ctx, u.acct, p, reconcile.ApplyOptions{Parallelism: 3})
			if !res.OK() {
				t.Fatalf("applying the undo: %+v", res)
			}
			end := map[int64]*reconcile.Target{}
			for id, t := range u.start {
				end[id] = t
				if want[id] {
					end[id] = live[id]
				}
			}
			if diff := cmp.Diff(end, undoTargets(t, u.acct), cmp.Comparer((*reconcile.Target).Equal)); diff != "" {
				t.Errorf("after undo (-want +got):\n%s", diff)
			}
		})
		if !ok {
			data, _ := os.ReadFile(u.journal)
			t.Fatalf("run %d failed; registration %d changed to %+v; journal:\n%s", run, x, target, data)
		}
	}
	t.Logf("%d of %d runs changed a touched registration; %d restores waited for one", tried, *undoRuns, waits)
	if *undoRuns >= 500 && (tried < 200 || waits < 20) {
		t.Errorf("the runs exercise too little: fix the generator")
	}
}

// undoChange picks a registration the apply touched and a new target for
// it that is neither its before nor anything the apply may have left it
// with, and that takes no user from anyone: an application alone, or a
// user nobody holds now (one that another restore needs, when there is
// one). It returns a nil target when there is none.
func undoChange(rng *rand.Rand, u *undoApplied, befores map[int64]*reconcile.Target, order []int64, live map[int64]*reconcile.Target) (int64, *reconcile.Target) {
	if len(order) == 0 {
		return 0, nil
	}
	x := order[rng.IntN(len(order))]
	left := []*reconcile.Target{befores[x], live[x]}
	for _, in := range u.records.Intents {
		if in.Registration.ID == x {
			left = append(left, in.After)
		}
		if d := in.Displaces; d != nil && d.Registration.ID == x {
			left = append(left, nil, &reconcile.Target{Application: d.Before.Application, Rule: d.Before.Rule})
		}
	}
	held := map[int64]bool{}
	for _, t := range live {
		if t != nil && t.User != nil {
			held[t.User.ID] = true
		}
	}
	st := u.srv.State()
	var needed, free, apps []*reconcile.Target
	for _, a := range st.Applications {
		apps = append(apps, &reconcile.Target{Application: reconcile.Ref{ID: a.ID}})
	}
	for _, usr := range st.Users {
		if held[usr.ID] {
			continue
		}
		t := &reconcile.Target{Application: reconcile.Ref{ID: usr.ApplicationID}, User: &reconcile.Ref{ID: usr.ID}}
		free = append(free, t)
		for _, id := range order {
			if b := befores[id]; id != x && b != nil && b.User != nil && b.User.ID == usr.ID {
				needed = append(needed, t)
			}
		}
	}
	for _, pool := range [][]*reconcile.Target{needed, free, apps} {
		pool = slices.DeleteFunc(slices.Clone(pool), func(t *reconcile.Target) bool { return slices.ContainsFunc(left, t.Equal) })
		if len(pool) > 0 && (rng.IntN(3) != 0 || len(apps) == 0) {
			return x, pool[rng.IntN(len(pool))]
		}
	}
	return x, nil
}
