package voximplant

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"
)

func TestAdaptiveLimiterAIMD(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := newAdaptiveLimiter(0)
	a.now = func() time.Time { return now }
	if a.Rate() != 0 {
		t.Fatalf("starts at %g req/s, want unlimited", a.Rate())
	}
	a.start = now
	// The server accepts 100 requests over one second, then refuses.
	for range 100 {
		now = now.Add(10 * time.Millisecond)
		a.Accepted()
	}
	if a.Rate() != 0 {
		t.Fatalf("accepted answers limited an unlimited client to %g", a.Rate())
	}
	sent := now
	now = now.Add(time.Millisecond)
	if !a.RateLimited(sent) {
		t.Fatal("first refusal did not lower the rate")
	}
	want := 100 * rateDecrease
	if got := a.Rate(); math.Abs(got-want) > 1 {
		t.Errorf("after a refusal at 100 accepted/s the rate is %g, want about %g", got, want)
	}
	// Refusals of requests sent before the decrease change nothing.
	if a.RateLimited(sent) || math.Abs(a.Rate()-want) > 1 {
		t.Errorf("a refusal from the same round lowered the rate again to %g", a.Rate())
	}
	// One second of accepted answers climbs 2-4 %; the next second faster.
	before := a.Rate()
	for range 95 {
		now = now.Add(time.Second / 95)
		a.Accepted()
	}
	second := a.Rate()
	if second < before+1 || second > before*1.04+0.5 {
		t.Errorf("after a second of success the rate is %g, want %g + 2-4 %%", second, before)
	}
	for range 95 {
		now = now.Add(time.Second / 95)
		a.Accepted()
	}
	if got := a.Rate(); got-second <= second-before {
		t.Errorf("the climb did not speed up: %g → %g → %g", before, second, got)
	}
	// A refusal in a quiet second: the rate only falls, and never below 1.
	now = now.Add(5 * time.Second)
	for range 20 {
		a.RateLimited(now)
		now = now.Add(time.Millisecond)
	}
	if got := a.Rate(); got < rateMin || got >= before {
		t.Errorf("after repeated refusals the rate is %g", got)
	}
}

func TestAdaptiveLimiterYoungWindow(t *testing.T) {
	// A refusal 50 ms into the run, after 5 accepted answers: the estimate
	// scales to the time observed (100/s), not to a full second (5/s).
	// Fewer answers are too few to go by.
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := newAdaptiveLimiter(0)
	a.now = func() time.Time { return now }
	a.start = now
	for i := range minSamples {
		now = now.Add(10 * time.Millisecond)
		a.Accepted()
		if i < minSamples-1 && a.RateLimited(now) {
			t.Fatalf("lowered the rate to %g after %d accepted answers", a.Rate(), i+1)
		}
	}
	a.RateLimited(now)
	if got, want := a.Rate(), 100*rateDecrease; math.Abs(got-want) > 1 {
		t.Errorf("rate %g, want about %g", got, want)
	}
}

// TestAdaptiveLimiterSlowServer: a server that accepts fewer than
// minSamples requests a second never fills the one-second window, so once
// a busy period is over a second old, a refusal sets the rate to what the
// server accepted over the whole period, instead of leaving the client
// unlimited and retrying at the pace of its backoff.
func TestAdaptiveLimiterSlowServer(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := newAdaptiveLimiter(0)
	a.now = func() time.Time { return now }
	send := func() time.Time {
		sent, err := a.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return sent
	}
	// The server accepts one request a second; the others are refused.
	for i := range 4 {
		send()
		a.Accepted()
		now = now.Add(100 * time.Millisecond)
		for range 9 {
			sent := send()
			if lowered := a.RateLimited(sent); lowered {
				if i == 0 {
					t.Fatalf("lowered the rate to %g within the first second, from one accepted answer", a.Rate())
				}
				if got, want := a.Rate(), rateDecrease*float64(i+1)/now.Sub(a.start).Seconds(); math.Abs(got-want) > 0.01 {
					t.Fatalf("rate %g, want %g: the busy period's accepted answers over its length", got, want)
				}
				if got := a.Rate(); got < rateMin || got > 2 {
					t.Fatalf("rate %g, want 1 to 2 requests/s for a server that accepts 1", got)
				}
				return
			}
			now = now.Add(100 * time.Millisecond)
		}
	}
	t.Fatalf("after 4 s of refusals at 1 accepted/s the client is still unlimited (rate %g)", a.Rate())
}

