package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"
)

// TestCLIReferenceListsEveryCommandAndFlag keeps docs/cli.md complete:
// every command that --help lists has a section headed `voxbind PATH`, and
// every flag, short flag, environment variable and argument that the
// command's --help shows is named in that section (global flags, those
// under the heading "Global flags" of --help, in the section "Global
// flags"). A new command or flag fails here until it is
// documented.
func TestCLIReferenceListsEveryCommandAndFlag(t *testing.T) {
	doc, err := os.ReadFile("docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, miss := range undocumentedCLI(cliModel(t, &CLI{}), string(doc)) {
		t.Errorf("docs/cli.md: %s", miss)
	}
}

// TestSynopsesAreComplete keeps the synopses from going stale, those of
// docs/cli.md and the one at the top of each topic file in docs/ (before
// its first section; later ones show a part, such as a fleet's): in a
// code block, a line in synopsis notation
// ("voxbind plan [-f PATH]... [--out FILE]", continued on indented lines)
// names every flag of its command but the global ones (those lines of
// one block that name the same command together: "apply -f" and "apply
// --plan"), a flag only if the command takes it, and each argument, with
// "..." after one that takes several. A line that shows values ("plan -f
// fleet/ ...") is an example, not a synopsis.
func TestSynopsesAreComplete(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = string(b)
		if i := strings.Index(docs[name], "\n## "); i >= 0 && name != filepath.Join("docs", "cli.md") {
			docs[name] = docs[name][:i]
		}
	}
	problems, checked := staleSynopses(cliModel(t, &CLI{}), docs)
	for _, p := range problems {
		t.Error(p)
	}
	if checked < 20 {
		t.Errorf("only %d synopses found; the checker no longer recognises them", checked)
	}
}

// TestStaleSynopses checks the checker on a small command line.
func TestStaleSynopses(t *testing.T) {
	var cli struct {
		Verbose bool `short:"v" group:"global"`
		Run     struct {
			Fast  bool     `short:"F"`
			Slow  bool     ``
			Where []string `arg:"" name:"WHERE"`
		} `cmd:""`
	}
	doc := "```\nvoxbind run [-F] [--slow] WHERE...\n```\n\n" + // complete
		"```\nvoxbind run [--fast] WHERE\n    [--gone]\nvoxbind run -v WHERE\n```\n\n" + // one block: --slow missing, WHERE without ..., --gone unknown
		"```\nvoxbind run --fast here\n```\n" // an example
	got, checked := staleSynopses(cliModel(t, &cli), map[string]string{"x.md": doc})
	want := []string{
		`x.md:6: voxbind run: no "--slow"`,
		`x.md:6: voxbind run: no "WHERE..."`,
		`x.md:6: voxbind run: "--gone" is not a flag of voxbind run`,
	}
	if diff := cmp.Diff(want, got); diff != "" || checked != 2 {
		t.Errorf("staleSynopses: %d checked, want 2; (-want +got):\n%s", checked, diff)
	}
}

// staleSynopses lists what the synopses in docs (file name to text) miss
// or name wrongly, and counts the synopses checked (one per command per
// code block).
func staleSynopses(app *kong.Application, docs map[string]string) (problems []string, checked int) {
	commands := map[string]*kong.Node{}
	_ = kong.Visit(app.Node, func(v kong.Visitable, next kong.Next) error {
		if n, ok := v.(*kong.Node); ok && n.Type == kong.CommandNode && !n.Hidden {
			commands[commandPath(n)] = n
		}
		return next(nil)
	})
	bracketed := regexp.MustCompile(`\[[^\]]*\]`)
	flagName := regexp.MustCompile(`(?:^|[\s\[|])(--?[a-zA-Z][a-z0-9-]*)`)
	placeholder := regexp.MustCompile(`^(--?[a-zA-Z][a-z0-9-]*|[A-Z][A-Z0-9_:|=-]*(\.\.\.)?|[a-z]+(\|[a-z]+)+|\.\.\.)$`)
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		lines := strings.Split(docs[name], "\n")
		inFence := false
		type synopsis struct {
			line int
			text string
		}
		var block map[string]*synopsis // command path: its synopses in this block
		var order []string
		var last *synopsis
		flush := func() {
			for _, path := range order {
				problems = append(problems, checkSynopsis(name, block[path].line, path, commands[path], app, block[path].text, flagName)...)
				checked++
			}
			block, order, last = map[string]*synopsis{}, nil, nil
		}
		for i, line := range lines {
			if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
				if inFence {
					flush()
				}
				inFence = !inFence
				block, order, last = map[string]*synopsis{}, nil, nil
				continue
			}
			if !inFence {
				continue
			}
			if last != nil && strings.HasPrefix(line, " ") && strings.TrimSpace(line) != "" {
				last.text += " " + strings.TrimSpace(line)
				continue
			}
			last = nil
			words := strings.Fields(line)
			if len(words) < 2 || words[0] != "voxbind" {
				continue
			}
			path := ""
			for k := 2; k <= len(words); k++ {
				if p := strings.Join(words[1:k], " "); commands[p] != nil {
					path = p
				}
			}
			if path == "" {
				continue
			}
			rest := strings.Fields(bracketed.ReplaceAllString(strings.Join(words[1+len(strings.Fields(path)):], " "), ""))
			if !slices.ContainsFunc(rest, func(w string) bool { return !placeholder.MatchString(w) }) {
				if block[path] == nil {
					block[path] = &synopsis{line: i + 1}
					order = append(order, path)
				}
				block[path].text += " " + strings.Join(words[1+len(strings.Fields(path)):], " ")
				last = block[path]
			}
		}
	}
	return problems, checked
}

