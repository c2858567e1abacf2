package reconcile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

// renderGoldenAll are the planner cases rendered in every format; every
// other good case is rendered as plain text only.
var renderGoldenAll = map[string]bool{"mixed": true, "blocked-cascade": true, "noop-all-unchanged": true, "prune-leaves-frozen": true,
	"select-chain-both-ways": true, "ignore-prune": true}

// TestRenderGolden renders the plans of the testdata/plan cases and
// compares them with testdata/render (refresh with go test ./reconcile
// -run TestRenderGolden -update-render).
func TestRenderGolden(t *testing.T) {
	paths, err := filepath.Glob("../testdata/plan/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := filepath.Abs("../testdata/render")
	if err != nil {
		t.Fatal(err)
	}
	rendered := map[string]bool{}
	for _, path := range paths {
		path, _ := filepath.Abs(path)
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, isError := planCaseSection(ar, "errors.txt"); isError {
			continue
		}
		t.Run(name, func(t *testing.T) {
			pc := loadPlanCase(t, ar)
			if pc.err != nil {
				t.Fatal(pc.err)
			}
			renders := map[string]func(*bytes.Buffer) error{
				".txt": func(b *bytes.Buffer) error { return RenderText(b, pc.plan, false) },
			}
			if renderGoldenAll[name] {
				renders[".color.txt"] = func(b *bytes.Buffer) error { return RenderText(b, pc.plan, true) }
				renders[".md"] = func(b *bytes.Buffer) error { return RenderMarkdown(b, pc.plan) }
				renders[".json"] = func(b *bytes.Buffer) error { return RenderJSON(b, pc.plan, false) }
				renders[".out.json"] = func(b *bytes.Buffer) error { return RenderJSON(b, pc.plan, true) }
			}
			for ext := range renders {
				rendered[name+ext] = true
			}
			for ext, render := range renders {
				var got bytes.Buffer
				if err := render(&got); err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(golden, name+ext)
				renderCompareGolden(t, file, got.Bytes())
			}
		})
	}
	files, err := os.ReadDir(golden)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !rendered[f.Name()] {
			t.Errorf("testdata/render/%s is the golden file of no planner case: remove it, or restore its case", f.Name())
		}
	}
}

func renderCompareGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(file)
	if *updateRender {
		goldenRewrite(t, filepath.Base(file), want, got, func() error {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return err
			}
			return os.WriteFile(file, got, 0o644)
		})
		return
	}
	if err != nil {
		t.Fatalf("%v (create it with go test ./reconcile -run TestRenderGolden -update-render)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", filepath.Base(file), diff)
	}
}

// TestRenderTextColor checks that colour appears only when asked for.
func TestRenderTextColor(t *testing.T) {
	p := renderBigPlan(3)
	var plain, color bytes.Buffer
	if err := RenderText(&plain, p, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&color, p, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Bytes(), []byte("\x1b[")) {
		t.Errorf("plain text has escape codes:\n%q", plain.String())
	}
	if !bytes.Contains(color.Bytes(), []byte(renderGreen+"+ [1]")) {
		t.Errorf("coloured text has no green bind marker:\n%q", color.String())
	}
}

