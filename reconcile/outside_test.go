package reconcile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOutsidePlan: every registration that changed during an apply, and
// that no step (applied or not), side effect or ignore entry is for, is
// a difference; with the read before kept, it is named as it was, and
// without (a fleet), by ids and the names the account read back has.
func TestOutsidePlan(t *testing.T) {
	before := applyTestCurrent(8)
	before.Registrations[0].Target = applyUserTarget(1001) // step 1's
	before.Registrations[1].Target = applyUserTarget(1002) // the side effect's
	before.Registrations[4].Target = &Target{Application: applyTestApp, Rule: &Ref{ID: 7, Name: "inbound-main"}}
	before.Registrations[5].Target = applyUserTarget(1006) // ignored
	before.Registrations[6].Target = applyUserTarget(1007) // ignored outside the selection
	p := verifyPlan()
	p.Ignored = []Ignored{{Registration: verifyRef(5)}}
	p.IgnoredOutside = []int64{107}

	after := applyTestCurrent(8)
	after.Registrations = after.Registrations[:7] // 108 is gone
	after.Registrations[2].Target = applyUserTarget(1001)
	after.Registrations[3].Target = applyUserTarget(1005) // step 3, whatever it did
	after.Registrations[4].Target = nil                   // 105: changed outside the plan
	after.Registrations[5].Target = nil
	after.Registrations[6].Target = nil
	after.Registrations[0].Target = applyUserTarget(1004) // 101: step 1's, checked by Verify
	after.Registrations[1].Target = &Target{Application: applyTestApp, Rule: &Ref{ID: 7, Name: "inbound-main"}}
	before.Registrations[7].Target = &Target{Application: applyTestApp}

	const by = " — by this apply or by someone else at the same time"
	// Without the plan's steps, side effect and ignore entries, each of
	// the eight registrations is a difference.
	if got := OutsidePlan(&Plan{AccountID: 42}, BeforeOf(&before, true), &after); len(got) != 8 {
		t.Errorf("against an empty plan: %d differences; want 8", len(got))
	}
	want := []string{
		"registration 105 (r004@pbx.example.com) changed outside the plan: was support / rule inbound-main, now (unbound)" + by,
		"registration 108 (r007@pbx.example.com) changed outside the plan: was support, now the registration no longer exists" + by,
	}
	got := verifyStrings(OutsidePlan(p, BeforeOf(&before, true), &after))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names kept (-want +got):\n%s", diff)
	}
	// Without the names, the rule's comes from 102, which is bound to it
	// now; 108, gone, has only its id.
	want[1] = "registration 108 changed outside the plan: was support, now the registration no longer exists" + by
	got = verifyStrings(OutsidePlan(p, BeforeOf(&before, false), &after))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids only (-want +got):\n%s", diff)
	}
	after.Registrations[1].Target = nil
	want[0] = "registration 105 (r004@pbx.example.com) changed outside the plan: was support / rule 7, now (unbound)" + by
	got = verifyStrings(OutsidePlan(p, BeforeOf(&before, false), &after))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids only, no rule name read back (-want +got):\n%s", diff)
	}
	for _, m := range OutsidePlan(p, BeforeOf(&before, true), &after) {
		if !m.OutsidePlan || m.Step != 0 {
			t.Errorf("%v: outside_plan %v, step %d; want true, 0", m, m.OutsidePlan, m.Step)
		}
	}
	if got := OutsidePlan(p, nil, &after); got != nil {
		t.Errorf("without a read before: %v; want none", got)
	}
}
