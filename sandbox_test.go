package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// initSandbox runs `voxbind sandbox init` into a new directory.
func initSandbox(t *testing.T) (dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "sbx")
	var out, errb bytes.Buffer
	if code := run([]string{"sandbox", "init", dir}, &Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("sandbox init: exit %d: %s", code, errb.String())
	}
	return dir
}

func TestSandboxInitCommand(t *testing.T) {
	dir := initSandbox(t)
	var out, errb bytes.Buffer
	code := run([]string{"sandbox", "init", dir}, &Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 1 || !strings.Contains(errb.String(), "already exists") {
		t.Errorf("second init: exit %d, stderr %q; want 1 and a refusal", code, errb.String())
	}
	if _, err := sandbox.Load(filepath.Join(dir, "account.json")); err != nil {
		t.Error(err)
	}
}

func TestSandboxServeRefusesNonLoopback(t *testing.T) {
	dir := initSandbox(t)
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080", "example.com:80", "nonsense"} {
		var errb bytes.Buffer
		code := run([]string{"sandbox", "serve", "--state", filepath.Join(dir, "account.json"), "--addr", addr}, &Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
		if code != 1 || !strings.Contains(errb.String(), addr) {
			t.Errorf("--addr %s: exit %d, stderr %q; want 1 naming the address", addr, code, errb.String())
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if _, err := loopbackAddr(addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
}

// TestSandboxServe serves an initialised directory, talks to it with the
// key that init wrote, and stops it as SIGINT would.
func TestSandboxServe(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, "account.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	cmd := &SandboxServeCmd{State: state, Addr: "127.0.0.1:0", Seed: 1}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Run(ctx, testSession(&Stdio{Err: pw}))
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("serve printed nothing; error: %v", <-done)
	}
	first := lines.Text()
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`^sandbox: serving account 1000001 \(demo\) at (http://127\.0\.0\.1:\d+/platform_api/) from (.*)$`).FindStringSubmatch(first)
	if m == nil || m[2] != state {
		t.Fatalf("first line %q", first)
	}
	creds, err := voximplant.LoadCredentials(filepath.Join(dir, "credentials.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := voximplant.New(voximplant.Options{Endpoint: m[1], Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Bind(ctx, 3003, &reconcile.Target{Application: reconcile.Ref{ID: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.Open(state, sandbox.Options{}); err == nil || !strings.Contains(err.Error(), "another voxbind") {
		t.Errorf("a second server of the file: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when its context was cancelled")
	}
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Registrations[2]; r.ID != 3003 || r.ApplicationID != 10 {
		t.Errorf("the bind was not saved: %+v", r)
	}
	s, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatalf("the lock outlived serve: %v", err)
	}
	s.Close()
}

func TestOpenAccountWithSandbox(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, "account.json")
	ctx := context.Background()
	g := &AccountFlags{Sandbox: state, Credentials: "/nonexistent/ignored.json"}
	s := testSession(&Stdio{Err: io.Discard})
	client, closeAccount, err := g.openAccount(ctx, s, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := client.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 12 {
		t.Errorf("%d registrations, want the demo's 12", len(regs))
	}
	if err := client.Bind(ctx, 3005, &reconcile.Target{Application: reconcile.Ref{ID: 11}, User: &reconcile.Ref{ID: 203}}); err != nil {
		t.Fatal(err)
	}
	if err := closeAccount(); err != nil {
		t.Fatal(err)
	}
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Registrations[4]; r.ID != 3005 || r.UserID != 203 {
		t.Errorf("registration 3005 saved as %+v", r)
	}
	if r := st.Registrations[3]; r.ID != 3004 || r.ApplicationID != 0 {
		t.Errorf("registration 3004 (displaced) saved as %+v", r)
	}
	if len(st.Keys) != 1 {
		t.Errorf("the ephemeral key was saved: %d keys", len(st.Keys))
	}

	g.AccountID = 42
	if _, _, err := g.openAccount(ctx, s, 0, nil); err == nil || !strings.Contains(err.Error(), "--account-id 42") {
		t.Errorf("child account with --sandbox: %v", err)
	}
	g.AccountID = sandbox.DemoAccountID
	_, closeAccount, err = g.openAccount(ctx, s, 0, nil)
	if err != nil {
		t.Fatalf("--account-id of the sandbox's own account: %v", err)
	}
	closeAccount()
}

func TestOpenAccountWithCredentials(t *testing.T) {
	dir := initSandbox(t)
	running, err := sandbox.Start(filepath.Join(dir, "account.json"), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	g := &AccountFlags{Credentials: filepath.Join(dir, "credentials.json"), Endpoint: running.Endpoint}
	s := testSession(&Stdio{Err: io.Discard})
	client, closeAccount, err := g.openAccount(context.Background(), s, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAccount()
	info, err := client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != sandbox.DemoAccountID {
		t.Errorf("info %+v", info)
	}

	_, _, err = (&AccountFlags{}).openAccount(context.Background(), s, 0, nil)
	for _, want := range []string{"--credentials", "VOXIMPLANT_CREDENTIALS", "--sandbox"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no credentials: %v; want it to mention %s", err, want)
		}
	}
}

// TestSandboxInitWithoutGit: with no git on PATH, init inside what could
// be a work tree still succeeds, silently.
func TestSandboxInitWithoutGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	dir := filepath.Join(t.TempDir(), "sb")
	var errb bytes.Buffer
	if code := run([]string{"sandbox", "init", dir}, &Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb}); code != 0 {
		t.Fatalf("sandbox init: exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "warning") {
		t.Errorf("stderr warns without git:\n%s", errb.String())
	}
}

// TestSandboxInitGitignoreLine: the line init offers for .gitignore is
// one git reads as written, or none: a directory named with a tab would
// be offered as /t\tab/, which git reads as "ttab".
func TestSandboxInitGitignoreLine(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git here")
	}
	repo := t.TempDir()
	if out, err := exec.Command("git", "-C", repo, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	for name, want := range map[string]string{
		"globs[1]": "add the line /globs\\[1\\]/ to ",
		"t\tab":    "which does not ignore it: add its directory to .gitignore, or use",
	} {
		var errb bytes.Buffer
		if code := run([]string{"sandbox", "init", filepath.Join(repo, name)}, &Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb}); code != 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("sandbox init %q: exit %d, stderr:\n%s\nwant it to say %q", name, code, errb.String(), want)
		}
	}
}

