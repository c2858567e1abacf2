package voximplant

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/voxbind/voxbind/reconcile"
)

// pageSize is the count voxbind asks for. The real maximum is not
// documented; a server that returns fewer rows is paged correctly anyway.
const pageSize = 1000

var _ reconcile.Account = (*Client)(nil)

// GetAccountInfo returns the id, name and state of the account acted on.
func (c *Client) GetAccountInfo(ctx context.Context) (*AccountInfo, error) {
	a, err := call[objectAnswer[AccountInfo]](ctx, c, "GetAccountInfo", url.Values{})
	if err != nil {
		return nil, err
	}
	if a.Result.AccountID == 0 {
		return nil, errors.New("GetAccountInfo: the answer has no account_id")
	}
	return a.Result, nil
}

// GetSipRegistrations returns every SIP registration of the account. The
// method gives no total, so pages are read one after the other until an
// empty one.
func (c *Client) GetSipRegistrations(ctx context.Context) ([]SIPRegistration, error) {
	return list(ctx, c, "GetSipRegistrations", url.Values{}, rowKey[SIPRegistration]{"sip_registration_id",
		func(r *SIPRegistration) int64 { return r.ID }, (*SIPRegistration).describe})
}

// describe is the registration's name and binding, for messages.
func (r *SIPRegistration) describe() string {
	s := r.SIPUsername + "@" + r.Proxy
	switch {
	case r.ApplicationID == 0:
		return s + " unbound"
	case r.RuleID != 0:
		return fmt.Sprintf("%s bound to application %d rule %d", s, r.ApplicationID, r.RuleID)
	case r.UserID != 0:
		return fmt.Sprintf("%s bound to application %d user %d", s, r.ApplicationID, r.UserID)
	}
	return fmt.Sprintf("%s bound to application %d", s, r.ApplicationID)
}

// GetApplications returns every application of the account.
func (c *Client) GetApplications(ctx context.Context) ([]ApplicationInfo, error) {
	return list(ctx, c, "GetApplications", url.Values{}, rowKey[ApplicationInfo]{"application_id",
		func(a *ApplicationInfo) int64 { return a.ID }, func(a *ApplicationInfo) string { return a.Name }})
}

// GetChildrenAccounts returns every child account of the account acted on,
// in account id order (child_account_id=any: the method needs one of its
// filters to list anything). An answer that lists the account acted on
// among its own children is refused whole: to the client, that id (like
// 0) is the parent, whose spec would be written as a child's.
func (c *Client) GetChildrenAccounts(ctx context.Context) ([]ChildAccount, error) {
	p := url.Values{"child_account_id": {"any"}, "order_by": {"child_account_id"}}
	children, err := list(ctx, c, "GetChildrenAccounts", p, rowKey[ChildAccount]{"account_id",
		func(a *ChildAccount) int64 { return a.AccountID }, func(a *ChildAccount) string { return a.AccountName }})
	if err != nil {
		return nil, err
	}
	for _, a := range children {
		if a.AccountID == c.account {
			return nil, fmt.Errorf("GetChildrenAccounts: the answer lists account %d (%s), the account acted on, as its own child: %s",
				a.AccountID, reconcile.Printable(a.AccountName), notTheAPI)
		}
	}
	slices.SortFunc(children, func(a, b ChildAccount) int { return cmp.Compare(a.AccountID, b.AccountID) })
	return children, nil
}

// GetRules returns every rule of one application.
func (c *Client) GetRules(ctx context.Context, applicationID int64) ([]RuleInfo, error) {
	rules, err := c.rules(ctx, applicationID)
	if err != nil {
		return nil, fmt.Errorf("read rules of application %d: %w", applicationID, err)
	}
	return rules, nil
}

// rules is GetRules, with errors that do not say which application:
// Rules's caller says it, with the application's name.
func (c *Client) rules(ctx context.Context, applicationID int64) ([]RuleInfo, error) {
	rules, err := list(ctx, c, "GetRules", appParams(applicationID), rowKey[RuleInfo]{"rule_id",
		func(r *RuleInfo) int64 { return r.ID }, func(r *RuleInfo) string { return r.Name }})
	if err != nil {
		return nil, err
	}
	for i := range rules {
		if rules[i].ApplicationID == 0 {
			rules[i].ApplicationID = applicationID
		}
	}
	return rules, nil
}

