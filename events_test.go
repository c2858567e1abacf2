package main

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
)

// TestApplyEvents parses a whole apply -o json against a server whose
// first write fails with HTTP 503 and whose second is answered "rate limit
// exceeded" (API error 340): stdout is JSON Lines, the plan first, a start
// and a result per step (the start first), a retry and a rate_limit line
// as they happen, the summary last with the counts of the results; stderr
// keeps the lines for people.
func TestApplyEvents(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var writes atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") {
			switch writes.Add(1) {
			case 1:
				http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
				return
			case 2:
				w.Write([]byte(`{"error":{"code":340,"msg":"Rate limit exceeded, repeat after 0 seconds"}}`))
				return
			}
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()

	code, stdout, stderr := applyRun(t, "", "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", ts.URL+"/platform_api/",
		"apply", "-f", spec, "--auto-approve", "--parallelism", "1", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	lines := jsonLines(t, stdout)
	if len(lines) < 2 || lines[0]["kind"] != "plan" || lines[len(lines)-1]["kind"] != "summary" {
		t.Fatalf("want the plan first and the summary last:\n%s", stdout)
	}
	if changes := lines[0]["changes"].([]any); len(changes) != 3 || lines[0]["format_version"] != 1.0 {
		t.Errorf("plan line: %v", lines[0])
	}
	started := map[float64]bool{}
	results := map[string]int{}
	kinds := map[string]int{}
	for i, l := range lines {
		kind, _ := l["kind"].(string)
		kinds[kind]++
		if i > 0 {
			if ts, ok := l["time"].(string); !ok || !validTime(ts) {
				t.Errorf("line %d: time %v", i+1, l["time"])
			}
		}
		switch kind {
		case "step_start":
			started[l["step"].(float64)] = true
			if l["registration"].(map[string]any)["id"] == nil || l["action"] == nil {
				t.Errorf("step_start without its registration or action: %v", l)
			}
		case "step_result":
			if !started[l["step"].(float64)] {
				t.Errorf("step %v ended before it started", l["step"])
			}
			results[l["outcome"].(string)]++
		case "retry", "rate_limit":
			if l["method"] != "BindSipRegistration" || l["attempt"] == nil || l["wait_seconds"] == nil {
				t.Errorf("%s line: %v", kind, l)
			}
		case "plan", "summary":
		default:
			t.Errorf("line %d: unknown kind %q", i+1, kind)
		}
	}
	if kinds["step_start"] != 3 || kinds["step_result"] != 3 || kinds["retry"] != 1 || kinds["rate_limit"] != 1 || kinds["plan"] != 1 || kinds["summary"] != 1 {
		t.Errorf("kinds %v; want 3 starts, 3 results, 1 retry, 1 rate_limit, 1 plan, 1 summary:\n%s", kinds, stdout)
	}
	sum := lines[len(lines)-1]
	for k, want := range map[string]any{"applied": float64(results["applied"]), "failed": 0.0, "skipped": 0.0, "not_started": 0.0,
		"unknown": 0.0, "verified": 3.0, "stopped": nil, "exit_code": 0.0} {
		if sum[k] != want {
			t.Errorf("summary %s = %v, want %v", k, sum[k], want)
		}
	}
	if results["applied"] != 3 || len(sum["differences"].([]any)) != 0 || len(sum["diagnostics"].([]any)) != 0 {
		t.Errorf("results %v, summary %v", results, sum)
	}
	for _, want := range []string{"Applying 3 changes to account 1000001.", "Apply: 3 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 3 verified."} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestApplyStepStartBeforeTheAnswer: a step's step_start is written as
// its call is sent, not when its answer comes: the server holds the
// answer of the one write until step_start is on stdout (or 15 s).
func TestApplyStepStartBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	dir, state, spec := applyBigSandbox(t, 1)
	sb, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	stdout := &stepStartSeen{seen: make(chan struct{})}
	var late atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") {
			select {
			case <-stdout.seen:
			case <-time.After(15 * time.Second):
				late.Store(true)
			}
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var stderr bytes.Buffer
	code := run([]string{"--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", srv.URL + "/platform_api/",
		"apply", "-f", spec, "--auto-approve", "--no-journal", "-o", "json"}, &Stdio{In: strings.NewReader(""), Out: stdout, Err: &stderr})
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, stderr.String())
	}
	if late.Load() {
		t.Errorf("no step_start on stdout while the server held the call's answer 15 s:\n%s", stdout.text())
	}
}

// stepStartSeen is a stdout that closes seen once a step_start line is
// written to it.
type stepStartSeen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	once sync.Once
}

