package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/voxbind/voxbind/internal/atomicfile"
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
	if target.IsDir() {
		return failure(codeOutFile, fmt.Sprintf("--out %s is a directory", out), "give a file name; nothing was written")
	}
	if sandbox.LooksLikeState(out) {
		// Maybe one that 'sandbox serve' has open: replacing it would
		// destroy that sandbox's account.
		return failure(codeOutFile, fmt.Sprintf("--out %s is a sandbox state file", out), "write the output to another file; nothing was written")
	}
	if target.Mode().IsRegular() && looksLikeKey(out) {
		// Some account's key (this command may not read it): replacing it
		// would lose the key for good.
		return failure(codeOutFile, fmt.Sprintf("--out %s holds a private key", out), "write the output to another file; nothing was written")
	}
	return nil
}

// looksLikeKey reports whether the file at path holds a private key: a
// service-account key file (a private_key field) or a PEM block. Only
// the start of the file is read: a key file is small.
func looksLikeKey(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return bytes.Contains(head, []byte(`"private_key"`)) || bytes.Contains(head, []byte("-----BEGIN "))
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