// GetUsers returns every user of one application.
func (c *Client) GetUsers(ctx context.Context, applicationID int64) ([]UserInfo, error) {
	users, err := c.users(ctx, applicationID)
	if err != nil {
		return nil, fmt.Errorf("read users of application %d: %w", applicationID, err)
	}
	return users, nil
}

// users is GetUsers, with errors that do not say which application (see
// rules).
func (c *Client) users(ctx context.Context, applicationID int64) ([]UserInfo, error) {
	users, err := list(ctx, c, "GetUsers", appParams(applicationID), rowKey[UserInfo]{"user_id",
		func(u *UserInfo) int64 { return u.ID }, func(u *UserInfo) string { return u.Name }})
	if err != nil {
		return nil, err
	}
	for i := range users {
		// A user belongs to the one application it was listed under.
		users[i].ApplicationID = applicationID
	}
	return users, nil
}

func appParams(id int64) url.Values {
	return url.Values{"application_id": {strconv.FormatInt(id, 10)}}
}

// BindSipRegistration makes one BindSipRegistration call with ids only
// (names are resolved by the caller: the API matches fragments and its
// reading of short application names is undocumented).
func (c *Client) BindSipRegistration(ctx context.Context, r BindRequest) error {
	if c.readOnly {
		return fmt.Errorf("BindSipRegistration: registration %d: refused, this client is read-only", r.RegistrationID)
	}
	if r.RegistrationID <= 0 {
		return fmt.Errorf("BindSipRegistration: registration id %d: must be positive", r.RegistrationID)
	}
	p := url.Values{
		"sip_registration_id": {strconv.FormatInt(r.RegistrationID, 10)},
		"bind":                {strconv.FormatBool(r.Bind)},
	}
	if r.Bind {
		switch {
		case r.ApplicationID <= 0:
			return fmt.Errorf("BindSipRegistration: bind registration %d: an application id is required", r.RegistrationID)
		case r.RuleID != 0 && r.UserID != 0:
			return fmt.Errorf("BindSipRegistration: bind registration %d: a rule and a user together are not allowed", r.RegistrationID)
		}
		p.Set("application_id", strconv.FormatInt(r.ApplicationID, 10))
		if r.RuleID != 0 {
			p.Set("rule_id", strconv.FormatInt(r.RuleID, 10))
		}
		if r.UserID != 0 {
			p.Set("user_id", strconv.FormatInt(r.UserID, 10))
		}
	} else if r.ApplicationID != 0 || r.RuleID != 0 || r.UserID != 0 {
		return fmt.Errorf("BindSipRegistration: unbind registration %d: takes no target", r.RegistrationID)
	}
	a, err := write[rawAnswer](ctx, c, "BindSipRegistration", p)
	if err != nil {
		return err
	}
	// 1 (or true) says the call took effect, 0 (or false) that it did
	// not; any other result ("ok", {}, "0") says neither: the step is
	// unknown, as for "result": null.
	switch res := bytes.TrimSpace(*a.Result); string(res) {
	case "1", "true":
		return nil
	case "0", "false":
		return fmt.Errorf("BindSipRegistration: registration %d: the API answered result %s", r.RegistrationID, res)
	default:
		return &lostError{fmt.Errorf("BindSipRegistration: registration %d: the API answered result %s, which says neither that the call took effect (1) nor that it failed (0)",
			r.RegistrationID, c.snippet(res))}
	}
}

// ErrWrongAccount is wrapped by Info's error when the API answers for an
// account other than the one the client acts on.
var ErrWrongAccount = errors.New("the API answered for another account")

