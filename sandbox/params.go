package sandbox

import (
	"net/url"
	"strconv"
	"strings"
)

// params are a request's parameters, query and form merged. An empty value
// counts as absent.
type params struct{ v url.Values }

func (p params) get(name string) string { return strings.TrimSpace(p.v.Get(name)) }

func (p params) has(name string) bool { return p.get(name) != "" }

// given reports whether a parameter asks for anything: it has a value, and
// for an id (a name ending in _id), a value other than 0, which counts as
// absent as in id.
func (p params) given(name string) bool {
	return p.has(name) && !(strings.HasSuffix(name, "_id") && p.get(name) == "0")
}

// id reads a positive decimal id. 0 counts as absent: the official Go
// client sends application_id=0 when it names the application instead.
func (p params) id(name string) (int64, bool, *apiError) {
	s := p.get(name)
	if s == "" || s == "0" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, errorf(101, "invalid arguments: the '%s' parameter must be a positive decimal id, not %q", name, s)
	}
	return n, true, nil
}

// idList reads a ';'-separated list of positive ids, or the word any
// (isAny). A lone 0 counts as absent, as for id.
func (p params) idList(name string) (ids []int64, isAny, has bool, e *apiError) {
	s := p.get(name)
	switch {
	case s == "" || s == "0":
		return nil, false, false, nil
	case strings.EqualFold(s, "any"):
		return nil, true, true, nil
	}
	for _, f := range strings.Split(s, ";") {
		f = strings.TrimSpace(f)
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			return nil, false, false, errorf(101, "invalid arguments: the '%s' parameter must be positive decimal ids separated by ';', or any, not %q", name, s)
		}
		ids = append(ids, n)
	}
	return ids, false, true, nil
}

// names reads a ';'-separated list of names (empty items dropped).
func (p params) names(name string) []string {
	var out []string
	for f := range strings.SplitSeq(p.get(name), ";") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// boolean reads true/false (also 1/0, any case).
func (p params) boolean(name string, def bool) (bool, bool, *apiError) {
	s := p.get(name)
	switch strings.ToLower(s) {
	case "":
		return def, false, nil
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, errorf(101, "invalid arguments: the '%s' parameter must be true or false, not %q", name, s)
}

// Paging as the sandbox does it (docs/management-api.md).
const (
	defaultCount = 20
	maxCount     = 1000
)

// page reads count (default 20, at most 1000: larger asks are cut to 1000)
// and offset (default 0).
func (p params) page() (offset, count int, e *apiError) {
	count = defaultCount
	if s := p.get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, errorf(101, "invalid arguments: the 'count' parameter must be a positive number, not %q", s)
		}
		count = min(n, maxCount)
	}
	if s := p.get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, errorf(101, "invalid arguments: the 'offset' parameter must be a number ≥ 0, not %q", s)
		}
		offset = n
	}
	return offset, count, nil
}

// pageOf cuts one page out of rows.
func pageOf[T any](rows []T, offset, count int) []T {
	if offset >= len(rows) {
		return []T{}
	}
	return rows[offset:min(offset+count, len(rows))]
}

// fragment reports whether name contains the filter, ASCII case-insensitively;
// the API's name filters match fragments.
func fragment(name, filter string) bool {
	return strings.Contains(strings.ToLower(name), strings.ToLower(filter))
}
