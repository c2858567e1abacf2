package spec

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voxbind/voxbind/internal/english"
)

// IsCSV reports whether a spec file is read as CSV: its name ends in .csv,
// in any case (spreadsheets on Windows may write .CSV).
func IsCSV(name string) bool { return strings.EqualFold(filepath.Ext(name), ".csv") }

// csvFile loads one CSV spec file: a header row naming the columns, then
// one binding entry per row, with the rules of a YAML entry. Positions are
// ROW:COL as a spreadsheet shows them: the header is row 1, a line break
// inside a quoted cell does not start a row, and COL is the column's
// position in the header.
func (l *loader) csvFile(name string, data []byte) {
	l.files = append(l.files, loadedFile{name: name, csv: true, first: len(l.bindings), end: len(l.bindings),
		ignoreFirst: len(l.ignores), ignoreEnd: len(l.ignores)})
	rec := &l.files[len(l.files)-1]
	defer func() { rec.end = len(l.bindings) }()
	r, ok := l.newCSVReader(name, data)
	if !ok || r.secrets() {
		return
	}
	rec.read, rec.top = true, Pos{File: name, Line: 1, Col: 1}
	cols, headerOK, ok := r.header()
	if !ok {
		return
	}
	if rows := bytes.Count(data, []byte{'\n'}); rows > 0 {
		l.bindings = slices.Grow(l.bindings, rows)
		l.flags = slices.Grow(l.flags, rows)
	}
	for {
		cells, good, more := r.next()
		if !more {
			return
		}
		if good {
			r.entry(cols, cells, headerOK)
		}
	}
}

// csvReader reads the rows of one CSV file (RFC 4180: cells separated by
// the separator, optionally quoted with '"', a quote inside quotes
// doubled; rows end at CRLF, LF or CR).
type csvReader struct {
	l    *loader
	file string
	s    string
	sep  byte
	i    int // where the next row starts
	row  int // the row last read, 1-based
	// checkText is set when the file holds bytes that are not UTF-8 text
	// (invalid UTF-8, NUL): each cell is then checked and located.
	checkText bool
	quiet     bool // reading for secrets only: report nothing else
	cells     []csvCell
}

// csvCell is one cell as read: its value, and whether it was quoted.
type csvCell struct {
	val    string
	quoted bool
}

// csvColumn is one column of the header.
type csvColumn struct {
	key     string // the entry key it holds; "" for an ignored or unnamed column
	unnamed bool   // no name in the header: its cells must be empty
}

func (r *csvReader) pos(row, col int) Pos { return Pos{File: r.file, Line: row, Col: col} }

func (r *csvReader) errorf(row, col int, code Code, msg, fix string) {
	if !r.quiet {
		r.l.report(r.pos(row, col), code, msg, fix)
	}
}

// newCSVReader checks the file's encoding, drops a UTF-8 byte-order mark
// and chooses the separator from the header line.
func (l *loader) newCSVReader(name string, data []byte) (*csvReader, bool) {
	r := &csvReader{l: l, file: name}
	const saveAs = "save the sheet as \"CSV UTF-8 (Comma delimited)\" (in Excel: File > Save As), or convert the file to UTF-8"
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}),
		len(data) >= 2 && (data[0] == 0 || data[1] == 0):
		r.errorf(1, 1, CodeInvalidUTF8, "the file is UTF-16 text (as Excel writes \"Unicode Text\" and \"CSV UTF-16\"), and voxbind reads UTF-8 only", saveAs)
		return nil, false
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	r.checkText = !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0
	r.s = string(data)
	if strings.TrimSpace(r.s) == "" {
		r.errorf(1, 1, CodeEmpty, "empty file", "a CSV spec starts with a header row naming its columns, such as registration,application,user")
		return nil, false
	}
	line := r.s
	if end := strings.IndexAny(line, "\r\n"); end >= 0 {
		line = line[:end]
	}
	r.sep = ','
	switch {
	case strings.IndexByte(line, 0) >= 0: // no header holds a NUL byte: an archive, a program, a workbook
		r.errorf(1, 1, CodeCSVSyntax, "the file is not text (its first line holds a NUL byte), such as a workbook (.xlsx): voxbind reads CSV text", saveAs)
		return nil, false
	case strings.IndexByte(line, ',') >= 0:
	case strings.IndexByte(line, ';') >= 0:
		r.sep = ';'
	case strings.IndexByte(line, '\t') >= 0:
		r.errorf(1, 1, CodeCSVSyntax, "the header is separated by tabs: voxbind reads CSV, with , or ; between cells", "save the sheet as \"CSV UTF-8 (Comma delimited)\", not as tab-separated text")
		return nil, false
	}
	return r, true
}