// Info implements reconcile.Account. The account acted on is the client's
// (--account-id, else the key file's account_id); an answer naming
// another account is an error, so that nothing, the spec's account_id
// guard included, relies on an account the key did not ask for.
func (c *Client) Info(ctx context.Context) (reconcile.AccountInfo, error) {
	a, err := c.GetAccountInfo(ctx)
	if err != nil {
		return reconcile.AccountInfo{}, c.cannotAct(ctx, err)
	}
	if a.AccountID != c.account {
		return reconcile.AccountInfo{}, fmt.Errorf("GetAccountInfo: %w: voxbind acts on account %d (%s), but the API answered for account %d; nothing was changed: check that --endpoint is the Voximplant API and that the key file is this account's",
			ErrWrongAccount, c.account, c.accountSource(), a.AccountID)
	}
	return reconcile.AccountInfo{ID: a.AccountID, Name: a.AccountName, State: accountState(a.Active, a.Frozen)}, nil
}

// CannotActError is Info's error when the API refuses to let the key act
// on the account (authorization failed) although it answers the key's own
// account: the account is neither the key's nor one of its children.
type CannotActError struct {
	Key, Account int64
	Source       string // where the account's id comes from ("--account-id", "fleet/a.yaml:2")
	Err          error  // the API's refusal
}

func (e *CannotActError) Error() string {
	return fmt.Sprintf("the key of account %d cannot act on account %d (%s)", e.Key, e.Account, e.Source)
}

func (e *CannotActError) Unwrap() error { return e.Err }

// cannotAct turns err, the failure of the first call on a child account,
// into a *CannotActError when it is an authorization failure and the key
// works on its own account; otherwise err is returned as it is.
func (c *Client) cannotAct(ctx context.Context, err error) error {
	var apiErr *APIError
	if c.childOf == 0 || !errors.As(err, &apiErr) || apiErr.Code != CodeAuthFailed {
		return err
	}
	own, perr := New(Options{Endpoint: c.endpoint, Credentials: c.creds, HTTPClient: c.http, UserAgent: c.ua,
		Timeout: c.timeout, RetryBudget: c.budget, ReadOnly: true})
	if perr != nil {
		return err
	}
	if a, perr := own.GetAccountInfo(ctx); perr != nil || a.AccountID != c.childOf {
		return err
	}
	source := c.source
	if source == "" {
		source = "--account-id"
	}
	return &CannotActError{Key: c.childOf, Account: c.account, Source: source, Err: err}
}

// Registrations implements reconcile.Account.
func (c *Client) Registrations(ctx context.Context) ([]reconcile.Registration, error) {
	regs, err := c.GetSipRegistrations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Registration, len(regs))
	for i := range regs {
		out[i] = regs[i].registration()
	}
	return out, nil
}

// registration maps the wire type: bound when application_id is non-zero.
func (r *SIPRegistration) registration() reconcile.Registration {
	reg := reconcile.Registration{
		RegistrationRef: reconcile.RegistrationRef{ID: r.ID, SIPUsername: r.SIPUsername, Proxy: r.Proxy},
		Deactivated:     r.Deactivated,
	}
	if r.ApplicationID != 0 {
		t := &reconcile.Target{Application: reconcile.Ref{ID: r.ApplicationID, Name: r.ApplicationName}}
		if r.RuleID != 0 {
			t.Rule = &reconcile.Ref{ID: r.RuleID, Name: r.RuleName}
		}
		if r.UserID != 0 {
			t.User = &reconcile.Ref{ID: r.UserID, Name: r.UserName}
		}
		reg.Target = t
	}
	return reg
}

// Applications implements reconcile.Account.
func (c *Client) Applications(ctx context.Context) ([]reconcile.Application, error) {
	apps, err := c.GetApplications(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Application, len(apps))
	for i, a := range apps {
		out[i] = reconcile.Application{ID: a.ID, Name: a.Name}
	}
	return out, nil
}

// Rules implements reconcile.Account. Its errors do not name the
// application: the caller names it (reconcile.Observe, with its name).
func (c *Client) Rules(ctx context.Context, applicationID int64) ([]reconcile.Rule, error) {
	rules, err := c.rules(ctx, applicationID)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Rule, len(rules))
	for i, r := range rules {
		out[i] = reconcile.Rule{ID: r.ID, ApplicationID: r.ApplicationID, Name: r.Name}
	}
	return out, nil
}

