package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Defaults of ApplyOptions.
const (
	// DefaultParallelism is how many steps Apply runs at once (the
	// default of --parallelism).
	DefaultParallelism = 4
	// DefaultGrace is how long Apply, once it stops early, waits for the
	// calls in flight.
	DefaultGrace = 10 * time.Second
	// DefaultBreakerPeriod is how long every call may fail at transport
	// level before Apply stops starting steps.
	DefaultBreakerPeriod = 30 * time.Second
)

// ApplyOptions tune Apply. The hooks Upcoming, Progress and Stopping are
// called from Apply's own goroutine, one at a time, so they need no
// locking; a slow one delays the steps. BeforeCall is called from each
// step's own goroutine.
type ApplyOptions struct {
	// Parallelism bounds the steps in flight; 0 means DefaultParallelism.
	Parallelism int
	// BeforeCall, when set, is called in each step's goroutine just
	// before its call is sent: for steps in flight together, at the same
	// time, so it must be safe for concurrent use (and it may take its
	// time without holding up the other steps). An error stops Apply: that
	// call is not sent, the step and every step not started yet end not
	// started, and the error is ApplyResult.Stopped. A step whose
	// BeforeCall returns after Apply stopped is not sent either. (An apply
	// journal writes its intent here, unless Upcoming did, and waits
	// until it is on disk.)
	BeforeCall func(Step) error
	// Sending, when set, is called in each step's goroutine once its call
	// is about to be sent: after BeforeCall and after the account's own
	// wait for its turn (the rate limit), so never for a call that is not
	// sent; a step told of always ends applied, failed or unknown. It must
	// be safe for concurrent use, and quick: the call waits for it. (The
	// JSON events write step_start here. An Account that does not call
	// Sending(ctx) has it called as its Bind returns.)
	Sending func(Step)
	// Upcoming, when set, is told of the steps next in line to start,
	// each at most once and before its BeforeCall, while the calls in
	// flight run: at any time at most Parallelism steps it was told of
	// wait for a slot. Such a step's dependencies are all applied, but it
	// may still never start (Apply stops first). It must not block. (An
	// apply journal writes the step's intent here and puts it on disk in
	// the background, so that BeforeCall seldom waits for the disk.)
	Upcoming func(Step)
	// Progress, when set, is told about every step that ends: applied,
	// failed, unknown or skipped as it happens, in the order the steps
	// end, and not started when it is known (a call not sent because
	// Apply stopped, and the rest at the end).
	Progress func(StepEvent)
	// Stopping, when set, is told once when Apply stops starting steps
	// before the end: why (ApplyResult.Stopped), and how many calls are in
	// flight, which Apply then waits for (at most Grace).
	Stopping func(cause error, inFlight int)
	// Unreachable, when set, says since when every call to the account
	// has failed at transport level (ok false: it answers). When that
	// lasts BreakerPeriod (0 means DefaultBreakerPeriod), Apply stops with
	// an *UnreachableError: the circuit breaker.
	Unreachable   func() (since time.Time, ok bool)
	BreakerPeriod time.Duration
	// Grace bounds the wait for the calls in flight once Apply stops
	// early; 0 means DefaultGrace. A call still in flight then ends
	// unknown.
	Grace time.Duration
	// Quit, when closed, ends that wait at once (a second Ctrl-C): the
	// calls in flight end unknown.
	Quit <-chan struct{}
}

// StepStatus is how a step of an apply ended.
type StepStatus string

// The outcomes of a step.
const (
	StepApplied    StepStatus = "applied"     // its Bind call succeeded
	StepFailed     StepStatus = "failed"      // its Bind call failed for good
	StepUnknown    StepStatus = "unknown"     // its call may have taken effect, but no answer said so
	StepSkipped    StepStatus = "skipped"     // a step it depends on did not succeed
	StepNotStarted StepStatus = "not started" // apply stopped before it started
)

// StepOutcome is how one step ended.
type StepOutcome struct {
	Step   int // the step's number
	Status StepStatus
	// Err is the error of a failed or unknown step, a *StepError.
	Err error
	// Cause is, for a skipped step, the failed or unknown step that made
	// it impossible (directly or through other skipped steps); 0 when the
	// dependency itself is missing from the plan or circular (see Why).
	Cause int
	// Why says in words why a step was skipped.
	Why string
}

