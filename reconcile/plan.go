package reconcile

// FormatVersion is the format_version of plan JSON this voxbind reads and writes.
const FormatVersion = 1

// Action is what one step does to a registration.
type Action string

// The three actions a step can take.
const (
	ActionBind   Action = "bind"   // an unbound registration gets a target
	ActionRebind Action = "rebind" // a bound registration gets a different target
	ActionUnbind Action = "unbind" // a bound registration loses its target
)

// Reason says why a step is in the plan.
type Reason string

// Reasons for a step.
const (
	ReasonSpec  Reason = "spec"  // an entry of the spec asked for it
	ReasonPrune Reason = "prune" // prune: true and no entry lists the registration
	ReasonUndo  Reason = "undo"  // voxbind undo gives back what an apply changed
)

// Plan is the typed result of planning: ordered steps, their side effects,
// what is blocked, and the counts. It is what plan renders, plan --out saves
// and apply executes.
type Plan struct {
	FormatVersion int   `json:"format_version"`
	AccountID     int64 `json:"account_id"`
	// AccountState is set when the account is frozen or inactive
	// (AccountFrozen, AccountInactive): voxbind never writes to it, so
	// every change the plan would make is blocked (blockAccount).
	AccountState string       `json:"account_state,omitempty"`
	Changes      []Step       `json:"changes"`
	SideEffects  []SideEffect `json:"side_effects"`
	Blocked      []Blocked    `json:"blocked"`
	// Ignored lists the registrations in the selection that an ignore
	// entry in force holds: they get no step.
	Ignored []Ignored `json:"ignored"`
	// IgnoredOutside lists the ids of the registrations outside the
	// selection (--only, --except) that an ignore entry in force holds:
	// verification leaves them out like Ignored. Not part of plan JSON.
	IgnoredOutside []int64 `json:"-"`
	Summary        Summary `json:"summary"`
	// Selection is present when the plan was limited with --only or
	// --except: the selectors, and how many changes outside them were not
	// planned.
	Selection *PlanSelection `json:"selection,omitempty"`
	// Journal is, in a plan made by undo, the apply journal it undoes (as
	// named on the command line); "" in a plan made from a spec. Its
	// steps' Source is "journal:line" of the record that asks for them.
	Journal string `json:"journal,omitempty"`
	// AccountName is, with AccountState, the account's name as read, for
	// the note that names it. Not part of plan JSON.
	AccountName string `json:"-"`
	// FrozenLeftByPrune counts the bound frozen registrations that prune
	// leaves alone (they are also in Summary.Unmanaged); text output notes
	// them. Not part of plan JSON.
	FrozenLeftByPrune int `json:"-"`
	// Unmatched lists the selectors (as flags, "--only app=fax") that
	// match no registration of this account of a fleet (Options.Fleet).
	// Not part of plan JSON.
	Unmatched []string `json:"-"`
	// NothingInScope is set when the plan's selection (--only, --except)
	// leaves no registration of the account in scope. Not part of plan
	// JSON.
	NothingInScope bool `json:"-"`
	// MadeAlready counts, in a saved plan applied to an account frozen or
	// inactive since (blockSavedAccount), the changes the account has
	// already: they are not blocked, and not listed. Not part of plan
	// JSON.
	MadeAlready int `json:"-"`
	// UnmatchedIgnores lists the ignore entries in force that match no
	// registration of the account, in spec order, with the warning that
	// plan and apply give about each. Not part of plan JSON.
	UnmatchedIgnores []UnmatchedIgnore `json:"-"`
	// File is the file a saved plan was read from (show, apply --plan),
	// as named on the command line: a grouped view points to
	// `voxbind show FILE` for the full list, not to a new plan of the
	// account as it is now. "" for a plan made in this run. Not part of
	// plan JSON.
	File string `json:"-"`
	// Flags are the flags that chose the account on the command line
	// (" --sandbox=…", " --credentials=…", " --endpoint=…"), quoted for a
	// shell: the commands voxbind prints for pasting (UndoCommand) repeat
	// them, so that they work as pasted. "" when none was given (they
	// came from the environment, which the shell has too). Not part of
	// plan JSON.
	Flags string `json:"-"`
}

