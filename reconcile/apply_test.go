package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/spec"
)

// applyTestApp is the one application of the executor tests' accounts.
var applyTestApp = Ref{ID: 1, Name: "support.acme.voximplant.com"}

// applyTestCurrent is an account with n unbound registrations (ids 101…)
// and n users of one application (ids 1001…).
func applyTestCurrent(n int) Current {
	c := Current{
		Account:      AccountInfo{ID: 42, Name: "acme"},
		Applications: []Application{{ID: applyTestApp.ID, Name: applyTestApp.Name}},
		Rules:        map[int64][]Rule{applyTestApp.ID: {}},
		Users:        map[int64][]User{applyTestApp.ID: {}},
	}
	for i := range n {
		c.Registrations = append(c.Registrations, Registration{
			RegistrationRef: RegistrationRef{ID: int64(101 + i), SIPUsername: fmt.Sprintf("r%03d", i), Proxy: "pbx.example.com"},
		})
		c.Users[applyTestApp.ID] = append(c.Users[applyTestApp.ID], User{ID: int64(1001 + i), ApplicationID: applyTestApp.ID, Name: fmt.Sprintf("u%03d", i)})
	}
	return c
}

func applyUserTarget(user int64) *Target {
	return &Target{Application: applyTestApp, User: &Ref{ID: user, Name: fmt.Sprintf("u%03d", user-1001)}}
}

// applyRecorder wraps an Account and records, for every Bind, when it
// started and finished on one shared clock (a counter), how many calls
// were in flight at most, and whether the call's context was cancelled.
// fail, when set, makes a call fail for good without reaching the
// account; gate, when set, holds every call until it is closed.
type applyRecorder struct {
	Account
	fail func(id int64) error
	gate chan struct{}

	mu          sync.Mutex
	clock       int
	started     map[int64]int // registration id → clock at start
	finished    map[int64]int // registration id → clock at finish
	inFlight    int
	maxInFlight int
	cancelled   int // calls whose context was cancelled when they ended
	startedCh   chan int64
	// stoppedCh gets the id of each call that saw its context end while
	// held at the gate.
	stoppedCh chan int64
}

func newApplyRecorder(acct Account) *applyRecorder {
	return &applyRecorder{Account: acct, started: map[int64]int{}, finished: map[int64]int{},
		startedCh: make(chan int64, 10000), stoppedCh: make(chan int64, 10000)}
}

func (r *applyRecorder) Bind(ctx context.Context, id int64, target *Target) error {
	r.mu.Lock()
	r.clock++
	r.started[id] = r.clock
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	r.startedCh <- id

	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			r.stoppedCh <- id
			<-r.gate
		}
	}
	var err error
	if r.fail != nil {
		err = r.fail(id)
	}
	if err == nil {
		err = r.Account.Bind(ctx, id, target)
	}

	r.mu.Lock()
	r.clock++
	r.finished[id] = r.clock
	r.inFlight--
	if ctx.Err() != nil {
		r.cancelled++
	}
	r.mu.Unlock()
	return err
}

// applyChainSpec makes an account and a spec whose plan is made of chains
// and cycles of user moves: registrations hold users, and the spec moves
// each user to another registration of its group, so that most steps must
// wait for another.
func applyChainSpec(rng *rand.Rand, n int) (Current, *spec.Spec) {
	c := applyTestCurrent(n)
	desired := &spec.Spec{Version: 1}
	for i := 0; i < n; {
		size := 1 + rng.IntN(6)
		size = min(size, n-i)
		cycle := rng.IntN(3) == 0
		for k := range size {
			reg := i + k
			if k > 0 || cycle {
				c.Registrations[reg].Target = applyUserTarget(int64(1001 + reg))
			}
			next := i + (k+1)%size
			if !cycle && k == size-1 {
				desired.Bindings = append(desired.Bindings, spec.Binding{RegistrationID: int64(101 + reg), Unbound: true})
				continue
			}
			desired.Bindings = append(desired.Bindings, spec.Binding{
				RegistrationID: int64(101 + reg), ApplicationID: applyTestApp.ID, UserID: int64(1001 + next),
			})
		}
		i += size
	}
	return c, desired
}

