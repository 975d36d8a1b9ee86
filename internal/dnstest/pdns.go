package dnstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// setupPowerDNS prepares a PowerDNS Authoritative instance in s.Dir: a
// gsqlite3 database holding the zone and the TSIG key, and a pdns.conf.
//
// PowerDNS has no per-key type grant like BIND's update-policy or Knot's
// update-type: TSIG-ALLOW-DNSUPDATE lets a key change every record in the
// zone. The types are limited, as examples/pdns tells operators to, with a
// lua-dnsupdate-policy-script. PowerDNS skips a record that script refuses
// and still answers NOERROR.
func (s *Server) setupPowerDNS(zoneFile string, opts Options) error {
	types, acme, api := opts.Types, opts.ACME, opts.API
	dir, db := s.Dir, filepath.Join(s.Dir, "pdns.sqlite3")
	key := strings.TrimSuffix(s.Key.Name, ".")
	s.KeyFile = filepath.Join(dir, "tsig.key")
	if err := os.WriteFile(s.KeyFile, []byte(fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", key, s.Key.Secret)), 0o600); err != nil {
		return err
	}
	policy := filepath.Join(dir, "policy.lua")
	if err := os.WriteFile(policy, []byte(PowerDNSPolicy(key, []string{s.Zone}, []string{"127.0.0.0/8", "::1/128"}, types, acme, !opts.NoWildcards)), 0o644); err != nil {
		return err
	}
	backend := "launch=gsqlite3\ngsqlite3-database=" + db + "\n"
	if opts.PgsqlPort != 0 {
		backend = fmt.Sprintf("launch=gpgsql\ngpgsql-host=127.0.0.1\ngpgsql-port=%d\ngpgsql-dbname=pdns\ngpgsql-user=postgres\n", opts.PgsqlPort)
	}
	conf := backend + fmt.Sprintf(`local-address=127.0.0.1, ::1
local-port=%[2]d
daemon=no
guardian=no
disable-syslog=yes
loglevel=6
log-timestamp=no
socket-dir=%[3]s
security-poll-suffix=
dnsupdate=yes
allow-dnsupdate-from=127.0.0.0/8,::1
lua-dnsupdate-policy-script=%[4]s
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
zone-cache-refresh-interval=0
`, "", s.Port, dir, policy)
	if api {
		port, err := FreePort()
		if err != nil {
			return err
		}
		s.APIKey = randomSecret()
		s.APIURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		s.APIKeyFile = filepath.Join(dir, "api.key")
		if err := os.WriteFile(s.APIKeyFile, []byte(s.APIKey+"\n"), 0o600); err != nil {
			return err
		}
		conf += fmt.Sprintf("webserver=yes\nwebserver-address=127.0.0.1\nwebserver-port=%d\nwebserver-allow-from=127.0.0.0/8\napi=yes\napi-key=%s\n", port, s.APIKey)
	}
	if err := os.WriteFile(filepath.Join(dir, "pdns.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if opts.Follows != nil {
		return nil // the database, replicated, has it all
	}
	if opts.PgsqlPort == 0 {
		schema, err := os.Open("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
		if err != nil {
			return fmt.Errorf("PowerDNS sqlite3 schema: %w (install pdns-backend-sqlite3)", err)
		}
		defer schema.Close()
		cmd := exec.Command("sqlite3", db)
		cmd.Stdin = schema
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sqlite3 %s: %v: %s", db, err, out)
		}
	}
	for _, args := range [][]string{
		{"load-zone", s.Zone, zoneFile},
		{"import-tsig-key", key, "hmac-sha256", s.Key.Secret},
		{"set-meta", s.Zone, "TSIG-ALLOW-DNSUPDATE", key},
		{"set-meta", s.Zone, "SOA-EDIT-DNSUPDATE", "INCREASE"},
		{"set-meta", s.Zone, "SOA-EDIT-API", "INCREASE"},
	} {
		cmd := exec.Command("pdnsutil", append([]string{"--config-dir=" + dir}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pdnsutil %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// PowerDNSPolicy is a lua-dnsupdate-policy-script that lets the TSIG key
// named key, sending from one of the networks in from, change the record
// types in types (e.g. "A") below the apex of the zones in zones, and
// nothing else. With
// such a script PowerDNS leaves every other check to it: neither
// allow-dnsupdate-from nor TSIG-ALLOW-DNSUPDATE applies any more. The
// signature itself is still verified before the script runs.
// examples/pdns-dnsupdate-policy.lua is this script for key "sshdyn".
//
// With wildcards false it also refuses every name starting with "*.":
// the wildcards a line with the wildcard option sets.
func PowerDNSPolicy(key string, zones, from, types []string, acme, wildcards bool) string {
	var zs, nets, allowed []string
	for _, z := range zones {
		zs = append(zs, fmt.Sprintf("[%q] = true", strings.TrimSuffix(strings.ToLower(z), ".")+"."))
	}
	for _, n := range from {
		nets = append(nets, fmt.Sprintf("from:addMask(%q)", n))
	}
	for _, t := range types {
		allowed = append(allowed, fmt.Sprintf("[pdns.%s] = true", t))
	}
	return fmt.Sprintf(`-- lua-dnsupdate-policy-script for sshdyn: the TSIG key %[1]s may change
-- only these record types, only below the apex of these zones, only from
-- these networks; with acme = true also TXT records at _acme-challenge
-- names (ACME DNS-01 challenges), and nowhere else; with wildcards =
-- false not at wildcard names (*.HOST) either. With a policy script
-- PowerDNS checks neither allow-dnsupdate-from nor TSIG-ALLOW-DNSUPDATE:
-- this script is the policy.
local key = newDN(%[1]q)
local zones = { %[2]s }
local types = { %[3]s }
local acme = %[5]t
local wildcards = %[6]t
local from = newNMG()
%[4]s

local function challenge(input)
  return acme and input:getQType() == pdns.TXT
    and input:getQName():toString():lower():sub(1, 16) == "_acme-challenge."
end

function updatepolicy(input)
  return input:getTsigName():toString() == key:toString()
    and zones[input:getZoneName():toString()] == true
    and input:getQName():countLabels() > input:getZoneName():countLabels()
    and (types[input:getQType()] == true or challenge(input))
    and (wildcards or input:getQName():toString():sub(1, 2) ~= "*.")
    and from:match(input:getRemote())
end
`, key+".", strings.Join(zs, ", "), strings.Join(allowed, ", "), strings.Join(nets, "\n"), acme, wildcards)
}
