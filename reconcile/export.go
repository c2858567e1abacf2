package reconcile

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/voxbind/voxbind/spec"
)

// Export writes a spec that asks for exactly the bindings of the
// registrations of current in sel (all of them for an empty Selection;
// app= picks what the account binds to that application), sorted by
// proxy then username then id, each under a comment with its id, bound
// ones to their current target and unbound ones with `unbound: true`.
// Planning the written spec against current gives no changes. It returns
// how many registrations it wrote; a selector that matches no
// registration is an error wrapping ErrSelectsNothing.
//
// Objects are named whenever the name identifies them under the spec's
// matching rules (ASCII case-insensitive, application short or full name)
// and by id otherwise, so the output is readable and never ambiguous.
// Names are chosen against the whole account, so that a name the
// selection happens to hold once, but the account twice, is written as an
// id. current.Rules and current.Users must hold the lists of every
// application a registration is bound to with a rule or a user; a missing
// list makes the rule or user appear by id. Export does no I/O other than
// writing w.
func Export(w io.Writer, current *Current, sel Selection) (int, error) {
	regs, err := exportOrder(current, sel)
	if err != nil {
		return 0, err
	}
	n := newNamer(current, false)
	bindings := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range regs {
		b, err := n.binding(r)
		if err != nil {
			return 0, err
		}
		entry := exportYAMLEntry(&b)
		entry.HeadComment = exportNote(r)
		bindings.Content = append(bindings.Content, entry)
	}

	doc := &yaml.Node{Kind: yaml.MappingNode}
	doc.HeadComment = fmt.Sprintf(
		"Exported by voxbind from account %d (%s): every SIP registration\n"+
			"and its current binding. `voxbind plan` on this file shows `No changes.`",
		current.Account.ID, Printable(current.Account.Name))
	if !sel.Empty() {
		doc.HeadComment = fmt.Sprintf(
			"Exported by voxbind from account %d (%s): %d of its %d SIP\n"+
				"registrations and their current bindings, those selected by\n"+
				"%s\n"+
				"`voxbind plan` on this file shows `No changes.`",
			current.Account.ID, Printable(current.Account.Name), len(regs), len(current.Registrations), renderSelection(&Plan{Selection: sel.summary()}))
	}
	addPair(doc, "version", intNode(1))
	guard := intNode(current.Account.ID)
	guard.LineComment = "plan and apply act on this account, and only on it"
	addPair(doc, "account_id", guard)
	prune := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"}
	addPair(doc, "prune", prune)
	doc.Content[len(doc.Content)-2].HeadComment =
		"Every registration is listed below, so prune changes nothing today.\n" +
			"Set it to true to have apply unbind registrations that no entry lists\n" +
			"(for example ones added to the account later)."
	if !sel.Empty() {
		doc.Content[len(doc.Content)-2].HeadComment =
			"Only the selected registrations are listed below: with prune: true,\n" +
				"apply would unbind every other bound registration of the account."
	}
	addPair(doc, "bindings", bindings)

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return 0, fmt.Errorf("export: write spec: %w", err)
	}
	if err := enc.Close(); err != nil {
		return 0, fmt.Errorf("export: write spec: %w", err)
	}
	// yaml.v3 escapes the C1 controls but writes the bidirectional-text
	// controls and the other format characters raw, even in a
	// double-quoted scalar. strNode double-quotes every name holding one,
	// and the comments hold them escaped already, so each one left is
	// inside a double-quoted scalar, where its escape reads back as the
	// character.
	if _, err := w.Write(escapeInvisible(out.Bytes(), true)); err != nil {
		return 0, fmt.Errorf("export: write spec: %w", err)
	}
	return len(regs), nil
}