func TestApplyRespectsDependencies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	current, desired := applyChainSpec(rng, 300)
	p, err := Diff(desired, &current, Options{})
	if err != nil {
		t.Fatal(err)
	}
	deps := 0
	for _, s := range p.Changes {
		deps += len(s.DependsOn)
	}
	if deps < 50 {
		t.Fatalf("the test plan has only %d dependencies; it should exercise ordering", deps)
	}

	fake := newFakeAccount(current)
	rec := newApplyRecorder(fake)
	var events []StepEvent
	res := Apply(context.Background(), rec, p, ApplyOptions{Parallelism: 8, Progress: func(ev StepEvent) { events = append(events, ev) }})

	if !res.OK() || res.Applied != len(p.Changes) {
		t.Fatalf("apply: %d applied, %d failed, %d skipped, %d not started; want all %d applied",
			res.Applied, res.Failed, res.Skipped, res.NotStarted, len(p.Changes))
	}
	regOf := map[int]int64{}
	for _, s := range p.Changes {
		regOf[s.Step] = s.Registration.ID
	}
	for _, s := range p.Changes {
		for _, d := range s.DependsOn {
			if start, depDone := rec.started[s.Registration.ID], rec.finished[regOf[d]]; start < depDone {
				t.Errorf("step %d started at %d, before step %d (which it depends on) finished at %d", s.Step, start, d, depDone)
			}
		}
	}
	if rec.maxInFlight > 8 {
		t.Errorf("%d calls in flight at once; parallelism is 8", rec.maxInFlight)
	}
	if len(fake.calls) != len(p.Changes) {
		t.Errorf("%d Bind calls for %d steps", len(fake.calls), len(p.Changes))
	}

	// The account is now what the spec asks, and the only displacements
	// are the planned side effects.
	after, err := Observe(context.Background(), fake, desired)
	if err != nil {
		t.Fatal(err)
	}
	if ms := Verify(p, after); len(ms) != 0 {
		t.Errorf("verify after apply: %v", ms)
	}
	if again, err := Diff(desired, after, Options{}); err != nil || !again.Empty() {
		t.Errorf("planning again after apply: %v, %d changes; want none", err, len(again.Changes))
	}
	type disp struct{ Reg, User int64 }
	var gotDisp, wantDisp []disp
	for _, d := range fake.displaced {
		gotDisp = append(gotDisp, disp{d.RegistrationID, d.User.ID})
	}
	for _, e := range p.SideEffects {
		wantDisp = append(wantDisp, disp{e.Registration.ID, e.LosesUser.ID})
	}
	cmpDisp := func(a, b disp) int { return int(a.Reg - b.Reg) }
	slices.SortFunc(gotDisp, cmpDisp)
	slices.SortFunc(wantDisp, cmpDisp)
	if diff := cmp.Diff(wantDisp, gotDisp); diff != "" {
		t.Errorf("displacements (-planned side effects +happened):\n%s", diff)
	}

	// Progress heard of every step once, with running counts.
	if len(events) != len(p.Changes) {
		t.Fatalf("%d progress events for %d steps", len(events), len(p.Changes))
	}
	seen := map[int]bool{}
	for i, ev := range events {
		if ev.Done != i+1 || ev.Total != len(p.Changes) || ev.Applied != i+1 || seen[ev.Step.Step] {
			t.Errorf("event %d: step %d done %d/%d applied %d (seen before: %v)", i, ev.Step.Step, ev.Done, ev.Total, ev.Applied, seen[ev.Step.Step])
		}
		seen[ev.Step.Step] = true
	}
}

