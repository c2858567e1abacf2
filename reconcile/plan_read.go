package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// ErrPlanFormat is wrapped by ReadPlan's errors about the file itself (not
// JSON, another format_version, missing preconditions, inconsistent steps).
var ErrPlanFormat = errors.New("not a plan that apply --plan can use")

// remakeError is the error about a plan of another format_version: the
// plan is made again with this voxbind, not looked for elsewhere.
type remakeError struct{ error }

func (e remakeError) Unwrap() error { return e.error }

// PlanFileFix is what to do about err, an error of reading a saved plan
// (ReadPlan, ReviewPlan, ReadFleetPlan, ReviewFleetPlan): make the plan
// again when another voxbind wrote it, else fix, the caller's advice on
// which file to give. The errors hold no advice of their own, so that a
// message ends in one fix.
func PlanFileFix(err error, fix string) string {
	if errors.As(err, new(remakeError)) {
		return "make the plan again with this voxbind's plan --out"
	}
	return fix
}

// ReadPlan decodes a plan saved by plan --out and checks that apply can
// execute it: format_version 1, an account id, a precondition on every
// step, steps numbered once each, dependencies on earlier steps only, at
// most one step per registration, and each action consistent with its
// targets. Every problem found is reported, one per line.
func ReadPlan(data []byte) (*Plan, error) { return readPlan(data, true) }

// ReviewPlan decodes a plan for a reviewer (voxbind show): what ReadPlan
// reads, and also what plan -o json prints, whose steps have no
// precondition (apply --plan needs them; a reviewer does not). Every
// other check of ReadPlan holds.
func ReviewPlan(data []byte) (*Plan, error) { return readPlan(data, false) }

// readPlan is ReadPlan, or ReviewPlan when forApply is false. Either takes
// the diagnostics that plan -o json adds to the plan, and drops them.
func readPlan(data []byte, forApply bool) (*Plan, error) {
	kind, err := planProbe(data)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "":
	case fleetKind:
		return nil, fmt.Errorf("%w: a fleet plan (of several accounts), not the plan of one account", ErrPlanFormat)
	default:
		return nil, fmt.Errorf("%w: %s", ErrPlanFormat, unknownKind(kind))
	}
	var p Plan
	doc := struct {
		*Plan
		Diagnostics json.RawMessage `json:"diagnostics"`
		// Summary takes the plan's summary in place of Plan.Summary, to
		// tell a missing one (or "summary": null) from zero counts.
		Summary *Summary `json:"summary"`
	}{Plan: &p}
	if err := decodeStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPlanFormat, err)
	}
	if doc.Summary != nil {
		p.Summary = *doc.Summary
	}
	errs := checkPlan(&p, forApply, doc.Summary != nil)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrPlanFormat, errors.Join(errs...))
	}
	planNonNil(&p)
	return &p, nil
}

