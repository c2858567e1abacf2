package reconcile

import (
	"io"
)

// RenderJSON writes the plan as the plan JSON document (docs/plans.md), indented,
// with empty lists as [] and unbound targets as null. withPreconditions
// adds each step's precondition: plan --out saves them for apply --plan;
// -o json leaves them out.
func RenderJSON(w io.Writer, p *Plan, withPreconditions bool) error {
	enc := NewJSONEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(JSONPlan(p, withPreconditions))
}

// JSONPlan is the copy of p that RenderJSON encodes; a caller that adds
// fields to the document embeds it.
func JSONPlan(p *Plan, withPreconditions bool) *Plan {
	out := *p
	out.Changes = make([]Step, len(p.Changes))
	copy(out.Changes, p.Changes)
	if !withPreconditions {
		for i := range out.Changes {
			out.Changes[i].Precondition = nil
		}
	}
	if out.SideEffects == nil {
		out.SideEffects = []SideEffect{}
	}
	if out.Blocked == nil {
		out.Blocked = []Blocked{}
	}
	if out.Ignored == nil {
		out.Ignored = []Ignored{}
	}
	return &out
}
