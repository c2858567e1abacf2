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
