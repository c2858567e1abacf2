package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/voxbind/voxbind/internal/atomicfile"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
)

// readFile is a file a command reads, named for messages.
type readFile struct {
	path string
	what string // "the spec file", "the sandbox state", ...
}

// reads lists the files every command that talks to an account reads
// (the sandbox state or the key file), plus the spec files given.
func (f *AccountFlags) reads(specFiles ...string) []readFile {
	var out []readFile
	for _, file := range specFiles {
		out = append(out, readFile{file, "the spec file"})
	}
	if f.Sandbox != "" {
		out = append(out, readFile{f.Sandbox, "the sandbox state"})
	}
	if f.Credentials != "" { // read without --sandbox; with it, still a key
		out = append(out, readFile{f.Credentials, "the credentials file"})
	}
	return out
}

// pasted is path as an argument of a command voxbind prints to paste:
// quoted for a shell when it must be, after ./ when it starts with '-',
// its control characters escaped.
func pasted(path string) string { return reconcile.Printable(reconcile.PathArg(path)) }

// shown is text for stderr with the control characters of each line
// escaped (reconcile.Printable), its line breaks kept: errors name files
// as they were given, and a file name must not act on the terminal.
func shown(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = reconcile.Printable(l)
	}
	return strings.Join(lines, "\n")
}

// controlNames is the words of words (a command line, file names from
// the environment) that hold a character reconcile.Printable escapes,
// for escapeNames: the value of a --flag=value word, and of a short flag
// with its value attached (-fFILE), is taken as a word too.
func controlNames(words []string) []string {
	var names []string
	for _, w := range words {
		if reconcile.Printable(w) == w {
			continue
		}
		names = append(names, w)
		if _, value, ok := strings.Cut(w, "="); ok && strings.HasPrefix(w, "--") {
			names = append(names, value)
		} else if len(w) > 2 && w[0] == '-' && w[1] != '-' {
			names = append(names, w[2:])
		}
	}
	return names
}

// escapeNames escapes, in text, each of names and the forms a message
// gives it (cleaned, its directory), as reconcile.Printable does: a file
// name given on the command line with a line break in it must not split
// the line of a message that names it, whichever message that is.
func escapeNames(text string, names []string) string {
	for _, name := range names {
		for _, form := range []string{name, filepath.Clean(name), filepath.Dir(name)} {
			// A form of control characters alone ("\n", the directory
			// of "\n/x") would take the message's own line breaks.
			if printable := reconcile.Printable(form); printable != form && strings.ContainsFunc(form, unicode.IsGraphic) {
				text = strings.ReplaceAll(text, form, printable)
			}
		}
	}
	return text
}

// escapedError is err's text with the file name of the *fs.PathError in
// its chain (an open or a stat that failed) escaped: the name as given
// may hold a line break, which must not split the line that says so.
func escapedError(err error) string {
	text := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != "" {
		text = strings.ReplaceAll(text, pe.Path, reconcile.Printable(pe.Path))
	}
	return text
}

// dashOut refuses --out -, which by custom means stdout: voxbind would
// write a file named "-". fix says where the output can go instead.
func dashOut(out, fix string) error {
	if out != "-" {
		return nil
	}
	return failure(codeUsage, `--out - names no file: voxbind does not take "-" for stdout`, fix+"; nothing was written")
}

// checkOut refuses an --out FILE that is (or links to) a file the command
// reads: writing it would destroy the input, and the next run would read
// the output instead. Call it before any work, and writeOut at the end.
func checkOut(out string, reads []readFile) error {
	if out == "" {
		return nil
	}
	target, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet: nothing to clobber
	}
	for _, r := range reads {
		if fi, err := os.Stat(r.path); err == nil && os.SameFile(target, fi) {
			same := ""
			if r.path != out {
				same = " (" + r.path + ")"
			}
			return failure(codeOutFile, fmt.Sprintf("--out %s is %s%s, which this command reads", out, r.what, same), "write the output to another file; nothing was written")
		}
	}
	if !target.Mode().IsRegular() {
		// A directory, a named pipe (which would block the run until some
		// reader came), a device: voxbind replaces files, nothing else.
		return failure(codeOutFile, fmt.Sprintf("--out %s is %s", out, fileKind(target.Mode())), "give the name of a file; nothing was written")
	}
	if sandbox.LooksLikeState(out) {
		// Maybe one that 'sandbox serve' has open: replacing it would
		// destroy that sandbox's account.
		return failure(codeOutFile, fmt.Sprintf("--out %s is a sandbox state file", out), "write the output to another file; nothing was written")
	}
	if looksLikeKey(out) {
		// Some account's key (this command may not read it): replacing it
		// would lose the key for good.
		return failure(codeOutFile, fmt.Sprintf("--out %s holds a private key", out), "write the output to another file; nothing was written")
	}
	return nil
}

