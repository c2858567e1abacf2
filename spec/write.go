package spec

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Write prints s as a spec file in the canonical form Load reads back to
// the same bindings: version, account_id and prune (when set), then one
// block per binding with its keys in a fixed order. Names are quoted when
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
	return bw.Flush()
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
