package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// StartWithSecondary starts sshdyn's embedded primary with opts, made to
// allow transfers from 127.0.0.1 and to NOTIFY a secondary of kind (bind
// or knot), and that secondary; it returns both once the secondary
// serves the zone.
func StartWithSecondary(t testing.TB, kind string, opts Options) (primary, secondary *Server) {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts.AllowTransfer = append(opts.AllowTransfer, netip.MustParsePrefix("127.0.0.1/32"))
	opts.Notify = append(opts.Notify, "127.0.0.1:"+strconv.Itoa(port))
	primary = Start(t, "sshdyn", opts)
	return primary, StartSecondary(t, kind, port, primary)
}

// StartSecondary starts a real secondary ("bind" or "knot") on port for
// primary's zone: it transfers the zone from primary, signed with
// primary.XfrKey, and accepts NOTIFY from 127.0.0.1 signed with the same
// key. It returns once the secondary serves the zone. Pick port with
// FreePort first when the primary must know it (to NOTIFY it).
func StartSecondary(t testing.TB, kind string, port int, primary *Server) *Server {
	t.Helper()
	if primary.XfrKey.Name == "" {
		t.Fatal("dnstest: the primary has no transfer key (set Options.AllowTransfer)")
	}
	pport := netip.MustParseAddrPort(primary.Addr).Port()
	dir, err := os.MkdirTemp("", "dnstest-secondary-"+kind+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{
		Kind:  kind,
		Port:  port,
		Addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Addr6: net.JoinHostPort("::1", strconv.Itoa(port)),
		Zone:  primary.Zone,
		Dir:   dir,
		t:     t,
		token: primary.token,
	}
	key := primary.XfrKey
	keyName := strings.TrimSuffix(key.Name, ".")
	var args []string
	switch kind {
	case "bind":
		conf := filepath.Join(dir, "named.conf")
		text := bindOptions(dir, port) + "};\n" + fmt.Sprintf(`controls { };
key %[3]q { algorithm hmac-sha256; secret %[4]q; };
zone %[5]q {
	type secondary;
	primaries port %[6]d { 127.0.0.1 key %[3]q; };
	allow-transfer { 127.0.0.1; ::1; };
	file "%[1]s/secondary.zone";
};
`, dir, port, keyName, key.Secret, s.Zone, pport)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = []string{"named", "-g", "-d", "3", "-c", conf}
	case "knot":
		conf := filepath.Join(dir, "knot.conf")
		text := knotHead(dir, port, keyName, key.Secret) + fmt.Sprintf(`remote:
  - id: primary
    address: 127.0.0.1@%[6]d
    key: %[3]s
acl:
  - id: notify
    address: 127.0.0.1
    key: %[3]s
    action: notify
  - id: transfer
    address: [127.0.0.1, ::1]
    action: transfer
template:
  - id: default
    storage: %[1]q
    file: "%%s.zone"
zone:
  - domain: %[5]s
    master: primary
    acl: [notify, transfer]
`, dir, port, keyName, key.Secret, s.Zone, pport)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = []string{"knotd", "-c", conf}
	default:
		t.Fatalf("dnstest: no secondary of kind %q", kind)
	}
	if err := s.launch(args); err != nil {
		t.Fatalf("dnstest: starting a %s secondary: %v", kind, err)
	}
	return s
}
