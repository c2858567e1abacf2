package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads the spec files of one account, as LoadFleet does; files that
// name several accounts are an error here. Ignore entries are judged on
// the current UTC day; commands that also plan use LoadFleetWith, so that
// loading and planning judge them on the same day.
func Load(paths []string) (*Spec, error) {
	return LoadWith(paths, Options{Today: time.Now()})
}

// Options are what Load decides besides the files.
type Options struct {
	// Today is the day (its UTC date counts) that ignore entries are judged
	// on: an until more than 366 days after it is an error, and an until
	// before it has expired. The zero time skips both checks.
	Today time.Time
	// Strict makes an expired ignore entry an error (validate --strict).
	Strict bool
}

// MaxIgnoreDays is how far ahead an ignore entry may end: exceptions are
// temporary, and a year is the longest anyone should go without a review.
const MaxIgnoreDays = 366

// LoadWith is Load with the day and strictness given.
func LoadWith(paths []string, opts Options) (*Spec, error) {
	return oneAccount(LoadFleetWith(paths, opts))
}

// oneAccount is the spec of a fleet of one; several accounts are an error.
func oneAccount(f *Fleet, err error) (*Spec, error) {
	if err != nil {
		return nil, err
	}
	if f.Several() {
		return nil, Errors{{Code: CodeSeveralAccounts, Msg: "the spec files name " + f.accountList(), Fix: "give the files of one account"}}
	}
	return f.Specs[0], nil
}

// LoadFleet reads the spec files named by paths: each path is a
// file, or a directory standing for every *.yaml and *.yml file directly
// inside it, in name order (dot files are skipped, as a shell glob would).
// A file named twice is read once. It checks everything that needs no live
// account, groups the files by their account_id (see Fleet) and returns
// every problem at once as Errors, sorted, with a nil Fleet; on success
// each account's bindings are in load order. Ignore entries are judged on
// the current UTC day.
func LoadFleet(paths []string) (*Fleet, error) {
	return LoadFleetWith(paths, Options{Today: time.Now()})
}

// LoadFleetWith is LoadFleet with the day and strictness given.
func LoadFleetWith(paths []string, opts Options) (*Fleet, error) {
	files, errs := expand(paths)
	l := &loader{errs: errs, opts: opts}
	if !opts.Today.IsZero() {
		l.opts.Today = Day(opts.Today)
	}
	var total int64
	for _, f := range files {
		data, e := readLimited(f, min(MaxFileSize, MaxTotalSize-total))
		if e != nil {
			e.Pos = Pos{File: f}
			l.files = append(l.files, loadedFile{name: f})
			l.errs = append(l.errs, e)
			continue
		}
		total += int64(len(data))
		l.load(f, data)
	}
	return l.fleet()
}

// Size limits of a spec: a bulk spec of 100,000 entries is about 8 MB, and
// a spec many times larger is a mistake (a wrong file, a device such as
// /dev/zero) that must not take the machine's memory.
const (
	MaxFileSize  = 32 << 20 // bytes of one spec file
	MaxTotalSize = 64 << 20 // bytes of all the files of one run
)

// readLimited reads a spec file of at most limit bytes. A non-regular file
// (a pipe, /dev/stdin) is read too, up to the limit. The error's Pos is
// for the caller to set.
func readLimited(path string, limit int64) ([]byte, *Error) {
	const fixRead = "check the file's permissions and the path given with -f"
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Code: CodeUnreadable, Msg: "cannot read the file: " + cause(err).Error(), Fix: fixRead}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, &Error{Code: CodeUnreadable, Msg: "is a directory where a spec file was expected", Fix: "give the directory itself with -f, or a file in it"}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{Code: CodeUnreadable, Msg: "cannot read the file: " + cause(err).Error(), Fix: fixRead}
	}
	if int64(len(data)) > limit {
		if limit < MaxFileSize {
			return nil, &Error{Code: CodeTooLarge, Msg: fmt.Sprintf("the spec files together are larger than %d MiB, voxbind's limit", MaxTotalSize>>20),
				Fix: "split the run, or check that -f names the files you meant"}
		}
		return nil, &Error{Code: CodeTooLarge, Msg: fmt.Sprintf("larger than %d MiB, voxbind's limit for a spec file", MaxFileSize>>20),
			Fix: "check that -f names a spec file, or split it into several"}
	}
	return data, nil
}

