package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                         "alice",
		"café ☎":                        "café ☎",
		"a\x1b[2Jb":                     `a\x1b[2Jb`,
		"line\nPlan: 0 to bind\r":       `line\nPlan: 0 to bind\r`,
		"tab\there\x00\x7f":             `tab\there\x00\x7f`,
		"del\x7fonly":                   `del\x7fonly`,
		"repl \ufffd char":              "repl \ufffd char",
		"c1\u009bcode":                  `c1\x9bcode`,
		"evil\u202egnp.exe":             `evil\u202egnp.exe`,
		"isolate\u2066x\u2069":          `isolate\u2066x\u2069`,
		"line\u2028para\u2029":          `line\u2028para\u2029`,
		"er\u200bin\ufeff":              `er\u200bin\ufeff`,
		"soft\u00adhyphen":              `soft\u00adhyphen`,
		"tag\U000e0041smuggled":         `tag\U000e0041smuggled`,
		"ZWNJ\u200c and ZWJ\u200d kept": "ZWNJ\u200c and ZWJ\u200d kept",
		"latin1 \xe9 byte":              `latin1 \xe9 byte`,
		"emoji 👩‍💻 stays readable":      "emoji 👩‍💻 stays readable",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPathArg: a path to paste is quoted for a shell, and one that
// starts with '-' is not taken for a flag.
func TestPathArg(t *testing.T) {
	for in, want := range map[string]string{
		"j.jsonl":       "j.jsonl",
		"my j.jsonl":    "'my j.jsonl'",
		"-x.jsonl":      "./-x.jsonl",
		"--force":       "./--force",
		"/tmp/-x.jsonl": "/tmp/-x.jsonl",
		"-it's.jsonl":   `'./-it'\''s.jsonl'`,
	} {
		if got := PathArg(in); got != want {
			t.Errorf("PathArg(%q) = %q, want %q", in, got, want)
		}
	}
	p := &Plan{Journal: "-x.jsonl", Flags: " --sandbox=sb/account.json"}
	if got, want := UndoCommand(p), "voxbind undo ./-x.jsonl --sandbox=sb/account.json"; got != want {
		t.Errorf("UndoCommand = %q, want %q", got, want)
	}
	// The selection the undo plan was made with is repeated: without it,
	// the command makes the plan whose blocked restores it left out.
	p.Selection = &PlanSelection{Only: []string{"reg=lab-*@pbx"}, Except: []string{"id=3021", "id=3022"}}
	if got, want := UndoCommand(p), "voxbind undo ./-x.jsonl --sandbox=sb/account.json --only 'reg=lab-*@pbx' --except 'id=3021' --except 'id=3022'"; got != want {
		t.Errorf("UndoCommand with a selection = %q, want %q", got, want)
	}
}

// hostilePlan has account data full of terminal escapes, newlines,
// bidi overrides and mentions in every field a plan shows.
func hostilePlan() *Plan {
	evilApp := Ref{ID: 77, Name: "sup\x1b]0;pwned\x07port.acme.voximplant.com"}
	evilUser := &Ref{ID: 9, Name: "bob\nPlan: 0 to bind, 0 to rebind, 0 to unbind, 0 unchanged.\nhi @org/admins"}
	reg := RegistrationRef{ID: 3005, SIPUsername: "car\x1b[2Jol", Proxy: "pbx\u202e.example.com"}
	other := RegistrationRef{ID: 3006, SIPUsername: "@channel", Proxy: "pbx.example.com\r"}
	return &Plan{
		FormatVersion: 1, AccountID: 1,
		Changes: []Step{
			{Step: 1, Action: ActionRebind, Registration: reg, Before: &Target{Application: evilApp},
				After: &Target{Application: evilApp, User: evilUser}, Reason: ReasonSpec, Source: "spec\x1b[31m.yaml:3"},
			{Step: 2, Action: ActionUnbind, Registration: other, Before: &Target{Application: evilApp, Rule: &Ref{ID: 5, Name: "r\x1b[1m"}}, Reason: ReasonPrune},
		},
		SideEffects: []SideEffect{{Registration: other, LosesUser: *evilUser, CausedByStep: 1}},
		Blocked:     []Blocked{{Registration: other, Reason: BlockedFrozen, Source: "x\n.yaml:1"}},
		Summary:     Summary{Rebind: 1, Unbind: 1},
	}
}

// rawControls lists the control and format characters in s other than
// the newlines the renderer itself writes, and the zero-width space that
// markdown puts after an @ so that it mentions no one.
func rawControls(s string) []rune {
	var out []rune
	for i, r := range s {
		if r == '\u200b' && strings.HasSuffix(s[:i], "@") {
			continue
		}
		if r != '\n' && (unicode.IsControl(r) || printableHidden(r)) {
			out = append(out, r)
		}
	}
	return out
}