// next reads the next row. good is false when the row could not be read
// (the problem is reported); more is false at the end of the file.
func (r *csvReader) next() (cells []csvCell, good, more bool) {
	s := r.s
	i := r.i
	if i >= len(s) {
		return nil, false, false
	}
	r.row++
	r.cells = r.cells[:0]
	for {
		col := len(r.cells) + 1
		if i < len(s) && s[i] == '"' {
			start := i + 1
			escaped := false
			for i = start; ; {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					r.errorf(r.row, col, CodeCSVSyntax, "this quoted cell is never closed", "add the closing quote (a quote inside quotes is written twice: \"\")")
					r.i = len(s)
					return nil, false, true
				}
				i += j + 1
				if i < len(s) && s[i] == '"' {
					escaped = true
					i++
					continue
				}
				break
			}
			val := s[start : i-1]
			if escaped {
				val = strings.ReplaceAll(val, `""`, `"`)
			}
			r.cells = append(r.cells, csvCell{val: val, quoted: true})
			switch {
			case i >= len(s):
				r.i = i
				return r.cells, true, true
			case s[i] == r.sep:
				i++
				continue
			case s[i] == '\n' || s[i] == '\r':
				r.i = lineEnd(s, i)
				return r.cells, true, true
			}
			r.errorf(r.row, col, CodeCSVSyntax, "text after the closing quote of this cell", "quote the whole cell, and write a quote inside it twice (\"a \"\"b\"\" c\")")
			r.i = r.skipLine(i)
			return nil, false, true
		}
		j := i
		for j < len(s) && s[j] != r.sep && s[j] != '\n' && s[j] != '\r' {
			if s[j] == '"' {
				r.errorf(r.row, col, CodeCSVSyntax, "a quote inside a cell that does not start with one", "quote the whole cell, and write the quote twice (\"a \"\"b\"\" c\")")
				r.i = r.skipLine(j)
				return nil, false, true
			}
			j++
		}
		r.cells = append(r.cells, csvCell{val: s[i:j]})
		if j < len(s) && s[j] == r.sep {
			i = j + 1
			continue
		}
		r.i = lineEnd(s, j)
		return r.cells, true, true
	}
}

// skipLine returns where the row after the line holding i starts.
func (r *csvReader) skipLine(i int) int {
	for i < len(r.s) && r.s[i] != '\n' && r.s[i] != '\r' {
		i++
	}
	return lineEnd(r.s, i)
}

// lineEnd returns the offset after the line break at i (CRLF, LF or CR).
func lineEnd(s string, i int) int {
	switch {
	case i >= len(s):
		return len(s)
	case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
		return i + 2
	}
	return i + 1
}

// secrets reports every cell that looks like a private key or a token, by
// position only, and then nothing else of the file: every other message
// could echo the value. Most files hold neither marker and are not read
// twice.
func (r *csvReader) secrets() bool {
	if !strings.Contains(r.s, "-----BEGIN ") && !strings.Contains(r.s, "eyJ") && !hasKeyRun(r.s) {
		return false
	}
	var found []*Error
	r.quiet = true
	for {
		cells, _, more := r.next()
		if !more {
			break
		}
		for j, c := range cells {
			if what := SecretKind(c.val); what != "" {
				e := secretError(what)
				e.Pos = r.pos(r.row, j+1)
				found = append(found, e)
			}
		}
	}
	r.quiet = false
	r.i, r.row = 0, 0
	r.l.errs = append(r.l.errs, found...)
	return len(found) > 0
}