// loadBytes loads one file's contents; the fuzz target and benchmarks use it.
func loadBytes(name string, data []byte) (*Spec, error) {
	l := newLoader()
	l.load(name, data)
	return l.result()
}

func newLoader() *loader { return &loader{} }

// result is the spec of a loader that read the files of one account
// (loadBytes reads one file).
func (l *loader) result() (*Spec, error) { return oneAccount(l.fleet()) }

func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// expand turns the -f arguments into the list of files to read.
func expand(paths []string) (files []string, errs Errors) {
	if len(paths) == 0 {
		return nil, Errors{{Code: CodeNoSpecFile, Msg: "no spec file given", Fix: "pass one with -f FILE (files and directories may repeat)"}}
	}
	seen := make(map[string]bool)
	add := func(f string) {
		key := f
		if abs, err := filepath.Abs(f); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			e := &Error{Pos: Pos{File: p}, Code: CodeUnreadable, Msg: "cannot read: " + cause(err).Error(), Fix: "check the path given with -f and its directories' permissions"}
			if errors.Is(err, fs.ErrNotExist) {
				e.Code, e.Msg, e.Fix = CodeNoSpecFile, "no such file or directory", "check the path given with -f (the default is voxbind.yaml in the current directory)"
			}
			errs = append(errs, e)
			continue
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, &Error{Pos: Pos{File: p}, Code: CodeUnreadable, Msg: "cannot read the directory: " + cause(err).Error(), Fix: "check its permissions"})
			continue
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			yamlFile := strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
			if strings.HasPrefix(name, ".") || !(yamlFile || IsCSV(name)) {
				continue
			}
			full := filepath.Join(p, name)
			// An entry that looks like a spec but cannot be read is an
			// error, never skipped: with prune: true in another file, a
			// skipped file would unbind every registration it lists.
			skip, e := unreadableEntry(full)
			if e != nil {
				e.Pos = Pos{File: full}
				errs = append(errs, e)
				continue
			}
			if skip {
				continue
			}
			add(full)
			n++
		}
		if n == 0 {
			errs = append(errs, &Error{Pos: Pos{File: p}, Code: CodeEmptyDirectory, Msg: "directory has no *.yaml, *.yml or *.csv file", Fix: "put the spec there, or pass the file itself with -f"})
		}
	}
	return files, errs
}

// unreadableEntry says why a directory entry named like a spec cannot be
// read as one (a dangling or looping link, a device or pipe, no
// permission). A directory, or a link to one, is skipped: -f DIR reads the
// files directly inside DIR.
func unreadableEntry(path string) (skip bool, e *Error) {
	const risk = " (a spec file that is skipped could make prune unbind what it lists)"
	fi, err := os.Stat(path)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		return false, &Error{Code: CodeUnreadable, Msg: "a symbolic link to a file that does not exist", Fix: "fix or remove the link" + risk}
	case err != nil:
		return false, &Error{Code: CodeUnreadable, Msg: "cannot read: " + cause(err).Error(), Fix: "fix or remove it" + risk}
	case fi.IsDir():
		return true, nil
	case !fi.Mode().IsRegular():
		return false, &Error{Code: CodeUnreadable, Msg: "not a regular file (" + fi.Mode().Type().String() + ")", Fix: "a spec directory holds spec files only: move it out"}
	}
	f, err := os.Open(path)
	if err != nil {
		return false, &Error{Code: CodeUnreadable, Msg: "cannot read: " + cause(err).Error(), Fix: "fix its permissions or remove it" + risk}
	}
	f.Close()
	return false, nil
}

