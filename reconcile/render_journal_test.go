package reconcile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// renderJournalCase is a journal of three calls, one that displaced a
// user, one that failed, and one whose result was never written: the
// process died, so there is no end line either.
const renderJournalCase = `{"kind":"start","journal_version":1,"account_id":1000001,"voxbind_version":"v1.2.3","started":"2026-11-28T06:15:00Z","plan_steps":4}
{"kind":"intent","step":1,"registration":{"id":3001,"sip_username":"alice","proxy":"pbx.example.com"},"before":{"application":{"id":10,"name":"support.demo.voximplant.com"},"rule":null,"user":{"id":200,"name":"alice"}},"after":{"application":{"id":10,"name":"support.demo.voximplant.com"},"rule":null,"user":{"id":201,"name":"bob"}},"displaces":{"registration":{"id":3002,"sip_username":"bob","proxy":"pbx.example.com"},"before":{"application":{"id":10,"name":"support.demo.voximplant.com"},"rule":null,"user":{"id":201,"name":"bob"}}}}
{"kind":"result","step":1,"outcome":"applied","error":null}
{"kind":"intent","step":2,"registration":{"id":3005,"sip_username":"erin","proxy":"pbx.example.com"},"before":null,"after":{"application":{"id":11,"name":"sales.demo.voximplant.com"},"rule":null,"user":{"id":999,"name":"ghost"}},"displaces":null}
{"kind":"result","step":2,"outcome":"failed","error":{"code":117,"message":"Invalid user_id"}}
{"kind":"intent","step":3,"registration":{"id":3011,"sip_username":"conf","proxy":"pbx.example.com"},"before":{"application":{"id":10,"name":"support.demo.voximplant.com"},"rule":null,"user":null},"after":null,"displaces":null}
`

func TestRenderJournal(t *testing.T) {
	j, err := ReadJournal([]byte(renderJournalCase))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := RenderJournalText(&b, j); err != nil {
		t.Fatal(err)
	}
	want := `  ~ [1] alice@pbx.example.com (3001)
        support / user alice -> support / user bob
        takes the user of bob@pbx.example.com (3002) (support / user bob)
        applied
  + [2] erin@pbx.example.com (3005)
        (unbound) -> sales / user ghost
        failed: Invalid user_id (api error 117)
  - [3] conf@pbx.example.com (3011)
        support -> (unbound)
        no result recorded (voxbind died before the answer, or before sending the call)

The apply did not end: voxbind was killed or crashed after the last line above.
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}

	b.Reset()
	if err := RenderJournalMarkdown(&b, j); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"#### voxbind apply journal for account 1000001",
		"| 2 | erin@pbx.example.com (3005) | (unbound) | sales / user ghost | failed: Invalid user\\_id (api error 117) |",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("markdown lacks %q:\n%s", line, b.String())
		}
	}

	b.Reset()
	if err := RenderJournalJSON(&b, j); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Kind  string `json:"kind"`
		Steps []struct {
			Step    int    `json:"step"`
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
		} `json:"steps"`
		End *json.RawMessage `json:"end"`
	}
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, s := range doc.Steps {
		got = append(got, s.Action+" "+s.Outcome)
	}
	if diff := cmp.Diff([]string{"rebind applied", "bind failed", "unbind no result"}, got); diff != "" || doc.Kind != "journal" || doc.End != nil {
		t.Errorf("json: kind %q, end %v, steps (-want +got):\n%s", doc.Kind, doc.End, diff)
	}

	// An apply that ended says how.
	ended := renderJournalCase + `{"kind":"result","step":3,"outcome":"applied","error":null}
{"kind":"end","finished":"2026-11-28T06:15:02Z","interrupted":true,"verified":null,"summary":{"applied":2,"failed":1,"skipped":1,"unknown":0,"not_started":0}}
`
	if j, err = ReadJournal([]byte(ended)); err != nil {
		t.Fatal(err)
	}
	if got, want := journalEnd(j), "Apply stopped early (finished 2026-11-28T06:15:02Z): 2 applied, 1 failed, 1 skipped, 0 not started, 0 unknown; not verified."; got != want {
		t.Errorf("end %q, want %q", got, want)
	}
	// An end line that says why it stopped: the reason, as the summary gave it.
	for stopped, want := range map[string]string{
		"stopped: the API is unreachable since 06:14:31": "Apply stopped (the API is unreachable since 06:14:31; finished 2026-11-28T06:15:02Z): 2 applied,",
		"interrupted": "Apply interrupted (finished 2026-11-28T06:15:02Z): 2 applied,",
	} {
		withWhy := strings.Replace(ended, `"interrupted":true,`, `"interrupted":true,"stopped":"`+stopped+`",`, 1)
		if j, err = ReadJournal([]byte(withWhy)); err != nil {
			t.Fatal(err)
		}
		if got := journalEnd(j); !strings.HasPrefix(got, want) {
			t.Errorf("end %q, want it to start %q", got, want)
		}
	}

	// In a journal that ended, an intent without a result is of a call
	// never sent: its intent was written ahead, and the apply stopped.
	notSent := renderJournalCase + `{"kind":"end","finished":"2026-11-28T06:15:02Z","interrupted":true,"verified":null,"summary":{"applied":1,"failed":1,"skipped":0,"unknown":0,"not_started":2}}
`
	if j, err = ReadJournal([]byte(notSent)); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := RenderJournalText(&b, j); err != nil {
		t.Fatal(err)
	}
	if want := "        support -> (unbound)\n        not sent (the apply stopped before this call)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, b.String())
	}
	if s := JournalSteps(j); s[2].Step != 3 || s[2].Sent != 0 || s[1].Sent != 2 {
		t.Errorf("sent: %+v; want 0 for step 3, never sent, and 2 for step 2", s)
	}
}

// TestRenderJournalStepOrder: steps run several at a time, so their calls
// may go out in another order than the plan's; show lists them in step
// order, and JSON says when each was sent.
func TestRenderJournalStepOrder(t *testing.T) {
	lines := strings.Split(renderJournalCase, "\n")
	// The calls of steps 3, 2 and 1 went out in that order; 2's result
	// came last.
	reordered := strings.Join([]string{lines[0], lines[5], lines[3], lines[1], lines[2], lines[4]}, "\n") + "\n"
	j, err := ReadJournal([]byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := RenderJournalText(&b, j); err != nil {
		t.Fatal(err)
	}
	one, two, three := strings.Index(b.String(), "[1]"), strings.Index(b.String(), "[2]"), strings.Index(b.String(), "[3]")
	if one < 0 || !(one < two && two < three) {
		t.Errorf("text not in step order:\n%s", b.String())
	}
	b.Reset()
	if err := RenderJournalMarkdown(&b, j); err != nil {
		t.Fatal(err)
	}
	if one, three := strings.Index(b.String(), "| 1 |"), strings.Index(b.String(), "| 3 |"); one < 0 || one > three {
		t.Errorf("markdown not in step order:\n%s", b.String())
	}
	b.Reset()
	if err := RenderJournalJSON(&b, j); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Steps []struct{ Step, Sent int } `json:"steps"`
	}
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]struct{ Step, Sent int }{{1, 3}, {2, 2}, {3, 1}}, doc.Steps); diff != "" {
		t.Errorf("JSON steps (-want +got):\n%s", diff)
	}
}
