package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// MaxJournalSize is the largest journal undo reads: the journal of a
// 100,000-step apply that binds users and displaces some is about 60 MB.
const MaxJournalSize = 256 << 20

// maxJournalLine bounds one line: an intent with long names is a few KB.
const maxJournalLine = 1 << 20

// ErrJournalFormat is wrapped by ReadJournal's errors about the file (not
// a journal, a line that does not parse, inconsistent records).
var ErrJournalFormat = errors.New("not an apply journal that undo can use")

// ErrJournalVersion is wrapped by ReadJournal's error for a journal of
// another journal_version.
var ErrJournalVersion = errors.New("unknown journal_version")

// JournalRecords is an apply journal as read back: its start, every
// intent in the order written, the results by step, and the end when
// the apply got that far.
type JournalRecords struct {
	Start   JournalStart
	Intents []JournalIntent
	Results map[int]JournalResult // by step
	End     *JournalEnd           // nil: cut short by a crash or kill
	// Lines is the number of complete lines read; CutShort is set when
	// a partial line followed them (the process died while writing it)
	// and was left out.
	Lines    int
	CutShort bool
}

// ReadJournal decodes an apply journal and checks that undo can use it:
// a start line of journal_version 1 with an account id first, then
// intents, results and an end, each well formed, every result after its
// step's intent, one intent per step. A last line without its newline
// was being written when the process died: it is left out (CutShort),
// and the journal is read up to its last complete line. Every other
// problem is an error naming its line. The errors say what is wrong, not
// what to do: the command that reads the journal says that.
func ReadJournal(data []byte) (*JournalRecords, error) {
	if len(data) > MaxJournalSize {
		return nil, fmt.Errorf("%w: larger than %d MiB, more than any journal voxbind writes", ErrJournalFormat, MaxJournalSize>>20)
	}
	j := &JournalRecords{Results: map[int]JournalResult{}}
	intents := map[int]bool{}
	for line := 1; len(data) > 0; line++ {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			j.CutShort = true // the last line, partial
			break
		}
		text := data[:end]
		data = data[end+1:]
		if err := j.readLine(line, text, intents); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrJournalFormat, line, err)
		}
		j.Lines = line
	}
	if j.Lines == 0 {
		return nil, fmt.Errorf("%w: it has no complete line, so not even its start is known", ErrJournalFormat)
	}
	return j, nil
}

// readLine decodes one complete line into j, refusing what no apply
// writes: undo must not plan from a journal it misread.
func (j *JournalRecords) readLine(line int, text []byte, intents map[int]bool) error {
	if len(text) > maxJournalLine {
		return fmt.Errorf("longer than %d KiB, longer than any line voxbind writes", maxJournalLine>>10)
	}
	kind, err := journalKind(line, text)
	if err != nil {
		return err
	}
	if err := planKeysExact(text); err != nil {
		return err
	}
	if j.End != nil {
		return errors.New("a record after the end record")
	}
	switch kind {
	case journalKindStart:
		return j.readStart(line, text)
	case journalKindIntent:
		return j.readIntent(line, text, intents)
	case journalKindResult:
		return j.readResult(text, intents)
	case journalKindEnd:
		return j.readEnd(text)
	default:
		return fmt.Errorf("kind %q: must be start, intent, result or end", kind)
	}
}

// journalKind is the kind of record a line holds; on the first line it
// also checks for a start record of the journal_version this voxbind
// reads, since nothing after it can be understood otherwise.
func journalKind(line int, text []byte) (string, error) {
	var probe struct {
		Kind           string `json:"kind"`
		JournalVersion *int   `json:"journal_version"`
		VoxbindVersion string `json:"voxbind_version"`
	}
	if err := json.Unmarshal(text, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("not a JSON object (%v)", err)
		}
		return "", decodeError(err)
	}
	if line == 1 {
		if probe.Kind != journalKindStart {
			return "", fmt.Errorf("the first line must be the start record (kind %q), not %q", journalKindStart, probe.Kind)
		}
		if probe.JournalVersion == nil || *probe.JournalVersion != journalVersion {
			v := "none"
			if probe.JournalVersion != nil {
				v = strconv.Itoa(*probe.JournalVersion)
			}
			by := ""
			if probe.VoxbindVersion != "" {
				by = " (written by voxbind " + Printable(probe.VoxbindVersion) + ")"
			}
			return "", fmt.Errorf("%w %s%s: this voxbind reads journal_version %d", ErrJournalVersion, v, by, journalVersion)
		}
	}
	return probe.Kind, nil
}

