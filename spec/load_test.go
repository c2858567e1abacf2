package spec

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/voxbind/voxbind/internal/tbrecord"
)

// -update rewrites the golden files under testdata/spec/bad that differ,
// shows each change and fails the run: review it with git diff, then run
// the tests again.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/spec/bad that differ, show the change and fail")

const (
	goodDir = "../testdata/spec/good"
	badDir  = "../testdata/spec/bad"
)

// cases lists the spec cases of dir: every *.yaml and *.csv file and every
// directory.
func cases(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".csv") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return names
}

// testToday is the day the bad cases are judged on, so that messages
// naming today do not change with the calendar.
var testToday = time.Date(2026, 11, 28, 15, 4, 5, 0, time.UTC)

// TestBad loads every bad case and compares the rendered errors, each
// with its code, with the case's golden file (refresh with go test ./spec -update). Paths in the
// messages are relative to testdata/spec/bad.
func TestBad(t *testing.T) {
	for _, name := range cases(t, badDir) {
		t.Run(name, func(t *testing.T) {
			t.Chdir(badDir)
			f, err := LoadFleetWith([]string{name}, Options{Today: testToday})
			if err == nil {
				t.Fatalf("LoadFleet(%s) = %+v, want errors", name, f)
			}
			if f != nil {
				t.Errorf("LoadFleet returned a fleet along with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want spec.Errors: %v", err, err)
			}
			for i, e := range errs {
				if e.Pos.File == "" {
					t.Errorf("error without a file: %v", e)
				}
				if e.Pos.Line < 1 && name != "empty_dir" && name != "unreadable_entries" { // file-level errors
					t.Errorf("error without a line: %v", e)
				}
				if i > 0 && errs.Less(i, i-1) {
					t.Errorf("errors not sorted: %v before %v", errs[i-1], e)
				}
				if e.Code == "" || e.Fix == "" {
					t.Errorf("error without a code or a fix: %+v", e)
				}
			}
			// Each line is the error as printed, then its code.
			var b strings.Builder
			for _, e := range errs {
				fmt.Fprintf(&b, "%s [%s]\n", e, e.Code)
			}
			got := b.String()
			golden := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".csv") + ".golden"
			want, err := os.ReadFile(golden)
			if *update {
				updateGolden(t, golden, want, got)
			}
			if err != nil {
				t.Fatalf("%v (create it with go test ./spec -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("errors differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// ignorePos compares bindings by value: positions differ after a rewrite.
var ignorePos = cmpopts.IgnoreFields(Binding{}, "Pos", "KeyPos")

// updateGolden is what -update does with a golden file whose errors
// differ from got: rewrite it and fail the test with the change, so that
// an update is never silent and never passes.
func updateGolden(t testing.TB, golden string, want []byte, got string) {
	t.Helper()
	if string(want) == got {
		return
	}
	if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("updated %s (-old +new); review it with git diff and run the tests again:\n%s", golden, cmp.Diff(string(want), got))
}

// TestUpdateGolden: -update rewrites a golden file that differs, fails,
// and shows the change; it leaves an equal one alone.
func TestUpdateGolden(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "case.golden")
	old := "a\nold line\n"
	if err := os.WriteFile(golden, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	// An equal golden is not written: its directory does not exist.
	same := tbrecord.Run(func(tb testing.TB) { updateGolden(tb, filepath.Join(dir, "missing", "x.golden"), []byte(old), old) })
	if same.Failed() {
		t.Errorf("equal: failed with %q; want no write and no failure", same.Errors)
	}

	changed := tbrecord.Run(func(tb testing.TB) { updateGolden(tb, golden, []byte(old), "a\nnew line\n") })
	if data, err := os.ReadFile(golden); err != nil || string(data) != "a\nnew line\n" {
		t.Errorf("changed: the golden file holds %q (%v); want it rewritten", data, err)
	}
	if !changed.Failed() || len(changed.Errors) != 1 {
		t.Fatalf("changed: failures %q; want one", changed.Errors)
	}
	msg := changed.Errors[0]
	removed := regexp.MustCompile(`(?m)^-[^\n]*old line`)
	added := regexp.MustCompile(`(?m)^\+[^\n]*new line`)
	if !strings.Contains(msg, "updated "+golden) || !removed.MatchString(msg) || !added.MatchString(msg) {
		t.Errorf("changed: the failure does not name the file and show the old line removed and the new one added:\n%s", msg)
	}
}

// TestGoodRoundTrip loads every good case, writes it with Write and loads the
// output again: the same values must come back, and writing them again must
// give the same bytes.
func TestGoodRoundTrip(t *testing.T) {
	for _, name := range cases(t, goodDir) {
		t.Run(name, func(t *testing.T) {
			s, err := Load([]string{filepath.Join(goodDir, name)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, b := range s.Bindings {
				if b.Pos.Line < 1 || len(b.KeyPos) == 0 {
					t.Errorf("binding without positions: %+v", b)
				}
				for k, p := range b.KeyPos {
					if p.Line < 1 || p.Col < 1 || p.File == "" {
						t.Errorf("key %s at %v", k, p)
					}
				}
			}
			var out bytes.Buffer
			if err := Write(&out, s); err != nil {
				t.Fatal(err)
			}
			again, err := loadBytes("rewritten.yaml", out.Bytes())
			if err != nil {
				t.Fatalf("loading the rewritten spec: %v\n%s", err, out.String())
			}
			if diff := cmp.Diff(s.Bindings, again.Bindings, ignorePos, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("bindings changed in the round trip (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(s.Ignores, again.Ignores, cmpopts.IgnoreFields(Ignore{}, "Pos", "UntilPos", "KeyPos"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ignore entries changed in the round trip (-want +got):\n%s", diff)
			}
			if s.Prune != again.Prune || s.AccountID != again.AccountID || again.Version != 1 {
				t.Errorf("settings changed: %+v -> %+v", s, again)
			}
			var out2 bytes.Buffer
			if err := Write(&out2, again); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(out.String(), out2.String()); diff != "" {
				t.Errorf("Write is not stable (-want +got):\n%s", diff)
			}

			var csvOut bytes.Buffer
			if err := WriteCSV(&csvOut, s.Bindings, nil); err != nil {
				t.Fatal(err)
			}
			fromCSV, err := loadBytes("rewritten.csv", csvOut.Bytes())
			if err != nil {
				t.Fatalf("loading the spec rewritten as CSV: %v\n%s", err, csvOut.String())
			}
			if diff := cmp.Diff(s.Bindings, fromCSV.Bindings, ignorePos, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("bindings changed in the CSV round trip (-want +got):\n%s\n%s", diff, csvOut.String())
			}
		})
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name string
		want *Spec
	}{
		{"contract.yaml", &Spec{
			Version: 1, AccountID: 1234567, Prune: false,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support", User: "alice"},
				{RegistrationID: 3321, ApplicationID: 77, Rule: "inbound-main"},
				{Registration: "fax@pbx.example.com", Unbound: true},
			},
		}},
		{"merge.yaml", &Spec{
			Version: 1,
			Bindings: []Binding{
				{Registration: "frontdesk@pbx.example.com", Application: "support", Rule: "inbound-main"},
				{Registration: "lobby@pbx.example.com", Application: "sales", Rule: "after-hours"},
				{Registration: "conf@pbx.example.com", Application: "sales", Rule: "inbound-sales"},
				{Registration: "dave@pbx.example.com", Application: "support", User: "dave"},
				{Registration: "trunk1@sip.carrier.example", Application: "sales"},
				{Registration: "trunk2@sip.carrier.example", Application: "fax"},
				{Registration: "fax@fax.example.net", Application: "fax", Rule: "fax-in"},
			},
		}},
		{"numeric_names.yaml", &Spec{
			Version: 1,
			Bindings: []Binding{
				{Registration: "1001@pbx.example.com", Application: "2024", User: "1001"},
				{Registration: "007@pbx.example.com", Application: "support", User: "007"},
				{Registration: "yes@pbx.example.com", Application: "support", Rule: "true"},
				{Registration: "f@pbx.example.com", Application: "support", Rule: "1.50"},
				{RegistrationID: 16, ApplicationID: 1000, UserID: 9},
			},
		}},
		{"flow.yaml", &Spec{
			Version: 1,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support", User: "alice"},
				{Registration: "weird@name@pbx.example.com", Application: "support.demo.voximplant.com", Rule: "inbound main"},
				{RegistrationID: 12, Unbound: true},
			},
		}},
		{"unbound_false.yaml", &Spec{
			Version:  1,
			Bindings: []Binding{{Registration: "alice@pbx.example.com", Application: "support"}},
		}},
		{"sheet.csv", &Spec{
			Version: 1,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support", User: "alice"},
				{Registration: "1001@pbx.example.com", Application: "2024", User: "1001"},
				{Registration: "fax@pbx.example.com", Unbound: true},
				{Registration: "semi;colon@pbx.example.com", Application: "support", Rule: `say "hi"`},
				{Registration: "trunk1@sip.carrier.example", Application: "sales", Rule: "inbound-sales"},
			},
		}},
		{"ids.csv", &Spec{
			Version: 1,
			Bindings: []Binding{
				{RegistrationID: 16, ApplicationID: 1000, UserID: 9},
				{RegistrationID: 17, Unbound: true},
				{RegistrationID: 18, Application: "support, main", RuleID: 12},
			},
		}},
		// The header holds both separators: "," wins, so "x-note;a" is one
		// ignored column and a ';' in a cell is text.
		{"comma_and_semicolon.csv", &Spec{
			Version: 1,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support"},
				{Registration: "semi;colon@pbx.example.com", Application: "sales"},
			},
		}},
		{"mixed", &Spec{
			Version: 1, AccountID: 1234567, Prune: true,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support", User: "alice"},
				{Registration: "dave@pbx.example.com", Application: "sales", User: "dave"},
				{Registration: "fax@pbx.example.com", Unbound: true},
			},
		}},
		{"multi", &Spec{
			Version: 1, AccountID: 1234567, Prune: true,
			Bindings: []Binding{
				{Registration: "alice@pbx.example.com", Application: "support", User: "alice"},
				{Registration: "dave@pbx.example.com", Application: "sales", User: "dave"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load([]string{filepath.Join(goodDir, tt.name)})
			if err != nil {
				t.Fatal(err)
			}
			opts := cmp.Options{ignorePos, cmpopts.IgnoreFields(Spec{}, "Files", "AccountIDPos", "PrunePos")}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("Load(%s) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestLoadPositions(t *testing.T) {
	s, err := Load([]string{filepath.Join(goodDir, "contract.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(goodDir, "contract.yaml")
	b := s.Bindings[1]
	if want := (Pos{File: file, Line: 9, Col: 5}); b.Pos != want {
		t.Errorf("Pos = %v, want %v", b.Pos, want)
	}
	if want := (Pos{File: file, Line: 11, Col: 5}); b.KeyPos["rule"] != want {
		t.Errorf("KeyPos[rule] = %v, want %v", b.KeyPos["rule"], want)
	}
	if want := (Pos{File: file, Line: 3, Col: 13}); s.AccountIDPos != want {
		t.Errorf("AccountIDPos = %v, want %v", s.AccountIDPos, want)
	}
	if got := s.Bindings[0].SIPUsername() + " " + s.Bindings[0].Proxy(); got != "alice pbx.example.com" {
		t.Errorf("split = %q", got)
	}
}

// TestLoadCSVPositions: a CSV binding is at its row (the header is row 1;
// a line break inside quotes does not start a row), column 1, and each
// value at its column's position in the header.
func TestLoadCSVPositions(t *testing.T) {
	file := filepath.Join(goodDir, "sheet.csv")
	s, err := Load([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Pos{}
	for _, b := range s.Bindings {
		got[b.Registration] = b.Pos
		got[b.Registration+" user"] = b.KeyPos["user"]
		got[b.Registration+" unbound"] = b.KeyPos["unbound"]
	}
	want := map[string]Pos{
		"alice@pbx.example.com":              {File: file, Line: 2, Col: 1},
		"alice@pbx.example.com user":         {File: file, Line: 2, Col: 4},
		"1001@pbx.example.com":               {File: file, Line: 3, Col: 1},
		"fax@pbx.example.com":                {File: file, Line: 5, Col: 1},
		"fax@pbx.example.com unbound":        {File: file, Line: 5, Col: 5},
		"semi;colon@pbx.example.com unbound": {File: file, Line: 6, Col: 5},
		"trunk1@sip.carrier.example":         {File: file, Line: 7, Col: 1},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s at %v, want %v", k, got[k], w)
		}
	}
	if got := s.Bindings[1].Pos.Short(); got != file+":3" {
		t.Errorf("plan source %q, want %s:3", got, file)
	}
}

// TestLoadFiles covers how -f arguments become files: directories in name
// order (dot files, other extensions and subdirectories skipped), a file
// named twice read once, and missing paths reported with everything else.
func TestLoadFiles(t *testing.T) {
	multi := filepath.Join(goodDir, "multi")
	s, err := Load([]string{multi, filepath.Join(multi, "20-support.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(multi, "10-base.yaml"),
		filepath.Join(multi, "20-support.yaml"),
		filepath.Join(multi, "30-sales.yml"),
	}
	if diff := cmp.Diff(want, s.Files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}

	_, err = Load([]string{"no-such.yaml", filepath.Join(badDir, "empty_dir"), filepath.Join(badDir, "missing_version.yaml")})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Pos.String())
	}
	wantPos := []string{
		filepath.Join(badDir, "empty_dir"),
		filepath.Join(badDir, "missing_version.yaml") + ":2:1",
		"no-such.yaml",
	}
	if diff := cmp.Diff(wantPos, got); diff != "" {
		t.Errorf("error positions (-want +got):\n%s\n%v", diff, err)
	}

	if _, err := Load(nil); err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("Load(nil) = %v, want an error that mentions -f", err)
	}
}

func TestErrors(t *testing.T) {
	if err := (Errors{}).Err(); err != nil {
		t.Errorf("empty Errors.Err() = %v, want nil", err)
	}
	var none Errors
	if none.Err() != nil {
		t.Errorf("nil Errors.Err() is not nil")
	}
	errs := Errors{
		NewError(Pos{File: "b.yaml", Line: 1, Col: 1}, CodeUnknownUser, `unknown user "x"`, "check the spelling"),
		NewError(Pos{File: "a.yaml", Line: 10, Col: 3}, CodeWrongType, "ten", ""),
		NewError(Pos{File: "a.yaml", Line: 2, Col: 9}, CodeWrongType, "two", ""),
		NewError(Pos{File: "a.yaml", Line: 10, Col: 3}, CodeWrongType, "ten", ""),
	}
	err := errs.Err()
	want := "a.yaml:2:9: two\na.yaml:10:3: ten\nb.yaml:1:1: unknown user \"x\"; check the spelling"
	if err == nil || err.Error() != want {
		t.Errorf("Err() = %q, want %q", err, want)
	}
	if errs[0].Pos.File != "b.yaml" {
		t.Errorf("Err() reordered its receiver")
	}
	for _, tt := range []struct {
		pos         Pos
		long, short string
	}{
		{Pos{File: "a.yaml", Line: 3, Col: 7}, "a.yaml:3:7", "a.yaml:3"},
		{Pos{File: "a.yaml", Line: 3}, "a.yaml:3", "a.yaml:3"},
		{Pos{File: "dir"}, "dir", "dir"},
	} {
		if got := tt.pos.String(); got != tt.long {
			t.Errorf("String() = %q, want %q", got, tt.long)
		}
		if got := tt.pos.Short(); got != tt.short {
			t.Errorf("Short() = %q, want %q", got, tt.short)
		}
	}
}

func TestSuggest(t *testing.T) {
	for key, want := range map[string]string{
		"aplication":       "application",
		"Application":      "application",
		"usr":              "user",
		"users":            "user",
		"user_name":        "user",
		"application-id":   "application_id",
		"app":              "application",
		"registraton_id":   "registration_id",
		"regist":           "registration",
		"unbund":           "unbound",
		"colour":           "",
		"x":                "",
		"sip_registration": "registration",
	} {
		if got := suggest(key, entryKeys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
	if got := suggest("bindngs", topKeys); got != "bindings" {
		t.Errorf("suggest(bindngs) = %q", got)
	}
}

func TestErrorsErrorSorts(t *testing.T) {
	errs := Errors{
		NewError(Pos{File: "a.yaml", Line: 9, Col: 1}, CodeWrongType, "nine", ""),
		NewError(Pos{File: "a.yaml", Line: 2, Col: 1}, CodeWrongType, "two", ""),
		NewError(Pos{}, CodeNoSpecFile, "no place", ""),
	}
	if got, want := errs.Error(), "no place\na.yaml:2:1: two\na.yaml:9:1: nine"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestHeavyMerge merges a 1,000-key mapping with unknown keys into 5,000
// entries: each problem is reported once, where it is written, and the
// work stays linear (this test would take minutes otherwise).
func TestHeavyMerge(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nx-defaults: &d\n  application: support\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("bindings:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {registration: r%d@pbx.example.com, <<: *d}\n", i)
	}
	_, err := loadBytes("heavy.yaml", []byte(b.String()))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	if len(errs) != 1000 {
		t.Errorf("%d errors, want 1000 (one per unknown key); first: %v", len(errs), errs[0])
	}
	if want := "heavy.yaml:4:3: unknown key \"k0\""; !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("first error %q, want prefix %q", errs[0], want)
	}
}

// TestLoadSizeLimits: a spec file past the size limit, a device that never
// ends, and files that together pass the total limit are errors, read no
// further than the limit.
func TestLoadSizeLimits(t *testing.T) {
	dir := t.TempDir()
	sparse := func(name string, size int64) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Truncate(path, size); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		return path
	}
	big := sparse("big.yaml", MaxFileSize+1)
	for _, path := range []string{big, "/dev/zero"} {
		_, err := Load([]string{path})
		if err == nil || !strings.Contains(err.Error(), path+": larger than 32 MiB, voxbind's limit for a spec file") {
			t.Errorf("Load(%s) = %v, want the size limit named", path, err)
		}
	}
	parts := []string{sparse("a.yaml", MaxFileSize-1), sparse("b.yaml", MaxFileSize-1), sparse("c.yaml", 10)}
	_, err := Load(parts)
	if err == nil || !strings.Contains(err.Error(), "c.yaml: the spec files together are larger than 64 MiB") {
		t.Errorf("Load of 64 MiB of files = %v, want the total limit named at the file that passes it", err)
	}
}

// TestDuplicateFirstKey: a mapping's first key written again is reported,
// at the top, in an entry, and in a mapping large enough to be indexed.
func TestDuplicateFirstKey(t *testing.T) {
	var many strings.Builder
	many.WriteString("version: 1\nbindings:\n  - registration: a@b\n    unbound: true\n")
	for i := range 40 {
		fmt.Fprintf(&many, "x-k%d: 1\n", i)
	}
	many.WriteString("version: 1\n")
	for name, tc := range map[string]struct{ src, want string }{
		"top":     {"version: 1\nversion: 1\nbindings: []\n", `t.yaml:2:1: duplicate key "version" (first at t.yaml:1:1)`},
		"entry":   {"version: 1\nbindings:\n  - registration: a@b\n    registration: c@d\n    unbound: true\n", `t.yaml:4:5: duplicate key "registration" (first at t.yaml:3:5)`},
		"indexed": {many.String(), `t.yaml:45:1: duplicate key "version" (first at t.yaml:1:1)`},
	} {
		_, err := loadBytes("t.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestIgnoreDays checks the rules that depend on the day a spec is loaded:
// until may be at most 366 days after today, an exception holds through
// its until day (UTC) and has expired the day after, and Strict makes an
// expired exception an error at its until.
func TestIgnoreDays(t *testing.T) {
	spec := func(until string) []byte {
		return []byte("version: 1\nignore:\n  - registration: lab-*@pbx.example.com\n    reason: re-patched by hand\n    until: " + until + "\n")
	}
	// 23:59 UTC on 2026-11-28 is already 2026-11-29 east of UTC: the UTC
	// day counts, whatever the zone of the time given.
	today := time.Date(2026, 11, 29, 8, 59, 0, 0, time.FixedZone("JST", 9*3600))
	tests := []struct {
		until   string
		strict  bool
		err     string // "" when it loads
		inForce bool
	}{
		{until: "2026-11-28", inForce: true},
		{until: "2026-11-27", inForce: false},
		{until: "2026-11-27", strict: true, err: "x.yaml:5:12: this exception ended with 2026-11-27 (its until) and no longer applies; remove the entry, or give a later until if it is still needed"},
		{until: "2026-11-28", strict: true, inForce: true},
		{until: "2027-11-29", inForce: true}, // 366 days after 2026-11-28 (no February 29th between)
		{until: "2027-11-30", err: "x.yaml:5:12: until 2027-11-30 is more than 366 days after today (2026-11-28): exceptions are temporary; give 2027-11-29 or earlier, and renew the entry if it is still needed then"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/strict=%v", tt.until, tt.strict), func(t *testing.T) {
			l := newLoader()
			l.opts = Options{Today: Day(today), Strict: tt.strict}
			l.file("x.yaml", spec(tt.until))
			s, err := l.result()
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ig := s.Ignores[0]
			if got := ig.InForce(today); got != tt.inForce {
				t.Errorf("InForce = %v, want %v", got, tt.inForce)
			}
			if n := len(s.Expired(today)); n != map[bool]int{true: 0, false: 1}[tt.inForce] {
				t.Errorf("Expired lists %d entries; in force: %v", n, tt.inForce)
			}
			if ig.Pos.Short() != "x.yaml:3" {
				t.Errorf("entry at %s, want x.yaml:3", ig.Pos.Short())
			}
		})
	}
}

// TestLoadWithoutDay: the zero day skips the checks that need one, so that
// a spec can be read without a calendar (the fuzz target does).
func TestLoadWithoutDay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nignore:\n  - {registration_id: 4, reason: r, until: 9999-12-31}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWith([]string{path}, Options{}); err != nil {
		t.Errorf("LoadWith without a day: %v", err)
	}
	if _, err := Load([]string{path}); err == nil {
		t.Errorf("Load judges on today: 9999-12-31 is too far, but it loaded")
	}
}

// TestLoadCSVLineEnds: LF, CRLF and CR line ends, with and without a
// byte-order mark and a last line break, give the same bindings at the
// same rows.
func TestLoadCSVLineEnds(t *testing.T) {
	rows := []string{"registration;user;application", "a@pbx.example.com;1001;support", "", "b@pbx.example.com;;sales"}
	var want []Binding
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		for _, bom := range []string{"", "\xef\xbb\xbf"} {
			for _, last := range []string{"", eol} {
				data := bom + strings.Join(rows, eol) + last
				s, err := loadBytes("t.csv", []byte(data))
				if err != nil {
					t.Fatalf("%q: %v", data, err)
				}
				got := s.Bindings
				if len(got) != 2 || got[0].Pos.Line != 2 || got[1].Pos.Line != 4 {
					t.Fatalf("%q: %+v, want 2 bindings at rows 2 and 4", data, got)
				}
				if want == nil {
					want = got
				}
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Binding{}, "KeyPos")); diff != "" {
					t.Errorf("%q (-want +got):\n%s", data, diff)
				}
			}
		}
	}
	if want[0].User != "1001" || want[0].Application != "support" || want[1].Application != "sales" || want[1].User != "" {
		t.Errorf("bindings %+v", want)
	}
}

// TestLoadCSVWithIgnore: a CSV file read with a YAML file that holds
// ignore entries: the bindings come from the rows, the exceptions from the
// YAML file, judged on the day LoadWith is given; with Strict an ended
// exception is an error reported with the CSV file's errors.
func TestLoadCSVWithIgnore(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	settings := write("00-settings.yaml", "version: 1\nignore:\n"+
		"  - registration: lab-*@pbx.example.com\n    reason: re-patched by hand\n    until: 2026-12-31\n"+
		"  - registration_id: 17\n    reason: ended\n    until: 2026-11-27\n")
	phones := write("phones.csv", "registration,application,user\nlab-1@pbx.example.com,support,alice\ndesk@pbx.example.com,sales,\n")
	today := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

	s, err := LoadWith([]string{dir}, Options{Today: today})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bindings) != 2 || s.Bindings[0].Registration != "lab-1@pbx.example.com" || s.Bindings[0].Pos.Short() != phones+":2" {
		t.Errorf("bindings %+v, want the two rows of %s", s.Bindings, phones)
	}
	if len(s.Ignores) != 2 || s.Ignores[0].Registration != "lab-*@pbx.example.com" || s.Ignores[0].Pos.Short() != settings+":3" ||
		s.Ignores[1].RegistrationID != 17 {
		t.Errorf("ignores %+v, want the two entries of %s", s.Ignores, settings)
	}
	if got := s.Expired(today); len(got) != 1 || got[0].RegistrationID != 17 {
		t.Errorf("Expired = %+v, want the entry for registration_id 17", got)
	}

	write("phones.csv", "registration,application,user\nlab-1@pbx.example.com,support,alice\ndesk@pbx.example.com,,bob\n")
	_, err = LoadWith([]string{dir}, Options{Today: today, Strict: true})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("strict load: %v, want the ended exception and the CSV row", err)
	}
	if got := errs[0].Error(); !strings.HasPrefix(got, settings+":8:12: this exception ended with 2026-11-27") {
		t.Errorf("first error %q, want the ended exception at its until", got)
	}
	if got := errs[1].Error(); !strings.HasPrefix(got, phones+":3:3: user needs the application it belongs to") {
		t.Errorf("second error %q, want the CSV row at ROW:COL", got)
	}
}