// newPlan is the plan of the account before any step is added, as Diff
// and Undo start it: its lists are empty, not nil, so that plan JSON
// shows [] for a plan with nothing in them.
func newPlan(accountID int64, sel Selection) *Plan {
	return &Plan{
		FormatVersion: FormatVersion,
		AccountID:     accountID,
		Changes:       []Step{},
		SideEffects:   []SideEffect{},
		Blocked:       []Blocked{},
		Ignored:       []Ignored{},
		Selection:     sel.summary(),
	}
}

// Step is one BindSipRegistration call.
type Step struct {
	Step         int             `json:"step"` // 1-based, the order steps are shown in
	Action       Action          `json:"action"`
	Registration RegistrationRef `json:"registration"`
	Before       *Target         `json:"before"`
	After        *Target         `json:"after"`
	Reason       Reason          `json:"reason"`
	Source       string          `json:"source"` // "file:line" of the entry; "" for prune
	// DependsOn lists the steps that must succeed before this one may run
	// (a registration must leave a user before another arrives).
	DependsOn []int `json:"depends_on,omitempty"`
	// IncludedFor is set on the step of a registration outside the
	// selection that an in-selection step waits for (it must leave a user
	// first): the number of the step that needs it.
	IncludedFor int `json:"included_for_step,omitempty"`
	// Precondition is what the step was computed from; saved by plan --out
	// and checked by apply --plan.
	Precondition *Precondition `json:"precondition,omitempty"`
}

// Precondition is the observed state a step relies on.
type Precondition struct {
	Target *Target `json:"target"` // the registration's observed target
	// UserHolder is the registration that held the user this step binds to,
	// nil when the step binds no user or the user was free.
	UserHolder *RegistrationRef `json:"user_holder"`
}

// SideEffect is a displacement the API will perform: binding a registration
// to a user silently takes that user away from its previous holder.
type SideEffect struct {
	Registration RegistrationRef `json:"registration"`
	LosesUser    Ref             `json:"loses_user"`
	CausedByStep int             `json:"caused_by_step"`
}

// Blocked is a change the spec asks for that voxbind will not make.
type Blocked struct {
	Registration RegistrationRef `json:"registration"`
	Reason       string          `json:"reason"` // "frozen", "account_frozen", ...
	Source       string          `json:"source,omitempty"`
	// Action, Before and After are the change itself, set when it is
	// blocked with its whole account (reason "account_frozen" or
	// "account_inactive"): the step it would be. A nil Before is
	// unbound, as is a nil After of an unbind.
	Action Action  `json:"action,omitempty"`
	Before *Target `json:"before,omitempty"`
	After  *Target `json:"after,omitempty"`
	// Cause is the kind of Reason, for saying what to do about it. Plans
	// read back from JSON do not have it.
	Cause BlockCause `json:"-"`
}

// BlockCause is why a change is blocked, as far as it decides what a user
// can do about it.
type BlockCause int

const (
	BlockUnknown       BlockCause = iota // not recorded (a plan read from a file)
	BlockFrozen                          // the registration is frozen
	BlockFrozenHolder                    // a frozen registration holds the user it binds
	BlockIgnoredHolder                   // an ignore entry holds the registration that holds the user it binds
	BlockWaits                           // it waits for a change that is blocked
	BlockChanged                         // undo: the registration changed since the apply
	BlockGone                            // undo: the registration, or its target before the apply, no longer exists
	BlockAccountState                    // the account is frozen or inactive
)

// Ignored is a registration that an ignore entry of the spec keeps the
// plan from touching.
type Ignored struct {
	Registration RegistrationRef `json:"registration"`
	Reason       string          `json:"reason"`
	Owner        string          `json:"owner"` // "" when the entry names none
	Until        string          `json:"until"` // YYYY-MM-DD, the last day it holds
	// Drift is true when, without the exception, the plan would change the
	// registration: the exception hides drift now.
	Drift  bool   `json:"drift"`
	Source string `json:"source"` // "file:line" of the ignore entry
}

// PlanSelection records the --only and --except selectors a plan was
// made with.
type PlanSelection struct {
	Only   []string `json:"only"`
	Except []string `json:"except"`
	// Outside counts the changes the spec asks of registrations outside
	// the selection, which the plan leaves out.
	Outside int `json:"outside"`
}

// Summary counts the plan. With a selection, Unchanged and Unmanaged
// count the registrations in it.
type Summary struct {
	Bind      int `json:"bind"`
	Rebind    int `json:"rebind"`
	Unbind    int `json:"unbind"`
	Unchanged int `json:"unchanged"`
	Unmanaged int `json:"unmanaged"`
}

// Empty reports whether the plan makes no calls.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }
