#!/usr/bin/env sh
# acme.sh DNS API for sshdyn: copy to ~/.acme.sh/dnsapi/dns_sshdyn.sh, then
#   acme.sh --issue --dns dns_sshdyn -d HOST -d '*.HOST'
# SSHDYN_SSH is the ssh command (default "ssh sshdyn": the ssh_config
# block pins the server and the key).

dns_sshdyn_add() {
	fulldomain=$1
	txtvalue=$2
	_info "sshdyn: adding $fulldomain"
	if ! ${SSHDYN_SSH:-ssh sshdyn} acme present "$fulldomain" "$txtvalue"; then
		_err "sshdyn: acme present $fulldomain failed"
		return 1
	fi
}

dns_sshdyn_rm() {
	fulldomain=$1
	txtvalue=$2
	_info "sshdyn: removing $fulldomain"
	${SSHDYN_SSH:-ssh sshdyn} acme cleanup "$fulldomain" "$txtvalue"
}
