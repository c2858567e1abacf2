package reconcile_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// These tests and the benchmark run Apply through the real HTTP client
// against the sandbox, with the sandbox's faults.

const (
	applyBigApp   = 50     // the application of the added registrations
	applyBigUser0 = 50000  // first added user id
	applyBigReg0  = 500000 // first added registration id
)

// applyKey is one RSA key for every test of the file (generating one is slow).
var applyKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// applyBigState is the demo account plus application "bulk" with n users
// and n registrations. bound(i) says which user registration i holds at
// first (-1: none).
func applyBigState(tb testing.TB, n int, bound func(i int) int) *sandbox.State {
	tb.Helper()
	st, err := sandbox.DemoState(&applyKey().PublicKey, "bench-key")
	if err != nil {
		tb.Fatal(err)
	}
	st.Applications = append(st.Applications, sandbox.ApplicationRecord{ID: applyBigApp, Name: "bulk"})
	for i := range n {
		st.Users = append(st.Users, sandbox.UserRecord{ID: int64(applyBigUser0 + i), ApplicationID: applyBigApp, Name: fmt.Sprintf("agent%04d", i)})
		r := sandbox.Registration{ID: int64(applyBigReg0 + i), SIPUsername: fmt.Sprintf("ext%04d", i), Proxy: "bulk.example.com",
			Successful: true, IsPersistent: true}
		if u := bound(i); u >= 0 {
			r.ApplicationID, r.UserID = applyBigApp, int64(applyBigUser0+u)
		}
		st.Registrations = append(st.Registrations, r)
	}
	if err := st.Validate(); err != nil {
		tb.Fatal(err)
	}
	return st
}

