package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// journalSyncDelay is how long Upcoming waits before it syncs in the
// background: the steps told of together (a round of calls ending) then
// share one sync, made once that round's requests are sent.
const journalSyncDelay = 2 * time.Millisecond

// journalVersion is the journal_version of the apply journals this
// voxbind writes and reads.
const journalVersion = 1

// The kinds of journal lines.
const (
	journalKindStart  = "start"
	journalKindIntent = "intent"
	journalKindResult = "result"
	journalKindEnd    = "end"
)

// journalTimeLayout is how the journal writes times: RFC 3339, UTC, to
// the second.
const journalTimeLayout = "2006-01-02T15:04:05Z07:00"

// JournalStart is the first line of an apply journal.
type JournalStart struct {
	Kind           string `json:"kind"` // "start"
	JournalVersion int    `json:"journal_version"`
	AccountID      int64  `json:"account_id"`
	VoxbindVersion string `json:"voxbind_version"`
	Started        string `json:"started"` // RFC 3339
	PlanSteps      int    `json:"plan_steps"`
}

// JournalIntent is written, and synced to disk, before a step's call is
// sent: what the call will do, and what it will take from another
// registration. It may be written well before the call, and the call may
// never be sent (the apply stopped first): an intent says a call may have
// been sent, never that it was.
type JournalIntent struct {
	Kind         string          `json:"kind"` // "intent"
	Step         int             `json:"step"`
	Registration RegistrationRef `json:"registration"`
	Before       *Target         `json:"before"`
	After        *Target         `json:"after"`
	// Displaces is the registration this call takes the user from (a side
	// effect of the plan), with its whole target before; nil for none.
	Displaces *JournalDisplaced `json:"displaces"`

	// Line is the line of the journal the intent was read from (1-based);
	// 0 for one not read from a file.
	Line int `json:"-"`
}

// JournalDisplaced is a registration that a step's call takes a user from.
type JournalDisplaced struct {
	Registration RegistrationRef `json:"registration"`
	Before       *Target         `json:"before"`
}

// JournalResult is written after a step's call ended.
type JournalResult struct {
	Kind    string        `json:"kind"` // "result"
	Step    int           `json:"step"`
	Outcome StepStatus    `json:"outcome"` // applied, failed or unknown
	Error   *JournalError `json:"error"`   // nil when applied
}

// JournalError is the error of a failed or unknown call. Code is the
// API's error code, 0 when the call failed without one (the network, a
// lost answer).
type JournalError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// JournalDirEnv is the environment variable that names the directory
// apply and undo write their journals to when --journal is not given
// (a fleet run's only way to put them elsewhere).
const JournalDirEnv = "VOXBIND_JOURNAL_DIR"

// JournalWriteError is matched (errors.As) by the error of a journal
// that could no longer be written to disk (the disk is full, the file
// too large): it stops an apply before its next call, and the way on is
// to make room for the journal first (WayOn).
type JournalWriteError struct {
	Path string
	Op   string // "write", "sync to disk"
	Err  error
}

func (e *JournalWriteError) Error() string {
	return "journal " + e.Path + ": " + e.Op + ": " + e.Err.Error()
}
func (e *JournalWriteError) Unwrap() error { return e.Err }

// JournalEnd is the last line of a journal whose apply ran to its end
// (interrupted or not); a journal without one was cut short by a crash.
type JournalEnd struct {
	Kind        string `json:"kind"` // "end"
	Finished    string `json:"finished"`
	Interrupted bool   `json:"interrupted"` // stopped early, whatever stopped it (Stopped says): Ctrl-C, --timeout, the breaker, "try later", a refused key
	// Stopped says why it stopped early, as the summary does
	// (StopReason): "interrupted", "stopped: the API is unreachable since
	// 03:12:09"; "" when it ran to the end.
	Stopped string `json:"stopped,omitempty"`
	// Verified is nil when the account was not read back, else whether
	// every applied step was found in place.
	Verified *bool          `json:"verified"`
	Summary  JournalSummary `json:"summary"`
}