// TestGitignoreCoversKeysAndJournals: the directories that the docs, the
// examples and --help tell a user to make in a checkout (each sandbox
// directory holds a private key; export --out-dir next to a sandbox writes
// what came from it) and apply's journal directory are never committed
// from a checkout by accident.
func TestGitignoreCoversKeysAndJournals(t *testing.T) {
	data, err := os.ReadFile(".gitignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := strings.Split(string(data), "\n")
	dirs := map[string]string{".voxbind": "apply's journals"}
	for where, text := range gitignoreTexts(t) {
		for _, dir := range suggestedDirs(text) {
			dirs[dir] = where
		}
	}
	for _, must := range []string{"sandbox-demo", "sandbox-bulk", "sandbox-fleet"} {
		if dirs[must] == "" {
			t.Errorf("no doc or help names %s: the checker finds nothing", must)
		}
	}
	for dir, where := range dirs {
		if !gitignored(patterns, dir) {
			t.Errorf(".gitignore does not ignore %s/, which %s makes", dir, where)
		}
	}
}

// gitignoreTexts is everything that tells a user what to run: README.md,
// docs/*.md, the files under examples/, and the --help of every command.
func gitignoreTexts(t *testing.T) map[string]string {
	texts := map[string]string{}
	files, _ := filepath.Glob("docs/*.md")
	files = append(files, "README.md")
	filepath.WalkDir("examples", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(data)
	}
	_ = kong.Visit(cliModel(t, &CLI{}), func(v kong.Visitable, next kong.Next) error {
		if n, ok := v.(*kong.Node); ok && n.Type == kong.CommandNode {
			path := commandPath(n)
			_, stdout, _ := runCLI(t, append(strings.Fields(path), "--help")...)
			texts["voxbind "+path+" --help"] = stdout
		}
		return next(nil)
	})
	return texts
}

var (
	// sandbox init [--children N] [--bulk N] DIR, DIR a name (not a
	// placeholder such as DIR, nor a shell variable).
	suggestedInit = regexp.MustCompile(`sandbox init((?: --(?:children|bulk)[ =](?:[0-9N]+|%d))*) ([\w.][\w./-]*)`)
	// --sandbox DIR/account.json, --state DIR/account.json
	suggestedState = regexp.MustCompile(`--(?:sandbox|state)[ =]([\w.][\w./-]*)/account\.json`)
	// --out-dir DIR on a line that runs on a sandbox
	suggestedOutDir = regexp.MustCompile(`--out-dir[ =]([\w.][\w./-]*)`)
)

// suggestedDirs lists the top directories of the sandbox directories text
// tells a user to make, and of the --out-dir directories of commands run
// on a sandbox.
func suggestedDirs(text string) []string {
	var dirs []string
	add := func(dir string) {
		dir = strings.TrimPrefix(filepath.Clean(dir), "./")
		if dir == "DIR" || dir == "." {
			return
		}
		dirs = append(dirs, strings.Split(dir, "/")[0])
	}
	for _, line := range strings.Split(text, "\n") {
		for _, m := range suggestedInit.FindAllStringSubmatch(line, -1) {
			add(m[2])
		}
		for _, m := range suggestedState.FindAllStringSubmatch(line, -1) {
			add(m[1])
		}
		if strings.Contains(line, "--sandbox") {
			for _, m := range suggestedOutDir.FindAllStringSubmatch(line, -1) {
				add(m[1])
			}
		}
	}
	return dirs
}

// gitignored reports whether a line of .gitignore ignores the directory
// dir at the top of the checkout. It knows the forms .gitignore uses: a
// name or glob, anchored with a leading / or not, with a trailing /.
func gitignored(patterns []string, dir string) bool {
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if ok, _ := path.Match(strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/"), dir); ok {
			return true
		}
	}
	return false
}

