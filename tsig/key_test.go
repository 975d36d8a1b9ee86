package tsig

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	const secret = "9fLxb1iS0Oaa3jy9Nm4qs0vwNWSrzhD9BBQ/Xl4tYAc="
	want := Key{Name: "sshdyn.", Algorithm: dns.HmacSHA256, Secret: secret}
	cases := []struct {
		name, in string
		want     Key
	}{
		{"tsig-keygen", "key \"sshdyn\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n", want},
		{"bind with comments", "# made by tsig-keygen\n// c++ comment\n/* block */ key \"SSHDYN.\" { algorithm HMAC-SHA256; secret \"" + secret + "\"; };", want},
		{"bind session.key", "key \"sshdyn\" {\n\talgorithm hmac-sha512;\n\tsecret \"" + secret + "\";\n};\n", Key{Name: "sshdyn.", Algorithm: dns.HmacSHA512, Secret: secret}},
		{"one line", "hmac-sha256:sshdyn:" + secret + "\n", want},
		{"one line sha384", "hmac-sha384:sshdyn:" + secret, Key{Name: "sshdyn.", Algorithm: dns.HmacSHA384, Secret: secret}},
		{"one line default algorithm", "sshdyn:" + secret, want},
		{"keymgr output", "# hmac-sha256:sshdyn:" + secret + "\nkey:\n  - id: sshdyn\n    algorithm: hmac-sha256\n    secret: " + secret + "\n", want},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const secret = "9fLxb1iS0Oaa3jy9Nm4qs0vwNWSrzhD9BBQ/Xl4tYAc="
	cases := []struct{ name, in, want string }{
		{"empty", "", "no key found"},
		{"md5", "hmac-md5:k:" + secret, "not supported"},
		{"bad base64", "hmac-sha256:k:not base64!", "not valid base64"},
		{"empty secret", "hmac-sha256:k:", "secret is empty"},
		{"two lines", "hmac-sha256:a:" + secret + "\nhmac-sha256:b:" + secret, "no key found"},
		{"four fields", "hmac-sha256:a:b:" + secret, "[algorithm:]name:secret"},
		{"bind missing semicolon", `key "k" { algorithm hmac-sha256 secret "` + secret + `"; };`, "malformed"},
		{"bind no algorithm", `key "k" { secret "` + secret + `"; };`, "no algorithm"},
		{"bind unknown clause", `key "k" { algorithm hmac-sha256; secret "` + secret + `"; color blue; };`, "unknown clause"},
		{"bind two keys", `key "a" { algorithm hmac-sha256; secret "` + secret + `"; }; key "b" { algorithm hmac-sha256; secret "` + secret + `"; };`, "one key per file"},
		{"bind unterminated", `key "k { algorithm hmac-sha256;`, "unterminated"},
		{"bind truncated", `key "k" { algorithm hmac-sha256; secret "` + secret + `";`, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };")
	f.Add("hmac-sha256:k:c2VjcmV0")
	f.Add("# hmac-sha256:k:c2VjcmV0\nkey:\n")
	f.Fuzz(func(t *testing.T, in string) {
		k, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if k.Name == "" || k.Secret == "" || k.Algorithm == "" {
			t.Fatalf("accepted an incomplete key %+v from %q", k, in)
		}
	})
}
