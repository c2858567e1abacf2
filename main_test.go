package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/voximplant"
	"gopkg.in/yaml.v3"
)

// TestMain lets the testscript scripts run `voxbind` as a real process: the
// test binary re-executes itself as the command.
func TestMain(m *testing.M) {
	testscript.Main(journalsElsewhere{m}, map[string]func(){
		"voxbind": func() { os.Exit(run(os.Args[1:], &Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})) },
	})
}

// journalsElsewhere runs the tests with VOXBIND_JOURNAL_DIR set to a
// temporary directory, so that the applies they run in-process (and the
// processes they start) keep their journals out of the source tree. The
// scripts get their own environment, and their journals go to $WORK.
// It also lets at least testsAtOnce parallel tests run at once when
// -parallel is not given.
type journalsElsewhere struct{ m *testing.M }

// testsAtOnce is the least number of parallel tests run at once. The
// slowest tests mostly wait (for the breaker period, the grace of calls in
// flight, the first-contact budget) while using no CPU; with go test's
// default of one per core, on a 2-core machine they queue behind one
// another and behind the scripts, which need the CPU they leave idle.
const testsAtOnce = 4

func (j journalsElsewhere) Run() int {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(max(runtime.GOMAXPROCS(0), testsAtOnce)))
	}
	dir, err := os.MkdirTemp("", "voxbind-test-journals-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv(journalDirEnv, dir)
	return j.m.Run()
}

// TestScripts runs the end-to-end scripts in testdata/script against the
// built-in sandbox. One script: go test -run 'TestScripts/^plan_json$' .
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"filemode":   cmdFilemode,
			"islink":     cmdIsLink,
			"jsonvalid":  cmdJSONValid,
			"jsonpath":   cmdJSONPath,
			"jsonabsent": cmdJSONAbsent,
			"jsonset":    cmdJSONSet,
			"exitcode":   cmdExitcode,
			"freeport":   cmdFreeport,
			"waitport":   cmdWaitport,
			"dates":      cmdDates,
			"glob":       cmdGlob,
			"waitlines":  cmdWaitlines,
			"nosecrets":  cmdNoSecrets,
			"pemkey":     cmdPEMKey,
		},
	})
}

// cmdFilemode checks a file's permission bits: filemode FILE 0600.
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s has mode %#o, want %#o", args[0], got, want)
	}
}

// cmdPEMKey writes a fresh private key, made at run time, as a PEM file
// (no key is ever committed): pemkey FILE.
func cmdPEMKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pemkey FILE")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
}

// cmdIsLink checks that a path is a symbolic link (not replaced by a
// regular file): [!] islink FILE.
func cmdIsLink(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] islink FILE")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	if link := fi.Mode()&os.ModeSymlink != 0; link == neg {
		ts.Fatalf("%s: symbolic link = %v", args[0], link)
	}
}

// cmdJSONValid checks that a file (or stdout/stderr) holds exactly one JSON
// document and nothing else but white space: jsonvalid stdout.
func cmdJSONValid(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] jsonvalid FILE")
	}
	err := oneJSONDocument(ts.ReadFile(args[0]))
	switch {
	case neg && err == nil:
		ts.Fatalf("%s holds one JSON document", args[0])
	case !neg && err != nil:
		ts.Fatalf("%s: %v", args[0], err)
	}
}

func oneJSONDocument(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not a JSON document: %w", err)
	}
	if err := dec.Decode(&v); err != io.EOF {
		return errors.New("more than one JSON document, or text after it")
	}
	return nil
}

// cmdJSONPath checks one value of a JSON document: jsonpath FILE PATH REGEXP.
// PATH is dot-separated object keys and array indexes (summary.bind,
// changes.0.action); `@len` as the last element is the array's length. The
// value, encoded as compact JSON, must match REGEXP in full (with !, must
// not); the path must exist either way.
func cmdJSONPath(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: [!] jsonpath FILE PATH REGEXP")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &v))
	got, err := jsonLookup(v, args[1])
	if err != nil {
		// Also negated: a path that is not there (a typo) must not pass.
		// For "this key is absent", use jsonabsent.
		ts.Fatalf("%s: %v", args[0], err)
	}
	re, err := regexp.Compile(`\A(?:` + args[2] + `)\z`)
	ts.Check(err)
	ok := re.MatchString(got)
	switch {
	case neg && ok:
		ts.Fatalf("%s: %s = %s matches %s", args[0], args[1], got, args[2])
	case !neg && !ok:
		ts.Fatalf("%s: %s = %s, want a match for %s", args[0], args[1], got, args[2])
	}
}

