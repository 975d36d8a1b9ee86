#!/usr/bin/env bash
# Runs sshdyn's benchmark suite (BENCHMARKS.md) on a Debian 12 machine, as
# root: installs BIND, Knot, their update tools and a second OpenSSH sshd,
# then measures sshdyn beside OpenSSH + nsupdate/knsupdate and the floors,
# and prints the report. Takes about 5 minutes (-quick: 2); everything is on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"

scripts/need.sh named:bind9 nsupdate:bind9-dnsutils knotd:knot knsupdate:knot-dnsutils \
	ssh-keygen:openssh-client /usr/sbin/sshd:openssh-server
command -v go >/dev/null 2>&1 || { echo "bench.sh: Go is needed (https://go.dev/doc/install; /usr/local/go/bin on PATH)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: run as root: it starts a second sshd and adds the user sshdyn-bench" >&2; exit 1; }

go test -run '^$' -bench '^BenchmarkComparison$' -benchtime 1x -timeout 30m ./bench "$@"
