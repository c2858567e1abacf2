package sandbox

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the faults a Server injects; the zero value injects none.
type Options struct {
	// Latency delays every API request by this much before it is handled.
	Latency time.Duration
	// Rate is how many requests per second the server accepts for each
	// account (a token bucket per account holding one second's worth, at
	// least 1 and at most 10); the excess is answered with API error 340
	// and HTTP 200. 0 = no limit.
	Rate float64
	// AccountLatency and AccountRate set Latency and Rate for single
	// accounts (by id; the top account or a child), in place of the
	// values above: one slow or tightly limited child in a fleet.
	AccountLatency map[int64]time.Duration
	AccountRate    map[int64]float64
	// ClockSkew runs the server's clock this far off the machine's: its
	// Date header and its token checks use the skewed time.
	ClockSkew time.Duration
	// FailRate is the fraction of requests, 0 to 1, that fail. A failure is
	// one of three kinds, equally likely: HTTP 502 or 503 with a non-JSON
	// body; the connection dropped before the request is handled; the
	// connection dropped after it was handled (for BindSipRegistration:
	// after the change took effect and was saved).
	FailRate float64
	// Seed seeds the choice of failures, so that a run can be repeated.
	// Every value, 0 included, is a seed. Whether a request fails, and
	// how, depends only on the seed, its method and parameters, and how
	// many times the server received that same call before: a run
	// repeats even when concurrent requests arrive in another order.
	Seed int64
	// Logger, when set, gets one debug record per API request: the method,
	// its parameters and the answer. Headers (the token) are never logged.
	Logger *slog.Logger
}

// Validate reports options that make no sense.
func (o Options) Validate() error {
	var errs []error
	if o.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", o.Latency))
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v must be 0 (no limit) or a positive number of requests per second", o.Rate))
	}
	for _, id := range slices.Sorted(maps.Keys(o.AccountLatency)) {
		if d := o.AccountLatency[id]; d < 0 {
			errs = append(errs, fmt.Errorf("latency %v of account %d is negative", d, id))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(o.AccountRate)) {
		if r := o.AccountRate[id]; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			errs = append(errs, fmt.Errorf("rate %v of account %d must be 0 (no limit) or a positive number of requests per second", r, id))
		}
	}
	if !(o.FailRate >= 0 && o.FailRate <= 1) {
		errs = append(errs, fmt.Errorf("fail rate %v must be between 0 and 1", o.FailRate))
	}
	return errors.Join(errs...)
}

// Stats counts what a Server received and which faults it injected.
type Stats struct {
	Requests      int64 // API requests received
	Answered      int64 // answered with a JSON body (results and API errors)
	APIErrors     int64 // answered with an API error, 340 included
	RateLimited   int64 // answered with API error 340
	HTTPErrors    int64 // injected HTTP 502/503
	DroppedBefore int64 // connections dropped before handling
	DroppedAfter  int64 // connections dropped after handling
	Writes        int64 // BindSipRegistration calls that changed the state
}

type counters struct {
	requests, answered, apiErrors, rateLimited, httpErrors, droppedBefore, droppedAfter, writes atomic.Int64
}

// Server emulates the Management API over one State. It is an http.Handler
// for the paths under /platform_api; use it with httptest in tests, or
// through Open/Start with a state file.
type Server struct {
	opts Options
	now  func() time.Time

	keysMu sync.RWMutex
	keys   map[string]keyInfo

	// accounts index every account of the state tree by id; built by
	// newServer, never changed after (the records they point into are
	// guarded by mu).
	accounts map[int64]*account
	top      *account

	mu    sync.Mutex // guards everything below
	state *State     // the top account and, inside it, its children
	path  string     // the state file every change is saved to; "" = memory only
	lock  *fileLock  // held while the server serves path

	faultMu  sync.Mutex
	attempts map[string]int // method and parameters → requests received

	stats counters
}

// New returns a Server for a copy of state, kept in memory only. It is meant
// for tests; it panics if state does not validate (Load and Open return the
// error instead).
func New(state *State, opts Options) *Server {
	s, err := newServer(state, opts)
	if err != nil {
		panic("sandbox.New: " + err.Error())
	}
	return s
}

func newServer(state *State, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox options: %w", err)
	}
	if err := state.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:  opts,
		now:   func() time.Time { return time.Now().Add(opts.ClockSkew) },
		keys:  map[string]keyInfo{},
		state: state.Clone(),
	}
	s.buildAccounts()
	var unknown []error
	for _, m := range []map[int64]bool{idsOf(opts.AccountLatency), idsOf(opts.AccountRate)} {
		for _, id := range slices.Sorted(maps.Keys(m)) {
			if _, ok := s.accounts[id]; !ok {
				unknown = append(unknown, fmt.Errorf("sandbox options: account %d has no latency or rate of its own to set: the state has no such account", id))
			}
		}
	}
	if len(unknown) > 0 {
		return nil, errors.Join(unknown...)
	}
	return s, nil
}

