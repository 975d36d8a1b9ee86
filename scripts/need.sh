#!/usr/bin/env bash
# Usage: need.sh COMMAND:PACKAGE...
# Installs (apt-get, Debian) the package of each command that is missing,
# with policy-rc.d keeping the package scripts from starting daemons. A
# COMMAND that starts with / is a file the package installs.
set -euo pipefail
pkgs=()
for pair in "$@"; do
	what=${pair%%:*}
	case $what in
	/*) [ -e "$what" ] || pkgs+=("${pair#*:}") ;;
	*) command -v "$what" >/dev/null 2>&1 || pkgs+=("${pair#*:}") ;;
	esac
done
[ ${#pkgs[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
	$sudo chmod 755 /usr/sbin/policy-rc.d
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${pkgs[@]}" | sort -u) >/dev/null