// loader collects the files of one run; fleet groups them by account
// and runs the checks that span entries and files.
type loader struct {
	files []loadedFile
	// bindings and ignores hold the entries of every file, in load order;
	// flags holds, for each binding, how the duplicate checks treat it.
	bindings []Binding
	flags    []entryFlags
	ignores  []Ignore
	errs     Errors
	opts     Options // Today is a Day, or zero
}

// loadedFile is what one file says at its top level, and where its entries
// are in loader.bindings.
type loadedFile struct {
	name       string
	read       bool // its top level was read (no YAML or encoding error)
	top        Pos  // the file's root node
	accountID  int64
	accountPos Pos
	// accountKey: the file writes account_id, valid or not (a value that
	// is not an id is reported where it stands, and accountID stays 0).
	accountKey bool
	prune      bool
	prunePos   Pos  // zero when the file does not set prune
	csv        bool // a CSV file: it names no account (see loader.fleet)
	first, end int  // its entries: bindings[first:end]
	// its ignore entries: ignores[ignoreFirst:ignoreEnd]
	ignoreFirst, ignoreEnd int
}

// entryFlags says how the duplicate checks treat one entry.
type entryFlags uint8

const (
	entryChecked entryFlags = 1 << iota // read without error: compared with the others
	entryAlias                          // written as an alias (- *entry): reported where the alias stands
	// entryRegistration: not read without error, but its one registration
	// (or registration_id) was: compared with the others for that alone,
	// so that a registration listed twice is reported with the other
	// errors, not only once they are fixed.
	entryRegistration
)

// registrationFlag is entryRegistration when the entry gives exactly one
// of registration and registration_id (present) and read it without
// error (regGood).
func registrationFlag(present keySet, regGood bool) entryFlags {
	one := present&(1<<keyIndex("registration")) != 0 != (present&(1<<keyIndex("registration_id")) != 0)
	if one && regGood {
		return entryRegistration
	}
	return 0
}

func (l *loader) report(pos Pos, code Code, msg, fix string) {
	l.errs = append(l.errs, &Error{Pos: pos, Code: code, Msg: msg, Fix: fix})
}

// load reads one file's bytes, as CSV or as YAML by its name.
func (l *loader) load(name string, data []byte) {
	if IsCSV(name) {
		l.csvFile(name, data)
	} else {
		l.file(name, data)
	}
}

// file loads one YAML file's bytes.
func (l *loader) file(name string, data []byte) {
	l.files = append(l.files, loadedFile{name: name, first: len(l.bindings), end: len(l.bindings),
		ignoreFirst: len(l.ignores), ignoreEnd: len(l.ignores)})
	rec := &l.files[len(l.files)-1]
	if e := checkUTF8(name, data); e != nil {
		l.errs = append(l.errs, e)
		return
	}
	root, errs := parseYAML(name, data)
	if errs != nil {
		l.errs = append(l.errs, errs...)
		return
	}
	// A file holding a key or a token is reported without reading it
	// further: every other message could echo the value.
	if errs := secrets(name, root); errs != nil {
		l.errs = append(l.errs, errs...)
		return
	}
	w := walker{l: l, file: name, rec: rec}
	rec.read, rec.top = true, w.pos(root)
	w.top(root)
	rec.end, rec.ignoreEnd = len(l.bindings), len(l.ignores)
}

// checkUTF8 finds the first byte that is not UTF-8 and says where it is
// (yaml.v3 reports such a byte at 1:1). UTF-16 files, which YAML allows
// with a byte-order mark, are left to the parser.
func checkUTF8(name string, data []byte) *Error {
	if utf8.Valid(data) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil
	}
	line, start := 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			col := utf8.RuneCount(data[start:i]) + 1
			return &Error{Pos: Pos{File: name, Line: line, Col: col}, Code: CodeInvalidUTF8,
				Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02X): spec files are UTF-8 text", data[i]), Fix: "re-save the file as UTF-8"}
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += size
	}
	return nil
}

