package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/internal/leakcheck"
)

// rawCall POSTs one call with a fresh connection and reports the HTTP
// status and body, or the transport error.
func (e *env) rawCall(client *http.Client, method string, form url.Values) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/platform_api/"+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// noRetryClient does not reuse connections, so that a dropped connection
// shows as an error of that request and is not retried by the transport.
func noRetryClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// TestFailRate sends sequential calls through a server failing a third of
// them and checks that every kind of failure happens, that the client sees
// exactly what the server counts, and that a seed repeats a run.
func TestFailRate(t *testing.T) {
	run := func() Stats {
		e := newEnv(t, demoState(t), Options{FailRate: 0.3, Seed: 42})
		client := noRetryClient()
		var ok, apiErr, http5xx, dropped int64
		for range 300 {
			status, body, err := e.rawCall(client, "GetAccountInfo", nil)
			switch {
			case err != nil:
				dropped++
			case status == http.StatusBadGateway || status == http.StatusServiceUnavailable:
				http5xx++
				if json.Valid(body) {
					t.Errorf("HTTP %d with a JSON body %s; injected failures are not JSON", status, body)
				}
			case status == http.StatusOK:
				var a answer
				if err := json.Unmarshal(body, &a); err != nil {
					t.Fatalf("HTTP 200 without JSON: %s", body)
				}
				if a.Error != nil {
					apiErr++
				} else {
					ok++
				}
			default:
				t.Fatalf("unexpected HTTP %d: %s", status, body)
			}
		}
		s := e.srv.Stats()
		if s.Requests != 300 || s.Answered != ok+apiErr || s.HTTPErrors != http5xx || s.DroppedBefore+s.DroppedAfter != dropped {
			t.Errorf("server counted %+v; client saw %d ok, %d api errors, %d HTTP 5xx, %d dropped", s, ok, apiErr, http5xx, dropped)
		}
		if s.HTTPErrors == 0 || s.DroppedBefore == 0 || s.DroppedAfter == 0 {
			t.Errorf("some kind of failure never happened: %+v", s)
		}
		if failed := s.HTTPErrors + s.DroppedBefore + s.DroppedAfter; failed < 60 || failed > 120 {
			t.Errorf("%d of 300 failed at fail rate 0.3", failed)
		}
		return s
	}
	if a, b := run(), run(); a != b {
		t.Errorf("the same seed gave different runs:\n%+v\n%+v", a, b)
	}
}

// TestFaultsRepeatPerRequest sends the same calls from 8 goroutines to two
// servers with the same seed, each call repeated until it is answered: the
// calls arrive in a different order each time, yet every call meets the
// same faults on the same attempts. Another seed gives other faults.
func TestFaultsRepeatPerRequest(t *testing.T) {
	run := func(seed int64) map[string]string {
		e := newEnv(t, demoState(t), Options{FailRate: 0.4, Seed: seed})
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				client := noRetryClient()
				for i := range 10 {
					form := url.Values{"count": {fmt.Sprint(1 + (g*10+i)%7)}, "offset": {fmt.Sprint(g*10 + i)}}
					var outcomes []string
					for len(outcomes) < 20 {
						status, _, err := e.rawCall(client, "GetSipRegistrations", form)
						if err == nil && status == http.StatusOK {
							outcomes = append(outcomes, "ok")
							break
						}
						outcomes = append(outcomes, fmt.Sprint(status, err != nil))
					}
					mu.Lock()
					seen[form.Encode()] = strings.Join(outcomes, " ")
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return seen
	}
	first, second := run(11), run(11)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("the same seed gave other faults (-first +second):\n%s", diff)
	}
	failed := 0
	for _, o := range first {
		if o != "ok" {
			failed++
		}
	}
	if failed < 10 {
		t.Errorf("only %d of 80 calls met a fault at fail rate 0.4", failed)
	}
	if other := run(12); cmp.Equal(first, other) {
		t.Errorf("seeds 11 and 12 gave the same faults")
	}
}

