package authorized

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// benchFile returns an authorized file with n keys and one of its keys.
func benchFile(b *testing.B, n int) (string, ssh.PublicKey) {
	b.Helper()
	var sb strings.Builder
	var last ssh.PublicKey
	seed := make([]byte, 32)
	for i := 0; i < n; i++ {
		seed[0], seed[1], seed[2] = byte(i), byte(i>>8), byte(i>>16)
		pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sb, "host=\"h%d.dyn.example.com\" %s", i, ssh.MarshalAuthorizedKey(pub))
		last = pub
	}
	return sb.String(), last
}

// BenchmarkLookup: key lookup time should not depend on the number of keys.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			text, key := benchFile(b, n)
			m, err := Parse(strings.NewReader(text), "bench", zones)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok := m.Lookup(key); !ok {
					b.Fatal("key not found")
				}
			}
		})
	}
}

// BenchmarkParse100k: what a reload of a 100,000-key file costs.
func BenchmarkParse100k(b *testing.B) {
	text, _ := benchFile(b, 100000)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(strings.NewReader(text), "bench", zones); err != nil {
			b.Fatal(err)
		}
	}
}
