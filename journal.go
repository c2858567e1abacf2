package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/voxbind/voxbind/reconcile"
)

// journalDirEnv names the directory that apply and undo write their
// journals to when --journal is not given.
const journalDirEnv = reconcile.JournalDirEnv

// journalDefaultDir is that directory when the variable is not set,
// relative to the current directory.
var journalDefaultDir = filepath.Join(".voxbind", "journal")

// journalFlags are --journal and --no-journal, which apply and undo take.
type journalFlags struct {
	Journal   string `name:"journal" xor:"journal" placeholder:"FILE" help:"Write the apply journal to FILE, a new file in a directory that exists (default: ACCOUNT-TIME.jsonl in $VOXBIND_JOURNAL_DIR, else in .voxbind/journal/)."`
	NoJournal bool   `name:"no-journal" xor:"journal" help:"Write no apply journal (voxbind undo then cannot take this run back)."`
}

// journalFix is the hint for a journal that cannot be created.
const journalFix = "give --journal a new file in a writable directory, or --no-journal to apply without one"

// journalFleetFix is journalFix for a fleet run, which takes no --journal
// FILE (it writes one journal per account).
var journalFleetFix = fmt.Sprintf("set %s to a directory voxbind can create and write in, or give --no-journal to apply without journals", journalDirEnv)

// check refuses, before anything is read, a --journal FILE that exists
// already (a symbolic link too, even one to nothing: a journal is a new
// file, never written through a link) or whose directory does not exist,
// and "-", which by custom is stdout; create catches the rest.
func (f *journalFlags) check() error {
	switch f.Journal {
	case "":
		return nil
	case "-":
		return failure(codeJournal, `--journal - names no file: voxbind does not take "-" for stdout, and a journal is a file that undo reads; nothing was changed`,
			"give a new file name, or leave --journal out for one in $"+journalDirEnv+", else "+journalDefaultDir)
	}
	if fi, err := os.Lstat(f.Journal); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return journalLinkFailure(f.Journal)
	} else if err == nil {
		return failure(codeJournal, fmt.Sprintf("--journal %s exists already, and voxbind never overwrites a journal (it may be the only record of an earlier apply); nothing was changed", reconcile.Printable(f.Journal)),
			"give a new file name")
	}
	dir := filepath.Dir(f.Journal)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return failure(codeJournal, fmt.Sprintf("--journal %s: directory %s does not exist; nothing was changed", reconcile.Printable(f.Journal), reconcile.Printable(dir)),
			"create it first, or give a file in a directory that exists")
	case err == nil && !fi.IsDir():
		return failure(codeJournal, fmt.Sprintf("--journal %s: %s is not a directory; nothing was changed", reconcile.Printable(f.Journal), reconcile.Printable(dir)), journalFix)
	}
	return nil
}

// journalLinkFailure refuses a --journal FILE that is a symbolic link,
// saying where it points and, for a link to nothing in a directory that
// exists, the path to give instead to put the journal there.
func journalLinkFailure(path string) error {
	const never = "and voxbind writes a journal only as a new file, never through a link; nothing was changed"
	target, err := os.Readlink(path)
	if err != nil {
		return failure(codeJournal, fmt.Sprintf("--journal %s is a symbolic link, %s", reconcile.Printable(path), never), "give a new file name")
	}
	resolved := target
	if !filepath.IsAbs(resolved) {
		resolved = filepath.Join(filepath.Dir(path), target)
	}
	if _, err := os.Lstat(resolved); err == nil {
		return failure(codeJournal, fmt.Sprintf("--journal %s is a symbolic link (to %s), %s", reconcile.Printable(path), reconcile.Printable(target), never), "give a new file name")
	}
	problem := fmt.Sprintf("--journal %s is a symbolic link (to %s, which does not exist), %s", reconcile.Printable(path), reconcile.Printable(target), never)
	// The target is worth offering only where a journal can be created:
	// in a directory that exists (check would refuse it otherwise).
	if fi, err := os.Stat(filepath.Dir(resolved)); err != nil || !fi.IsDir() {
		return failure(codeJournal, problem, "give a new file name (the link's target is in no directory that exists)")
	}
	return failure(codeJournal, problem, "give a new file name, or the link's target itself: --journal "+pasted(resolved))
}

// create creates the journal of a run that will write to account, or
// returns nil with --no-journal; it never overwrites a file. A --journal
// FILE goes in a directory that exists; the default directory is created.
// apply and undo create it before they ask (askWithJournal), so that a
// journal that cannot be created is refused before the question. fleet is
// set in a fleet run, whose hints cannot offer --journal FILE.
func (f *journalFlags) create(account int64, now time.Time, fleet bool) (*reconcile.Journal, error) {
	var j *reconcile.Journal
	var err error
	fromEnv := false // the directory is VOXBIND_JOURNAL_DIR's
	switch {
	case f.NoJournal:
		return nil, nil
	case f.Journal != "":
		j, err = reconcile.CreateJournal(f.Journal)
	default:
		dir := os.Getenv(journalDirEnv)
		if dir == "" {
			dir = journalDefaultDir
		} else {
			fromEnv = true
		}
		j, err = reconcile.CreateJournalIn(dir, account, now)
	}
	fix, noJournal := journalFix, journalFix
	if fleet {
		fix, noJournal = journalFleetFix, "give --no-journal to apply without journals"
	}
	switch {
	case err == nil:
		return j, nil
	case fromEnv:
		return nil, &codedError{code: codeJournal, msg: fmt.Sprintf("%v (from %s); nothing was changed", err, journalDirEnv), err: err,
			fix: fmt.Sprintf("set %s to a directory voxbind can create and write in, or unset it for the default %s; or %s", journalDirEnv, journalDefaultDir, noJournal)}
	case errors.Is(err, fs.ErrExist) && !fleet:
		return nil, &codedError{code: codeJournal, msg: err.Error() + "; nothing was changed", fix: "give a new file name", err: err}
	case errors.Is(err, fs.ErrNotExist) && f.Journal != "":
		return nil, &codedError{code: codeJournal, msg: err.Error() + "; nothing was changed", fix: "create it first, or give a file in a directory that exists", err: err}
	}
	return nil, &codedError{code: codeJournal, msg: err.Error() + "; nothing was changed", fix: fix, err: err}
}

// journalDiscard removes a journal created for a run that went no further
// than its question (nil: none).
func journalDiscard(s *session, j *reconcile.Journal) {
	if j == nil {
		return
	}
	if err := j.Discard(); err != nil {
		s.warn(codeJournal, err.Error(), "")
	}
}

// askWithJournal creates the journal of a run that will write to account
// (nil with --no-journal) and then, unless autoApprove, asks question: a
// journal that cannot be created is refused before anyone answers, and
// one whose run goes no further is removed again. who is the command
// asking.
func askWithJournal(ctx context.Context, s *session, f *journalFlags, account int64, autoApprove bool, question string, who asker) (*reconcile.Journal, error) {
	j, err := f.create(account, time.Now(), false)
	if err != nil {
		return nil, err
	}
	if !autoApprove {
		if err := applyConfirm(ctx, s.stdio, question, who); err != nil {
			journalDiscard(s, j)
			return nil, err
		}
	}
	return j, nil
}