// Users implements reconcile.Account; its errors do not name the
// application (see Rules).
func (c *Client) Users(ctx context.Context, applicationID int64) ([]reconcile.User, error) {
	users, err := c.users(ctx, applicationID)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.User, len(users))
	for i, u := range users {
		out[i] = reconcile.User{ID: u.ID, ApplicationID: u.ApplicationID, Name: u.Name}
	}
	return out, nil
}

// Bind implements reconcile.Account: one BindSipRegistration call, ids
// only. An answer that refuses the key (after the client's own retry of
// an expired token) matches *reconcile.KeyRefusedError, so that apply
// stops starting steps; 454 (the token's lifetime) is voxbind's own bug.
func (c *Client) Bind(ctx context.Context, registrationID int64, target *reconcile.Target) error {
	err := c.bind(ctx, registrationID, target)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RefusesKey() {
		return &reconcile.KeyRefusedError{Code: apiErr.Code, Fix: apiErr.Hint(), Bug: apiErr.Code == CodeTokenTooLong, Err: err}
	}
	return err
}

func (c *Client) bind(ctx context.Context, registrationID int64, target *reconcile.Target) error {
	r := BindRequest{RegistrationID: registrationID}
	if target != nil {
		r.Bind = true
		r.ApplicationID = target.Application.ID
		if target.Rule != nil {
			r.RuleID = target.Rule.ID
		}
		if target.User != nil {
			r.UserID = target.User.ID
		}
	}
	return c.BindSipRegistration(ctx, r)
}

// rowKey says how the rows of one list method are told apart: by the
// positive id in field, which id reads; describe names a row in messages.
type rowKey[T any] struct {
	field    string
	id       func(*T) int64
	describe func(*T) string
}

// notTheAPI ends the messages about list answers that the Management API
// never gives.
const notTheAPI = "the endpoint's answer is not what the Management API sends: check that --endpoint is the Voximplant API, and run again (if it persists, report it to Voximplant support)"

// page reads the rows at offset. A row without a positive id (a null row,
// one missing its id, or 0 or below) makes the whole read fail: every id
// voxbind plans, writes or exports must name one object of the account,
// and rows without one would collapse into one.
func page[T any](ctx context.Context, c *Client, method string, base url.Values, key rowKey[T], offset int) (*listAnswer[T], error) {
	p := make(url.Values, len(base)+2)
	for k, v := range base {
		p[k] = v
	}
	p.Set("count", strconv.Itoa(pageSize))
	p.Set("offset", strconv.Itoa(offset))
	a, err := call[listAnswer[T]](ctx, c, method, p)
	if err != nil {
		return a, err
	}
	c.paging.record(len(a.Result), a.Count, a.TotalCount)
	for i := range a.Result {
		if id := key.id(&a.Result[i]); id <= 0 {
			has := "none"
			if id < 0 {
				has = strconv.FormatInt(id, 10)
			}
			return nil, fmt.Errorf("%s: a row without a positive %s (row %d of the page at offset %d has %s): %s",
				method, key.field, i+1, offset, has, notTheAPI)
		}
	}
	return a, nil
}

// Paging is what the server's list answers showed of the paging that
// voxbind relies on: how large a page it returns for the count asked,
// and what the count in its answers meant. voxbind pages correctly
// whatever they show; 'voxbind doctor' reports them.
type Paging struct {
	Asked       int // the count voxbind asks for
	LargestPage int // the most rows one page brought
	Pages       int // pages read
	// Answers by what their count said: the rows in that page, the size
	// of the whole list (its total_count), something else, or nothing.
	// A page that holds the whole list says both, and counts as neither.
	CountIsPage, CountIsTotal, CountOther, CountAbsent int
}

// pagingStats collects Paging; it is safe for concurrent use.
type pagingStats struct {
	mu sync.Mutex
	p  Paging
}

func (s *pagingStats) record(rows int, count, total *int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Pages++
	s.p.LargestPage = max(s.p.LargestPage, rows)
	switch {
	case count == nil:
		s.p.CountAbsent++
	case total != nil && *count == *total && *total == int64(rows):
		// the whole list in one page: says nothing
	case *count == int64(rows):
		s.p.CountIsPage++
	case total != nil && *count == *total:
		s.p.CountIsTotal++
	default:
		s.p.CountOther++
	}
}

