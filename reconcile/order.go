package reconcile

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/voxbind/voxbind/spec"
)

// orderPlan orders the drafts under the one-registration-per-user rule,
// numbers them, and fills p's changes, side effects and blocked changes.
//
// A draft that binds registration R to user U, where U is held by H ≠ R:
//   - H is held by an exception in force (scope): the API would write to H
//     by displacing it, so R's change is blocked;
//   - H has a draft (it moves off U): R's draft depends on it, so H leaves
//     before R arrives and nothing is displaced;
//   - H is frozen: blocked, as for an exception;
//   - H's own change is blocked (undo: H changed since the apply): R's
//     change waits for it, so it is blocked too;
//   - otherwise H is unmanaged: the API displaces it, a side effect.
//
// Each draft binds at most one user and each user is wanted by at most one
// draft, so every draft depends on at most one other and has at most one
// dependent: the dependencies form chains and simple cycles. Drafts outside
// the selection (scope) are dropped, except those that a kept draft
// depends on, directly or along its chain: those are included. A block
// spreads along a chain (the holder stays, so whoever waits for it would
// displace it). Each cycle is broken by one displacement, the fewest
// possible: its draft whose registration sorts first goes first and
// displaces its holder. Steps are numbered chain by chain, chains in
// registration order (proxy, sip_username, id), so that a move and the
// moves it allows read together.
func orderPlan(p *Plan, current *Current, drafts []planDraft, blocked []planBlocked, scope *planScope) {
	regs := current.Registrations
	slices.SortFunc(drafts, func(a, b planDraft) int {
		return planCompareRegs(&regs[a.reg].RegistrationRef, &regs[b.reg].RegistrationRef)
	})
	for i := range drafts {
		d := &drafts[i]
		d.dep, d.dependent, d.displaces, d.includedFor = -1, -1, -1, -1
	}
	holder := make(map[int64]int32)
	for i := range regs {
		if t := regs[i].Target; t != nil && t.User != nil {
			holder[t.User.ID] = int32(i)
		}
	}

	pinned := make(map[int32]bool, len(blocked)) // registrations whose change is blocked
	for _, b := range blocked {
		pinned[b.reg] = true
	}

	roots := planLink(drafts, regs, holder, scope, pinned)
	drafts, roots = planSelect(p, drafts, roots)
	planSpreadBlocks(drafts, roots, regs)
	planBreakCycles(drafts)
	planNumber(drafts)
	planFill(p, current, drafts, blocked, holder, scope)
}

// planLink finds, for each draft, the holder of the user it binds, and
// links it to the holder's draft, blocks it, or records the displacement.
// pinned holds the registrations whose own change is blocked. It returns
// the drafts blocked by their holder, from which blocks spread.
func planLink(drafts []planDraft, regs []Registration, holder map[int64]int32, scope *planScope, pinned map[int32]bool) (roots []int32) {
	stepOf := make([]int32, len(regs))
	for i := range stepOf {
		stepOf[i] = -1
	}
	for i := range drafts {
		stepOf[drafts[i].reg] = int32(i)
	}
	for i := range drafts {
		d := &drafts[i]
		h := planHolder(holder, d)
		if h < 0 {
			continue
		}
		switch j := stepOf[h]; {
		case scope.ignoredAt(h) != nil:
			d.blocked, d.cause = planIgnoredHolder(&regs[h].RegistrationRef, scope.ignoredAt(h)), BlockIgnoredHolder
			roots = append(roots, int32(i))
		case j >= 0 && drafts[j].dependent < 0:
			d.dep = j
			drafts[j].dependent = int32(i)
		case regs[h].Deactivated:
			d.blocked, d.cause = fmt.Sprintf("displaces frozen registration %d (%s)", regs[h].ID, regName(&regs[h].RegistrationRef)), BlockFrozenHolder
			roots = append(roots, int32(i))
		case pinned[h]:
			d.blocked, d.cause = fmt.Sprintf("waits for registration %d (%s), whose change is blocked", regs[h].ID, regName(&regs[h].RegistrationRef)), BlockWaits
			roots = append(roots, int32(i))
		default:
			d.displaces = h
		}
	}
	return roots
}