// planProbe checks what every saved plan must be before it is decoded:
// not too large, JSON, this voxbind's format_version, and keys written
// once each, in lower case. It returns the plan's kind ("" for the plan
// of one account, fleetKind for a fleet).
func planProbe(data []byte) (kind string, err error) {
	if len(data) > maxPlanSize {
		return "", fmt.Errorf("%w: larger than %d MiB, more than any plan voxbind writes", ErrPlanFormat, maxPlanSize>>20)
	}
	var probe struct {
		FormatVersion *int    `json:"format_version"`
		Kind          *string `json:"kind"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("%w: invalid JSON (%v)", ErrPlanFormat, err)
		}
		return "", fmt.Errorf("%w: %v", ErrPlanFormat, decodeError(err))
	}
	switch {
	case probe.FormatVersion == nil:
		return "", fmt.Errorf("%w: no format_version", ErrPlanFormat)
	case *probe.FormatVersion != FormatVersion:
		return "", remakeError{fmt.Errorf("%w: format_version %d, but this voxbind reads format_version %d",
			ErrPlanFormat, *probe.FormatVersion, FormatVersion)}
	}
	if err := planKeysExact(data); err != nil {
		return "", fmt.Errorf("%w: %v", ErrPlanFormat, decodeError(err))
	}
	if probe.Kind != nil {
		return *probe.Kind, nil
	}
	return "", nil
}

// decodeStrict decodes JSON data into v, refusing fields v does not have;
// its errors are in the file's words (decodeError).
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return decodeError(dec.Decode(v))
}

// JSONProblem is decodeError for JSON that voxbind reads elsewhere (the
// API's answers): a value of the wrong kind said by its key path and the
// kind it must be, not in Go's words.
func JSONProblem(err error) error { return decodeError(err) }

// decodeError says what encoding/json refused in the words of the file it
// read, not Go's: a value of the wrong kind by its key path and the kind
// it must be ("changes.step" is a string, but must be a whole number),
// an unknown key by its name; what it quotes from the file (a key, a
// number) is quoted by planQuote. Other errors, JSON syntax among them
// (whose text names no Go type), are returned as they are.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		var keys []string
		for _, k := range strings.Split(te.Field, ".") {
			// Go's names (an embedded struct's type) start in upper
			// case; the file's keys are lower case.
			if k != "" && k == strings.ToLower(k) {
				keys = append(keys, k)
			}
		}
		what := "the value"
		if len(keys) > 0 {
			what = strconv.Quote(strings.Join(keys, "."))
		}
		return fmt.Errorf("%s is %s, but must be %s", what, jsonValueWords(te.Value), jsonKindWords(te.Type))
	}
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if key, uerr := strconv.Unquote(rest); uerr == nil {
			return fmt.Errorf("unknown key %s", planQuote(key))
		}
	}
	return err
}

// jsonValueWords names the kind of JSON value that encoding/json's
// UnmarshalTypeError.Value gives ("string", "number 1.5").
func jsonValueWords(v string) string {
	switch {
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "bool":
		return "true or false"
	case strings.HasPrefix(v, "number "):
		n := strings.TrimPrefix(v, "number ")
		if _, cut := planCut(n); cut {
			return "the number " + planQuote(n) // quoted and cut short, with its length
		}
		return "the number " + Printable(n)
	}
	return "a " + v
}

// jsonKindWords names the kind of JSON value that decodes into t.
func jsonKindWords(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	}
	return "another kind of value"
}

// planNonNil makes a read plan's missing lists empty.
func planNonNil(p *Plan) {
	if p.Changes == nil {
		p.Changes = []Step{}
	}
	if p.SideEffects == nil {
		p.SideEffects = []SideEffect{}
	}
	if p.Blocked == nil {
		p.Blocked = []Blocked{}
	}
	if p.Ignored == nil {
		p.Ignored = []Ignored{}
	}
}

// checkPlan checks that apply can execute a read plan (see ReadPlan) and
// returns every problem; with forApply false, steps without a
// precondition are no problem (see ReviewPlan). hasSummary says whether
// the file gave the plan's summary: without one there are no counts to
// compare with the steps.
func checkPlan(p *Plan, forApply, hasSummary bool) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if p.AccountID <= 0 {
		bad("account_id %d: must be the positive id of the account the plan was made for", p.AccountID)
	}
	byStep := checkSteps(p.Changes, bad)
	if forApply {
		checkPreconditions(p.Changes, bad)
	}
	for _, s := range p.Changes {
		if n := s.IncludedFor; n != 0 && (n == s.Step || byStep[n] == nil) {
			bad("step %d: included_for_step %d is not another step of the plan", s.Step, n)
		}
	}
	if sel := p.Selection; sel != nil && sel.Outside < 0 {
		bad("selection: outside %d: must be 0 or more", sel.Outside)
	}
	checkSideEffects(p.SideEffects, byStep, bad)
	if hasSummary {
		checkSummary(p, bad)
	} else {
		errs = append(errs, errNoSummary)
	}
	checkPlanText(p, bad)
	return errs
}

// errNoSummary refuses a plan without its summary (or with "summary":
// null): every plan voxbind writes has one, and show prints it.
var errNoSummary = errors.New("no summary: every plan voxbind writes has one, so the plan was edited; make the plan again with voxbind plan --out FILE")

// checkSummary refuses a plan whose summary counts binds, rebinds or
// unbinds other than its steps: show prints the summary, and apply runs
// the steps, so a reviewer would approve what is not applied.
func checkSummary(p *Plan, bad func(format string, args ...any)) {
	for _, m := range summaryMismatches(p.Summary, stepCounts(p.Changes), "the summary", "the plan has") {
		bad("%s", m)
	}
}

// stepCounts counts the bind, rebind and unbind steps among steps.
func stepCounts(steps []Step) Summary {
	var n Summary
	for _, s := range steps {
		switch s.Action {
		case ActionBind:
			n.Bind++
		case ActionRebind:
			n.Rebind++
		case ActionUnbind:
			n.Unbind++
		}
	}
	return n
}

// summaryMismatches says, for each of bind, rebind and unbind whose count
// in counted (whose summary: "the summary") differs from have (what the
// steps there are: where, "the plan has"), that the plan was edited.
func summaryMismatches(counted, have Summary, whose, where string) []string {
	var out []string
	for _, c := range []struct {
		action        Action
		counted, have int
	}{
		{ActionBind, counted.Bind, have.Bind},
		{ActionRebind, counted.Rebind, have.Rebind},
		{ActionUnbind, counted.Unbind, have.Unbind},
	} {
		if c.counted != c.have {
			out = append(out, fmt.Sprintf("%s counts %d to %s, but %s %s: the plan was edited; make the plan again with voxbind plan --out FILE",
				whose, c.counted, c.action, where, english.Plural(c.have, string(c.action)+" step")))
		}
	}
	return out
}

// checkPlanText refuses a plan whose free text (the spec positions, the
// reasons, the ignore entries' owners, the selectors: what the spec and
// the command line put in it, not the account's names, which apply
// --plan checks against the account) holds what looks like a private key
// or a token (spec.SecretKind; spec.MarkedSecretKind for file paths).
// voxbind refuses such a value in a spec,
// so no plan it writes holds one: the file was edited, and show or apply
// would print it. The problem names the step and the field, never the
// value.
func checkPlanText(p *Plan, bad func(format string, args ...any)) {
	refuse := func(at, field, what string) {
		bad("%s: its %s looks like %s (not shown); no plan voxbind writes holds a key or a token, so the file was edited: make the plan again with voxbind plan --out FILE, and replace the key or token if the file was shared", at, field, what)
	}
	check := func(at, field, value string) {
		if what := spec.SecretKind(value); what != "" {
			refuse(at, field, what)
		}
	}
	// A file path ("/tmp/TestRun123/voxbind.yaml:5") is checked for a
	// PEM block or a JWT only: a directory or file stem of 64 letters and
	// digits mixing cases is a name people write and voxbind copies into
	// every plan, not the base64 of a key.
	checkPath := func(at, field, value string) {
		if what := spec.MarkedSecretKind(value); what != "" {
			refuse(at, field, what)
		}
	}
	checkPath("the plan", "journal", p.Journal)
	for _, s := range p.Changes {
		at := "step " + strconv.Itoa(s.Step)
		checkPath(at, "source", s.Source)
		check(at, "reason", string(s.Reason))
	}
	for _, b := range p.Blocked {
		at := "blocked registration " + strconv.FormatInt(b.Registration.ID, 10)
		check(at, "reason", b.Reason)
		checkPath(at, "source", b.Source)
	}
	for _, ig := range p.Ignored {
		at := "ignored registration " + strconv.FormatInt(ig.Registration.ID, 10)
		check(at, "reason", ig.Reason)
		check(at, "owner", ig.Owner)
		check(at, "until", ig.Until)
		checkPath(at, "source", ig.Source)
	}
	if sel := p.Selection; sel != nil {
		for i, v := range sel.Only {
			check("selection", fmt.Sprintf("only[%d]", i), v)
		}
		for i, v := range sel.Except {
			check("selection", fmt.Sprintf("except[%d]", i), v)
		}
	}
}

// checkSteps checks each step's number, registration, targets and order
// against the steps before it, and returns the steps by number for the
// checks that refer to them.
func checkSteps(changes []Step, bad func(format string, args ...any)) map[int]*Step {
	seen := make(map[int]bool, len(changes))
	earlier := make(map[int]bool, len(changes)) // steps listed before the one checked
	byStep := make(map[int]*Step, len(changes))
	byReg := make(map[int64]int, len(changes))
	for i, s := range changes {
		at := "step " + strconv.Itoa(s.Step)
		if s.Step <= 0 {
			at = "change " + strconv.Itoa(i+1)
			bad("%s: step number %d: must be positive", at, s.Step)
		} else if seen[s.Step] {
			bad("%s: the step number is used twice", at)
		}
		seen[s.Step] = true
		if s.Registration.ID <= 0 {
			bad("%s: registration id %d: must be positive", at, s.Registration.ID)
		} else if prev, dup := byReg[s.Registration.ID]; dup {
			bad("%s: registration %d is also changed by step %d; a plan changes a registration once", at, s.Registration.ID, prev)
		} else {
			byReg[s.Registration.ID] = s.Step
		}
		checkStepTargets(at, &s, bad)
		for _, d := range s.DependsOn {
			if d <= 0 || d >= s.Step || !earlier[d] {
				bad("%s: depends on step %d, which is not an earlier step of the plan", at, d)
			}
		}
		if s.Step > 0 {
			earlier[s.Step] = true
		}
		byStep[s.Step] = &changes[i]
	}
	return byStep
}

// checkStepTargets checks that a step's action fits its before and after
// targets, the pair apply checks and writes.
func checkStepTargets(at string, s *Step, bad func(format string, args ...any)) {
	switch s.Action {
	case ActionBind, ActionRebind:
		if s.After == nil || s.After.Application.ID <= 0 {
			bad("%s: a %s needs an after target with an application id", at, s.Action)
		} else if s.After.Rule != nil && s.After.User != nil {
			bad("%s: the after target has both a rule and a user", at)
		}
	case ActionUnbind:
		if s.After != nil {
			bad("%s: an unbind must have after: null", at)
		}
	default:
		bad("%s: action %s: must be bind, rebind or unbind", at, planQuote(string(s.Action)))
	}
	if s.Action == ActionBind && s.Before != nil || (s.Action == ActionRebind || s.Action == ActionUnbind) && s.Before == nil {
		bad("%s: a %s with before %s: the action does not match its targets", at, s.Action, renderTarget(planTarget(s.Before)))
	}
}

// checkPreconditions refuses steps without the precondition apply --plan
// checks each step against (plan -o json leaves it out), in one count.
func checkPreconditions(changes []Step, bad func(format string, args ...any)) {
	missing := 0
	for _, s := range changes {
		if s.Precondition == nil {
			missing++
		}
	}
	if missing > 0 {
		bad("%d of %s %s no precondition: apply --plan needs the file written by voxbind plan --out FILE (plan -o json leaves preconditions out)",
			missing, english.Plural(len(changes), "step"), english.Choose(missing, "has", "have"))
	}
}

// checkSideEffects checks that each side effect names a step that binds
// the user it loses and, where that step records a holder, this one.
func checkSideEffects(effects []SideEffect, byStep map[int]*Step, bad func(format string, args ...any)) {
	for _, e := range effects {
		s := byStep[e.CausedByStep]
		switch {
		case s == nil:
			bad("side effect on registration %d: caused_by_step %d is not a step of the plan", e.Registration.ID, e.CausedByStep)
		case s.After == nil || s.After.User == nil || s.After.User.ID != e.LosesUser.ID || s.After.User.Name != e.LosesUser.Name:
			bad("side effect on registration %d: it loses user %s, but step %d binds %s", e.Registration.ID, renderName(planRef(e.LosesUser)), e.CausedByStep, renderTarget(planTarget(s.After)))
		case s.Precondition != nil && (s.Precondition.UserHolder == nil || s.Precondition.UserHolder.ID != e.Registration.ID):
			bad("side effect on registration %d: step %d records another holder of user %s", e.Registration.ID, e.CausedByStep, renderName(planRef(e.LosesUser)))
		}
	}
}

// planKeysExact refuses what encoding/json would quietly accept in a plan:
// a key written twice in one object (the last one wins, so a reviewer and
// apply would read different values) and a key in another case
// ("Account_ID" decodes as account_id). Every key voxbind writes is lower
// case.
func planKeysExact(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are checked when decoded, not here
	type frame struct {
		object bool
		key    bool // the next string token is a key
		seen   map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, isKey := tok.(string); isKey && top != nil && top.object && top.key {
			if k != strings.ToLower(k) {
				return fmt.Errorf("key %s: keys are lower case (%s)", planQuote(k), planQuote(strings.ToLower(k)))
			}
			if top.seen[k] {
				return fmt.Errorf("key %s is written twice in one object", planQuote(k))
			}
			top.seen[k] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true, seen: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

// planQuoteMax is the most characters of a value read from a plan file
// that a message quotes: a file of 200 MB of one value must not make a
// message of 200 MB.
const planQuoteMax = 80

// planQuote quotes a value read from a plan file for a message: escaped
// (Printable), and past planQuoteMax characters cut, with "…" and its
// length.
func planQuote(s string) string {
	if short, cut := planCut(s); cut {
		return fmt.Sprintf(`"%s" (%d characters)`, Printable(short), utf8.RuneCountInString(s))
	}
	return `"` + Printable(s) + `"`
}

// planCut returns s cut to planQuoteMax characters and "…", and whether
// it was longer.
func planCut(s string) (string, bool) {
	n := 0
	for i := range s {
		if n == planQuoteMax {
			return s[:i] + "…", true
		}
		n++
	}
	return s, false
}

// planRef, planRefPtr, planTarget and planReg cut the names read from a
// plan file for a message (see planCut).
func planRef(r Ref) Ref {
	r.Name, _ = planCut(r.Name)
	return r
}

func planRefPtr(r *Ref) *Ref {
	if r == nil {
		return nil
	}
	c := planRef(*r)
	return &c
}

func planTarget(t *Target) *Target {
	if t == nil {
		return nil
	}
	return &Target{Application: planRef(t.Application), Rule: planRefPtr(t.Rule), User: planRefPtr(t.User)}
}

func planReg(r *RegistrationRef) *RegistrationRef {
	c := *r
	c.SIPUsername, _ = planCut(c.SIPUsername)
	c.Proxy, _ = planCut(c.Proxy)
	return &c
}
