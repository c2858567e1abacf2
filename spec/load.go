package spec

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the spec files named by paths: each path is a
// file, or a directory standing for every *.yaml and *.yml file directly
// inside it, in name order (dot files are skipped, as a shell glob would).
// A file named twice is read once. It checks everything that needs no live
// account and returns every problem at once as Errors, sorted, with a nil
// Spec; on success the bindings of all files are in load order.
func Load(paths []string) (*Spec, error) {
	files, errs := expand(paths)
	l := newLoader()
	l.errs = errs
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.errs = append(l.errs, &Error{Pos: Pos{File: f}, Msg: "cannot read the file: " + cause(err).Error()})
			continue
		}
		l.file(f, data)
	}
	return l.result()
}

// loadBytes loads one file's contents; the fuzz target and benchmarks use it.
func loadBytes(name string, data []byte) (*Spec, error) {
	l := newLoader()
	l.file(name, data)
	return l.result()
}

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
		return nil, Errors{{Msg: "no spec file given: pass one with -f FILE (files and directories may repeat)"}}
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
			msg := "cannot read: " + cause(err).Error()
			if errors.Is(err, fs.ErrNotExist) {
				msg = "no such file or directory: check the path given with -f (the default is voxbind.yaml in the current directory)"
			}
			errs = append(errs, &Error{Pos: Pos{File: p}, Msg: msg})
			continue
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, &Error{Pos: Pos{File: p}, Msg: "cannot read the directory: " + cause(err).Error()})
			continue
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				continue
			}
			full := filepath.Join(p, name)
			if e.IsDir() {
				continue
			}
			if e.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(full); err != nil || st.IsDir() {
					continue
				}
			}
			add(full)
			n++
		}
		if n == 0 {
			errs = append(errs, &Error{Pos: Pos{File: p}, Msg: "directory has no *.yaml or *.yml file: put the spec there, or pass the file itself with -f"})
		}
	}
	return files, errs
}

// loader collects the files of one run and the checks that span entries
// and files.
type loader struct {
	spec Spec
	errs Errors

	regs   map[string]Pos // "sip_username@proxy" (proxy lower-cased) → where first listed
	regIDs map[int64]Pos
	users  map[userKey]Pos
}

// userKey identifies a user target as written: application and user each by
// lower-cased name or by id. Names and ids cannot be compared offline.
type userKey struct {
	app    string
	appID  int64
	user   string
	userID int64
}

func newLoader() *loader {
	return &loader{
		regs:   make(map[string]Pos),
		regIDs: make(map[int64]Pos),
		users:  make(map[userKey]Pos),
	}
}

func (l *loader) result() (*Spec, error) {
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	if l.spec.Version == 0 {
		l.spec.Version = 1
	}
	s := l.spec
	return &s, nil
}

func (l *loader) errorf(pos Pos, msg string) {
	l.errs = append(l.errs, &Error{Pos: pos, Msg: msg})
}

// file loads one file's bytes into the spec.
func (l *loader) file(name string, data []byte) {
	l.spec.Files = append(l.spec.Files, name)
	root, errs := parseYAML(name, data)
	if errs != nil {
		l.errs = append(l.errs, errs...)
		return
	}
	w := walker{l: l, file: name}
	w.top(root)
}

// parseYAML decodes one file into its root node, turning yaml.v3's errors
// (which only carry "line N") into located Errors.
func parseYAML(name string, data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		if r := recover(); r != nil {
			root, errs = nil, Errors{{Pos: Pos{File: name, Line: 1, Col: 1}, Msg: "invalid YAML: the parser gave up on this file; check it with a YAML linter"}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, Errors{{Pos: Pos{File: name, Line: 1, Col: 1}, Msg: "empty file: a spec starts with \"version: 1\" and lists its entries under \"bindings:\""}}
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
		return nil, Errors{{Pos: Pos{File: name, Line: line, Col: 1}, Msg: "a second YAML document (after \"---\"): write one spec per file, or split it into several files"}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{Pos: Pos{File: name, Line: 1, Col: 1}, Msg: "empty file: a spec starts with \"version: 1\" and lists its entries under \"bindings:\""}}
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, Errors{{Pos: Pos{File: name, Line: max(root.Line, 1), Col: max(root.Column, 1)}, Msg: "empty document: a spec starts with \"version: 1\" and lists its entries under \"bindings:\""}}
	}
	return root, nil
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
				errs = append(errs, &Error{Pos: Pos{File: name, Line: i + 1, Col: j + 1}, Msg: "tab in indentation: YAML indents with spaces only; replace the tab with spaces"})
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
	return Errors{{Pos: Pos{File: name, Line: line, Col: col}, Msg: "invalid YAML: " + msg + "; check the indentation and quoting here or on the line before"}}
}
