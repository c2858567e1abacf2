package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/internal/english"
)

// The global flags are declared by the commands that use them, in the
// groups below, so that a command offers (in its help, its completion
// and the man page) only the flags it uses: validate takes no
// credentials. They are still global in the sense users rely on: shown
// together under their own heading, and allowed before the command name
// too (hoistGlobals).

// globalGroup heads the global flags in every command's help, after the
// command's own flags.
var globalGroup = kong.Group{Key: "global", Title: "Global flags (also before the command name):"}

// AccountFlags say which account to act on and how to reach it: every
// command that reads or writes an account takes them.
type AccountFlags struct {
	Credentials string `group:"global" help:"Service-account key file {account_email, account_id, key_id, private_key}." env:"VOXIMPLANT_CREDENTIALS" placeholder:"FILE" predictor:"file"`
	Endpoint    string `group:"global" help:"Management API base URL; plain http:// only for loopback hosts." env:"VOXIMPLANT_ENDPOINT" default:"https://api.voximplant.com/platform_api/" placeholder:"URL"`
	AccountID   int64  `group:"global" name:"account-id" help:"Act on this child account (the parent's key signs)." env:"VOXIMPLANT_ACCOUNT_ID" placeholder:"ID"`
	Sandbox     string `group:"global" help:"Talk to the built-in emulator backed by STATEFILE instead of Voximplant (no network, no credentials)." placeholder:"STATEFILE" predictor:"file"`
}

// LogFlags choose the log: records of what voxbind does, on stderr, for
// debugging and for log collectors. Off unless asked for; the messages
// for people (progress, warnings, errors) do not depend on it.
type LogFlags struct {
	LogLevel  string `group:"global" name:"log-level" enum:"off,debug,info,warn,error" default:"off" env:"VOXBIND_LOG_LEVEL" placeholder:"LEVEL" help:"Log records at this level and above on stderr: debug (every API request), info (retries, steps, phases), warn, error; or off."`
	LogFormat string `group:"global" name:"log-format" enum:"text,json" default:"text" env:"VOXBIND_LOG_FORMAT" placeholder:"FORMAT" help:"Log records as text (key=value) or json (one object per line)."`
	Debug     bool   `group:"global" help:"Same as --log-level debug: trace every API request on stderr (tokens and keys are never shown)."`
}

// logFlags lets run find the log flags of the command it runs.
func (f *LogFlags) logFlags() *LogFlags { return f }

// ColorFlags are taken by the commands that may colour their output.
type ColorFlags struct {
	NoColor bool `group:"global" name:"no-color" help:"Never colour output (also: NO_COLOR set to anything)."`
}

// color reports whether to colour what goes to w: a terminal, and
// neither --no-color nor NO_COLOR.
func (f ColorFlags) color(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok || f.NoColor {
		return false
	}
	return planIsTerminal(w)
}

// minRate is the smallest --rate taken: one request every 100 s. A
// smaller ceiling would make a run wait practically forever.
const minRate = 0.01

// checkRate checks --rate, the client's ceiling in requests per second
// (and sandbox serve's limit, and each of its --account-rate values), with
// the same words for every command that takes it.
func checkRate(rate float64) error {
	if rate != 0 && !(rate >= minRate && !math.IsInf(rate, 0)) {
		return fmt.Errorf("--rate %g: give a number of requests per second, at least %g (one request every %g s), or 0 for no ceiling", rate, minRate, 1/minRate)
	}
	return nil
}

// hoistGlobals moves the flags written before the command name to just
// after it ("voxbind --sandbox s.json plan" reads as "voxbind plan
// --sandbox s.json"): kong knows a flag once it has seen the command that
// declares it. A global flag given to a command that does not use it is
// dropped, before the command name or after it ("voxbind validate
// --no-color" validates), so that aliases and wrappers that always pass
// one keep working with every command. Any other flag a command does not
// take is left for kong to refuse (usageError says which commands take it).
//
// It also joins a numeric flag to a negative value in the next word
// ("--rate -1" reads as "--rate=-1"): kong takes a word that starts with
// '-' for a short flag and refuses the line with its own "perhaps try
// --rate=\"-1\"", where the command's check of the value says what range
// it accepts, and --clock-skew -5m means what it says.
func hoistGlobals(app *kong.Application, args []string) []string {
	sc := argScanner{args: args, declared: map[string]bool{}}
	sc.takesValue, sc.global = appFlags(app)
	i := 0 // args[:i] are the flags before the command name
	for i < len(args) && isFlagArg(args[i]) {
		_, i = sc.flag(i)
	}
	node, j := app.Node, i // args[i:j] name the command
	for j < len(args) {
		child := commandChild(node, args[j])
		if child == nil {
			break
		}
		node, j = child, j+1
	}
	if node == app.Node {
		return args
	}
	sc.declared, sc.numeric = commandFlags(node)
	out := make([]string, 0, len(args))
	out = append(out, args[i:j]...)
	out = sc.keep(out, 0, i)
	return sc.keep(out, j, len(args))
}