// checkSynopsis lists what the synopsis text of the command n (at
// file:line) misses or names wrongly.
func checkSynopsis(file string, line int, path string, n *kong.Node, app *kong.Application, text string, flagName *regexp.Regexp) []string {
	where := fmt.Sprintf("%s:%d: voxbind %s", file, line, path)
	named := map[string]bool{}
	for _, m := range flagName.FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	var problems []string
	takes := map[string]bool{}
	for _, f := range append(slices.Clone(n.Flags), app.Flags...) {
		long, short := "--"+f.Name, ""
		if f.Short != 0 {
			short = "-" + string(f.Short)
		}
		takes[long], takes[short] = true, true
		own := f.Group == nil || f.Group.Key != globalGroup.Key
		if own && !f.Hidden && !slices.Contains(app.Flags, f) && !named[long] && (short == "" || !named[short]) {
			problems = append(problems, fmt.Sprintf("%s: no %q", where, long))
		}
	}
	for _, a := range n.Positional {
		want := a.Name
		if a.IsCumulative() {
			want += "..."
		}
		if !strings.Contains(text, want) && (a.Enum == "" || !strings.Contains(text, strings.Join(a.EnumSlice(), "|"))) {
			problems = append(problems, fmt.Sprintf("%s: no %q", where, want))
		}
	}
	for _, flag := range slices.Sorted(maps.Keys(named)) {
		if !takes[flag] {
			problems = append(problems, fmt.Sprintf("%s: %q is not a flag of voxbind %s", where, flag, path))
		}
	}
	return problems
}

// TestUndocumentedCLI checks the checker on a small command line and a
// reference that forgets a command, a flag, a short flag, an environment
// variable and an argument, and puts a command's flag in another section.
func TestUndocumentedCLI(t *testing.T) {
	var cli struct {
		Verbose bool   `short:"v"`
		Token   string `env:"X_TOKEN"`
		Hidden  bool   `hidden:""`
		Run     struct {
			Fast  bool   `short:"F"`
			Slow  bool   ``
			Where string `arg:"" name:"WHERE"`
		} `cmd:""`
		Group struct {
			Leaf struct {
				Depth int `name:"depth"`
			} `cmd:""`
			Gone struct{} `cmd:""`
		} `cmd:""`
		Secret struct{} `cmd:"" hidden:""`
	}
	doc := "# Reference\n\n## Global flags\n\n`-v, --verbose`, `--token` (no variable)\n\n" +
		"## `voxbind run`\n\n`--fast` only; `--depth` is not this command's\n\n" +
		"## `voxbind group leaf`\n\nNothing here.\n"
	got := undocumentedCLI(cliModel(t, &cli), doc)
	want := []string{
		`global flags: no "--help"`,
		`global flags: no "-h"`,
		`global flags: no "X_TOKEN"`,
		`voxbind run: no "-F"`,
		`voxbind run: no "--slow"`,
		`voxbind run: no "WHERE"`,
		`voxbind group leaf: no "--depth"`,
		"no section headed `voxbind group gone`",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("undocumentedCLI (-want +got):\n%s", diff)
	}
}