// renderBigPlan is a plan of n binds with side effects and blocked changes,
// built directly.
func renderBigPlan(n int) *Plan {
	p := &Plan{FormatVersion: 1, AccountID: 42, Changes: []Step{}, SideEffects: []SideEffect{}, Blocked: []Blocked{}}
	app := Ref{ID: 1, Name: "support.acme.voximplant.com"}
	for i := 1; i <= n; i++ {
		reg := RegistrationRef{ID: int64(100000 + i), SIPUsername: fmt.Sprintf("user%06d", i), Proxy: "pbx.example.com"}
		p.Changes = append(p.Changes, Step{Step: i, Action: ActionBind, Registration: reg,
			After:  &Target{Application: app, User: &Ref{ID: int64(i), Name: fmt.Sprintf("user%06d", i)}},
			Reason: ReasonSpec, Source: fmt.Sprintf("voxbind.yaml:%d", 3*i)})
		if i%10 == 0 {
			p.SideEffects = append(p.SideEffects, SideEffect{Registration: RegistrationRef{ID: int64(900000 + i), SIPUsername: "old", Proxy: "pbx.example.com"},
				LosesUser: Ref{ID: int64(i), Name: fmt.Sprintf("user%06d", i)}, CausedByStep: i})
			p.Blocked = append(p.Blocked, Blocked{Registration: RegistrationRef{ID: int64(800000 + i), SIPUsername: "frozen", Proxy: "pbx.example.com"},
				Reason: BlockedFrozen, Source: fmt.Sprintf("voxbind.yaml:%d", 3*i+1)})
			p.Ignored = append(p.Ignored, Ignored{Registration: RegistrationRef{ID: int64(700000 + i), SIPUsername: "lab", Proxy: "pbx.example.com"},
				Reason: "re-patched by hand", Owner: "noc@example.com", Until: "2026-12-31", Drift: i%20 == 0, Source: "voxbind.yaml:2"})
		}
	}
	p.Summary.Bind = n
	return p
}

// TestRenderMarkdownCap renders a huge plan: it stays under the cap, the
// summary comes first, and the changes degrade to one line each, then to a
// count that adds up.
func TestRenderMarkdownCap(t *testing.T) {
	const n = 20000
	p := renderBigPlan(n)
	var b bytes.Buffer
	if err := RenderMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	// plan --detailed-exitcode ends it with the drift line.
	out := b.String() + "\n" + DriftLine(p) + "\n"
	if len(out) >= markdownCap {
		t.Fatalf("markdown is %d characters, want < %d", len(out), markdownCap)
	}
	if !strings.HasSuffix(out, "\nDrift: 20000 to change, 2000 blocked, 1000 ignored (soonest exception ends 2026-12-31).\n") {
		t.Errorf("markdown does not end with the drift line:\n%s", out[len(out)-300:])
	}
	if !strings.HasPrefix(out, "#### voxbind plan for account 42\n\n**Plan: 20000 to bind, 0 to rebind, 0 to unbind, 0 unchanged.**\n") {
		t.Errorf("summary does not come first:\n%.300s", out)
	}
	rows := strings.Count(out, "\n| ") - 1   // minus the header row
	oneLine := strings.Count(out, " + user") // "- 123 + user000123@…": a one-line change
	var more int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "- …and ") && strings.Contains(l, "more changes") {
			fmt.Sscanf(l, "- …and %d", &more)
			if !strings.HasSuffix(l, " more changes (`-o json` lists them all)") {
				t.Errorf("pointer to the other changes: %q", l)
			}
		}
	}
	if rows <= 0 || oneLine <= 0 || more <= 0 {
		t.Fatalf("rows %d, one-line changes %d, counted %d: want all three tiers", rows, oneLine, more)
	}
	if got := rows + oneLine + more; got != n {
		t.Errorf("table rows + one-line changes + count = %d, want %d", got, n)
	}
	if !strings.Contains(out, "more blocked") || !strings.Contains(out, "more side effects") || !strings.Contains(out, "more ignored") {
		t.Errorf("blocked, side effects or ignored are not capped")
	}
}

// TestRenderMarkdownEscapes keeps hostile names from breaking the table or
// injecting HTML.
func TestRenderMarkdownEscapes(t *testing.T) {
	p := renderBigPlan(1)
	p.Changes[0].Registration.SIPUsername = "a|b<script>`x`"
	var b bytes.Buffer
	if err := RenderMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") || !strings.Contains(b.String(), `a\|b&lt;script&gt;`) {
		t.Errorf("name not escaped:\n%s", b.String())
	}
}

