package spec

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Write prints s as a spec file in the canonical form Load reads back to
// the same bindings and ignore entries: version, account_id and prune
// (when set), then one block per binding and one per ignore entry, with
// their keys in a fixed order. Names are quoted when
// YAML would read them as something other than text.
func Write(w io.Writer, s *Spec) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("version: 1\n")
	if s.AccountID != 0 {
		bw.WriteString("account_id: " + strconv.FormatInt(s.AccountID, 10) + "\n")
	}
	if s.Prune {
		bw.WriteString("prune: true\n")
	}
	if len(s.Bindings) == 0 {
		bw.WriteString("bindings: []\n")
		writeIgnores(bw, s.Ignores)
		return bw.Flush()
	}
	bw.WriteString("bindings:\n")
	for i := range s.Bindings {
		b := &s.Bindings[i]
		lead := "  - "
		field := func(key, value string) {
			bw.WriteString(lead + key + ": " + value + "\n")
			lead = "    "
		}
		name := func(key, value string) {
			if value != "" {
				field(key, yamlName(value))
			}
		}
		id := func(key string, value int64) {
			if value != 0 {
				field(key, strconv.FormatInt(value, 10))
			}
		}
		name("registration", b.Registration)
		id("registration_id", b.RegistrationID)
		if b.Unbound {
			field("unbound", "true")
			continue
		}
		name("application", b.Application)
		id("application_id", b.ApplicationID)
		name("rule", b.Rule)
		id("rule_id", b.RuleID)
		name("user", b.User)
		id("user_id", b.UserID)
	}
	writeIgnores(bw, s.Ignores)
	return bw.Flush()
}

// writeIgnores prints the ignore entries, keys in a fixed order.
func writeIgnores(bw *bufio.Writer, ignores []Ignore) {
	if len(ignores) == 0 {
		return
	}
	bw.WriteString("ignore:\n")
	for _, ig := range ignores {
		if ig.Registration != "" {
			bw.WriteString("  - registration: " + yamlName(ig.Registration) + "\n")
		} else {
			bw.WriteString("  - registration_id: " + strconv.FormatInt(ig.RegistrationID, 10) + "\n")
		}
		bw.WriteString("    reason: " + yamlName(ig.Reason) + "\n")
		if ig.Owner != "" {
			bw.WriteString("    owner: " + yamlName(ig.Owner) + "\n")
		}
		bw.WriteString("    until: " + DayString(ig.Until) + "\n")
	}
}

// yamlName writes a name plain when that is safe and double-quoted
// otherwise (YAML's double-quoted escapes include Go's).
func yamlName(s string) string {
	plain := s != "" && isLetter(s[0])
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = isLetter(c) || ('0' <= c && c <= '9') || strings.IndexByte("._@-+/", c) >= 0
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null":
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// WriteCSV prints bindings as a CSV spec file that Load reads back to the
// same bindings: a header, then one row per binding, separated by commas,
// with LF line ends and no byte-order mark. The columns are registration,
// application, rule, user and unbound, each followed by its _id column
// when a binding uses one. notes, when not nil, adds an x-note column (one
// note per binding; Load ignores it).
//
// A cell is quoted when it holds a separator (, or ;), a quote or a line
// break, or starts or ends with a blank. Loading refuses line breaks in
// names and ids, so the caller gives only names without them.
func WriteCSV(w io.Writer, bindings []Binding, notes []string) error {
	used := map[string]bool{"registration": true, "application": true, "rule": true, "user": true, "unbound": true}
	for i := range bindings {
		b := &bindings[i]
		used["registration_id"] = used["registration_id"] || b.RegistrationID != 0
		used["application_id"] = used["application_id"] || b.ApplicationID != 0
		used["rule_id"] = used["rule_id"] || b.RuleID != 0
		used["user_id"] = used["user_id"] || b.UserID != 0
	}
	var cols []string
	for _, k := range entryKeys {
		if used[k] {
			cols = append(cols, k)
		}
	}
	if notes != nil {
		cols = append(cols, "x-note")
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(cols, ",") + "\n")
	id := func(v int64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	for i := range bindings {
		b := &bindings[i]
		for j, c := range cols {
			if j > 0 {
				bw.WriteByte(',')
			}
			var v string
			switch c {
			case "registration":
				v = b.Registration
			case "registration_id":
				v = id(b.RegistrationID)
			case "application":
				v = b.Application
			case "application_id":
				v = id(b.ApplicationID)
			case "rule":
				v = b.Rule
			case "rule_id":
				v = id(b.RuleID)
			case "user":
				v = b.User
			case "user_id":
				v = id(b.UserID)
			case "unbound":
				if b.Unbound {
					v = "true"
				}
			case "x-note":
				v = notes[i]
			}
			bw.WriteString(csvQuote(v))
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// csvQuote writes a cell plain when Load reads it back as written, and
// quoted (a quote inside doubled) otherwise.
func csvQuote(s string) string {
	if s == "" || (!strings.ContainsAny(s, ",;\"\r\n") && !isBlank(s[0]) && !isBlank(s[len(s)-1])) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