func cliModel(t *testing.T, grammar any) *kong.Application {
	t.Helper()
	parser, err := kong.New(grammar, kong.Name("voxbind"), kong.Writers(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	return parser.Model
}

// undocumentedCLI lists what the command line has and the reference doc
// does not name, in the order --help shows it. Hidden commands and flags
// are skipped.
func undocumentedCLI(app *kong.Application, doc string) []string {
	sections := markdownSections(doc)
	var missing []string
	check := func(where, body string, flags []*kong.Flag, args []*kong.Positional) {
		for _, f := range flags {
			if f.Hidden {
				continue
			}
			names := []string{"--" + f.Name}
			if f.Short != 0 {
				names = append(names, "-"+string(f.Short))
			}
			names = append(names, f.Envs...)
			for _, name := range names {
				if !containsWord(body, name) {
					missing = append(missing, fmt.Sprintf("%s: no %q", where, name))
				}
			}
		}
		for _, a := range args {
			if !containsWord(strings.ToUpper(body), strings.ToUpper(a.Name)) {
				missing = append(missing, fmt.Sprintf("%s: no %q", where, a.Name))
			}
		}
	}
	global, _ := sectionHeaded(sections, func(h string) bool { return strings.EqualFold(h, "Global flags") })
	check("global flags", global, app.Flags, nil)
	// The global flags the commands declare (globals.go) are documented
	// once, with the global flags, not in each command's section.
	globals := map[string]*kong.Flag{}
	_ = kong.Visit(app.Node, func(v kong.Visitable, next kong.Next) error {
		n, ok := v.(*kong.Node)
		if !ok || n.Type != kong.CommandNode || n.Hidden {
			return next(nil)
		}
		path := commandPath(n)
		if len(n.Children) > 0 && len(n.Flags) == 0 && len(n.Positional) == 0 {
			return next(nil) // a group: its commands have the sections
		}
		heading := "`voxbind " + path + "`"
		body, ok := sectionHeaded(sections, func(h string) bool { return strings.Contains(h, heading) })
		if !ok {
			missing = append(missing, "no section headed "+heading)
			return next(nil)
		}
		var own []*kong.Flag
		for _, f := range n.Flags {
			if f.Group != nil && f.Group.Key == globalGroup.Key {
				globals[f.Name] = f
			} else {
				own = append(own, f)
			}
		}
		check("voxbind "+path, body, own, n.Positional)
		return next(nil)
	})
	var shared []*kong.Flag
	for _, name := range slices.Sorted(maps.Keys(globals)) {
		shared = append(shared, globals[name])
	}
	check("global flags", global, shared, nil)
	return missing
}

// commandPath is a command's name after its parents' names: "sandbox serve".
func commandPath(n *kong.Node) string {
	var parts []string
	for ; n != nil && n.Type == kong.CommandNode; n = n.Parent {
		parts = append(parts, n.Name)
	}
	slices.Reverse(parts)
	return strings.Join(parts, " ")
}

// containsWord reports whether s holds word with no name character
// (letter, digit, '-' or '_') right before or after it, so that "--out"
// is not found in "--output".
func containsWord(s, word string) bool {
	nameChar := func(r rune) bool { return r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		before := start == 0 || !nameChar(rune(s[start-1]))
		after := end == len(s) || !nameChar(rune(s[end]))
		if before && after {
			return true
		}
		i = start + 1
	}
}

// markdownSection is a heading and the text up to the next heading of the
// same or a higher level (subsections included).
type markdownSection struct {
	level   int
	heading string
	body    string
}

// markdownSections splits a markdown document at its ATX headings,
// ignoring lines inside fenced code blocks.
func markdownSections(doc string) []markdownSection {
	type heading struct {
		level int
		text  string
		line  int
	}
	lines := strings.Split(doc, "\n")
	var heads []heading
	inFence := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if level, text, ok := atxHeading(line); ok {
			heads = append(heads, heading{level, text, i})
		}
	}
	var out []markdownSection
	for k, h := range heads {
		end := len(lines)
		for _, next := range heads[k+1:] {
			if next.level <= h.level {
				end = next.line
				break
			}
		}
		out = append(out, markdownSection{h.level, h.text, strings.Join(lines[h.line+1:end], "\n")})
	}
	return out
}

// atxHeading parses "## Text" (at most three leading spaces).
func atxHeading(line string) (level int, text string, ok bool) {
	trimmed := strings.TrimLeft(line, " ")
	if len(line)-len(trimmed) > 3 {
		return 0, "", false
	}
	for level < len(trimmed) && trimmed[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || level < len(trimmed) && trimmed[level] != ' ' {
		return 0, "", false
	}
	return level, strings.TrimSpace(strings.TrimRight(strings.TrimSpace(trimmed[level:]), "#")), true
}

func sectionHeaded(sections []markdownSection, match func(string) bool) (string, bool) {
	for _, s := range sections {
		if match(s.heading) {
			return s.body, true
		}
	}
	return "", false
}

// TestSpecValidateExamples: each "$ voxbind validate -f FILE" example in
// docs/spec.md shows what validate prints for FILE, kept in testdata/docs.
func TestSpecValidateExamples(t *testing.T) {
	doc, err := os.ReadFile("docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?m)^```\n\\$ voxbind validate -f (\\S+)\n((?:[^`].*\n)*)```$").FindAllStringSubmatch(string(doc), -1)
	if len(examples) < 2 {
		t.Fatalf("docs/spec.md has %d examples of validate's errors, want the YAML and the CSV one", len(examples))
	}
	for _, ex := range examples {
		file, want := ex[1], ex[2]
		code, stdout, stderr := runCLI(t, "validate", "-f", filepath.Join("testdata", "docs", file))
		got := strings.ReplaceAll(stderr, filepath.Join("testdata", "docs")+string(filepath.Separator), "")
		if code != 1 || stdout != "" || got != want {
			t.Errorf("docs/spec.md: voxbind validate -f %s (testdata/docs/%[1]s): exit %d, stdout %q, and (-doc +printed):\n%s", file, code, stdout, cmp.Diff(want, got))
		}
	}
}

// TestDocJSONExamplesHaveEveryKey: the JSON examples that docs show
// whole (apply -o json's plan event in diagnostics.md, a fleet's plan and
// an account's plan in it in fleets.md) have every top-level key voxbind
// writes, in its order.
func TestDocJSONExamplesHaveEveryKey(t *testing.T) {
	state := filepath.Join(initSandbox(t), "account.json")
	specFile := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	_, events, _ := runCLI(t, "--sandbox", state, "apply", "-f", specFile, "--auto-approve", "--no-journal", "-o", "json")
	planEvent, _, _ := strings.Cut(events, "\n")

	fleet := t.TempDir()
	for k, binding := range []string{"[]", "[{registration: lobby@pbx.example.com, application: support, user: nobody}]"} {
		applyWrite(t, filepath.Join(fleet, fmt.Sprintf("%d.yaml", k)), fmt.Sprintf("version: 1\naccount_id: %d\nbindings: %s\n", 1000002+k, binding))
	}
	_, fleetPlan, _ := runCLI(t, "--sandbox", fleetTestState(t, 2, nil), "plan", "-f", fleet, "-o", "json")
	var fleetDoc struct{ Accounts []json.RawMessage }
	if err := json.Unmarshal([]byte(fleetPlan), &fleetDoc); err != nil || len(fleetDoc.Accounts) == 0 {
		t.Fatalf("fleet plan (%v):\n%s", err, fleetPlan)
	}

	for _, tt := range []struct {
		doc, example, real string
	}{
		{"docs/diagnostics.md", `(?m)^\{"kind":"plan".*$`, planEvent},
		{"docs/fleets.md", "(?s)```json\n\\{\n  \"format_version\": 1,\n  \"kind\": \"fleet\".*?\n```", fleetPlan},
		{"docs/fleets.md", `(?m)^    \{"format_version": 1, "account_id": .*\n.*$`, string(fleetDoc.Accounts[0])},
	} {
		doc, err := os.ReadFile(tt.doc)
		if err != nil {
			t.Fatal(err)
		}
		example := regexp.MustCompile(tt.example).FindString(string(doc))
		if example == "" {
			t.Errorf("%s: no example matching %s", tt.doc, tt.example)
			continue
		}
		keys := jsonTopKeys(t, tt.real)
		rest := example
		for _, key := range keys {
			i := regexp.MustCompile(`"` + key + `": ?`).FindStringIndex(rest)
			if i == nil {
				t.Errorf("%s: the example has no %q after the keys before it; voxbind writes %q:\n%s", tt.doc, key, keys, example)
				break
			}
			rest = rest[i[1]:]
		}
	}
}

// jsonTopKeys is the keys of the JSON object doc, in their order.
func jsonTopKeys(t *testing.T, doc string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object (%v): %.200s", err, doc)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestDocLinksResolve: every relative link in README.md and docs/*.md
// names a file or directory of the repository, and a #fragment names a
// heading of the linked markdown file (as GitHub makes anchors).
func TestDocLinksResolve(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	for _, file := range files {
		for _, problem := range brokenLinks(file) {
			t.Errorf("%s", problem)
		}
	}
}

// TestNoOutsideReferences: nothing in the repository points the reader to
// engineering documents kept outside it, which a user of voxbind cannot
// open: every text file (Go, markdown, YAML, scripts, goldens) is
// searched for their names and paths, and each hit is named by file and
// line. The names are built from pieces here, so that this file does not
// hit itself.
func TestNoOutsideReferences(t *testing.T) {
	// The last is the name of an engineering document kept outside; the
	// repository's own API notes are docs/management-api.md, so that a
	// reference to one is never taken for the other.
	banned := []string{"CONTRACT" + ".md", ".." + "/shared", "/work" + "/shared", "voximplant" + "-api.md"}
	texts := []string{".go", ".md", ".yaml", ".yml", ".txtar", ".golden", ".txt", ".json", ".csv"}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !slices.Contains(texts, filepath.Ext(path)) {
			return nil // a symbolic link's target is checked where it lives
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, b := range banned {
				if strings.Contains(line, b) {
					t.Errorf("%s:%d: refers to %s, a document outside the repository: write what the reader needs here, or cite docs/", path, i+1, b)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrokenLinks checks the checker on a page with good and bad links.
func TestBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("other.md", "# Other\n\n## `voxbind plan`: the --out flag\n\n## Twice\n\n## Twice\n")
	write("page.md", "# Page\n\n"+
		"[ok](other.md) [ok](other.md#voxbind-plan-the---out-flag) [ok](other.md#twice-1) [ok](#page)\n"+
		"[web](https://example.com/x.md) `[code](missing.md)`\n"+
		"```\n[fenced](missing.md)\n```\n"+
		"[gone](missing.md) [bad anchor](other.md#nope) [bad self](#nope) [dir](./)\n")
	got := brokenLinks(filepath.Join(dir, "page.md"))
	page := filepath.Join(dir, "page.md")
	want := []string{
		page + ":8: link missing.md: no such file or directory",
		page + ":8: link other.md#nope: other.md has no heading with anchor #nope",
		page + ":8: link #nope: page.md has no heading with anchor #nope",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("brokenLinks (-want +got):\n%s", diff)
	}
}

var (
	markdownLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	inlineCode   = regexp.MustCompile("`[^`]*`")
	urlScheme    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// brokenLinks returns one line per relative link of a markdown file that
// does not resolve. Links in code (fenced or inline) are not links.
func brokenLinks(file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	inFence := false
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range markdownLink.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			target := m[1]
			if urlScheme.MatchString(target) {
				continue
			}
			path, fragment, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if _, err := os.Stat(resolved); err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: link %s: no such file or directory", file, i+1, target))
					continue
				}
			}
			if fragment == "" || !strings.HasSuffix(resolved, ".md") {
				continue
			}
			text, err := os.ReadFile(resolved)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: link %s: %v", file, i+1, target, err))
				continue
			}
			if !slices.Contains(headingAnchors(string(text)), fragment) {
				problems = append(problems, fmt.Sprintf("%s:%d: link %s: %s has no heading with anchor #%s", file, i+1, target, filepath.Base(resolved), fragment))
			}
		}
	}
	return problems
}

// headingAnchors returns the anchors GitHub gives a document's headings:
// lower case, punctuation other than '-' and '_' dropped, spaces turned
// into '-', and "-1", "-2", ... added to repeats.
func headingAnchors(doc string) []string {
	seen := map[string]int{}
	var out []string
	for _, s := range markdownSections(doc) {
		var b strings.Builder
		for _, r := range strings.ToLower(s.heading) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", anchor, n))
		} else {
			out = append(out, anchor)
		}
		seen[anchor]++
	}
	return out
}

// TestReadmeSaysWhatCIRuns: the README's sentence about .ci/run names
// every command the script runs (go and npm), and the variable that lets
// it run without Node.js.
func TestReadmeSaysWhatCIRuns(t *testing.T) {
	script, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sentence, ok := strings.Cut(string(readme), "`.ci/run`")
	if !ok {
		t.Fatal("README.md does not mention .ci/run")
	}
	sentence, _, _ = strings.Cut(sentence, "\n\n")
	sentence = strings.Join(strings.Fields(sentence), " ")
	commands := regexp.MustCompile(`(?m)^[^#\n]*?\b(go [a-z]+(?: [a-z]+| \./\.\.\.)?|npm ci)`).FindAllStringSubmatch(string(script), -1)
	if len(commands) < 4 {
		t.Fatalf(".ci/run runs only %q: the test no longer reads it", commands)
	}
	wants := []string{"VOXBIND_SKIP_CONFORMANCE"}
	for _, m := range commands {
		wants = append(wants, m[1])
	}
	for _, want := range wants {
		if !strings.Contains(sentence, want) {
			t.Errorf("README.md says .ci/run runs %q, without %s (which .ci/run runs or reads)", sentence, want)
		}
	}
}

// TestReadmeIsAFrontDoor: the README stays short; the reference belongs in
// docs/.
func TestReadmeIsAFrontDoor(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 250 {
		t.Errorf("README.md has %d lines, more than 250: move the reference into docs/ and link to it", n)
	}
}

// apacheLicense20 is the SHA-256 of the Apache License 2.0 text, from
// "Apache License" to its appendix's last "limitations under the
// License.", with every run of white space made one space: taken from the
// LICENSE files of other projects (75 copies, all the same), not from
// ours.
const apacheLicense20 = "0ffddef9e48f8a09aed5caf2d44f7ba1c1be2d9b8e0a6f693b1635b2d5566645"

// TestLicense: LICENSE is the Apache License 2.0, unchanged, after the
// copyright line that the README's License section promises.
func TestLicense(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	license, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := sectionHeaded(markdownSections(string(readme)), func(h string) bool { return h == "License" })
	if !ok {
		t.Fatal("README.md has no section headed License")
	}
	if !strings.Contains(section, "Apache License 2.0") {
		t.Errorf("README.md's License section does not name the Apache License 2.0:\n%s", section)
	}
	copyright := regexp.MustCompile(`Copyright \d{4} The voxbind Authors`).FindString(strings.Join(strings.Fields(section), " "))
	if copyright == "" {
		t.Fatalf("README.md's License section gives no copyright line (Copyright YEAR The voxbind Authors):\n%s", section)
	}
	first, text, _ := strings.Cut(string(license), "\n")
	if first != copyright {
		t.Errorf("LICENSE starts with %q; want the README's copyright line %q", first, copyright)
	}
	const from, to = "Apache License", "limitations under the License."
	i, j := strings.Index(text, from), strings.LastIndex(text, to)
	if i < 0 || j < i || strings.TrimSpace(text[:i]) != "" || strings.TrimSpace(text[j+len(to):]) != "" {
		t.Fatalf("LICENSE is not the copyright line and then the text of the Apache License 2.0 (from %q to %q) alone", from, to)
	}
	sum := sha256.Sum256([]byte(strings.Join(strings.Fields(text[i:j+len(to)]), " ")))
	if got := hex.EncodeToString(sum[:]); got != apacheLicense20 {
		t.Errorf("LICENSE's license text has SHA-256 %s (white space made one space); the Apache License 2.0 has %s: restore the text from https://www.apache.org/licenses/LICENSE-2.0.txt", got, apacheLicense20)
	}
}

// TestDiagnosticCodesDocumented: every code a diagnostic can carry (the
// string constants of spec.Code and the code constants of package main)
// is listed in docs/diagnostics.md, so that a new code cannot ship
// unexplained.
func TestDiagnosticCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/diagnostics.md")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, file := range []string{"spec/errors.go", "diagnostics.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") && !strings.HasPrefix(name.Name, "code") {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						codes = append(codes, strings.Trim(lit.Value, `"`))
					}
				}
			}
		}
	}
	if len(codes) < 40 {
		t.Fatalf("found only %d codes: %v", len(codes), codes)
	}
	for _, c := range codes {
		if !strings.Contains(string(doc), "`"+c+"`") {
			t.Errorf("docs/diagnostics.md does not list the code %q", c)
		}
	}
}
