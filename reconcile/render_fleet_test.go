package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/voxbind/voxbind/spec"
)

// renderTestFleet is a fleet of four accounts: the plans of the planner
// cases "mixed" and "blocked-cascade", an account whose spec does not
// resolve and one that could not be read (its error holds a control
// character, as a hostile server's message might).
func renderTestFleet(t *testing.T) *FleetPlan {
	t.Helper()
	cases, err := filepath.Abs(filepath.Join("..", "testdata", "plan"))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(name string, id int64) *Plan {
		ar, err := txtar.ParseFile(filepath.Join(cases, name+".txtar"))
		if err != nil {
			t.Fatal(err)
		}
		pc := loadPlanCase(t, ar)
		if pc.err != nil {
			t.Fatal(pc.err)
		}
		pc.plan.AccountID = id
		return pc.plan
	}
	return &FleetPlan{Accounts: []FleetAccount{
		{Account: AccountInfo{ID: 1000002, Name: "demo-child1"}, Plan: plan("mixed", 1000002), Bound: 5},
		{Account: AccountInfo{ID: 1000003, Name: "demo_child2"}, Plan: plan("blocked-cascade", 1000003), Bound: 3},
		{Account: AccountInfo{ID: 1000004, Name: "demo-child3"}, Err: spec.Errors{
			spec.NewError(spec.Pos{File: "fleet/c3.yaml", Line: 6, Col: 5}, spec.CodeUnknownUser, `user "nobody" not found in application support`, ""),
			spec.NewError(spec.Pos{File: "fleet/c3.yaml", Line: 9, Col: 5}, spec.CodeUnknownRegistration, `registration "gone@pbx" not found`, "check the spelling"),
		}},
		{Account: AccountInfo{ID: 1000005}, Err: errors.New("read account info: GetAccountInfo: api error 100: bad\x1b[2J key\nsecond line")},
	}}
}

// TestRenderFleetGolden renders the test fleet in every format and
// compares with testdata/fleet/render.* (refresh with go test ./reconcile
// -run TestRenderFleetGolden -update-render); testdata/render holds the
// goldens of the planner's cases only.
func TestRenderFleetGolden(t *testing.T) {
	golden, err := filepath.Abs("../testdata/fleet")
	if err != nil {
		t.Fatal(err)
	}
	f := renderTestFleet(t)
	for ext, render := range map[string]func(*bytes.Buffer) error{
		".txt":       func(b *bytes.Buffer) error { return RenderFleetText(b, f, false, false) },
		".color.txt": func(b *bytes.Buffer) error { return RenderFleetText(b, f, true, false) },
		".md":        func(b *bytes.Buffer) error { return RenderFleetMarkdown(b, f) },
		".json":      func(b *bytes.Buffer) error { return RenderFleetJSON(b, f, false) },
		".out.json":  func(b *bytes.Buffer) error { return RenderFleetJSON(b, f, true) },
	} {
		var got bytes.Buffer
		if err := render(&got); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got.Bytes(), []byte("\x1b[2J")) {
			t.Errorf("fleet%s passes the server's control characters through", ext)
		}
		renderCompareGolden(t, filepath.Join(golden, "render"+ext), got.Bytes())
	}
}

