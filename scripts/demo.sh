#!/usr/bin/env bash
# Runs sshdyn on this machine, complete: SSH on 127.0.0.1:2222 and the zone
# dyn.example.com served by sshdyn itself on 127.0.0.1:5353. Installs what
# the printed commands need (Debian: the OpenSSH client and dig), builds
# sshdyn, and runs "sshdyn demo", which writes its files to
# /tmp/sshdyn-demo and prints the ssh and dig commands to try.
# Arguments go to sshdyn demo (--dir, --ssh-port, --dns-port). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/need.sh ssh:openssh-client dig:bind9-dnsutils
command -v go >/dev/null 2>&1 || { echo "demo: Go 1.26 or newer is needed (https://go.dev/doc/install)" >&2; exit 1; }
mkdir -p bin
go build -o bin/sshdyn ./cmd/sshdyn
exec bin/sshdyn demo "$@"
