package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// digest returns a valid DNS-01 value that differs with n.
func digest(n int) string {
	return fmt.Sprintf("%042d", n) + "A"
}

func TestValidDigest(t *testing.T) {
	for v, want := range map[string]bool{
		"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0": true, // RFC 8555 8.4's example
		digest(1): true,
		"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX":   false, // 42
		"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0=": false, // padded
		"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEu+0":  false, // base64, not base64url
		"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1":  false, // padding bits set
		"": false,
	} {
		if got := ValidDigest(v); got != want {
			t.Errorf("ValidDigest(%q) = %v", v, got)
		}
	}
}

func TestChallengeHost(t *testing.T) {
	for in, want := range map[string]string{
		"home.dyn.example.com":                  "home.dyn.example.com",
		"Home.dyn.example.com.":                 "home.dyn.example.com",
		"*.home.dyn.example.com":                "home.dyn.example.com",
		"_acme-challenge.home.dyn.example.com.": "home.dyn.example.com",
	} {
		if got := ChallengeHost(in); got != want {
			t.Errorf("ChallengeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChallenges: the rules of ACME challenges, against an in-memory
// backend.
func TestChallenges(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{
		{Name: "dyn.example.com", TTL: 60, ACME: true, ACMETTL: 30, Backend: m},
		{Name: "example.com", TTL: 60, Backend: m},
	}, MaxChangesPerKey: 100}
	a := entry(t, `host="a.dyn.example.com",host="x.example.com"`)
	noACME := entry(t, `no-acme,host="c.dyn.example.com"`)
	ctx := context.Background()
	req := func(name, value string) ChallengeRequest {
		return ChallengeRequest{Identity: a, Client: public4, Name: name, Value: value}
	}
	owner := "_acme-challenge.a.dyn.example.com"
	steps := []struct {
		name    string
		present bool
		req     ChallengeRequest
		kind    Kind
		class   Class
		txt     []string // at owner afterwards
	}{
		{"present for the host", true, req("a.dyn.example.com", digest(1)), KindGood, ClassOK, []string{digest(1)}},
		{"present again", true, req("a.dyn.example.com.", digest(1)), KindNoChange, ClassOK, []string{digest(1)}},
		{"present for the wildcard", true, req("*.a.dyn.example.com", digest(2)), KindGood, ClassOK, []string{digest(1), digest(2)}},
		{"present at the challenge name", true, req("_acme-challenge.A.dyn.example.com.", digest(3)), KindGood, ClassOK, []string{digest(1), digest(2), digest(3)}},
		{"cleanup one value", false, req("a.dyn.example.com", digest(2)), KindGood, ClassOK, []string{digest(1), digest(3)}},
		{"cleanup a value not there", false, req("a.dyn.example.com", digest(2)), KindNoChange, ClassOK, []string{digest(1), digest(3)}},
		{"not a digest", true, req("a.dyn.example.com", "hello"), KindMalformed, ClassUsage, []string{digest(1), digest(3)}},
		{"another key's host", true, req("b.dyn.example.com", digest(4)), KindNotOwned, ClassForbidden, []string{digest(1), digest(3)}},
		{"a zone without ACME", true, req("x.example.com", digest(4)), KindDenied, ClassForbidden, []string{digest(1), digest(3)}},
		{"no-acme", true, ChallengeRequest{Identity: noACME, Client: public4, Name: "c.dyn.example.com", Value: digest(4)}, KindDenied, ClassForbidden, []string{digest(1), digest(3)}},
		{"not a host name", true, req("a..dyn.example.com", digest(4)), KindMalformed, ClassUsage, []string{digest(1), digest(3)}},
		{"cleanup the rest", false, req("*.a.dyn.example.com.", digest(1)), KindGood, ClassOK, []string{digest(3)}},
		{"cleanup the last", false, req("a.dyn.example.com", digest(3)), KindGood, ClassOK, nil},
	}
	for _, st := range steps {
		var res ChallengeResult
		var err error
		if st.present {
			res, err = s.Present(ctx, st.req)
		} else {
			res, err = s.Cleanup(ctx, st.req)
		}
		kind, temp := res.Kind, false
		var pe *Error
		if errors.As(err, &pe) {
			kind, temp = pe.Kind, pe.Temporary
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if kind != st.kind || kind.Class(temp) != st.class {
			t.Errorf("%s: kind %v (%v), want %v; err %v", st.name, kind, kind.Class(temp), st.kind, err)
		}
		if got, _ := m.LookupTXT(ctx, owner); !slices.Equal(got, st.txt) {
			t.Errorf("%s: TXT at %s = %v, want %v", st.name, owner, got, st.txt)
		}
	}
	if ttl := m.TXTTTL(owner); ttl != 30 {
		t.Errorf("TTL %d, want the zone's acme_ttl 30", ttl)
	}
	// Nothing was ever written at another owner.
	for _, name := range m.TXTNames() {
		if name != owner {
			t.Errorf("TXT written at %s", name)
		}
	}
}

// TestChallengeValuesAreBounded: a key cannot pile up TXT values.
func TestChallengeValuesAreBounded(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", ACME: true, Backend: m}}}
	a := entry(t, `host="a.dyn.example.com"`)
	for i := range MaxChallengeValues + 1 {
		_, err := s.Present(context.Background(), ChallengeRequest{Identity: a, Client: public4, Name: "a.dyn.example.com", Value: digest(i)})
		var pe *Error
		switch {
		case i < MaxChallengeValues && err != nil:
			t.Fatalf("value %d: %v", i, err)
		case i == MaxChallengeValues && (!errors.As(err, &pe) || pe.Kind != KindRateLimited || !pe.Temporary || pe.Kind.Class(pe.Temporary) != ClassTemporary || !strings.Contains(err.Error(), "clean up the old ones")):
			t.Fatalf("value %d: %v, want a refusal", i, err)
		}
	}
	if vs, _ := m.LookupTXT(context.Background(), "_acme-challenge.a.dyn.example.com"); len(vs) != MaxChallengeValues {
		n := len(vs)
		t.Errorf("%d values", n)
	}
}

// fakeFollowers serves a value once its name server's delay has passed;
// a server with a negative delay never does.
type fakeFollowers struct {
	mu    sync.Mutex
	since time.Time
	delay map[string]time.Duration
	asked map[string]int
}

func (f *fakeFollowers) served(ctx context.Context, server, name string, t uint16, value string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[server]++
	d := f.delay[server]
	return d >= 0 && time.Since(f.since) >= d, nil
}

// TestWait: with Wait, Update and Present return once every WaitFor
// server serves the change, and a server that never does is named in a
// temporary KindLagging failure after WaitTimeout.
func TestWait(t *testing.T) {
	f := &fakeFollowers{since: time.Now(), delay: map[string]time.Duration{"ns1:53": 0, "ns2:53": 600 * time.Millisecond, "dead:53": -1}, asked: map[string]int{}}
	m := newMemory()
	s := &Service{Zones: []Zone{
		{Name: "dyn.example.com", TTL: 60, ACME: true, Backend: m, WaitFor: []string{"ns1:53", "ns2:53"}, WaitTimeout: 5 * time.Second},
		{Name: "example.com", TTL: 60, ACME: true, Backend: m, WaitFor: []string{"ns1:53", "dead:53"}, WaitTimeout: 500 * time.Millisecond},
	}, Served: f.served}
	a := entry(t, `host="a.dyn.example.com",host="x.example.com"`)

	start := time.Now()
	res, err := s.Update(context.Background(), Request{Identity: a, Client: public4, Addr: public4, Hosts: []string{"a.dyn.example.com"}, Wait: true})
	if err != nil || res[0].Kind != KindGood {
		t.Fatalf("update: %v, %v", res, err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("returned after %v, before ns2 served the change", took)
	}
	if f.asked["ns2:53"] < 2 {
		t.Errorf("ns2 asked %d times", f.asked["ns2:53"])
	}

	res, err = s.Update(context.Background(), Request{Identity: a, Client: public4, Addr: public4, Hosts: []string{"x.example.com"}, Wait: true})
	if err != nil || res[0].Kind != KindLagging || !res[0].Temporary || !strings.Contains(res[0].Err.Error(), "not served by dead:53 after 500ms") || strings.Contains(res[0].Err.Error(), "ns1") {
		t.Fatalf("update with a dead follower: %+v, %v", res, err)
	}
	// Without Wait nobody is asked.
	asked := f.asked["dead:53"]
	if _, err := s.Update(context.Background(), Request{Identity: a, Client: public4, Addr: public4, Hosts: []string{"x.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if f.asked["dead:53"] != asked {
		t.Error("a request without Wait asked the followers")
	}
	_, err = s.Present(context.Background(), ChallengeRequest{Identity: a, Client: public4, Name: "x.example.com", Value: digest(1), Wait: true})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindLagging || !strings.Contains(err.Error(), "_acme-challenge.x.example.com TXT is written, but not served by dead:53") {
		t.Fatalf("present with a dead follower: %v", err)
	}
	if _, err := s.Present(context.Background(), ChallengeRequest{Identity: a, Client: public4, Name: "a.dyn.example.com", Value: digest(1), Wait: true}); err != nil {
		t.Fatal(err)
	}
}
