package main

import (
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// Diagnostic is one problem or warning of a run, as -o json gives it:
// where (a spec file position, or none), a stable code, what is wrong and
// what to do. docs/diagnostics.md lists the codes.
type Diagnostic struct {
	Severity string `json:"severity"` // "error" or "warning"
	File     string `json:"file"`     // "" when the problem has no place in a file
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}

// The codes of problems found outside the spec files (the spec's own
// codes are spec.Code's).
const (
	codeUsage        = "usage"           // a command line voxbind cannot use
	codeCredentials  = "credentials"     // no key file, or one that cannot be used
	codeEndpoint     = "endpoint"        // the endpoint is not the Management API, or cannot be reached at all
	codeAPIError     = "api-error"       // the API refused a call (its code is in the message)
	codeHTTPError    = "http-error"      // an HTTP failure without an API answer
	codeUnreachable  = "unreachable"     // the API did not answer within the retry budget
	codeWrongAccount = "wrong-account"   // the API answered for another account
	codeInconsistent = "inconsistent"    // the account as read breaks a rule the API keeps (a user on two registrations)
	codeTimeout      = "timeout"         // --timeout passed
	codeInterrupted  = "interrupted"     // SIGINT or SIGTERM
	codeBlocked      = "blocked"         // the plan has blocked changes
	codeMaxUnbind    = "max-unbind"      // the plan unbinds more than the limit
	codeNotConfirmed = "not-confirmed"   // no terminal to ask on, or not "yes"
	codePlanFile     = "plan-file"       // a saved plan that cannot be read or used
	codeStalePlan    = "stale-plan"      // a saved plan the account no longer matches
	codeOutFile      = "out-file"        // an --out FILE that cannot be written
	codeApplyFailed  = "apply-failed"    // steps failed, were skipped or unknown, or verification differs
	codeSelection    = "selects-nothing" // an --only or --except selector that matches no registration
	codeFleetFailed  = "fleet-failed"    // in a fleet run, some accounts could not be read, planned, applied or exported; the others were
	codeJournal      = "journal"         // the apply journal cannot be created or written; a warning when it cannot be closed
	codeKeyFileMode  = "key-file-mode"   // warning: group or others may read the key file
	codeCloseAccount = "close-account"   // warning: the sandbox state could not be saved on close
	codeInternal     = "internal-error"  // a bug in voxbind
	codeError        = "error"           // anything else
)

// codedError is an error of voxbind itself with its code, and what to do
// apart from what is wrong.
type codedError struct {
	code, msg, fix string
	err            error    // the cause, if any
	pos            spec.Pos // where in a spec file, when the problem has a place there
}

func (e *codedError) Error() string {
	switch {
	case e.fix == "":
		return e.msg
	case strings.Contains(e.msg, "\n"): // a list: the fix on a line of its own
		return e.msg + "\n" + e.fix
	}
	return e.msg + "; " + e.fix
}

func (e *codedError) Unwrap() error { return e.err }

// failure makes a codedError.
func failure(code, msg, fix string) error { return &codedError{code: code, msg: msg, fix: fix} }

// blockedFix says what to do about blocked changes, one clause per kind
// of reason among them, in the order the kinds first appear. A clause
// that says to leave registrations out names their ids.
func blockedFix(blocked []reconcile.Blocked) string {
	var clauses []string
	seen := map[reconcile.BlockCause]bool{}
	for _, b := range blocked {
		if seen[b.Cause] {
			continue
		}
		seen[b.Cause] = true
		if c := blockedClause[b.Cause]; c != "" {
			args, n := exceptArgs(blocked, b.Cause)
			if several := blockedClauses[b.Cause]; several != "" && n > 1 {
				c = several
			}
			clauses = append(clauses, strings.Replace(c, "--except id=N", args, 1))
		}
	}
	if len(clauses) == 0 {
		return "see the blocked changes in the plan: each says why"
	}
	return strings.Join(clauses, "; ")
}

// blockedClause is what to do about one kind of blocked change.
var blockedClause = map[reconcile.BlockCause]string{
	reconcile.BlockFrozen:        "a frozen registration (its subscription lapsed) is never written: give its entry the target it has now, or remove the entry",
	reconcile.BlockFrozenHolder:  "a user that a frozen registration holds stays with it: bind another user",
	reconcile.BlockIgnoredHolder: "a registration that an ignore entry holds keeps its user while the entry is in force: bind another user, or remove the entry",
	reconcile.BlockWaits:         "a change that waits for a blocked one is blocked with it: resolve the one it waits for",
	reconcile.BlockChanged:       "a registration changed since the apply is left to you: leave it out with --except id=N (with the restores that wait for it), or put it back as the apply left it and run undo again",
	reconcile.BlockAccountState:  "voxbind never writes to a frozen or inactive account: unfreeze (or activate) it in the Voximplant control panel, or leave its spec (for undo, its journal) out of the run",
	reconcile.BlockGone:          "a registration that no longer exists, or whose target before the apply no longer does, cannot be restored: leave it out with --except id=N",
}

// blockedClauses is blockedClause for the kinds that name the
// registrations to leave out, when there are several.
var blockedClauses = map[reconcile.BlockCause]string{
	reconcile.BlockChanged: "registrations changed since the apply are left to you: leave them out with --except id=N (with the restores that wait for them), or put them back as the apply left them and run undo again",
	reconcile.BlockGone:    "registrations that no longer exist, or whose targets before the apply no longer do, cannot be restored: leave them out with --except id=N",
}

// exceptArgs is the --except flags that leave out the registrations of
// the changes blocked for cause: one per id, up to five of them; beyond,
// the form, as the plan lists the ids. n is how many registrations
// there are.
func exceptArgs(blocked []reconcile.Blocked, cause reconcile.BlockCause) (flags string, n int) {
	var args []string
	for _, b := range blocked {
		arg := "--except id=" + strconv.FormatInt(b.Registration.ID, 10)
		if b.Cause == cause && b.Registration.ID > 0 && !slices.Contains(args, arg) {
			args = append(args, arg)
		}
	}
	if len(args) == 0 || len(args) > 5 {
		return "--except id=N", len(args)
	}
	return strings.Join(args, " "), len(args)
}

// report collects a run's diagnostics. A command whose stdout is JSON
// (-o json) sets json: its document then carries them, and when it fails
// before writing its document, run writes {"format_version":1,
// "diagnostics":[…]} in its place. The accounts of a fleet apply add to
// it from goroutines of their own: the list is behind mu.
type report struct {
	json    bool   // stdout is JSON
	kind    string // set: the "kind" of the diagnostics document (apply's JSON Lines)
	written bool   // the command wrote its document, diagnostics included

	mu   sync.Mutex
	list []Diagnostic
}

func (r *report) add(d Diagnostic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, d)
}

