// Package english is voxbind's one way of writing counts in words, so
// that every message agrees with its number: "1 change", "2 changes",
// "1 change is", "2 changes are".
package english

import (
	"strconv"
	"strings"
)

// Plural is n followed by the noun that agrees with it: "1 change",
// "0 changes", "3 changes". The plural adds "s" to one unless many gives
// it ("1 registration not in the spec is", "2 registrations not in the
// spec are").
func Plural(n int, one string, many ...string) string {
	return strconv.Itoa(n) + " " + Choose(n, one, pluralOf(one, many))
}

// Choose is one when n is 1, else many: the word or phrase that agrees
// with a count printed elsewhere ("is"/"are", "it is"/"they are").
func Choose(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func pluralOf(one string, many []string) string {
	if len(many) > 0 {
		return many[0]
	}
	return one + "s"
}

// And joins items as a list in words: "a", "a and b", "a, b and c".
func And(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
