#!/usr/bin/env bash
# Runs sshdyn's whole test suite on a fresh Debian 12 machine: installs
# the real DNS servers and SSH client the tests drive, then gofmt, go vet,
# go test -race, and a short fuzz run of every parser.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/need.sh named:bind9 tsig-keygen:bind9 named-checkconf:bind9-utils dnssec-verify:bind9-utils dig:bind9-dnsutils nsupdate:bind9-dnsutils delv:bind9-dnsutils \
	knotd:knot keymgr:knot knsupdate:knot-dnsutils kdig:knot-dnsutils \
	pdns_server:pdns-server pdnsutil:pdns-server sqlite3:sqlite3 \
	/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql:pdns-backend-sqlite3 \
	ssh:openssh-client /usr/sbin/sshd:openssh-server /usr/sbin/unbound:unbound \
	dbclient:dropbear-bin dropbearconvert:dropbear-bin plink:putty-tools puttygen:putty-tools \
	systemd-analyze:systemd \
	ddclient:ddclient inadyn:inadyn curl:curl ssh-audit:ssh-audit \
	pebble:pebble certbot:certbot lego:lego dehydrated:dehydrated \
	/usr/sbin/tinydns:tinydns /usr/sbin/tinydns-data:tinydns \
	/usr/lib/postgresql/15/bin/initdb:postgresql /usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql:pdns-backend-pgsql \
	chromium:chromium /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core msmtp:msmtp ip:iproute2 \
	mmdebstrap:mmdebstrap lintian:lintian podman:podman newuidmap:uidmap mandoc:mandoc
command -v go >/dev/null 2>&1 || { echo "test.sh: Go is needed (https://go.dev/doc/install; /usr/local/go/bin on PATH)" >&2; exit 1; }

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad" >&2; exit 1; fi
# Tests that start DNS daemons, real clients or need root carry the build
# tag "integration"; this script runs them all. Without the tag, go test
# ./... runs what needs neither (a contributor's quick check).
echo "== go vet"
go vet -tags integration ./...
# Many DNS operators run FreeBSD; the socket options are per system
# (internal/sockopt), and these builds keep it so on purpose.
echo "== cross builds (freebsd, darwin, windows)"
for goos in freebsd darwin windows; do
	GOOS=$goos GOARCH=amd64 go build -o /dev/null ./... || { echo "GOOS=$goos build failed" >&2; exit 1; }
	GOOS=$goos GOARCH=amd64 go build -o /dev/null ./cmd/sshdyn
done
# Without the integration tag no test needs a DNS daemon (the SSH and
# HTTP fronts and the core run against the in-memory backend or the
# embedded primary in the test process): run them with a PATH that has
# none (only Go's directory and the system's /usr/bin, /bin).
echo "== go test ./... without the integration tag, no DNS daemons on PATH"
bare="$(dirname "$(command -v go)"):/usr/bin:/bin"
for d in named knotd pdns_server tinydns; do
	if PATH="$bare" command -v "$d" >/dev/null; then echo "test.sh: $d is on $bare" >&2; exit 1; fi
done
PATH="$bare" go test -count=1 ./...
echo "== go test -race"
go test -race -count=1 -timeout 15m -tags integration ./...
# A count, not a duration: a duration -fuzztime can fail with "context
# deadline exceeded" and no crasher in Go 1.26 (golang/go#75804).
echo "== fuzz (200000 inputs each)"
for target in ./authorized:FuzzParse ./config:FuzzParse ./tsig:FuzzParse ./krl:FuzzParse ./sshd:FuzzParseCommand ./sshd:FuzzParseSSHFPInput ./zone:FuzzParse ./zone:FuzzUpdate ./zone:FuzzJournal ./tinydns:FuzzOperatorLines; do
	if ! out=$(go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 200000x "${target%%:*}" 2>&1); then
		printf '%s\n' "$out" >&2
		exit 1
	fi
	echo "ok ${target}"
done
# The load-back property writes and fsyncs a zone per input: fewer inputs.
if ! out=$(go test -run '^$' -fuzz '^FuzzUpdateSequence$' -fuzztime 10000x ./zone 2>&1); then
	printf '%s\n' "$out" >&2
	exit 1
fi
echo "ok ./zone:FuzzUpdateSequence"