// ExportCSV writes the same bindings as Export, for the same selection,
// as a CSV spec: the columns registration, application, rule, user and
// unbound (each followed by its _id column when some row needs an id),
// then x-note with what Export puts in each entry's comment. A CSV spec
// holds no account_id guard and no prune setting. It returns how many
// registrations it wrote.
//
// A file like this is opened in spreadsheets, which run a cell that starts
// with =, +, - or @ as a formula, mangle control characters and show a
// bidirectional-text control raw (a CSV has no escapes), so such a name is
// written as its id instead; every name still reads back exactly.
func ExportCSV(w io.Writer, current *Current, sel Selection) (int, error) {
	regs, err := exportOrder(current, sel)
	if err != nil {
		return 0, err
	}
	n := newNamer(current, true)
	bindings := make([]spec.Binding, 0, len(regs))
	notes := make([]string, 0, len(regs))
	for _, r := range regs {
		b, err := n.binding(r)
		if err != nil {
			return 0, err
		}
		bindings = append(bindings, b)
		notes = append(notes, exportNote(r))
	}
	if err := spec.WriteCSV(w, bindings, notes); err != nil {
		return 0, fmt.Errorf("export: write spec: %w", err)
	}
	return len(regs), nil
}

// exportOrder is the registrations of current that sel selects, sorted by
// proxy, then username (case-insensitively, then exactly), then id.
func exportOrder(current *Current, sel Selection) ([]Registration, error) {
	outside, err := sel.outside(current, nil)
	if err != nil {
		return nil, err
	}
	var regs []Registration
	for i, r := range current.Registrations {
		if outside == nil || !outside[i] {
			regs = append(regs, r)
		}
	}
	slices.SortFunc(regs, func(a, b Registration) int {
		return cmp.Or(
			cmp.Compare(strings.ToLower(a.Proxy), strings.ToLower(b.Proxy)),
			cmp.Compare(strings.ToLower(a.SIPUsername), strings.ToLower(b.SIPUsername)),
			cmp.Compare(a.Proxy, b.Proxy),
			cmp.Compare(a.SIPUsername, b.SIPUsername),
			cmp.Compare(a.ID, b.ID),
		)
	})
	return regs, nil
}

// exportNote says which registration an entry is, and whether it is frozen.
func exportNote(r Registration) string {
	note := fmt.Sprintf("registration %d", r.ID)
	if r.Deactivated {
		note += " (frozen: deactivated, voxbind never changes it)"
	}
	return note
}

// exportYAMLEntry is the YAML mapping of one binding, keys in spec order.
func exportYAMLEntry(b *spec.Binding) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	name := func(key, v string) {
		if v != "" {
			addPair(m, key, strNode(v))
		}
	}
	id := func(key string, v int64) {
		if v != 0 {
			addPair(m, key, intNode(v))
		}
	}
	name("registration", b.Registration)
	id("registration_id", b.RegistrationID)
	if b.Unbound {
		addPair(m, "unbound", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		return m
	}
	name("application", b.Application)
	id("application_id", b.ApplicationID)
	name("rule", b.Rule)
	id("rule_id", b.RuleID)
	name("user", b.User)
	id("user_id", b.UserID)
	return m
}

// namer chooses, for each object, a name that identifies it or else its id.
type namer struct {
	current *Current
	apps    map[int64]Application
	// regKeys counts registrations by their case-folded sip_username@proxy.
	regKeys map[string]int
	// sheet: names are for a spreadsheet, and one that it would run or
	// mangle is given as an id (see ExportCSV).
	sheet bool
}

func newNamer(current *Current, sheet bool) *namer {
	n := &namer{current: current, apps: map[int64]Application{}, regKeys: map[string]int{}, sheet: sheet}
	for _, a := range current.Applications {
		n.apps[a.ID] = a
	}
	for _, r := range current.Registrations {
		n.regKeys[regKey(r.SIPUsername, r.Proxy)]++
	}
	return n
}

func regKey(user, proxy string) string { return strings.ToLower(user) + "@" + strings.ToLower(proxy) }

