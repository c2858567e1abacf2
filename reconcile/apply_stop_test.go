package reconcile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stuckAccount is an Account whose Bind calls for the registrations in
// stuck never answer until released; the others go to the fake. It
// records each Bind's context, to see what the calls were told.
type stuckAccount struct {
	*fakeAccount
	stuck    map[int64]bool
	release  chan struct{}
	started  chan int64
	answered chan int64 // each call's registration, once the call returns

	mu    sync.Mutex
	ctxOf map[int64]context.Context
}

func newStuckAccount(n int, stuck ...int64) *stuckAccount {
	a := &stuckAccount{fakeAccount: newFakeAccount(applyTestCurrent(n)), stuck: map[int64]bool{},
		release: make(chan struct{}), started: make(chan int64, 100), answered: make(chan int64, 100), ctxOf: map[int64]context.Context{}}
	for _, id := range stuck {
		a.stuck[id] = true
	}
	return a
}

func (a *stuckAccount) Bind(ctx context.Context, id int64, t *Target) error {
	a.mu.Lock()
	a.ctxOf[id] = ctx
	a.mu.Unlock()
	a.started <- id
	if a.stuck[id] {
		<-a.release
	}
	defer func() { a.answered <- id }()
	return a.fakeAccount.Bind(ctx, id, t)
}

// waitAnswered waits until the call of registration id has returned.
func (a *stuckAccount) waitAnswered(t *testing.T, id int64) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-a.answered:
			if got == id {
				return
			}
		case <-timeout:
			t.Fatalf("the call of registration %d did not return within 30 s", id)
		}
	}
}

func (a *stuckAccount) ctx(id int64) context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctxOf[id]
}

// applyAsync runs Apply in the background.
func applyAsync(ctx context.Context, acct Account, p *Plan, opts ApplyOptions) <-chan ApplyResult {
	done := make(chan ApplyResult, 1)
	go func() { done <- Apply(ctx, acct, p, opts) }()
	return done
}

func applyWait(t *testing.T, done <-chan ApplyResult) ApplyResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("Apply did not return within 30 s")
	}
	return ApplyResult{}
}

// TestApplyStopWaitsAtMostGrace: after an interrupt, a call that never
// answers is given up after the grace period and counted unknown; what
// depends on it is skipped, what had not started is not started.
func TestApplyStopWaitsAtMostGrace(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, nil},
		applyHandStep{2, 2, []int{1}},
		applyHandStep{3, 3, nil},
	)
	acct := newStuckAccount(4, 101)
	ctx, cancel := context.WithCancel(context.Background())
	var events []string
	done := applyAsync(ctx, acct, p, ApplyOptions{Parallelism: 2, Grace: 100 * time.Millisecond,
		Progress: func(ev StepEvent) { events = append(events, fmt.Sprintf("%d %s", ev.Step.Step, ev.Outcome.Status)) }})
	<-acct.started
	<-acct.started
	// Step 2 (registration 102) answers; step 1 hangs. Interrupt once
	// step 2 has ended, so that step 1 is the only call in flight.
	acct.waitAnswered(t, 102)
	cancel()
	res := applyWait(t, done)
	defer close(acct.release)

	want := []string{
		"1 unknown",
		"2 applied",
		"3 skipped (cause 1: the outcome of step 1 is unknown)",
		"4 not started",
	}
	// Step 4 may have started before the interrupt, when step 2 ended.
	if res.Outcomes[3].Status == StepApplied {
		want[3] = "4 applied"
	}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if err := res.Outcomes[0].Err; !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "no answer within 100ms after apply stopped") {
		t.Errorf("step 1: %v; want no answer within the grace, unknown", err)
	}
	if !errors.Is(res.Stopped, context.Canceled) || res.Unknown != 1 || res.OK() {
		t.Errorf("result %+v; want stopped by the cancel, 1 unknown, not OK", res)
	}
	if len(events) != 4 {
		t.Errorf("Progress heard %v; want every step once, not started included", events)
	}
}

// TestApplyQuitEndsTheWaitAtOnce: a second signal does not wait for the
// grace period.
func TestApplyQuitEndsTheWaitAtOnce(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	acct := newStuckAccount(2, 101)
	defer close(acct.release)
	ctx, cancel := context.WithCancel(context.Background())
	quit := make(chan struct{})
	done := applyAsync(ctx, acct, p, ApplyOptions{Parallelism: 1, Grace: time.Hour, Quit: quit})
	<-acct.started
	cancel()
	close(quit)
	res := applyWait(t, done)
	want := []string{"1 unknown", "2 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Outcomes[0].Err, ErrOutcomeUnknown) {
		t.Errorf("step 1: %v", res.Outcomes[0].Err)
	}
}

