#!/usr/bin/env bash
# Runs sshdyn on this machine against a throwaway BIND primary on loopback:
# installs what it needs (Debian), makes a zone dyn.example.com, a TSIG key,
# a client key and its authorized line, starts named on 127.0.0.1:5353 and
# sshdyn on 127.0.0.1:2222, and prints the ssh and dig commands to try.
# Everything lives in $DEMO_DIR (default /tmp/sshdyn-demo). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
dir=${DEMO_DIR:-/tmp/sshdyn-demo}
dns_port=${DNS_PORT:-5353}
ssh_port=${SSH_PORT:-2222}

scripts/need.sh named:bind9 tsig-keygen:bind9 dig:bind9-dnsutils ssh:openssh-client ssh-keygen:openssh-client
command -v go >/dev/null 2>&1 || { echo "demo: Go is needed (https://go.dev/doc/install)" >&2; exit 1; }

rm -rf "$dir"; mkdir -p "$dir/bind"; chmod 700 "$dir"
go build -o "$dir/sshdyn" ./cmd/sshdyn

tsig-keygen -a hmac-sha256 sshdyn > "$dir/tsig.key"; chmod 600 "$dir/tsig.key"
cat > "$dir/bind/db.dyn.example.com" <<ZONE
\$ORIGIN dyn.example.com.
\$TTL 300
@ IN SOA ns hostmaster 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
ZONE
cat > "$dir/bind/named.conf" <<CONF
options {
	directory "$dir/bind";
	pid-file "$dir/bind/named.pid";
	session-keyfile "$dir/bind/session.key";
	managed-keys-directory "$dir/bind";
	listen-on port $dns_port { 127.0.0.1; };
	listen-on-v6 port $dns_port { ::1; };
	recursion no; dnssec-validation no; notify no;
};
controls { };
include "$dir/tsig.key";
zone "dyn.example.com" {
	type primary;
	file "$dir/bind/db.dyn.example.com";
	update-policy { grant sshdyn zonesub A AAAA; };
};
CONF

ssh-keygen -q -t ed25519 -N "" -C demo-client -f "$dir/client_ed25519"
echo "host=\"home.dyn.example.com\" $(cat "$dir/client_ed25519.pub")" > "$dir/authorized_keys"
cat > "$dir/sshdyn.toml" <<CONF
listen = ["127.0.0.1:$ssh_port", "[::1]:$ssh_port"]
host_key = "$dir/host_ed25519"
authorized_keys = "$dir/authorized_keys"
allow_private = true   # the demo client connects from loopback

[[zone]]
name = "dyn.example.com"
primary = "127.0.0.1:$dns_port"
tsig_key = "$dir/tsig.key"
ttl = 60
CONF

named -g -c "$dir/bind/named.conf" > "$dir/named.log" 2>&1 &
named_pid=$!
"$dir/sshdyn" serve --config "$dir/sshdyn.toml" 2> >(tee "$dir/sshdyn.log" >&2) &
sshdyn_pid=$!
trap 'kill $sshdyn_pid $named_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 100); do [ -s "$dir/host_ed25519" ] && grep -q listening "$dir/sshdyn.log" 2>/dev/null && break; sleep 0.1; done
kill -0 $named_pid 2>/dev/null || { echo "demo: named failed to start; see $dir/named.log" >&2; exit 1; }
hostkey=$(ssh-keygen -y -f "$dir/host_ed25519")
printf '[127.0.0.1]:%s %s\n[::1]:%s %s\n' "$ssh_port" "$hostkey" "$ssh_port" "$hostkey" > "$dir/known_hosts"

ssh_cmd="ssh -F /dev/null -i $dir/client_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$dir/known_hosts -p $ssh_port 127.0.0.1"
cat <<MSG

sshdyn is running (logs above; files in $dir). In another terminal:

  $ssh_cmd update
  dig +short -p $dns_port @127.0.0.1 home.dyn.example.com A
  ${ssh_cmd/ 127.0.0.1/ -b 127.0.0.2 127.0.0.1} update     # from another address
  ${ssh_cmd/127.0.0.1/::1} update  # IPv6: sets AAAA
  $ssh_cmd status

Ctrl-C stops sshdyn and named.
MSG
wait $sshdyn_pid