// cmdJSONAbsent checks that an object of a JSON document lacks a key:
// jsonabsent FILE PATH.KEY. The object at PATH must exist, so that a typo
// in PATH fails instead of passing.
func cmdJSONAbsent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonabsent FILE PATH.KEY")
	}
	if err := jsonAbsent([]byte(ts.ReadFile(args[0])), args[1]); err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
}

// jsonAbsent reports an error unless the object at the path's parent
// exists and lacks its last key.
func jsonAbsent(doc []byte, path string) error {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return err
	}
	parent, key := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, key = path[:i], path[i+1:]
	}
	obj := v
	if parent != "" {
		raw, err := jsonLookup(v, parent)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			return err
		}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not an object", parent)
	}
	if _, has := m[key]; has {
		return fmt.Errorf("%s is present", path)
	}
	return nil
}

// cmdJSONSet sets one value of a JSON file, as a sandbox state edited by
// hand: jsonset FILE PATH JSON (jsonset sb/account.json
// children.1.account.frozen true). PATH is as for jsonpath; its last key
// may be new to its object.
func cmdJSONSet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonset FILE PATH JSON")
	}
	var doc, value any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &doc))
	ts.Check(json.Unmarshal([]byte(args[2]), &value))
	keys := strings.Split(args[1], ".")
	v := doc
	for i, key := range keys {
		last := i == len(keys)-1
		switch x := v.(type) {
		case map[string]any:
			if last {
				x[key] = value
				continue
			}
			v = x[key]
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(x) {
				ts.Fatalf("%s: no element %q in an array of %d", args[1], key, len(x))
			}
			if last {
				x[n] = value
				continue
			}
			v = x[n]
		default:
			ts.Fatalf("%s: %q: not an object or array", args[1], key)
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), append(data, '\n'), 0o644))
}

func jsonLookup(v any, path string) (string, error) {
	for _, key := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[key]; !ok {
				return "", fmt.Errorf("%s: no key %q", path, key)
			}
		case []any:
			if key == "@len" {
				v = len(x)
				continue
			}
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("%s: no element %q in an array of %d", path, key, len(x))
			}
			v = x[i]
		default:
			return "", fmt.Errorf("%s: %q: not an object or array", path, key)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// cmdNoSecrets fails when a file (or stdout/stderr) holds anything shaped
// like a token, a PEM key marker, or, given a key file, any piece of that
// key: nosecrets stderr sb/credentials.json.
func cmdNoSecrets(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: nosecrets FILE [KEYFILE]")
	}
	var secrets leakcheck.Secrets
	if len(args) == 2 {
		creds, err := voximplant.LoadCredentials(ts.MkAbs(args[1]), nil)
		ts.Check(err)
		secrets.Keys = []*rsa.PrivateKey{creds.PrivateKey}
	}
	if leaks := leakcheck.Find(ts.ReadFile(args[0]), secrets); len(leaks) > 0 {
		ts.Fatalf("%s contains secrets: %s", args[0], strings.Join(leaks, "; "))
	}
}

// cmdFreeport sets an environment variable to a loopback TCP port that was
// free a moment ago: freeport PORT.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := l.Addr().(*net.TCPAddr).Port
	ts.Check(l.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdWaitport waits up to 20 s until something listens on a loopback
// port: waitport 8080. For a server started in the background with `&`.
func cmdWaitport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport PORT")
	}
	addr := net.JoinHostPort("127.0.0.1", args[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdDates rewrites files so that they hold days relative to today (UTC):
// each {{today}}, {{today+N}} and {{today-N}} becomes that day, as
// YYYY-MM-DD. Ignore entries need an until near the day the test runs:
// dates FILE...
func cmdDates(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: dates FILE...")
	}
	re := regexp.MustCompile(`\{\{today([+-][0-9]+)?\}\}`)
	today := time.Now().UTC()
	for _, f := range args {
		out := re.ReplaceAllStringFunc(ts.ReadFile(f), func(m string) string {
			days := 0
			if sub := re.FindStringSubmatch(m)[1]; sub != "" {
				days, _ = strconv.Atoi(strings.TrimPrefix(sub, "+"))
			}
			return today.AddDate(0, 0, days).Format(time.DateOnly)
		})
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(out), 0o644))
	}
}