// TestApplyBreaker: once the account has been unreachable for the
// breaker period, no step starts, the calls in flight are told to stop
// (their context ends with the reason), and the rest is not started.
func TestApplyBreaker(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil}, applyHandStep{2, 2, nil}, applyHandStep{3, 3, nil})
	acct := newStuckAccount(4, 101, 102)
	var mu sync.Mutex
	var since time.Time // zero: reachable
	unreachable := func() (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		return since, !since.IsZero()
	}
	var stopping []string
	done := applyAsync(context.Background(), acct, p, ApplyOptions{Parallelism: 2, Grace: time.Hour,
		Unreachable: unreachable, BreakerPeriod: 40 * time.Millisecond,
		Stopping: func(cause error, n int) { stopping = append(stopping, fmt.Sprintf("%v; %d in flight", cause, n)) }})
	<-acct.started
	<-acct.started
	failing := time.Date(2026, 11, 28, 3, 12, 9, 0, time.Local)
	mu.Lock()
	since = failing
	mu.Unlock()
	// The calls in flight hear the stop through their context and end.
	for _, id := range []int64{101, 102} {
		select {
		case <-acct.ctx(id).Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("the call of registration %d was not told to stop", id)
		}
		var ue *UnreachableError
		if cause := context.Cause(acct.ctx(id)); !errors.As(cause, &ue) || !ue.Since.Equal(failing) {
			t.Errorf("cause %v; want the breaker's *UnreachableError since %v", cause, failing)
		}
	}
	close(acct.release)
	res := applyWait(t, done)

	want := []string{"1 applied", "2 applied", "3 not started", "4 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if res.Stopped == nil || res.Stopped.Error() != "the API is unreachable since 03:12:09" || res.OK() {
		t.Errorf("stopped %v; want the API is unreachable since 03:12:09", res.Stopped)
	}
	if diff := cmp.Diff([]string{"the API is unreachable since 03:12:09; 2 in flight"}, stopping); diff != "" {
		t.Errorf("Stopping (-want +got):\n%s", diff)
	}
	if n := acct.fakeAccount.callCount(); n != 2 {
		t.Errorf("%d calls; want only the 2 started before the breaker tripped", n)
	}
}

// TestApplyBreakerNotTrippedByShortOutage: an outage shorter than the
// period, or none, stops nothing.
func TestApplyBreakerNotTrippedByShortOutage(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	acct := newStuckAccount(2, 101)
	looks := make(chan struct{}, 100)
	// The breaker looks every 50 ms; each time, the outage has just begun.
	done := applyAsync(context.Background(), acct, p, ApplyOptions{Parallelism: 2, BreakerPeriod: 200 * time.Millisecond,
		Unreachable: func() (time.Time, bool) {
			select {
			case looks <- struct{}{}:
			default:
			}
			return time.Now(), true
		}})
	<-acct.started
	<-acct.started
	for range 3 { // a few looks at the breaker while a call hangs
		select {
		case <-looks:
		case <-time.After(30 * time.Second):
			t.Fatal("the breaker never looked at the account")
		}
	}
	close(acct.release)
	res := applyWait(t, done)
	if !res.OK() {
		t.Errorf("result %+v; want every step applied", res)
	}
}

// TestApplyUnknownOutcome: a Bind error that matches ErrOutcomeUnknown
// makes the step unknown, not failed, and its dependents skipped.
func TestApplyUnknownOutcome(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, []int{1}}, applyHandStep{2, 2, nil})
	fake := newFakeAccount(applyTestCurrent(3))
	fake.fail = func(id int64, _ *Target) error {
		if id == 101 {
			return fmt.Errorf("BindSipRegistration: connection reset: %w", ErrOutcomeUnknown)
		}
		return nil
	}
	res := Apply(context.Background(), fake, p, ApplyOptions{})
	want := []string{"1 unknown", "2 skipped (cause 1: the outcome of step 1 is unknown)", "3 applied"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if res.Unknown != 1 || res.Failed != 0 || res.Stopped != nil || res.OK() {
		t.Errorf("result %+v; want 1 unknown, 0 failed, not stopped, not OK", res)
	}
}

