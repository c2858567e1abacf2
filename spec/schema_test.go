package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const modeline = "# yaml-language-server: $schema=../spec/voxbind.schema.json\n"

// schemaCannotJudge lists the testdata cases the JSON Schema cannot decide,
// and why. Every other case must get the same verdict from the schema and
// from Load.
var schemaCannotJudge = map[string]string{
	"bad/tabs.yaml":                   "invalid YAML: there is no data for the schema to check",
	"bad/invalid_yaml.yaml":           "invalid YAML: there is no data for the schema to check",
	"bad/duplicate_key.yaml":          "duplicate keys: JSON data has none; the YAML decoder rejects them before a schema sees the data",
	"bad/multiple_documents.yaml":     "a schema checks one document; the second one is never seen",
	"bad/bad_merge.yaml":              "merge keys are resolved (or rejected) by the YAML decoder before a schema sees the data",
	"bad/duplicate_registration.yaml": "the same registration in two entries: a schema checks values, not relations between array items",
	"bad/duplicate_alias.yaml":        "an entry repeated through an alias: a schema checks values, not relations between array items",
	"bad/duplicate_user.yaml":         "the same user in two entries: a schema checks values, not relations between array items",
	"bad/duplicate_across_files":      "duplicates across files: a schema sees one file at a time",
	"bad/fleet":                       "account_id and prune across files: a schema sees one file at a time",
	"bad/disagree_prune":              "prune across files: a schema sees one file at a time",
	"bad/float_id.yaml":               "JSON has one number type: to a schema 3321.0 is the integer 3321, to YAML it is a float",
	"bad/empty_dir":                   "a directory without spec files: there is no document at all",
	"bad/nondecimal_id.yaml":          "a schema sees the number YAML decoded (0x12D687 is 1234567), not how it was written",
	"bad/secret_jwt.yaml":             "a schema checks types and keys; whether a string holds a token is voxbind's check",
	"bad/invalid_utf8.yaml":           "not UTF-8: the YAML decoder rejects it before a schema sees the data",
	"bad/unreadable_entries":          "links that cannot be read: there is no document to check",
	"bad/ignore_until_text.yaml":      "to an editor (YAML 1.2) an unquoted date is text as a quoted one is, and a pattern cannot tell February 30th from a day",
	"bad/ignore_until_far.yaml":       "how far ahead an until is depends on today, which a schema does not know",
}

// schemaDrafts are the JSON Schema drafts the schema must mean the same
// under: draft-07, what yaml-language-server 1.x (the VS Code YAML
// extension for years) implements, and 2020-12, the current one.
var schemaDrafts = []struct {
	name  string
	draft *jsonschema.Draft
}{
	{"draft-07", jsonschema.Draft7},
	{"2020-12", jsonschema.Draft2020},
}

// compileSchema compiles voxbind.schema.json as the given draft defines
// JSON Schema, whatever draft its $schema names.
func compileSchema(t testing.TB, draft *jsonschema.Draft) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("voxbind.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("voxbind.schema.json: %v", err)
	}
	delete(doc.(map[string]any), "$schema")
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	if err := c.AddResource("voxbind.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("voxbind.schema.json")
	if err != nil {
		t.Fatalf("compile voxbind.schema.json: %v", err)
	}
	return sch
}

// schemaCheck validates one YAML file against the schema the way an editor
// does: decode the YAML, then check the data. judged is false when the YAML
// decoder rejects the file, so that the schema never sees it.
func schemaCheck(sch *jsonschema.Schema, data []byte) (judged bool, err error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return false, err
	}
	raw, err := json.Marshal(jsonValue(v))
	if err != nil {
		return false, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return false, err
	}
	return true, sch.Validate(inst)
}

