package voximplant

import (
	"encoding/json"

	"github.com/voxbind/voxbind/reconcile"
)

// Wire types: the parts of the Management API's answers that voxbind reads
// (docs/management-api.md). Unknown fields are ignored.

// AccountInfo is the result of GetAccountInfo. An answer that leaves out
// active or frozen is taken as active and not frozen.
type AccountInfo struct {
	AccountID   int64  `json:"account_id"`
	AccountName string `json:"account_name"`
	Active      *bool  `json:"active"`
	Frozen      *bool  `json:"frozen"`
}

// ChildAccount is an AccountInfoType as GetChildrenAccounts lists it. An
// account whose answer leaves out active or frozen is taken as active and
// not frozen.
type ChildAccount struct {
	AccountID    int64  `json:"account_id"`
	AccountName  string `json:"account_name"`
	AccountEmail string `json:"account_email"`
	Active       *bool  `json:"active"`
	Frozen       *bool  `json:"frozen"`
}

// Usable reports whether voxbind may work on the child account: active and
// not frozen. It says why not otherwise ("frozen", "inactive").
func (a *ChildAccount) Usable() (ok bool, why string) {
	why = accountState(a.Active, a.Frozen)
	return why == "", why
}

// accountState is "frozen" or "inactive" for an account that voxbind
// must not write to, "" for one it may: active and not frozen (a field
// left out is taken as active, not frozen). Frozen wins over inactive.
func accountState(active, frozen *bool) string {
	switch {
	case frozen != nil && *frozen:
		return reconcile.AccountFrozen
	case active != nil && !*active:
		return reconcile.AccountInactive
	}
	return ""
}

// SIPRegistration is a SIPRegistrationType; the application, rule and user
// fields are set only when the registration is bound.
type SIPRegistration struct {
	ID              int64  `json:"sip_registration_id"`
	SIPUsername     string `json:"sip_username"`
	Proxy           string `json:"proxy"`
	Deactivated     bool   `json:"deactivated"`
	ApplicationID   int64  `json:"application_id,omitempty"`
	ApplicationName string `json:"application_name,omitempty"`
	RuleID          int64  `json:"rule_id,omitempty"`
	RuleName        string `json:"rule_name,omitempty"`
	UserID          int64  `json:"user_id,omitempty"`
	UserName        string `json:"user_name,omitempty"`
}

// ApplicationInfo is an ApplicationInfoType; Name is the full name
// (<app>.<account>.voximplant.com).
type ApplicationInfo struct {
	ID   int64  `json:"application_id"`
	Name string `json:"application_name"`
}

// RuleInfo is a RuleInfoType.
type RuleInfo struct {
	ID            int64  `json:"rule_id"`
	Name          string `json:"rule_name"`
	ApplicationID int64  `json:"application_id"`
}

// UserInfo is a UserInfoType.
type UserInfo struct {
	ID            int64  `json:"user_id"`
	Name          string `json:"user_name"`
	ApplicationID int64  `json:"application_id,omitempty"`
}

// BindRequest is one BindSipRegistration call, ids only. Bind false with a
// RegistrationID unbinds that registration; Bind true needs ApplicationID
// and at most one of RuleID and UserID.
type BindRequest struct {
	RegistrationID int64
	Bind           bool
	ApplicationID  int64
	RuleID         int64
	UserID         int64
}

// wireError is the body of an error answer.
type wireError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// status is the error part every answer may carry; answers embed it.
type status struct {
	Error  *wireError  `json:"error"`
	Errors []wireError `json:"errors"`
}

// failure is the answer's error, its message as the server sent it: the
// client cleans it (a server may echo the request's token or anything
// else secret in it) before showing it.
func (s *status) failure() *wireError {
	var e *wireError
	switch {
	case s.Error != nil:
		e = s.Error
	case len(s.Errors) > 0:
		e = &s.Errors[0]
	default:
		return nil
	}
	return &wireError{Code: e.Code, Msg: e.Msg}
}

// answer is implemented by every answer type: failure through the
// embedded status, hasResult by each.
type answer interface {
	failure() *wireError
	// hasResult reports whether body, decoded into the answer, had a
	// result: one with neither a result nor an error is not a Management
	// API answer.
	hasResult(body []byte) bool
}

// listAnswer is one page of a Get* method. Count is never used for
// paging: its meaning (rows in the page or the total) differs between
// servers; it is only recorded for 'voxbind doctor' to report.
type listAnswer[T any] struct {
	status
	Result     []T    `json:"result"`
	TotalCount *int64 `json:"total_count"`
	Count      *int64 `json:"count"`
}

// hasResult of a list accepts "result": null as an empty page: a server
// may well encode an empty list that way.
func (a *listAnswer[T]) hasResult(body []byte) bool {
	if a.Result != nil {
		return true
	}
	var probe struct {
		Result json.RawMessage `json:"result"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.Result != nil
}

// objectAnswer is the answer of a method returning one object or a
// scalar. Result is never nil in an answer that call returns.
type objectAnswer[T any] struct {
	status
	Result *T `json:"result"`
}

func (a *objectAnswer[T]) hasResult([]byte) bool { return a.Result != nil }

// rawAnswer keeps the result undecoded.
type rawAnswer = objectAnswer[json.RawMessage]