// TestApplyBeforeCall: the hook runs before each call is sent, once per
// started step; its error stops Apply before that call.
func TestApplyBeforeCall(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, []int{1}}, applyHandStep{2, 2, nil}, applyHandStep{3, 3, nil})
	fake := newFakeAccount(applyTestCurrent(4))
	var log []string
	full := errors.New("journal: no space left on device")
	var mu sync.Mutex
	res := Apply(context.Background(), fake, p, ApplyOptions{
		Parallelism: 1,
		BeforeCall: func(s Step) error {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, fmt.Sprintf("before %d (calls so far %d)", s.Step, fake.callCount()))
			if s.Step == 3 {
				return full
			}
			return nil
		},
		Progress: func(ev StepEvent) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, fmt.Sprintf("%d %s", ev.Step.Step, ev.Outcome.Status))
		},
	})
	want := []string{
		"before 1 (calls so far 0)", "1 applied",
		"before 2 (calls so far 1)", "2 applied",
		"before 3 (calls so far 2)",
		"3 not started", "4 not started",
	}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Stopped, full) || !strings.Contains(res.Stopped.Error(), "before the call of step 3") {
		t.Errorf("stopped %v; want the hook's error, naming step 3", res.Stopped)
	}
	if len(fake.calls) != 2 {
		t.Errorf("%d calls; want 2 (none after the hook failed)", len(fake.calls))
	}
}

// sendingAccount is a fakeAccount whose Bind tells Sending as the
// Voximplant client does (twice, to show Apply hears it once), except for
// the registrations in silent, which never tell it, and those in notSent,
// whose calls end ErrNotSent, as one stopped while it waited its turn.
type sendingAccount struct {
	*fakeAccount
	silent, notSent map[int64]bool
}

func (a *sendingAccount) Bind(ctx context.Context, id int64, t *Target) error {
	if a.notSent[id] {
		return fmt.Errorf("waiting for its turn: %w", ErrNotSent)
	}
	if !a.silent[id] {
		Sending(ctx)
		Sending(ctx)
	}
	return a.fakeAccount.Bind(ctx, id, t)
}

// TestApplySending: ApplyOptions.Sending hears of each call that is sent,
// once, before its step ends; never of one that was not sent; and, for an
// account that does not tell it, as its Bind returns.
func TestApplySending(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil}, applyHandStep{2, 2, nil})
	acct := &sendingAccount{fakeAccount: newFakeAccount(applyTestCurrent(3)), silent: map[int64]bool{102: true}, notSent: map[int64]bool{103: true}}
	var log []string
	var mu sync.Mutex
	Apply(context.Background(), acct, p, ApplyOptions{
		Parallelism: 1,
		Sending: func(s Step) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, fmt.Sprintf("sending %d", s.Step))
		},
		Progress: func(ev StepEvent) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, fmt.Sprintf("%d %s", ev.Step.Step, ev.Outcome.Status))
		},
	})
	want := []string{"sending 1", "1 applied", "sending 2", "2 applied", "3 not started"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
}

// TestApplySatisfiedAndMissingDependency: a step that depends on one step
// of the plan and on one that is not in it is skipped at once, and stays
// skipped (never called) when the step in the plan is applied.
func TestApplySatisfiedAndMissingDependency(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, []int{1, 99}},
		applyHandStep{2, 2, []int{99, 1}},
	)
	fake := newFakeAccount(applyTestCurrent(3))
	var events []int
	res := Apply(context.Background(), fake, p, ApplyOptions{Parallelism: 1, Progress: func(ev StepEvent) { events = append(events, ev.Step.Step) }})
	want := []string{
		"1 applied",
		"2 skipped (cause 0: it depends on a step that is not in the plan (depends on 1, 99))",
		"3 skipped (cause 0: it depends on a step that is not in the plan (depends on 99, 1))",
	}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if len(fake.calls) != 1 || fake.calls[0].RegistrationID != 101 {
		t.Errorf("calls %+v; want only step 1's", fake.calls)
	}
	slices.Sort(events)
	if diff := cmp.Diff([]int{1, 2, 3}, events); diff != "" {
		t.Errorf("each step ends once (-want +got):\n%s", diff)
	}
}