// usable reports whether a name may be written: not empty, not what a
// spec refuses as a key or a token, and, for a spreadsheet, no formula
// and no control or bidirectional-text character.
func (n *namer) usable(name string) bool {
	if name == "" || spec.LooksLikeSecret(name) {
		return false
	}
	if !n.sheet {
		return true
	}
	if strings.IndexByte("=+-@", name[0]) >= 0 {
		return false
	}
	return !strings.ContainsFunc(name, invisible)
}

// binding is the entry that asks for r's current target.
func (n *namer) binding(r Registration) (spec.Binding, error) {
	var b spec.Binding
	// The spec splits `registration` at its last '@', so a proxy holding an
	// '@' (or an empty part) cannot be written by name.
	if r.SIPUsername != "" && r.Proxy != "" && !strings.Contains(r.Proxy, "@") &&
		n.regKeys[regKey(r.SIPUsername, r.Proxy)] == 1 && n.usable(r.SIPUsername+"@"+r.Proxy) {
		b.Registration = r.SIPUsername + "@" + r.Proxy
	} else {
		b.RegistrationID = r.ID
	}

	t := r.Target
	if t == nil {
		b.Unbound = true
		return b, nil
	}
	if t.Rule != nil && t.User != nil {
		return b, fmt.Errorf("export: registration %d (%s@%s) is bound to rule %d and user %d at once, which a spec cannot express",
			r.ID, r.SIPUsername, r.Proxy, t.Rule.ID, t.User.ID)
	}
	appID := t.Application.ID
	if name, ok := n.applicationName(appID); ok {
		b.Application = name
	} else {
		b.ApplicationID = appID
	}
	switch {
	case t.Rule != nil:
		if name, ok := uniqueName(n.current.Rules[appID], t.Rule.ID); ok && n.usable(name) {
			b.Rule = name
		} else {
			b.RuleID = t.Rule.ID
		}
	case t.User != nil:
		if name, ok := uniqueName(n.current.Users[appID], t.User.ID); ok && n.usable(name) {
			b.User = name
		} else {
			b.UserID = t.User.ID
		}
	}
	return b, nil
}

// applicationName is the short name of application id (the part of its
// full name before the first dot) when no other application answers to it,
// else its full name when no other application answers to that. An
// application name in a spec matches a full name or a short name, ASCII
// case-insensitively, so both candidates are checked against both.
func (n *namer) applicationName(id int64) (string, bool) {
	app, ok := n.apps[id]
	if !ok || app.Name == "" {
		return "", false
	}
	for _, candidate := range []string{shortName(app.Name), app.Name} {
		if !n.usable(candidate) {
			continue
		}
		matches := 0
		for _, a := range n.current.Applications {
			if strings.EqualFold(a.Name, candidate) || strings.EqualFold(shortName(a.Name), candidate) {
				matches++
			}
		}
		if matches == 1 {
			return candidate, true
		}
	}
	return "", false
}

// shortName is the part of a full application name before its first dot.
func shortName(full string) string {
	short, _, _ := strings.Cut(full, ".")
	return short
}

// uniqueName is the name of id in list when no other entry shares it
// ASCII case-insensitively; false when id is not in list or its name is
// empty or shared.
func uniqueName[T Rule | User](list []T, id int64) (string, bool) {
	i := slices.IndexFunc(list, func(x T) bool { return resolveMember(x).ID == id })
	if i < 0 {
		return "", false
	}
	name := resolveMember(list[i]).Name
	if name == "" {
		return "", false
	}
	for j, x := range list {
		if j != i && strings.EqualFold(resolveMember(x).Name, name) {
			return "", false
		}
	}
	return name, true
}

func addPair(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, value)
}

func intNode(v int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
}

// strNode is a string scalar; the encoder quotes it when its plain form
// would read back as something else (1001, true, null, 1e3, ...). Words
// that YAML 1.1 reads as booleans (yes, off, ...) are quoted too: yaml.v3
// keeps them strings, but other tools that read the spec may not. A name
// holding a control or bidirectional-text character is double-quoted, so
// that the character can be written as an escape (see Export).
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off":
		n.Style = yaml.DoubleQuotedStyle
	}
	if strings.ContainsFunc(s, invisible) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}
