package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// bigSpec is a valid spec of n entries in the shapes bulk specs use: by
// name with a user, by id with a rule, and unbound.
func bigSpec(n int) []byte {
	var b bytes.Buffer
	b.WriteString("version: 1\naccount_id: 1234567\nbindings:\n")
	for i := range n {
		s := strconv.Itoa(100000 + i)
		switch i % 4 {
		case 0, 1:
			b.WriteString("  - registration: " + s + "@pbx.example.com\n    application: support\n    user: agent-" + s + "\n")
		case 2:
			b.WriteString("  - registration_id: " + s + "\n    application_id: 77\n    rule_id: 12\n")
		case 3:
			b.WriteString("  - registration: trunk" + s + "@sip.carrier.example\n    unbound: true\n")
		}
	}
	return b.Bytes()
}

// bigCSV is bigSpec's bindings as a CSV spec, row for entry.
func bigCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("registration,registration_id,application,application_id,rule_id,user,unbound\n")
	for i := range n {
		s := strconv.Itoa(100000 + i)
		switch i % 4 {
		case 0, 1:
			b.WriteString(s + "@pbx.example.com,,support,,,agent-" + s + ",\n")
		case 2:
			b.WriteString("," + s + ",,77,12,,\n")
		case 3:
			b.WriteString("trunk" + s + "@sip.carrier.example,,,,,,true\n")
		}
	}
	return b.Bytes()
}

func writeBig(b *testing.B) (string, []byte) {
	return writeBigAs(b, "big.yaml", bigSpec(100_000))
}

func writeBigAs(b *testing.B, name string, data []byte) (string, []byte) {
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return path, data
}

// BenchmarkLoad100k loads a 100,000-entry spec from disk: read, parse, walk,
// check. Compare with BenchmarkYAMLNode100k, the yaml.v3 parse alone.
func BenchmarkLoad100k(b *testing.B) {
	path, data := writeBig(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := Load([]string{path})
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Bindings) != 100_000 {
			b.Fatalf("got %d bindings", len(s.Bindings))
		}
	}
}

// BenchmarkLoadFormats100k loads the same 100,000 bindings from a YAML
// and from a CSV spec, in turns (yaml, csv, yaml, csv with -count), so
// that both see the same machine:
// go test ./spec -run '^$' -bench LoadFormats100k -benchmem -count 5
func BenchmarkLoadFormats100k(b *testing.B) {
	for _, f := range []struct {
		name string
		data []byte
	}{{"yaml", bigSpec(100_000)}, {"csv", bigCSV(100_000)}} {
		b.Run(f.name, func(b *testing.B) {
			path, data := writeBigAs(b, "big."+f.name, f.data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				s, err := Load([]string{path})
				if err != nil {
					b.Fatal(err)
				}
				if len(s.Bindings) != 100_000 {
					b.Fatalf("got %d bindings", len(s.Bindings))
				}
			}
		})
	}
}

// TestBigCSVIsBigSpec: the two benchmarks load the same bindings.
func TestBigCSVIsBigSpec(t *testing.T) {
	fromYAML, err := loadBytes("big.yaml", bigSpec(100))
	if err != nil {
		t.Fatal(err)
	}
	fromCSV, err := loadBytes("big.csv", bigCSV(100))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromYAML.Bindings, fromCSV.Bindings, ignorePos); diff != "" {
		t.Errorf("bigCSV and bigSpec differ (-yaml +csv):\n%s", diff)
	}
}

// BenchmarkYAMLNode100k decodes the same bytes into a bare yaml.Node.
func BenchmarkYAMLNode100k(b *testing.B) {
	path, data := writeBig(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(raw, &n); err != nil {
			b.Fatal(err)
		}
	}
}
