// Package tbrecord is a testing.TB for testing test helpers: it records
// the failures a helper reports instead of failing the test that runs it.
package tbrecord

import (
	"fmt"
	"runtime"
	"testing"
)

// Record is what a helper reported through the TB that Run gave it.
type Record struct {
	testing.TB // nil: a method not below panics

	Ended  bool     // Fatal or Fatalf was called, which ended the helper
	Errors []string // the failures' messages, in order
	Logs   []string // the messages of Log and Logf

	failed bool
}

// Run calls fn with a recording TB in a goroutine of its own, so that
// Fatal ends fn as it ends a test, and returns what fn reported.
func Run(fn func(testing.TB)) *Record {
	r := &Record{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func (r *Record) Helper() {}

// Failed tells whether Error, Errorf, Fatal or Fatalf was called.
func (r *Record) Failed() bool { return r.failed }

func (r *Record) Log(args ...any) { r.Logs = append(r.Logs, fmt.Sprint(args...)) }

func (r *Record) Logf(format string, args ...any) {
	r.Logs = append(r.Logs, fmt.Sprintf(format, args...))
}

func (r *Record) Error(args ...any) {
	r.failed = true
	r.Errors = append(r.Errors, fmt.Sprint(args...))
}

func (r *Record) Errorf(format string, args ...any) {
	r.failed = true
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

func (r *Record) Fatal(args ...any) {
	r.Error(args...)
	r.Ended = true
	runtime.Goexit()
}

func (r *Record) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.Ended = true
	runtime.Goexit()
}