// TestApplyInterruptedIsNotOK: an interrupt that comes after the last
// step started still makes the apply interrupted, not OK, even though
// every step was applied.
func TestApplyInterruptedIsNotOK(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	acct := newStuckAccount(2, 101, 102)
	ctx, cancel := context.WithCancel(context.Background())
	done := applyAsync(ctx, acct, p, ApplyOptions{Parallelism: 2, Grace: time.Hour})
	<-acct.started
	<-acct.started
	cancel()
	close(acct.release)
	res := applyWait(t, done)
	if res.Applied != 2 || res.NotStarted != 0 {
		t.Fatalf("result %+v; want both steps applied", res)
	}
	if res.OK() || !errors.Is(res.Stopped, context.Canceled) {
		t.Errorf("OK() = %v, stopped %v; want false and the interrupt", res.OK(), res.Stopped)
	}
	if (&ApplyResult{Applied: 2, Stopped: context.Canceled}).OK() {
		t.Error("OK() of an interrupted result with every step applied = true")
	}
}

// TestProgressWriterNoteAndUnknown: an unknown step is printed above the
// progress line like a failure, and a note clears the line first, then
// draws it again under the note.
func TestProgressWriterNoteAndUnknown(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	var tty strings.Builder
	pw := NewProgressWriter(&tty, true)
	unknown := &StepError{Step: 1, Action: ActionBind, Registration: p.Changes[0].Registration, Err: fmt.Errorf("BindSipRegistration: connection reset: %w", ErrOutcomeUnknown)}
	pw.Step(StepEvent{Step: p.Changes[1], Outcome: StepOutcome{Step: 2, Status: StepApplied}, Done: 1, Total: 2, Applied: 1})
	pw.Note("Interrupted: waiting for 1 call in flight (at most 10s)")
	pw.Step(StepEvent{Step: p.Changes[0], Outcome: StepOutcome{Step: 1, Status: StepUnknown, Err: unknown}, Done: 2, Total: 2, Applied: 1, Unknown: 1})
	pw.Finish()
	want := "[1/2] applied 1, failed 0, skipped 0" +
		"\r\x1b[KInterrupted: waiting for 1 call in flight (at most 10s)\n" +
		"[1/2] applied 1, failed 0, skipped 0" +
		"\r\x1b[Kstep 1: bind r000@pbx.example.com (101): unknown: BindSipRegistration: connection reset: the outcome is unknown: the answer was lost\n" +
		"[2/2] applied 1, failed 0, skipped 0, unknown 1\n"
	if diff := cmp.Diff(want, tty.String()); diff != "" {
		t.Errorf("terminal progress (-want +got):\n%s", diff)
	}
}