func (w *stepStartSeen) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte(`"kind":"step_start"`)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *stepStartSeen) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestApplyEventsOnlyForCallsSent interrupts an apply whose calls wait
// their turn under --rate 2, once the first call reached a server that
// holds it until the interrupt is seen: the steps still waiting were
// never sent, so they have no step_start (nor a step_result: the summary
// counts them not started); every step_start is a call the server
// received, and has its step_result.
func TestApplyEventsOnlyForCallsSent(t *testing.T) {
	bin := applyBinary(t)
	t.Parallel()
	dir, state, spec := applyBigSandbox(t, 4)
	planFile := applySavePlan(t, state, spec)
	sb, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	var writes atomic.Int32
	first, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && writes.Add(1) == 1 {
			close(first)
			<-release
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var stdout bytes.Buffer
	apply, lines, wait := applyStartOut(t, bin, &stdout, "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", srv.URL+"/platform_api/",
		"apply", "--plan", planFile, "--parallelism", "4", "--rate", "2", "--no-journal", "-o", "json")
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("no write reached the server within 30 s")
	}
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "Interrupted: waiting for ")
	close(release)
	code, stderr := wait()
	if code != 130 {
		t.Fatalf("exit %d, want 130:\n%s", code, stderr)
	}
	received := int(writes.Load())
	started, results := map[float64]bool{}, map[float64]string{}
	var sum map[string]any
	for _, l := range jsonLines(t, stdout.String()) {
		switch l["kind"] {
		case "step_start":
			started[l["step"].(float64)] = true
		case "step_result":
			results[l["step"].(float64)] = l["outcome"].(string)
		case "summary":
			sum = l
		}
	}
	if len(started) != received {
		t.Errorf("%d step_start lines, but the server received %d calls:\n%s", len(started), received, stdout.String())
	}
	for step := range started {
		if results[step] != "applied" {
			t.Errorf("step %v started, its result %q; want applied", step, results[step])
		}
	}
	for step := range results {
		if !started[step] {
			t.Errorf("step %v has a step_result but no step_start", step)
		}
	}
	if sum == nil || sum["not_started"] != float64(4-received) || sum["applied"] != float64(received) {
		t.Errorf("summary %v; want %d not started, %d applied", sum, 4-received, received)
	}
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// TestApplyEventsFailedStep: a step the API refuses ends failed with the
// API's code and message, its dependent is skipped naming it, and the
// summary counts both and exits 1 with the reason as a diagnostic.
func TestApplyEventsFailedStep(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && r.Form.Get("sip_registration_id") == "3001" {
			w.Write([]byte(`{"error":{"code":117,"msg":"Invalid user_id"}}`))
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	code, stdout, stderr := applyRun(t, "", "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", ts.URL+"/platform_api/",
		"apply", "-f", spec, "--auto-approve", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	lines := jsonLines(t, stdout)
	var failed, skipped map[string]any
	for _, l := range lines {
		switch l["outcome"] {
		case "failed":
			failed = l
		case "skipped":
			skipped = l
		}
	}
	if failed == nil || skipped == nil {
		t.Fatalf("no failed and skipped results:\n%s", stdout)
	}
	if e := failed["error"].(map[string]any); e["code"] != 117.0 || !strings.Contains(e["message"].(string), "Invalid user_id") {
		t.Errorf("failed step's error: %v", e)
	}
	if skipped["caused_by"] != failed["step"] || !strings.Contains(skipped["reason"].(string), "failed") {
		t.Errorf("skipped step: %v", skipped)
	}
	sum := lines[len(lines)-1]
	if sum["kind"] != "summary" || sum["failed"] != 1.0 || sum["skipped"] != 1.0 || sum["applied"] != 1.0 || sum["exit_code"] != 1.0 {
		t.Errorf("summary: %v", sum)
	}
	diags := sum["diagnostics"].([]any)
	if len(diags) != 1 || diags[0].(map[string]any)["code"] != codeApplyFailed ||
		!strings.HasPrefix(diags[0].(map[string]any)["message"].(string), "Apply: 1 applied, 1 failed, 1 skipped") {
		t.Errorf("summary diagnostics: %v", diags)
	}
}

// TestUndoEvents: undo -o json writes the same JSON Lines as apply, and
// apply's summary names its journal, whose intents are the steps the
// events started.
func TestUndoEvents(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	journal := filepath.Join(t.TempDir(), "j.jsonl")
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--journal", journal, "-o", "json")
	if code != 0 {
		t.Fatalf("apply: exit %d:\n%s", code, stderr)
	}
	lines := jsonLines(t, stdout)
	if sum := lines[len(lines)-1]; sum["kind"] != "summary" || sum["journal"] != journal {
		t.Errorf("apply summary: %v; want the journal %s", sum, journal)
	}
	started := 0
	for _, l := range lines {
		if l["kind"] == "step_start" {
			started++
		}
	}
	if intents := strings.Count(applyRead(t, journal), `"kind":"intent"`); intents != started || started != 3 {
		t.Errorf("%d step_start events, %d intents in the journal; want 3 each", started, intents)
	}

	code, stdout, stderr = applyRun(t, "", "--sandbox", state, "undo", journal, "--auto-approve", "--no-journal", "-o", "json")
	if code != 0 {
		t.Fatalf("undo: exit %d:\n%s", code, stderr)
	}
	lines = jsonLines(t, stdout)
	first, last := lines[0], lines[len(lines)-1]
	if first["kind"] != "plan" || first["journal"] != journal || len(first["changes"].([]any)) != 3 {
		t.Errorf("undo's first line: %v", first)
	}
	if last["kind"] != "summary" || last["applied"] != 3.0 || last["verified"] != 3.0 || last["exit_code"] != 0.0 || last["journal"] != "" {
		t.Errorf("undo's summary: %v", last)
	}
	if !strings.Contains(stderr, "records an apply of 3 steps to account 1000001") {
		t.Errorf("undo's stderr does not describe the journal:\n%s", stderr)
	}
}

// TestFleetApplyEvents parses a whole fleet apply -o json, one account of
// which cannot be planned (a user its application does not have) and one
// of whose writes is answered "rate limit exceeded": a plan line per
// account planned, in account-id order; a refused line for the failing
// account with its spec problem; every step, retry and account summary
// naming its account; and the fleet_summary last, counting the accounts
// as the text's last line does. The undo of that apply, from the
// journals the summaries name, is a fleet run with the same lines.
func TestFleetApplyEvents(t *testing.T) {
	state := fleetTestState(t, 3, nil)
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	applyWrite(t, filepath.Join(dir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: fax\n  - registration: conf@pbx.example.com\n    unbound: true\n")
	bad := applyWrite(t, filepath.Join(dir, "c.yaml"), "version: 1\naccount_id: 1000004\nbindings:\n  - registration: carol@pbx.example.com\n    application: support\n    user: nobody\n")
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var writes atomic.Int32
	var refuse atomic.Bool // refuse every write's key
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && refuse.Load() {
			w.Write([]byte(`{"error":{"code":433,"msg":"invalid key id"}}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && writes.Add(1) == 1 {
			w.Write([]byte(`{"error":{"code":340,"msg":"Rate limit exceeded, repeat after 0 seconds"}}`))
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	creds := filepath.Join(filepath.Dir(state), sandbox.CredentialsFile)

	code, stdout, stderr := applyRun(t, "", "--credentials", creds, "--endpoint", ts.URL+"/platform_api/",
		"apply", "-f", dir, "--auto-approve", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one account failed):\n%s", code, stderr)
	}
	lines := jsonLines(t, stdout)
	fleetEvents(t, lines, map[int64]int{1000002: 1, 1000003: 2})
	if kinds := eventKinds(lines); kinds["refused"] != 1 || kinds["rate_limit"] != 1 {
		t.Errorf("kinds %v; want 1 refused and 1 rate_limit:\n%s", kinds, stdout)
	}
	var journals []string
	for _, l := range lines {
		switch l["kind"] {
		case "refused":
			d := l["diagnostics"].([]any)[0].(map[string]any)
			if l["account_id"] != 1000004.0 || l["account_name"] != "demo-child3" || !strings.HasPrefix(l["reason"].(string), "not planned") ||
				d["code"] != "unknown-user" || d["file"] != bad || d["line"] != 6.0 {
				t.Errorf("refused line: %v", l)
			}
		case "rate_limit":
			if id := l["account_id"]; id != 1000002.0 && id != 1000003.0 {
				t.Errorf("rate_limit line names account %v: %v", id, l)
			}
		case "summary":
			journals = append(journals, l["journal"].(string))
		}
	}
	sum := lines[len(lines)-1]
	for k, want := range map[string]any{"accounts": 3.0, "applied": 2.0, "without_changes": 0.0, "failed": 0.0, "stopped": 0.0,
		"refused": 1.0, "not_started": 0.0, "stopped_by": nil, "exit_code": 1.0} {
		if sum[k] != want {
			t.Errorf("fleet_summary %s = %v, want %v", k, sum[k], want)
		}
	}
	var codes []string
	for _, d := range sum["diagnostics"].([]any) {
		codes = append(codes, d.(map[string]any)["code"].(string))
	}
	if !slices.Contains(codes, "unknown-user") || !slices.Contains(codes, codeFleetFailed) {
		t.Errorf("fleet_summary diagnostics have codes %v; want unknown-user and %s", codes, codeFleetFailed)
	}
	if !strings.Contains(stderr, "Fleet apply: 3 accounts: 2 applied, 0 without changes, 0 failed, 0 stopped, 1 refused, 0 not started.") {
		t.Errorf("stderr lacks the fleet's line:\n%s", stderr)
	}

	undo := append([]string{"--credentials", creds, "--endpoint", ts.URL + "/platform_api/", "undo", "--auto-approve", "--no-journal", "-o", "json"}, journals...)
	// An undo that fails says to run that undo again, not plan, which
	// takes a spec.
	refuse.Store(true)
	code, stdout, stderr = applyRun(t, "", undo...)
	if code != 1 {
		t.Fatalf("undo, key refused: exit %d, want 1:\n%s", code, stderr)
	}
	lines = jsonLines(t, stdout)
	// The command lists the journals in account order (each journal's
	// name starts with its account's id), whatever order they were given
	// in: the summaries above come in the order the accounts ended.
	again := "voxbind undo"
	for _, j := range slices.SortedFunc(slices.Values(journals), func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) }) {
		again += " " + reconcile.ShellQuote(j)
	}
	again += pastedFlags([]string{"--credentials", creds, "--endpoint", ts.URL + "/platform_api/"})
	wantFix := "see each account's summary above; run " + again + " again: the undo restores only what is left"
	var fixes []string
	for _, d := range lines[len(lines)-1]["diagnostics"].([]any) {
		if d := d.(map[string]any); d["code"] == codeFleetFailed {
			fixes = append(fixes, d["fix"].(string))
		}
	}
	if len(fixes) != 1 || fixes[0] != wantFix {
		t.Errorf("undo's fleet_summary fixes %q, want %q", fixes, wantFix)
	}
	refuse.Store(false)
	code, stdout, stderr = applyRun(t, "", undo...)
	if code != 0 {
		t.Fatalf("undo: exit %d:\n%s", code, stderr)
	}
	lines = jsonLines(t, stdout)
	fleetEvents(t, lines, map[int64]int{1000002: 1, 1000003: 2})
	if sum := lines[len(lines)-1]; sum["applied"] != 2.0 || sum["exit_code"] != 0.0 {
		t.Errorf("undo's fleet_summary: %v", sum)
	}
}

// fleetEvents checks the JSON Lines of a fleet apply of the accounts
// changes names (with their number of changes): a plan line per account
// first, in account-id order; a start and a result per step, the start
// first, and one summary per account, after its steps, each naming its
// account; the fleet_summary last.
func fleetEvents(t *testing.T, lines []map[string]any, changes map[int64]int) {
	t.Helper()
	if len(lines) == 0 || lines[len(lines)-1]["kind"] != "fleet_summary" {
		t.Fatalf("the last line is not the fleet_summary: %v", lines)
	}
	ids := slices.Sorted(maps.Keys(changes))
	for i, id := range ids {
		if l := lines[i]; l["kind"] != "plan" || l["account_id"] != float64(id) || l["account_name"] == "" ||
			len(l["changes"].([]any)) != changes[id] {
			t.Errorf("line %d: %v; want the plan of account %d", i+1, l, id)
		}
	}
	type step struct {
		account int64
		step    float64
	}
	started, ended := map[step]bool{}, map[int64]int{}
	summaries := map[int64]bool{}
	for i, l := range lines {
		id := int64(0)
		if v, ok := l["account_id"].(float64); ok {
			id = int64(v)
		}
		switch l["kind"] {
		case "step_start":
			started[step{id, l["step"].(float64)}] = true
		case "step_result":
			if !started[step{id, l["step"].(float64)}] {
				t.Errorf("line %d: step %v of account %d ended before it started", i+1, l["step"], id)
			}
			ended[id]++
		case "summary":
			if ended[id] != changes[id] || summaries[id] {
				t.Errorf("line %d: summary of account %d after %d of its %d steps (or a second one)", i+1, id, ended[id], changes[id])
			}
			summaries[id] = true
			if l["applied"] != float64(changes[id]) || l["exit_code"] != 0.0 {
				t.Errorf("line %d: summary %v", i+1, l)
			}
		case "plan", "refused", "retry", "rate_limit", "fleet_summary":
		default:
			t.Errorf("line %d: unknown kind %v", i+1, l["kind"])
		}
		if kind := l["kind"]; kind != "fleet_summary" && kind != "plan" {
			if _, ok := changes[id]; !ok && kind != "refused" {
				t.Errorf("line %d names account %v, not one applied: %v", i+1, l["account_id"], l)
			}
		}
	}
	if len(summaries) != len(changes) {
		t.Errorf("summaries of %d accounts, want %d", len(summaries), len(changes))
	}
}

// eventKinds counts the lines of each kind.
func eventKinds(lines []map[string]any) map[string]int {
	kinds := map[string]int{}
	for _, l := range lines {
		kinds[l["kind"].(string)]++
	}
	return kinds
}
