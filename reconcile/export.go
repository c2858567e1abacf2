package reconcile

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Export writes a spec that asks for exactly the bindings of
// current: every registration, sorted by proxy then username then id, each
// under a comment with its id, bound ones to their current target and
// unbound ones with `unbound: true`. Planning the written spec against
// current gives no changes.
//
// Objects are named whenever the name identifies them under the spec's
// matching rules (ASCII case-insensitive, application short or full name)
// and by id otherwise, so the output is readable and never ambiguous.
// current.Rules and current.Users must hold the lists of every application
// a registration is bound to with a rule or a user; a missing list makes
// the rule or user appear by id. Export does no I/O other than writing w.
func Export(w io.Writer, current *Current) error {
	return ExportSelection(w, current, Selection{})
}

// ExportSelection is Export limited to the registrations in sel (app=
// picks what the account binds to that application). Names are still
// chosen against the whole account, so that a name the selection happens
// to hold once, but the account twice, is written as an id. A selector
// that matches no registration is an error wrapping ErrSelectsNothing.
func ExportSelection(w io.Writer, current *Current, sel Selection) error {
	outside, err := sel.outside(current, nil)
	if err != nil {
		return err
	}
	n := newNamer(current)

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

	bindings := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range regs {
		entry, err := n.entry(r)
		if err != nil {
			return err
		}
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
	guard.LineComment = "guard: plan and apply refuse to act on another account"
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

	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return fmt.Errorf("export: write spec: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("export: write spec: %w", err)
	}
	return nil
}

// namer chooses, for each object, a name that identifies it or else its id.
type namer struct {
	current *Current
	apps    map[int64]Application
	// regKeys counts registrations by their case-folded sip_username@proxy.
	regKeys map[string]int
}

func newNamer(current *Current) *namer {
	n := &namer{current: current, apps: map[int64]Application{}, regKeys: map[string]int{}}
	for _, a := range current.Applications {
		n.apps[a.ID] = a
	}
	for _, r := range current.Registrations {
		n.regKeys[regKey(r.SIPUsername, r.Proxy)]++
	}
	return n
}

func regKey(user, proxy string) string { return strings.ToLower(user) + "@" + strings.ToLower(proxy) }

// entry is the binding entry for one registration, with its id comment.
func (n *namer) entry(r Registration) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	m.HeadComment = fmt.Sprintf("registration %d", r.ID)
	if r.Deactivated {
		m.HeadComment += " (frozen: deactivated, voxbind never changes it)"
	}

	// The spec splits `registration` at its last '@', so a proxy holding an
	// '@' (or an empty part) cannot be written by name.
	if r.SIPUsername != "" && r.Proxy != "" && !strings.Contains(r.Proxy, "@") &&
		n.regKeys[regKey(r.SIPUsername, r.Proxy)] == 1 {
		addPair(m, "registration", strNode(r.SIPUsername+"@"+r.Proxy))
	} else {
		addPair(m, "registration_id", intNode(r.ID))
	}

	t := r.Target
	if t == nil {
		addPair(m, "unbound", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		return m, nil
	}
	if t.Rule != nil && t.User != nil {
		return nil, fmt.Errorf("export: registration %d (%s@%s) is bound to rule %d and user %d at once, which a spec cannot express",
			r.ID, r.SIPUsername, r.Proxy, t.Rule.ID, t.User.ID)
	}
	appID := t.Application.ID
	if name, ok := n.applicationName(appID); ok {
		addPair(m, "application", strNode(name))
	} else {
		addPair(m, "application_id", intNode(appID))
	}
	switch {
	case t.Rule != nil:
		exportMember(m, "rule", n.current.Rules[appID], t.Rule.ID)
	case t.User != nil:
		exportMember(m, "user", n.current.Users[appID], t.User.ID)
	}
	return m, nil
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
		if candidate == "" {
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

// exportMember adds `kind: name` for the rule or user id of list, or
// `kind_id: id` when its name is not unique there (ASCII
// case-insensitively), is empty, or the list was not read.
func exportMember[T Rule | User](m *yaml.Node, kind string, list []T, id int64) {
	if name, ok := uniqueName(list, id); ok {
		addPair(m, kind, strNode(name))
	} else {
		addPair(m, kind+"_id", intNode(id))
	}
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
// keeps them strings, but other tools that read the spec may not.
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off":
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}