func TestAdaptiveLimiterCeiling(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := newAdaptiveLimiter(20)
	a.now = func() time.Time { return now }
	a.start = now
	if a.Rate() != 20 {
		t.Fatalf("starts at %g, want the ceiling 20", a.Rate())
	}
	for range 1000 {
		now = now.Add(time.Millisecond)
		a.Accepted()
	}
	if a.Rate() != 20 {
		t.Errorf("climbed to %g, above the ceiling 20", a.Rate())
	}
}

func TestRateCeilingPaces(t *testing.T) {
	f := newFakeServer(t)
	c, _ := testClient(t, f, func(o *Options) { o.Rate = 50 })
	start := time.Now()
	for range 6 {
		if _, err := c.Info(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Six requests at 50/s with a burst of one take at least 5 × 20 ms.
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("6 requests at --rate 50 took %v", d)
	}
}

// TestRateLimitAnswersLowerTheRate checks the wiring: 340 and 429 answers
// reach the limiter, other errors do not.
func TestRateLimitAnswersLowerTheRate(t *testing.T) {
	for name, refuse := range map[string]func(w http.ResponseWriter){
		"api 340":  func(w http.ResponseWriter) { apiError(w, 340, "Rate limit exceeded") },
		"http 429": func(w http.ResponseWriter) { w.WriteHeader(429) },
		"api 162":  func(w http.ResponseWriter) { apiError(w, 162, "Try later") },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				if n == 21 {
					refuse(w)
					return true
				}
				return false
			}
			c, _ := testClient(t, f, nil)
			for range 21 {
				if _, err := c.Info(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			st := c.Stats()
			if limited := st.Rate > 0; limited != (name != "api 162") {
				t.Errorf("after one %s the rate is %g (0 = unlimited)", name, st.Rate)
			}
		})
	}
}

// TestAdaptiveLimiterRefusalFollowsAcceptedRate: a refusal sets the rate
// to 95 % of what the server accepted over the last second, lower than
// the current rate when the server now accepts less, and never higher
// than the current rate.
func TestAdaptiveLimiterRefusalFollowsAcceptedRate(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := newAdaptiveLimiter(0)
	a.now = func() time.Time { return now }
	a.start = now
	accept := func(n int) {
		for range n {
			now = now.Add(time.Second / time.Duration(n))
			a.Accepted()
		}
	}
	accept(100)
	if !a.RateLimited(now) {
		t.Fatal("the first refusal did not lower the rate")
	}
	if got := a.Rate(); got < 90 || got > 100 {
		t.Fatalf("after 100 accepted in a second, then a refusal: %g req/s, want about 95", got)
	}
	// The server slows down: 50 accepted in a second, then a refusal.
	now = now.Add(2 * time.Second)
	accept(50)
	if !a.RateLimited(now) {
		t.Fatal("a refusal after the decrease did not lower the rate")
	}
	low := a.Rate()
	if low < 40 || low > 50 {
		t.Fatalf("after 50 accepted in a second, then a refusal: %g req/s, want about 47.5", low)
	}
	// More accepted than the rate allows (answers of requests sent
	// before the decrease), then a refusal: the rate does not rise.
	now = now.Add(2 * time.Second)
	for range 200 {
		now = now.Add(time.Second / 200)
		a.mu.Lock()
		a.accepted = append(a.accepted, now) // counted, without the climb Accepted adds
		a.mu.Unlock()
	}
	if a.RateLimited(now); a.Rate() > low {
		t.Errorf("a refusal raised the rate from %g to %g req/s", low, a.Rate())
	}
}
