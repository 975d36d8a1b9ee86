package publish

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sshdyn/sshdyn/backend"
)

// TestPublishSSHFP: the rules of SSHFP records, against an in-memory
// backend: the sshfp option, the key's own hosts, SHA-256 only, a whole
// RRset replaced, and a backend that cannot store them.
func TestPublishSSHFP(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{
		{Name: "dyn.example.com", TTL: 60, Backend: m},
		{Name: "api.example.com", TTL: 60, Backend: struct{ backend.Backend }{m}}, // no RRsetter
	}, MaxChangesPerKey: 100}
	may := entry(t, `sshfp,host="a.dyn.example.com",host="b.api.example.com"`)
	mayNot := entry(t, `host="c.dyn.example.com"`)
	ed := SSHFP{Algorithm: 4, Type: 2, Fingerprint: bytes.Repeat([]byte{0xab}, 32)}
	ec := SSHFP{Algorithm: 3, Type: 2, Fingerprint: bytes.Repeat([]byte{0x01}, 32)}
	ctx := context.Background()
	cases := []struct {
		name    string
		req     SSHFPRequest
		kind    Kind
		refused bool
		want    []string // a.dyn.example.com's SSHFP data after
	}{
		{"published", SSHFPRequest{Identity: may, Host: "a.dyn.example.com", Records: []SSHFP{ed, ec}}, KindGood, false,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint), backend.SSHFPData(3, 2, ec.Fingerprint)}},
		{"the same again", SSHFPRequest{Identity: may, Host: "A.dyn.example.com.", Records: []SSHFP{ec, ed, ed}}, KindNoChange, false,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint), backend.SSHFPData(3, 2, ec.Fingerprint)}},
		{"replaced whole", SSHFPRequest{Identity: may, Host: "a.dyn.example.com", Records: []SSHFP{ed}}, KindGood, false,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"no sshfp option", SSHFPRequest{Identity: mayNot, Host: "c.dyn.example.com", Records: []SSHFP{ed}}, KindDenied, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"another's host", SSHFPRequest{Identity: may, Host: "c.dyn.example.com", Records: []SSHFP{ed}}, KindNotOwned, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"SHA-1", SSHFPRequest{Identity: may, Host: "a.dyn.example.com", Records: []SSHFP{{Algorithm: 4, Type: 1, Fingerprint: make([]byte, 20)}}}, KindMalformed, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"unknown algorithm", SSHFPRequest{Identity: may, Host: "a.dyn.example.com", Records: []SSHFP{{Algorithm: 9, Type: 2, Fingerprint: make([]byte, 32)}}}, KindMalformed, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"short fingerprint", SSHFPRequest{Identity: may, Host: "a.dyn.example.com", Records: []SSHFP{{Algorithm: 4, Type: 2, Fingerprint: make([]byte, 31)}}}, KindMalformed, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"a backend without SSHFP", SSHFPRequest{Identity: may, Host: "b.api.example.com", Records: []SSHFP{ed}}, KindUnsupported, true,
			[]string{backend.SSHFPData(4, 2, ed.Fingerprint)}},
		{"cleared", SSHFPRequest{Identity: may, Host: "a.dyn.example.com"}, KindGood, false, nil},
		{"cleared again", SSHFPRequest{Identity: may, Host: "a.dyn.example.com"}, KindNoChange, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Client = public4
			res, err := s.PublishSSHFP(ctx, tc.req)
			var pe *Error
			switch {
			case tc.refused && (!errors.As(err, &pe) || pe.Kind != tc.kind):
				t.Errorf("err %v, want kind %s", err, tc.kind)
			case !tc.refused && (err != nil || res.Kind != tc.kind):
				t.Errorf("%+v %v, want %s", res, err, tc.kind)
			}
			got, _ := m.LookupRRset(ctx, "a.dyn.example.com", "SSHFP")
			if !backend.SameData(got, tc.want) {
				t.Errorf("a.dyn.example.com SSHFP %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := s.PublishSSHFP(ctx, SSHFPRequest{Identity: may, Client: public4, Host: "a.dyn.example.com", Records: make17(ed)}); err == nil {
		t.Error("17 records accepted")
	}
}

func make17(r SSHFP) []SSHFP {
	var out []SSHFP
	for i := range 17 {
		c := r
		c.Fingerprint = bytes.Repeat([]byte{byte(i)}, 32)
		out = append(out, c)
	}
	return out
}