// jsonValue turns what yaml.v3 decodes into data encoding/json can write.
// A YAML date (yaml.v3 decodes it as a time) becomes the text an editor
// sees, 2026-12-31: to YAML 1.2, which editors implement, it is a string.
func jsonValue(v any) any {
	switch v := v.(type) {
	case time.Time:
		if v.Equal(Day(v)) {
			return DayString(v)
		}
		return v.Format(time.RFC3339Nano)
	case map[string]any:
		for k, x := range v {
			v[k] = jsonValue(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonValue(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonValue(x)
		}
		return v
	}
	return v
}

// caseFiles lists the YAML files a case stands for, as Load would read them.
func caseFiles(t *testing.T, path string) []string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() {
		return []string{path}
	}
	files, _ := expand([]string{path})
	return files
}

// TestSchemaAgreesWithLoad checks every good and bad case with both the
// JSON Schema and Load: where the schema can judge, the verdicts match.
func TestSchemaAgreesWithLoad(t *testing.T) {
	for _, d := range schemaDrafts {
		t.Run(d.name, func(t *testing.T) { schemaAgreesWithLoad(t, compileSchema(t, d.draft)) })
	}
}

func schemaAgreesWithLoad(t *testing.T, sch *jsonschema.Schema) {
	seen := make(map[string]bool)
	for _, group := range []string{"good", "bad"} {
		dir := filepath.Join("../testdata/spec", group)
		for _, name := range cases(t, dir) {
			id := group + "/" + name
			seen[id] = true
			if slices.ContainsFunc(caseFiles(t, filepath.Join(dir, name)), IsCSV) {
				continue // the schema is for YAML files; CSV has its own tests
			}
			t.Run(id, func(t *testing.T) {
				path := filepath.Join(dir, name)
				_, loadErr := Load([]string{path})
				files := caseFiles(t, path)
				judged := len(files) > 0
				var schemaErrs []string
				for _, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					ok, err := schemaCheck(sch, data)
					if !ok {
						judged = false
						break
					}
					if err != nil {
						schemaErrs = append(schemaErrs, f+": "+err.Error())
					}
				}
				why, excluded := schemaCannotJudge[id]
				if excluded {
					// Still true to its word: an excluded case the schema
					// rejects would be one it can judge after all.
					if judged && len(schemaErrs) > 0 {
						t.Errorf("listed as beyond the schema (%s), but the schema rejects it:\n%s", why, strings.Join(schemaErrs, "\n"))
					}
					if loadErr == nil {
						t.Errorf("listed as beyond the schema, but Load accepts it")
					}
					return
				}
				if !judged {
					t.Fatalf("the schema cannot judge this case: list it in schemaCannotJudge with the reason")
				}
				switch schemaOK := len(schemaErrs) == 0; {
				case schemaOK && loadErr != nil:
					t.Errorf("the schema accepts what Load rejects:\n%v", loadErr)
				case !schemaOK && loadErr == nil:
					t.Errorf("Load accepts what the schema rejects:\n%s", strings.Join(schemaErrs, "\n"))
				}
			})
		}
	}
	for id := range schemaCannotJudge {
		if !seen[id] {
			t.Errorf("schemaCannotJudge lists %s, which is not a testdata case", id)
		}
	}
}

// TestExamples checks every example: it starts with the editor modeline and
// both the loader and the schema accept it.
func TestExamples(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{}
	for _, d := range schemaDrafts {
		schemas[d.name] = compileSchema(t, d.draft)
	}
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte(modeline)) {
				t.Errorf("does not start with %q", modeline)
			}
			s, err := Load([]string{f})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, d := range schemaDrafts {
				if judged, err := schemaCheck(schemas[d.name], data); !judged || err != nil {
					t.Errorf("schema (%s): judged=%v, %v", d.name, judged, err)
				}
			}
			if filepath.Base(f) == "bulk.yaml" && len(s.Bindings) < 500 {
				t.Errorf("bulk.yaml has %d bindings, want at least 500", len(s.Bindings))
			}
		})
	}
}

// TestSchemaEntryRules checks the rules between an entry's keys one at a
// time, under every draft, against a verdict written here, and checks that
// Load agrees: each exclusion must be flagged by an editor that implements
// only draft-07.
func TestSchemaEntryRules(t *testing.T) {
	tests := []struct {
		entry string
		ok    bool
	}{
		{"{registration: a@p, application: app}", true},
		{"{registration_id: 1, application_id: 2}", true},
		{"{registration: a@p, application: app, rule: r}", true},
		{"{registration: a@p, application: app, rule_id: 3}", true},
		{"{registration: a@p, application_id: 2, user: u}", true},
		{"{registration: a@p, application: app, user_id: 4}", true},
		{"{registration: a@p, unbound: true}", true},
		{"{registration: a@p, unbound: false, application: app}", true},
		{"{registration: a@p, registration_id: 1, application: app}", false},
		{"{application: app}", false},
		{"{registration: a@p}", false},
		{"{registration: a@p, unbound: false}", false},
		{"{registration: a@p, application: app, application_id: 2}", false},
		{"{registration: a@p, rule: r}", false},
		{"{registration: a@p, user_id: 4}", false},
		{"{registration: a@p, unbound: true, application: app}", false},
		{"{registration: a@p, unbound: true, application_id: 2}", false},
		{"{registration: a@p, unbound: true, rule: r}", false},
		{"{registration: a@p, unbound: true, user_id: 4}", false},
		{"{registration: a@p, application: app, rule: r, user: u}", false},
		{"{registration: a@p, application: app, rule: r, user_id: 4}", false},
		{"{registration: a@p, application: app, rule_id: 3, user: u}", false},
		{"{registration: a@p, application: app, rule_id: 3, user_id: 4}", false},
		{"{registration: a@p, application: app, rule: r, rule_id: 3}", false},
		{"{registration: a@p, application: app, user: u, user_id: 4}", false},
	}
	for _, d := range schemaDrafts {
		sch := compileSchema(t, d.draft)
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.entry, func(t *testing.T) {
				data := []byte("version: 1\nbindings:\n  - " + tt.entry + "\n")
				judged, err := schemaCheck(sch, data)
				if !judged {
					t.Fatalf("the schema could not judge it: %v", err)
				}
				if (err == nil) != tt.ok {
					t.Errorf("schema: %v, want valid %v", err, tt.ok)
				}
				if _, err := loadBytes("entry.yaml", data); (err == nil) != tt.ok {
					t.Errorf("Load: %v, want valid %v", err, tt.ok)
				}
			})
		}
	}
}