// TestApplyRunsInParallel proves that Apply keeps --parallelism calls in
// flight, and never more: each call waits at a gate that opens only once
// that many calls are waiting at it together. An Apply that runs fewer at
// once never opens it and fails at the deadline; one that runs more is
// caught by the count.
func TestApplyRunsInParallel(t *testing.T) {
	const n, par = 40, 4
	current := applyTestCurrent(n)
	desired := &spec.Spec{Version: 1}
	for i := range n {
		desired.Bindings = append(desired.Bindings, spec.Binding{RegistrationID: int64(101 + i), ApplicationID: applyTestApp.ID, UserID: int64(1001 + i)})
	}
	p, err := Diff(desired, &current, Options{})
	if err != nil || len(p.Changes) != n {
		t.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	fake := newFakeAccount(current)
	rec := newApplyRecorder(fake)
	rec.gate = make(chan struct{})
	var open sync.Once
	defer open.Do(func() { close(rec.gate) }) // on failure too: no call stays stuck
	done := make(chan ApplyResult, 1)
	go func() { done <- Apply(context.Background(), rec, p, ApplyOptions{Parallelism: par}) }()
	deadline := time.After(30 * time.Second)
	for range par {
		select {
		case <-rec.startedCh:
		case <-deadline:
			t.Fatalf("fewer than %d calls in flight after 30 s: Apply does not run steps in parallel", par)
		}
	}
	open.Do(func() { close(rec.gate) }) // par calls were waiting together; let everything through
	res := <-done
	if !res.OK() || res.Applied != n {
		t.Errorf("apply: %+v", res)
	}
	if rec.maxInFlight != par {
		t.Errorf("at most %d calls in flight, want exactly the parallelism, %d", rec.maxInFlight, par)
	}
}

// applyHandPlan is a plan on applyTestCurrent(n) from steps given as
// (registration index, user index or -1 for unbind, depends on).
func applyHandPlan(steps ...applyHandStep) *Plan {
	p := &Plan{FormatVersion: FormatVersion, AccountID: 42}
	for i, h := range steps {
		s := Step{Step: i + 1, Action: ActionBind, Registration: RegistrationRef{ID: int64(101 + h.reg), SIPUsername: fmt.Sprintf("r%03d", h.reg), Proxy: "pbx.example.com"},
			Reason: ReasonSpec, DependsOn: h.deps, Precondition: &Precondition{}}
		if h.user >= 0 {
			s.After = applyUserTarget(int64(1001 + h.user))
		} else {
			s.Action = ActionUnbind
		}
		p.Changes = append(p.Changes, s)
	}
	return p
}

type applyHandStep struct {
	reg, user int
	deps      []int
}

func applyStatuses(res ApplyResult) []string {
	var out []string
	for _, o := range res.Outcomes {
		s := fmt.Sprintf("%d %s", o.Step, o.Status)
		if o.Status == StepSkipped {
			s += fmt.Sprintf(" (cause %d: %s)", o.Cause, o.Why)
		}
		out = append(out, s)
	}
	return out
}

func TestApplyFailureSkipsDependentsOnly(t *testing.T) {
	// 1 ← 2 ← 3 ← 4 is a chain, 5 and 6 stand alone, 7 waits for 5 and 2.
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, []int{1}},
		applyHandStep{2, 2, []int{2}},
		applyHandStep{3, 3, []int{3}},
		applyHandStep{4, 4, nil},
		applyHandStep{5, -1, nil},
		applyHandStep{6, 6, []int{2, 5}},
	)
	fake := newFakeAccount(applyTestCurrent(7))
	permanent := errors.New("BindSipRegistration: api error 393: user not bound to the application")
	fake.fail = func(id int64, _ *Target) error {
		if id == 102 {
			return permanent
		}
		return nil
	}
	res := Apply(context.Background(), fake, p, ApplyOptions{Parallelism: 3})

	want := []string{
		"1 applied",
		"2 failed",
		"3 skipped (cause 2: step 2 failed)",
		"4 skipped (cause 2: step 2 failed)",
		"5 applied",
		"6 applied",
		"7 skipped (cause 2: step 2 failed)",
	}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if res.Applied != 3 || res.Failed != 1 || res.Skipped != 3 || res.NotStarted != 0 || res.Stopped != nil || res.OK() {
		t.Errorf("counts: %+v", res)
	}
	err := res.Outcomes[1].Err
	if !errors.Is(err, permanent) || !strings.Contains(err.Error(), "step 2: bind registration 102 (r001@pbx.example.com): BindSipRegistration: api error 393") {
		t.Errorf("step 2 error = %v; want it to name the step, the registration and the API error", err)
	}
	var called []int64
	for _, c := range fake.calls {
		called = append(called, c.RegistrationID)
	}
	slices.Sort(called)
	if diff := cmp.Diff([]int64{101, 102, 105, 106}, called); diff != "" {
		t.Errorf("Bind calls (-want +got):\n%s", diff)
	}

	// Only the applied steps are verified; the failed one is reported as failed.
	got, _ := fake.Registrations(context.Background())
	current := applyTestCurrent(7)
	current.Registrations = got
	applied := res.AppliedPlan(p)
	if ms := Verify(applied, &current); len(ms) != 0 {
		t.Errorf("verify the applied steps: %v", ms)
	}
	if n := VerifiedSteps(applied, nil); n != 3 {
		t.Errorf("verified %d steps, want 3", n)
	}
}

