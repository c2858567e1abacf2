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

// id reads a positive decimal id.
func (p params) id(name string) (int64, bool, *apiError) {
	s := p.get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, errorf(101, "invalid arguments: the '%s' parameter must be a positive decimal id, not %q", name, s)
	}
	return n, true, nil
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

// Paging as the sandbox does it (docs/voximplant-api.md).
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