// cmdGlob sets an environment variable to the one file a pattern
// matches, relative to $WORK: glob VAR PATTERN. No match, or several, fail.
func cmdGlob(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: glob VAR PATTERN")
	}
	work := ts.Getenv("WORK")
	matches, err := filepath.Glob(filepath.Join(work, args[1]))
	ts.Check(err)
	if len(matches) != 1 {
		ts.Fatalf("%s matches %d files, want 1: %v", args[1], len(matches), matches)
	}
	rel, err := filepath.Rel(work, matches[0])
	ts.Check(err)
	ts.Setenv(args[0], rel)
}

// cmdWaitlines waits up to 20 s until FILE has at least N lines that
// match REGEXP: waitlines j.jsonl 2 '"kind":"result"'. For a file a
// background command writes.
func cmdWaitlines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitlines FILE N REGEXP")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		got := 0
		for _, line := range strings.Split(string(data), "\n") {
			if re.MatchString(line) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s has %d lines matching %s after 20 s, want %d:\n%s", args[0], got, args[2], n, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdExitcode runs a command and checks its exact exit status (the built-in
// `! exec` accepts any failure): exitcode 2 voxbind plan --detailed-exitcode.
// stdout and stderr are kept for the following checks.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE COMMAND [ARG]...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// TestJSONChecks: jsonabsent and jsonpath fail on a path that is not there,
// so that a typo cannot pass as "absent" or as "does not match".
func TestJSONChecks(t *testing.T) {
	doc := []byte(`{"changes": [{"step": 1, "precondition": null}, {"step": 2}]}`)
	for path, ok := range map[string]bool{
		"changes.1.precondition": true,  // absent
		"changes.0.precondition": false, // present, even if null
		"changes.9.precondition": false, // no such element
		"chnages.1.precondition": false, // typo
		"changes.1.step.x":       false, // not an object
		"summary":                true,
	} {
		if err := jsonAbsent(doc, path); (err == nil) != ok {
			t.Errorf("jsonAbsent(%s) = %v, want ok %v", path, err, ok)
		}
	}
	var v any
	json.Unmarshal(doc, &v)
	if _, err := jsonLookup(v, "changes.1.precondition"); err == nil {
		t.Error("jsonLookup found a key that is not there")
	}
}

// TestCIExamplesUseRealFlags keeps examples/ci honest: every voxbind
// command line in the workflows parses with voxbind's own command line
// definition, and the workflows do the jobs docs/ci.md promises.
func TestCIExamplesUseRealFlags(t *testing.T) {
	for _, file := range []string{"examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("%s is not valid YAML: %v", file, err)
			}
			var lines [][]string
			collectVoxbindCommands(&doc, &lines)
			seen := map[string]bool{}
			for _, args := range lines {
				if err := parseOnly(args); err != nil {
					t.Errorf("%s: voxbind %s: %v", file, strings.Join(args, " "), err)
				}
				cmd := args[0]
				for _, a := range args[1:] {
					if strings.HasPrefix(a, "--") || a == "-o" {
						seen[cmd+" "+a] = true
					}
				}
				seen[cmd] = true
			}
			for _, want := range []string{"validate", "plan --out", "plan -o", "plan --detailed-exitcode", "apply --plan", "apply --journal"} {
				if !seen[want] {
					t.Errorf("%s runs no `voxbind %s`", file, want)
				}
			}
			if !keepsArtifact(&doc, "journal.jsonl") {
				t.Errorf("%s keeps no journal.jsonl as an artifact (path: or paths:)", file)
			}
		})
	}
}

