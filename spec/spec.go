// Package spec loads voxbind spec files (docs/spec.md) into typed values that
// remember where each value was written, and validates everything that can
// be checked without the live account.
package spec

import (
	"cmp"
	"strconv"
	"strings"
	"time"
)

// Pos is a place in a spec file.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as file:line:col; a position without a line
// (a file that cannot be read) is just the file name.
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Compare orders positions by file, then line, then column: the order in
// which problems are listed.
func (p Pos) Compare(q Pos) int {
	return cmp.Or(strings.Compare(p.File, q.File), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Short formats the position as file:line, the form plans show.
func (p Pos) Short() string {
	if p.Line <= 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Spec is the desired state: every file of a run merged, in load order.
type Spec struct {
	Version int
	// AccountID is the optional guard; 0 when no file sets it.
	AccountID    int64
	AccountIDPos Pos
	Prune        bool
	PrunePos     Pos // zero when no file sets prune
	Bindings     []Binding
	// Ignores are the entries of `ignore`, in load order, expired ones
	// included (see Expired and Ignore.InForce).
	Ignores []Ignore
	Files   []string // the files read, in order
}

// Ignore is one entry of `ignore`: a temporary exception that keeps plans
// from touching the registrations it matches, through the day Until (UTC).
// Exactly one of Registration and RegistrationID is set.
type Ignore struct {
	Pos Pos // the entry's first key

	// Registration is a pattern of sip_username@proxy in which * matches
	// any run of characters and ? one character.
	Registration   string
	RegistrationID int64
	Reason         string
	Owner          string    // "" when not given
	Until          time.Time // a day, at 00:00 UTC: the last day the exception holds
	// UntilPos is where until's date is written: an exception that has
	// ended is reported there, as a warning or (validate --strict) an
	// error.
	UntilPos Pos

	KeyPos map[string]Pos // as in Binding
}

// InForce reports whether the exception holds on the UTC day of today.
func (ig *Ignore) InForce(today time.Time) bool { return !Day(today).After(ig.Until) }

// Expired lists the ignore entries that no longer hold on the UTC day of
// today, in load order.
func (s *Spec) Expired(today time.Time) []Ignore {
	var out []Ignore
	for _, ig := range s.Ignores {
		if !ig.InForce(today) {
			out = append(out, ig)
		}
	}
	return out
}

// Day is the UTC calendar day of t, at 00:00 UTC: the form of Ignore.Until
// and of the "today" that exceptions are judged on.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DayString formats a day as YAML and plans write it: 2026-12-31.
func DayString(t time.Time) string { return t.Format(time.DateOnly) }

// Binding is one entry of `bindings`. Exactly one of Registration and
// RegistrationID is set; either Unbound is true or exactly one of
// Application and ApplicationID is set; at most one of Rule, RuleID, User,
// UserID is set. Zero means "not given" for ids, "" for names.
type Binding struct {
	Pos Pos // the entry's first key

	Registration   string // "sip_username@proxy"
	RegistrationID int64
	Application    string
	ApplicationID  int64
	Rule           string
	RuleID         int64
	User           string
	UserID         int64
	Unbound        bool

	// KeyPos holds the position of each key written in the entry, by key
	// name ("registration", "user_id", ...), for errors that point at one
	// value rather than the entry. A key brought in by a merge key
	// (<<: *defaults) is where the anchored mapping writes it.
	KeyPos map[string]Pos
}

// SIPUsername and Proxy split Registration at its last '@'.
func (b *Binding) SIPUsername() string { u, _ := splitRegistration(b.Registration); return u }

// Proxy is the part of Registration after its last '@'.
func (b *Binding) Proxy() string { _, p := splitRegistration(b.Registration); return p }

func splitRegistration(s string) (user, proxy string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}