// header reads row 1. headerOK is false when a column is in error: rows are
// then still checked, but not for missing cells (the misspelled column is
// the likely cause). ok is false when no row can be read.
func (r *csvReader) header() (cols []csvColumn, headerOK, ok bool) {
	cells, good, more := r.next()
	if !more || !good {
		return nil, false, false
	}
	known := 0
	dataLike, unknown := false, false
	first := map[string]int{}
	var errs []*Error // reported unless the row turns out to be data
	errorf := func(col int, code Code, msg, fix string) {
		errs = append(errs, &Error{Pos: r.pos(1, col), Code: code, Msg: msg, Fix: fix})
	}
	for j, c := range cells {
		name := strings.TrimSpace(c.val)
		lower := strings.ToLower(name)
		col := csvColumn{}
		switch {
		case name == "":
			col.unnamed = true
		case strings.HasPrefix(lower, "x-"):
			known++
		case isEntryKey(lower):
			known++
			if k, dup := first[lower]; dup {
				errorf(j+1, CodeDuplicateKey, "column "+lower+" appears twice (also column "+strconv.Itoa(k)+")", "keep one of the two")
				break
			}
			first[lower] = j + 1
			col.key = lower
		case lower == "ignore":
			known++
			errorf(j+1, CodeMisplacedKey, "ignore holds the exceptions of a YAML spec file, not a CSV column",
				"remove the column, and list the exceptions under ignore: in a YAML file read in the same run (-f both files, or -f their directory); each needs a registration, a reason and an until")
		case slices.Contains(topKeys, lower):
			known++
			errorf(j+1, CodeMisplacedKey, lower+" is a setting of a YAML spec file, not a CSV column",
				"remove the column, and set "+lower+" in a YAML file read in the same run (-f both files, or -f their directory)")
		default:
			if strings.Contains(name, "@") || plainDecimal(strings.TrimLeft(name, "0")) {
				dataLike = true
			}
			msg, fix := unknownColumn(name, r.sep)
			errorf(j+1, CodeUnknownKey, msg, fix)
			unknown = true
		}
		cols = append(cols, col)
	}
	if known == 0 && dataLike {
		r.errorf(1, 1, CodeCSVHeader, "the first row must be a header naming the columns, but it looks like data", "insert a header row such as registration,application,user above it")
		return nil, false, false
	}
	if !unknown { // a misspelled column is the likely cause of a missing one
		for _, e := range missingColumns(first) {
			errorf(e.Pos.Col, e.Code, e.Msg, e.Fix)
		}
	}
	r.l.errs = append(r.l.errs, errs...)
	return cols, len(errs) == 0, true
}

// unknownColumn says what is wrong with a column name that is no entry
// key, a setting or an x- column, and what to write instead.
func unknownColumn(name string, sep byte) (msg, fix string) {
	msg = "unknown column " + strconv.Quote(name)
	if other := strings.IndexAny(name, ",;\t|"); other >= 0 {
		return msg + ": it holds " + strconv.Quote(name[other:other+1]) + ", but this file's cells are separated by " + strconv.Quote(string(sep)) + " (the separator is , or, when the header has no comma, ;)",
			"use one separator throughout"
	}
	if s := suggest(name, entryKeys); s != "" {
		return msg, "did you mean \"" + s + "\"?"
	}
	return msg, "the columns are " + strings.Join(entryKeys, ", ") + " (and x-* for your own notes)"
}

// missingColumns checks that a header, whose entry columns are first (by
// key, the 1-based position), names a registration and a target, and a
// rule or user only with an application. The errors carry only a column.
func missingColumns(first map[string]int) []*Error {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if first[k] > 0 {
				return true
			}
		}
		return false
	}
	var errs []*Error
	if !has("registration", "registration_id") {
		errs = append(errs, &Error{Pos: Pos{Col: 1}, Code: CodeMissingKey, Msg: "the header has no registration or registration_id column",
			Fix: "add one (a header reads, for example, registration,application,user)"})
	}
	switch {
	case !has("application", "application_id", "unbound"):
		errs = append(errs, &Error{Pos: Pos{Col: 1}, Code: CodeMissingKey, Msg: "the header has no application, application_id or unbound column",
			Fix: "add application (or application_id), or unbound for registrations bound to nothing"})
	case !has("application", "application_id"):
		for _, k := range entryKeys[4:8] {
			if has(k) {
				errs = append(errs, &Error{Pos: Pos{Col: first[k]}, Code: CodeMissingKey, Msg: "column " + k + " needs an application or application_id column: a rule or user belongs to an application",
					Fix: "add an application (or application_id) column"})
			}
		}
	}
	return errs
}

func isEntryKey(k string) bool {
	for _, e := range entryKeys {
		if e == k {
			return true
		}
	}
	return false
}

var csvWords = entryWords{
	noRegistration:    "row has no registration",
	noRegistrationFix: "fill in its registration cell (sip_username@proxy) or its registration_id cell",
	noTarget:          "row has no target",
	noTargetFix:       "fill in application (or application_id), or set unbound to true",
	unboundWith:       "unbound is true together with ",
	removeUnbound:     "empty the unbound cell, or empty ",
}

