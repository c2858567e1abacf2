package reconcile

import (
	"context"
	"fmt"
	"slices"
)

// DefaultParallelism is how many steps Apply runs at once when
// ApplyOptions.Parallelism is 0 (the default of --parallelism).
const DefaultParallelism = 4

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Parallelism bounds the steps in flight; 0 means DefaultParallelism.
	Parallelism int
	// Progress, when set, is told about every step that ends (applied,
	// failed or skipped). Apply calls it from one goroutine at a time, in
	// the order the steps end, so it needs no locking.
	Progress func(StepEvent)
}

// StepStatus is how a step of an apply ended.
type StepStatus string

// The outcomes of a step.
const (
	StepApplied    StepStatus = "applied"     // its Bind call succeeded
	StepFailed     StepStatus = "failed"      // its Bind call failed for good
	StepSkipped    StepStatus = "skipped"     // a step it depends on did not succeed
	StepNotStarted StepStatus = "not started" // apply was interrupted before it started
)

// StepOutcome is how one step ended.
type StepOutcome struct {
	Step   int // the step's number
	Status StepStatus
	// Err is the error of a failed step, a *StepError.
	Err error
	// Cause is, for a skipped step, the failed step that made it
	// impossible (directly or through other skipped steps); 0 when the
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
	return fmt.Sprintf("step %d: %s registration %d (%s): %v", e.Step, e.Action, e.Registration.ID, planRegName(&e.Registration), e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// StepEvent is what ApplyOptions.Progress hears when a step ends.
type StepEvent struct {
	Step    Step        // the step that ended
	Outcome StepOutcome // how it ended
	// Done counts the steps that have ended so far, this one included;
	// Total is the number of steps in the plan.
	Done, Total int
	// Applied, Failed and Skipped are the running counts, this step included.
	Applied, Failed, Skipped int
}

// ApplyResult is what Apply did: the outcome of every step, in plan order,
// and the counts.
type ApplyResult struct {
	Outcomes    []StepOutcome // one per plan step, in plan order
	Applied     int
	Failed      int
	Skipped     int
	NotStarted  int
	Interrupted bool // ctx was cancelled before every step had started
}

// OK reports whether every step was applied.
func (r *ApplyResult) OK() bool {
	return r.Failed == 0 && r.Skipped == 0 && r.NotStarted == 0
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
// is never broken. A step that fails is reported with its error; the steps
// that depend on it, directly or not, are skipped; independent steps go on.
// Apply does not retry: the client does, within its own time budget.
//
// When ctx is cancelled Apply starts no new step, lets the calls in flight
// finish (each Bind runs without ctx's cancellation, so that a write is
// never abandoned half-way), and returns with the remaining steps marked
// not started.
//
// Apply checks nothing about the plan's preconditions or the unbind guard:
// callers do that first (Stale, CheckUnbind).
func Apply(ctx context.Context, acct Account, p *Plan, opts ApplyOptions) ApplyResult {
	par := opts.Parallelism
	if par <= 0 {
		par = DefaultParallelism
	}
	n := len(p.Changes)
	res := ApplyResult{Outcomes: make([]StepOutcome, n)}
	index := make(map[int]int, n) // step number → index in p.Changes
	for i, s := range p.Changes {
		index[s.Step] = i
		res.Outcomes[i].Step = s.Step
	}

	// waiting[i] counts the dependencies of step i not yet applied;
	// dependents[i] lists the steps that wait for step i.
	waiting := make([]int, n)
	dependents := make([][]int, n)
	ended := make([]bool, n)
	var ready []int // indexes, kept sorted so steps start in plan order
	done := 0
	emit := func(i int) {
		done++
		o := res.Outcomes[i]
		switch o.Status {
		case StepApplied:
			res.Applied++
		case StepFailed:
			res.Failed++
		case StepSkipped:
			res.Skipped++
		}
		if opts.Progress != nil {
			opts.Progress(StepEvent{Step: p.Changes[i], Outcome: o, Done: done, Total: n,
				Applied: res.Applied, Failed: res.Failed, Skipped: res.Skipped})
		}
	}
	// skip marks step i and everything waiting on it as skipped, unless
	// they have ended already.
	var skip func(i, cause int, why string)
	skip = func(i, cause int, why string) {
		if ended[i] {
			return
		}
		ended[i] = true
		res.Outcomes[i].Status, res.Outcomes[i].Cause, res.Outcomes[i].Why = StepSkipped, cause, why
		emit(i)
		for _, d := range dependents[i] {
			skip(d, cause, why)
		}
	}

	var missing []int // steps with a dependency that is not in the plan
	for i, s := range p.Changes {
		for _, dep := range s.DependsOn {
			j, ok := index[dep]
			if !ok || j == i {
				missing = append(missing, i)
				continue
			}
			waiting[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	for _, i := range missing {
		s := p.Changes[i]
		skip(i, 0, fmt.Sprintf("it depends on a step that is not in the plan (depends on %s)", renderSteps(s.DependsOn)))
	}
	for i := range p.Changes {
		if !ended[i] && waiting[i] == 0 {
			ready = append(ready, i)
		}
	}

	type finished struct {
		i   int
		err error
	}
	results := make(chan finished, par)
	running := 0
	start := func(i int) {
		running++
		s := &p.Changes[i]
		// The write must not be abandoned half-way: the client bounds
		// its own retries, and cancellation only stops new steps.
		bctx := context.WithoutCancel(ctx)
		go func() {
			var err error
			if berr := acct.Bind(bctx, s.Registration.ID, s.After); berr != nil {
				err = &StepError{Step: s.Step, Action: s.Action, Registration: s.Registration, Err: berr}
			}
			results <- finished{i, err}
		}()
	}

	for {
		for running < par && len(ready) > 0 && ctx.Err() == nil {
			i := ready[0]
			ready = ready[1:]
			start(i)
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		ended[r.i] = true
		if r.err != nil {
			res.Outcomes[r.i].Status, res.Outcomes[r.i].Err = StepFailed, r.err
			emit(r.i)
			step := p.Changes[r.i].Step
			for _, d := range dependents[r.i] {
				skip(d, step, fmt.Sprintf("step %d failed", step))
			}
			continue
		}
		res.Outcomes[r.i].Status = StepApplied
		emit(r.i)
		for _, d := range dependents[r.i] {
			if waiting[d]--; waiting[d] == 0 && !ended[d] {
				ready = applyInsertSorted(ready, d)
			}
		}
	}

	// What is left never started: either ctx was cancelled, or its
	// dependencies form a cycle, which no order can satisfy.
	var left []int
	for i := range p.Changes {
		if !ended[i] {
			left = append(left, i)
		}
	}
	if len(left) == 0 {
		return res
	}
	if ctx.Err() != nil {
		for _, i := range left {
			res.Outcomes[i].Status = StepNotStarted
		}
		res.NotStarted, res.Interrupted = len(left), true
		return res
	}
	steps := make([]int, len(left))
	for k, i := range left {
		steps[k] = p.Changes[i].Step
	}
	why := "it is in, or waits for, a cycle of dependencies among steps " + renderSteps(steps)
	for _, i := range left {
		skip(i, 0, why)
	}
	return res
}

// applyInsertSorted inserts i into the sorted slice s.
func applyInsertSorted(s []int, i int) []int {
	at, _ := slices.BinarySearch(s, i)
	return slices.Insert(s, at, i)
}
