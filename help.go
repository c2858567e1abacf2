package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	mangokong "github.com/alecthomas/mango-kong"
	"github.com/muesli/roff"
	posener "github.com/posener/complete"
	"github.com/willabides/kongplete"

	"github.com/voxbind/voxbind/reconcile"
)

// HelpCmd is "voxbind help [COMMAND]": the same help as --help.
type HelpCmd struct {
	Command []string `arg:"" optional:"" name:"COMMAND" predictor:"command" help:"The command to explain, e.g. plan or sandbox serve; none: voxbind itself."`
}

// Help is the examples under help's --help.
func (HelpCmd) Help() string {
	return `Examples:

    voxbind help plan
    voxbind help sandbox serve`
}

// Run prints the help by parsing "COMMAND --help".
func (c *HelpCmd) Run(kctx *kong.Context) error {
	_, err := kctx.Kong.Parse(append(slices.Clone(c.Command), "--help"))
	if err != nil {
		return failure(codeUsage, fmt.Sprintf("no command %q: %v", strings.Join(c.Command, " "), err), "'voxbind help' lists the commands")
	}
	return nil
}

// CompletionCmd prints a shell completion script. The script asks voxbind
// itself for the completions (kongplete answers from the command line
// model), so it never goes stale when voxbind is upgraded in place.
type CompletionCmd struct {
	Shell string `arg:"" name:"SHELL" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

// Help is the examples under completion's --help.
func (CompletionCmd) Help() string {
	return `Examples:

    source <(voxbind completion bash)                                   # in ~/.bashrc
    voxbind completion zsh > "${fpath[1]}/_voxbind"                      # or source it in ~/.zshrc
    voxbind completion fish > ~/.config/fish/completions/voxbind.fish`
}

// completionScripts are kongplete's installation snippets (its
// InstallCompletions picks the login shell; this command takes it as an
// argument): each makes the shell run BIN with COMP_LINE set, and
// complete answers.
var completionScripts = map[string]string{
	"bash": "# bash completion for voxbind: source this file, e.g. from ~/.bashrc.\ncomplete -C BIN voxbind\n",
	"zsh": `#compdef voxbind
# zsh completion for voxbind: source this file from ~/.zshrc, or save it as
# _voxbind in a directory of $fpath before compinit runs.
(( $+functions[compdef] )) || { autoload -U compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
complete -C BIN voxbind
# Saved in $fpath, this file is the completion function that compinit
# loads on the first <TAB>: it answers that first request too.
if [[ $funcstack[1] == _voxbind ]]; then _bash_complete -C BIN; fi
`,
	"fish": `# fish completion for voxbind: save as ~/.config/fish/completions/voxbind.fish.
function __complete_voxbind
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    BIN
end
complete -f -c voxbind -a "(__complete_voxbind)"
`,
}

// Run prints the script for the shell, naming this voxbind binary.
func (c *CompletionCmd) Run(s *session) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the voxbind binary: %w", err)
	}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	_, err = fmt.Fprint(s.stdio.Out, strings.ReplaceAll(completionScripts[c.Shell], "BIN", reconcile.ShellQuote(bin)))
	return err
}

// complete answers a shell's completion request (COMP_LINE is set) from
// the command line model, and reports whether it did.
func complete(parser *kong.Kong) (code int, done bool) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code, done = int(c), true
		}
	}()
	var commands []string
	_ = kong.Visit(parser.Model, func(v kong.Visitable, next kong.Next) error {
		if n, ok := v.(*kong.Node); ok && n.Type == kong.CommandNode && !n.Hidden {
			commands = append(commands, n.Name)
		}
		return next(nil)
	})
	kongplete.Complete(parser, kongplete.WithPredictors(map[string]posener.Predictor{
		"file":    posener.PredictFiles("*"),
		"dir":     posener.PredictDirs("*"),
		"command": posener.PredictSet(commands...),
	}))
	return 0, false
}

// ManCmd prints voxbind's manual page, generated from the command line
// model by mango-kong: every command with its flags (their defaults and
// environment variables too), then the examples of every command, the
// environment variables, and the exit statuses.
type ManCmd struct{}

// Help is the examples under man's --help.
func (ManCmd) Help() string {
	return `Examples:

    voxbind man | man -l -
    mkdir -p /usr/local/share/man/man1 && voxbind man > /usr/local/share/man/man1/voxbind.1`
}

// Run writes the page in roff.
func (ManCmd) Run(kctx *kong.Context, s *session) error {
	_, err := fmt.Fprint(s.stdio.Out, manPage(kctx.Model))
	return err
}

// manPage builds the page. mango-kong lays out each command's help and
// flags; the examples (each command's Help) go to a section of their own.
// The roff writer takes text as a format string, so every '%' is doubled.
func manPage(app *kong.Application) string {
	esc := func(s string) string { return strings.ReplaceAll(s, "%", "%%") }
	var examples []string
	envs := map[string]string{}
	_ = kong.Visit(app, func(v kong.Visitable, next kong.Next) error {
		switch n := v.(type) {
		case *kong.Node:
			if n.Detail != "" && n.Type == kong.CommandNode {
				for _, line := range strings.Split(n.Detail, "\n") {
					if line = strings.TrimSpace(line); strings.HasPrefix(line, "voxbind ") || strings.HasPrefix(line, "source ") {
						examples = append(examples, esc(manComment.ReplaceAllString(line, " # ")))
					}
				}
			}
			n.Help, n.Detail = esc(n.Help), ""
		case *kong.Flag:
			for _, e := range n.Envs {
				envs[e] = "--" + n.Name
			}
			n.Help = esc(helpValue(n.Value))
		case *kong.Positional:
			if n.Flag == nil { // a flag's value is the flag's, escaped above
				n.Help = esc(n.Help)
			}
		}
		return next(nil)
	})
	var env []string
	for _, e := range slices.Sorted(maps.Keys(envs)) {
		env = append(env, e+": sets "+envs[e]+" when the flag is not given.")
	}
	env = append(env, "NO_COLOR: set to anything, never colour output (as --no-color).")
	page := mangokong.NewManPage(1, app).
		WithLongDescription("voxbind reads a YAML spec and the live account through the Voximplant Management API, "+
			"shows the BindSipRegistration calls that would make the account equal the spec, and applies them on confirmation. "+
			"Global flags may stand before or after the command name. The reference is in the docs/ directory of voxbind's repository.").
		WithSection("Examples", strings.Join(examples, "\n")).
		WithSection("Environment", strings.Join(env, "\n")).
		WithSection("Exit status", "0: success; for plan --detailed-exitcode, no changes.\n"+
			"1: any error: a bad spec, an API error, a refusal, a partial apply, a failed verification.\n"+
			"2: plan --detailed-exitcode only: there are changes.\n"+
			"130: interrupted (SIGINT or SIGTERM).")
	// mango-kong's title line repeats the description as the manual's
	// name and dates the page today; say what it is, dated by the commit.
	out := page.Build(roff.NewDocument())
	day := time.Now().UTC().Format("2006-01-02")
	if t, err := time.Parse(time.RFC3339, date); err == nil {
		day = t.UTC().Format("2006-01-02")
	}
	title := fmt.Sprintf(".TH VOXBIND 1 %q %q %q", day, "voxbind "+version, "voxbind manual")
	if head, rest, ok := strings.Cut(out, "\n"); ok && strings.HasPrefix(head, ".TH ") {
		out = title + "\n" + rest
	}
	return out
}

// manComment is the blank run before an example's comment.
var manComment = regexp.MustCompile(`\s+# `)