// TestRenderJSONEmptyLists: empty lists are [] and a nil plan list too.
func TestRenderJSONEmptyLists(t *testing.T) {
	var b bytes.Buffer
	if err := RenderJSON(&b, &Plan{FormatVersion: 1, AccountID: 7}, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"changes": []`, `"side_effects": []`, `"blocked": []`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %s in\n%s", want, b.String())
		}
	}
}

// TestRenderJSONPreconditions: only plan --out saves preconditions.
func TestRenderJSONPreconditions(t *testing.T) {
	p := renderBigPlan(1)
	p.Changes[0].Precondition = &Precondition{UserHolder: &RegistrationRef{ID: 5}}
	var with, without bytes.Buffer
	RenderJSON(&with, p, true)
	RenderJSON(&without, p, false)
	if !strings.Contains(with.String(), `"precondition"`) || strings.Contains(without.String(), `"precondition"`) {
		t.Errorf("with:\n%s\nwithout:\n%s", with.String(), without.String())
	}
	if p.Changes[0].Precondition == nil {
		t.Error("RenderJSON changed the plan")
	}
}

type renderFailingWriter struct{}

func (renderFailingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRenderWriteErrors: a failing writer is reported by every renderer.
func TestRenderWriteErrors(t *testing.T) {
	p := renderBigPlan(2)
	for name, err := range map[string]error{
		"text":     RenderText(renderFailingWriter{}, p, false),
		"markdown": RenderMarkdown(renderFailingWriter{}, p),
		"json":     RenderJSON(renderFailingWriter{}, p, false),
	} {
		if err == nil {
			t.Errorf("%s: no error from a failing writer", name)
		}
	}
}

// TestDriftLine: the line counts the steps and the drift that exceptions
// hide (not the exceptions without drift), and names the soonest end among
// those that hide drift.
func TestDriftLine(t *testing.T) {
	p := &Plan{Changes: make([]Step, 3)}
	if got, want := DriftLine(p), "Drift: 3 to change, 0 ignored."; got != want {
		t.Errorf("DriftLine = %q, want %q", got, want)
	}
	p.Ignored = []Ignored{
		{Until: "2026-12-31", Drift: true},
		{Until: "2026-12-05", Drift: false},
		{Until: "2027-02-01", Drift: true},
		{Until: "2026-12-20", Drift: true},
	}
	p.Changes = nil
	if got, want := DriftLine(p), "Drift: 0 to change, 3 ignored (soonest exception ends 2026-12-20)."; got != want {
		t.Errorf("DriftLine = %q, want %q", got, want)
	}
	// Blocked changes are drift that apply cannot fix: counted, not hidden.
	p.Blocked = make([]Blocked, 2)
	if got, want := DriftLine(p), "Drift: 0 to change, 2 blocked, 3 ignored (soonest exception ends 2026-12-20)."; got != want {
		t.Errorf("DriftLine = %q, want %q", got, want)
	}
	f := &FleetPlan{Accounts: []FleetAccount{{Plan: &Plan{Changes: make([]Step, 1), Blocked: make([]Blocked, 1)}}, {}, {Plan: &Plan{Blocked: make([]Blocked, 2)}}}}
	if got, want := FleetDriftLine(f), "Drift: 1 to change, 3 blocked, 0 ignored."; got != want {
		t.Errorf("FleetDriftLine = %q, want %q", got, want)
	}
}

// renderMixedPlan is a plan of binds to support, rebinds to sales, unbinds
// from support, and binds to an application without a name, in that order
// of steps, each action in a block of its own.
func renderMixedPlan(binds, rebinds, unbinds, nameless int) *Plan {
	p := &Plan{FormatVersion: 1, AccountID: 42}
	support := Ref{ID: 1, Name: "support.acme.voximplant.com"}
	sales := Ref{ID: 2, Name: "sales.acme.voximplant.com"}
	add := func(action Action, before, after *Target) {
		i := len(p.Changes) + 1
		p.Changes = append(p.Changes, Step{Step: i, Action: action, Before: before, After: after, Reason: ReasonSpec,
			Registration: RegistrationRef{ID: int64(1000 + i), SIPUsername: fmt.Sprintf("r%d", i), Proxy: "pbx.example.com"},
			Source:       fmt.Sprintf("phones.csv:%d", i+1)})
	}
	for range binds {
		add(ActionBind, nil, &Target{Application: support})
	}
	for range rebinds {
		add(ActionRebind, &Target{Application: support}, &Target{Application: sales})
	}
	for range unbinds {
		add(ActionUnbind, &Target{Application: support}, nil)
	}
	for range nameless {
		add(ActionBind, nil, &Target{Application: Ref{ID: 9}})
	}
	p.Summary = Summary{Bind: binds + nameless, Rebind: rebinds, Unbind: unbinds}
	return p
}

// TestRenderTextGrouped: past 100 changes the text plan shows per
// application and action a count and the first three changes, then the rest
// counted, capped side effects and blocked changes, and a pointer to the
// full list before the summary; RenderTextFull shows every change.
func TestRenderTextGrouped(t *testing.T) {
	p := renderMixedPlan(60, 30, 15, 5)
	big := renderBigPlan(30) // 3 side effects and 3 blocked changes per 30
	for range 5 {
		p.SideEffects = append(p.SideEffects, big.SideEffects...)
		p.Blocked = append(p.Blocked, big.Blocked...)
	}
	var b bytes.Buffer
	if err := RenderText(&b, p, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	var headers []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " to bind") || strings.Contains(l, " to rebind") || strings.Contains(l, " to unbind") {
			headers = append(headers, l)
		}
	}
	if !strings.HasPrefix(out, "voxbind plan for account 42\n\n110 changes, grouped by application and action (the first 3 of each group shown):\n\n") {
		t.Errorf("no grouping header:\n%.300s", out)
	}
	want := []string{
		"application 9: + 5 to bind",
		"  … and 2 more to bind in application 9",
		"sales: ~ 30 to rebind",
		"  … and 27 more to rebind in sales",
		"support: + 60 to bind",
		"  … and 57 more to bind in support",
		"support: - 15 to unbind",
		"  … and 12 more to unbind in support",
		"Plan: 65 to bind, 30 to rebind, 15 to unbind, 0 unchanged.",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("groups (-want +got):\n%s\n%s", diff, out)
	}
	for _, step := range []string{"+ [1] r1@", "+ [3] r3@", "~ [61] r61@", "~ [63] r63@", "- [91] r91@", "+ [106] r106@"} {
		if !strings.Contains(out, step) {
			t.Errorf("first changes of a group: no %q", step)
		}
	}
	if n := strings.Count(out, "phones.csv:"); n != 12 {
		t.Errorf("%d changes shown, want 3 of each of 4 groups", n)
	}
	if n := strings.Count(out, " loses user "); n != 10 || !strings.Contains(out, "  … and 5 more\n") {
		t.Errorf("%d side effects listed, want 10 and the other 5 counted", n)
	}
	if n := strings.Count(out, ": frozen (deactivated"); n != 10 {
		t.Errorf("%d blocked changes listed, want 10", n)
	}
	if !strings.HasSuffix(out, "110 changes, grouped: --full lists every one (-o json gives them as data).\n\n"+
		"Plan: 65 to bind, 30 to rebind, 15 to unbind, 0 unchanged.\n") {
		t.Errorf("no pointer to the full list before the summary:\n%s", out[max(0, len(out)-400):])
	}

	// An undo plan points to undo's way of saving it, not plan's.
	b.Reset()
	undo := *p
	undo.Journal = "my j.jsonl" // quoted for a shell, to work when pasted
	if err := RenderText(&b, &undo, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "110 changes, grouped: --full lists every one (voxbind undo 'my j.jsonl' --out FILE saves them, then voxbind show FILE -o json gives them as data).\n") ||
		strings.Contains(b.String(), "voxbind plan") {
		t.Errorf("an undo plan's pointer to the full list names another command:\n%s", b.String()[max(0, b.Len()-400):])
	}

	// A saved plan (show, apply --plan) points to its own file: a new
	// plan could differ from it.
	b.Reset()
	saved := undo
	saved.File = "plan 1.json"
	if err := RenderText(&b, &saved, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "110 changes, grouped: --full lists every one (voxbind show 'plan 1.json' -o json gives them as data).\n") {
		t.Errorf("a saved plan's pointer to the full list is not its file:\n%s", b.String()[max(0, b.Len()-400):])
	}
	// A file named like a flag, or holding an escape, is pasted as a file
	// and shown escaped.
	for file, want := range map[string]string{"-big.json": "./-big.json", "e\x1b[31m.json": `'e\x1b[31m.json'`} {
		b.Reset()
		saved.File = file
		if err := RenderText(&b, &saved, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "(voxbind show "+want+" -o json gives them as data).\n") {
			t.Errorf("the pointer to the full list of %q does not paste as %s:\n%s", file, want, b.String()[max(0, b.Len()-400):])
		}
	}

	b.Reset()
	if err := RenderTextFull(&b, p, false); err != nil {
		t.Fatal(err)
	}
	full := b.String()
	if n := strings.Count(full, "phones.csv:"); n != 110 {
		t.Errorf("RenderTextFull shows %d changes, want all 110", n)
	}
	if strings.Contains(full, "grouped") || strings.Count(full, " loses user ") != 15 || strings.Count(full, ": frozen (deactivated") != 15 {
		t.Errorf("RenderTextFull groups or caps:\n%s", full)
	}
}

// TestRenderTextGroupsPast100: 100 changes are listed one by one, 101 are
// grouped; many groups show fewer changes each, never none.
func TestRenderTextGroupsPast100(t *testing.T) {
	for n, grouped := range map[int]bool{100: false, 101: true} {
		var b bytes.Buffer
		if err := RenderText(&b, renderMixedPlan(n, 0, 0, 0), false); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "grouped"); got != grouped {
			t.Errorf("%d changes: grouped = %v, want %v", n, got, grouped)
		}
	}
	p := renderMixedPlan(0, 0, 0, 0)
	for app := range 40 {
		for range 3 {
			i := len(p.Changes) + 1
			p.Changes = append(p.Changes, Step{Step: i, Action: ActionBind, Reason: ReasonSpec, Source: fmt.Sprintf("f.csv:%d", i),
				Registration: RegistrationRef{ID: int64(i), SIPUsername: fmt.Sprintf("r%d", i), Proxy: "p"},
				After:        &Target{Application: Ref{ID: int64(app + 1), Name: fmt.Sprintf("app%02d", app)}}})
		}
	}
	var b bytes.Buffer
	if err := RenderText(&b, p, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "f.csv:"); n != 40 {
		t.Errorf("40 groups show %d changes, want one each:\n%s", n, b.String())
	}
}

// TestRenderTextGroupedScope: a grouped plan keeps what a selection and
// the spec's exceptions add to a plan listed in full: the selection line,
// every step included from outside the selection (with its mark, even
// past the first changes of its group), the ignored registrations (the
// first 10, the rest counted with the drift they hide) and the sentence
// about the changes left outside, last.
func TestRenderTextGroupedScope(t *testing.T) {
	p := renderMixedPlan(60, 30, 15, 5)
	p.Selection = &PlanSelection{Only: []string{"app=support"}, Except: []string{"id=1007"}, Outside: 7}
	p.Changes[49].IncludedFor = 52 // step 50: the 50th bind to support
	for i := range 12 {
		p.Ignored = append(p.Ignored, Ignored{
			Registration: RegistrationRef{ID: int64(5000 + i), SIPUsername: fmt.Sprintf("lab%d", i), Proxy: "pbx.example.com"},
			Reason:       "re-patched by hand", Until: "2026-12-31", Drift: i%2 == 0, Source: "settings.yaml:4",
		})
	}
	var b bytes.Buffer
	if err := RenderText(&b, p, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"voxbind plan for account 42\nSelection: --only app=support --except id=1007\n\n" +
			"110 changes, grouped by application and action (the first 3 of each group shown, and every step included from outside the selection):\n",
		"  + [3] r3@pbx.example.com (1003)\n        (unbound) -> support\n        phones.csv:4\n" +
			"  + [50] r50@pbx.example.com (1050)\n        (unbound) -> support\n        phones.csv:51 (included: step 52 needs it)\n" +
			"  … and 56 more to bind in support\n",
		"\nIgnored (exceptions in the spec: no step until they end):\n" +
			"  = lab0@pbx.example.com (5000) until 2026-12-31, drift hidden: re-patched by hand (settings.yaml:4)\n" +
			"  = lab1@pbx.example.com (5001) until 2026-12-31, no drift: re-patched by hand (settings.yaml:4)\n",
		"  = lab9@pbx.example.com (5009) until 2026-12-31, no drift: re-patched by hand (settings.yaml:4)\n" +
			"  … and 2 more, 1 of them with drift hidden\n\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("grouped plan has no\n%s\n---\n%s", want, out)
		}
	}
	if n := strings.Count(out, "  = lab"); n != 10 {
		t.Errorf("%d ignored registrations listed, want 10", n)
	}
	if !strings.HasSuffix(out, "Plan: 65 to bind, 30 to rebind, 15 to unbind, 0 unchanged.\n7 changes outside the selection are not planned.\n") {
		t.Errorf("the sentence about changes outside the selection is not last:\n%s", out[max(0, len(out)-300):])
	}

	// An undo plan points to undo's way of saving it, not plan's, with
	// the selection it was made with.
	b.Reset()
	undo := *p
	undo.Journal = "j.jsonl"
	if err := RenderText(&b, &undo, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "110 changes, grouped: --full lists every one (voxbind undo j.jsonl --only 'app=support' --except 'id=1007' --out FILE saves them, then voxbind show FILE -o json gives them as data).\n") ||
		strings.Contains(b.String(), "voxbind plan") {
		t.Errorf("an undo plan's pointer to the full list names another command:\n%s", b.String()[max(0, b.Len()-400):])
	}

	b.Reset()
	if err := RenderTextFull(&b, p, false); err != nil {
		t.Fatal(err)
	}
	full := b.String()
	if n := strings.Count(full, "  = lab"); n != 12 || strings.Contains(full, "… and") {
		t.Errorf("RenderTextFull lists %d ignored registrations, want all 12:\n%s", n, full)
	}
	if !strings.Contains(full, "phones.csv:51 (included: step 52 needs it)\n") || !strings.HasSuffix(full, "7 changes outside the selection are not planned.\n") {
		t.Errorf("RenderTextFull lost the included mark or the outside sentence:\n%s", full)
	}
}

// TestRenderPlanTextGroupedEmpty: the grouped layout of a plan with no
// changes renders (its sample size does not divide by zero groups).
func TestRenderPlanTextGroupedEmpty(t *testing.T) {
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	renderPlanText(bw, &Plan{}, false, false, "")
	bw.Flush()
	if !strings.Contains(b.String(), "0 changes") {
		t.Errorf("grouped empty plan:\n%s", b.String())
	}
}

// TestRenderTextIgnoredDriftCount: the ignored registrations a grouped
// plan does not list are counted with how many of them hide drift.
func TestRenderTextIgnoredDriftCount(t *testing.T) {
	p := renderMixedPlan(101, 0, 0, 0)
	for i := range 13 {
		p.Ignored = append(p.Ignored, Ignored{
			Registration: RegistrationRef{ID: int64(5000 + i), SIPUsername: fmt.Sprintf("lab%d", i), Proxy: "pbx.example.com"},
			Reason:       "lab", Until: "2026-12-31", Drift: i == 11 || i == 12, Source: "settings.yaml:4",
		})
	}
	var b bytes.Buffer
	if err := RenderText(&b, p, false); err != nil {
		t.Fatal(err)
	}
	if want := "  … and 3 more, 2 of them with drift hidden\n"; !strings.Contains(b.String(), want) {
		t.Errorf("grouped plan has no %q:\n%s", want, b.String()[max(0, b.Len()-600):])
	}
}