// entry reads one row after the header as a binding entry.
func (r *csvReader) entry(cols []csvColumn, cells []csvCell, headerOK bool) {
	blank := true
	for _, c := range cells {
		if c.val != "" {
			blank = false
			break
		}
	}
	if blank {
		return // an empty row, as spreadsheets leave them
	}
	if len(cells) != len(cols) {
		r.ragged(cols, cells)
		return
	}
	l := r.l
	before := len(l.errs)
	b := Binding{Pos: r.pos(r.row, 1), KeyPos: make(map[string]Pos, 4)}
	var present keySet
	ok, regGood := true, false
	for j, c := range cells {
		col := cols[j]
		if r.checkText && !r.text(j+1, c.val) {
			ok = false
			continue
		}
		switch {
		case col.unnamed && c.val != "":
			r.errorf(r.row, j+1, CodeCSVHeader, "this cell is in a column without a name", "name the column in the header (start the name with x- for your own notes), or empty the cell")
			ok = false
			continue
		case col.key == "" || c.val == "":
			continue // an ignored column, or an absent key
		}
		if msg, fix := cellProblem(col.key, c); msg != "" {
			r.errorf(r.row, j+1, CodeInvalidValue, col.key+" "+msg, fix)
			ok = false
			continue
		}
		pos := r.pos(r.row, j+1)
		e := setCell(&b, col.key, c.val)
		b.KeyPos[col.key] = pos
		present |= 1 << keyIndex(col.key)
		if e != nil {
			e.Pos = pos
			l.errs = append(l.errs, e)
			ok = false
		} else if col.key == "registration" || col.key == "registration_id" {
			regGood = true
		}
	}
	ok = l.checkPairs(&b, present, csvWords, headerOK && len(l.errs) == before) && ok
	flags := registrationFlag(present, regGood)
	if ok {
		flags = entryChecked
	}
	l.bindings = append(l.bindings, b)
	l.flags = append(l.flags, flags)
}

// setCell sets the key of b that a cell holds and says what is wrong with
// the value (nil when nothing is; the caller places it).
func setCell(b *Binding, key, val string) (e *Error) {
	switch key {
	case "registration":
		b.Registration = val
		e = registrationProblem(val)
	case "registration_id":
		b.RegistrationID, e = csvID(key, val)
	case "application":
		b.Application = val
	case "application_id":
		b.ApplicationID, e = csvID(key, val)
	case "rule":
		b.Rule = val
	case "rule_id":
		b.RuleID, e = csvID(key, val)
	case "user":
		b.User = val
	case "user_id":
		b.UserID, e = csvID(key, val)
	case "unbound":
		switch {
		case strings.EqualFold(val, "true"):
			b.Unbound = true
		case strings.EqualFold(val, "false"):
		case trimBlanks(val) != val && (trimBlanks(val) == "" || strings.EqualFold(trimBlanks(val), "true") || strings.EqualFold(trimBlanks(val), "false")):
			// A quoted cell keeps its blanks; an unquoted one is caught
			// before (cellProblem). A cell of blanks alone is not empty.
			e = &Error{Code: CodeInvalidValue, Msg: key + " " + strconv.Quote(val) + " starts or ends with a blank", Fix: "remove the blanks"}
		default:
			e = &Error{Code: CodeWrongType, Msg: "unbound must be true, false or empty, not " + strconv.Quote(val), Fix: "write true or false, or leave the cell empty"}
		}
	}
	return e
}

// ragged reports a row whose cells do not line up with the header's
// columns, with a hint when the row uses the other separator.
func (r *csvReader) ragged(cols []csvColumn, cells []csvCell) {
	n, want := len(cells), len(cols)
	msg := "this row has " + english.Plural(n, "cell") + ", the header has " + strconv.Itoa(want)
	other := byte(';')
	if r.sep == ';' {
		other = ','
	}
	var fix string
	switch {
	case n < want && n == 1 && strings.IndexByte(cells[0].val, other) >= 0:
		msg += ": the row seems separated by " + strconv.Quote(string(other)) + ", the header by " + strconv.Quote(string(r.sep))
		fix = "use one separator throughout"
	case n < want:
		fix = "add the missing cells (an empty cell is written as nothing between two separators)"
	default:
		fix = "remove the extra cells, or quote a cell that holds " + strconv.Quote(string(r.sep))
	}
	r.errorf(r.row, min(n, want)+1, CodeCSVSyntax, msg, fix)
}