// StepError is the failure of one step's Bind call.
type StepError struct {
	Step         int
	Action       Action
	Registration RegistrationRef
	Err          error // from Account.Bind, e.g. a *voximplant.APIError
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d: %s registration %d (%s): %v", e.Step, e.Action, e.Registration.ID, regName(&e.Registration), e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// StepEvent is what ApplyOptions.Progress hears when a step ends.
type StepEvent struct {
	Step    Step        // the step that ended
	Outcome StepOutcome // how it ended
	// Done counts the steps that have ended so far, this one included;
	// Total is the number of steps in the plan.
	Done, Total int
	// The running counts, this step included.
	Applied, Failed, Unknown, Skipped, NotStarted int
}

// ApplyResult is what Apply did: the outcome of every step, in plan order,
// and the counts.
type ApplyResult struct {
	Outcomes   []StepOutcome // one per plan step, in plan order
	Applied    int
	Failed     int
	Unknown    int
	Skipped    int
	NotStarted int
	// Stopped is why Apply stopped early: the cause of ctx (an interrupt,
	// a deadline), an *UnreachableError from the breaker, a *BusyError
	// after a step the API kept answering "try later", a *KeyStopError
	// after a step whose key the API refused, or BeforeCall's error. It is
	// set too when ctx ended after the last step had started.
	// nil: Apply ran to the end.
	Stopped error
	// WaitCut is what ended the wait for the calls in flight, once Apply
	// had stopped, when it was not Stopped itself: an interrupt (ctx's
	// cause, or ErrQuit) or a deadline that came after the breaker or
	// BeforeCall stopped Apply. Stopped stays why Apply stopped.
	WaitCut error
}

// ErrQuit is ApplyResult.WaitCut when ApplyOptions.Quit ended the wait.
var ErrQuit = errors.New("told to quit")

// OK reports whether every step was applied and nothing stopped Apply.
func (r *ApplyResult) OK() bool {
	return r.Stopped == nil && r.Failed == 0 && r.Unknown == 0 && r.Skipped == 0 && r.NotStarted == 0
}

// UnreachableError is why Apply stopped when every call had failed at
// transport level for the breaker period.
type UnreachableError struct {
	Since  time.Time     // when the failures began
	Period time.Duration // the breaker period
}

func (e *UnreachableError) Error() string {
	return "the API is unreachable since " + e.Since.Format("15:04:05")
}

// TryLaterError is matched (errors.As) by a Bind error when the API
// answered "try later" (an error code that asks to repeat the call
// later, or HTTP status 429 Too Many Requests) to every attempt of the
// call until its retry budget was spent, or asked for a wait past that
// budget. Apply then stops starting steps (BusyError): the API would
// answer them the same way.
type TryLaterError struct {
	Code int           // the API's error code, or the HTTP status when HTTP is set
	HTTP bool          // Code is the HTTP status 429, not an API error code
	For  time.Duration // how long the call kept trying
	// Wait is the wait the API asked for when it was past the retry
	// budget (Budget); 0 when the budget was spent on attempts.
	Wait, Budget time.Duration
	Err          error // the call's error, as it is shown
}

func (e *TryLaterError) Error() string { return e.Err.Error() }
func (e *TryLaterError) Unwrap() error { return e.Err }

// BusyError is why Apply stopped after a step whose call the API kept
// answering "try later" (see TryLaterError).
type BusyError struct {
	Code      int
	HTTP      bool // Code is the HTTP status 429
	For, Wait time.Duration
	Budget    time.Duration
}

func (e *BusyError) Error() string {
	answer := fmt.Sprintf(`"try later" (code %d)`, e.Code)
	if e.HTTP {
		answer = fmt.Sprintf(`"too many requests" (HTTP status %d)`, e.Code)
	}
	if e.Wait > 0 {
		// The step's error says how long: a wait past a day is cut to a day.
		return fmt.Sprintf(`the API answered %s and asks to wait past the retry budget of %s`, answer, e.Budget)
	}
	return fmt.Sprintf(`the API kept answering %s for %s`, answer, e.For.Round(time.Second))
}

// KeyRefusedError is matched (errors.As) by a Bind error when the API
// refused the call's credentials: the key or its token is no good (the
// key was deleted or replaced, the token is malformed, this machine's
// clock is off) or the key may not make the call (its roles). The client
// has already made the one retry that can heal such an answer (a token
// on the server's time after "expired" or "issued in the future"). Apply
// then stops starting steps (KeyStopError): the API would refuse them all
// the same until the key is fixed.
type KeyRefusedError struct {
	Code int // the API's error code
	// Fix says what is wrong and what to check, in a few words: "the
	// key_id is unknown: the key was deleted, or …".
	Fix string
	// Bug: the API refuses a token voxbind made wrong (its lifetime), not
	// the key: running again meets the same refusal, and the fix is a
	// report of the bug.
	Bug bool
	Err error // the call's error, as it is shown
}

func (e *KeyRefusedError) Error() string { return e.Err.Error() }
func (e *KeyRefusedError) Unwrap() error { return e.Err }

// KeyStopError is why Apply stopped after a step whose call the API
// refused the key of (see KeyRefusedError).
type KeyStopError struct {
	Code int
	Fix  string
	Bug  bool // see KeyRefusedError
}

func (e *KeyStopError) Error() string {
	return fmt.Sprintf("the API refuses the key: api error %d", e.Code)
}

// AppliedPlan returns the part of p that Apply carried out: the applied steps
// and the side effects those steps caused. Verify that, not the whole plan,
// after a partial apply: a step that did not run is reported as failed,
// skipped or not started already.
func (r *ApplyResult) AppliedPlan(p *Plan) *Plan {
	done := make(map[int]bool, len(r.Outcomes))
	for _, o := range r.Outcomes {
		if o.Status == StepApplied {
			done[o.Step] = true
		}
	}
	out := *p
	out.Changes = make([]Step, 0, len(done))
	for _, s := range p.Changes {
		if done[s.Step] {
			out.Changes = append(out.Changes, s)
		}
	}
	out.SideEffects = make([]SideEffect, 0, len(p.SideEffects))
	for _, e := range p.SideEffects {
		if done[e.CausedByStep] {
			out.SideEffects = append(out.SideEffects, e)
		}
	}
	return &out
}

// Apply executes the steps of p against acct, one Bind call per step, at
// most opts.Parallelism at a time. A step starts only once every step in
// its DependsOn has been applied, so the order that the one-user rule needs
// is never broken. A step that fails is reported with its error, one whose
// answer was lost (ErrOutcomeUnknown) as unknown; the steps that depend on
// either, directly or not, are skipped; independent steps go on. Apply
// does not retry: the client does, within its own time budget.
//
// Apply stops early when ctx ends (an interrupt, a deadline), when the
// breaker trips (opts.Unreachable), when a step's call gave up on an API
// that kept answering "try later" (TryLaterError) or was refused its key
// (KeyRefusedError), or when opts.BeforeCall fails. It then
// starts no new step and cancels the context of the calls in flight,
// which tells them to stop retrying; a call's request already sent may run
// to its answer (Account.Bind), for at most opts.Grace, or until opts.Quit
// is closed; calls still in flight then are unknown. The steps that never
// started are not started, and ApplyResult.Stopped says why.
//
// Apply checks nothing about the plan's preconditions or the unbind guard:
// callers do that first (Stale, CheckUnbind).
func Apply(ctx context.Context, acct Account, p *Plan, opts ApplyOptions) ApplyResult {
	a := newApplier(acct, p, opts)
	a.run(ctx)
	a.finish(ctx)
	return a.res
}

// applier is the state of one Apply.
type applier struct {
	acct Account
	p    *Plan
	opts ApplyOptions
	res  ApplyResult

	index      map[int]int // step number → index in p.Changes
	waiting    []int       // waiting[i]: dependencies of step i not yet applied
	dependents [][]int     // dependents[i]: the steps that wait for step i
	ended      []bool
	inFlight   []bool
	told       []bool // opts.Upcoming was told of the step
	toldQueued int    // steps told of that have not started
	running    int
	ready      []int // indexes, kept sorted so steps start in plan order
	done       int   // steps ended so far
	results    chan applyFinished
	notified   bool // opts.Stopping was called
	// stoppedByCtx: res.Stopped is ctx's end (an interrupt, a deadline),
	// not the breaker's or BeforeCall's.
	stoppedByCtx bool
}

// applyFinished is a call's end, sent by its goroutine.
type applyFinished struct {
	i   int
	err error
	// notSent: the call was not sent, because BeforeCall refused (err
	// says why) or Apply stopped while it ran (err is nil).
	notSent bool
}

// newApplier builds the dependency graph, skips the steps whose
// dependencies are not in the plan, and queues the steps that wait for
// nothing.
func newApplier(acct Account, p *Plan, opts ApplyOptions) *applier {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.BreakerPeriod <= 0 {
		opts.BreakerPeriod = DefaultBreakerPeriod
	}
	n := len(p.Changes)
	a := &applier{
		acct: acct, p: p, opts: opts,
		res:        ApplyResult{Outcomes: make([]StepOutcome, n)},
		index:      make(map[int]int, n),
		waiting:    make([]int, n),
		dependents: make([][]int, n),
		ended:      make([]bool, n),
		inFlight:   make([]bool, n),
		told:       make([]bool, n),
		results:    make(chan applyFinished, opts.Parallelism),
	}
	for i, s := range p.Changes {
		a.index[s.Step] = i
		a.res.Outcomes[i].Step = s.Step
	}
	var missing []int // steps with a dependency that is not in the plan
	for i, s := range p.Changes {
		for _, dep := range s.DependsOn {
			j, ok := a.index[dep]
			if !ok || j == i {
				missing = append(missing, i)
				continue
			}
			a.waiting[i]++
			a.dependents[j] = append(a.dependents[j], i)
		}
	}
	for _, i := range missing {
		a.skip(i, 0, fmt.Sprintf("it depends on a step that is not in the plan (depends on %s)", renderSteps(p.Changes[i].DependsOn)))
	}
	for i := range p.Changes {
		if !a.ended[i] && a.waiting[i] == 0 {
			a.ready = append(a.ready, i)
		}
	}
	return a
}

// run starts steps as they become ready and settles them as they end,
// until none is in flight and none can start, or Apply stops and its
// grace ends.
func (a *applier) run(ctx context.Context) {
	calls, cancelCalls := context.WithCancelCause(ctx)
	defer cancelCalls(nil)
	done := ctx.Done()
	tick, stopTicks := a.breakerTicks()
	defer stopTicks()
	var grace <-chan time.Time
	for {
		if a.res.Stopped == nil {
			a.startReady(ctx, calls)
			if a.res.Stopped == nil {
				a.tellUpcoming()
			}
		}
		if a.res.Stopped != nil && grace == nil {
			if a.stoppedByCtx {
				// ctx itself stopped Apply: only Quit ends the wait. When
				// something else stopped it, ctx ending now or during
				// Stopping ends the wait, as a second signal would.
				done = nil
			}
			cancelCalls(a.res.Stopped) // the calls in flight stop retrying
			a.notifyStopping()
			grace = time.After(a.opts.Grace)
			tick = nil
		}
		if a.running == 0 {
			return
		}
		select {
		case r := <-a.results:
			a.settle(r)
		case <-done:
			if a.res.Stopped == nil {
				a.res.Stopped, a.stoppedByCtx = context.Cause(ctx), true
				break
			}
			// Stopped already (the breaker, BeforeCall): an interrupt
			// now ends the wait, as a second one would.
			a.res.WaitCut = context.Cause(ctx)
			a.abandon(fmt.Errorf("still in flight when %v: %w", context.Cause(ctx), ErrOutcomeUnknown))
			return
		case <-tick:
			if since, ok := a.opts.Unreachable(); ok && time.Since(since) >= a.opts.BreakerPeriod {
				a.res.Stopped = &UnreachableError{Since: since, Period: a.opts.BreakerPeriod}
			}
		case <-grace:
			a.abandon(fmt.Errorf("no answer within %s after apply stopped: %w", a.opts.Grace, ErrOutcomeUnknown))
			return
		case <-a.opts.Quit:
			switch {
			case a.res.Stopped == nil:
				a.res.Stopped = context.Cause(ctx)
				if a.res.Stopped == nil {
					a.res.Stopped = ErrQuit
				}
			case !errors.Is(a.res.Stopped, context.Canceled):
				a.res.WaitCut = ErrQuit
			}
			a.notifyStopping()
			a.abandon(fmt.Errorf("still in flight when voxbind quit: %w", ErrOutcomeUnknown))
			return
		}
	}
}

// breakerTicks is how often the breaker looks at opts.Unreachable: a
// nil channel when there is nothing to look at.
func (a *applier) breakerTicks() (<-chan time.Time, func()) {
	if a.opts.Unreachable == nil {
		return nil, func() {}
	}
	t := time.NewTicker(min(time.Second, a.opts.BreakerPeriod/4))
	return t.C, t.Stop
}

// startReady starts ready steps up to the parallelism, unless ctx has
// ended, which stops Apply. Each step's goroutine runs BeforeCall, then
// the call.
func (a *applier) startReady(ctx, calls context.Context) {
	for a.running < a.opts.Parallelism && len(a.ready) > 0 {
		if ctx.Err() != nil {
			a.res.Stopped, a.stoppedByCtx = context.Cause(ctx), true
			return
		}
		i := a.ready[0]
		s := &a.p.Changes[i]
		a.ready = a.ready[1:]
		a.running++
		a.inFlight[i] = true
		if a.told[i] {
			a.toldQueued--
		}
		go func() {
			if a.opts.BeforeCall != nil {
				if err := a.opts.BeforeCall(*s); err != nil {
					a.results <- applyFinished{i: i, err: fmt.Errorf("before the call of step %d: %w", s.Step, err), notSent: true}
					return
				}
				// The hook takes time (a journal syncs to disk): Apply
				// may have stopped meanwhile.
				if calls.Err() != nil {
					a.results <- applyFinished{i: i, notSent: true}
					return
				}
			}
			bctx, sent := calls, func() {}
			if a.opts.Sending != nil {
				sent = sync.OnceFunc(func() { a.opts.Sending(*s) })
				bctx = withSending(calls, sent)
			}
			berr := a.acct.Bind(bctx, s.Registration.ID, s.After)
			if !errors.Is(berr, ErrNotSent) {
				sent() // for an Account that does not call Sending
			}
			switch {
			case berr == nil:
				a.results <- applyFinished{i: i}
			case errors.Is(berr, ErrNotSent): // Apply stopped as the call was about to go
				a.results <- applyFinished{i: i, notSent: true}
			default:
				a.results <- applyFinished{i: i, err: &StepError{Step: s.Step, Action: s.Action, Registration: s.Registration, Err: berr}}
			}
		}()
	}
}

// tellUpcoming tells opts.Upcoming of the ready steps next in line, in
// the order they will start, until Parallelism of those it was told of
// wait: the next round of calls, whose intents a journal then writes
// while this round is in flight.
func (a *applier) tellUpcoming() {
	if a.opts.Upcoming == nil {
		return
	}
	starting := min(max(a.opts.Parallelism-a.running, 0), len(a.ready))
	for _, i := range a.ready[starting:] {
		if a.toldQueued >= a.opts.Parallelism {
			return
		}
		if !a.told[i] {
			a.told[i] = true
			a.toldQueued++
			a.opts.Upcoming(a.p.Changes[i])
		}
	}
}

func (a *applier) notifyStopping() {
	if a.notified {
		return
	}
	a.notified = true
	if a.opts.Stopping != nil {
		a.opts.Stopping(a.res.Stopped, a.running)
	}
}

// settle records how a call ended and releases or skips its dependents.
// A call the API kept answering "try later" stops Apply (BusyError), and
// so does one whose key it refused (KeyStopError).
func (a *applier) settle(r applyFinished) {
	var tl *TryLaterError
	var refused *KeyRefusedError
	switch {
	case a.res.Stopped != nil:
	case errors.As(r.err, &tl):
		a.res.Stopped = &BusyError{Code: tl.Code, HTTP: tl.HTTP, For: tl.For, Wait: tl.Wait, Budget: tl.Budget}
	case errors.As(r.err, &refused):
		a.res.Stopped = &KeyStopError{Code: refused.Code, Fix: refused.Fix, Bug: refused.Bug}
	}
	a.running--
	a.inFlight[r.i] = false
	step := a.p.Changes[r.i].Step
	switch {
	case r.notSent:
		a.end(r.i, StepOutcome{Status: StepNotStarted})
		if r.err != nil && a.res.Stopped == nil {
			a.res.Stopped = r.err
		}
	case r.err == nil:
		a.end(r.i, StepOutcome{Status: StepApplied})
		for _, d := range a.dependents[r.i] {
			if a.waiting[d]--; a.waiting[d] == 0 && !a.ended[d] {
				a.ready = applyInsertSorted(a.ready, d)
			}
		}
	case errors.Is(r.err, ErrOutcomeUnknown):
		a.end(r.i, StepOutcome{Status: StepUnknown, Err: r.err})
		a.skipDependents(r.i, step, fmt.Sprintf("the outcome of step %d is unknown", step))
	default:
		a.end(r.i, StepOutcome{Status: StepFailed, Err: r.err})
		a.skipDependents(r.i, step, fmt.Sprintf("step %d failed", step))
	}
}

// abandon ends the calls still in flight as unknown, with err.
func (a *applier) abandon(err error) {
	for i, in := range a.inFlight {
		if !in {
			continue
		}
		s := &a.p.Changes[i]
		a.inFlight[i] = false
		a.running--
		a.end(i, StepOutcome{Status: StepUnknown, Err: &StepError{Step: s.Step, Action: s.Action, Registration: s.Registration, Err: err}})
		a.skipDependents(i, s.Step, fmt.Sprintf("the outcome of step %d is unknown", s.Step))
	}
}

// finish ends the steps that never started: not started when Apply
// stopped, skipped when their dependencies form a cycle, which no order
// can satisfy.
func (a *applier) finish(ctx context.Context) {
	if a.res.Stopped == nil && ctx.Err() != nil {
		a.res.Stopped = context.Cause(ctx) // ended after the last step started
	}
	var left []int
	for i := range a.p.Changes {
		if !a.ended[i] {
			left = append(left, i)
		}
	}
	if len(left) == 0 {
		return
	}
	if a.res.Stopped != nil {
		for _, i := range left {
			a.end(i, StepOutcome{Status: StepNotStarted})
		}
		return
	}
	steps := make([]int, len(left))
	for k, i := range left {
		steps[k] = a.p.Changes[i].Step
	}
	why := "it is in, or waits for, a cycle of dependencies among steps " + renderSteps(steps)
	for _, i := range left {
		a.skip(i, 0, why)
	}
}

// end records step i's outcome, counts it and tells opts.Progress.
func (a *applier) end(i int, o StepOutcome) {
	o.Step = a.p.Changes[i].Step
	a.ended[i] = true
	a.res.Outcomes[i] = o
	a.done++
	switch o.Status {
	case StepApplied:
		a.res.Applied++
	case StepFailed:
		a.res.Failed++
	case StepUnknown:
		a.res.Unknown++
	case StepSkipped:
		a.res.Skipped++
	case StepNotStarted:
		a.res.NotStarted++
	}
	if a.opts.Progress != nil {
		a.opts.Progress(StepEvent{Step: a.p.Changes[i], Outcome: o, Done: a.done, Total: len(a.p.Changes),
			Applied: a.res.Applied, Failed: a.res.Failed, Unknown: a.res.Unknown, Skipped: a.res.Skipped, NotStarted: a.res.NotStarted})
	}
}

// skip marks step i and everything waiting on it as skipped, unless they
// have ended already.
func (a *applier) skip(i, cause int, why string) {
	if a.ended[i] {
		return
	}
	a.end(i, StepOutcome{Status: StepSkipped, Cause: cause, Why: why})
	a.skipDependents(i, cause, why)
}

func (a *applier) skipDependents(i, cause int, why string) {
	for _, d := range a.dependents[i] {
		a.skip(d, cause, why)
	}
}

// applyInsertSorted inserts i into the sorted slice s.
func applyInsertSorted(s []int, i int) []int {
	at, _ := slices.BinarySearch(s, i)
	return slices.Insert(s, at, i)
}
