package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestProgressWriterTimes drives the status line on a fake clock: a phase
// with its elapsed time, a retry's wait that gives way to the line it
// covered once over, and the apply's counts with elapsed time, rate and
// ETA; on a pipe none of it is written.
func TestProgressWriterTimes(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, nil}, applyHandStep{2, 2, nil}, applyHandStep{3, 3, nil})
	clock := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	var tty strings.Builder
	pw := NewProgressWriter(&tty, true)
	pw.now = func() time.Time { return clock }
	step := func(i int) StepEvent {
		return StepEvent{Step: p.Changes[i], Outcome: StepOutcome{Step: i + 1, Status: StepApplied}, Done: i + 1, Total: 4, Applied: i + 1}
	}

	pw.Phase("Reading account 1234567")
	clock = clock.Add(2 * time.Second)
	pw.Refresh()
	pw.Wait("Waiting 1.5s before retrying GetUsers (attempt 2): the API is limiting the request rate", 1500*time.Millisecond)
	clock = clock.Add(2 * time.Second)
	pw.Refresh() // the wait is over: the phase again
	pw.StartApply()
	clock = clock.Add(500 * time.Millisecond)
	pw.Step(step(0)) // under a second: no rate yet
	clock = clock.Add(1500 * time.Millisecond)
	pw.Step(step(1)) // 2 steps in 2s: 1.0 steps/s, 2 left
	clock = clock.Add(65 * time.Second)
	pw.Refresh()
	pw.Finish()

	want := "Reading account 1234567… 0s" +
		"\r\x1b[KReading account 1234567… 2s" +
		"\r\x1b[KWaiting 1.5s before retrying GetUsers (attempt 2): the API is limiting the request rate" +
		"\r\x1b[KReading account 1234567… 4s" +
		"\r\x1b[K[1/4] applied 1, failed 0, skipped 0" +
		"\r\x1b[K[2/4] applied 2, failed 0, skipped 0 · 2s · 1.0 steps/s · about 2s left" +
		"\r\x1b[K[2/4] applied 2, failed 0, skipped 0 · 1m07s · 0.03 steps/s · about 1m07s left\n"
	if diff := cmp.Diff(want, tty.String()); diff != "" {
		t.Errorf("terminal (-want +got):\n%s", diff)
	}

	var plain strings.Builder
	pw = NewProgressWriter(&plain, false)
	pw.Phase("Reading account 1234567")
	pw.Wait("Waiting 1s", time.Second)
	pw.Refresh()
	pw.Step(step(0))
	pw.Finish()
	if want := "step 1: bind r000@pbx.example.com (101): applied\n"; plain.String() != want {
		t.Errorf("plain = %q, want %q", plain.String(), want)
	}
}

// TestProgressWriterPhaseCleared: a phase that ends without an apply
// leaves nothing on the screen.
func TestProgressWriterPhaseCleared(t *testing.T) {
	var tty strings.Builder
	pw := NewProgressWriter(&tty, true)
	pw.Phase("Reading account 1")
	pw.Finish()
	if want := "Reading account 1… 0s\r\x1b[K"; tty.String() != want {
		t.Errorf("got %q, want %q", tty.String(), want)
	}
}

func TestProgressDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1499 * time.Millisecond: "1s", 59 * time.Second: "59s", 65 * time.Second: "1m05s",
		3600 * time.Second: "1h00m", 2*time.Hour + 3*time.Minute + 40*time.Second: "2h03m",
	} {
		if got := progressDuration(d); got != want {
			t.Errorf("progressDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
