#!/usr/bin/env bash
# bench/card.sh: clfd on a log where every path is distinct, side by side
# with the one-process zlib floor of that log.
#
# usage: bench/card.sh [BUILDDIR]
# Generates once into the cache dir, with gen_card.py (N lines, seed S):
#   card-N-sS.log.gz        one file, N lines, every path distinct
#   card-N-sS-8x2/          the same lines split over 8 files, plus a copy of
#                           each: 16 files, every path counted twice
# then times, in one run against clfd -w 2 on a private socket:
#   floor      zlimit 1 card.log.gz (zlib inflate only, one process)
#   full       clfctl submit -o compact card.log.gz   (whole result, discarded)
#   top        clfctl submit -o compact --top 10 card.log.gz
#   16 files   clfctl submit -o compact FILES          (whole result, discarded)
#   mawk       zcat card.log.gz | mawk '{c[$7]++} END {for (k in c) print k, c[k]}'
# and, while each clfctl job runs, the longest answer to a ping sent every
# 20 ms (pingwatch.py) and the supervisor's peak RSS (VmHWM). Each time is
# the best of $RUNS runs (default 1); the floor, of $FLOOR_RUNS (default 3).
# clfctl's --no-cache is passed when it has one, so every job reads its files.
# Then checks the results' totals: N distinct paths, counted once in the one
# file and twice in the 16 (CHECK=0 skips the 16-file check, a further job).
# BUILDDIR holds clfd and clfctl (default $CLFD_BUILDDIR, else an optimised
# build made once in the cache dir). Environment: CARD_LINES (2000000),
# CARD_SEED (1), CLFD_SHARED (shared/ dir, for zlimit.c), CLFD_BENCH_CACHE
# (cache dir, default ~/.cache/clfd-bench), RUNS, FLOOR_RUNS, CHECK (1).
set -euo pipefail

prog=card.sh
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
lines=${CARD_LINES:-2000000}
seed=${CARD_SEED:-1}
runs=${RUNS:-1}
floor_runs=${FLOOR_RUNS:-3}
check=${CHECK:-1}

need_mawk
clfd_build "${1:-}"

# The data, once.
card="$cache/card-$lines-s$seed.log.gz"
split_dir="$cache/card-$lines-s$seed-8x2"
if [ ! -f "$card" ]; then
	echo "== generating $card (once)"
	python3 "$here/gen_card.py" "$card.tmp" --lines "$lines" --seed "$seed"
	mv "$card.tmp" "$card"
fi
if [ ! -f "$split_dir/.done" ]; then
	echo "== generating $split_dir (once)"
	rm -rf "$split_dir"
	python3 "$here/gen_card.py" "$split_dir" --lines "$lines" --seed "$seed" \
		--files 8 --copy
	touch "$split_dir/.done"
fi
split=("$split_dir"/card-*.log.gz)
[ "${#split[@]}" -eq 16 ] || die "16-file set incomplete: rm -rf $split_dir"

