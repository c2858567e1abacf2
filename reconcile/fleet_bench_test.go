package reconcile

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxbind/voxbind/spec"
)

// genAccount is a read-only account generated on every read, so that the
// benchmark's source holds nothing: n registrations, n users of one
// application; registration i is bound to user i when i is odd.
type genAccount struct {
	id int64
	n  int
}

func (g genAccount) app() Application {
	return Application{ID: 10, Name: fmt.Sprintf("support.child%d.voximplant.com", g.id)}
}

func (g genAccount) Info(context.Context) (AccountInfo, error) {
	return AccountInfo{ID: g.id, Name: fmt.Sprintf("child%d", g.id)}, nil
}

func (g genAccount) Registrations(context.Context) ([]Registration, error) {
	app := g.app()
	out := make([]Registration, g.n)
	for i := range out {
		out[i] = Registration{RegistrationRef: RegistrationRef{ID: int64(100000 + i), SIPUsername: fmt.Sprintf("u%05d", i), Proxy: "pbx.example.com"}}
		if i%2 == 1 {
			out[i].Target = &Target{Application: Ref{app.ID, app.Name}, User: &Ref{int64(200000 + i), fmt.Sprintf("u%05d", i)}}
		}
	}
	return out, nil
}

func (g genAccount) Applications(context.Context) ([]Application, error) {
	return []Application{g.app()}, nil
}

func (g genAccount) Rules(context.Context, int64) ([]Rule, error) { return []Rule{}, nil }

func (g genAccount) Users(_ context.Context, app int64) ([]User, error) {
	out := make([]User, g.n)
	for i := range out {
		out[i] = User{ID: int64(200000 + i), ApplicationID: app, Name: fmt.Sprintf("u%05d", i)}
	}
	return out, nil
}

func (g genAccount) Bind(context.Context, int64, *Target) error {
	return fmt.Errorf("genAccount is read-only")
}

// genSpec binds the first listed registrations of an account to their own
// users: half of them are bound so already, half are changes.
func genSpec(id int64, listed int) *spec.Spec {
	s := &spec.Spec{Version: 1, AccountID: id, Bindings: make([]spec.Binding, listed)}
	for i := range listed {
		s.Bindings[i] = spec.Binding{
			Pos:          spec.Pos{File: fmt.Sprintf("fleet/%d.yaml", id), Line: 4 + 3*i, Col: 5},
			Registration: fmt.Sprintf("u%05d@pbx.example.com", i), Application: "support", User: fmt.Sprintf("u%05d", i),
		}
	}
	return s
}

// heapPeak samples the heap in use every few milliseconds until stopped.
type heapPeak struct {
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	h.done.Go(func() {
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > h.peak.Load() {
				h.peak.Store(m.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	})
	return h
}

func (h *heapPeak) end() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak.Load()
}

// heapNow is the live heap after a collection.
func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkPlanFleet1000x1000 plans 1,000 accounts of 1,000 registrations
// and 1,000 users each (a spec of 100 bindings per account, 50 of them
// changes), 4 accounts at a time, in-process. It reports the peak heap
// while planning (peak-MB), the heap the finished fleet plan holds
// (plans-MB), and what one account's observation takes (observation-MB):
// holding every observation at once would take 1,000 times that.
//
//	go test ./reconcile -run '^$' -bench BenchmarkPlanFleet1000x1000 -benchtime 1x
func BenchmarkPlanFleet1000x1000(b *testing.B) {
	const accounts, regs, listed = 1000, 1000, 100
	ctx := context.Background()
	desired := make([]*spec.Spec, accounts)
	for i := range desired {
		desired[i] = genSpec(int64(2000000+i), listed)
	}
	open := func(_ context.Context, s *spec.Spec) (Account, error) { return genAccount{s.AccountID, regs}, nil }

	before := heapNow()
	one, err := Observe(ctx, genAccount{1, regs}, desired[0])
	if err != nil {
		b.Fatal(err)
	}
	observation := heapNow() - before
	runtime.KeepAlive(one)
	one = nil

	var peak, held uint64
	for b.Loop() {
		base := heapNow()
		h := startHeapPeak()
		f := PlanFleet(ctx, desired, open, Options{}, DefaultAccountsParallelism, nil)
		peak = h.end() - base
		held = heapNow() - base
		if s := f.Summary(); s.Failed != 0 || s.Bind != accounts*listed/2 {
			b.Fatalf("summary %+v, want %d binds and no failure", s, accounts*listed/2)
		}
		runtime.KeepAlive(f)
	}
	const mb = 1 << 20
	b.ReportMetric(float64(peak)/mb, "peak-MB")
	b.ReportMetric(float64(held)/mb, "plans-MB")
	b.ReportMetric(float64(observation)/mb, "observation-MB")
}
