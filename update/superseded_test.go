package update

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSuperseded(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	ours := a("192.0.2.2")
	ignored := func(seen ...netip.Addr) error {
		return &Error{Kind: KindIgnored, Seen: seen, Err: errors.New("x")}
	}
	for _, tc := range []struct {
		name   string
		err    error
		before []netip.Addr
		want   bool
	}{
		{"a third address: another writer came after ours", ignored(a("192.0.2.3")), []netip.Addr{a("192.0.2.1")}, true},
		{"a third address where there was none", ignored(a("192.0.2.3")), nil, true},
		{"unchanged: the primary skipped ours (PowerDNS's policy)", ignored(a("192.0.2.1")), []netip.Addr{a("192.0.2.1")}, false},
		{"still nothing: skipped", ignored(), nil, false},
		{"ours and another: not a clean supersede", ignored(ours, a("192.0.2.3")), []netip.Addr{a("192.0.2.1")}, false},
		{"another kind", &Error{Kind: KindRefused, Seen: []netip.Addr{a("192.0.2.3")}}, nil, false},
	} {
		if _, got := superseded(tc.err, tc.before, ours); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