// appFlags tells, for every flag name of app (long and short, with their
// dashes), whether it takes a value, and whether it is a global flag.
func appFlags(app *kong.Application) (takesValue, global map[string]bool) {
	takesValue, global = map[string]bool{}, map[string]bool{}
	_ = kong.Visit(app, func(v kong.Visitable, next kong.Next) error {
		if f, ok := v.(*kong.Flag); ok {
			for _, n := range flagNames(f) {
				takesValue[n] = !f.IsBool() && !f.IsCounter()
				global[n] = f.Group != nil && f.Group.Key == globalGroup.Key
			}
		}
		return next(nil)
	})
	return takesValue, global
}

// commandFlags tells, for every flag a command takes (its own and its
// parents'), whether it takes a value, and which of them take a number
// (an integer, a float or a duration).
func commandFlags(node *kong.Node) (declared, numeric map[string]bool) {
	declared, numeric = map[string]bool{}, map[string]bool{}
	for _, level := range node.AllFlags(false) {
		for _, f := range level {
			for _, n := range flagNames(f) {
				declared[n] = !f.IsBool() && !f.IsCounter()
				numeric[n] = isNumber(f.Target.Type())
			}
		}
	}
	return declared, numeric
}

// isNumber reports the types of numeric flags: integers, floats and
// time.Duration, or a pointer to one (a flag whose absence counts).
func isNumber(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// negativeNumber matches a word that is a negative number or duration
// (-1, -0.5, -.5, -5m), not a flag (-o, -f).
var negativeNumber = regexp.MustCompile(`^-\.?[0-9]`)

// flagNames are the names f is given by on the command line: --name, and
// -x when it has a short form.
func flagNames(f *kong.Flag) []string {
	names := []string{"--" + f.Name}
	if f.Short != 0 {
		names = append(names, "-"+string(f.Short))
	}
	return names
}

func isFlagArg(a string) bool { return a != "--" && a != "-" && strings.HasPrefix(a, "-") }

// argScanner reads the flags of a command line for hoistGlobals.
type argScanner struct {
	args               []string
	takesValue, global map[string]bool // every flag of the app, by name
	// declared holds the flags of the command, once known, and whether
	// each takes a value: two commands may give one name to different
	// flags (export's --children is a switch, sandbox init's a number).
	declared map[string]bool
	numeric  map[string]bool // the command's flags that take a number
}

// flag reads the flag that starts at args[i]: its name and the index
// just past it (and past its value, when the value is the next word).
func (sc *argScanner) flag(i int) (string, int) {
	name, _, hasValue := strings.Cut(sc.args[i], "=")
	if !strings.HasPrefix(name, "--") && len(name) > 2 { // -ojson: the value is attached
		name, hasValue = name[:2], true
	}
	takes, ok := sc.declared[name]
	if !ok {
		takes = sc.takesValue[name]
	}
	if takes && !hasValue && i+1 < len(sc.args) {
		return name, i + 2
	}
	return name, i + 1
}

// keep appends to out the words of args[from:to], less the global flags
// the command does not use; it stops at "--", after which nothing is a
// flag.
func (sc *argScanner) keep(out []string, from, to int) []string {
	for k := from; k < to; {
		if sc.args[k] == "--" {
			return append(out, sc.args[k:to]...)
		}
		if !isFlagArg(sc.args[k]) {
			out, k = append(out, sc.args[k]), k+1
			continue
		}
		name, next := sc.flag(k)
		if _, ours := sc.declared[name]; ours || !sc.global[name] {
			words := sc.args[k:next]
			if len(words) == 2 && sc.numeric[name] && strings.HasPrefix(name, "--") && negativeNumber.MatchString(words[1]) {
				words = []string{name + "=" + words[1]}
			}
			out = append(out, words...)
		}
		k = next
	}
	return out
}

func commandChild(n *kong.Node, name string) *kong.Node {
	for _, c := range n.Children {
		if c.Type == kong.CommandNode && (c.Name == name || slices.Contains(c.Aliases, name)) {
			return c
		}
	}
	return nil
}

var unknownFlag = regexp.MustCompile(`^unknown flag (-[-\w]+)`)

// usageError explains a flag that another command takes but this one
// does not: "validate does not take --sandbox".
func usageError(app *kong.Application, err error) error {
	m := unknownFlag.FindStringSubmatch(err.Error())
	var pe *kong.ParseError
	if m == nil || !asParseError(err, &pe) || pe.Context == nil || pe.Context.Selected() == nil {
		return err
	}
	name := strings.TrimLeft(m[1], "-")
	var takers []string
	_ = kong.Visit(app, func(v kong.Visitable, next kong.Next) error {
		if n, ok := v.(*kong.Node); ok && n.Type == kong.CommandNode && !n.Hidden {
			for _, f := range n.Flags {
				if f.Name == name || (len(name) == 1 && string(f.Short) == name) {
					takers = append(takers, n.FullPath()[len(app.Name)+1:])
					break
				}
			}
		}
		return next(nil)
	})
	if len(takers) == 0 {
		return err
	}
	cmd := pe.Context.Selected().FullPath()
	return fmt.Errorf("%s does not take %s; it is a flag of %s", cmd, m[1], english.And(takers))
}

// refusedFlag finds the flag a refusal names first: kong's "--log-level
// must be one of …", a command's "--rate -3: give …".
var refusedFlag = regexp.MustCompile(`^--([a-z][a-z-]*) `)

// kongEnvar is how kong names the variable of a value it could not parse:
// (from envar VOXBIND_TIMEOUT="xyz"); the value is in its message already.
var kongEnvar = regexp.MustCompile(` \(from envar ([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"\)`)

// fromEnv names the environment variable a refused value came from, when
// its flag is not on the command line: "--log-level must be one of … (from
// VOXBIND_LOG_LEVEL)", "--timeout -1s: give a positive duration … (from
// VOXBIND_TIMEOUT)", so that the user looks in the right place. It takes
// kong's usage errors and the errors of a command's own checks of its
// flags alike, and gives kong's own note on a value it could not parse
// the same shape.
func fromEnv(app *kong.Application, args []string, err error) error {
	if err == nil {
		return nil
	}
	if kongEnvar.MatchString(err.Error()) {
		return errors.New(kongEnvar.ReplaceAllString(err.Error(), " (from $1)"))
	}
	m := refusedFlag.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	flag := "--" + m[1]
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return err
		}
	}
	var env string
	_ = kong.Visit(app, func(v kong.Visitable, next kong.Next) error {
		if f, ok := v.(*kong.Flag); ok && f.Name == m[1] {
			for _, e := range f.Envs {
				if os.Getenv(e) != "" {
					env = e
				}
			}
		}
		return next(nil)
	})
	if env == "" {
		return err
	}
	// A command's refusal keeps its shape, the note before its fix.
	var ce *codedError
	if errors.As(err, &ce) && ce.Error() == err.Error() {
		ce.msg += " (from " + env + ")"
		return err
	}
	return fmt.Errorf("%w (from %s)", err, env)
}

