package spec

import (
	"sort"
	"strings"
)

// Code names a kind of problem in a spec. Codes are stable: scripts and
// editors match them in the diagnostics that validate, plan and apply
// write with -o json (docs/diagnostics.md lists every one).
type Code string

// The codes of problems found in the files alone.
const (
	CodeNoSpecFile        Code = "no-spec-file"           // no -f path given, or the path does not exist
	CodeUnreadable        Code = "unreadable"             // a file or directory that cannot be read as a spec
	CodeEmptyDirectory    Code = "empty-directory"        // a directory without spec files
	CodeTooLarge          Code = "too-large"              // past the size limit of a file or a run
	CodeInvalidUTF8       Code = "invalid-utf8"           // bytes that are not UTF-8
	CodeInvalidYAML       Code = "invalid-yaml"           // a YAML syntax error
	CodeTab               Code = "tab-indentation"        // a tab where YAML wants spaces
	CodeMultipleDocuments Code = "multiple-documents"     // a second document after ---
	CodeEmpty             Code = "empty-file"             // no spec in the file
	CodeSecret            Code = "secret"                 // a value that looks like a key or a token
	CodeWrongType         Code = "wrong-type"             // a value or a node of the wrong kind
	CodeInvalidValue      Code = "invalid-value"          // an id that is not a positive decimal, an empty name, a malformed registration
	CodeUnknownKey        Code = "unknown-key"            // a key that does not exist (with the nearest known one)
	CodeMisplacedKey      Code = "misplaced-key"          // a known key at the wrong level
	CodeDuplicateKey      Code = "duplicate-key"          // a key twice in one mapping
	CodeMerge             Code = "merge-key"              // a YAML merge key that cannot be merged
	CodeVersion           Code = "version"                // a missing or unsupported version
	CodeConflictingKeys   Code = "conflicting-keys"       // keys that exclude each other: both of a pair, rule with user, unbound with a target
	CodeMissingKey        Code = "missing-key"            // an entry without its registration or target
	CodeDuplicateEntry    Code = "duplicate-registration" // one registration listed twice
	CodeDuplicateUser     Code = "duplicate-user"         // two registrations bound to one user
	CodeFilesDisagree     Code = "files-disagree"         // prune set differently in two files of one account
	CodeFleetAccount      Code = "fleet-account"          // in a run of several accounts, a file that names none (a CSV file: none beside it)
	CodeSeveralAccounts   Code = "several-accounts"       // files of several accounts where one account is wanted
	CodeInvalidDate       Code = "invalid-date"           // an until that is not a day
	CodeUntilTooFar       Code = "until-too-far"          // an ignore entry that ends more than 366 days ahead
	CodeIgnoreEnded       Code = "ignore-ended"           // an ignore entry past its until (an error with validate --strict, else a warning)
	CodeCSVSyntax         Code = "csv-syntax"             // a CSV row that cannot be read: quotes, cell counts, tabs
	CodeCSVHeader         Code = "csv-header"             // a CSV header that names no columns, or a cell under an unnamed column
)

// The codes of problems found when the spec meets the live account.
const (
	CodeAccountMismatch       Code = "account-mismatch"       // the account_id guard names another account
	CodeUnknownRegistration   Code = "unknown-registration"   // no such registration in the account
	CodeAmbiguousRegistration Code = "ambiguous-registration" // several registrations share sip_username@proxy
	CodeUnknownApplication    Code = "unknown-application"    // no such application
	CodeAmbiguousApplication  Code = "ambiguous-application"  // a short name that several applications share
	CodeUnknownRule           Code = "unknown-rule"           // no such rule in the application
	CodeAmbiguousRule         Code = "ambiguous-rule"         // a name that several rules of the application share, ignoring case
	CodeUnknownUser           Code = "unknown-user"           // no such user in the application
	CodeAmbiguousUser         Code = "ambiguous-user"         // a name that several users of the application share, ignoring case
	CodeWrongApplication      Code = "wrong-application"      // a rule or user of another application
	CodeIgnoreMatchesNothing  Code = "ignore-matches-nothing" // an ignore entry in force that matches no registration of the account (a warning)
)

// Error is one problem in a spec, at the place it was written: what is
// wrong (Msg) and what to do about it (Fix) apart, so that -o json can
// give them apart too.
type Error struct {
	Pos  Pos
	Code Code   // the kind of problem
	Msg  string // what is wrong
	Fix  string // what to do; "" when Msg says it all
}

// Error formats the problem as file:line:col: message; fix.
func (e *Error) Error() string {
	s := e.Msg
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	if e.Pos == (Pos{}) {
		return s
	}
	return e.Pos.String() + ": " + s
}

// NewError makes an Error at pos. Packages that find problems only with
// the live account (unknown names, ambiguous registrations) use it so that
// their errors read and sort like the loader's.
func NewError(pos Pos, code Code, msg, fix string) *Error {
	return &Error{Pos: pos, Code: code, Msg: msg, Fix: fix}
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
		if err.Pos == last.Pos && err.Msg == last.Msg && err.Fix == last.Fix {
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
	if c := a.Pos.Compare(b.Pos); c != 0 {
		return c < 0
	}
	return a.Msg < b.Msg
}
