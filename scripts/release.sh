#!/usr/bin/env bash
# Usage: scripts/release.sh DIR [release flags]
# Writes every release artefact into DIR: static binaries (linux amd64,
# arm64, armv7; freebsd amd64; darwin arm64), the Debian packages, the
# container image as an OCI archive, and SHA256SUMS. Needs Go, git and,
# for the image, podman (scripts/test.sh installs what the tests need).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
[ $# -ge 1 ] || { echo "usage: scripts/release.sh DIR [-version V] [-targets T,...] [-no-image] [-rebuild]" >&2; exit 2; }
dir=$1; shift
exec go run ./internal/release "$@" "$dir"