// TestSuggestedDirs checks the checker: it finds the directories of each
// form and skips placeholders and shell variables.
func TestSuggestedDirs(t *testing.T) {
	text := "voxbind sandbox init --bulk 520 bulk-demo\n" +
		"`sandbox init --children 3 fleet` and `voxbind sandbox init --bulk 520 DIR`\n" +
		"voxbind --sandbox sb/account.json export --children --out-dir out/specs\n" +
		"voxbind export --children --out-dir mine/\n" +
		"voxbind sandbox serve --state ./x/account.json; go run . sandbox init \"$d\"\n" +
		"`sandbox init --bulk 520` makes"
	if diff := cmp.Diff([]string{"bulk-demo", "fleet", "sb", "out", "x"}, suggestedDirs(text)); diff != "" {
		t.Errorf("suggestedDirs (-want +got):\n%s", diff)
	}
	patterns := []string{"# x", "/sandbox-*/", ".voxbind/", "/dist/"}
	for dir, want := range map[string]bool{"sandbox-bulk": true, ".voxbind": true, "dist": true, "fleet": false, "sandbox": false} {
		if got := gitignored(patterns, dir); got != want {
			t.Errorf("gitignored(%q) = %v, want %v", dir, got, want)
		}
	}
}

// TestSandboxInitBulkRange: --bulk out of range, 0 included, is refused
// with one message whatever the value, and nothing is written; the line
// that says what was written separates the bulk account from its child
// accounts.
func TestSandboxInitBulkRange(t *testing.T) {
	for _, n := range []string{"0", "-1", "100001"} {
		dir := filepath.Join(t.TempDir(), "sandbox-bulk")
		code, _, stderr := runCLI(t, "sandbox", "init", "--bulk="+n, dir)
		want := "voxbind: sandbox init: --bulk " + n + ": give the number of phone lines, 1 to 100000\n"
		if code != 1 || stderr != want {
			t.Errorf("--bulk %s: exit %d, stderr %q; want 1 and %q", n, code, stderr, want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--bulk %s: %s was made (%v)", n, dir, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "sandbox-bulk")
	code, _, stderr := runCLI(t, "sandbox", "init", "--bulk", "26", "--children", "2", dir)
	if code != 0 || !strings.Contains(stderr, "26 phone lines, all unbound; and 2 child accounts (ids 1000002 to 1000003;") {
		t.Errorf("--bulk 26 --children 2: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestBulkExample runs the bulk example end to end: sandbox init --bulk
// 520 makes the account examples/bulk.yaml and examples/bulk.csv plan
// against; each plans 500 binds (the 20 retired lines are unbound already),
// grouped by application; apply asks after the grouped view and converges,
// after which both plan No changes.
func TestBulkExample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bulk")
	if code, _, stderr := runCLI(t, "sandbox", "init", "--bulk", "520", dir); code != 0 {
		t.Fatalf("sandbox init --bulk: exit %d: %s", code, stderr)
	}
	state := filepath.Join(dir, sandbox.StateFile)
	const summary = "Plan: 500 to bind, 0 to rebind, 0 to unbind, 20 unchanged.\n"
	for _, spec := range []string{"examples/bulk.yaml", "examples/bulk.csv"} {
		code, stdout, stderr := runCLI(t, "--sandbox", state, "plan", "-f", spec)
		if code != 0 || !strings.HasSuffix(stdout, summary) {
			t.Fatalf("plan -f %s: exit %d, stdout ends %q, stderr %s", spec, code, stdout[max(0, len(stdout)-200):], stderr)
		}
		for _, group := range []string{"\nsales: + 300 to bind\n", "\nsupport: + 200 to bind\n", "  … and 297 more to bind in sales\n"} {
			if !strings.Contains(stdout, group) {
				t.Errorf("plan -f %s: no group %q:\n%s", spec, group, stdout)
			}
		}
		if n := strings.Count(stdout, "  + ["); n != 6 {
			t.Errorf("plan -f %s shows %d changes, want the first 3 of each of 2 groups", spec, n)
		}
	}
	code, stdout, _ := runCLI(t, "--sandbox", state, "plan", "-f", "examples/bulk.csv", "--full")
	if n := strings.Count(stdout, "  + ["); code != 0 || n != 500 {
		t.Errorf("plan --full: exit %d, %d changes shown, want 500", code, n)
	}

	// A saved plan is reviewed grouped too, with a pointer to the file's
	// own full list (a new plan could differ from it), and in full.
	saved := filepath.Join(dir, "saved.json")
	if code, _, stderr := runCLI(t, "--sandbox", state, "plan", "-f", "examples/bulk.csv", "--out", saved); code != 0 {
		t.Fatalf("plan --out: exit %d: %s", code, stderr)
	}
	code, stdout, _ = runCLI(t, "show", saved)
	if n := strings.Count(stdout, "  + ["); code != 0 || n != 6 ||
		!strings.Contains(stdout, "500 changes, grouped: --full lists every one (voxbind show "+saved+" -o json gives them as data).\n") {
		t.Errorf("show of a saved plan of 500 changes: exit %d, %d changes shown, want 6 and the pointer to show -o json:\n%s", code, n, stdout)
	}
	code, stdout, stderr := runCLI(t, "show", saved, "--full")
	if n := strings.Count(stdout, "  + ["); code != 0 || n != 500 {
		t.Errorf("show --full: exit %d, %d changes shown, want 500: %s", code, n, stderr)
	}

	applyFakeTerminal(t, true, false)
	var out bytes.Buffer // stdout and stderr together, in order
	code = run([]string{"--sandbox", state, "apply", "-f", "examples/bulk.csv", "--parallelism", "8"},
		&Stdio{In: strings.NewReader("yes\n"), Out: &out, Err: &out})
	got := out.String()
	grouped := strings.Index(got, "500 changes, grouped")
	prompt := strings.Index(got, "Type 'yes' to apply 500 changes to account 1000001:")
	if code != 0 || grouped < 0 || prompt < grouped || strings.Count(got[:prompt], "  + [") != 6 {
		t.Fatalf("apply: exit %d; want the grouped plan, then the prompt:\n%s", code, got)
	}
	if !strings.Contains(got, "Apply: 500 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 500 verified.") {
		t.Errorf("apply did not converge:\n%s", got[prompt:])
	}
	for _, spec := range []string{"examples/bulk.yaml", "examples/bulk.csv"} {
		if code, stdout, _ := runCLI(t, "--sandbox", state, "plan", "-f", spec); code != 0 || !strings.HasSuffix(stdout, "No changes.\n") {
			t.Errorf("plan -f %s after apply: exit %d:\n%s", spec, code, stdout)
		}
	}
}

// TestBulkExampleScoped: a plan of more than 100 changes made with a
// selection and ignore entries is grouped, yet keeps the selection, the
// ignored registrations, the changes left outside and, with
// --detailed-exitcode, the drift line; the bindings come from the CSV
// example, the exceptions from a YAML file beside it. Applied in the same
// scope, it converges to only the ignored drift, which exits 0.
func TestBulkExampleScoped(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "bulk")
	if code, _, stderr := runCLI(t, "sandbox", "init", "--bulk", "520", dir); code != 0 {
		t.Fatalf("sandbox init --bulk: exit %d: %s", code, stderr)
	}
	state := filepath.Join(dir, sandbox.StateFile)
	day := func(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly) }
	settings := filepath.Join(dir, "settings.yaml")
	if err := os.WriteFile(settings, []byte("version: 1\naccount_id: 1000001\nignore:\n"+
		"  - registration: trunk0*@sip.carrier.example\n    reason: re-patched by the carrier\n    owner: noc@example.com\n    until: "+day(30)+"\n"+
		"  - registration: 2001@pbx.example.com\n    reason: desk 2001 moves next week\n    until: "+day(5)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// app=sales selects the 200 odd desk phones and the 100 trunks; 2003
	// is left out, trunk001-099 and 2001 are ignored: 199 binds remain. The
	// 200 even desk phones (support) and 2003 are the changes outside.
	scope := []string{"--sandbox", state, "plan", "-f", "examples/bulk.csv", "-f", settings, "--only", "app=sales", "--except", "reg=2003@*", "--detailed-exitcode"}
	tail := "Plan: 199 to bind, 0 to rebind, 0 to unbind, 0 unchanged.\n" +
		"201 changes outside the selection are not planned.\n" +
		"Drift: 199 to change, 100 ignored (soonest exception ends " + day(5) + ").\n"

	code, out, stderr := runCLI(t, scope...)
	if code != 2 || stderr != "" {
		t.Fatalf("plan: exit %d, want 2; stderr %s", code, stderr)
	}
	for _, want := range []string{
		"voxbind plan for account 1000001\nSelection: --only app=sales --except reg=2003@*\n\n" +
			"199 changes, grouped by application and action (the first 3 of each group shown):\n\nsales: + 199 to bind\n",
		"  … and 196 more to bind in sales\n",
		"\nIgnored (exceptions in the spec: no step until they end):\n",
		"  = 2001@pbx.example.com (3002) until " + day(5) + ", drift hidden: desk 2001 moves next week (" + settings + ":8)\n",
		"  = trunk001@sip.carrier.example (3021) until " + day(30) + ", drift hidden: re-patched by the carrier (owner noc@example.com; " + settings + ":4)\n",
		"  … and 90 more, 90 of them with drift hidden\n",
		"199 changes, grouped: --full lists every one",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("grouped plan has no %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "  = "); n != 10 {
		t.Errorf("grouped plan lists %d ignored registrations, want 10", n)
	}
	if !strings.HasSuffix(out, tail) {
		t.Errorf("grouped plan ends\n%s\nwant\n%s", out[max(0, len(out)-300):], tail)
	}

	code, out, _ = runCLI(t, append(scope, "--full")...)
	if n, m := strings.Count(out, "  + ["), strings.Count(out, "  = "); code != 2 || n != 199 || m != 100 || !strings.HasSuffix(out, tail) {
		t.Errorf("plan --full: exit %d, %d changes and %d ignored listed, want 199 and 100, and the same end:\n%s", code, n, m, out[max(0, len(out)-300):])
	}
	code, out, _ = runCLI(t, append(scope, "-o", "markdown")...)
	if code != 2 || !strings.Contains(out, "\n201 changes outside the selection are not planned.\n") ||
		!strings.HasSuffix(out, "\n\nDrift: 199 to change, 100 ignored (soonest exception ends "+day(5)+").\n") {
		t.Errorf("plan -o markdown: exit %d:\n%s", code, out)
	}

	apply := []string{"--sandbox", state, "apply", "-f", "examples/bulk.csv", "-f", settings, "--only", "app=sales", "--except", "reg=2003@*", "--auto-approve", "--parallelism", "8"}
	code, out, stderr = runCLI(t, apply...)
	if code != 0 || !strings.Contains(out, "199 changes, grouped") || !strings.Contains(out, "201 changes outside the selection are not planned.\n") {
		t.Fatalf("apply: exit %d:\n%s\n%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, scope...)
	if code != 0 || !strings.HasSuffix(out, "No changes.\n201 changes outside the selection are not planned.\n"+
		"Drift: 0 to change, 100 ignored (soonest exception ends "+day(5)+").\n") {
		t.Errorf("plan after apply: exit %d, want 0 (only ignored drift):\n%s", code, out[max(0, len(out)-400):])
	}
}

// TestSandboxServePerAccountFlags: --account-latency and --account-rate
// take ID=VALUE, each account once; anything else is refused with an
// example, before the state file is opened.
func TestSandboxServePerAccountFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--account-rate", "1000002"}, `--account-rate "1000002": write ID=VALUE`},
		{[]string{"--account-rate", "x=5"}, `--account-rate "x=5": write ID=VALUE`},
		{[]string{"--account-rate", "1000002=fast"}, `--account-rate "1000002=fast": "fast" is not a number of requests per second, at least 0.01, or 0 for no limit; write ID=VALUE, the account's id, '=' and its value (e.g. --account-rate 1000002=5)`},
		{[]string{"--account-rate", "1000002=NaN"}, `--account-rate "1000002=NaN": "NaN" is not a number of requests per second, at least 0.01, or 0 for no limit`},
		{[]string{"--account-latency", "1000002=1", "--account-latency", "1000003=2s"}, `--account-latency "1000002=1": "1" is not a duration with its unit (200ms, 1.5s); write ID=VALUE`},
		{[]string{"--account-latency", "1000002=1s", "--account-latency", "1000002=2s"}, "account 1000002 is given twice"},
		{[]string{"--account-rate", "1000002=-3"}, `--account-rate "1000002=-3": "-3" is not a number of requests per second, at least 0.01, or 0 for no limit`},
		{[]string{"--account-rate", "1000002=0.001"}, `--account-rate "1000002=0.001": "0.001" is not a number of requests per second, at least 0.01, or 0 for no limit`},
	} {
		args := append([]string{"sandbox", "serve", "--state", "no-such-state.json"}, tt.args...)
		code, _, stderr := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "strconv") || strings.Contains(stderr, "time:") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q, in voxbind's words", tt.args, code, stderr, tt.want)
		}
	}
}

// TestSandboxServeFaultsLine: the faults sandbox serve announces say what
// it does; a rate of 0 for an account is no limit for it, not a limit of
// 0 requests per second.
func TestSandboxServeFaultsLine(t *testing.T) {
	got := describeFaults(sandbox.Options{Rate: 20, AccountRate: map[int64]float64{1000002: 0, 1000003: 5}})
	want := "a limit of 20 requests/s (error 340), no limit for account 1000002, a limit of 5 requests/s for account 1000003"
	if got != want {
		t.Errorf("describeFaults = %q, want %q", got, want)
	}
}

// TestSandboxDocTLSExample runs the https example of docs/sandbox.md as
// written, from the repository's root, against the sandbox it names on
// the port it names (both made here, the port a free one): the plan ends
// with its summary line. SSL_CERT_FILE is how Go finds the certificate on
// Linux only.
func TestSandboxDocTLSExample(t *testing.T) {
	bin := applyBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("SSL_CERT_FILE is read on Linux")
	}
	doc, err := os.ReadFile("docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^SSL_CERT_FILE=.*\\\n.*$`).FindString(string(doc))
	if m == "" {
		t.Fatal("docs/sandbox.md has no SSL_CERT_FILE=... example")
	}
	demo := filepath.Join(t.TempDir(), "sandbox-demo")
	if err := sandbox.Init(demo, 0); err != nil {
		t.Fatal(err)
	}
	endpoint, _, stop := serveProcess(t, bin, "--state", filepath.Join(demo, sandbox.StateFile), "--tls", "--addr", "127.0.0.1:0")
	defer stop()
	hostPort := strings.TrimSuffix(strings.TrimPrefix(endpoint, "https://"), "/platform_api/")
	line := strings.NewReplacer("sandbox-demo/", demo+"/", "127.0.0.1:8443", hostPort).Replace(m)
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^(Plan: .*|No changes\.)$`).Match(out) {
		t.Errorf("docs/sandbox.md's https example, run as\n%s\n%v:\n%s", line, err, out)
	}
}

// TestSandboxServeHTTPLog: what net/http's server says about a connection
// (here a TLS handshake that failed: plain http sent to serve --tls) is a
// log record like any other. With --log-format json at debug level it is
// a JSON line, and every line of stderr is JSON or one of serve's own
// "sandbox: ..." lines for people; with the log off (the default) it is
// not printed at all.
func TestSandboxServeHTTPLog(t *testing.T) {
	bin := applyBinary(t)
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	const handshake = "http: TLS handshake error"
	for _, tt := range []struct {
		name string
		args []string
		json bool
	}{
		{name: "json debug", args: []string{"--log-format", "json", "--log-level", "debug"}, json: true},
		{name: "log off", args: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			serve := exec.Command(bin, append([]string{"sandbox", "serve", "--state", state, "--addr", "127.0.0.1:0", "--tls"}, tt.args...)...)
			stderr, err := serve.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
			lines := make(chan string, 100)
			go func() {
				for sc := bufio.NewScanner(stderr); sc.Scan(); {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var got []string
			next := func() (string, bool) {
				select {
				case l, ok := <-lines:
					if ok {
						got = append(got, l)
					}
					return l, ok
				case <-time.After(20 * time.Second):
					t.Fatalf("no line from serve in 20 s; so far:\n%s", strings.Join(got, "\n"))
					return "", false
				}
			}
			hostPort := ""
			for hostPort == "" {
				l, ok := next()
				if !ok {
					t.Fatalf("serve ended without serving:\n%s", strings.Join(got, "\n"))
				}
				if m := regexp.MustCompile(`at https://(127\.0\.0\.1:\d+)/platform_api/`).FindStringSubmatch(l); m != nil {
					hostPort = m[1]
				}
			}
			resp, err := http.Get("http://" + hostPort + "/platform_api/GetAccountInfo")
			if err != nil {
				t.Fatalf("plain http to serve --tls: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain http to serve --tls: HTTP %d, want 400", resp.StatusCode)
			}
			if tt.json {
				// The record follows the answer: wait for it before stopping.
				for {
					l, ok := next()
					if !ok {
						t.Fatalf("serve ended before it logged the handshake:\n%s", strings.Join(got, "\n"))
					}
					if strings.Contains(l, handshake) {
						break
					}
				}
			}
			serve.Process.Signal(os.Interrupt)
			for _, ok := next(); ok; _, ok = next() {
			}
			logged := false
			for _, l := range got {
				var rec struct{ Level, Msg string }
				switch {
				case strings.HasPrefix(l, "sandbox: "):
				case tt.json && json.Unmarshal([]byte(l), &rec) == nil:
					logged = logged || rec.Level == "DEBUG" && strings.HasPrefix(rec.Msg, handshake)
				default:
					t.Errorf("stderr line is neither a JSON record nor serve's own: %q", l)
				}
			}
			if tt.json && !logged {
				t.Errorf("no DEBUG record of the failed handshake:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}