// dropEmptyEnv unsets every variable of app's flags that is set to the
// empty string, before the command line is parsed: a CI system passes a
// variable it has no value for as empty (VOXBIND_RATE: ${{ vars.RATE }}),
// which means "not set", not a value to refuse.
func dropEmptyEnv(app *kong.Application) {
	_ = kong.Visit(app, func(v kong.Visitable, next kong.Next) error {
		if f, ok := v.(*kong.Flag); ok {
			for _, e := range f.Envs {
				if val, set := os.LookupEnv(e); set && val == "" {
					os.Unsetenv(e)
				}
			}
		}
		return next(nil)
	})
}

func asParseError(err error, pe **kong.ParseError) bool {
	e, ok := err.(*kong.ParseError)
	if ok {
		*pe = e
	}
	return ok
}

// helpHint is the help to point to after a usage error: the command's own
// when kong got as far as a command.
func helpHint(err error) string {
	var pe *kong.ParseError
	if asParseError(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
		return "help " + strings.TrimPrefix(pe.Context.Selected().FullPath(), "voxbind ")
	}
	return "--help"
}

// helpValue is the text --help shows for a flag or an argument: its help,
// then its default and the environment variable that sets it.
func helpValue(v *kong.Value) string {
	var notes []string
	if v.HasDefault && v.Default != "" && !v.IsBool() {
		notes = append(notes, "default: "+v.Default)
	}
	if len(v.Tag.Envs) > 0 {
		notes = append(notes, "env "+strings.Join(v.Tag.Envs, ", "))
	}
	if len(notes) == 0 {
		return v.Help
	}
	suffix := "(" + strings.Join(notes, "; ") + ")"
	if help, ok := strings.CutSuffix(v.Help, "."); ok {
		return help + " " + suffix + "."
	}
	return strings.TrimSpace(v.Help + " " + suffix)
}
