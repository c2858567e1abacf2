package spec

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// walker reads one file's node tree in a single pass. It avoids fmt and
// reflection on the path a valid entry takes: bulk specs have 100,000
// entries.
type walker struct {
	l    *loader
	file string
	rec  *loadedFile // what the file says at its top level

	entryBuf []pair
	// merged caches the resolved fields of every mapping used as a merge
	// source, so that defaults merged into many entries are read once; a nil
	// value marks a mapping being resolved (an anchor that merges itself).
	merged   map[*yaml.Node][]pair
	reported map[nodeMsg]bool
}

type pair struct{ key, val *yaml.Node }

func (w *walker) pos(n *yaml.Node) Pos {
	return Pos{File: w.file, Line: max(n.Line, 1), Col: max(n.Column, 1)}
}

// errorf reports a problem at n, once: defaults merged into many entries
// would otherwise repeat their problems for every entry.
func (w *walker) errorf(n *yaml.Node, code Code, msg, fix string) {
	k := nodeMsg{n, msg}
	if w.reported[k] {
		return
	}
	if w.reported == nil {
		w.reported = make(map[nodeMsg]bool)
	}
	w.reported[k] = true
	w.l.report(w.pos(n), code, msg, fix)
}

type nodeMsg struct {
	n   *yaml.Node
	msg string
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// fields lists the keys of mapping m with their values, in the order
// written, followed by the keys merge keys bring in that m does not set
// itself (YAML merge: explicit keys win, and among several merged mappings
// the first wins). A key written twice is reported with both places and its
// second value ignored. out is reused.
func (w *walker) fields(m *yaml.Node, out []pair, depth int) []pair {
	out = out[:0]
	// Small mappings (every real entry) are scanned; past 32 keys an index
	// keeps huge or heavily merged mappings linear.
	var index map[string]int
	find := func(key string) int {
		if index == nil && len(out) > 32 {
			index = make(map[string]int, 2*len(out))
			for i, p := range out {
				index[p.key.Value] = i
			}
		}
		if index != nil {
			if i, ok := index[key]; ok {
				return i
			}
			return -1
		}
		for i := range out {
			if out[i].key.Value == key {
				return i
			}
		}
		return -1
	}
	add := func(p pair) {
		if index != nil {
			index[p.key.Value] = len(out)
		}
		out = append(out, p)
	}
	var merges []*yaml.Node
	var firstMerge *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.errorf(m.Content[i], CodeWrongType, "a key must be a plain name, not "+describe(k), "write the key as a plain word such as application")
			continue
		}
		if isMergeKey(k) {
			if firstMerge != nil {
				w.errorf(k, CodeMerge, "duplicate merge key \"<<\" (first at "+w.pos(firstMerge).String()+")", "merge several mappings with one key, <<: [*a, *b]")
				continue
			}
			firstMerge = k
			merges = append(merges, v)
			continue
		}
		if j := find(k.Value); j >= 0 {
			w.errorf(k, CodeDuplicateKey, "duplicate key \""+k.Value+"\" (first at "+w.pos(out[j].key).String()+")", "remove one of the two")
			continue
		}
		add(pair{k, v})
	}
	explicit := len(out)
	for _, v := range merges {
		for i, src := range w.mergeSources(v) {
			for _, p := range w.mergedFields(src, depth) {
				// The first source's keys are distinct already: they
				// only need checking against the keys written here.
				if i == 0 && index == nil {
					if !written(out[:explicit], p.key.Value) {
						out = append(out, p)
					}
					continue
				}
				if find(p.key.Value) < 0 {
					add(p)
				}
			}
		}
	}
	return out
}

func written(ps []pair, key string) bool {
	for i := range ps {
		if ps[i].key.Value == key {
			return true
		}
	}
	return false
}

