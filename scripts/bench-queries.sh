#!/usr/bin/env bash
# Measures the embedded primary's query rate beside Knot, NSD and BIND
# (BENCHMARKS.md, "The embedded primary's query rate"): installs dnsperf,
# NSD, BIND and Knot, then runs bench.BenchmarkQueryRate. About 6 minutes
# for both sizes; everything is on loopback. Flags after the command:
# -query-sizes 10000,1000000, -query-rounds 3, -query-seconds 5.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
scripts/need.sh dnsperf:dnsperf nsd:nsd named:bind9 knotd:knot
command -v go >/dev/null 2>&1 || { echo "bench-queries.sh: Go is needed (https://go.dev/doc/install; /usr/local/go/bin on PATH)" >&2; exit 1; }
go test -run '^$' -bench '^BenchmarkQueryRate$' -benchtime 1x -timeout 60m ./bench "$@"
