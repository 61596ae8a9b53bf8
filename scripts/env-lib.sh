# shellcheck shell=bash
# Shared by scripts/env-build and scripts/in-env: where the environment lives and what it is keyed on.
# The environment is a Debian trixie rootfs plus a Python venv, both cached OUTSIDE the checkout and named after
# a hash of their inputs, so a changed input builds a new one beside the old and nothing is ever rebuilt in place
# under a running command.

SINGBOX_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SINGBOX_ENV_CACHE=${SINGBOX_ENV_CACHE:-/var/cache/vpp-singbox-env}
SINGBOX_SUITE=trixie

_hash_files() { cat "$@" | sha256sum | cut -c1-16; }

singbox_rootfs_key() {
	_hash_files "$SINGBOX_TOP/scripts/rootfs-packages.txt" "$SINGBOX_TOP/scripts/env-build" \
		"$SINGBOX_TOP/scripts/env-lib.sh"
}

singbox_venv_key() {
	{ singbox_rootfs_key; cat "$SINGBOX_TOP/pyproject.toml" "$SINGBOX_TOP/scripts/venv-constraints.txt"; } |
		sha256sum | cut -c1-16
}

singbox_rootfs_dir() { echo "$SINGBOX_ENV_CACHE/rootfs-$(singbox_rootfs_key)"; }
singbox_venv_dir() { echo "$SINGBOX_ENV_CACHE/venv-$(singbox_venv_key)"; }

# The environment variables every command inside sees: the host's proxy CA is in the rootfs bundle.
singbox_bwrap_env=(
	--setenv HOME /root
	--setenv PATH /opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	--setenv VIRTUAL_ENV /opt/venv
	--setenv PIP_CERT /etc/ssl/certs/ca-certificates.crt
	--setenv SSL_CERT_FILE /etc/ssl/certs/ca-certificates.crt
	--setenv REQUESTS_CA_BUNDLE /etc/ssl/certs/ca-certificates.crt
	--setenv SINGBOX_IN_ENV 1
	--unsetenv PIP_FIND_LINKS
	--unsetenv PYTHONPATH
	--unsetenv PYENV_VERSION
	--unsetenv SSL_CERT_DIR
	--unsetenv CURL_CA_BUNDLE
)

# bwrap arguments for a rootfs: its own /dev/shm (sysrepo's running datastore lives there), /tmp and /run, the
# host network, every capability (tests create network namespaces), a pid namespace so nothing outlives the command.
singbox_bwrap_base() {
	local rootfs=$1
	printf '%s\0' \
		--bind "$rootfs" / \
		--proc /proc \
		--dev-bind /dev /dev \
		--tmpfs /dev/shm \
		--bind /sys /sys \
		--tmpfs /tmp \
		--tmpfs /run \
		--ro-bind /etc/resolv.conf /etc/resolv.conf \
		--ro-bind /etc/hosts /etc/hosts \
		--unshare-pid \
		--unshare-ipc \
		--die-with-parent \
		--cap-add ALL
}