// diagnostics is the list so far, [] rather than null when empty.
func (r *report) diagnostics() []Diagnostic {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.list == nil {
		return []Diagnostic{}
	}
	return slices.Clone(r.list)
}

// fail adds the diagnostic of the error a run ends with, unless the run
// reported it already (spec errors, item by item).
func (r *report) fail(err error) {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.reported || ee.err == nil {
			return
		}
		err = ee.err
	}
	r.add(diagnosticOf(err))
}

// writeDocument writes the diagnostics document when the command's own
// document was not written.
func (r *report) writeDocument(w io.Writer) error {
	if !r.json || r.written {
		return nil
	}
	r.written = true
	return writeJSON(w, struct {
		FormatVersion int          `json:"format_version"`
		Kind          string       `json:"kind,omitempty"`
		Diagnostics   []Diagnostic `json:"diagnostics"`
	}{1, r.kind, r.diagnostics()}, r.kind == "")
}

// writeJSON writes v as one JSON document: indented, or on one line for
// JSON Lines.
func writeJSON(w io.Writer, v any, indent bool) error {
	enc := reconcile.NewJSONEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// specDiagnostic is a spec problem as an error diagnostic (the spec's
// warnings go through session.warnAt).
func specDiagnostic(e *spec.Error) Diagnostic {
	return Diagnostic{Severity: "error", File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col,
		Code: string(e.Code), Message: e.Msg, Fix: e.Fix}
}

// diagnosticOf classifies the error a run ends with.
func diagnosticOf(err error) Diagnostic {
	d := Diagnostic{Severity: "error", Code: codeError, Message: err.Error()}
	var (
		se  *spec.Error
		ce  *codedError
		ae  *voximplant.APIError
		ep  *voximplant.EndpointError
		he  *voximplant.HTTPError
		ne  net.Error
		te  timeoutError
		pan *internalError
		sel *reconcile.SelectionError
		inc *reconcile.InconsistentError
	)
	switch {
	case errors.As(err, &se):
		return specDiagnostic(se)
	case errors.As(err, &ce):
		d.Code, d.Message, d.Fix = ce.code, ce.msg, ce.fix
		d.File, d.Line, d.Col = ce.pos.File, ce.pos.Line, ce.pos.Col
	case errors.Is(err, errInterrupted):
		d.Code, d.Fix = codeInterrupted, "run the command again; the next plan shows what is left"
	case errors.As(err, &te):
		d.Code, d.Fix = codeTimeout, "give a longer --timeout, or 0 for no limit; the next plan shows what is left"
	case errors.As(err, &pan):
		d.Code = codeInternal
	case errors.As(err, &sel):
		d.Code, d.Message = codeSelection, strings.Join(sel.Problems, "; ")
		var fixes []string
		for _, f := range sel.Fixes {
			if !slices.Contains(fixes, f) {
				fixes = append(fixes, f)
			}
		}
		d.Fix = strings.Join(fixes, "; ")
	case errors.As(err, &inc):
		d.Code, d.Message, d.Fix = codeInconsistent, inc.Message(), inc.Fix()
	case errors.Is(err, reconcile.ErrTooManyUnbinds):
		d.Code = codeMaxUnbind
		d.Message, d.Fix, _ = strings.Cut(err.Error(), ". ")
	case errors.As(err, &ep):
		d.Code, d.Message, d.Fix = codeEndpoint, ep.Method+": "+ep.Problem, ep.Fix
	case errors.Is(err, voximplant.ErrEndpointURL):
		d.Code, d.Fix = codeEndpoint, "give the Management API's URL with --endpoint (or VOXIMPLANT_ENDPOINT), such as "+voximplant.DefaultEndpoint+", or leave it out for that one"
	case errors.As(err, &ae):
		d.Code, d.Fix = codeAPIError, ae.Hint()
		if ae.Code == voximplant.CodeInvalidKeyID {
			d.Fix = fixUnknownKeyID // its hint says what happened, not what to do
		}
	case errors.Is(err, voximplant.ErrWrongAccount):
		d.Code = codeWrongAccount
	case errors.As(err, &he):
		d.Code = codeHTTPError
	case errors.As(err, &ne):
		d.Code, d.Fix = codeUnreachable, "check the network, the proxy settings and --endpoint ('voxbind doctor' checks them)"
	}
	return d
}

// internalError is a panic in a command, turned into an error.
type internalError struct{ msg string }

func (e *internalError) Error() string { return e.msg }

// writeUsageDiagnostics writes the diagnostics document for a command
// line that cannot be parsed, when it asked validate, plan or apply for
// JSON: the pipeline reading stdout gets one document all the same.
func writeUsageDiagnostics(w io.Writer, args []string, err error) {
	if len(args) == 0 || !slices.Contains([]string{"validate", "plan", "apply"}, args[0]) || !asksForJSON(args[1:]) {
		return
	}
	r := report{json: true}
	if args[0] == "apply" {
		r.kind = "diagnostics"
	}
	r.add(Diagnostic{Severity: "error", Code: codeUsage, Message: err.Error(), Fix: "see voxbind help " + args[0]})
	r.writeDocument(w)
}

// asksForJSON reports whether args hold -o json in one of its spellings.
func asksForJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson" || a == "-o=json" || a == "--output=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}