// secretLike matches what must never be in a spec: a PEM block (the
// service account's private key) or a JWT (an API token: a header and a
// payload, each the base64url of a JSON object and so starting "eyJ" with
// 8 or more characters after it, and a signature, which may be cut off).
// The JWT starts the string or follows a character that is not a letter,
// a digit or '-': one glued to a word by '_' ("x_eyJ…") is a JWT, one
// inside a word ("mikeyJones") is not.
var secretLike = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]+-----|(?:^|[^A-Za-z0-9-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}`)

// keyRunMin is the shortest run of base64 that SecretKind takes for a key:
// a line of a PEM block is 64 characters, and no name people write is a
// single run of 64 letters and digits that mixes upper case, lower case
// and digits (hyphens, dots, '@' and spaces end a run), while a
// CamelCase name of 40 or 50 can be.
const keyRunMin = 64

// LooksLikeSecret reports whether s would be refused in a spec as a
// private key or a token: export writes such a name as an id instead.
func LooksLikeSecret(s string) bool { return SecretKind(s) != "" }

// SecretKind says what s looks like when it holds a private key or a
// token ("a PEM key or certificate", "a JWT, an API token", "the base64
// of a key or a token": a PEM block's body pasted without its BEGIN
// line), and "" when it holds neither.
func SecretKind(s string) string {
	if what := MarkedSecretKind(s); what != "" {
		return what
	}
	if hasKeyRun(s) {
		return "the base64 of a key or a token"
	}
	return ""
}

// MarkedSecretKind is SecretKind without its rule for a long run of
// base64: it says whether s holds a PEM block ("a PEM key or
// certificate") or a JWT ("a JWT, an API token"), which their own marks
// give away, and "" otherwise. It is for text such as a file path, in
// which a directory or file name of 64 letters and digits mixing cases is
// a name people write, not a key.
func MarkedSecretKind(s string) string {
	m := secretLike.FindString(s)
	switch {
	case m == "":
		return ""
	case strings.HasPrefix(m, "-----BEGIN"):
		return "a PEM key or certificate"
	}
	return "a JWT, an API token"
}

// hasKeyRun reports whether s holds a run of keyRunMin or more base64
// characters (letters, digits, '+' and '/') with upper case, lower case
// and digits in it, as random base64 always has.
func hasKeyRun(s string) bool {
	n, upper, lower, digit := 0, false, false, false
	for i := 0; i <= len(s); i++ {
		var c byte
		if i < len(s) {
			c = s[i]
		}
		switch {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
			digit = true
		case c == '+' || c == '/':
		default:
			if n >= keyRunMin && upper && lower && digit {
				return true
			}
			n, upper, lower, digit = 0, false, false, false
			continue
		}
		n++
	}
	return false
}

// secrets reports every key or value of the tree that looks like a private
// key or a token, by position only: the value is never shown.
func secrets(name string, root *yaml.Node) Errors {
	var errs Errors
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			if what := SecretKind(n.Value); what != "" {
				e := secretError(what)
				e.Pos = Pos{File: name, Line: max(n.Line, 1), Col: max(n.Column, 1)}
				errs = append(errs, e)
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return errs
}

// secretError reports a value that looks like what (SecretKind), without
// the value; the caller places it.
func secretError(what string) *Error {
	return &Error{Code: CodeSecret, Msg: "this value looks like " + what + " (not shown): a spec never holds keys or tokens",
		Fix: "remove it, and replace the key or token if the file was shared"}
}

// parseYAML decodes one file into its root node, turning yaml.v3's errors
// (which only carry "line N") into located Errors.
func parseYAML(name string, data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		if r := recover(); r != nil {
			root, errs = nil, Errors{{Pos: Pos{File: name, Line: 1, Col: 1}, Code: CodeInvalidYAML, Msg: "invalid YAML: the parser gave up on this file", Fix: "check it with a YAML linter"}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, Errors{emptySpec(Pos{File: name, Line: 1, Col: 1}, "empty file")}
	}
	if err != nil {
		return nil, yamlErrors(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlErrors(name, data, err)
	default:
		line := extra.Line
		if line < 1 {
			line = 1
		}
		return nil, Errors{{Pos: Pos{File: name, Line: line, Col: 1}, Code: CodeMultipleDocuments, Msg: "a second YAML document (after \"---\")", Fix: "write one spec per file, or split it into several files"}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{emptySpec(Pos{File: name, Line: 1, Col: 1}, "empty file")}
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, Errors{emptySpec(Pos{File: name, Line: max(root.Line, 1), Col: max(root.Column, 1)}, "empty document")}
	}
	return root, nil
}

// anchorShown is the most characters of an anchor's name a message shows.
const anchorShown = 40

// unknownAnchor reports yaml.v3's "unknown anchor 'NAME' referenced",
// which carries no position, at the first alias *NAME in the file, and
// shows NAME only when it does not look like a key or a token, cut past
// anchorShown characters. It returns nil for any other message.
func unknownAnchor(file string, lines [][]byte, msg string) *Error {
	rest, ok := strings.CutPrefix(msg, "unknown anchor '")
	anchor, ok2 := strings.CutSuffix(rest, "' referenced")
	if !ok || !ok2 || anchor == "" {
		return nil
	}
	pos := Pos{File: file, Line: 1, Col: 1}
	alias := []byte("*" + anchor)
find:
	for i, ln := range lines {
		for from := 0; ; {
			j := bytes.Index(ln[from:], alias)
			if j < 0 {
				break
			}
			j += from
			end := j + len(alias)
			before := j == 0 || strings.IndexByte(" \t[{,", ln[j-1]) >= 0
			after := end == len(ln) || strings.IndexByte(" \t\r]},", ln[end]) >= 0
			if before && after {
				pos.Line, pos.Col = i+1, utf8.RuneCount(ln[:j])+1
				break find
			}
			from = j + 1
		}
	}
	fix := "define the anchor (&name) before the alias, or quote the value if the * is meant as text"
	if what := SecretKind(anchor); what != "" {
		return &Error{Pos: pos, Code: CodeInvalidYAML, Fix: fix,
			Msg: "invalid YAML: an alias names an anchor the file does not define, and its name looks like " + what + " (not shown)"}
	}
	if utf8.RuneCountInString(anchor) > anchorShown {
		anchor = string([]rune(anchor)[:anchorShown]) + "…"
	}
	return &Error{Pos: pos, Code: CodeInvalidYAML, Fix: fix, Msg: "invalid YAML: unknown anchor '" + anchor + "' referenced"}
}

func emptySpec(pos Pos, what string) *Error {
	return &Error{Pos: pos, Code: CodeEmpty, Msg: what, Fix: "a spec starts with \"version: 1\" and lists its entries under \"bindings:\""}
}

// yamlErrors locates a yaml.v3 syntax error. Tabs in indentation are the
// common cause and yaml.v3 names them poorly, so every such tab is reported
// at its own column instead.
func yamlErrors(name string, data []byte, err error) Errors {
	var errs Errors
	lines := bytes.Split(data, []byte("\n"))
	for i, ln := range lines {
		for j, c := range ln {
			if c == '\t' {
				errs = append(errs, &Error{Pos: Pos{File: name, Line: i + 1, Col: j + 1}, Code: CodeTab, Msg: "tab in indentation: YAML indents with spaces only", Fix: "replace the tab with spaces"})
				break
			}
			if c != ' ' {
				break
			}
		}
	}
	if errs != nil {
		return errs
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if e := unknownAnchor(name, lines, msg); e != nil {
		return Errors{e}
	}
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	line = min(max(line, 1), len(lines))
	col := 1
	for j, c := range lines[line-1] {
		if c != ' ' {
			col = j + 1
			break
		}
	}
	return Errors{{Pos: Pos{File: name, Line: line, Col: col}, Code: CodeInvalidYAML, Msg: "invalid YAML: " + msg, Fix: "check the indentation and quoting here or on the line before"}}
}