// keepsArtifact reports whether a CI file names file under a path: key
// (GitHub's upload-artifact) or in a paths: list (GitLab's artifacts).
func keepsArtifact(n *yaml.Node, file string) bool {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, v := n.Content[i].Value, n.Content[i+1]
			if key != "path" && key != "paths" {
				continue
			}
			if v.Kind == yaml.ScalarNode && slices.Contains(strings.Fields(v.Value), file) {
				return true
			}
			for _, c := range v.Content {
				if c.Value == file {
					return true
				}
			}
		}
	}
	for _, c := range n.Content {
		if keepsArtifact(c, file) {
			return true
		}
	}
	return false
}

// collectVoxbindCommands finds `voxbind ...` command lines in the shell
// scripts of a CI file (GitHub's run:, GitLab's script:, before_script: and
// after_script:) and appends their arguments, shell variables replaced by
// "1" (a value every flag accepts).
func collectVoxbindCommands(n *yaml.Node, out *[][]string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "run", "script", "before_script", "after_script":
				collectFromScript(n.Content[i+1], out)
			}
		}
	}
	for _, c := range n.Content {
		collectVoxbindCommands(c, out)
	}
}

func collectFromScript(n *yaml.Node, out *[][]string) {
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			collectFromScript(c, out)
		}
		return
	}
	if n.Kind != yaml.ScalarNode {
		return
	}
	script := strings.ReplaceAll(n.Value, "\\\n", " ")
	for _, line := range strings.Split(script, "\n") {
		words := shellWords(line)
		for i, w := range words {
			if w != "voxbind" || i > 0 && !commandStart[words[i-1]] && !strings.HasSuffix(words[i-1], ";") {
				continue
			}
			var args []string
			for _, a := range words[i+1:] {
				if strings.ContainsAny(a[:1], "><|&;)") || len(a) > 1 && a[0] >= '0' && a[0] <= '9' && a[1] == '>' {
					break
				}
				last := strings.HasSuffix(a, ";")
				a = strings.TrimSuffix(a, ";")
				if strings.Contains(a, "$") {
					a = "1"
				}
				args = append(args, a)
				if last {
					break
				}
			}
			if len(args) > 0 {
				*out = append(*out, args)
			}
		}
	}
}

// commandStart holds the shell words after which a command name stands.
var commandStart = map[string]bool{"&&": true, "||": true, "|": true, ";": true, "then": true, "else": true, "do": true, "!": true}

// shellWords splits a shell line at blanks, honouring quotes; enough for
// the simple command lines of the examples.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseOnly parses args with voxbind's command line definition without
// running anything.
func parseOnly(args []string) (err error) {
	var cli CLI
	parser, err := newParser(&cli, &Stdio{Out: io.Discard, Err: io.Discard})
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kong exited with %v", r)
		}
	}()
	_, err = parser.Parse(hoistGlobals(parser.Model, args))
	return err
}

// exportAccount is an in-memory reconcile.Account for the reads of export:
// it records which rules and users lists were read and can fail one.
type exportAccount struct {
	current   reconcile.Current
	mu        sync.Mutex
	readRules []int64
	readUsers []int64
	failUsers int64 // application whose Users fails; 0 = none
}

func (a *exportAccount) Info(context.Context) (reconcile.AccountInfo, error) {
	return a.current.Account, nil
}
func (a *exportAccount) Registrations(context.Context) ([]reconcile.Registration, error) {
	return a.current.Registrations, nil
}
func (a *exportAccount) Applications(context.Context) ([]reconcile.Application, error) {
	return a.current.Applications, nil
}
func (a *exportAccount) Rules(_ context.Context, app int64) ([]reconcile.Rule, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readRules = append(a.readRules, app)
	return a.current.Rules[app], nil
}
func (a *exportAccount) Users(ctx context.Context, app int64) ([]reconcile.User, error) {
	a.mu.Lock()
	a.readUsers = append(a.readUsers, app)
	a.mu.Unlock()
	if app == a.failUsers {
		return nil, errors.New("api error 117: invalid user_id")
	}
	return a.current.Users[app], nil
}
func (a *exportAccount) Bind(context.Context, int64, *reconcile.Target) error {
	return errors.New("export must not write")
}

