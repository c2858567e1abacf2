package voximplant

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/voxbind/voxbind/reconcile"
)

// BenchmarkReadRegistrations10k reads 10,000 registrations in 1,000-row
// pages from a server that adds 20 ms to every answer. Pages are encoded
// once, so that allocs/registration measures the client. It reports the
// requests per read it counted, and fails unless that is the 11 the pages
// need (10 pages and the empty one that ends the list).
//
//	go test -run '^$' -bench ReadRegistrations10k -benchtime 20x ./voximplant/
func BenchmarkReadRegistrations10k(b *testing.B) {
	const rows, perPage, latency = 10_000, 1_000, 20 * time.Millisecond
	pages := map[int][]byte{}
	for off := 0; off <= rows; off += perPage {
		var page []SIPRegistration
		for i := off; i < min(rows, off+perPage); i++ {
			r := SIPRegistration{ID: int64(100_000 + i), SIPUsername: fmt.Sprintf("ext%05d", i), Proxy: "pbx.example.com", Deactivated: i%50 == 0}
			if i%3 == 0 {
				r.ApplicationID, r.ApplicationName, r.UserID, r.UserName = 77, "support.acme.voximplant.com", int64(i), fmt.Sprintf("user%05d", i)
			}
			page = append(page, r)
		}
		body, err := json.Marshal(map[string]any{"result": page, "count": len(page)})
		if err != nil {
			b.Fatal(err)
		}
		pages[off] = body
	}
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(latency)
		off, _ := strconv.Atoi(r.PostFormValue("offset"))
		body, ok := pages[off]
		if !ok {
			body = []byte(`{"result": [], "count": 0}`)
		}
		w.Write(body)
	}))
	defer srv.Close()
	c, err := New(Options{Endpoint: srv.URL + "/platform_api/", Credentials: testCredentials()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Registrations(ctx); err != nil { // warm up: token, connection
		b.Fatal(err)
	}
	calls.Store(0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		regs, err := c.Registrations(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(regs) != rows {
			b.Fatalf("%d registrations", len(regs))
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	// No total: every page of rows, then the empty page that ends the list.
	wantCalls := (rows+perPage-1)/perPage + 1
	got := float64(calls.Load()) / float64(b.N)
	if got != float64(wantCalls) {
		b.Fatalf("%.2f requests per read of %d rows in pages of %d, want %d", got, rows, perPage, wantCalls)
	}
	b.ReportMetric(got, "calls/read")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*rows), "allocs/registration")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*rows), "B/registration")
}

// BenchmarkApplyRateLimited makes 1,000 writes with 4 workers against
// servers that refuse with error 340 above 100 requests per second, a
// limit the client is not told. Ideal is 10 s; efficiency = 10 s / elapsed.
//
//	go test -run '^$' -bench ApplyRateLimited -benchtime 1x ./voximplant/
func BenchmarkApplyRateLimited(b *testing.B) {
	const writes, limit, workers = 1000, 100, 4
	servers := map[string]func() func() bool{
		"token-bucket-burst-1": func() func() bool {
			l := rate.NewLimiter(limit, 1)
			return l.Allow
		},
		"token-bucket-burst-10": func() func() bool { // as the sandbox does
			l := rate.NewLimiter(limit, 10)
			return l.Allow
		},
		"token-bucket-burst-100": func() func() bool {
			l := rate.NewLimiter(limit, limit)
			return l.Allow
		},
		"fixed-window": func() func() bool {
			var mu sync.Mutex
			var window time.Time
			n := 0
			return func() bool {
				mu.Lock()
				defer mu.Unlock()
				if w := time.Now().Truncate(time.Second); !w.Equal(window) {
					window, n = w, 0
				}
				n++
				return n <= limit
			}
		},
	}
	for _, name := range []string{"token-bucket-burst-1", "token-bucket-burst-10", "token-bucket-burst-100", "fixed-window"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				allow := servers[name]()
				var refused, accepted atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.ParseForm()
					time.Sleep(2 * time.Millisecond)
					if !allow() {
						refused.Add(1)
						w.Write([]byte(`{"error": {"code": 340, "msg": "Rate limit exceeded"}}`))
						return
					}
					accepted.Add(1)
					w.Write([]byte(`{"result": 1}`))
				}))
				c, err := New(Options{Endpoint: srv.URL + "/platform_api/", Credentials: testCredentials()})
				if err != nil {
					b.Fatal(err)
				}
				jobs := make(chan int64)
				var wg sync.WaitGroup
				start := time.Now()
				for range workers {
					wg.Go(func() {
						for id := range jobs {
							if err := c.Bind(context.Background(), id, &reconcile.Target{Application: reconcile.Ref{ID: 7}}); err != nil {
								b.Error(err)
							}
						}
					})
				}
				stop := make(chan struct{})
				if testing.Verbose() {
					go func() {
						for {
							select {
							case <-stop:
								return
							case <-time.After(500 * time.Millisecond):
								b.Logf("%5.1fs rate %.1f accepted %d refused %d", time.Since(start).Seconds(), c.Stats().Rate, accepted.Load(), refused.Load())
							}
						}
					}()
				}
				for i := range writes {
					jobs <- int64(i + 1)
				}
				close(jobs)
				wg.Wait()
				close(stop)
				elapsed := time.Since(start)
				srv.Close()
				b.ReportMetric(elapsed.Seconds(), "s/1000writes")
				b.ReportMetric(100*float64(writes)/limit/elapsed.Seconds(), "%efficiency")
				b.ReportMetric(float64(refused.Load()), "340s")
				b.ReportMetric(c.Stats().Rate, "final-req/s")
			}
		})
	}
}
