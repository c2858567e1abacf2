package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type panickingCmd struct{}

func (panickingCmd) Run() error { panic("boom") }

// TestRunCommandTurnsPanicsIntoErrors: a bug in a command reaches the user
// as one error line (exit 1 in run), not a stack dump.
func TestRunCommandTurnsPanicsIntoErrors(t *testing.T) {
	var cli struct {
		Boom panickingCmd `cmd:""`
	}
	parser, err := kong.New(&cli)
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse([]string{"boom"})
	if err != nil {
		t.Fatal(err)
	}
	err = runCommand(kctx, newSession(kctx, &Stdio{}))
	if err == nil || !strings.Contains(err.Error(), "internal error: boom") || !strings.Contains(err.Error(), "please report") {
		t.Errorf("runCommand = %v, want an internal error naming the panic", err)
	}
	if d := diagnosticOf(err); d.Code != codeInternal {
		t.Errorf("diagnostic code %q, want %q", d.Code, codeInternal)
	}
}

// testSession is a session on stdio with the log off, for tests that call
// a command's parts directly.
func testSession(stdio *Stdio) *session {
	return &session{stdio: stdio, log: slog.New(slog.DiscardHandler)}
}
