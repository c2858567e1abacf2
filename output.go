package main

import (
	"fmt"
	"math"
	"os"

	"github.com/voxbind/voxbind/internal/atomicfile"
)

// checkRate checks --rate, the client's ceiling in requests per second,
// with the same words for every command that takes it.
func checkRate(rate float64) error {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return fmt.Errorf("--rate %g: give a positive number of requests per second, or 0 for no ceiling", rate)
	}
	return nil
}

// readFile is a file a command reads, named for messages.
type readFile struct {
	path string
	what string // "the spec file", "the sandbox state", ...
}

// reads lists the files every command that talks to an account reads
// (the sandbox state or the key file), plus the spec files given.
func (g *Globals) reads(specFiles ...string) []readFile {
	var out []readFile
	for _, f := range specFiles {
		out = append(out, readFile{f, "the spec file"})
	}
	if g.Sandbox != "" {
		out = append(out, readFile{g.Sandbox, "the sandbox state"})
	} else if g.Credentials != "" {
		out = append(out, readFile{g.Credentials, "the credentials file"})
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
			return fmt.Errorf("--out %s is %s%s, which this command reads: write the output to another file; nothing was written", out, r.what, same)
		}
	}
	if target.IsDir() {
		return fmt.Errorf("--out %s is a directory: give a file name; nothing was written", out)
	}
	return nil
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
