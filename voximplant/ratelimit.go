package voximplant

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The adaptive limiter is AIMD, as TCP congestion control: Voximplant
// publishes no request rate, so the client learns it. On a rate-limit answer
// the rate drops to a little below the rate the server accepted over the
// last second (for a server that accepts fewer than minSamples a second,
// over the busy period once it is longer than that); every accepted answer
// raises it a little, so that it hovers
// just under the server's limit. The constants were tuned with
// BenchmarkApplyRateLimited against token buckets (bursts 1, 10, 100) and a
// fixed window.
const (
	rateWindow   = time.Second
	rateDecrease = 0.95 // new rate = decrease × accepted rate
	rateIncrease = 0.02 // per second of accepted answers: +2 % (at least +1 req/s),
	maxSpeedup   = 5    // growing by 2 % more each second since the last decrease, up to 5×
	minSamples   = 5    // accepted answers needed to estimate a rate from scratch
	probeGrowth  = 0.25 // per second while probing: after an estimate from less than a second
	rateMin      = 1.0  // req/s: the floor after decreases
	minSpan      = 10 * time.Millisecond
)

// adaptiveLimiter paces every request of one client. It is safe for
// concurrent use.
type adaptiveLimiter struct {
	lim     *rate.Limiter
	ceiling float64 // req/s; 0 = none
	now     func() time.Time

	mu           sync.Mutex
	limit        float64     // current rate; 0 = unlimited
	accepted     []time.Time // times of accepted answers, the last rateWindow
	start        time.Time   // first request of the current busy period
	busyAccepted int         // accepted answers since start
	lastSent     time.Time
	lastDecrease time.Time
	// probing: the last estimate came from less than a second of traffic,
	// so it may be far too low; climb fast until the next refusal (TCP's
	// slow start).
	probing bool
}

func newAdaptiveLimiter(ceiling float64) *adaptiveLimiter {
	a := &adaptiveLimiter{ceiling: ceiling, limit: ceiling, now: time.Now}
	a.lim = rate.NewLimiter(a.rateLimit(), 1)
	return a
}

func (a *adaptiveLimiter) rateLimit() rate.Limit {
	if a.limit <= 0 {
		return rate.Inf
	}
	return rate.Limit(a.limit)
}

// Wait blocks until one request may be sent and returns when it was let go.
// When ctx's deadline comes before that, it waits for the deadline and
// returns ctx's error: the run then ends as any run that reaches its
// deadline does, with the deadline's own message (the --timeout that
// passed), rather than early with the rate package's "would exceed
// context deadline".
func (a *adaptiveLimiter) Wait(ctx context.Context) (time.Time, error) {
	if err := a.lim.Wait(ctx); err != nil {
		if _, deadline := ctx.Deadline(); deadline && ctx.Err() == nil {
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			return time.Time{}, context.Cause(ctx)
		}
		return time.Time{}, err
	}
	now := a.now()
	a.mu.Lock()
	if a.start.IsZero() || now.Sub(a.lastSent) > rateWindow {
		a.start = now // a busy period begins: rates are measured from here
		a.busyAccepted = 0
	}
	a.lastSent = now
	a.mu.Unlock()
	return now, nil
}

// Accepted records an answer that was not a rate-limit refusal and climbs
// the rate additively.
func (a *adaptiveLimiter) Accepted() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prune(now)
	a.accepted = append(a.accepted, now)
	a.busyAccepted++
	if a.limit <= 0 {
		return
	}
	// One accepted answer is 1/limit of a second at this rate. The climb
	// speeds up the longer no refusal came (a rate estimated too low
	// recovers in seconds, one just under the limit creeps).
	growth := rateIncrease * math.Min(1+now.Sub(a.lastDecrease).Seconds(), maxSpeedup)
	if a.probing {
		growth = probeGrowth
	}
	step := math.Max(1/a.limit, growth)
	a.limit += step
	if a.ceiling > 0 && a.limit > a.ceiling {
		a.limit = a.ceiling
	}
	a.lim.SetLimitAt(now, a.rateLimit())
}

// RateLimited records a rate-limit refusal of a request let go at sentAt and
// lowers the rate, once per round: refusals of requests sent before the
// last decrease say nothing new. It reports whether the rate was lowered.
func (a *adaptiveLimiter) RateLimited(sentAt time.Time) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.lastDecrease.IsZero() && sentAt.Before(a.lastDecrease) {
		return false
	}
	a.prune(now)
	n := float64(len(a.accepted))
	span := now.Sub(a.start)
	if span > rateWindow {
		span = rateWindow
	}
	if span < minSpan {
		span = minSpan
	}
	var next float64
	switch {
	case n < minSamples && a.limit <= 0 && now.Sub(a.start) > rateWindow:
		// A server that accepts fewer than minSamples a second: the rate
		// it accepted since the busy period began, over a second ago.
		next = rateDecrease * float64(a.busyAccepted) / now.Sub(a.start).Seconds()
	case n < minSamples && a.limit <= 0:
		return false // too little accepted to go by; backoff paces the retry
	case n == 0:
		next = rateDecrease * a.limit // refused for a whole second
	default:
		// Not compounded with the current rate: while the server stays
		// refused (a fixed window used up), repeated refusals must not
		// drive the rate far below what it accepted.
		next = rateDecrease * n / span.Seconds()
		if a.limit > 0 && next > a.limit {
			next = a.limit
		}
	}
	next = math.Max(rateMin, next)
	if a.ceiling > 0 && next > a.ceiling {
		next = a.ceiling
	}
	a.limit = next
	a.lastDecrease = now
	a.probing = span < rateWindow
	a.lim.SetLimitAt(now, a.rateLimit())
	return true
}

// Rate is the current rate in requests per second; 0 = unlimited.
func (a *adaptiveLimiter) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

func (a *adaptiveLimiter) prune(now time.Time) {
	cut := now.Add(-rateWindow)
	i := 0
	for i < len(a.accepted) && !a.accepted[i].After(cut) {
		i++
	}
	if i > 0 {
		a.accepted = append(a.accepted[:0], a.accepted[i:]...)
	}
}
