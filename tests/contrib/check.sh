#!/usr/bin/env bash
# check.sh names|promtool - checks of contrib/ (suite 'contrib'):
#   names:    every pbft_* metric that contrib/prometheus/pbft-rules.yml and
#             contrib/grafana/pbft.json use is one pbftd serves (pbftd/metrics.c;
#             a histogram's _bucket, _sum and _count count as its name), and
#             the dashboard is valid JSON with a query in every panel;
#   promtool: `promtool check rules` and `promtool test rules` on the
#             alerting rules and their cases (skipped without promtool).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
rules=$src/contrib/prometheus/pbft-rules.yml
dash=$src/contrib/grafana/pbft.json

case ${1:-} in
names)
	served=$(grep -oE '(TYPE |")pbft_[a-z_]*' "$src/pbftd/metrics.c" |
	    sed -E 's/^(TYPE |")//' | sort -u)
	used=$(grep -ho 'pbft_[a-z_]*' "$rules" "$dash" |
	    sed -E 's/_(bucket|sum|count)$//' | sort -u)
	bad=0
	for m in $used; do
		if ! grep -qx "$m" <<<"$served"; then
			echo "FAIL: $m is used in contrib/ but pbftd serves no such metric"
			bad=1
		fi
	done
	python3 - "$dash" <<'PY' || bad=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["panels"], "no panels"
for p in d["panels"]:
    assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
print("ok: %d panels, each with a query" % len(d["panels"]))
PY
	[ $bad = 0 ] || exit 1
	echo "ok: $(wc -w <<<"$used") metric names, all served by pbftd"
	;;
promtool)
	command -v promtool >/dev/null || { echo "SKIP: promtool not installed"; exit 77; }
	promtool check rules "$rules"
	cd "$(dirname "$rules")"
	promtool test rules pbft-rules.test.yml
	;;
*)
	echo "usage: check.sh names|promtool" >&2
	exit 2
	;;
esac
