package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voxbind/voxbind/sandbox"
)

// alsoUnbindsTrunk serves the sandbox state over HTTP, and each
// BindSipRegistration it is sent also unbinds trunk1 (3008 in the demo
// account, bound to sales / rule inbound-sales; trunk is its id in a
// child account), as a second call with the same token: an API (or a
// colleague) that changes more than the plan asked.
func alsoUnbindsTrunk(t *testing.T, state string, trunk ...int64) string {
	t.Helper()
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		if !strings.HasSuffix(r.URL.Path, "/BindSipRegistration") {
			return
		}
		id := int64(3008)
		if len(trunk) > 0 {
			id = trunk[0]
		}
		form := url.Values{"sip_registration_id": {strconv.FormatInt(id, 10)}, "bind": {"false"}}
		other := httptest.NewRequest(http.MethodPost, r.URL.Path, strings.NewReader(form.Encode()))
		other.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		other.Header.Set("Authorization", r.Header.Get("Authorization"))
		srv.ServeHTTP(httptest.NewRecorder(), other)
	}))
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s.URL + "/platform_api/"
}

// TestApplyVerifiesEveryRegistration: an apply whose calls also change a
// registration that is neither a step nor a side effect of the plan
// fails verification, naming it, what it was and what it is now; the
// JSON summary marks the difference outside_plan. An ignore entry for
// that registration leaves it out: others manage it.
func TestApplyVerifiesEveryRegistration(t *testing.T) {
	t.Parallel()
	dir, state, spec := applyBigSandbox(t, 2)
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	pristine, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}

	endpoint := alsoUnbindsTrunk(t, state)
	code, _, stderr := applyRun(t, "", "--credentials", creds, "--endpoint", endpoint, "apply", "-f", spec, "--auto-approve", "--parallelism", "1")
	want := "  registration 3008 (trunk1@sip.carrier.example) changed outside the plan: was sales / rule inbound-sales, now (unbound) — by this apply or by someone else at the same time\n"
	if code != 1 || !strings.Contains(stderr, "Verification found 1 difference:\n"+want) {
		t.Errorf("apply: exit %d; want 1 and the trunk's difference:\n%s", code, stderr)
	}
	if got, want := lastLine(stderr), "Apply: 2 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 2 verified, 1 differs."; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}

	endpoint = alsoUnbindsTrunk(t, applyWrite(t, filepath.Join(dir, "json.json"), string(pristine)))
	code, stdout, _ := applyRun(t, "", "--credentials", creds, "--endpoint", endpoint, "apply", "-f", spec, "--auto-approve", "-o", "json")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var summary struct {
		ExitCode    int `json:"exit_code"`
		Differences []struct {
			Step         int                `json:"step"`
			Registration struct{ ID int64 } `json:"registration"`
			OutsidePlan  bool               `json:"outside_plan"`
		} `json:"differences"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatal(err)
	}
	if d := summary.Differences; code != 1 || summary.ExitCode != 1 || len(d) != 1 || d[0].Step != 0 || d[0].Registration.ID != 3008 || !d[0].OutsidePlan {
		t.Errorf("apply -o json: exit %d; want 1 and one difference outside the plan, of 3008:\n%s", code, lines[len(lines)-1])
	}

	endpoint = alsoUnbindsTrunk(t, applyWrite(t, filepath.Join(dir, "ignoring.json"), string(pristine)))
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().AddDate(0, 0, 30).Format(time.DateOnly)
	ignoring := applyWrite(t, filepath.Join(dir, "ignoring.yaml"), string(data)+
		"ignore:\n  - registration: trunk1@sip.carrier.example\n    reason: the carrier team re-patches it\n    until: "+until+"\n")
	if code, _, stderr := applyRun(t, "", "--credentials", creds, "--endpoint", endpoint, "apply", "-f", ignoring, "--auto-approve"); code != 0 {
		t.Errorf("apply with trunk1 ignored: exit %d; want 0:\n%s", code, stderr)
	}
}

// TestFleetApplyVerifiesEveryRegistration: in a fleet, which keeps each
// account's registrations by ids only, a registration changed outside
// the plan fails the account's verification too, named with the names
// the account read back has.
func TestFleetApplyVerifiesEveryRegistration(t *testing.T) {
	t.Parallel()
	state := fleetTestState(t, 2, nil)
	endpoint := alsoUnbindsTrunk(t, state, 100000+3008)
	code, _, stderr := applyRun(t, "", "--credentials", filepath.Join(filepath.Dir(state), sandbox.CredentialsFile), "--endpoint", endpoint,
		"apply", "-f", fleetStopSpecs(t, 2), "--auto-approve", "--accounts-parallelism", "1")
	want := "registration 103008 (trunk1@sip.carrier.example) changed outside the plan: was sales / rule inbound-sales, now (unbound) — by this apply or by someone else at the same time"
	if code != 1 || !strings.Contains(stderr, want) || strings.Count(stderr, "changed outside the plan") != 1 {
		t.Errorf("fleet apply: exit %d; want 1 and one difference, of child 1's trunk:\n%s", code, stderr)
	}
}

// TestApplyVerifyIgnoredOutsideSelection: an ignore entry holds in
// verification also for a registration outside the --only selection:
// others manage it, so its change during the apply is no difference.
func TestApplyVerifyIgnoredOutsideSelection(t *testing.T) {
	t.Parallel()
	dir, state, spec := applyBigSandbox(t, 2)
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().AddDate(0, 0, 30).Format(time.DateOnly)
	ignoring := applyWrite(t, filepath.Join(dir, "ignoring.yaml"), string(data)+
		"ignore:\n  - registration: trunk1@sip.carrier.example\n    reason: the carrier team re-patches it\n    until: "+until+"\n")
	endpoint := alsoUnbindsTrunk(t, state)
	code, _, stderr := applyRun(t, "", "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", endpoint,
		"apply", "-f", ignoring, "--only", "reg=*@bulk.example.com", "--auto-approve", "--parallelism", "1")
	if code != 0 || strings.Contains(stderr, "changed outside the plan") {
		t.Errorf("apply --only with trunk1 ignored: exit %d; want 0 and no difference:\n%s", code, stderr)
	}
	if got, want := lastLine(stderr), "Apply: 2 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 2 verified."; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
}
