// Package spec loads voxbind spec files (docs/spec.md) into typed values that
// remember where each value was written, and validates everything that can
// be checked without the live account.
package spec

import "strconv"

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
	Files        []string // the files read, in order
}

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
