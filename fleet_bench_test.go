package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voxbind/voxbind/sandbox"
)

// fleetBench is the fleet of BenchmarkFleetApply: a parent with children
// child accounts, each with one application "support" (id 10) and
// changes users and unbound registrations, and a spec file per child that
// binds each registration to its own user.
type fleetBench struct {
	state     *sandbox.State
	creds     string // the key file
	specDir   string
	children  int
	perChild  int
	firstUser int64
}

func newFleetBench(b *testing.B, children, perChild int) *fleetBench {
	b.Helper()
	dir := b.TempDir()
	if err := sandbox.Init(filepath.Join(dir, "sb"), 0); err != nil {
		b.Fatal(err)
	}
	st, err := sandbox.Load(filepath.Join(dir, "sb", sandbox.StateFile))
	if err != nil {
		b.Fatal(err)
	}
	fb := &fleetBench{state: st, creds: filepath.Join(dir, "sb", sandbox.CredentialsFile), specDir: filepath.Join(dir, "fleet"),
		children: children, perChild: perChild, firstUser: 200}
	if err := os.MkdirAll(fb.specDir, 0o755); err != nil {
		b.Fatal(err)
	}
	for k := range children {
		id := int64(sandbox.DemoAccountID + 1 + k)
		name := fmt.Sprintf("bench-child%d", k+1)
		child := sandbox.State{
			Account:      sandbox.AccountRecord{ID: id, Name: name, Email: name + "@example.com"},
			Keys:         []sandbox.KeyRecord{},
			Applications: []sandbox.ApplicationRecord{{ID: 10, Name: "support"}},
			Rules:        []sandbox.RuleRecord{},
		}
		var spec strings.Builder
		fmt.Fprintf(&spec, "version: 1\naccount_id: %d\nbindings:\n", id)
		for i := range perChild {
			user := fmt.Sprintf("agent%03d", i)
			child.Users = append(child.Users, sandbox.UserRecord{ID: fb.firstUser + int64(i), ApplicationID: 10, Name: user})
			child.Registrations = append(child.Registrations, sandbox.Registration{
				ID: 3001 + int64(i), SIPUsername: user, Proxy: "pbx.example.com", Successful: true, IsPersistent: true,
			})
			fmt.Fprintf(&spec, "  - registration: %s@pbx.example.com\n    application: support\n    user: %s\n", user, user)
		}
		st.Children = append(st.Children, child)
		if err := os.WriteFile(filepath.Join(fb.specDir, fmt.Sprintf("%d.yaml", id)), []byte(spec.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Validate(); err != nil {
		b.Fatal(err)
	}
	return fb
}

// serve starts a fresh in-memory emulator of the fleet (no state file: a
// save per change would measure the disk) and returns its endpoint.
func (fb *fleetBench) serve(b *testing.B, opts sandbox.Options) (*sandbox.Server, string) {
	b.Helper()
	srv := sandbox.New(fb.state, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sandbox.Serve(ctx, ln, srv) }()
	b.Cleanup(func() { stop(); <-done })
	return srv, "http://" + ln.Addr().String() + "/platform_api/"
}

// BenchmarkFleetApply applies 200 child accounts × 50 changes in one
// fleet run through the real client and HTTP against the emulator: 20 ms
// latency and a limit of 20 requests per second for each account, which
// the client is not told. It reports the wall time, the ideal (each
// account's calls — reads, binds and verification — at its limit, the
// accounts in waves of --accounts-parallelism: calls per account ÷ 20 ×
// ⌈200 ÷ parallelism⌉), the efficiency (ideal ÷ wall) and the "rate
// limit exceeded" answers per account (on average, the fewest, the
// most). About 32 s at --accounts-parallelism 16; not part of go test
// ./...:
//
//	go test -run '^$' -bench BenchmarkFleetApply -benchtime 1x .
func BenchmarkFleetApply(b *testing.B) {
	const (
		children = 200
		changes  = 50
		limit    = 20 // requests per second per account
	)
	fb := newFleetBench(b, children, changes)
	for _, parallelism := range []int{16, 64, 200} {
		b.Run(fmt.Sprintf("accounts-parallelism=%d", parallelism), func(b *testing.B) {
			var wall time.Duration
			var stats sandbox.Stats
			var fewest, most int // rate-limit answers an account met
			for b.Loop() {
				b.StopTimer()
				srv, endpoint := fb.serve(b, sandbox.Options{Latency: 20 * time.Millisecond, Rate: limit})
				b.StartTimer()
				start := time.Now()
				var stderr strings.Builder
				code := run([]string{"apply", "-f", fb.specDir, "--auto-approve", "--accounts-parallelism", fmt.Sprint(parallelism),
					"--credentials", fb.creds, "--endpoint", endpoint}, &Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
				wall = time.Since(start)
				if code != 0 {
					b.Fatalf("apply exited %d:\n%s", code, tail(stderr.String(), 2000))
				}
				want := fmt.Sprintf("Fleet apply: %d accounts: %d applied,", children, children)
				if !strings.Contains(stderr.String(), want) {
					b.Fatalf("stderr does not say %q:\n%s", want, tail(stderr.String(), 2000))
				}
				stats = srv.Stats()
				fewest, most = rateLimitedRange(stderr.String(), children)
			}
			calls := float64(stats.Requests-stats.RateLimited) / children
			waves := math.Ceil(float64(children) / float64(parallelism))
			ideal := time.Duration(calls / limit * waves * float64(time.Second))
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(ideal.Seconds(), "ideal-s")
			b.ReportMetric(ideal.Seconds()/wall.Seconds(), "efficiency")
			b.ReportMetric(calls, "calls/account")
			b.ReportMetric(float64(stats.RateLimited)/children, "rate-limited/account")
			b.ReportMetric(float64(fewest), "rate-limited-min/account")
			b.ReportMetric(float64(most), "rate-limited-max/account")
		})
	}
}

// rateLimitedRange is the fewest and the most rate-limit answers one
// account of a fleet apply met, read from each account's summary on
// stderr ("… (N rate-limit answers).", absent for an account that met
// no retry at all).
func rateLimitedRange(stderr string, accounts int) (fewest, most int) {
	counts := regexp.MustCompile(`\((\d+) rate-limit answers?\)\.`).FindAllStringSubmatch(stderr, -1)
	fewest = math.MaxInt
	for _, m := range counts {
		n, _ := strconv.Atoi(m[1])
		fewest, most = min(fewest, n), max(most, n)
	}
	if len(counts) < accounts { // an account without retries says nothing
		fewest = 0
	}
	return fewest, most
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
