package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/sandbox"
)

// cliCommands lists every command path of voxbind's command line, as
// typed: "plan", "sandbox serve".
func cliCommands(t *testing.T) [][]string {
	t.Helper()
	parser, err := newParser(&CLI{}, &Stdio{Out: io.Discard, Err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	_ = kong.Visit(parser.Model, func(v kong.Visitable, next kong.Next) error {
		if n, ok := v.(*kong.Node); ok && n.Type == kong.CommandNode && len(n.Children) == 0 {
			out = append(out, strings.Fields(commandPath(n)))
		}
		return next(nil)
	})
	if len(out) < 12 {
		t.Fatalf("only %d commands: %v", len(out), out)
	}
	return out
}

// TestHelpLayout checks every command's help: 'voxbind help CMD' prints
// what 'voxbind CMD --help' does; the command's own flags come first and
// the global flags last under their heading; defaults and environment
// variables are shown; every command has an example.
func TestHelpLayout(t *testing.T) {
	const heading = "Global flags (also before the command name):"
	for _, cmd := range cliCommands(t) {
		name := strings.Join(cmd, " ")
		code, viaFlag, stderr := runCLI(t, append(slices.Clone(cmd), "--help")...)
		if code != 0 || stderr != "" {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, stderr)
			continue
		}
		code, viaHelp, _ := runCLI(t, append([]string{"help"}, cmd...)...)
		if code != 0 || viaHelp != viaFlag {
			t.Errorf("voxbind help %s: exit %d, and it differs from --help:\n%s\n---\n%s", name, code, viaHelp, viaFlag)
		}
		if !strings.Contains(viaFlag, "Example") {
			t.Errorf("%s --help has no example:\n%s", name, viaFlag)
		}
		own, global, ok := strings.Cut(viaFlag, heading)
		if !ok {
			t.Errorf("%s --help has no %q heading:\n%s", name, heading, viaFlag)
			continue
		}
		if i := strings.Index(own, "\nFlags:\n"); i >= 0 {
			own = own[i:] // the command's own flags, after its examples
		} else {
			own = ""
		}
		if strings.Contains(own, "--help") || !strings.Contains(global, "--help") {
			t.Errorf("%s --help: --help is not among the global flags:\n%s", name, viaFlag)
		}
		for _, g := range []string{"--credentials", "--sandbox", "--log-level", "--no-color"} {
			if strings.Contains(own, g) {
				t.Errorf("%s --help shows the global flag %s before the heading:\n%s", name, g, viaFlag)
			}
		}
	}

	_, validate, _ := runCLI(t, "validate", "--help")
	for _, unused := range []string{"--credentials", "--endpoint", "--account-id", "--sandbox", "--log-level", "--debug", "--no-color"} {
		if strings.Contains(validate, unused) {
			t.Errorf("validate --help offers %s, which validate never uses", unused)
		}
	}
	_, plan, _ := runCLI(t, "plan", "--help")
	for _, want := range []string{"(default: voxbind.yaml).", "(default: text).", "(env VOXBIND_RATE).", "(env VOXBIND_TIMEOUT).",
		"(default: https://api.voximplant.com/platform_api/;", "env VOXIMPLANT_ENDPOINT)", "(default: off;", "env VOXBIND_LOG_LEVEL)"} {
		if !strings.Contains(strings.Join(strings.Fields(plan), " "), want) {
			t.Errorf("plan --help lacks %q:\n%s", want, plan)
		}
	}
	_, apply, _ := runCLI(t, "apply", "--help")
	for _, want := range []string{"(default: 4; env VOXBIND_PARALLELISM).", "env VOXBIND_MAX_UNBIND", "env VOXBIND_RATE"} {
		if !strings.Contains(strings.Join(strings.Fields(apply), " "), want) {
			t.Errorf("apply --help lacks %q:\n%s", want, apply)
		}
	}

	code, stdout, stderr := runCLI(t, "help", "no-such-command")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `no command "no-such-command"`) {
		t.Errorf("help no-such-command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, root, _ := runCLI(t, "help")
	if _, flag, _ := runCLI(t, "--help"); code != 0 || root != flag || !strings.Contains(root, "Commands:") {
		t.Errorf("voxbind help: exit %d, and it differs from voxbind --help:\n%s", code, root)
	}
}

// TestNoEnvironmentForConsent: the flags that give consent (--auto-approve,
// --force) have no environment variable; the four a pipeline sets every
// time do.
func TestNoEnvironmentForConsent(t *testing.T) {
	parser, err := newParser(&CLI{}, &Stdio{Out: io.Discard, Err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string][]string{}
	_ = kong.Visit(parser.Model, func(v kong.Visitable, next kong.Next) error {
		if f, ok := v.(*kong.Flag); ok {
			envs[f.Name] = append(envs[f.Name], f.Envs...)
		}
		return next(nil)
	})
	for _, consent := range []string{"auto-approve", "force"} {
		if len(envs[consent]) > 0 {
			t.Errorf("--%s has environment variables %v", consent, envs[consent])
		}
	}
	for flag, env := range map[string]string{"parallelism": "VOXBIND_PARALLELISM", "rate": "VOXBIND_RATE",
		"max-unbind": "VOXBIND_MAX_UNBIND", "timeout": "VOXBIND_TIMEOUT", "accounts-parallelism": "VOXBIND_ACCOUNTS_PARALLELISM", "log-level": "VOXBIND_LOG_LEVEL", "log-format": "VOXBIND_LOG_FORMAT"} {
		if !slices.Contains(envs[flag], env) {
			t.Errorf("--%s: environment %v, want %s", flag, envs[flag], env)
		}
	}
}

// TestGlobalFlagsEitherSide: a global flag works before and after the
// command name, and gives the same result.
func TestGlobalFlagsEitherSide(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	for _, args := range [][]string{
		{"--sandbox", state, "--no-color", "plan", "-f", spec},
		{"--sandbox=" + state, "plan", "--no-color", "-f", spec},
		{"plan", "-f", spec, "--sandbox", state, "--no-color"},
		{"--no-color", "plan", "--sandbox", state, "-f", spec},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, "Plan: 1 to bind, 1 to rebind, 1 to unbind, 0 unchanged.") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	// sandbox serve takes the log flags, and its own --rate.
	if got := hoistGlobals(mustModel(t), []string{"--log-level", "debug", "sandbox", "serve", "--rate", "5"}); !slices.Equal(got,
		[]string{"sandbox", "serve", "--log-level", "debug", "--rate", "5"}) {
		t.Errorf("hoisted: %q", got)
	}
	// A global flag the command does not use is dropped on either side of
	// its name, with its value; anything after "--" is left as it is.
	if got := hoistGlobals(mustModel(t), []string{"--debug", "show", "p.json", "--sandbox", "s.json", "--no-color", "--", "--debug"}); !slices.Equal(got,
		[]string{"show", "p.json", "--no-color", "--", "--debug"}) {
		t.Errorf("hoisted: %q", got)
	}
	// A short flag's value may be the next word (-f s.yaml) or attached
	// (-fs.yaml); the next word is not the command's name.
	if got := hoistGlobals(mustModel(t), []string{"-f", "s.yaml", "plan", "--sandbox", "x.json"}); !slices.Equal(got,
		[]string{"plan", "-f", "s.yaml", "--sandbox", "x.json"}) {
		t.Errorf("hoisted: %q", got)
	}
	if got := hoistGlobals(mustModel(t), []string{"-fs.yaml", "plan", "--sandbox", "x.json"}); !slices.Equal(got,
		[]string{"plan", "-fs.yaml", "--sandbox", "x.json"}) {
		t.Errorf("hoisted: %q", got)
	}
	// A flag is read as the command declares it: export's --children is a
	// switch (sandbox init's takes a number), so --no-color after it is a
	// flag of its own, not --children's value.
	if got := hoistGlobals(mustModel(t), []string{"export", "--sandbox", "s.json", "--children", "--no-color", "--out-dir", "d"}); !slices.Equal(got,
		[]string{"export", "--sandbox", "s.json", "--children", "--out-dir", "d"}) {
		t.Errorf("hoisted: %q", got)
	}
	// A value that looks like a command name stays the flag's value.
	if got := hoistGlobals(mustModel(t), []string{"--credentials", "plan", "export"}); !slices.Equal(got, []string{"export", "--credentials", "plan"}) {
		t.Errorf("hoisted: %q", got)
	}
}

func mustModel(t *testing.T) *kong.Application {
	t.Helper()
	parser, err := newParser(&CLI{}, &Stdio{Out: io.Discard, Err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return parser.Model
}

// TestEnvironmentDefaults: VOXBIND_PARALLELISM, VOXBIND_RATE and
// VOXBIND_MAX_UNBIND set what their flags set; a flag on the command line
// wins, and --force wins over VOXBIND_MAX_UNBIND but not over
// --max-unbind on the same command line.
func TestEnvironmentDefaults(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)

	t.Setenv("VOXBIND_RATE", "-3")
	code, _, stderr := runCLI(t, "--sandbox", state, "plan", "-f", spec)
	if code != 1 || !strings.Contains(stderr, "--rate -3: give a number of requests per second") {
		t.Errorf("VOXBIND_RATE=-3: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "--sandbox", state, "plan", "-f", spec, "--rate", "0"); code != 0 {
		t.Errorf("--rate 0 over VOXBIND_RATE=-3: exit %d, stderr %q", code, stderr)
	}
	os.Unsetenv("VOXBIND_RATE") // t.Setenv restores it at the end

	t.Setenv("VOXBIND_MAX_UNBIND", "0")
	code, _, stderr = runCLI(t, "--sandbox", state, "apply", "-f", spec, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "more than the limit set by VOXBIND_MAX_UNBIND=0;") {
		t.Errorf("VOXBIND_MAX_UNBIND=0: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--force", "--max-unbind", "5")
	if code != 1 || !strings.Contains(stderr, "--max-unbind and --force can't be used together") {
		t.Errorf("--force --max-unbind: exit %d, stderr %q", code, stderr)
	}

	t.Setenv("VOXBIND_PARALLELISM", "1")
	code, _, stderr = runCLI(t, "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--force")
	if code != 0 || !strings.Contains(stderr, "Applying 3 changes to account 1000001.\n") {
		t.Errorf("VOXBIND_PARALLELISM=1 with --force over VOXBIND_MAX_UNBIND: exit %d, stderr %q", code, stderr)
	}
}

// TestEmptyEnvironmentIsUnset: a variable set to the empty string, as a
// CI system passes one it has no value for, counts as not set: it is
// neither refused as a value nor taken over a flag.
func TestEmptyEnvironmentIsUnset(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	for _, e := range []string{"VOXBIND_PARALLELISM", "VOXBIND_ACCOUNTS_PARALLELISM", "VOXBIND_RATE",
		"VOXBIND_MAX_UNBIND", "VOXBIND_TIMEOUT", "VOXIMPLANT_ACCOUNT_ID", "VOXIMPLANT_CREDENTIALS",
		"VOXIMPLANT_ENDPOINT", "VOXBIND_LOG_LEVEL", "VOXBIND_LOG_FORMAT"} {
		t.Setenv(e, "")
	}
	if code, _, stderr := runCLI(t, "--sandbox", state, "plan", "-f", spec); code != 0 {
		t.Errorf("plan with every variable empty: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr := runCLI(t, "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--no-journal", "--max-unbind", "0")
	if code != 1 || !strings.Contains(stderr, "more than the limit set by --max-unbind 0;") {
		t.Errorf("apply --max-unbind 0 with VOXBIND_MAX_UNBIND empty: exit %d, stderr %q; want the flag's refusal", code, stderr)
	}
}

// TestCompletion: each shell gets a script that hands completion to this
// binary, and the binary completes every command and a command's flags.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, stdout, stderr := runCLI(t, "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "voxbind") {
			t.Errorf("completion %s: exit %d, stdout %q, stderr %q", shell, code, stdout, stderr)
		}
		if shell != "fish" && !strings.Contains(stdout, "complete -C ") {
			t.Errorf("completion %s does not hand completion to voxbind:\n%s", shell, stdout)
		}
	}
	// zsh: compinit reads a file in $fpath only if its first line is
	// "#compdef voxbind"; sourced in a zsh where compinit has not run,
	// the script must load it before bashcompinit, whose complete needs
	// compdef. (TestZshCompletionInAStockZsh types a <TAB> into a zsh.)
	_, zsh, _ := runCLI(t, "completion", "zsh")
	if first, _, _ := strings.Cut(zsh, "\n"); first != "#compdef voxbind" {
		t.Errorf("completion zsh: the first line is %q, want #compdef voxbind", first)
	}
	guard, bashcompinit := strings.Index(zsh, "(( $+functions[compdef] )) || { autoload -U compinit && compinit }"), strings.Index(zsh, "bashcompinit")
	if guard < 0 || guard > bashcompinit {
		t.Errorf("completion zsh does not load compinit, when compdef is missing, before bashcompinit:\n%s", zsh)
	}
	if code, _, stderr := runCLI(t, "completion", "powershell"); code != 1 || !strings.Contains(stderr, "bash") {
		t.Errorf("completion powershell: exit %d, stderr %q", code, stderr)
	}

	complete := func(line string) []string {
		t.Helper()
		t.Setenv("COMP_LINE", line)
		t.Setenv("COMP_POINT", "")
		code, stdout, stderr := runCLI(t)
		t.Setenv("COMP_LINE", "")
		if code != 0 {
			t.Fatalf("completing %q: exit %d, stderr %q", line, code, stderr)
		}
		return strings.Fields(stdout)
	}
	got := complete("voxbind ")
	for _, cmd := range cliCommands(t) {
		if !slices.Contains(got, cmd[0]) {
			t.Errorf("completing 'voxbind ' does not offer %s: %q", cmd[0], got)
		}
	}
	if got := complete("voxbind sandbox "); !slices.Contains(got, "serve") || !slices.Contains(got, "init") {
		t.Errorf("completing 'voxbind sandbox ': %q", got)
	}
	if got := complete("voxbind plan --"); !slices.Contains(got, "--detailed-exitcode") || !slices.Contains(got, "--sandbox") {
		t.Errorf("completing 'voxbind plan --': %q", got)
	}
	if got := complete("voxbind validate --"); slices.Contains(got, "--credentials") || !slices.Contains(got, "--file") {
		t.Errorf("completing 'voxbind validate --' offers what validate does not take, or not its own: %q", got)
	}
	if got := complete("voxbind plan -o "); !slices.Equal(sorted(got), []string{"json", "markdown", "text"}) {
		t.Errorf("completing 'voxbind plan -o ': %q", got)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestManPage: 'voxbind man' writes a roff page that names every command,
// and its flags.
func TestManPage(t *testing.T) {
	code, page, stderr := runCLI(t, "man")
	if code != 0 || stderr != "" || !strings.HasPrefix(page, ".") {
		t.Fatalf("man: exit %d, stderr %q, output starts %.40q", code, stderr, page)
	}
	if !strings.Contains(page, ".TH VOXBIND 1") && !strings.Contains(page, ".TH \"VOXBIND\" \"1\"") {
		t.Errorf("no .TH header for voxbind(1):\n%.300s", page)
	}
	if strings.Contains(page, "%!") || !strings.Contains(page, "25% of the bound registrations") {
		t.Errorf("a %% in a help text did not survive the roff writer")
	}
	text := strings.ReplaceAll(page, `\-`, "-")
	for _, cmd := range cliCommands(t) {
		if !strings.Contains(text, strings.Join(cmd, " ")) {
			t.Errorf("the man page does not mention %q", strings.Join(cmd, " "))
		}
	}
	for _, flag := range []string{"--detailed-exitcode", "--auto-approve", "--log-level", "--max-unbind"} {
		if !strings.Contains(text, flag) {
			t.Errorf("the man page does not mention %s", flag)
		}
	}
}

// TestRefusedValueNamesItsVariable: a value kong refuses names the
// environment variable it came from when its flag is not on the command
// line, and only then.
func TestRefusedValueNamesItsVariable(t *testing.T) {
	t.Setenv("VOXBIND_LOG_LEVEL", "bogus")
	code, _, stderr := runCLI(t, "plan")
	if code != 1 || !strings.Contains(stderr, `--log-level must be one of`) || !strings.Contains(stderr, "(from VOXBIND_LOG_LEVEL)") {
		t.Errorf("VOXBIND_LOG_LEVEL=bogus: exit %d, stderr %q; want the refusal to name the variable", code, stderr)
	}
	code, _, stderr = runCLI(t, "plan", "--log-level", "loud")
	if code != 1 || strings.Contains(stderr, "(from VOXBIND_LOG_LEVEL)") {
		t.Errorf("--log-level loud: exit %d, stderr %q; the value came from the command line", code, stderr)
	}

	// A value kong cannot parse says so in the same shape, in the JSON
	// diagnostics too.
	t.Setenv("VOXBIND_LOG_LEVEL", "")
	t.Setenv("VOXBIND_TIMEOUT", "xyz")
	code, stdout, stderr := runCLI(t, "plan", "-o", "json")
	if code != 1 || !strings.Contains(stderr, `invalid duration "xyz" (from VOXBIND_TIMEOUT) (see voxbind help plan)`) || strings.Contains(stderr, "envar") ||
		!strings.Contains(stdout, `(from VOXBIND_TIMEOUT)`) || strings.Contains(stdout, "envar") {
		t.Errorf("VOXBIND_TIMEOUT=xyz: exit %d, stdout %q, stderr %q; want (from VOXBIND_TIMEOUT), as for the other refusals", code, stdout, stderr)
	}
	t.Setenv("VOXBIND_TIMEOUT", "")
}

// TestRangeCheckNamesItsVariable: a value of the right type that a
// command's own checks refuse names the environment variable it came
// from too, when its flag is not on the command line.
// TestNegativeAccountID: an --account-id below 1 is refused before the
// account is contacted, naming VOXIMPLANT_ACCOUNT_ID when it came from
// there, by every command that takes it.
func TestNegativeAccountID(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	const want = "--account-id -5: give the id of an account, a positive number"
	for _, args := range [][]string{
		{"plan", "-f", "examples/quickstart.yaml"},
		{"apply", "-f", "examples/quickstart.yaml", "--auto-approve"},
		{"export"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Setenv("VOXIMPLANT_ACCOUNT_ID", "-5")
			code, _, stderr := runCLI(t, append([]string{"--sandbox", state}, args...)...)
			if code != 1 || !strings.Contains(stderr, want+" (from VOXIMPLANT_ACCOUNT_ID)") {
				t.Errorf("%q: exit %d, stderr %q; want %q naming the variable", args, code, stderr, want)
			}
			code, _, stderr = runCLI(t, append([]string{"--sandbox", state, "--account-id=-5"}, args...)...)
			if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "(from ") {
				t.Errorf("%q --account-id=-5: exit %d, stderr %q", args, code, stderr)
			}
		})
	}
}

func TestRangeCheckNamesItsVariable(t *testing.T) {
	for _, tc := range []struct{ env, value, flag, want string }{
		{"VOXBIND_TIMEOUT", "-1s", "--timeout", "--timeout -1s: give a positive duration"},
		{"VOXBIND_RATE", "-3", "--rate", "--rate -3: give a number of requests per second"},
		{"VOXBIND_PARALLELISM", "0", "--parallelism", "--parallelism 0: give at least 1"},
		{"VOXBIND_MAX_UNBIND", "-2", "--max-unbind", "--max-unbind -2: give 0 or more registrations"},
		{"VOXBIND_ACCOUNTS_PARALLELISM", "0", "--accounts-parallelism", "--accounts-parallelism 0: give at least 1"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			code, _, stderr := runCLI(t, "apply", "-f", "nowhere.yaml")
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "(from "+tc.env+")") {
				t.Errorf("%s=%s: exit %d, stderr %q; want %q naming the variable", tc.env, tc.value, code, stderr, tc.want)
			}
			code, _, stderr = runCLI(t, "apply", "-f", "nowhere.yaml", tc.flag+"="+tc.value)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "(from "+tc.env+")") {
				t.Errorf("%s=%s: exit %d, stderr %q; the value came from the command line", tc.flag, tc.value, code, stderr)
			}
		})
	}
}

// TestNegativeNumberFlags: a negative number in the word after a numeric
// flag ("--rate -1", not only "--rate=-1") reaches the command's own check,
// which says what range the flag takes, instead of kong's "expected float
// value but got "-1" (short flag)"; the flags that take negative values
// (--clock-skew, --seed) take them so. Every numeric flag is in the table.
func TestNegativeNumberFlags(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	sb := []string{"--sandbox", state}
	cmd := func(args ...string) []string { return args }
	tests := []struct {
		args []string
		flag string
		want string
	}{
		{cmd("plan", "-f", spec), "--rate", "--rate -1: give a number of requests per second, at least 0.01"},
		{cmd("plan", "-f", spec), "--timeout", "--timeout -1s: give a positive duration"},
		{cmd("plan", "-f", spec), "--accounts-parallelism", "--accounts-parallelism -1: give at least 1"},
		{cmd("plan", "-f", spec), "--account-id", "--account-id -1: give the id of an account, a positive number"},
		{cmd("apply", "-f", spec), "--parallelism", "--parallelism -1: give at least 1"},
		{cmd("apply", "-f", spec), "--max-unbind", "--max-unbind -1: give 0 or more registrations"},
		{cmd("apply", "-f", spec), "--rate", "--rate -1: give a number of requests per second"},
		{cmd("apply", "-f", spec), "--accounts-parallelism", "--accounts-parallelism -1: give at least 1"},
		{cmd("undo", "j.jsonl"), "--parallelism", "--parallelism -1: give at least 1"},
		{cmd("undo", "j.jsonl"), "--max-unbind", "--max-unbind -1: give 0 or more registrations"},
		{cmd("undo", "j.jsonl"), "--timeout", "--timeout -1s: give a positive duration"},
		{cmd("export"), "--rate", "--rate -1: give a number of requests per second"},
		{cmd("export"), "--accounts-parallelism", "--accounts-parallelism -1: give at least 1"},
		{cmd("sandbox", "init", filepath.Join(t.TempDir(), "d")), "--bulk", "--bulk -1: give the number of phone lines, 1 to 100000"},
		{cmd("sandbox", "init", filepath.Join(t.TempDir(), "d")), "--children", "--children -1: give 0 to 10000 child accounts"},
		{cmd("sandbox", "serve", "--state", state), "--rate", "--rate -1: give a number of requests per second"},
		{cmd("sandbox", "serve", "--state", state), "--latency", "--latency -1s: give a delay of 0 or more"},
		{cmd("sandbox", "serve", "--state", state), "--fail-rate", "--fail-rate -1: give the fraction of requests to fail, from 0 to 1"},
		// Negative values these take; --rate -1 after them stops the server
		// before it listens.
		{cmd("sandbox", "serve", "--state", state, "--rate", "-1"), "--clock-skew", "--rate -1: give"},
		{cmd("sandbox", "serve", "--state", state, "--rate", "-1"), "--seed", "--rate -1: give"},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.flag] = true
		value := "-1"
		if tt.flag == "--timeout" || tt.flag == "--latency" || tt.flag == "--clock-skew" {
			value = "-1s"
		}
		args := append(append(slices.Clone(tt.args), tt.flag, value), sb...)
		if tt.args[0] == "sandbox" {
			args = append(slices.Clone(tt.args), tt.flag, value)
		}
		command := tt.args[0]
		if command == "sandbox" {
			command += " " + tt.args[1]
		}
		code, _, stderr := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "short flag") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", strings.Join(args, " "), code, stderr, tt.want)
		}
		// With -o json, the diagnostic carries a fix: the command's help,
		// as kong's refusal of a line it cannot parse has.
		if !slices.Contains([]string{"plan", "apply", "undo"}, command) {
			continue
		}
		_, stdout, _ := runCLI(t, append(args, "-o", "json")...)
		var doc struct{ Diagnostics []Diagnostic }
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Diagnostics) != 1 ||
			doc.Diagnostics[0].Code != codeUsage || doc.Diagnostics[0].Fix != "see voxbind help "+command {
			t.Errorf("%s -o json: %v\n%s\nwant one usage diagnostic with the fix 'see voxbind help %s'", strings.Join(args, " "), err, stdout, command)
		}
	}
	// doctor reports its checks on stdout: the refusal is there.
	if _, stdout, _ := runCLI(t, "--sandbox", state, "doctor", "--account-id", "-1"); !strings.Contains(stdout, "--account-id -1 with --sandbox") {
		t.Errorf("doctor --account-id -1: %q", stdout)
	}

	_ = kong.Visit(mustModel(t), func(v kong.Visitable, next kong.Next) error {
		if f, ok := v.(*kong.Flag); ok && isNumber(f.Target.Type()) && !tested["--"+f.Name] {
			t.Errorf("numeric flag --%s is not in the table", f.Name)
		}
		return next(nil)
	})
}