// mergeSources lists the mappings a merge key's value names: a mapping, an
// alias of one, or a list of those.
func (w *walker) mergeSources(v *yaml.Node) []*yaml.Node {
	d := deref(v)
	switch d.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{d}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range d.Content {
			if m := deref(item); m.Kind == yaml.MappingNode {
				out = append(out, m)
			} else {
				w.errorf(item, CodeMerge, "a merge key \"<<\" lists mappings, not "+describe(m), "write <<: [*a, *b] with each anchor on a mapping")
			}
		}
		return out
	}
	w.errorf(v, CodeMerge, "a merge key \"<<\" needs a mapping, not "+describe(d), "write <<: *defaults with &defaults on a mapping")
	return nil
}

func (w *walker) mergedFields(m *yaml.Node, depth int) []pair {
	if w.merged == nil {
		w.merged = make(map[*yaml.Node][]pair)
	}
	if ps, ok := w.merged[m]; ok {
		if ps == nil {
			w.errorf(m, CodeMerge, "this mapping merges itself (through \"<<\")", "remove the merge key that names its own anchor")
		}
		return ps
	}
	if depth > 32 {
		w.errorf(m, CodeMerge, "merge keys nested more than 32 deep", "flatten the defaults")
		return nil
	}
	w.merged[m] = nil
	ps := w.fields(m, nil, depth+1)
	if ps == nil {
		ps = []pair{}
	}
	w.merged[m] = ps
	return ps
}

// describe names the kind of a node for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value) + " (a string)"
	case "!!int":
		return n.Value + " (an integer)"
	case "!!float":
		return n.Value + " (a number)"
	case "!!bool":
		return n.Value
	case "!!null":
		return "an empty value"
	}
	return strconv.Quote(n.Value)
}

var topKeys = []string{"version", "account_id", "prune", "bindings", "ignore"}

// top reads a file's root mapping.
func (w *walker) top(root *yaml.Node) {
	l := w.l
	if root.Kind != yaml.MappingNode {
		w.errorf(root, CodeWrongType, "a spec is a mapping with \"version: 1\" and \"bindings:\", not "+describe(root), "start the file with version: 1 and list the entries under bindings:")
		return
	}
	haveVersion := false
	for _, p := range w.fields(root, nil, 0) {
		k, v := p.key, deref(p.val)
		switch k.Value {
		case "version":
			haveVersion = true
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" && v.Value == "1" {
				continue
			}
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == "1" {
				w.errorf(v, CodeVersion, "version must be the integer 1, not the string \"1\"", "write version: 1 without quotes")
			} else if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!float" || v.ShortTag() == "!!str") {
				w.errorf(v, CodeVersion, "unsupported version "+describe(v)+": only version 1 exists", "write \"version: 1\"")
			} else {
				w.errorf(v, CodeVersion, "version must be 1, not "+describe(v), "write \"version: 1\"")
			}
		case "account_id":
			w.rec.accountKey = true
			if id, ok := w.intValue("account_id", v); ok {
				w.rec.accountID, w.rec.accountPos = id, w.pos(v)
			}
		case "prune":
			if b, ok := w.boolValue("prune", v); ok {
				w.rec.prune, w.rec.prunePos = b, w.pos(v)
			}
		case "bindings":
			switch {
			case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			case v.Kind == yaml.SequenceNode:
				l.bindings = slices.Grow(l.bindings, len(v.Content))
				l.flags = slices.Grow(l.flags, len(v.Content))
				for _, item := range v.Content {
					w.entry(item)
				}
			default:
				w.errorf(v, CodeWrongType, "bindings must be a list of entries, not "+describe(v), "start each entry with \"- \"")
			}
		case "ignore":
			switch {
			case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			case v.Kind == yaml.SequenceNode:
				for _, item := range v.Content {
					w.ignore(item)
				}
			default:
				w.errorf(v, CodeWrongType, "ignore must be a list of exceptions, not "+describe(v), "start each exception with \"- \"")
			}
		default:
			if strings.HasPrefix(k.Value, "x-") {
				continue // extension keys hold anchors and notes
			}
			w.unknownKey(k, topKeys, entryKeys, "at the top of the spec", "belongs in an entry under \"bindings:\"", "move it into an entry, under bindings:")
		}
	}
	if !haveVersion {
		w.errorf(root, CodeVersion, "missing version", "add \"version: 1\" at the top of the file")
	}
}