// planIgnoredHolder is the reason of a change blocked because it would
// take the user of a registration that an exception holds.
func planIgnoredHolder(h *RegistrationRef, ig *spec.Ignore) string {
	return fmt.Sprintf("displaces registration %d (%s), which the ignore entry at %s holds until %s",
		h.ID, regName(h), Printable(ig.Pos.Short()), spec.DayString(ig.Until))
}

// planSelect keeps the drafts in the selection and, along each one's chain
// of dependencies, the drafts outside it that it waits for (each marked
// with the draft that needs it); it drops the rest and counts them in
// p.Selection. It returns the kept drafts, in the same order, and the kept
// roots, with every index renumbered.
func planSelect(p *Plan, drafts []planDraft, roots []int32) ([]planDraft, []int32) {
	if !slices.ContainsFunc(drafts, func(d planDraft) bool { return d.outside }) {
		return drafts, roots
	}
	keep := make([]bool, len(drafts))
	for i := range drafts {
		keep[i] = !drafts[i].outside
	}
	for i := range drafts {
		if drafts[i].outside {
			continue
		}
		for k := int32(i); drafts[k].dep >= 0 && !keep[drafts[k].dep]; k = drafts[k].dep {
			j := drafts[k].dep
			keep[j] = true
			drafts[j].includedFor = k
		}
	}
	index := make([]int32, len(drafts)) // old index → new, -1 when dropped
	n := int32(0)
	for i := range drafts {
		index[i] = -1
		if keep[i] {
			index[i] = n
			n++
		}
	}
	renumber := func(i int32) int32 {
		if i < 0 {
			return -1
		}
		return index[i]
	}
	kept := drafts[:0]
	for i := range drafts {
		if !keep[i] {
			if p.Selection != nil {
				p.Selection.Outside++
			}
			continue
		}
		d := drafts[i]
		// A kept draft depends only on kept drafts; one that waited for it
		// may be dropped, and then nothing waits.
		d.dep, d.dependent, d.includedFor = renumber(d.dep), renumber(d.dependent), renumber(d.includedFor)
		kept = append(kept, d)
	}
	keptRoots := roots[:0]
	for _, r := range roots {
		if index[r] >= 0 {
			keptRoots = append(keptRoots, index[r])
		}
	}
	return kept, keptRoots
}

// planSpreadBlocks blocks every draft that waits, along its chain, for a
// blocked one.
func planSpreadBlocks(drafts []planDraft, roots []int32, regs []Registration) {
	for _, i := range roots {
		for k := drafts[i].dependent; k >= 0 && drafts[k].blocked == ""; k = drafts[k].dependent {
			h := &regs[drafts[drafts[k].dep].reg].RegistrationRef
			drafts[k].blocked, drafts[k].cause = fmt.Sprintf("waits for registration %d (%s), whose change is blocked", h.ID, regName(h)), BlockWaits
		}
	}
}

// planNumber numbers the drafts that are steps, chain by chain from the
// draft that waits for nothing.
func planNumber(drafts []planDraft) {
	n := 0
	for i := range drafts {
		if drafts[i].blocked != "" || drafts[i].dep >= 0 {
			continue
		}
		for k := int32(i); k >= 0; k = drafts[k].dependent {
			n++
			drafts[k].number = n
		}
	}
}