// TestApplyStartsInPlanOrder: with one call at a time, steps run in the
// order they are numbered, also a step whose dependency has just been
// applied while an earlier step is waiting.
func TestApplyStartsInPlanOrder(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, nil},
		applyHandStep{2, 2, []int{1}},
		applyHandStep{3, 3, nil},
		applyHandStep{4, 4, []int{3}},
	)
	rec := newApplyRecorder(newFakeAccount(applyTestCurrent(5)))
	if res := Apply(context.Background(), rec, p, ApplyOptions{Parallelism: 1}); !res.OK() {
		t.Fatalf("apply: %v", applyStatuses(res))
	}
	close(rec.startedCh)
	var order []int64
	for id := range rec.startedCh {
		order = append(order, id)
	}
	if diff := cmp.Diff([]int64{101, 102, 103, 104, 105}, order); diff != "" {
		t.Errorf("registrations in the order their steps started (-plan order +got):\n%s", diff)
	}
}

// TestApplyUpcoming: Upcoming is told of steps ahead of their calls,
// each once, only once their dependencies are applied, and never of more
// than Parallelism that wait for a slot.
func TestApplyUpcoming(t *testing.T) {
	var steps []applyHandStep
	for i := range 20 {
		var deps []int
		if i%4 == 3 {
			deps = []int{i} // step i+1 waits for step i
		}
		steps = append(steps, applyHandStep{i, i, deps})
	}
	p := applyHandPlan(steps...)
	const par = 3
	var mu sync.Mutex
	told, started, applied := map[int]int{}, map[int]bool{}, map[int]bool{}
	var problems []string
	opts := ApplyOptions{Parallelism: par}
	opts.Upcoming = func(s Step) {
		mu.Lock()
		defer mu.Unlock()
		told[s.Step]++
		if started[s.Step] {
			problems = append(problems, fmt.Sprintf("told of step %d after its BeforeCall", s.Step))
		}
		for _, d := range s.DependsOn {
			if !applied[d] {
				problems = append(problems, fmt.Sprintf("told of step %d before step %d, its dependency, was applied", s.Step, d))
			}
		}
		waiting := 0
		for st := range told {
			if !started[st] {
				waiting++
			}
		}
		if waiting > 2*par { // par waiting for a slot, par in slots before their BeforeCall
			problems = append(problems, fmt.Sprintf("%d steps told of wait for their BeforeCall", waiting))
		}
	}
	opts.BeforeCall = func(s Step) error {
		mu.Lock()
		defer mu.Unlock()
		started[s.Step] = true
		return nil
	}
	opts.Progress = func(ev StepEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Outcome.Status == StepApplied {
			applied[ev.Step.Step] = true
		}
	}
	rec := newApplyRecorder(newFakeAccount(applyTestCurrent(20)))
	if res := Apply(context.Background(), rec, p, opts); !res.OK() {
		t.Fatalf("apply: %v", applyStatuses(res))
	}
	for st, n := range told {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("told of step %d %d times", st, n))
		}
	}
	if len(told) < 8 {
		problems = append(problems, fmt.Sprintf("told of only %d of 20 steps ahead of their calls", len(told)))
	}
	if len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
}

