#!/bin/sh
# tidy.sh - source rules that the compiler does not enforce.
#  - the consensus core stays pure: no sockets, clocks, event loop or rand;
#  - no strcpy/sprintf/atoi/strtok anywhere;
#  - no FIXME left behind;
#  - clang-format agrees with every C file (when clang-format is installed);
#  - no function over 80 lines but main() and the tests (longfn.py; the
#    ones still to split are listed in tests/tidy/long-functions.txt).
set -u
root=${1:-.}
cd "$root" || exit 2
fail=0
say() { printf 'tidy: %s\n' "$*"; fail=1; }

core=$(find pbft-replica/core -name '*.[ch]' 2>/dev/null)
if [ -n "$core" ]; then
	hits=$(grep -nE '#include[[:space:]]*<(ev\.h|sys/socket\.h|time\.h|sys/time\.h|unistd\.h|fcntl\.h|stdio\.h|pthread\.h)>' $core)
	[ -n "$hits" ] && say "core includes an I/O or clock header:
$hits"
	hits=$(grep -nE '\b(rand|random|srand|time|clock_gettime|gettimeofday|getrandom|printf|fprintf|fopen|open|read|write|socket)[[:space:]]*\(' $core | grep -vE '^\S+:[0-9]+:\s*(\*|/\*)')
	[ -n "$hits" ] && say "core calls an impure function:
$hits"
fi

# Module boundaries: pbftd and pbftctl include nothing of pbft-replica/ and
# link none of its code; they see the replica only through common/
# (svcop.h, sup_proto.h, msg.h, ...). A header is caught by its path or,
# quoted, by its name (unless common/ or the program's own folder has one of that
# name); a meson target by naming pbft-replica/ or any library, dependency
# or include directory that pbft-replica/'s meson files define.
rheaders=$(cd pbft-replica 2>/dev/null && find . -name '*.h' | sed 's#^\./##')
rvars=$(find pbft-replica -name meson.build -exec sed -nE \
    's/^([A-Za-z_][A-Za-z_0-9]*_(lib|dep|inc|src|sources))[[:space:]]*=.*/\1/p' {} + |
    sort -u | paste -sd'|' -)
for d in pbftd pbftctl; do
	[ -d "$d" ] || continue
	hits=$(grep -nE '#include[[:space:]]*["<][^">]*pbft-replica/' "$d"/*.[ch])
	[ -n "$hits" ] && say "$d includes a pbft-replica/ header by path:
$hits"
	for h in $rheaders; do
		b=${h##*/}
		[ -e "common/$b" ] || [ -e "$d/$b" ] && continue
		hits=$(grep -nE "#include[[:space:]]*\"([^\"]*/)?$b\"" "$d"/*.[ch])
		[ -n "$hits" ] && say "$d includes pbft-replica/$h:
$hits"
	done
	hits=$(grep -nE "pbft-replica|\b(${rvars:-pbftsvc_dep})\b" "$d/meson.build")
	[ -n "$hits" ] && say "$d/meson.build reaches into pbft-replica/:
$hits"
done

src=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
if [ -n "$src" ]; then
	hits=$(grep -nE '(^|[^_a-zA-Z0-9])(strcpy|sprintf|vsprintf|atoi|atol|strtok|gets)[[:space:]]*\(' $src)
	[ -n "$hits" ] && say "banned function:
$hits"
	hits=$(grep -n 'FIXME' $src)
	[ -n "$hits" ] && say "FIXME left in:
$hits"
	if command -v clang-format >/dev/null 2>&1 && [ "${PBFT_TIDY_FORMAT:-1}" = 1 ]; then
		for f in $src; do
			if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
				say "clang-format disagrees with $f (run clang-format -i $f)"
			fi
		done
	fi
fi
if [ -n "$src" ] && command -v python3 >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	hits=$(python3 "$root/tests/tidy/longfn.py" . $(echo "$src" | grep '\.c$'))
	[ -n "$hits" ] && say "function too long:
$hits"
fi
[ $fail = 0 ] && echo "tidy: ok"
exit $fail