tmp=$(mktemp -d)
watch_pid=
cleanup() {
	if [ -n "$watch_pid" ]; then
		kill "$watch_pid" 2>/dev/null || true
		wait "$watch_pid" 2>/dev/null || true
	fi
	clfd_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

# The floor: zlimit from shared/ when there is one, else gzip -dc.
if [ -f "$shared/bench/zlimit.c" ]; then
	cc -O2 -o "$tmp/zlimit" "$shared/bench/zlimit.c" -lz || die "cannot build zlimit"
	floor_cmd=("$tmp/zlimit" 1 "$card")
	floor_name="zlib inflate only, 1 process (floor)"
else
	echo "note: no $shared/bench/zlimit.c; the floor is gzip -dc (set CLFD_SHARED)"
	floor_cmd=(gzip -dc "$card")
	floor_name="gzip -dc (floor: no zlimit)"
fi

submit=(submit --no-progress)
if "$clfctl" -h 2>&1 | grep -q -- '--no-cache'; then
	submit+=(--no-cache)
	cache_note="with --no-cache"
else
	cache_note="without --no-cache (clfctl has none)"
fi

clfd_start "$tmp"

# The supervisor's peak RSS is reset before each job (clear_refs 5) so each
# row shows its own; where that is refused, the rows show the peak so far.
hwm_reset() { echo 5 2>/dev/null >"/proc/$clfd_pid/clear_refs"; }
hwm_mb() { awk '$1 == "VmHWM:" { printf "%.0f\n", $2 / 1024 }' "/proc/$clfd_pid/status"; }
hwm_reset && hwm_note="per row (VmHWM reset before each)" ||
	hwm_note="peak so far (VmHWM could not be reset)"
peak=$(hwm_mb)

# watched NAME CMD...: time CMD (best of $runs, output to $out) with
# pingwatch.py running beside it; sets t_NAME, ping_NAME, rss_NAME.
watched() {
	local name=$1 t p r
	shift
	hwm_reset || true
	python3 "$here/pingwatch.py" "$sock" --out "$tmp/ping-$name" &
	watch_pid=$!
	t=$(best_of "$runs" "$@")
	kill -TERM "$watch_pid"
	wait "$watch_pid" || die "pingwatch.py failed"
	watch_pid=
	p=$(awk '{ print $2; if ($6 > 0) print "(" $6 " failed)" > "/dev/stderr" }' "$tmp/ping-$name")
	r=$(hwm_mb)
	[ "$r" -gt "$peak" ] && peak=$r
	printf -v "t_$name" '%s' "$t"
	printf -v "ping_$name" '%s' "$p"
	printf -v "rss_$name" '%s' "$r"
}

full_run() { "$clfctl" -s "$sock" "${submit[@]}" -o compact "$card"; }
top_run() { "$clfctl" -s "$sock" "${submit[@]}" -o compact --top 10 "$card"; }
split_run() { "$clfctl" -s "$sock" "${submit[@]}" -o compact "${split[@]}"; }
mawk_run() { zcat "$card" | mawk '{c[$7]++} END {for (k in c) print k, c[k]}'; }

cat "$card" "${split[@]}" >/dev/null	# into the page cache
gz=$(stat -c %s "$card")
echo "== card: $lines lines, $((gz / 1000000)) MB gzip, every path distinct; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
floor=$(best_of "$floor_runs" "${floor_cmd[@]}")
watched full full_run
out="$tmp/top.json" watched top top_run
watched split split_run
t_mawk=$(best_of "$runs" mawk_run)

ratio() { python3 -c "print('%.2f' % ($1 / $floor))"; }
printf '%-46s %8s %8s %8s %8s\n' "what" "wall s" "x floor" "ping ms" "RSS MB"
printf '%-46s %8s %8s %8s %8s\n' "$floor_name" "$floor" "1.00" "" ""
printf '%-46s %8s %8s %8s %8s\n' "clfctl submit -o compact (full result)" \
	"$t_full" "$(ratio "$t_full")" "$ping_full" "$rss_full"
printf '%-46s %8s %8s %8s %8s\n' "clfctl submit --top 10" \
	"$t_top" "$(ratio "$t_top")" "$ping_top" "$rss_top"
printf '%-46s %8s %8s %8s %8s\n' "the same split over 8 files + copies (16)" \
	"$t_split" "$(ratio "$t_split")" "$ping_split" "$rss_split"
printf '%-46s %8s %8s %8s %8s\n' "zcat | mawk '{c[\$7]++} END {print ...}'" \
	"$t_mawk" "$(ratio "$t_mawk")" "" ""
echo "ping ms: the longest clfctl-style ping (every 20 ms) during the job;"
echo "RSS MB: the supervisor's peak RSS, $hwm_note."
echo "supervisor peak RSS over the run: $peak MB; clfctl submit $cache_note; best of $runs (floor: $floor_runs); load now $(cut -d' ' -f1-3 /proc/loadavg)"

# The totals: every path once in the one file, twice in the 16.
# check_totals FILE COUNT: FILE is a --top result of N distinct paths, each
# counted COUNT times.
check_totals() {
	python3 - "$1" "$lines" "$2" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
n, k = int(sys.argv[2]), int(sys.argv[3])
t = r["totals"]
ok = (t["distinct"] == n and t["counted"] == k * n and t["failed"] == 0 and
      len(r["counts"]) == min(n, 10) and set(r["counts"].values()) == {k})
print("totals %s: %d files, %d lines, %d counted, %d distinct" %
      ("ok" if ok else "WRONG", t["files"], t["lines"], t["counted"], t["distinct"]))
sys.exit(0 if ok else 1)
EOF
}
status=0
check_totals "$tmp/top.json" 1 || status=1
if [ "$check" != 0 ]; then
	"$clfctl" -s "$sock" "${submit[@]}" -o compact --top 10 "${split[@]}" >"$tmp/split.json"
	check_totals "$tmp/split.json" 2 || status=1
fi
exit "$status"