func idsOf[V any](m map[int64]V) map[int64]bool {
	out := make(map[int64]bool, len(m))
	for id := range m {
		out[id] = true
	}
	return out
}

// latency is how long to delay a request: its account's own latency
// (AccountLatency) or Latency.
func (s *Server) latency(r *http.Request) time.Duration {
	if len(s.opts.AccountLatency) > 0 {
		if d, ok := s.opts.AccountLatency[claimedAccount(r.Header.Get("Authorization"))]; ok {
			return d
		}
	}
	return s.opts.Latency
}

// Open locks the state file at path (see Close), loads it and returns a
// Server that saves every change back to it atomically. A second Open of the
// same file, in this process or another, fails until Close.
func Open(path string, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox options: %w", err)
	}
	lock, err := lockState(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sandbox state %s does not exist; 'voxbind sandbox init DIR' writes DIR/%s, a demo account to start from", path, StateFile)
	}
	if err != nil {
		return nil, err
	}
	st, err := Load(path)
	if err != nil {
		lock.release()
		return nil, err
	}
	s, err := newServer(st, opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("sandbox state %s: %w", path, err)
	}
	s.path, s.lock = path, lock
	return s, nil
}

// Close releases the state file's lock; the server must no longer serve.
// Every change is already saved. Close of a server from New does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.release()
	s.lock = nil
	s.path = ""
	return err
}

// AddKey makes the server accept JWTs signed by pub under keyID as well, as
// a key of the top account with every role. The key lives in memory only
// and is never saved to the state file.
func (s *Server) AddKey(keyID string, pub *rsa.PublicKey) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.keys[keyID] = keyInfo{pub: pub, owner: s.top.state.Account.ID}
}

// Account returns the emulated account.
func (s *Server) Account() AccountRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Account
}

// State returns a copy of the current state.
func (s *Server) State() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// Stats returns what the server has received and injected so far.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests:      c.requests.Load(),
		Answered:      c.answered.Load(),
		APIErrors:     c.apiErrors.Load(),
		RateLimited:   c.rateLimited.Load(),
		HTTPErrors:    c.httpErrors.Load(),
		DroppedBefore: c.droppedBefore.Load(),
		DroppedAfter:  c.droppedAfter.Load(),
		Writes:        c.writes.Load(),
	}
}

// apiError is an API failure, answered as {"error": {"code", "msg"}} with
// HTTP 200, as the sandbox chooses (docs/management-api.md).
type apiError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

type fault int

const (
	noFault fault = iota
	faultHTTP
	faultDropBefore
	faultDropAfter
)

// pickFault decides the fault of one request to method with form: a
// draw seeded by Options.Seed, the call (method and parameters, in a
// fixed order) and how many times it came before.
func (s *Server) pickFault(method string, form url.Values) (fault, int) {
	if s.opts.FailRate <= 0 {
		return noFault, 0
	}
	call := method + "?" + form.Encode()
	s.faultMu.Lock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	attempt := s.attempts[call]
	s.attempts[call]++
	s.faultMu.Unlock()

	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%d", s.opts.Seed, call, attempt)
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x766f7862696e64)) // "voxbind"
	if rng.Float64() >= s.opts.FailRate {
		return noFault, 0
	}
	kind := fault(1 + rng.IntN(3))
	status := http.StatusBadGateway
	if rng.IntN(2) == 1 {
		status = http.StatusServiceUnavailable
	}
	return kind, status
}

const apiPrefix = "/platform_api"

// ServeHTTP answers /platform_api/<Method> and /platform_api[/] with a cmd
// parameter, by GET (query) or POST (urlencoded or multipart form).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) || strings.Count(rest, "/") > 1 {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.stats.requests.Add(1)
	start := s.now()
	name := strings.TrimPrefix(rest, "/")

	if d := s.latency(r); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	// Every answer tells the server's time, which ClockSkew may put off.
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	// Read once: a second ParseForm would answer nil for a request the
	// first refused, keeping whatever parameters it could read.
	p, perr := parseParams(r)
	var kind fault
	var status int
	if s.opts.FailRate > 0 {
		// The fault depends on the call.
		method := name
		if method == "" {
			method = p.get("cmd")
		}
		kind, status = s.pickFault(method, p.v)
	}
	switch kind {
	case faultHTTP:
		s.stats.httpErrors.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1><p>injected by the voxbind sandbox</p></body></html>\n", status, http.StatusText(status))
		s.logf(name, r, start, "injected HTTP %d", status)
		return
	case faultDropBefore:
		s.stats.droppedBefore.Add(1)
		s.logf(name, r, start, "injected: connection dropped before handling")
		drop(w)
		return
	}
	body := s.handle(r, name, p, perr)
	if name == "" {
		name = r.Form.Get("cmd")
	}
	if kind == faultDropAfter {
		s.stats.droppedAfter.Add(1)
		s.logf(name, r, start, "%s, then injected: connection dropped", outcome(body))
		drop(w)
		return
	}
	s.logf(name, r, start, "%s", outcome(body))
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "sandbox: encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.stats.answered.Add(1)
	if _, isErr := body.(map[string]*apiError); isErr {
		s.stats.apiErrors.Add(1)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(append(data, '\n'))
}

