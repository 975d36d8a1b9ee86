package dnsname

import "testing"

func TestCanonicalAndFQDN(t *testing.T) {
	for in, want := range map[string][2]string{
		"Home.Dyn.Example.COM.": {"home.dyn.example.com", "home.dyn.example.com."},
		"home.dyn.example.com":  {"home.dyn.example.com", "home.dyn.example.com."},
		".":                     {"", "."},
	} {
		if got := Canonical(in); got != want[0] {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want[0])
		}
		if got := FQDN(in); got != want[1] {
			t.Errorf("FQDN(%q) = %q, want %q", in, got, want[1])
		}
	}
}

func TestInZone(t *testing.T) {
	cases := []struct {
		name, zone string
		want       bool
	}{
		{"dyn.example.com", "dyn.example.com", true},
		{"a.dyn.example.com", "dyn.example.com", true},
		{"a.b.dyn.example.com.", "dyn.example.com.", true},
		{"xdyn.example.com", "dyn.example.com", false},
		{"example.com", "dyn.example.com", false},
		{"anything.", ".", true},
	}
	for _, tc := range cases {
		if got := InZone(tc.name, tc.zone); got != tc.want {
			t.Errorf("InZone(%q, %q) = %v, want %v", tc.name, tc.zone, got, tc.want)
		}
	}
}

func TestLongest(t *testing.T) {
	zones := []string{"example.com", "dyn.example.com", "other.org"}
	id := func(s string) string { return s }
	cases := map[string]string{
		"a.dyn.example.com": "dyn.example.com",
		"dyn.example.com":   "dyn.example.com",
		"www.example.com":   "example.com",
		"x.other.org":       "other.org",
		"example.net":       "",
	}
	for name, want := range cases {
		got, ok := Longest(name, zones, id)
		if got != want || ok != (want != "") {
			t.Errorf("Longest(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	good := []string{"home.dyn.example.com", "a", "x-1.y2"}
	bad := []string{"", "a..b", "-a.b", "a-.b", "a_b.c", "é.b", string(make([]byte, 64)) + ".b"}
	for _, h := range good {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
	for _, h := range bad {
		if CheckHost(h) == nil {
			t.Errorf("CheckHost(%q) = nil, want an error", h)
		}
	}
}