func exportTestAccount() *exportAccount {
	app := func(id int64) reconcile.Ref {
		return reconcile.Ref{ID: id, Name: fmt.Sprintf("app%d.acme.voximplant.com", id)}
	}
	reg := func(id int64, t *reconcile.Target) reconcile.Registration {
		return reconcile.Registration{RegistrationRef: reconcile.RegistrationRef{ID: id, SIPUsername: fmt.Sprint("r", id), Proxy: "p"}, Target: t}
	}
	return &exportAccount{current: reconcile.Current{
		Account:      reconcile.AccountInfo{ID: 5, Name: "acme"},
		Applications: []reconcile.Application{{ID: 1, Name: app(1).Name}, {ID: 2, Name: app(2).Name}, {ID: 3, Name: app(3).Name}},
		Rules:        map[int64][]reconcile.Rule{1: {{ID: 11, ApplicationID: 1, Name: "in"}}},
		Users:        map[int64][]reconcile.User{2: {{ID: 21, ApplicationID: 2, Name: "bob"}}, 1: {{ID: 12, ApplicationID: 1, Name: "al"}}},
		Registrations: []reconcile.Registration{
			reg(101, &reconcile.Target{Application: app(1), Rule: &reconcile.Ref{ID: 11, Name: "in"}}),
			reg(102, &reconcile.Target{Application: app(2), User: &reconcile.Ref{ID: 21, Name: "bob"}}),
			reg(103, &reconcile.Target{Application: app(3)}),
			reg(104, nil),
			reg(105, &reconcile.Target{Application: app(1), Rule: &reconcile.Ref{ID: 11, Name: "in"}}),
		},
	}}
}

// TestObserveBoundReadsOnlyWhatIsNeeded: the rules of applications with
// rule-bound registrations, the users of those with user-bound ones, each
// once.
func TestObserveBoundReadsOnlyWhatIsNeeded(t *testing.T) {
	acct := exportTestAccount()
	current, err := reconcile.ObserveBound(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1}, acct.readRules); diff != "" {
		t.Errorf("rules read (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2}, acct.readUsers); diff != "" {
		t.Errorf("users read (-want +got):\n%s", diff)
	}
	var out strings.Builder
	if _, err := reconcile.Export(&out, current, reconcile.Selection{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"application: app1\n    rule: in\n", "application: app2\n    user: bob\n", "account_id: 5"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("export lacks %q:\n%s", want, out.String())
		}
	}
}

func TestObserveBoundError(t *testing.T) {
	acct := exportTestAccount()
	acct.failUsers = 2
	_, err := reconcile.ObserveBound(context.Background(), acct)
	if err == nil || !strings.Contains(err.Error(), "read users of application 2 (app2.acme.voximplant.com): api error 117") {
		t.Errorf("ObserveBound = %v, want the users error naming application 2", err)
	}
}

// TestCollectVoxbindCommands checks the checker: it finds command lines in
// run:/script: blocks only, cuts them at redirections, and a flag that does
// not exist fails to parse.
func TestCollectVoxbindCommands(t *testing.T) {
	const ci = `
jobs:
  x:
    name: voxbind plan
    steps:
      - run: |
          echo "voxbind plan --bogus"   # quoted: not a command
          voxbind plan -f "$SPEC" -o markdown --out plan.json > plan.md 2> err
          set +e; voxbind apply --plan plan.json \
            --max-unbind 3 && voxbind version; echo done
job:
  script:
    - voxbind plan --frobnicate
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(ci), &doc); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	collectVoxbindCommands(&doc, &got)
	want := [][]string{
		{"plan", "-f", "1", "-o", "markdown", "--out", "plan.json"},
		{"apply", "--plan", "plan.json", "--max-unbind", "3"},
		{"version"},
		{"plan", "--frobnicate"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("commands found (-want +got):\n%s", diff)
	}
	for _, args := range want[:3] {
		if err := parseOnly(args); err != nil {
			t.Errorf("parseOnly(%q) = %v, want nil", args, err)
		}
	}
	if err := parseOnly(want[3]); err == nil {
		t.Errorf("parseOnly(%q) = nil, want an unknown-flag error", want[3])
	}
}
