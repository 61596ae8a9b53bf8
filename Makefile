# The two commands of README.md, and a few for developers. Everything runs inside the project's trixie
# environment (scripts/in-env builds it on first use, cached outside the checkout).
.PHONY: run test env shell check-yang fuzz-long bench plugin deb clean

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

# The plugin's fuzzers for a long run (FUZZ_SECONDS each, default one hour).
fuzz-long:
	@scripts/in-env make -C plugin fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-3600}

# Debian packages of the committed tree (HEAD) into build/deb/; without VPP's vpp-dev:
#   make deb DEB_BUILD_PROFILES=pkg.vpp-singbox.noplugin
deb:
	@DEB_BUILD_PROFILES="$(DEB_BUILD_PROFILES)" packaging/build-deb

clean:
	rm -rf .run build