// readStart decodes the start record, which only the first line holds:
// one journal records one apply, on the account it names.
func (j *JournalRecords) readStart(line int, text []byte) error {
	if line != 1 {
		return errors.New("a second start record: one journal records one apply")
	}
	if err := journalDecode(journalKindStart, text, &j.Start); err != nil {
		return err
	}
	if j.Start.AccountID <= 0 {
		return fmt.Errorf("account_id %d: must be the positive id of the account the apply acted on", j.Start.AccountID)
	}
	return nil
}

// readIntent decodes an intent, at most one per step, and notes its
// line: the undo plan names it as the source of each restore.
func (j *JournalRecords) readIntent(line int, text []byte, intents map[int]bool) error {
	var in JournalIntent
	if err := journalDecode(journalKindIntent, text, &in); err != nil {
		return err
	}
	if err := journalCheckIntent(&in); err != nil {
		return err
	}
	if intents[in.Step] {
		return fmt.Errorf("a second intent for step %d", in.Step)
	}
	intents[in.Step] = true
	in.Line = line
	j.Intents = append(j.Intents, in)
	return nil
}

// readResult decodes a result, at most one per step and only after its
// step's intent: a result without its intent says nothing undo can use.
func (j *JournalRecords) readResult(text []byte, intents map[int]bool) error {
	var r JournalResult
	if err := journalDecode(journalKindResult, text, &r); err != nil {
		return err
	}
	switch {
	case r.Outcome != StepApplied && r.Outcome != StepFailed && r.Outcome != StepUnknown:
		return fmt.Errorf("outcome %q: must be applied, failed or unknown", r.Outcome)
	case !intents[r.Step]:
		return fmt.Errorf("a result for step %d, which has no intent before it", r.Step)
	}
	if _, dup := j.Results[r.Step]; dup {
		return fmt.Errorf("a second result for step %d", r.Step)
	}
	j.Results[r.Step] = r
	return nil
}

// readEnd decodes the end record: the apply got that far, and nothing
// may follow it.
func (j *JournalRecords) readEnd(text []byte) error {
	var e JournalEnd
	if err := journalDecode(journalKindEnd, text, &e); err != nil {
		return err
	}
	j.End = &e
	return nil
}

// journalDecode decodes one record of kind (start, intent, ...), refusing
// keys it does not know: a key or a value that apply does not write means
// that the journal was edited or damaged.
func journalDecode(kind string, text []byte, v any) error {
	if err := decodeStrict(text, v); err != nil {
		return fmt.Errorf("in the %s record, %w: the journal was edited or damaged", kind, err)
	}
	return nil
}

// journalCheckIntent refuses an intent that no apply writes: undo would
// otherwise plan from nonsense.
func journalCheckIntent(in *JournalIntent) error {
	if in.Step <= 0 {
		return fmt.Errorf("step %d: must be positive", in.Step)
	}
	if in.Registration.ID <= 0 {
		return fmt.Errorf("step %d: registration id %d: must be positive", in.Step, in.Registration.ID)
	}
	for _, t := range []struct {
		name string
		t    *Target
	}{{"before", in.Before}, {"after", in.After}} {
		if err := journalCheckTarget(t.t); err != nil {
			return fmt.Errorf("step %d: %s: %w", in.Step, t.name, err)
		}
	}
	if d := in.Displaces; d != nil {
		switch {
		case d.Registration.ID <= 0 || d.Registration.ID == in.Registration.ID:
			return fmt.Errorf("step %d: displaces registration %d: must be another registration's positive id", in.Step, d.Registration.ID)
		case d.Before == nil || d.Before.User == nil:
			return fmt.Errorf("step %d: displaces registration %d, but its before holds no user to lose", in.Step, d.Registration.ID)
		}
		if err := journalCheckTarget(d.Before); err != nil {
			return fmt.Errorf("step %d: displaces: before: %w", in.Step, err)
		}
	}
	return nil
}

func journalCheckTarget(t *Target) error {
	switch {
	case t == nil:
		return nil
	case t.Application.ID <= 0:
		return fmt.Errorf("application id %d: must be positive", t.Application.ID)
	case t.Rule != nil && t.User != nil:
		return errors.New("both a rule and a user: a registration goes to one or the other")
	case t.Rule != nil && t.Rule.ID <= 0, t.User != nil && t.User.ID <= 0:
		return errors.New("a rule or user id that is not positive")
	}
	return nil
}