// TestSchemaIgnoreRules checks the rules of an ignore entry one at a time,
// under every draft, against a verdict written here, and checks that Load
// (on a fixed day) agrees.
func TestSchemaIgnoreRules(t *testing.T) {
	tests := []struct {
		entry string
		ok    bool
	}{
		{"{registration: lab-*@pbx.example.com, reason: r, until: 2026-12-31}", true},
		{"{registration_id: 3, reason: r, owner: noc@example.com, until: 2026-1-5}", true},
		{"{registration: '*@*', reason: 1001, until: 2026-12-31, x-ticket: OPS-1}", true},
		{"{registration: a@p, registration_id: 3, reason: r, until: 2026-12-31}", false},
		{"{reason: r, until: 2026-12-31}", false},
		{"{registration: a@p, until: 2026-12-31}", false},
		{"{registration: a@p, reason: r}", false},
		{"{registration: a@p, reason: r, until: soon}", false},
		{"{registration: a@p, reason: r, until: 20261231}", false},
		{"{registration: a@p, reason: r, until: 2026-12-31T10:00:00Z}", false},
		{"{registration: lab-*, reason: r, until: 2026-12-31}", false},
		{"{registration: a@p, reason: r, until: 2026-12-31, application: support}", false},
		{"{registration: a@p, reason: '', until: 2026-12-31}", false},
		{"{registration: a@p, reason: r, owner: [a, b], until: 2026-12-31}", false},
	}
	for _, d := range schemaDrafts {
		sch := compileSchema(t, d.draft)
		for _, tt := range tests {
			t.Run(d.name+"/"+tt.entry, func(t *testing.T) {
				data := []byte("version: 1\nignore:\n  - " + tt.entry + "\n")
				judged, err := schemaCheck(sch, data)
				if !judged {
					t.Fatalf("the schema could not judge it: %v", err)
				}
				if (err == nil) != tt.ok {
					t.Errorf("schema: %v, want valid %v", err, tt.ok)
				}
				l := newLoader()
				l.opts.Today = Day(testToday)
				l.file("entry.yaml", data)
				if _, err := l.result(); (err == nil) != tt.ok {
					t.Errorf("Load: %v, want valid %v", err, tt.ok)
				}
			})
		}
	}
}

// TestSchemaIsDraftIndependent keeps out the keywords that some drafts lack
// or read differently, so that editors on any draft from 07 to 2020-12
// check the same rules: if/then/else (draft-07 only), dependentSchemas and
// dependentRequired (2019-09 on), $defs, const (draft-06 on), and $ref next
// to other keywords (ignored before 2019-09).
func TestSchemaIsDraftIndependent(t *testing.T) {
	data, err := os.ReadFile("voxbind.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	banned := map[string]bool{"if": true, "then": true, "else": true, "dependentSchemas": true, "dependentRequired": true,
		"dependencies": true, "$defs": true, "const": true, "unevaluatedProperties": true, "prefixItems": true, "$dynamicRef": true}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			_, isRef := v["$ref"]
			for k, x := range v {
				if banned[k] && !strings.HasSuffix(path, "/properties") {
					t.Errorf("%s: keyword %q does not mean the same in every draft", path, k)
				}
				if isRef && k != "$ref" {
					t.Errorf("%s: %q next to $ref, which draft-07 ignores", path, k)
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s/%d", path, i), x)
			}
		}
	}
	walk("#", doc)
}