// applySandbox serves st with opts over httptest and returns the server
// and a new client for it. In tests (not benchmarks) every client traces
// its requests and the sandbox logs every call, and at the end neither may
// hold a token the server received or the key (leakcheck).
func applySandbox(tb testing.TB, st *sandbox.State, opts sandbox.Options) (*sandbox.Server, func() *voximplant.Client) {
	tb.Helper()
	_, traced := tb.(*testing.T)
	var trace, log leakcheck.Sink
	if traced {
		opts.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := sandbox.New(st, opts)
	var tokens leakcheck.Recorder
	ts := httptest.NewServer(tokens.Wrap(srv))
	tb.Cleanup(func() {
		ts.Close()
		if !traced {
			return
		}
		for what, text := range map[string]string{"client trace": trace.String(), "sandbox log": log.String()} {
			for _, leak := range leakcheck.Find(text, leakcheck.Secrets{Tokens: tokens.Tokens(), Keys: []*rsa.PrivateKey{applyKey()}}) {
				tb.Errorf("%s contains a secret: %s", what, leak)
			}
		}
	})
	return srv, func() *voximplant.Client {
		o := voximplant.Options{
			Endpoint:    ts.URL + "/platform_api/",
			Credentials: voximplant.NewCredentials(sandbox.DemoAccountEmail, sandbox.DemoAccountID, "bench-key", applyKey()),
			Timeout:     5 * time.Second,
		}
		if traced {
			o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		c, err := voximplant.New(o)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
}

// applySnapshot is every registration's binding, by id.
func applySnapshot(st *sandbox.State) map[int64][3]int64 {
	m := make(map[int64][3]int64, len(st.Registrations))
	for _, r := range st.Registrations {
		m[r.ID] = [3]int64{r.ApplicationID, r.RuleID, r.UserID}
	}
	return m
}

// TestApplyConvergesThroughFaults applies a plan of a few hundred changes,
// chains of user moves among them, while the sandbox fails 20 % of the
// requests (HTTP 5xx, connections dropped before and after the write) and
// rate-limits: every step is applied, verification passes, the account is
// exactly the expected one, and no write took effect twice.
func TestApplyConvergesThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a few seconds of retries")
	}
	const n = 300
	// Users move one registration down, in groups of 5: ext0 → agent1,
	// ext1 → agent2, …; the last of each group is unbound, so each group is
	// a chain of 4 steps that must run in order, plus one unbind.
	st := applyBigState(t, n, func(i int) int { return i })
	desired := &spec.Spec{Version: 1}
	for i := range n {
		b := spec.Binding{RegistrationID: int64(applyBigReg0 + i)}
		if i%5 == 4 {
			b.Unbound = true
		} else {
			b.ApplicationID, b.UserID = applyBigApp, int64(applyBigUser0+i+1)
		}
		desired.Bindings = append(desired.Bindings, b)
	}
	// Registrations 250… also take users of the demo application support,
	// displacing the demo's holders: planned side effects.
	for i, u := range []int64{200, 201} {
		desired.Bindings[250+i] = spec.Binding{RegistrationID: int64(applyBigReg0 + 250 + i), ApplicationID: 10, UserID: u}
	}

	srv, client := applySandbox(t, st, sandbox.Options{FailRate: 0.2, Rate: 150, Seed: 7})
	acct := client()
	ctx := context.Background()
	current, err := reconcile.Observe(ctx, acct, desired)
	if err != nil {
		t.Fatalf("observe through faults: %v", err)
	}
	p, err := reconcile.Diff(desired, current, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deps := 0
	for _, s := range p.Changes {
		deps += len(s.DependsOn)
	}
	if len(p.Changes) != n || deps < n/2 || len(p.SideEffects) != 2 {
		t.Fatalf("plan: %d changes, %d dependencies, %d side effects; the test wants %d changes, chains and 2 side effects", len(p.Changes), deps, len(p.SideEffects), n)
	}

	before := applySnapshot(srv.State())
	writes0 := srv.Stats().Writes
	res := reconcile.Apply(ctx, acct, p, reconcile.ApplyOptions{Parallelism: 8})
	if !res.OK() {
		for _, o := range res.Outcomes {
			if o.Status != reconcile.StepApplied {
				t.Errorf("step %d %s: %v %s", o.Step, o.Status, o.Err, o.Why)
			}
		}
		t.Fatalf("apply through faults: %d applied, %d failed, %d skipped", res.Applied, res.Failed, res.Skipped)
	}

	after, err := reconcile.Observe(ctx, acct, desired)
	if err != nil {
		t.Fatal(err)
	}
	if ms := reconcile.Verify(p, after); len(ms) != 0 {
		t.Errorf("verify: %v", ms)
	}
	if again, err := reconcile.Diff(desired, after, reconcile.Options{}); err != nil || !again.Empty() {
		t.Errorf("planning again: %v; want no changes", err)
	}

	// Exactly the planned effects: the steps' targets, the side effects'
	// registrations unbound (docs/management-api.md, choice 2), everything else as it was.
	want := before
	for _, s := range p.Changes {
		var b [3]int64
		if s.After != nil {
			b[0] = s.After.Application.ID
			if s.After.Rule != nil {
				b[1] = s.After.Rule.ID
			}
			if s.After.User != nil {
				b[2] = s.After.User.ID
			}
		}
		want[s.Registration.ID] = b
	}
	for _, e := range p.SideEffects {
		want[e.Registration.ID] = [3]int64{}
	}
	if diff := cmp.Diff(want, applySnapshot(srv.State())); diff != "" {
		t.Errorf("account after apply (-want +got):\n%s", diff)
	}

	// One change of state per step: a write repeated after a lost answer
	// changed nothing the second time.
	stats := srv.Stats()
	if got := stats.Writes - writes0; got != int64(len(p.Changes)) {
		t.Errorf("%d writes changed the state for %d steps", got, len(p.Changes))
	}
	if stats.HTTPErrors == 0 || stats.DroppedBefore == 0 || stats.DroppedAfter == 0 || stats.RateLimited == 0 {
		t.Errorf("the sandbox did not inject every kind of fault: %+v", stats)
	}
	cs := acct.Stats()
	t.Logf("sandbox: %+v; client: %+v", stats, cs)
}

// BenchmarkApply1000 applies 1,000 independent changes against the sandbox
// with 20 ms of latency, without and with the apply journal, as apply
// writes it (each intent written ahead, while the calls before it run,
// and on disk before its call is sent; results; the end synced). Each op
// is one apply of each, one right after the other (in turn which first,
// each after a garbage collection), so that the load of the machine
// weighs on both alike: off-s/op and on-s/op are their wall times,
// journal-% what the journal adds, and wait-ms/op how long, in all, the
// calls of the apply with the journal waited for their intents to reach
// the disk (what the journal puts on the calls' path; the rest of
// journal-% is the machine). Under limit=100 the sandbox
// accepts 100 requests per second and the client is not told: the ideal
// is 10 s (1,000 calls at 100/s), and efficiency = 10 s / wall time with
// the journal; the rate-limit answers (340) received are counted. Under
// limit=none the latency and the parallelism alone bound the apply.
//
//	go test -run '^$' -bench BenchmarkApply1000 -benchtime 3x ./reconcile/
func BenchmarkApply1000(b *testing.B) {
	const n = 1000
	for _, limit := range []float64{100, 0} {
		for _, par := range []int{4, 8, 16} {
			name := fmt.Sprintf("limit=%s/parallelism=%d", map[bool]string{true: "100", false: "none"}[limit > 0], par)
			b.Run(name, func(b *testing.B) { benchmarkApply(b, n, limit, par) })
		}
	}
}

func benchmarkApply(b *testing.B, n int, limit float64, par int) {
	var rateLimited, requests int64
	var wall [2]time.Duration // without, with the journal
	var waited time.Duration
	for run := range b.N {
		for _, journal := range []bool{run%2 == 1, run%2 == 0} {
			d, w, stats := benchmarkApplyOnce(b, n, limit, par, journal, run)
			if journal {
				wall[1] += d
				waited += w
			} else {
				wall[0] += d
			}
			rateLimited += stats.RateLimited
			requests += stats.Requests
		}
	}
	runs := time.Duration(b.N)
	off, on := wall[0]/runs, wall[1]/runs
	b.ReportMetric(off.Seconds(), "off-s/op")
	b.ReportMetric(on.Seconds(), "on-s/op")
	b.ReportMetric(100*(on.Seconds()-off.Seconds())/off.Seconds(), "journal-%")
	b.ReportMetric(float64((waited/runs).Microseconds())/1000, "wait-ms/op")
	if limit > 0 {
		b.ReportMetric(float64(n)/limit/on.Seconds(), "efficiency")
	}
	b.ReportMetric(float64(rateLimited)/float64(2*b.N), "340s/apply")
	b.ReportMetric(float64(requests)/float64(2*b.N), "requests/apply")
}

// benchmarkApplyOnce makes a fresh sandbox and plan, and times one apply
// of it, with or without the journal; with it, it also says how long the
// calls waited for the journal in all.
func benchmarkApplyOnce(b *testing.B, n int, limit float64, par int, journal bool, run int) (wall, waited time.Duration, _ voximplant.Stats) {
	b.StopTimer()
	st := applyBigState(b, n, func(int) int { return -1 })
	desired := &spec.Spec{Version: 1}
	for i := range n {
		desired.Bindings = append(desired.Bindings, spec.Binding{RegistrationID: int64(applyBigReg0 + i), ApplicationID: applyBigApp, UserID: int64(applyBigUser0 + i)})
	}
	_, client := applySandbox(b, st, sandbox.Options{Latency: 20 * time.Millisecond, Rate: limit})
	current, err := reconcile.Observe(context.Background(), client(), desired)
	if err != nil {
		b.Fatal(err)
	}
	p, err := reconcile.Diff(desired, current, reconcile.Options{})
	if err != nil || len(p.Changes) != n {
		b.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	time.Sleep(time.Second) // let the server's bucket refill after the reads
	acct := client()        // a fresh client: its limiter knows nothing
	path := filepath.Join(b.TempDir(), fmt.Sprintf("%d.jsonl", run))
	runtime.GC() // the garbage of the setup, and of the apply before, is not this apply's
	b.StartTimer()

	start := time.Now()
	opts := reconcile.ApplyOptions{Parallelism: par}
	var j *reconcile.Journal
	if journal {
		if j, err = reconcile.CreateJournal(path); err != nil {
			b.Fatal(err)
		}
		if err := j.Start(p, current, "bench", start); err != nil {
			b.Fatal(err)
		}
		j.Hook(&opts)
		var mu sync.Mutex
		opts.BeforeCall = func(s reconcile.Step) error {
			t := time.Now()
			err := j.Intent(s)
			mu.Lock()
			waited += time.Since(t)
			mu.Unlock()
			return err
		}
	}
	res := reconcile.Apply(context.Background(), acct, p, opts)
	if journal {
		if err := j.End(&res, nil, time.Now()); err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	wall = time.Since(start)

	b.StopTimer()
	if !res.OK() {
		b.Fatalf("apply: %d applied, %d failed", res.Applied, res.Failed)
	}
	return wall, waited, acct.Stats()
}
