package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/voxbind/voxbind/reconcile"
)

// journalDirEnv names the directory that apply and undo write their
// journals to when --journal is not given.
const journalDirEnv = "VOXBIND_JOURNAL_DIR"

// journalDefaultDir is that directory when the variable is not set,
// relative to the current directory.
var journalDefaultDir = filepath.Join(".voxbind", "journal")

// journalFlags are --journal and --no-journal, which apply and undo take.
type journalFlags struct {
	Journal   string `name:"journal" xor:"journal" placeholder:"FILE" help:"Write the apply journal to FILE, a new file (default: ACCOUNT-TIME.jsonl in $VOXBIND_JOURNAL_DIR, else in .voxbind/journal/)."`
	NoJournal bool   `name:"no-journal" xor:"journal" help:"Write no apply journal (voxbind undo then cannot take this run back)."`
}

// open creates the journal of a run that writes to account, or returns
// nil with --no-journal. It never overwrites a file.
func (f *journalFlags) open(account int64, now time.Time) (*reconcile.Journal, error) {
	switch {
	case f.NoJournal:
		return nil, nil
	case f.Journal != "":
		return reconcile.CreateJournal(f.Journal)
	}
	dir := os.Getenv(journalDirEnv)
	if dir == "" {
		dir = journalDefaultDir
	}
	return reconcile.CreateJournalIn(dir, account, now)
}