// TestApplyInterruptDuringBreakerGrace: once the breaker has stopped
// Apply, an interrupt ends the wait for the calls in flight at once, also
// one that comes while Apply says it stopped (Stopping): the interrupt
// arrives there, every time, not at some moment a scheduler picks.
func TestApplyInterruptDuringBreakerGrace(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	acct := newStuckAccount(2, 101)
	defer close(acct.release)
	ctx, cancel := context.WithCancel(context.Background())
	done := applyAsync(ctx, acct, p, ApplyOptions{Parallelism: 1, Grace: time.Hour, BreakerPeriod: 40 * time.Millisecond,
		Unreachable: func() (time.Time, bool) { return time.Now().Add(-time.Hour), true },
		Stopping:    func(error, int) { cancel() }})
	res := applyWait(t, done)
	want := []string{"1 unknown", "2 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	var ue *UnreachableError
	if !errors.As(res.Stopped, &ue) {
		t.Errorf("stopped %v; want the breaker's reason kept", res.Stopped)
	}
	if !errors.Is(res.WaitCut, context.Canceled) {
		t.Errorf("wait cut by %v; want the interrupt", res.WaitCut)
	}
	if err := res.Outcomes[0].Err; err == nil || !strings.Contains(err.Error(), "still in flight when context canceled") {
		t.Errorf("step 1: %v", err)
	}
	var b strings.Builder
	RenderApplySummary(&b, p, &res, res.AppliedPlan(p), nil, false, "")
	if got, want := lastRenderedLine(b.String()), "Apply stopped (the API is unreachable since "+ue.Since.Format("15:04:05")+"; the wait for calls in flight was cut short by an interrupt): 0 applied, 0 failed, 0 skipped, 1 not started, 1 unknown; not verified."; got != want {
		t.Errorf("last line %q\nwant      %q", got, want)
	}
}

// lastRenderedLine is the last line of s, without its newline.
func lastRenderedLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestApplyStopsWhenTheAPIKeepsSayingTryLater: after a step whose call
// the API kept answering "try later" until its retry budget was spent,
// Apply starts no new step: the others are not started, and Stopped
// says why. A step that failed otherwise stops nothing.
func TestApplyStopsWhenTheAPIKeepsSayingTryLater(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, nil},
		applyHandStep{2, 2, nil},
		applyHandStep{3, 3, nil},
	)
	busy := &TryLaterError{Code: 340, For: 2 * time.Minute, Budget: 2 * time.Minute, Err: errors.New("gave up after 40 attempts in 2m0s (retry budget 2m0s): api error 340: rate")}
	rec := newApplyRecorder(newFakeAccount(applyTestCurrent(4)))
	rec.fail = func(id int64) error {
		if id == 102 {
			return busy
		}
		return nil
	}
	res := Apply(context.Background(), rec, p, ApplyOptions{Parallelism: 1})
	want := []string{"1 applied", "2 failed", "3 not started", "4 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got, want := fmt.Sprint(res.Stopped), `the API kept answering "try later" (code 340) for 2m0s`; got != want {
		t.Errorf("stopped: %q, want %q", got, want)
	}
	if got := res.Outcomes[1].Err.Error(); !strings.Contains(got, busy.Err.Error()) {
		t.Errorf("step 2's error %q; want the call's", got)
	}
	var summary strings.Builder
	if err := RenderApplySummary(&summary, p, &res, res.AppliedPlan(p), nil, false, "j.jsonl"); err != nil {
		t.Fatal(err)
	}
	wantEnd := "  not started (stopped: the API kept answering \"try later\" (code 340) for 2m0s): steps 3, 4\n" +
		"Run apply again later: the API asks voxbind to wait; voxbind plan shows what is left to do.\n" +
		"Journal: j.jsonl\n" +
		"Apply stopped (the API kept answering \"try later\" (code 340) for 2m0s): 1 applied, 1 failed, 0 skipped, 2 not started, 0 unknown; not verified.\n"
	if !strings.HasSuffix(summary.String(), wantEnd) {
		t.Errorf("summary:\n%s\nwant it to end with:\n%s", summary.String(), wantEnd)
	}
	// After an undo, the way on is that undo again, its journal quoted
	// for a shell; the last line is apply's, as every undo summary's is.
	undo := *p
	undo.Journal = "it's j.jsonl"
	summary.Reset()
	if err := RenderApplySummary(&summary, &undo, &res, res.AppliedPlan(&undo), nil, false, "u.jsonl"); err != nil {
		t.Fatal(err)
	}
	wantEnd = "  not started (stopped: the API kept answering \"try later\" (code 340) for 2m0s): steps 3, 4\n" +
		"Run voxbind undo 'it'\\''s j.jsonl' again later: the API asks voxbind to wait; the undo restores only what is left.\n" +
		"Journal: u.jsonl\n" +
		"Apply stopped (the API kept answering \"try later\" (code 340) for 2m0s): 1 applied, 1 failed, 0 skipped, 2 not started, 0 unknown; not verified.\n"
	if !strings.HasSuffix(summary.String(), wantEnd) {
		t.Errorf("undo's summary:\n%s\nwant it to end with:\n%s", summary.String(), wantEnd)
	}

	rec = newApplyRecorder(newFakeAccount(applyTestCurrent(4)))
	rec.fail = func(id int64) error {
		if id == 102 {
			return errors.New("api error 101: no")
		}
		return nil
	}
	res = Apply(context.Background(), rec, p, ApplyOptions{Parallelism: 1})
	want = []string{"1 applied", "2 failed", "3 applied", "4 applied"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" || res.Stopped != nil {
		t.Errorf("a final failure: stopped %v; outcomes (-want +got):\n%s", res.Stopped, diff)
	}

	// A wait the API asks for past the budget is said instead (the
	// step's error says how long).
	stop := &BusyError{Code: 416, Wait: 10 * time.Minute, Budget: 2 * time.Minute}
	if got, want := stop.Error(), `the API answered "try later" (code 416) and asks to wait past the retry budget of 2m0s`; got != want {
		t.Errorf("%q, want %q", got, want)
	}

	// HTTP 429 is said as such: it is no API error code.
	for stop, want := range map[*BusyError]string{
		{Code: 429, HTTP: true, For: 2 * time.Minute}:                            `the API kept answering "too many requests" (HTTP status 429) for 2m0s`,
		{Code: 429, HTTP: true, Wait: 10 * time.Minute, Budget: 2 * time.Minute}: `the API answered "too many requests" (HTTP status 429) and asks to wait past the retry budget of 2m0s`,
	} {
		if got := stop.Error(); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

// TestApplyStopsWhenTheAPIRefusesTheKey: after a step whose key the API
// refused, Apply starts no new step, as after "try later": the API would
// refuse the others the same way. The summary says to fix the key before
// running apply (or the undo) again.
func TestApplyStopsWhenTheAPIRefusesTheKey(t *testing.T) {
	p := applyHandPlan(
		applyHandStep{0, 0, nil},
		applyHandStep{1, 1, nil},
		applyHandStep{2, 2, nil},
		applyHandStep{3, 3, nil},
	)
	refused := &KeyRefusedError{Code: 433, Fix: "the key_id is unknown: the key was deleted", Err: errors.New("BindSipRegistration: api error 433: invalid key id")}
	rec := newApplyRecorder(newFakeAccount(applyTestCurrent(4)))
	rec.fail = func(id int64) error {
		if id == 102 {
			return refused
		}
		return nil
	}
	res := Apply(context.Background(), rec, p, ApplyOptions{Parallelism: 1})
	want := []string{"1 applied", "2 failed", "3 not started", "4 not started"}
	if diff := cmp.Diff(want, applyStatuses(res)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got, want := fmt.Sprint(res.Stopped), "the API refuses the key: api error 433"; got != want {
		t.Errorf("stopped: %q, want %q", got, want)
	}
	for _, tc := range []struct{ journal, line string }{
		{"", "The API refuses the key: the key_id is unknown: the key was deleted. Fix that first, then run apply again; voxbind plan shows what is left to do.\n"},
		{"j.jsonl", "The API refuses the key: the key_id is unknown: the key was deleted. Fix that first, then run voxbind undo j.jsonl again; the undo restores only what is left.\n"},
	} {
		q := *p
		q.Journal = tc.journal
		var summary strings.Builder
		if err := RenderApplySummary(&summary, &q, &res, res.AppliedPlan(&q), nil, false, ""); err != nil {
			t.Fatal(err)
		}
		wantEnd := "  not started (stopped: the API refuses the key: api error 433): steps 3, 4\n" + tc.line +
			"Apply stopped (the API refuses the key: api error 433): 1 applied, 1 failed, 0 skipped, 2 not started, 0 unknown; not verified.\n"
		if !strings.HasSuffix(summary.String(), wantEnd) {
			t.Errorf("summary:\n%s\nwant it to end with:\n%s", summary.String(), wantEnd)
		}
	}
}

// TestWayOnJournalAndBug: an apply stopped because its journal could no
// longer be written says to make room for the journal before running
// again (found by the journal's error type, whatever the OS said); one
// stopped because the API refused a token voxbind made wrong (454) says
// it is a bug to report, not something to fix and run again.
func TestWayOnJournalAndBug(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil})
	j, err := CreateJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close() // every write now fails, as on a full disk
	opts := ApplyOptions{Parallelism: 1}
	j.Hook(&opts)
	res := Apply(context.Background(), newApplyRecorder(newFakeAccount(applyTestCurrent(2))), p, opts)
	var jw *JournalWriteError
	if !errors.As(res.Stopped, &jw) {
		t.Fatalf("stopped: %v (%T), want a JournalWriteError", res.Stopped, res.Stopped)
	}
	bug := &KeyStopError{Code: 454, Fix: "the token lifetime exceeds one hour: this is a voxbind bug, please report it", Bug: true}
	for _, tc := range []struct {
		journal string
		stopped error
		line    string
	}{
		{"", res.Stopped, "Free space for the journal (or write it elsewhere: --journal FILE, or VOXBIND_JOURNAL_DIR for a fleet), then run apply again; voxbind plan shows what is left to do.\n"},
		{"u.jsonl", res.Stopped, "Free space for the journal (or write it elsewhere: --journal FILE, or VOXBIND_JOURNAL_DIR for a fleet), then run voxbind undo u.jsonl again; the undo restores only what is left.\n"},
		{"", bug, "The API refuses the token voxbind made: the token lifetime exceeds one hour: this is a voxbind bug, please report it, with the command you ran; running apply again meets the same refusal.\n"},
	} {
		q := *p
		q.Journal = tc.journal
		r := res
		r.Stopped = tc.stopped
		var summary strings.Builder
		if err := RenderApplySummary(&summary, &q, &r, r.AppliedPlan(&q), nil, false, ""); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(summary.String(), tc.line) {
			t.Errorf("summary:\n%s\nlacks:\n%s", summary.String(), tc.line)
		}
		if strings.Contains(summary.String(), "to finish") || strings.Contains(summary.String(), "Fix that first") {
			t.Errorf("summary:\n%s\nsays to run again as if nothing were to fix first, or the bug were the user's", summary.String())
		}
	}
}