// Paging returns what the list answers so far showed.
func (c *Client) Paging() Paging {
	c.paging.mu.Lock()
	defer c.paging.mu.Unlock()
	p := c.paging.p
	p.Asked = pageSize
	return p
}

// Bounds on what one list read may cost, whatever the server answers: a
// server that lies in total_count, or never answers an empty page, must not
// make voxbind allocate or request without end. Real accounts are far
// below both (docs/management-api.md, paging). Client.maxRows and
// Client.maxPages hold them; tests lower them.
const (
	defaultMaxRows  = 2_000_000 // rows of one list
	defaultMaxPages = 20_000    // requests for one list
)

// list reads every row of a list method (docs/management-api.md, paging): offsets
// advance by the rows actually returned, and reading stops at an empty page
// or once total_count rows are in. The answer's count is never used: servers
// differ on whether it counts the page or the whole list. With a total, the
// pages after the first are read concurrently, assuming the first page's
// size; pages that come back shorter leave gaps, which are then read one
// after the other. Rows past the total (the list grew while it was read)
// are kept. A last page that comes back short is followed the same way, up
// to the total or an empty page. A first page without rows but with a
// total above zero contradicts itself and is an error. A row listed twice
// (pages that overlap) is kept once when both copies are the same, and
// makes the read fail when they differ: which of the two is the account's
// cannot be told. Memory grows with the rows received, never with the
// total the server claims.
func list[T any](ctx context.Context, c *Client, method string, base url.Values, key rowKey[T]) ([]T, error) {
	first, err := page(ctx, c, method, base, key, 0)
	if err != nil {
		return nil, err
	}
	if first.TotalCount == nil {
		return sequential(ctx, c, method, base, key, first.Result)
	}
	total, step := *first.TotalCount, int64(len(first.Result))
	if total < 0 {
		return nil, fmt.Errorf("%s: implausible total_count %d (a count of rows is never negative); the server's answer cannot be trusted", method, total)
	}
	if step == 0 && total > 0 {
		return nil, fmt.Errorf("%s: the first page has no rows, but its total_count says %d: the server's answer contradicts itself, so the list cannot be read; try again, and if it persists, report it to Voximplant", method, total)
	}
	if step == 0 || step >= total {
		return dedupe(method, first.Result, key)
	}
	if total > c.maxRows {
		return nil, fmt.Errorf("%s: implausible total_count %d (more than %d rows); the server's answer cannot be trusted", method, total, c.maxRows)
	}
	if pages := (total + step - 1) / step; pages > c.maxPages {
		return nil, fmt.Errorf("%s: total_count %d in pages of %d rows would take %d requests, more than the bound of %d; the server's answer cannot be trusted",
			method, total, step, pages, c.maxPages)
	}
	var offsets []int
	for off := step; off < total; off += step {
		offsets = append(offsets, int(off))
	}
	pages, err := concurrentPages(ctx, c, method, base, key, offsets)
	if err != nil {
		return nil, err
	}
	r := gapReader[T]{c: c, method: method, base: base, key: key, requests: int64(1 + len(offsets)), out: first.Result}
	r.next = len(r.out)
	for i, off := range offsets {
		// A short page left a gap before off.
		if err := r.readTo(ctx, off); err != nil {
			return nil, err
		}
		if end := off + len(pages[i]); end > r.next {
			r.out = append(r.out, pages[i][max(0, r.next-off):]...)
			r.next = end
		}
	}
	// A short last page is not the end of the list: the total says where
	// it ends.
	if err := r.readTo(ctx, int(total)); err != nil {
		return nil, err
	}
	return dedupe(method, r.out, key)
}

// gapReader reads the rows that the concurrent pages of a list left out,
// one page at a time: rows [0, next) are in out.
type gapReader[T any] struct {
	c        *Client
	method   string
	base     url.Values
	key      rowKey[T]
	requests int64 // requests made for the list so far
	out      []T
	next     int
}

