#!/usr/bin/env bash
# Keeps the tree diagram in README.md equal to `pyang -f tree` of the module: it is the block between the
# "tree:begin" and "tree:end" markers (passed through the environment: awk -v would expand backslashes). With --check, changes nothing and fails if the block is out of date.
set -euo pipefail
cd "$(dirname "$0")"

module=$(ls vpp-singbox@*.yang)
tree=$(${PYANG:-pyang} -f tree -p . "$module")
new=$(TREE="$tree" awk '
	/<!-- tree:begin -->/ { print; print "```text"; print ENVIRON["TREE"]; print "```"; skip = 1; next }
	/<!-- tree:end -->/ { skip = 0 }
	!skip
' README.md)

if ! grep -q '<!-- tree:begin -->' README.md || ! grep -q '<!-- tree:end -->' README.md; then
	echo "README.md has no tree:begin/tree:end markers" >&2
	exit 1
fi
if [ "${1:-}" = --check ]; then
	if [ "$new" != "$(cat README.md)" ]; then
		echo "README.md tree diagram is out of date: run 'make -C yang tree'" >&2
		diff <(cat README.md) <(echo "$new") >&2 || true
		exit 1
	fi
	echo "tree diagram: up to date"
else
	echo "$new" >README.md
fi
