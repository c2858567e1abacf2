package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
)

// How a run ends early: the first SIGINT or SIGTERM cancels the run's
// context with errInterrupted (reads stop at once; apply starts no new
// step and waits a little for the calls in flight); the second closes
// interrupts.quit (apply stops waiting and prints its summary) and, a
// moment later, has main end the process with status 130 whatever it is
// doing (quitNow).
// --timeout ends the context with a timeoutError instead: the same stop,
// but exit 1.

// quitDelay is how long the second signal leaves the command to print
// its summary before the process ends.
const quitDelay = time.Second

// quitNow gets the exit status 130 a moment (quitDelay) after the second
// signal: main then ends the process, whatever the command is doing.
var quitNow = make(chan int, 1)

// interrupts is how a command hears the second signal.
type interrupts struct {
	quit chan struct{} // closed by the second signal
}

// errInterrupted is the cause of the run's context after the first signal.
var errInterrupted error = interruptError{}

type interruptError struct{}

func (interruptError) Error() string { return "interrupted" }

// Is makes an interrupt a cancellation for errors.Is.
func (interruptError) Is(target error) bool { return target == context.Canceled }

// signalContext returns the run's context, cancelled by the first SIGINT
// or SIGTERM, and the interrupts the second one closes. stop releases the
// signals.
func signalContext() (ctx context.Context, intr *interrupts, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	intr = &interrupts{quit: make(chan struct{})}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		select {
		case <-ch:
			cancel(errInterrupted)
		case <-finished:
			return
		}
		select {
		case <-ch:
		case <-finished:
			return
		}
		close(intr.quit)
		time.Sleep(quitDelay)
		select {
		case quitNow <- 130:
		default:
		}
	}()
	return ctx, intr, func() { signal.Stop(ch); close(finished); cancel(nil) }
}

// interrupted is the exit status of a run whose first signal came: 130.
// A command that printed how it ended (apply's summary) returns nil or an
// exit status with nothing more to say; for the others, say so.
func interrupted(stderr io.Writer, err error) int {
	var ee *exitError
	switch {
	case err == nil || errors.As(err, &ee) && (ee.code == 130 || ee.err == nil):
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "Interrupted.")
	default:
		fmt.Fprintf(stderr, "voxbind: %v\nInterrupted.\n", err)
	}
	return 130
}

// timeoutError is the cause of the run's context once --timeout passed.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "the --timeout of " + e.d.String() + " has passed" }

// Is makes the timeout a deadline for errors.Is.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// endedWhile is the error of a step that ctx ended, the reason first:
// "the --timeout of 10s has passed while reading the spec file
// voxbind.yaml", "interrupted while …". It wraps ctx's cause.
func endedWhile(ctx context.Context, doing string) error {
	return fmt.Errorf("%w while %s", context.Cause(ctx), doing)
}

// timedOutWhile puts the --timeout first in err when it is what ended
// the step doing: "the --timeout of 1s has passed while reading account
// 1234567", rather than the call it cut off ("read account info:
// GetAccountInfo: the --timeout of 1s has passed"). Any other error
// comes back as it is.
func timedOutWhile(err error, doing string) error {
	var te timeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("%w while %s", te, doing)
	}
	return err
}

// withTimeout bounds the whole run by --timeout d (0 = no bound).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, error) {
	switch {
	case d < 0:
		return nil, nil, fmt.Errorf("--timeout %s: give a positive duration such as 30s or 10m, or 0 for no limit", d)
	case d == 0:
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, timeoutError{d})
	return ctx, cancel, nil
}

// stoppingLine is what apply says the moment it stops starting steps.
func stoppingLine(cause error, inFlight int) string {
	wait := ""
	if inFlight > 0 {
		wait = fmt.Sprintf("waiting for %s in flight (at most %s)", english.Plural(inFlight, "call"), reconcile.DefaultGrace)
	}
	if errors.Is(cause, context.Canceled) {
		if wait == "" {
			return "Interrupted."
		}
		return "Interrupted: " + wait + "; press Ctrl-C again to quit now"
	}
	line := "voxbind: stopped: " + cause.Error() + "; no more steps start"
	if wait != "" {
		line += "; " + wait
	}
	return line
}

// lockedWriter serialises writes to one stream from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
