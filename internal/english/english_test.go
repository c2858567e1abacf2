package english

import "testing"

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		one  string
		many []string
		want string
	}{
		{0, "change", nil, "0 changes"},
		{1, "change", nil, "1 change"},
		{2, "change", nil, "2 changes"},
		{1, "change is", []string{"changes are"}, "1 change is"},
		{4, "change is", []string{"changes are"}, "4 changes are"},
		{-1, "step", nil, "-1 steps"},
	} {
		if got := Plural(tc.n, tc.one, tc.many...); got != tc.want {
			t.Errorf("Plural(%d, %q, %q) = %q, want %q", tc.n, tc.one, tc.many, got, tc.want)
		}
	}
}

func TestChoose(t *testing.T) {
	if got := Choose(1, "it is", "they are"); got != "it is" {
		t.Errorf("Choose(1) = %q", got)
	}
	for _, n := range []int{0, 2, 10} {
		if got := Choose(n, "it is", "they are"); got != "they are" {
			t.Errorf("Choose(%d) = %q", n, got)
		}
	}
}

func TestAnd(t *testing.T) {
	for _, tc := range []struct {
		items []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a and b"},
		{[]string{"a", "b", "c"}, "a, b and c"},
	} {
		if got := And(tc.items); got != tc.want {
			t.Errorf("And(%q) = %q, want %q", tc.items, got, tc.want)
		}
	}
}