// planFill turns the numbered drafts into p's steps, side effects and
// blocked changes, and counts them.
func planFill(p *Plan, current *Current, drafts []planDraft, blocked []planBlocked, holder map[int64]int32, scope *planScope) {
	regs := current.Registrations
	n := 0
	for i := range drafts {
		if drafts[i].blocked == "" {
			n++
		}
	}
	p.Changes = make([]Step, n)
	hasStep := make([]bool, len(regs))
	for i := range drafts {
		d := &drafts[i]
		reg := &regs[d.reg]
		hasStep[d.reg] = true
		if d.blocked != "" {
			reason := d.blocked
			if d.includedFor >= 0 {
				h := &regs[drafts[d.includedFor].reg].RegistrationRef
				reason += fmt.Sprintf("; it is outside the selection, included because registration %d (%s) waits for it", h.ID, regName(h))
			}
			blocked = append(blocked, planBlocked{reg: d.reg, reason: reason, cause: d.cause, entry: d.entry, source: d.source})
			continue
		}
		s := &p.Changes[d.number-1]
		*s = Step{
			Step:         d.number,
			Action:       planAction(reg.Target, d.after),
			Registration: reg.RegistrationRef,
			Before:       reg.Target,
			After:        d.after,
			Reason:       d.reason,
			Source:       planSource(d.entry, d.source),
			Precondition: &Precondition{Target: reg.Target},
		}
		if d.dep >= 0 {
			s.DependsOn = []int{drafts[d.dep].number}
		}
		if d.includedFor >= 0 {
			s.IncludedFor = drafts[d.includedFor].number
		}
		if h := planHolder(holder, d); h >= 0 {
			ref := regs[h].RegistrationRef
			s.Precondition.UserHolder = &ref
		}
		switch s.Action {
		case ActionBind:
			p.Summary.Bind++
		case ActionRebind:
			p.Summary.Rebind++
		case ActionUnbind:
			p.Summary.Unbind++
		}
	}
	for i := range drafts {
		d := &drafts[i]
		if d.blocked != "" || d.displaces < 0 {
			continue
		}
		if !hasStep[d.displaces] && !scope.outsideAt(d.displaces) {
			// Counted as left alone, but it is not: it loses its user.
			p.Summary.Unmanaged--
		}
		p.SideEffects = append(p.SideEffects, SideEffect{
			Registration: regs[d.displaces].RegistrationRef,
			LosesUser:    *regs[d.displaces].Target.User,
			CausedByStep: d.number,
		})
	}
	slices.SortFunc(p.SideEffects, func(a, b SideEffect) int { return cmp.Compare(a.CausedByStep, b.CausedByStep) })

	slices.SortFunc(blocked, func(a, b planBlocked) int {
		return planCompareRegs(&regs[a.reg].RegistrationRef, &regs[b.reg].RegistrationRef)
	})
	for _, b := range blocked {
		p.Blocked = append(p.Blocked, Blocked{Registration: regs[b.reg].RegistrationRef, Reason: b.reason, Source: planSource(b.entry, b.source), Cause: b.cause})
	}
}

// planHolder is the registration that holds the user d binds to, or -1 when
// d binds no user, the user is free, or d's registration holds it already.
func planHolder(holder map[int64]int32, d *planDraft) int32 {
	if d.after == nil || d.after.User == nil {
		return -1
	}
	h, ok := holder[d.after.User.ID]
	if !ok || h == d.reg {
		return -1
	}
	return h
}

// planBreakCycles finds every cycle of dependencies among the drafts that
// are not blocked and breaks it at the draft that sorts first (drafts are
// sorted): that draft runs first and displaces the holder it waited for.
func planBreakCycles(drafts []planDraft) {
	seen := make([]int32, len(drafts)) // 0: not yet; else the walk that reached it
	for i := range drafts {
		if seen[i] != 0 || drafts[i].blocked != "" {
			continue
		}
		walk := int32(i + 1)
		j := int32(i)
		for j >= 0 && seen[j] == 0 {
			seen[j] = walk
			j = drafts[j].dep
		}
		if j < 0 || seen[j] != walk {
			continue // reached a root, or a chain walked before
		}
		first := j
		for k := drafts[j].dep; k != j; k = drafts[k].dep {
			first = min(first, k)
		}
		h := drafts[first].dep
		drafts[first].displaces = drafts[h].reg
		drafts[first].dep = -1
		drafts[h].dependent = -1
	}
}

// planCompareRegs orders registrations by proxy, sip_username, then id: the
// order plans list them in.
func planCompareRegs(a, b *RegistrationRef) int {
	return cmp.Or(cmp.Compare(a.Proxy, b.Proxy), cmp.Compare(a.SIPUsername, b.SIPUsername), cmp.Compare(a.ID, b.ID))
}