// TestRenderFleetMarkdownCap: a fleet of many large plans stays under
// the cap of one comment; the table lists every account, and the plans
// that do not fit are counted.
func TestRenderFleetMarkdownCap(t *testing.T) {
	const accounts = 40
	f := &FleetPlan{}
	for i := range accounts {
		p := renderBigPlan(300)
		p.AccountID = int64(7000 + i)
		f.Accounts = append(f.Accounts, FleetAccount{Account: AccountInfo{ID: p.AccountID, Name: fmt.Sprintf("child%d", i)}, Plan: p})
	}
	var b bytes.Buffer
	if err := RenderFleetMarkdown(&b, f); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if len(out) >= markdownCap {
		t.Fatalf("markdown is %d characters, want < %d", len(out), markdownCap)
	}
	if !strings.HasPrefix(out, "#### voxbind plan for 40 accounts\n\n**Fleet: 40 accounts, 40 with changes, 0 failed.**\n") {
		t.Errorf("the fleet's summary does not come first:\n%.300s", out)
	}
	if rows := len(regexp.MustCompile(`\n\| 70\d\d \| child`).FindAllString(out, -1)); rows != accounts {
		t.Errorf("%d rows for accounts in the table, want %d", rows, accounts)
	}
	shown := strings.Count(out, "#### voxbind plan for account ")
	var more int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "…and the plans of ") {
			fmt.Sscanf(l, "…and the plans of %d", &more)
			// The pointer is a flag of the command that made the plan: a
			// bare "voxbind plan" would plan voxbind.yaml instead.
			if !strings.HasSuffix(l, " more accounts (`-o json` shows them all)") {
				t.Errorf("pointer to the other plans: %q", l)
			}
		}
	}
	if shown == 0 || more == 0 || shown+more != accounts {
		t.Errorf("%d plans shown and %d counted, want some of each, %d in all", shown, more, accounts)
	}
}

// TestRenderFleetWriteErrors: a failing writer is reported by every fleet
// renderer.
func TestRenderFleetWriteErrors(t *testing.T) {
	f := &FleetPlan{Accounts: []FleetAccount{{Account: AccountInfo{ID: 1}, Plan: renderBigPlan(2)}}}
	for name, err := range map[string]error{
		"text":     RenderFleetText(renderFailingWriter{}, f, false, false),
		"markdown": RenderFleetMarkdown(renderFailingWriter{}, f),
		"json":     RenderFleetJSON(renderFailingWriter{}, f, false),
	} {
		if err == nil {
			t.Errorf("%s: no error from a failing writer", name)
		}
	}
}

// TestRenderFleetTextGroupsPast100: an account's plan of 100 changes is
// listed one by one in a fleet, as alone; one of 101 is grouped.
func TestRenderFleetTextGroupsPast100(t *testing.T) {
	for n, grouped := range map[int]bool{100: false, 101: true} {
		p := renderMixedPlan(n, 0, 0, 0)
		p.AccountID = 7001
		f := &FleetPlan{Accounts: []FleetAccount{{Account: AccountInfo{ID: 7001, Name: "child"}, Plan: p}}}
		var b bytes.Buffer
		if err := RenderFleetText(&b, f, false, false); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "grouped"); got != grouped {
			t.Errorf("%d changes: grouped = %v, want %v", n, got, grouped)
		}
	}
}

// TestRenderFleetBlockedRefuser: the fleet's line about blocked changes
// names the command that refuses them, as an account's own plan does:
// undo for the plans of an undo (they have a journal), apply otherwise.
func TestRenderFleetBlockedRefuser(t *testing.T) {
	for journal, want := range map[string]string{
		"":         "Blocked changes in 1 account (1000003): apply refuses its plan.",
		"j3.jsonl": "Blocked changes in 1 account (1000003): undo refuses its plan.",
	} {
		t.Run("journal="+journal, func(t *testing.T) { // renderTestFleet changes directory until the subtest ends
			f := renderTestFleet(t)
			f.Accounts = f.Accounts[:2]
			for i := range f.Accounts {
				f.Accounts[i].Plan.Journal = journal
			}
			var text, md bytes.Buffer
			if err := RenderFleetText(&text, f, false, false); err != nil {
				t.Fatal(err)
			}
			if err := RenderFleetMarkdown(&md, f); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "\n"+want+"\n") {
				t.Errorf("the text does not say %q:\n%s", want, text.String())
			}
			if !strings.Contains(md.String(), "**"+want+"**") {
				t.Errorf("the markdown does not say %q:\n%s", want, md.String())
			}
		})
	}
}