// looksLikeKey reports whether the file at path holds a private key: a
// service-account key file (a private_key field) or a PEM private key,
// wherever in the file it stands (a bundle may hold the key last).
func looksLikeKey(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	marks := [][]byte{[]byte(`"private_key"`), []byte("PRIVATE KEY-----")}
	const keep = 16 // longer than a mark less one: a mark cut between two reads is seen whole
	buf := make([]byte, 64<<10)
	n := 0 // bytes in buf carried over from the read before
	for {
		m, err := f.Read(buf[n:])
		n += m
		for _, mark := range marks {
			if bytes.Contains(buf[:n], mark) {
				return true
			}
		}
		if err != nil {
			return false
		}
		if n > keep {
			n = copy(buf, buf[n-keep:n])
		}
	}
}

// writeOut writes an --out FILE atomically (a complete old or new file,
// never a part), through a symbolic link to the file it names, after
// checking again that it is no input.
func writeOut(out string, data []byte, reads []readFile) error {
	if err := checkOut(out, reads); err != nil {
		return err
	}
	return atomicfile.WriteFile(out, data, 0o644)
}

// readBounded reads a file that voxbind wrote earlier (a saved plan, a
// journal), refusing what cannot be one before reading it whole: a file
// larger than limit, more than voxbind ever writes, and anything but a
// regular file or a pipe (a device such as /dev/zero, a socket, a
// directory). A pipe (/dev/stdin, <(…)) is read up to limit while what
// arrives can be JSON text: it must begin with '{' and hold no NUL byte.
// what names the file in messages; hint says which file to give instead.
func readBounded(path, what string, limit int, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &codedError{code: codePlanFile, msg: "read the " + what + ": " + escapedError(err), fix: hint, err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &codedError{code: codePlanFile, msg: "read the " + what + ": " + escapedError(err), fix: hint, err: err}
	}
	tooLarge := failure(codePlanFile, fmt.Sprintf("%s %s is larger than %d MiB, more than any %s voxbind writes", what, reconcile.Printable(path), limit>>20, what), hint)
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		if fi.Size() > int64(limit) {
			return nil, tooLarge
		}
	case mode&fs.ModeNamedPipe == 0:
		return nil, failure(codePlanFile, fmt.Sprintf("%s %s is %s, not a file voxbind writes", what, reconcile.Printable(path), fileKind(mode)), hint)
	}
	var data []byte
	chunk := make([]byte, 1<<20)
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			if len(data)+n > limit {
				return nil, tooLarge
			}
			if !mode.IsRegular() && !canBeJSON(data, chunk[:n]) {
				return nil, failure(codePlanFile, fmt.Sprintf("%s %s is not JSON text, so not a %s voxbind wrote", what, reconcile.Printable(path), what), hint)
			}
			data = append(data, chunk[:n]...)
		}
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, &codedError{code: codePlanFile, msg: "read the " + what + ": " + escapedError(err), fix: hint, err: err}
		}
	}
}

// canBeJSON reports whether more, read after data, may still be the JSON
// text of a plan or a journal: no NUL byte, and '{' first.
func canBeJSON(data, more []byte) bool {
	if bytes.IndexByte(more, 0) >= 0 {
		return false
	}
	if len(bytes.TrimLeft(data, " \t\r\n")) > 0 {
		return true // its start was checked
	}
	start := bytes.TrimLeft(more, " \t\r\n")
	return len(start) == 0 || start[0] == '{'
}

// fileKind names what a file that is not a regular file is, for messages.
func fileKind(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	}
	return "not a regular file"
}