// CodeStateNotSaved is the API error the sandbox answers when it cannot
// save its state file (a read-only file or directory, a full disk): the
// change is undone and the message names the cause. It is not one of the
// "try again later" codes, so a client does not retry what cannot succeed
// until someone fixes the file.
const CodeStateNotSaved = 900

// outcome says in a few words how a request was answered.
func outcome(body any) string {
	switch b := body.(type) {
	case map[string]*apiError:
		return fmt.Sprintf("error %d: %s", b["error"].Code, b["error"].Msg)
	}
	return "ok"
}

// logf logs one request at debug level to Options.Logger.
func (s *Server) logf(method string, r *http.Request, start time.Time, format string, args ...any) {
	if s.opts.Logger == nil || !s.opts.Logger.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	if method == "" {
		method = "?"
	}
	form := r.Form
	if form == nil {
		form = r.URL.Query()
	}
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelDebug, "sandbox request", slog.String("method", method),
		slog.String("params", form.Encode()), slog.String("answer", fmt.Sprintf(format, args...)),
		slog.Duration("duration", s.now().Sub(start).Round(10*time.Microsecond)))
}

func errorBody(e *apiError) map[string]*apiError { return map[string]*apiError{"error": e} }

// handle authenticates and runs one API call, its parameters p as
// parseParams read them (or its refusal e), and returns the body to answer
// with.
func (s *Server) handle(r *http.Request, method string, p params, e *apiError) any {
	if e != nil {
		return errorBody(e)
	}
	if method == "" {
		method = p.get("cmd")
		if method == "" {
			return errorBody(errorf(101, "invalid arguments: name the method in the path (/platform_api/<Method>) or in the 'cmd' parameter"))
		}
	}
	acct, roles, e := s.authenticate(r.Header.Get("Authorization"))
	if e != nil {
		return errorBody(e)
	}
	if acct.limit != nil && !acct.limit.Allow() {
		s.stats.rateLimited.Add(1)
		return errorBody(errorf(340, "rate limit exceeded: the sandbox accepts %g requests per second for account %d", acct.rate, acct.state.Account.ID))
	}
	m, ok := methods[method]
	if !ok {
		return errorBody(errorf(101, "invalid arguments: unknown method %q; the sandbox knows %s", method, strings.Join(slices.Sorted(maps.Keys(methods)), ", ")))
	}
	if e := allowed(method, roles); e != nil {
		return errorBody(e)
	}
	if e := checkParams(method, p); e != nil {
		return errorBody(e)
	}
	result, e := m(acct, p)
	if e != nil {
		return errorBody(e)
	}
	return result
}

// maxForm bounds a request body; the API's requests are tiny.
const maxForm = 1 << 20

// parseParams reads a request's parameters, query and form merged. A raw
// ';' is part of a value, as in the API's lists (user_id=200;201), in the
// query and in an urlencoded body alike; Go's parser refuses it as a
// separator, so it is escaped first (%3B, as a client that escapes sends
// it). Only '&' separates parameters.
func parseParams(r *http.Request) (params, *apiError) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	r.URL.RawQuery = escapeSemicolons(r.URL.RawQuery)
	var err error
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); {
	case mt == "multipart/form-data":
		err = r.ParseMultipartForm(maxForm)
	case mt == "application/x-www-form-urlencoded" && r.Method == http.MethodPost:
		if err = escapeBodySemicolons(r); err == nil {
			err = r.ParseForm()
		}
	default:
		err = r.ParseForm()
	}
	if err != nil {
		return params{}, errorf(101, "invalid arguments: cannot read the request parameters: %v", err)
	}
	return params{r.Form}, nil
}

func escapeSemicolons(s string) string { return strings.ReplaceAll(s, ";", "%3B") }

// escapeBodySemicolons escapes the raw ';' of an urlencoded body, read
// within maxForm (a larger body is refused as before).
func escapeBodySemicolons(r *http.Request) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(strings.NewReader(escapeSemicolons(string(data))))
	return nil
}

// drop closes the connection without an answer. Where the connection cannot
// be taken over (HTTP/2), the handler aborts, which resets the stream.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