// text checks a cell of a file that holds bytes other than UTF-8 text.
func (r *csvReader) text(col int, val string) bool {
	if i := strings.IndexByte(val, 0); i >= 0 {
		r.errorf(r.row, col, CodeInvalidUTF8, "this cell holds a NUL byte: a CSV spec is UTF-8 text", "save the sheet as \"CSV UTF-8 (Comma delimited)\"")
		return false
	}
	if !utf8.ValidString(val) {
		i := 0
		for i < len(val) {
			c, size := utf8.DecodeRuneInString(val[i:])
			if c == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		r.errorf(r.row, col, CodeInvalidUTF8, fmt.Sprintf("invalid UTF-8 (byte 0x%02X) %s: the file was saved in another encoding (Excel's plain \"CSV\" uses the computer's code page)", val[i], whereInCell(val[:i])),
			"save the sheet as \"CSV UTF-8 (Comma delimited)\"")
		return false
	}
	return true
}

// whereInCell says where in a cell the character after before is: its
// place, counted in characters as the spreadsheet shows them, and the
// text before it. ROW:COL names the cell, not a character, as in every
// CSV position.
func whereInCell(before string) string {
	n := utf8.RuneCountInString(before)
	if n == 0 {
		return "at the start of this cell"
	}
	const shown = 20
	if n > shown {
		runes := []rune(before)
		before = "..." + string(runes[n-shown:])
	}
	return fmt.Sprintf("at character %d of this cell, after %s", n+1, strconv.Quote(before))
}

// cellProblem says what is wrong with the text of a cell under key as a
// name or id: a line break, or blanks around an unquoted value that are
// more likely a slip than part of a name. Only a name may hold a blank
// at an end, so only a name is told to quote the cell.
func cellProblem(key string, c csvCell) (msg, fix string) {
	if strings.ContainsAny(c.val, "\r\n") {
		return "holds a line break (inside quotes): a name or an id is one line", "remove the line break"
	}
	if !c.quoted && (isBlank(c.val[0]) || isBlank(c.val[len(c.val)-1])) {
		fix := "remove it, or quote the cell if the blank is part of the name"
		if !isNameKey(key) {
			fix = "remove the blanks"
		}
		return strconv.Quote(c.val) + " starts or ends with a blank", fix
	}
	return "", ""
}

// isNameKey reports the columns that hold a name, as opposed to an id or
// unbound.
func isNameKey(key string) bool {
	switch key {
	case "registration", "application", "rule", "user":
		return true
	}
	return false
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// trimBlanks is v without the blanks (spaces and tabs) at its ends.
func trimBlanks(v string) string {
	return strings.TrimFunc(v, func(r rune) bool { return r < utf8.RuneSelf && isBlank(byte(r)) })
}

// csvID reads an id cell: a plain decimal integer of 1 or more. It says
// how to write a spreadsheet's other forms (leading zeros, 3321.0).
func csvID(key, v string) (int64, *Error) {
	if plainDecimal(v) {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, nil
		}
		return 0, &Error{Code: CodeInvalidValue, Msg: key + " " + v + " is too large for an id", Fix: "check the id"}
	}
	if trimmed := trimBlanks(v); trimmed != v && (trimmed == "" || plainDecimal(trimmed)) {
		return 0, &Error{Code: CodeInvalidValue, Msg: key + " " + strconv.Quote(v) + " starts or ends with a blank", Fix: "remove the blanks"}
	}
	if digits := strings.TrimLeft(v, "0"); digits != v && plainDecimal(digits) {
		return 0, &Error{Code: CodeInvalidValue, Msg: key + " " + v + " has leading zeros", Fix: "write " + digits}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f >= 1 && f < 1e15 && f == math.Trunc(f) {
			return 0, &Error{Code: CodeInvalidValue, Msg: key + " " + v + " is not a plain decimal number",
				Fix: "write " + strconv.FormatInt(int64(f), 10) + " (format the column as text in the spreadsheet)"}
		}
		return 0, &Error{Code: CodeInvalidValue, Msg: key + " must be a positive integer id, not " + v, Fix: "give the id, a whole number of 1 or more"}
	}
	return 0, &Error{Code: CodeWrongType, Msg: key + " must be an integer id, not " + strconv.Quote(v),
		Fix: "to give a name, use the " + strings.TrimSuffix(key, "_id") + " column instead"}
}