// readTo reads pages from next until the row at offset end is in, or a
// page comes back empty: the list shrank while it was read.
func (r *gapReader[T]) readTo(ctx context.Context, end int) error {
	for r.next < end {
		if r.requests++; r.requests > r.c.maxPages {
			return fmt.Errorf("%s: more than %d requests to read the list; the server's answers cannot be trusted", r.method, r.c.maxPages)
		}
		a, err := page(ctx, r.c, r.method, r.base, r.key, r.next)
		if err != nil {
			return err
		}
		if len(a.Result) == 0 {
			return nil
		}
		r.out = append(r.out, a.Result...)
		r.next += len(a.Result)
	}
	return nil
}

// sequential reads pages after the first one until an empty page.
func sequential[T any](ctx context.Context, c *Client, method string, base url.Values, key rowKey[T], rows []T) ([]T, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	d := newDeduper(method, key, len(rows))
	out := rows[:0]
	add := func(got []T) (fresh int, err error) {
		for i := range got {
			if seen, err := d.seen(&got[i], out); seen || err != nil {
				if err != nil {
					return 0, err
				}
				continue
			}
			out = append(out, got[i])
			fresh++
		}
		return fresh, nil
	}
	if _, err := add(rows); err != nil {
		return nil, err
	}
	for offset, requests := len(rows), int64(1); ; requests++ {
		if requests >= c.maxPages || int64(len(out)) > c.maxRows {
			return nil, fmt.Errorf("%s: still no empty page after %d requests and %d rows; the server does not end the list", method, requests, len(out))
		}
		a, err := page(ctx, c, method, base, key, offset)
		if err != nil {
			return nil, err
		}
		if len(a.Result) == 0 {
			return out, nil
		}
		fresh, err := add(a.Result)
		if err != nil {
			return nil, err
		}
		if fresh == 0 {
			return nil, fmt.Errorf("%s: the page at offset %d repeats rows already read; the server does not honour offset", method, offset)
		}
		offset += len(a.Result)
	}
}

// concurrentPages reads the pages at offsets with bounded parallelism; the
// first error cancels the rest.
func concurrentPages[T any](ctx context.Context, c *Client, method string, base url.Values, key rowKey[T], offsets []int) ([][]T, error) {
	out := make([][]T, len(offsets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, c.pageParallelism))
	for i, off := range offsets {
		if gctx.Err() != nil {
			break // a page failed, or ctx ended: ask for no more
		}
		g.Go(func() error {
			a, err := page(gctx, c, method, base, key, off)
			if err != nil {
				return err
			}
			out[i] = a.Result
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", method, context.Cause(ctx))
	}
	return out, nil
}

// dedupe drops the second copy of each row listed twice, or fails when
// the copies differ.
func dedupe[T any](method string, rows []T, key rowKey[T]) ([]T, error) {
	d := newDeduper(method, key, len(rows))
	out := rows[:0]
	for i := range rows {
		seen, err := d.seen(&rows[i], out)
		if err != nil {
			return nil, err
		}
		if !seen {
			out = append(out, rows[i])
		}
	}
	return out, nil
}

// deduper remembers where each id was first kept. A server may repeat a
// row across pages (the list shifted while it was read); the same row
// twice is harmless, but two different rows with one id are not: one of
// them is not what the account holds, and keeping either would plan on a
// guess.
type deduper[T any] struct {
	method string
	key    rowKey[T]
	at     map[int64]int // id -> index in the rows kept
}

func newDeduper[T any](method string, key rowKey[T], n int) *deduper[T] {
	return &deduper[T]{method: method, key: key, at: make(map[int64]int, n)}
}

// seen reports whether row's id is already among kept (rows kept so far,
// in the order seen was told of them); if not, row is taken to be kept
// next, at len(kept).
func (d *deduper[T]) seen(row *T, kept []T) (bool, error) {
	id := d.key.id(row)
	i, ok := d.at[id]
	if !ok {
		d.at[id] = len(kept)
		return false, nil
	}
	if first := &kept[i]; !reflect.DeepEqual(*first, *row) {
		return true, fmt.Errorf("%s: %s %d is listed twice with different content, first %s, then %s; the account changed while it was read, or %s",
			d.method, d.key.field, id, reconcile.Printable(d.key.describe(first)), reconcile.Printable(d.key.describe(row)), notTheAPI)
	}
	return true, nil
}