func TestApplyCancelLetsCallsInFlightFinish(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, nil},
		applyHandStep{2, 2, nil},
		applyHandStep{3, 3, []int{1}},
		applyHandStep{4, 4, nil},
	)
	fake := newFakeAccount(applyTestCurrent(5))
	rec := newApplyRecorder(fake)
	rec.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan ApplyResult)
	var stopping []string
	go func() {
		done <- Apply(ctx, rec, p, ApplyOptions{Parallelism: 2, Grace: time.Hour,
			Stopping: func(cause error, n int) { stopping = append(stopping, fmt.Sprintf("%v, %d in flight", cause, n)) }})
	}()
	<-rec.startedCh
	<-rec.startedCh
	cancel() // the first SIGINT
	// The calls in flight are told to stop retrying (their context ends),
	// and their answers are still awaited: both finish, applied.
	for range 2 {
		select {
		case <-rec.stoppedCh:
		case <-time.After(30 * time.Second):
			t.Fatal("the calls in flight were not told to stop: their context did not end within 30 s")
		}
	}
	close(rec.gate)
	res := <-done

	want := []string{"1 applied", "2 applied", "3 not started", "4 not started", "5 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Stopped, context.Canceled) || res.NotStarted != 3 || res.Applied != 2 || res.OK() {
		t.Errorf("counts: %+v", res)
	}
	if len(fake.calls) != 2 {
		t.Errorf("%d Bind calls after cancelling with 2 in flight; want 2", len(fake.calls))
	}
	if rec.cancelled != 2 {
		t.Errorf("%d calls in flight saw their context cancelled; want 2 (told to stop retrying)", rec.cancelled)
	}
	if diff := cmp.Diff([]string{"context canceled, 2 in flight"}, stopping); diff != "" {
		t.Errorf("Stopping (-want +got):\n%s", diff)
	}
}

func TestApplyCancelledBeforeStartWritesNothing(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	fake := newFakeAccount(applyTestCurrent(2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Apply(ctx, fake, p, ApplyOptions{})
	if len(fake.calls) != 0 || res.NotStarted != 2 || !errors.Is(res.Stopped, context.Canceled) {
		t.Errorf("%d calls, result %+v; want no call and 2 not started", len(fake.calls), res)
	}
}

// TestApplyInterruptBeforeSendIsNotStarted: a call that an interrupt kept
// from being sent (its Bind error matches ErrNotSent) ends not started,
// like the steps after it, not failed: nothing reached the account.
func TestApplyInterruptBeforeSendIsNotStarted(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil}, applyHandStep{2, 2, nil})
	fake := newFakeAccount(applyTestCurrent(3))
	ctx, cancel := context.WithCancel(context.Background())
	fake.fail = func(id int64, _ *Target) error {
		if id == 102 {
			cancel() // Ctrl-C while step 2 waits its turn to send
			return fmt.Errorf("BindSipRegistration: %w: %w", context.Cause(ctx), ErrNotSent)
		}
		return nil
	}
	res := Apply(ctx, fake, p, ApplyOptions{Parallelism: 1})
	want := []string{"1 applied", "2 not started", "3 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if res.Failed != 0 || res.NotStarted != 2 || !errors.Is(res.Stopped, context.Canceled) {
		t.Errorf("result %+v; want 0 failed, 2 not started, stopped by the interrupt", res)
	}
}

func TestApplyImpossibleDependencies(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, []int{99}}, // not in the plan
		applyHandStep{1, 1, []int{3}},  // a cycle with step 3
		applyHandStep{2, 2, []int{2}},
		applyHandStep{3, 3, nil},      // independent
		applyHandStep{4, 4, []int{1}}, // waits for the impossible step 1
	)
	fake := newFakeAccount(applyTestCurrent(5))
	res := Apply(context.Background(), fake, p, ApplyOptions{})
	want := []string{
		"1 skipped (cause 0: it depends on a step that is not in the plan (depends on 99))",
		"2 skipped (cause 0: it is in, or waits for, a cycle of dependencies among steps 2, 3)",
		"3 skipped (cause 0: it is in, or waits for, a cycle of dependencies among steps 2, 3)",
		"4 applied",
		"5 skipped (cause 0: it depends on a step that is not in the plan (depends on 99))",
	}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if len(fake.calls) != 1 {
		t.Errorf("%d calls; want only the independent step", len(fake.calls))
	}
}

func TestApplyEmptyPlan(t *testing.T) {
	res := Apply(context.Background(), newFakeAccount(applyTestCurrent(0)), &Plan{}, ApplyOptions{})
	if !res.OK() || len(res.Outcomes) != 0 {
		t.Errorf("empty plan: %+v", res)
	}
}
