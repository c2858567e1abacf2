package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// ShellQuote quotes s for bash, zsh and fish alike, for a command that
// the user pastes: a word of letters, digits and /._-+ as it is, anything
// else in single quotes.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PathArg is path as an argument of a command to paste: quoted for a
// shell (ShellQuote), and after "./" when it starts with '-', which the
// command would take for a flag.
func PathArg(path string) string {
	if strings.HasPrefix(path, "-") {
		path = "./" + path
	}
	return ShellQuote(path)
}

// Printable returns s with every character that could act on a terminal
// or hide text shown as an escape: control characters (ESC, newline,
// carriage return, backspace, C1 codes) as \n, \r, \t or \xNN, the
// format characters and separators printableHidden reports (bidi
// controls, zero-width spaces, ...) as \uNNNN (\UNNNNNNNN beyond U+FFFF),
// and bytes that are not UTF-8 as \xNN. Names read from the account pass through it before they reach a
// plan, a message or a prompt: a name holding "\x1b[2J" or a newline must
// not clear the screen or forge a line just above "Type 'yes'".
func Printable(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case printableHidden(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case printableHidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// invisible reports the characters that Printable escapes: the control
// characters and the bidirectional-text controls.
func invisible(r rune) bool { return unicode.IsControl(r) || printableHidden(r) }

// printableHidden reports the characters that are not control characters
// yet change how the text around them reads, or hide in it: the Unicode
// format characters (category Cf: the bidirectional-text controls that
// reorder text, "Trojan Source"; zero-width spaces, soft hyphens and the
// byte order mark, which make two different names look alike; the
// invisible tag characters) and the line and paragraph separators U+2028
// and U+2029, at which editors and some renderers break a line. The
// zero-width joiner and non-joiner are left alone: emoji sequences and
// several scripts need them to read at all.
func printableHidden(r rune) bool {
	switch r {
	case 0x2028, 0x2029:
		return true
	case 0x200C, 0x200D:
		return false
	}
	return r > 0x7f && unicode.Is(unicode.Cf, r)
}

// NewJSONEncoder returns the encoder every JSON document voxbind writes
// goes through (plans, saved plans, events, diagnostics, journals, doctor
// and show reports): no HTML escaping, and the characters that
// encoding/json leaves raw although they act on a terminal or hide text
// (the C1 controls U+0080–U+009F and the format characters that
// Printable escapes: bidi controls, zero-width spaces, ...) written as
// \uXXXX. A JSON reader gets the same
// string back, so a saved plan and a journal read back exactly; a
// terminal or an editor showing the document shows the escape.
func NewJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(jsonEscaper{w})
	enc.SetEscapeHTML(false)
	return enc
}

// jsonEscaper escapes, in each Write, what NewJSONEncoder says. Encode
// writes each document in one Write, so no character is split between
// two; outside strings an encoded document is ASCII, so every character
// escaped is inside a string.
type jsonEscaper struct{ w io.Writer }

func (e jsonEscaper) Write(b []byte) (int, error) {
	if _, err := e.w.Write(escapeInvisible(b, false)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// escapeInvisible writes the C1 controls and the characters
// printableHidden reports, in b, encoded JSON or YAML whose every such
// character is inside a double-quoted string, as escapes that read back
// as the character: \uXXXX, and for one beyond U+FFFF a UTF-16 surrogate
// pair in JSON, \UXXXXXXXX in YAML (which refuses surrogates). It returns
// b itself when there is none.
func escapeInvisible(b []byte, yaml bool) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if (r >= 0x80 && r <= 0x9f) || printableHidden(r) {
			if out == nil {
				out = make([]byte, 0, len(b)+16)
			}
			out = append(out, b[last:i]...)
			switch {
			case r <= 0xffff:
				out = fmt.Appendf(out, `\u%04x`, r)
			case yaml:
				out = fmt.Appendf(out, `\U%08x`, r)
			default:
				hi, lo := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			}
			last = i + size
		}
		i += size
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}
