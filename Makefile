# The two commands of README.md, and a few for developers. Everything runs inside the project's trixie
# environment (scripts/in-env builds it on first use, cached outside the checkout).
.PHONY: run test env shell check-yang fuzz-long plugin deb clean

# Sets up what is missing, then runs every service of the product in the foreground (Ctrl-C / SIGTERM stops them).
run:
	@scripts/in-env python -m singbox_agent.appliance --state-dir .run

# Sets up what is missing, then runs every test.
test:
	@scripts/run-tests

env:
	@scripts/env-build

shell:
	@scripts/in-env bash

# The YANG checks of make test alone: pyang --strict --lint, yanglint, the examples, the tree.
check-yang:
	@scripts/in-env make -C yang check

# The VPP plugin built against the VPP installed under VPP_PREFIX, into build/plugin/ (see plugin/CMakeLists.txt).
plugin:
	@test -n "$(VPP_PREFIX)" || { echo "make plugin: set VPP_PREFIX to an installed VPP (e.g. /opt/vpp)" >&2; exit 1; }
	@VPP_PREFIX="$(VPP_PREFIX)" scripts/in-env sh -c 'cmake -S plugin -B build/plugin -G Ninja \
		-DCMAKE_BUILD_TYPE=Release -DVPP_PREFIX="$$VPP_PREFIX" && ninja -C build/plugin'

# The plugin's fuzzers for a long run (FUZZ_SECONDS each, default one hour).
fuzz-long:
	@scripts/in-env make -C plugin fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-3600}

# Debian packages of the committed tree (HEAD) into build/deb/, checked by lintian; without a VPP to build the
# plugin against (fd.io's vpp-dev, or VPP_PREFIX=/opt/vpp):
#   make deb DEB_BUILD_PROFILES=pkg.vpp-singbox.noplugin
deb:
	@DEB_BUILD_PROFILES="$(DEB_BUILD_PROFILES)" VPP_PREFIX="$(VPP_PREFIX)" packaging/build-deb

clean:
	rm -rf .run build