func (w *walker) unknownKey(k *yaml.Node, known, other []string, where, otherWhere, otherFix string) {
	if w.reported[nodeMsg{k, ""}] {
		return // a merged key already reported for an earlier entry
	}
	if w.reported == nil {
		w.reported = make(map[nodeMsg]bool)
	}
	w.reported[nodeMsg{k, ""}] = true
	for _, o := range other {
		if k.Value == o {
			w.errorf(k, CodeMisplacedKey, "\""+k.Value+"\" "+otherWhere, otherFix)
			return
		}
	}
	msg := "unknown key \"" + k.Value + "\" " + where
	fix := "the keys are " + strings.Join(known, ", ") + " (and x-* for your own notes and anchors)"
	if s := suggest(k.Value, known); s != "" {
		fix = "did you mean \"" + s + "\"?"
	}
	w.errorf(k, CodeUnknownKey, msg, fix)
}

// intValue reads an id: a plain decimal integer of 1 or more. YAML also
// reads 0x1F, 0o17, 1_000 and (as YAML 1.1 did) 05671 as integers; an id
// written so is an error, never silently another registration.
func (w *walker) intValue(key string, v *yaml.Node) (int64, bool) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
		if plainDecimal(v.Value) {
			if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil && n > 0 {
				return n, true
			}
		} else if msg := notDecimal(v.Value); msg != "" {
			w.errorf(v, CodeInvalidValue, key+" "+v.Value+" is not a plain decimal number", msg)
			return 0, false
		}
		w.errorf(v, CodeInvalidValue, key+" must be a positive integer, not "+v.Value, "give the id, a whole number of 1 or more")
		return 0, false
	}
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil && n > 0 {
			w.errorf(v, CodeWrongType, key+" must be an integer, not the string "+strconv.Quote(v.Value), "write "+v.Value+" without quotes")
			return 0, false
		}
		fix := "give the id, a whole number"
		if strings.HasSuffix(key, "_id") && key != "account_id" {
			fix = "to give a name, use " + strings.TrimSuffix(key, "_id") + " instead"
		}
		w.errorf(v, CodeWrongType, key+" must be an integer id, not "+describe(v), fix)
		return 0, false
	}
	w.errorf(v, CodeWrongType, key+" must be an integer id, not "+describe(v), "give the id, a whole number")
	return 0, false
}

// plainDecimal reports whether s is digits only, without a leading zero.
func plainDecimal(s string) bool {
	if s == "" || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// notDecimal says how to write an integer YAML accepted in another form
// as a decimal id, or "" when it is no positive integer at all.
func notDecimal(s string) string {
	digits := strings.TrimLeft(strings.ReplaceAll(strings.TrimPrefix(s, "+"), "_", ""), "0")
	if plainDecimal(digits) && digits != strings.TrimPrefix(s, "+") {
		// Leading zeros, underscores or a plus sign: YAML 1.1 reads a
		// leading zero as octal, so say both.
		if n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) != digits {
			return "write " + digits + " (some YAML readers take " + s + " as the octal number " + strconv.FormatInt(n, 10) + ")"
		}
		return "write " + digits
	}
	if n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64); err == nil && n > 0 {
		return "write it in decimal: " + strconv.FormatInt(n, 10)
	}
	return ""
}

func (w *walker) boolValue(key string, v *yaml.Node) (bool, bool) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		return strings.EqualFold(v.Value, "true"), true
	}
	w.errorf(v, CodeWrongType, key+" must be true or false (unquoted), not "+describe(v), "write "+key+": true or "+key+": false")
	return false, false
}

// nameValue reads a name. YAML numbers and booleans under a name key are
// names too, by their literal text: "user: 1001" is the user named 1001.
func (w *walker) nameValue(key string, v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		w.errorf(v, CodeWrongType, key+" must be a name, not "+describe(v), "write the name on the same line: "+key+": NAME")
		return "", false
	}
	if v.Value == "" || (v.ShortTag() == "!!null" && v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0) {
		w.errorf(v, CodeInvalidValue, key+" has no value", "write the name, or remove the key")
		return "", false
	}
	return v.Value, true
}
