package sshd

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		raw  string
		args string
		err  string
	}{
		{"", "", ""},
		{"  update  ", "update", ""},
		{"update a.dyn.example.com\tb.dyn.example.com", "update a.dyn.example.com b.dyn.example.com", ""},
		{"ip", "ip", ""},
		{"rm -rf /", "", `unknown command "rm"`},
		{"update h\x00", "", "printable"},
		{"update h\xc3\xa9", "", "printable"},
		{strings.Repeat("x", maxCommandLen+1), "", "too long"},
		{"update" + strings.Repeat(" h", maxArgs), "", "too many"},
	}
	for _, tc := range cases {
		args, err := parseCommand(tc.raw)
		if got := strings.Join(args, " "); got != tc.args || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.msg, tc.err)) {
			t.Errorf("parseCommand(%.40q) = %q, %v; want %q, %q", tc.raw, got, err, tc.args, tc.err)
		}
		if err != nil && err.code != ExitUsage {
			t.Errorf("%.40q: exit %d, want %d", tc.raw, err.code, ExitUsage)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"update", "update a.dyn.example.com", "ip", "status x", "help", "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		args, err := parseCommand(raw)
		if err != nil {
			if err.code != ExitUsage || strings.ContainsAny(err.msg, "\n\r") {
				t.Fatalf("bad failure %+v", err)
			}
			return
		}
		if len(args) == 0 {
			return
		}
		if _, known := lookupCommand(args[0]); !known || len(args) > maxArgs {
			t.Fatalf("accepted %q", args)
		}
		for _, a := range args {
			for _, c := range []byte(a) {
				if c < 0x21 || c > 0x7e {
					t.Fatalf("accepted a non-printable byte in %q", a)
				}
			}
		}
	})
}

func BenchmarkParseCommand(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := parseCommand("update home.dyn.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
