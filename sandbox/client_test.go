package sandbox_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// These tests run the real voximplant client against the sandbox: the HTTP
// path voxbind uses, faults included.

var clientKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// serve starts the demo account with extra unbound registrations behind an
// httptest server and returns it with a client for it. The client traces
// every request and the sandbox logs every call; at the end of the test
// neither may hold a token the server received or the key (leakcheck).
func serve(t *testing.T, extra int, opts sandbox.Options) (*sandbox.Server, *voximplant.Client) {
	t.Helper()
	key := clientKey()
	st, err := sandbox.DemoState(&key.PublicKey, "client-test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range extra {
		st.Registrations = append(st.Registrations, sandbox.Registration{
			ID: int64(20000 + i), SIPUsername: fmt.Sprintf("ext%04d", i), Proxy: "bulk.example.com",
		})
	}
	var trace, log leakcheck.Sink
	opts.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := sandbox.New(st, opts)
	var tokens leakcheck.Recorder
	ts := httptest.NewServer(tokens.Wrap(srv))
	t.Cleanup(func() {
		ts.Close()
		for what, text := range map[string]string{"client trace": trace.String(), "sandbox log": log.String()} {
			for _, leak := range leakcheck.Find(text, leakcheck.Secrets{Tokens: tokens.Tokens(), Keys: []*rsa.PrivateKey{key}}) {
				t.Errorf("%s contains a secret: %s", what, leak)
			}
		}
		if len(tokens.Tokens()) == 0 || !strings.Contains(trace.String(), `msg="api request"`) || !strings.Contains(log.String(), `msg="sandbox request"`) {
			t.Errorf("nothing traced or logged: the secrets check checked nothing")
		}
	})
	client, err := voximplant.New(voximplant.Options{
		Endpoint:    ts.URL + "/platform_api/",
		Credentials: voximplant.NewCredentials(st.Account.Email, st.Account.ID, "client-test", key),
		Logger:      slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

func targetOf(app int64, rule, user int64) *reconcile.Target {
	t := &reconcile.Target{Application: reconcile.Ref{ID: app}}
	if rule != 0 {
		t.Rule = &reconcile.Ref{ID: rule}
	}
	if user != 0 {
		t.User = &reconcile.Ref{ID: user}
	}
	return t
}

// targets maps registration ids to targets as ids only.
func targets(t *testing.T, c *voximplant.Client) map[int64]string {
	t.Helper()
	regs, err := c.Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, r := range regs {
		out[r.ID] = show(r.Target)
	}
	return out
}

func show(t *reconcile.Target) string {
	if t == nil {
		return "-"
	}
	s := fmt.Sprint(t.Application.ID)
	if t.Rule != nil {
		s += fmt.Sprintf("/rule %d", t.Rule.ID)
	}
	if t.User != nil {
		s += fmt.Sprintf("/user %d", t.User.ID)
	}
	return s
}

func TestClientReadsEverything(t *testing.T) {
	ctx := context.Background()
	_, c := serve(t, 2500, sandbox.Options{})

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info != (reconcile.AccountInfo{ID: sandbox.DemoAccountID, Name: sandbox.DemoAccountName}) {
		t.Errorf("info = %+v", info)
	}

	regs, err := c.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2512 {
		t.Fatalf("%d registrations read through pages, want 2512", len(regs))
	}
	ids := map[int64]bool{}
	for _, r := range regs {
		ids[r.ID] = true
	}
	if len(ids) != 2512 {
		t.Errorf("%d distinct registrations, want 2512", len(ids))
	}
	i := slices.IndexFunc(regs, func(r reconcile.Registration) bool { return r.ID == 3001 })
	want := reconcile.Registration{
		RegistrationRef: reconcile.RegistrationRef{ID: 3001, SIPUsername: "alice", Proxy: "pbx.example.com"},
		Target: &reconcile.Target{
			Application: reconcile.Ref{ID: 10, Name: "support.demo.voximplant.com"},
			User:        &reconcile.Ref{ID: 200, Name: "alice"},
		},
	}
	if diff := cmp.Diff(want, regs[i]); diff != "" {
		t.Errorf("registration 3001 (-want +got):\n%s", diff)
	}
	old := regs[slices.IndexFunc(regs, func(r reconcile.Registration) bool { return r.ID == 3012 })]
	if !old.Deactivated || old.Target == nil || old.Target.Rule == nil || old.Target.Rule.Name != "inbound-sales" {
		t.Errorf("frozen registration read as %+v", old)
	}

	apps, err := c.Applications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantApps := []reconcile.Application{
		{ID: 10, Name: "support.demo.voximplant.com"},
		{ID: 11, Name: "sales.demo.voximplant.com"},
		{ID: 12, Name: "fax.demo.voximplant.com"},
	}
	if diff := cmp.Diff(wantApps, apps); diff != "" {
		t.Errorf("applications (-want +got):\n%s", diff)
	}
	rules, err := c.Rules(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]reconcile.Rule{{ID: 100, ApplicationID: 10, Name: "inbound-main"}, {ID: 101, ApplicationID: 10, Name: "after-hours"}}, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	users, err := c.Users(ctx, 11)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]reconcile.User{{ID: 203, ApplicationID: 11, Name: "dave"}, {ID: 204, ApplicationID: 11, Name: "erin"}}, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
}

func TestClientBinds(t *testing.T) {
	ctx := context.Background()
	_, c := serve(t, 0, sandbox.Options{})
	before := targets(t, c)

	steps := []struct {
		reg    int64
		target *reconcile.Target
	}{
		{3003, targetOf(10, 0, 202)}, // bind carol's registration to carol
		{3005, targetOf(11, 0, 203)}, // displaces dave's registration 3004
		{3006, targetOf(10, 101, 0)}, // rebind to another rule
		{3007, nil},                  // unbind
		{3009, nil},                  // unbind an unbound one: no change
	}
	for _, s := range steps {
		if err := c.Bind(ctx, s.reg, s.target); err != nil {
			t.Fatalf("bind %d: %v", s.reg, err)
		}
	}
	want := before
	want[3003], want[3005], want[3004], want[3006], want[3007] = "10/user 202", "11/user 203", "-", "10/rule 101", "-"
	if diff := cmp.Diff(want, targets(t, c)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

func TestClientSeesAPIErrors(t *testing.T) {
	ctx := context.Background()
	_, c := serve(t, 0, sandbox.Options{})
	tests := []struct {
		name   string
		reg    int64
		target *reconcile.Target
		code   int
	}{
		{"unknown registration", 9999, targetOf(10, 0, 0), 275},
		{"unknown application", 3003, targetOf(99, 0, 0), 116},
		{"rule of another application", 3003, targetOf(10, 102, 0), 147},
		{"unknown user", 3003, targetOf(10, 0, 999), 117},
		{"user of another application", 3003, targetOf(10, 0, 203), 393},
		{"frozen registration", 3012, nil, 496},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Bind(ctx, tt.reg, tt.target)
			var apiErr *voximplant.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("Bind = %v, want a *voximplant.APIError", err)
			}
			if apiErr.Code != tt.code || apiErr.Method != "BindSipRegistration" || apiErr.Msg == "" {
				t.Errorf("api error %+v, want code %d", apiErr, tt.code)
			}
		})
	}
	if _, err := c.Rules(ctx, 99); err == nil {
		t.Error("rules of an unknown application read without error")
	}
}

// TestClientConvergesThroughFailures: with a third of the requests failing
// (5xx, drops before and after writes), every read and write still ends as
// it should, and the faults really happened.
func TestClientConvergesThroughFailures(t *testing.T) {
	ctx := context.Background()
	srv, c := serve(t, 1500, sandbox.Options{FailRate: 0.3, Seed: 1})
	regs, err := c.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 1512 {
		t.Fatalf("%d registrations, want 1512", len(regs))
	}
	// Move five users around, twice: every call must end applied.
	for round := range 2 {
		for i, user := range []int64{200, 201, 202, 203, 204} {
			app := int64(10)
			if user >= 203 {
				app = 11
			}
			reg := int64(20000 + i + 5*round)
			if err := c.Bind(ctx, reg, targetOf(app, 0, user)); err != nil {
				t.Fatalf("bind %d to user %d: %v", reg, user, err)
			}
		}
	}
	st := srv.State()
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Registrations {
		if r.UserID != 0 && (r.ID < 20005 || r.ID > 20009) {
			t.Errorf("registration %d still holds user %d", r.ID, r.UserID)
		}
	}
	s := srv.Stats()
	if s.HTTPErrors == 0 || s.DroppedBefore+s.DroppedAfter == 0 {
		t.Errorf("no faults were injected: %+v", s)
	}
	if cs := c.Stats(); cs.Retries == 0 {
		t.Errorf("the client never retried: %+v", cs)
	}
}

// TestClientConvergesUnderRateLimit: a client without a ceiling meets the
// server's limit (error 340), slows down and gets every answer.
func TestClientConvergesUnderRateLimit(t *testing.T) {
	ctx := context.Background()
	srv, c := serve(t, 0, sandbox.Options{Rate: 10})
	var wg sync.WaitGroup
	errs := make(chan error, 25)
	for range 25 {
		wg.Go(func() {
			if _, err := c.Info(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := srv.Stats(); s.RateLimited == 0 {
		t.Errorf("the server never limited: %+v", s)
	}
	if cs := c.Stats(); cs.RateLimited == 0 || cs.Calls != 25 {
		t.Errorf("client stats %+v: want 25 calls and some rate-limit answers", cs)
	}
}

// TestClientCorrectsClockSkew: against a server whose clock is minutes
// off, the client's first token may be refused (455, or 456 when the
// server is over an hour ahead); it takes the server's time from that
// answer's Date header, retries once with a token on the server's time,
// and every later call goes through at once. --debug says so.
func TestClientCorrectsClockSkew(t *testing.T) {
	for _, tt := range []struct {
		skew      time.Duration
		refused   bool // the first token is refused
		debugWord string
	}{
		{-5 * time.Minute, true, "ahead of"},
		{-90 * time.Minute, true, "ahead of"},
		{5 * time.Minute, false, "behind"}, // an hour-long token is still valid on the server's clock
		{90 * time.Minute, true, "behind"},
		{20 * time.Second, false, "behind"}, // accepted, but corrected from the Date header
		{2 * time.Second, false, ""},        // within tolerance: nothing to correct
	} {
		t.Run(tt.skew.String(), func(t *testing.T) {
			key := clientKey()
			st, err := sandbox.DemoState(&key.PublicKey, "client-test")
			if err != nil {
				t.Fatal(err)
			}
			srv := sandbox.New(st, sandbox.Options{ClockSkew: tt.skew})
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			var debug strings.Builder
			c, err := voximplant.New(voximplant.Options{
				Endpoint:    ts.URL + "/platform_api/",
				Credentials: voximplant.NewCredentials(st.Account.Email, st.Account.ID, "client-test", key),
				Logger:      slog.New(slog.NewTextHandler(&debug, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.Info(ctx); err != nil {
				t.Fatalf("first call: %v\n%s", err, debug.String())
			}
			wantRequests := int64(1)
			if tt.refused {
				wantRequests = 2
			}
			if got := c.Stats().Requests; got != wantRequests {
				t.Errorf("first call took %d requests, want %d\n%s", got, wantRequests, debug.String())
			}
			if tt.debugWord == "" {
				if c.ClockOffset() != 0 || strings.Contains(debug.String(), "clock") {
					t.Errorf("corrected a %v skew: offset %v\n%s", tt.skew, c.ClockOffset(), debug.String())
				}
			} else {
				if off := c.ClockOffset(); off < tt.skew-2*time.Second || off > tt.skew+2*time.Second {
					t.Errorf("clock offset %v, want about %v", off, tt.skew)
				}
				if !strings.Contains(debug.String(), "clock is") || !strings.Contains(debug.String(), tt.debugWord) {
					t.Errorf("--debug does not say the clock is %s the server's:\n%s", tt.debugWord, debug.String())
				}
			}
			// Reads and a write now go through without refusals.
			if err := c.Bind(ctx, 3003, targetOf(10, 0, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Registrations(ctx); err != nil {
				t.Fatal(err)
			}
			if s := srv.Stats(); s.APIErrors > wantRequests-1 {
				t.Errorf("%d API errors, want %d", s.APIErrors, wantRequests-1)
			}
		})
	}
}

// childrenServer serves a demo parent with three children, the second
// frozen and the third inactive, and returns the key that signs for the
// parent.
func childrenServer(t *testing.T) (*rsa.PrivateKey, *sandbox.State, *httptest.Server) {
	t.Helper()
	key := clientKey()
	st, err := sandbox.DemoState(&key.PublicKey, "client-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sandbox.AddDemoChildren(st, 3); err != nil {
		t.Fatal(err)
	}
	inactive := false
	st.Children[1].Account.Frozen = true
	st.Children[2].Account.Active = &inactive
	ts := httptest.NewServer(sandbox.New(st, sandbox.Options{}))
	t.Cleanup(ts.Close)
	return key, st, ts
}

// TestClientChildrenAccounts lists the child accounts through the real
// client, frozen and inactive ones included and marked so, in id order.
func TestClientChildrenAccounts(t *testing.T) {
	key, st, ts := childrenServer(t)
	client, err := voximplant.New(voximplant.Options{
		Endpoint:    ts.URL + "/platform_api/",
		Credentials: voximplant.NewCredentials(st.Account.Email, st.Account.ID, "client-test", key),
	})
	if err != nil {
		t.Fatal(err)
	}
	children, err := client.GetChildrenAccounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range children {
		ok, why := c.Usable()
		got = append(got, fmt.Sprintf("%d %s %v %s", c.AccountID, c.AccountName, ok, why))
	}
	want := []string{"1000002 demo-child1 true ", "1000003 demo-child2 false frozen", "1000004 demo-child3 false inactive"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("children (-want +got):\n%s", diff)
	}
}

// TestClientAccountInfoState: GetAccountInfo answers, as the API does,
// whether the account acted on is active and frozen, for the parent and
// for each child; the client reads that into the account's state.
func TestClientAccountInfoState(t *testing.T) {
	key, st, ts := childrenServer(t)
	var got []string
	for _, id := range []int64{st.Account.ID, 1000002, 1000003, 1000004} {
		client, err := voximplant.New(voximplant.Options{
			Endpoint:    ts.URL + "/platform_api/",
			Credentials: voximplant.NewCredentials(st.Account.Email, st.Account.ID, "client-test", key),
			AccountID:   id,
		})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := client.GetAccountInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if raw.Active == nil || raw.Frozen == nil {
			t.Errorf("account %d: GetAccountInfo leaves out active or frozen: %+v", id, raw)
		}
		info, err := client.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %q", info.ID, info.State))
	}
	want := []string{`1000001 ""`, `1000002 ""`, `1000003 "frozen"`, `1000004 "inactive"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}
