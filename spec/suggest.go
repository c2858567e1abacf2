package spec

import "strings"

// aliases are keys people write from habit (the API's parameter names,
// abbreviations) mapped to the spec's key.
var aliases = map[string]string{
	"app":                 "application",
	"app_id":              "application_id",
	"application_name":    "application",
	"rule_name":           "rule",
	"user_name":           "user",
	"username":            "user",
	"sip_registration":    "registration",
	"sip_registration_id": "registration_id",
	"reg":                 "registration",
	"reg_id":              "registration_id",
	"bind":                "unbound",
	"binding":             "bindings",
	"account":             "account_id",
	"accountid":           "account_id",
}

// suggest returns the known key nearest to key, or "" when none is near
// enough to be a likely typo.
func suggest(key string, known []string) string {
	norm := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(key))
	isKnown := func(k string) bool {
		for _, s := range known {
			if s == k {
				return true
			}
		}
		return false
	}
	if isKnown(norm) {
		return norm
	}
	if a, ok := aliases[norm]; ok && isKnown(a) {
		return a
	}
	best, bestDist := "", 1<<30
	for _, k := range known {
		if d := editDistance(norm, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist <= 2 || bestDist*4 <= len(best) {
		return best
	}
	if len(norm) >= 3 {
		for _, k := range known { // known is ordered so that the shorter of a pair comes first
			if strings.HasPrefix(k, norm) {
				return k
			}
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
