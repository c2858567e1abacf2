package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// session is one run of a command: what its parts share. run makes it
// once the command line is parsed and binds it, so that a command's Run
// can take it.
type session struct {
	stdio   *Stdio
	log     *slog.Logger // off unless the command takes --log-level and it is set
	debug   bool         // the debug level is on: a panic also prints its stack
	diag    report
	start   time.Time
	given   map[string]bool // the flags given on the command line (not from the environment), by name
	command string          // the command run, as 'voxbind help' takes it: "plan", "sandbox serve"
	names   []string        // the words of the command line (and file variables) that hold a control character

	progress *reconcile.ProgressWriter // made by progressLine
}

// newSession makes the session of the command kctx selected, with the
// log its LogFlags ask for.
func newSession(kctx *kong.Context, stdio *Stdio) *session {
	s := &session{stdio: stdio, log: slog.New(slog.DiscardHandler), start: time.Now(), given: map[string]bool{}}
	var command []string
	for _, p := range kctx.Path {
		if p.Flag != nil && !p.Resolved {
			s.given[p.Flag.Name] = true
		}
		if p.Command != nil {
			command = append(command, p.Command.Name)
		}
	}
	s.command = strings.Join(command, " ")
	s.names = controlNames(append(kctx.Args, os.Getenv(voximplant.CredentialsEnv), os.Getenv(journalDirEnv)))
	if node := kctx.Selected(); node != nil && node.Target.CanAddr() {
		if lf, ok := node.Target.Addr().Interface().(interface{ logFlags() *LogFlags }); ok {
			s.log, s.debug = newLogger(stdio.Err, lf.logFlags())
			s.log.Info("start", slog.String("command", kctx.Command()), slog.String("version", version))
		}
	}
	return s
}

// newLogger is the log f asks for, on w.
func newLogger(w io.Writer, f *LogFlags) (log *slog.Logger, debug bool) {
	level := f.LogLevel
	if f.Debug {
		level = "debug"
	}
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return slog.New(slog.DiscardHandler), false
	}
	opts := &slog.HandlerOptions{Level: lv}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv == slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv == slog.LevelDebug
}

// logging reports whether any log record is written: the progress line
// is then given as plain lines, which records cannot tear.
func (s *session) logging() bool {
	return s.log.Enabled(context.Background(), slog.LevelError)
}

// progressLine is the run's progress writer on stderr, made on first use:
// one line rewritten in place on a terminal (unless log records share
// stderr), plain lines elsewhere.
func (s *session) progressLine() *reconcile.ProgressWriter {
	if s.progress == nil {
		s.progress = reconcile.NewProgressWriter(s.stdio.Err, applyStderrIsTerminal(s.stdio.Err) && !s.logging())
	}
	return s.progress
}

// phase shows text on the status line, with the time it takes, until
// done is called.
func (s *session) phase(text string) (done func()) {
	p := s.progressLine()
	p.Phase(text)
	stop := s.ticking()
	return func() {
		stop()
		p.Finish()
	}
}

// ticking draws the status line again every second, on a terminal, until
// stop is called: the elapsed time moves while nothing else does.
func (s *session) ticking() (stop func()) {
	p := s.progressLine()
	if !p.Terminal() {
		return func() {}
	}
	t := time.NewTicker(time.Second)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-t.C:
				p.Refresh()
			case <-quit:
				return
			}
		}
	})
	return func() {
		t.Stop()
		close(quit)
		wg.Wait()
	}
}

// warn tells the person on stderr, records a warning diagnostic, and logs
// it.
func (s *session) warn(code, msg, fix string) { s.warnAt(spec.Pos{}, code, msg, fix) }

// warnAt warns about something at pos in the spec.
func (s *session) warnAt(pos spec.Pos, code, msg, fix string) {
	line := "voxbind: warning: " + msg
	if pos != (spec.Pos{}) {
		line = "voxbind: warning: " + pos.Short() + ": " + msg
	}
	if fix != "" {
		line += "; " + fix
	}
	line = reconcile.Printable(line) // one line, whatever the names in it hold
	if s.progress != nil {
		s.progress.Note(line)
	} else {
		fmt.Fprintln(s.stdio.Err, line)
	}
	s.diag.add(Diagnostic{Severity: "warning", File: pos.File, Line: pos.Line, Col: pos.Col, Code: code, Message: msg, Fix: fix})
	s.log.Warn(msg, slog.String("code", code))
}

// shown is text for stderr: the file names of the command line escaped
// wherever it names them (escapeNames), then the control characters of
// each of its lines (the package's shown).
func (s *session) shown(text string) string { return shown(escapeNames(text, s.names)) }

// specErrors prints spec.Errors one per line (file:line:col: message;
// fix), records each as a diagnostic and returns the error that makes the
// command exit 1; other errors are returned as they are.
func (s *session) specErrors(err error) error {
	var errs spec.Errors
	if !errors.As(err, &errs) {
		return err
	}
	for _, e := range errs {
		fmt.Fprintln(s.stdio.Err, reconcile.Printable(e.Error())) // one line each
		s.diag.add(specDiagnostic(e))
	}
	return &exitError{code: 1, err: fmt.Errorf("%s in the spec", english.Plural(len(errs), "problem")), reported: true}
}

// finish ends the run: it says how the command ended on stderr, writes
// the diagnostics document a JSON command owes, logs the end, and
// returns the exit status. ctx is the run's signal context.
func (s *session) finish(ctx context.Context, err error) int {
	var code int
	var ee *exitError
	if ctx.Err() != nil && !(errors.As(err, &ee) && ee.endedFirst) {
		code = interrupted(s.stdio.Err, err)
		if err == nil || exitStatus(err) != 130 {
			err = errInterrupted
		}
	} else {
		code = exitStatus(err)
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.err == nil:
		default:
			fmt.Fprintf(s.stdio.Err, "voxbind: %s\n", s.shown(escapedError(err)))
		}
	}
	if err != nil {
		var ce *codedError
		if errors.As(err, &ce) && ce.code == codeUsage && ce.fix == "" && s.command != "" {
			// A flag out of its range, whose message says the values it
			// takes: the diagnostic's fix is the command's help, as for
			// a line kong cannot parse (the line on stderr is said).
			ce.fix = "see voxbind help " + s.command
		}
		s.diag.fail(err)
		if err := s.diag.writeDocument(s.stdio.Out); err != nil {
			fmt.Fprintf(s.stdio.Err, "voxbind: write the diagnostics: %v\n", err)
		}
		if code != 2 {
			s.log.Error("failed", slog.String("error", err.Error()), slog.Int("exit_code", code))
		}
	}
	s.log.Info("end", slog.Int("exit_code", code), slog.Duration("duration", time.Since(s.start)))
	return code
}