// JournalSummary counts the outcomes of an apply's steps.
type JournalSummary struct {
	Applied    int `json:"applied"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	Unknown    int `json:"unknown"`
	NotStarted int `json:"not_started"`
}

// Journal is an apply journal being written: one JSON object per line.
// Its guarantee: every call sent has its intent on disk (written and
// synced) before it. An intent does not imply a call: intents are written
// ahead, and a call may never follow (the apply stopped first). A result
// goes to disk with a later sync, the end with its own; so that after a
// crash or kill -9 the file names every call that may have been sent. Its
// Upcoming, Intent and Result methods are the ApplyOptions hooks (Hook
// sets them).
//
// The disk is kept off the calls' path: Apply tells Upcoming of the
// steps next in line while the calls in flight run, and their intents
// are written and synced in the background then, so that when a slot
// frees, the next step's intent is usually on disk already and Intent
// returns at once. One sync puts all the lines written so far on disk,
// and whoever waits for it shares it (group commit). The first write or
// sync error sticks: every later write returns it, so that Intent stops
// the apply before a call that could not be recorded.
type Journal struct {
	path string
	f    *os.File
	// displaces is, by step number, the registration a step's call takes
	// a user from, with its target when the plan was made. Set by Start,
	// read only after.
	displaces map[int]*JournalDisplaced
	// noSync leaves the syncs out: only for tests that make thousands of
	// journals and crash them by cutting the file, not the machine.
	noSync bool
	// madeDirs are the directories CreateJournalIn made for it, deepest
	// first: Discard removes them.
	madeDirs []string

	mu      sync.Mutex
	synced  *sync.Cond // broadcast when a sync ends
	written int64      // lines written so far
	durable int64      // lines known to be on disk
	syncing bool       // a sync is running (without mu)
	closed  bool
	// syncSoon: a background sync is due (Upcoming).
	syncSoon bool
	intents  map[int]int64 // step → the line of its intent, once written
	err      error
	buf      bytes.Buffer
}

// CreateJournal creates the journal file at path (mode 0600) in a
// directory that exists: a --journal FILE names where the user wants it,
// and a missing directory is more likely a typo than a wish. An existing
// file is never overwritten, since it may be the only record of an
// earlier apply: the error then wraps fs.ErrExist (a missing directory,
// fs.ErrNotExist).
func CreateJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, &journalPathError{fmt.Sprintf("journal %s exists already, and voxbind never overwrites a journal (it may be the only record of an earlier apply)", path), fs.ErrExist}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &journalPathError{fmt.Sprintf("create the journal %s: directory %s does not exist", path, filepath.Dir(path)), fs.ErrNotExist}
	case err != nil:
		return nil, fmt.Errorf("create the journal: %w", err)
	}
	if err := journalSyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create the journal %s: %w", path, err)
	}
	j := &Journal{path: path, f: f, intents: map[int]int64{}}
	j.synced = sync.NewCond(&j.mu)
	return j, nil
}

// journalPathError says what is wrong with a journal's path; callers
// tell which with errors.Is (fs.ErrExist, fs.ErrNotExist).
type journalPathError struct {
	msg string
	is  error
}

func (e *journalPathError) Error() string { return e.msg }
func (e *journalPathError) Unwrap() error { return e.is }

// CreateJournalIn creates a journal named after the account and the time,
// <account_id>-<UTC time as 20261128T061500Z>.jsonl, in dir, creating dir
// and its missing parents (mode 0700): the journals' home, which the user
// did not name file by file. Should that name be taken (two applies
// within one second), it adds -2, -3, ... to the time.
func CreateJournalIn(dir string, accountID int64, now time.Time) (*Journal, error) {
	made, err := journalMkdirAll(dir)
	if err != nil {
		return nil, fmt.Errorf("create the journal directory: %w", err)
	}
	base := strconv.FormatInt(accountID, 10) + "-" + now.UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name += "-" + strconv.Itoa(n)
		}
		j, err := CreateJournal(filepath.Join(dir, name+".jsonl"))
		if err == nil {
			j.madeDirs = made
			return j, nil
		}
		if !errors.Is(err, fs.ErrExist) || n == 100 {
			journalRemoveDirs(made)
			return nil, err
		}
	}
}

// journalMkdirAll creates dir and its missing parents with mode 0700, and
// returns those it created, dir first, so that Discard can remove them.
func journalMkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		journalRemoveDirs(missing)
		return nil, err
	}
	return missing, nil
}

// journalRemoveDirs removes the directories dirs, deepest first, as long
// as they are empty.
func journalRemoveDirs(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}

// journalSyncDir makes a new directory entry durable.
func journalSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// Discard closes and removes a journal that was created but never
// started, with the directories CreateJournalIn made for it (when empty):
// the run went no further than its question. A journal with a line in it
// is a record and stays.
func (j *Journal) Discard() error {
	j.mu.Lock()
	written := j.written
	j.mu.Unlock()
	if err := j.Close(); err != nil || written > 0 {
		return err
	}
	if err := os.Remove(j.path); err != nil {
		return fmt.Errorf("remove the unused journal: %w", err)
	}
	journalRemoveDirs(j.madeDirs)
	return nil
}

// Path is where the journal is written.
func (j *Journal) Path() string { return j.path }

// Start writes the start line for the apply of p, and waits until it is
// on disk. current is the account as read before the apply: each intent
// records the whole target, read there, of the registration its step
// displaces (the plan's side effects name only the user it loses).
func (j *Journal) Start(p *Plan, current *Current, voxbindVersion string, started time.Time) error {
	regs := registrationsByID(current)
	j.displaces = make(map[int]*JournalDisplaced, len(p.SideEffects))
	for _, e := range p.SideEffects {
		// A saved plan's side effect whose registration is gone was
		// refused as stale; a plan just made names only what it read.
		if r, ok := regs[e.Registration.ID]; ok {
			j.displaces[e.CausedByStep] = &JournalDisplaced{Registration: r.RegistrationRef, Before: r.Target}
		}
	}
	return j.writeDurable(JournalStart{
		Kind:           journalKindStart,
		JournalVersion: journalVersion,
		AccountID:      p.AccountID,
		VoxbindVersion: voxbindVersion,
		Started:        started.UTC().Format(journalTimeLayout),
		PlanSteps:      len(p.Changes),
	})
}

// Hook sets the journal's hooks on opts: Upcoming, BeforeCall (Intent)
// and Progress (Result). A caller with hooks of its own calls the
// journal's first.
func (j *Journal) Hook(opts *ApplyOptions) {
	opts.Upcoming, opts.BeforeCall, opts.Progress = j.Upcoming, j.Intent, j.Result
}

// Upcoming writes the intent of step s, whose call may be sent soon, and
// puts it on disk in the background. It is an ApplyOptions.Upcoming: it
// does not wait for the disk; an error sticks and stops the apply at the
// next Intent.
func (j *Journal) Upcoming(s Step) {
	if _, err := j.intent(s); err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.syncSoon && !j.closed {
		j.syncSoon = true
		time.AfterFunc(journalSyncDelay, j.syncBackground)
	}
}

// syncBackground puts every line written so far on disk, for Upcoming.
func (j *Journal) syncBackground() {
	j.mu.Lock()
	j.syncSoon = false
	n := j.written
	j.mu.Unlock()
	j.waitDurable(n)
}

// Intent records that step s's call is about to be sent, unless Upcoming
// did; it returns once the line, and every line before it, is on disk.
// It is an ApplyOptions.BeforeCall (safe for concurrent use): an error
// stops the apply before the call.
func (j *Journal) Intent(s Step) error {
	n, err := j.intent(s)
	if err != nil {
		return err
	}
	return j.waitDurable(n)
}

// intent writes step s's intent, once, and returns its line.
func (j *Journal) intent(s Step) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n, ok := j.intents[s.Step]; ok {
		return n, j.err
	}
	n, err := j.writeLocked(JournalIntent{
		Kind:         journalKindIntent,
		Step:         s.Step,
		Registration: s.Registration,
		Before:       s.Before,
		After:        s.After,
		Displaces:    j.displaces[s.Step],
	})
	if err == nil {
		j.intents[s.Step] = n
	}
	return n, err
}

// Result records how a step's call ended: applied, failed or unknown.
// Steps that were skipped or never started made no call and get no line.
// It does not wait for the disk: the next intent's sync, or the end's,
// carries the line there (undo does not rely on it: it reads the
// account). Pass it every ApplyOptions.Progress event; a write error
// sticks and stops the apply at the next Intent.
func (j *Journal) Result(ev StepEvent) {
	o := ev.Outcome
	switch o.Status {
	case StepApplied, StepFailed, StepUnknown:
	default:
		return
	}
	r := JournalResult{Kind: journalKindResult, Step: ev.Step.Step, Outcome: o.Status}
	if o.Status != StepApplied {
		r.Error = &JournalError{Code: journalErrorCode(o.Err), Message: progressErr(o.Err)}
	}
	j.write(r) // the error sticks
}

// apiCoder is a Bind error that carries the API's error code (the
// Voximplant client's *APIError).
type apiCoder interface{ APICode() int }

func journalErrorCode(err error) int {
	var c apiCoder
	if errors.As(err, &c) {
		return c.APICode()
	}
	return 0
}

// End writes the end line, how the apply ended and whether it was
// verified (nil: the account was not read back), and waits until the
// journal is on disk.
func (j *Journal) End(res *ApplyResult, verified *bool, finished time.Time) error {
	return j.writeDurable(JournalEnd{
		Kind:        journalKindEnd,
		Finished:    finished.UTC().Format(journalTimeLayout),
		Interrupted: res.Stopped != nil,
		Stopped:     stopReason(res.Stopped),
		Verified:    verified,
		Summary: JournalSummary{
			Applied: res.Applied, Failed: res.Failed, Skipped: res.Skipped,
			Unknown: res.Unknown, NotStarted: res.NotStarted,
		},
	})
}

// stopReason is StopReason, "" when the apply was not stopped.
func stopReason(stopped error) string {
	if stopped == nil {
		return ""
	}
	return StopReason(stopped)
}

// Close closes the file; it returns the first error the journal met.
func (j *Journal) Close() error {
	j.mu.Lock()
	j.closed = true // a background wait left over syncs nothing now
	for j.syncing {
		j.synced.Wait()
	}
	j.mu.Unlock()
	err := j.f.Close()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// writeDurable writes one line and waits until it is on disk.
func (j *Journal) writeDurable(v any) error {
	line, err := j.write(v)
	if err != nil {
		return err
	}
	return j.waitDurable(line)
}

// write appends one line, in one write, and returns its number.
func (j *Journal) write(v any) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writeLocked(v)
}

// writeLocked is write, with j.mu held.
func (j *Journal) writeLocked(v any) (int64, error) {
	if j.err != nil {
		return 0, j.err
	}
	j.buf.Reset()
	enc := NewJSONEncoder(&j.buf)
	if err := enc.Encode(v); err != nil { // Encode ends the line with \n
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
		return 0, j.err
	}
	if _, err := j.f.Write(j.buf.Bytes()); err != nil {
		j.err = &JournalWriteError{Path: j.path, Op: "write", Err: err}
		return 0, j.err
	}
	j.written++
	return j.written, nil
}

// waitDurable returns once line n is on disk. The first waiter to find
// no sync running runs one, for every line written so far; the others
// wait for it, and run the next one if their line came too late for it.
func (j *Journal) waitDurable(n int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.durable < n && j.err == nil {
		if j.closed {
			return errors.New("journal " + j.path + " is closed")
		}
		if j.syncing {
			j.synced.Wait()
			continue
		}
		j.syncing = true
		upTo := j.written
		j.mu.Unlock()
		var err error
		if !j.noSync {
			err = j.f.Sync()
		}
		j.mu.Lock()
		j.syncing = false
		if err != nil {
			j.err = &JournalWriteError{Path: j.path, Op: "sync to disk", Err: err}
		} else {
			j.durable = max(j.durable, upTo)
		}
		j.synced.Broadcast()
	}
	return j.err
}
