#!/usr/bin/env bash
# Runs sshdyn's whole test suite on a fresh Debian 12 machine: installs
# the real DNS servers and SSH client the tests drive, then gofmt, go vet,
# go test -race, and a short fuzz run of every parser.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in named:bind9 knotd:knot ssh:openssh-client dig:bind9-dnsutils; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
	# Keep the package scripts from starting the daemons on port 53.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod 755 /usr/sbin/policy-rc.d
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		bind9 bind9-utils bind9-dnsutils knot knot-dnsutils openssh-client "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "test.sh: Go is needed (https://go.dev/doc/install; /usr/local/go/bin on PATH)" >&2; exit 1; }

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad" >&2; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 15m ./...
echo "== fuzz (10s each)"
for target in ./authorized:FuzzParse ./config:FuzzParse ./update:FuzzParseKey; do
	go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 10s "${target%%:*}" >/dev/null
	echo "ok ${target}"
done
