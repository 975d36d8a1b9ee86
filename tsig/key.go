// Package tsig reads TSIG keys (RFC 8945) from the files operators
// already have, and signs and verifies with them.
package tsig

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/secret"
)

// Key is a TSIG key (RFC 8945) shared with a zone's primary.
type Key struct {
	Name      string // fully qualified, lower case, e.g. "sshdyn."
	Algorithm string // one of dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512
	Secret    string // base64, as in the key file
}

// algorithm returns miekg/dns's name for an algorithm named in a key
// file. Older HMACs (MD5, SHA-1, SHA-224) are refused on purpose.
func algorithm(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "hmac-sha256":
		return dns.HmacSHA256, true
	case "hmac-sha384":
		return dns.HmacSHA384, true
	case "hmac-sha512":
		return dns.HmacSHA512, true
	}
	return "", false
}

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 64 << 10

// Load reads a TSIG key file; see Parse for the formats.
func Load(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("TSIG key: %w", err)
	}
	defer f.Close()
	k, err := Parse(f)
	if err != nil {
		return Key{}, fmt.Errorf("TSIG key %s: %w", path, err)
	}
	return k, nil
}

// LoadPrivate is Load for a key sshdyn uses: a file every user may read
// is refused, and a permission error says how to fix it.
func LoadPrivate(path string) (Key, error) {
	if err := secret.Check("TSIG key", path); err != nil {
		return Key{}, err
	}
	k, err := Load(path)
	return k, secret.Hint(path, err)
}

// Parse reads a TSIG key in one of the formats users already have:
//
//   - BIND's key statement, as printed by tsig-keygen and written by named
//     as session.key:  key "name" { algorithm hmac-sha256; secret "..."; };
//   - the one-line form used by knsupdate -y and printed by keymgr -t:
//     [hmac-sha256:]name:secret, also accepted inside a "# " comment line
//     so that keymgr's whole output can be saved as the key file.
func Parse(r io.Reader) (Key, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return Key{}, err
	}
	if len(b) > maxKeyFile {
		return Key{}, errors.New("file too large for a key file")
	}
	text := string(b)
	if toks, err := bindTokens(text); err == nil && len(toks) > 0 && strings.EqualFold(toks[0].s, "key") {
		return parseBINDKey(toks)
	} else if err != nil && strings.HasPrefix(strings.TrimSpace(text), "key") {
		return Key{}, err
	}
	return parseOneLineKey(text)
}

func parseOneLineKey(text string) (Key, error) {
	var found []string
	var comment string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			// keymgr -t prints "# hmac-sha256:name:secret" above its YAML.
			c := strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if comment == "" && strings.Count(c, ":") == 2 && !strings.ContainsAny(c, " \t") {
				comment = c
			}
		case comment != "":
			// The rest of keymgr's output is YAML; the comment line has it all.
		default:
			found = append(found, line)
		}
	}
	if comment != "" {
		found = []string{comment}
	}
	if len(found) != 1 {
		return Key{}, errors.New(`no key found: want BIND's key "name" { algorithm ...; secret "..."; }; or one line hmac-sha256:name:secret`)
	}
	parts := strings.Split(found[0], ":")
	alg := "hmac-sha256"
	switch len(parts) {
	case 2:
	case 3:
		alg, parts = parts[0], parts[1:]
	default:
		return Key{}, errors.New("one-line key must be [algorithm:]name:secret")
	}
	return newKey(parts[0], alg, parts[1])
}

func newKey(name, alg, secret string) (Key, error) {
	a, ok := algorithm(alg)
	if !ok {
		return Key{}, fmt.Errorf("algorithm %q not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)", alg)
	}
	if name == "" {
		return Key{}, errors.New("key name is empty")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return Key{}, fmt.Errorf("key name %q is not a domain name", name)
	}
	if secret == "" {
		return Key{}, errors.New("secret is empty")
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(raw) == 0 {
		return Key{}, errors.New("secret is not valid base64")
	}
	return Key{Name: dns.CanonicalName(name), Algorithm: a, Secret: secret}, nil
}

type token struct {
	s      string
	quoted bool
}

// bindTokens splits named.conf syntax into words, quoted strings and the
// punctuation { } ;, dropping #, // and /* */ comments.
func bindTokens(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '#' || strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{s: string(c)})
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			toks = append(toks, token{s: s[i+1 : i+1+end], quoted: true})
			i += end + 2
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune(`{};"#`, rune(s[j])) {
				j++
			}
			toks = append(toks, token{s: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// parseBINDKey parses exactly one key statement.
func parseBINDKey(toks []token) (Key, error) {
	bad := errors.New(`malformed key statement: want key "name" { algorithm hmac-sha256; secret "..."; };`)
	if len(toks) < 4 || toks[2].s != "{" || toks[2].quoted {
		return Key{}, bad
	}
	name := toks[1].s
	var alg, secret string
	i := 3
	for ; i < len(toks) && !(toks[i].s == "}" && !toks[i].quoted); i += 3 {
		if i+2 >= len(toks) || toks[i+2].s != ";" || toks[i+2].quoted {
			return Key{}, bad
		}
		switch strings.ToLower(toks[i].s) {
		case "algorithm":
			alg = toks[i+1].s
		case "secret":
			secret = toks[i+1].s
		default:
			return Key{}, fmt.Errorf("unknown clause %q in key statement", toks[i].s)
		}
	}
	// i is at the closing brace, which must be followed by ";" and nothing else.
	rest := toks[min(i+1, len(toks)):]
	if i >= len(toks) || len(rest) == 0 || rest[0].s != ";" {
		return Key{}, bad
	}
	if len(rest) > 1 {
		return Key{}, errors.New("more than one statement in key file: keep one key per file")
	}
	if alg == "" {
		return Key{}, errors.New("key statement has no algorithm")
	}
	return newKey(name, alg, secret)
}
