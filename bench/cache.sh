#!/usr/bin/env bash
# bench/cache.sh: what the cache of per-file partials buys, end to end.
#
# usage: bench/cache.sh [BUILDDIR]
# On the bench set (as bench/e2e.sh) with clfd -w 2 on a private socket and
# a private cache_dir, each the best of $RUNS runs (RUNS, default 3):
#   no-cache    submit --no-cache (every byte read, nothing stored)
#   cold        submit with the cache emptied first (read and stored)
#   warm        submit again (every file a hit), and after a restart
# and on a plain file of 100k lines:
#   whole       submit --no-cache of the file
#   append 1%   1000 lines appended, then submit (resumed: the new bytes);
#               $RUNS rounds of it, the best
# and a logrotate day on a plain access.log, access.log.1 and access.log.2.gz
# to access.log.6.gz (100k lines each): .1 compressed to .2.gz, the others
# shifted, access.log renamed to .1, a new access.log of 1000 lines; the
# re-query (a miss on the new file, content hits by a hash pass for .1 and
# an inflate-and-hash pass for .2.gz, hits for the rest) against a
# --no-cache query of the same files. Every result's counts are compared
# with the --no-cache one's.
set -euo pipefail

prog=cache.sh
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
runs=${RUNS:-3}

[ -f "$shared/bench/gen_logs.py" ] || die "no $shared/bench/gen_logs.py (set CLFD_SHARED)"
set_dir="$cache/set-24x100000-s7"
if [ ! -f "$set_dir/.done" ]; then
	echo "== generating the bench set in $set_dir (once)"
	rm -rf "$set_dir"
	python3 "$shared/bench/gen_logs.py" "$set_dir" 24 100000 --seed 7
	touch "$set_dir/.done"
fi
files=("$set_dir"/access-*.log.gz)
[ "${#files[@]}" -eq 24 ] || die "bench set incomplete: rm -rf $set_dir"

clfd_build "${1:-}"

tmp=$(mktemp -d)
cleanup() {
	clfd_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

clfd_start "$tmp"
submit() { "$clfctl" -s "$sock" submit -o compact "$@"; }
counts() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["counts"], sort_keys=True))'; }
statuses() { python3 -c 'import json,sys,collections; print(dict(collections.Counter(f["cache"] for f in json.load(sys.stdin)["files"])))'; }
same() {
	[ "$(counts <"$1")" = "$(counts <"$2")" ] || die "counts differ: $1 $2"
}
cold_run() { "$clfctl" -s "$sock" cache clear >/dev/null && submit "${files[@]}"; }
ratio() { python3 -c "print('%.3f' % ($1 / $2))"; }
row() { printf '%-52s %8s %8s  %s\n' "$1" "$2" "$3" "${4:-}"; }

load0=$(uptime | sed 's/.*load/load/')
submit --no-cache "${files[@]}" >/dev/null	# warm the page cache
t_off=$(out="$tmp/off.json" best_of "$runs" submit --no-cache "${files[@]}")
t_cold=$(out="$tmp/cold.json" best_of "$runs" cold_run)
t_warm=$(out="$tmp/warm.json" best_of "$runs" submit "${files[@]}")
same "$tmp/off.json" "$tmp/cold.json"
same "$tmp/off.json" "$tmp/warm.json"
clfd_stop
clfd_start "$tmp"
t_restart=$(out="$tmp/restart.json" best_of 1 submit "${files[@]}")
same "$tmp/off.json" "$tmp/restart.json"

echo "== bench set: ${#files[@]} gzip files, $(nproc) CPUs, clfd -w 2 ($load0)"
row "what" "wall s" "ratio" "cache"
row "submit --no-cache" "$t_off" "1.000"
row "cold (cache emptied), vs --no-cache" "$t_cold" "$(ratio "$t_cold" "$t_off")" "$(statuses <"$tmp/cold.json")"
row "warm re-query, vs cold" "$t_warm" "$(ratio "$t_warm" "$t_cold")" "$(statuses <"$tmp/warm.json")"
row "warm after a restart, vs cold" "$t_restart" "$(ratio "$t_restart" "$t_cold")" "$(statuses <"$tmp/restart.json")"

# A plain file of 100k lines, and 1% more.
g="$tmp/grow"
mkdir -p "$g"
python3 "$shared/bench/gen_logs.py" "$g/gen" 1 $((100000 + 1000 * runs)) --seed 9 >/dev/null
zcat "$g"/gen/*.gz >"$g/all"
head -n 100000 "$g/all" >"$g/access.log"
t_whole=$(out="$tmp/whole.json" best_of "$runs" submit --no-cache "$g/access.log")
submit "$g/access.log" >/dev/null
# (a query's floor: a hit still merges and writes the file's result)
t_hit=$(out="$tmp/hit.json" best_of "$runs" submit "$g/access.log")
# $runs rounds, each 1000 more lines (1%) then a query; the best of them,
# each round's counts checked against a --no-cache query
t_app=
for ((k = 0; k < runs; k++)); do
	sed -n "$((100001 + 1000 * k)),$((101000 + 1000 * k))p" "$g/all" >>"$g/access.log"
	t=$(out="$tmp/app.json" best_of 1 submit "$g/access.log")
	submit --no-cache "$g/access.log" >"$tmp/app-off.json"
	same "$tmp/app-off.json" "$tmp/app.json"
	t_app=$(python3 -c "b = '$t_app'; print($t if not b or $t < float(b) else b)")
done
row "plain 100k lines, read whole (--no-cache)" "$t_whole" "1.000"
row "unchanged, re-query (the floor), vs whole" "$t_hit" "$(ratio "$t_hit" "$t_whole")" "$(statuses <"$tmp/hit.json")"
row "1% appended, re-query, vs whole" "$t_app" "$(ratio "$t_app" "$t_whole")" "$(statuses <"$tmp/app.json")"

# A logrotate day (delaycompress).
r="$tmp/rot"
mkdir -p "$r"
python3 "$shared/bench/gen_logs.py" "$r/gen" 7 100000 --seed 11 >/dev/null
gen=("$r"/gen/*.gz)
zcat "${gen[0]}" >"$r/access.log"
zcat "${gen[1]}" >"$r/access.log.1"
for i in 2 3 4 5 6; do cp "${gen[$i]}" "$r/access.log.$i.gz"; done
submit "$r"/access.log* >/dev/null	# yesterday's query: the cache is warm
rm -f "$r/access.log.6.gz"
for i in 5 4 3 2; do mv "$r/access.log.$i.gz" "$r/access.log.$((i + 1)).gz"; done
gzip -c "$r/access.log.1" >"$r/access.log.2.gz"
rm -f "$r/access.log.1"
mv "$r/access.log" "$r/access.log.1"
python3 "$shared/bench/gen_logs.py" "$r/new" 1 1000 --seed 12 >/dev/null
zcat "$r"/new/*.gz >"$r/access.log"
t_rot=$(out="$tmp/rot.json" best_of 1 submit "$r"/access.log*)
t_rot_off=$(out="$tmp/rot-off.json" best_of "$runs" submit --no-cache "$r"/access.log*)
same "$tmp/rot-off.json" "$tmp/rot.json"
row "logrotate day, 7 files, --no-cache" "$t_rot_off" "1.000"
row "logrotate day, re-query, vs --no-cache" "$t_rot" "$(ratio "$t_rot" "$t_rot_off")" "$(statuses <"$tmp/rot.json")"
echo "counts: every cached result equals its --no-cache one"
echo "$(uptime | sed 's/.*load/load/') at the end"
