#!/usr/bin/env bash
# Validates every instance document in examples/ with yanglint: each valid one must pass, each invalid one must fail
# with the FIRST error being the one its .expect file states (message substring and data path), so an example that
# fails for some other reason does not count as a rejection.
#
# The document type comes from the file name prefix: config-, data-, rpc-, reply-, notif-. RPCs, replies and
# notifications are validated against examples/valid/config-full.xml as the operational datastore (their leafrefs
# point into it). An .expect file may say "features: none" to validate with every feature of vpp-singbox disabled.
#
# Usage: check-examples.sh [YANGLINT_ARGS...]   (e.g. -p DIR for ietf-netconf-acm)
set -uo pipefail
cd "$(dirname "$0")"

module=$(ls vpp-singbox@*.yang)
ops=examples/valid/config-full.xml
failures=0
checked=0

doc_type() { # file -> config|data|rpc|reply|notif
	local base=${1##*/}
	echo "${base%%-*}"
}

lint() { # type features file -> yanglint's stderr; status is yanglint's
	local type=$1 features=$2 file=$3 extra=()
	case $type in rpc | reply | notif) extra+=(-O "$ops") ;; esac
	[ "$features" = none ] && extra+=(-F vpp-singbox:)
	yanglint -p . "${lint_args[@]}" -t "$type" "${extra[@]}" "$module" "$file" 2>&1 >/dev/null
}

lint_args=("$@")

for file in examples/valid/*.xml examples/valid/*.json; do
	checked=$((checked + 1))
	if ! out=$(lint "$(doc_type "$file")" all "$file"); then
		echo "FAIL (valid example rejected): $file"
		echo "$out" | sed 's/^/    /'
		failures=$((failures + 1))
	fi
done

for expect in examples/invalid/*.expect; do
	checked=$((checked + 1))
	stem=${expect%.expect}
	file=$(ls "$stem".xml "$stem".json 2>/dev/null | head -n 1)
	if [ -z "$file" ]; then
		echo "FAIL (no document for $expect)"
		failures=$((failures + 1))
		continue
	fi
	type=$(sed -n 's/^type: //p' "$expect")
	features=$(sed -n 's/^features: //p' "$expect")
	message=$(sed -n 's/^message: //p' "$expect")
	path=$(sed -n 's/^path: //p' "$expect")
	if out=$(lint "$type" "${features:-all}" "$file"); then
		echo "FAIL (invalid example accepted): $file"
		failures=$((failures + 1))
		continue
	fi
	# The first error: from the first "libyang err" line up to the next one (union errors span several lines).
	first=$(echo "$out" | awk '/^libyang err/ { n++ } n == 1 && !/^YANGLINT/' | tr '\n' ' ')
	if [[ "$first" != *"$message"* ]] || [[ "$first" != *"($path)"* ]]; then
		echo "FAIL (rejected for another reason): $file"
		echo "    expected: $message ($path)"
		echo "    got:      $first"
		failures=$((failures + 1))
	fi
done

echo "examples: $checked checked, $failures failed"
[ "$failures" -eq 0 ]