// TestRenderEscapesAccountData: text and markdown show control characters
// in names escaped, forge no line, and markdown pings no one.
func TestRenderEscapesAccountData(t *testing.T) {
	p := hostilePlan()
	var text, md bytes.Buffer
	if err := RenderText(&text, p, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderMarkdown(&md, p); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "markdown": md.String()} {
		if c := rawControls(out); len(c) > 0 {
			t.Errorf("%s holds raw control characters %q:\n%s", name, c, out)
		}
		if n := strings.Count(out, "\nPlan: ") + strings.Count(out, "\n**Plan: "); n != 1 {
			t.Errorf("%s holds %d summary lines, want 1 (a name forged one):\n%s", name, n, out)
		}
		for _, want := range []string{`car\x1b[2Jol`, `\u202e`, `\x07`} {
			if name == "markdown" {
				want = markdownReplacer.Replace(want) // shown as want once rendered
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s does not show %q escaped:\n%s", name, want, out)
			}
		}
	}
	for _, mention := range []string{" @org", "| @channel", "- @channel"} {
		if strings.Contains(md.String(), mention) {
			t.Errorf("markdown leaves %s live:\n%s", mention, md.String())
		}
	}
	if !strings.Contains(md.String(), "@\u200borg/admins") {
		t.Errorf("markdown lost the mention's text:\n%s", md.String())
	}
	var plain bytes.Buffer
	RenderMarkdown(&plain, &Plan{FormatVersion: 1, AccountID: 1, Changes: []Step{{Step: 1, Action: ActionUnbind,
		Registration: RegistrationRef{ID: 1, SIPUsername: "alice", Proxy: "pbx.example.com"}, Before: &Target{Application: Ref{ID: 1, Name: "a"}}}}})
	if !strings.Contains(plain.String(), "alice@pbx.example.com") {
		t.Errorf("markdown changed an ordinary registration name:\n%s", plain.String())
	}
}

// TestMessagesEscapeAccountData: the apply summary, verification and
// stale-plan messages escape names too.
func TestMessagesEscapeAccountData(t *testing.T) {
	p := hostilePlan()
	res := &ApplyResult{Failed: 1, Outcomes: []StepOutcome{
		{Step: 1, Status: StepFailed, Err: errors.New("boom")},
		{Step: 2, Status: StepSkipped, Why: "step 1 failed"},
	}}
	var b bytes.Buffer
	if err := RenderApplySummary(&b, p, res, p, []Mismatch{{Step: 1, Registration: p.Changes[0].Registration, Problem: "x"}}, true, ""); err != nil {
		t.Fatal(err)
	}
	progressLine(&p.Changes[0], res.Outcomes[0])
	for _, s := range []string{b.String(), progressLine(&p.Changes[0], res.Outcomes[0])} {
		if c := rawControls(s); len(c) > 0 {
			t.Errorf("raw control characters %q in:\n%s", c, s)
		}
	}
	cur := &Current{Account: AccountInfo{ID: 1}, Registrations: []Registration{{RegistrationRef: p.Changes[0].Registration}}}
	for _, s := range Stale(p, cur) {
		if c := rawControls(s.String()); len(c) > 0 {
			t.Errorf("raw control characters %q in %q", c, s.String())
		}
	}
}

// TestJSONEncoderEscapesInvisible: every C1 control and bidirectional-text
// control is written as \uXXXX, in keys and values, and decodes back to
// the same string; other text, ASCII and the rest of Unicode, is written
// as encoding/json writes it.
func TestJSONEncoderEscapesInvisible(t *testing.T) {
	var in []rune
	for r := rune(0x80); r <= 0x9f; r++ {
		in = append(in, r)
	}
	in = append(in, 0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x2028, 0x2029,
		0x00ad, 0x200b, 0x2060, 0xfeff)
	s := "x" + string(in) + "é☎<&>\u2028"
	v := map[string]string{s: s}
	var b bytes.Buffer
	if err := NewJSONEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	for _, r := range in {
		if strings.ContainsRune(b.String(), r) {
			t.Errorf("U+%04X written raw: %q", r, b.String())
		}
		if !strings.Contains(b.String(), fmt.Sprintf(`\u%04x`, r)) {
			t.Errorf("U+%04X not written as \\u%04x: %q", r, r, b.String())
		}
	}
	if !strings.Contains(b.String(), `é☎<&>\u2028`) {
		t.Errorf("other text changed: %q", b.String())
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back[s] != s {
		t.Errorf("does not read back: %v, %q", err, back)
	}
	// Beyond U+FFFF, a surrogate pair: JSON has no longer escape.
	b.Reset()
	if err := NewJSONEncoder(&b).Encode("tag\U000E0041"); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != `"tag\udb40\udc41"`+"\n" {
		t.Errorf("U+E0041 written as %q, want a surrogate pair", got)
	}
}
