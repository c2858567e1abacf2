package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic; every
// error it returns must be located in the file (line and column 1 or more,
// line at most one past the end); and what it accepts must survive a round
// trip through Write. The seeds (every testdata case and example, plus the
// tricky inputs below) run in the normal test suite.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{
		"../testdata/spec/*/*.yaml", "../testdata/spec/*/*/*.yaml", "../testdata/spec/*/*/*.yml",
		"../examples/*.yaml",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) < 20 {
		f.Fatalf("only %d seed files found", len(seeds))
	}
	for _, s := range seeds {
		if fi, err := os.Stat(s); err != nil || fi.IsDir() {
			continue
		}
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "\n", "---", "~", "[]", "version: 1", "version: 1\nbindings:\n  - *x\n",
		"version: 1\nbindings: &a [*a]\n", "a: &a {<<: *a}\n", "version: 1\nx: &a [*a, *a]\nbindings: *a\n",
		"\xff\xfe", "version: 1\n\x00", "? [a]\n: b\n", "version: 1\nbindings:\n- {<<: [], registration: a@b, unbound: true}\n",
		"version: !!int 1\nbindings: !!seq []\n", "version: 1\nbindings:\n- registration: \"a\\u0000@b\"\n  unbound: true\n",
		"version: 1\nignore:\n- {registration: '*@*', reason: \"a\\tb\", owner: yes, until: 2026-1-2}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := loadBytes("fuzz.yaml", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			// YAML breaks lines at \n, \r and three Unicode breaks.
			lines := 1
			for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
				lines += bytes.Count(data, []byte(brk))
			}
			for _, e := range errs {
				if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.Line > lines+1 {
					t.Errorf("badly located error: %q", e.Error())
				}
				if e.Msg == "" {
					t.Errorf("error without a message at %v", e.Pos)
				}
			}
			return
		}
		var out bytes.Buffer
		if err := Write(&out, s); err != nil {
			t.Fatal(err)
		}
		again, err := loadBytes("rewritten.yaml", out.Bytes())
		if err != nil {
			t.Fatalf("rewritten spec does not load: %v\n%s", err, out.String())
		}
		if diff := cmp.Diff(s.Bindings, again.Bindings, ignorePos, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip changed the bindings (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(s.Ignores, again.Ignores, cmpopts.IgnoreFields(Ignore{}, "Pos", "UntilPos", "KeyPos"), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip changed the ignore entries (-want +got):\n%s", diff)
		}
	})
}

// FuzzLoadCSV feeds arbitrary bytes to the CSV reader. It must never panic;
// every error must be located in the file (row and column 1 or more, the
// row at most one past the number of lines, the column at most one past
// the number of separators on a line plus one); and what it accepts must
// come back the same through WriteCSV and through Write (YAML). The seeds
// (every CSV test case, the CSV examples and the inputs below) run in the
// normal test suite.
func FuzzLoadCSV(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"../testdata/spec/*/*.csv", "../testdata/spec/*/*/*.csv", "../examples/*.csv"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) < 15 {
		f.Fatalf("only %d seed files found", len(seeds))
	}
	for _, s := range seeds {
		if fi, err := os.Stat(s); err != nil || fi.IsDir() {
			continue // a dangling link of the unreadable-entries case
		}
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "\n", "\r", "\r\n", "\xef\xbb\xbf", "\xff\xfe", "\x00", ",", ";", "\"", "\"\"", "\"\"\"",
		"registration", "registration,unbound\na@b,true", "registration;unbound\r\na@b;TRUE\r\n",
		"registration,application\n\"a@b\nc\",x\n", "registration,application\n\"a@b\"\"\",x\n",
		"registration,application\n\"a@b\",\"x\"y\n", "registration,application\na@b,x,y\n",
		"registration,application\na@b\n", "registration,application\n,\n,,\n", "x-a,registration,application\n\"\n\",a@b,c\n",
		"registration,application,user\na@b,c,d\ne@b,c,D\n", "registration_id,application_id\n007,1.0\n",
		"registration,application\na@b,\"-----BEGIN X-----\"\n", "registration,application\ra@b,c\r",
		"registration , APPLICATION , x-\na@b,c,\n", "registration,application,\na@b,c,d\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := loadBytes("fuzz.csv", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			lines := 1 + bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r"))
			cols := 2 + bytes.Count(data, []byte(",")) + bytes.Count(data, []byte(";"))
			for _, e := range errs {
				if e.Pos.File != "fuzz.csv" || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.Line > lines+1 || e.Pos.Col > cols {
					t.Errorf("badly located error: %q", e.Error())
				}
				if e.Msg == "" {
					t.Errorf("error without a message at %v", e.Pos)
				}
			}
			return
		}
		for _, b := range s.Bindings {
			if b.Pos.Line < 2 || b.Pos.Col != 1 {
				t.Errorf("binding at %v: rows start at 2 (after the header), column 1", b.Pos)
			}
		}
		var out bytes.Buffer
		if err := WriteCSV(&out, s.Bindings, nil); err != nil {
			t.Fatal(err)
		}
		again, err := loadBytes("rewritten.csv", out.Bytes())
		if err != nil {
			t.Fatalf("rewritten CSV does not load: %v\n%s", err, out.String())
		}
		if diff := cmp.Diff(s.Bindings, again.Bindings, ignorePos, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("CSV round trip changed the bindings (-want +got):\n%s", diff)
		}
		out.Reset()
		if err := Write(&out, s); err != nil {
			t.Fatal(err)
		}
		asYAML, err := loadBytes("rewritten.yaml", out.Bytes())
		if err != nil {
			t.Fatalf("the CSV spec written as YAML does not load: %v\n%s", err, out.String())
		}
		if diff := cmp.Diff(s.Bindings, asYAML.Bindings, ignorePos, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("YAML round trip changed the bindings (-want +got):\n%s", diff)
		}
	})
}