// TestDropAfterWrite checks that some dropped binds took effect and others
// did not, each as the server counted: the client cannot know which, and
// must verify by reading back.
func TestDropAfterWrite(t *testing.T) {
	e := newEnv(t, demoState(t), Options{FailRate: 0.5, Seed: 7})
	client := noRetryClient()
	var applied, notApplied int64
	for range 200 {
		bound := e.srv.State().Registrations[2].bound() // 3003, carol
		form := url.Values{"sip_registration_id": {"3003"}, "application_id": {"10"}, "user_id": {"202"}}
		if bound {
			form = url.Values{"sip_registration_id": {"3003"}, "bind": {"false"}}
		}
		_, _, err := e.rawCall(client, "BindSipRegistration", form)
		if err == nil {
			continue
		}
		if e.srv.State().Registrations[2].bound() != bound {
			applied++
		} else {
			notApplied++
		}
	}
	s := e.srv.Stats()
	if applied != s.DroppedAfter || notApplied != s.DroppedBefore {
		t.Errorf("dropped binds: %d applied, %d not; server counted %+v", applied, notApplied, s)
	}
	if applied == 0 || notApplied == 0 {
		t.Errorf("want drops both before and after the write: %d applied, %d not", applied, notApplied)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, demoState(t), Options{Rate: 2})
	var accepted, limited int
	start := time.Now()
	for range 20 {
		a := e.call("GetAccountInfo") // fails the test unless HTTP 200 + JSON
		switch a.code() {
		case 0:
			accepted++
		case 340:
			limited++
		default:
			t.Fatalf("unexpected error %+v", a.Error)
		}
	}
	elapsed := time.Since(start)
	// A bucket of 2 refilled at 2 per second accepts at most 2 + 2/s of
	// the time the calls took, however slow the machine is, and refuses
	// the rest; the first two calls find it full.
	if most := 2 + int(2*elapsed.Seconds()+1); accepted < 2 || accepted > most {
		t.Errorf("%d accepted, %d refused with 340 in %v; want 2 to %d accepted", accepted, limited, elapsed, most)
	}
	if s := e.srv.Stats(); s.RateLimited != int64(limited) || s.APIErrors != int64(limited) {
		t.Errorf("stats %+v, want %d rate limited", s, limited)
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t, demoState(t), Options{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/platform_api/GetAccountInfo", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("answered at once with an hour of latency")
	}
	// ts.Close (cleanup) returns only when the handler has given up the
	// wait, which it does when the client goes away.
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Latency: -1}, {Rate: -1}, {FailRate: 1.5}, {FailRate: -0.1}} {
		if o.Validate() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := (Options{Latency: time.Second, Rate: 5, FailRate: 1, Seed: -3}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestLogNamesCallsButNeverTheToken(t *testing.T) {
	var log strings.Builder
	e := newEnv(t, demoState(t), Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10"))
	e.call("BindSipRegistration", "sip_registration_id", "3012", "bind", "false")
	e.do(e.multipartRequest("/platform_api/", "cmd", "GetAccountInfo"))
	got := log.String()
	for _, want := range []string{
		`msg="sandbox request" method=BindSipRegistration params="application_id=10&sip_registration_id=3003" answer=ok`,
		`msg="sandbox request" method=BindSipRegistration params="bind=false&sip_registration_id=3012" answer="error 496`,
		`msg="sandbox request" method=GetAccountInfo params="cmd=GetAccountInfo" answer=ok`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Bearer") {
		t.Errorf("the log shows the Authorization header:\n%s", got)
	}
	keys := testKeys()
	for _, leak := range leakcheck.Find(got, leakcheck.Secrets{Tokens: []string{e.token}, Keys: keys[:]}) {
		t.Errorf("the log contains a secret: %s", leak)
	}
}
