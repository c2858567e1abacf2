package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a spec, at the place it was written.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats the problem as file:line:col: message.
func (e *Error) Error() string {
	if e.Pos == (Pos{}) {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Errorf makes an Error at pos. Packages that find problems only with the
// live account (unknown names, ambiguous registrations) use it so that their
// errors read and sort like the loader's.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Errors is every problem of a run; a user fixes them all in one pass.
// Collect with append, then return Err().
type Errors []*Error

// Error prints one problem per line, sorted by file, line and column
// (whether or not Err made e).
func (e Errors) Error() string {
	s := make(Errors, len(e))
	copy(s, e)
	sort.Stable(s)
	var b strings.Builder
	for i, err := range s {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Err returns nil when there is no problem, else the problems sorted by
// file, line, column and message, each distinct problem once. The result is
// a new slice; e is not modified.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	s := make(Errors, len(e))
	copy(s, e)
	sort.Stable(s)
	out := s[:1]
	for _, err := range s[1:] {
		last := out[len(out)-1]
		if err.Pos == last.Pos && err.Msg == last.Msg {
			continue
		}
		out = append(out, err)
	}
	return out
}

func (e Errors) Len() int      { return len(e) }
func (e Errors) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e Errors) Less(i, j int) bool {
	a, b := e[i], e[j]
	if a.Pos.File != b.Pos.File {
		return a.Pos.File < b.Pos.File
	}
	if a.Pos.Line != b.Pos.Line {
		return a.Pos.Line < b.Pos.Line
	}
	if a.Pos.Col != b.Pos.Col {
		return a.Pos.Col < b.Pos.Col
	}
	return a.Msg < b.Msg
}
