#!/usr/bin/env bash
# bench/e2e.sh: clfd's main job end to end, side by side with its floors.
#
# usage: bench/e2e.sh [BUILDDIR]
# Times, on the bench set (gen_logs.py OUT 24 100000 --seed 7, generated once
# into a cache dir), in one run on this machine:
#   floor   ilimit 2 FILES            (ISA-L inflate only, 2 processes; built
#                                      from shared/bench/ilimit.c with -lisal;
#                                      without ISA-L, zlimit 2 is the floor)
#   zlib    zlimit 2 FILES            (zlib inflate only, 2 processes)
#   clfd    clfctl submit --no-cache FILES against a warm clfd -w 2 on a
#           private socket
#   mawk    zcat FILES | mawk '{c[$7]++}'  (no parsing, no filtering)
#   seed    seed_ref.py --mode process --workers 2
# then one big file, made once in the cache dir from the same lines:
#   multi   the 24 files as one 24-member gzip file (52 MB)
#   single  the 444 MB re-gzipped whole (gzip -6): one member
#   plain   the 444 MB plain, clfd -w 2 against clfd -w 1: read as
#           split_size (32M) byte ranges, one task each (its counts are
#           checked against the bench set's)
# each gzip file against the 1-process zlib and ISA-L floors of that file.
# Each time is the best of $RUNS runs (seed_ref: $SEED_RUNS), with its ratio
# to the floor; the script checks that clfd's counts equal seed_ref's.
# BIG=0 leaves out the big files. clfctl submit runs with --no-cache (every
# byte read: bench/cache.sh times the cache).
# BUILDDIR holds clfd and clfctl (default $CLFD_BUILDDIR, else an optimised
# build made once in the cache dir: sanitizer builds are not for timing).
# Environment: CLFD_SHARED (shared/ dir), CLFD_BENCH_CACHE (cache dir,
# default ~/.cache/clfd-bench), RUNS (3), SEED_RUNS (1), BIG (1).
set -euo pipefail

prog=e2e.sh
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
runs=${RUNS:-3}
seed_runs=${SEED_RUNS:-1}

[ -f "$shared/bench/gen_logs.py" ] || die "no $shared/bench/gen_logs.py (set CLFD_SHARED)"
need_mawk

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

cc -O2 -o "$tmp/zlimit" "$shared/bench/zlimit.c" -lz || die "cannot build zlimit"
ilimit=
if [ -f "$shared/bench/ilimit.c" ] &&
    cc -O2 -o "$tmp/ilimit" "$shared/bench/ilimit.c" -lisal 2>/dev/null; then
	ilimit="$tmp/ilimit"
fi

mawk_run() { zcat "${files[@]}" | mawk '{c[$7]++} END {for (k in c) n++; print n}'; }

# A warm 2-worker clfd on a private socket; ready when it answers ping.
clfd_start "$tmp"
clfd_run() { "$clfctl" -s "$sock" submit --no-cache -o compact "$@"; }
clfd_set() { clfd_run "${files[@]}"; }
clfd_set >/dev/null	# warm-up

raw=$(du -cb "${files[@]}" | tail -1 | cut -f1)
echo "== bench set: ${#files[@]} files, $((raw / 1000000)) MB gzip, $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
t_zlib=$(best_of "$runs" "$tmp/zlimit" 2 "${files[@]}")
if [ -n "$ilimit" ]; then
	floor=$(best_of "$runs" "$ilimit" 2 "${files[@]}")
	fname="ISA-L inflate only, 2 processes (floor)"
else
	floor=$t_zlib
	fname="zlib inflate only, 2 processes (floor; no ISA-L)"
fi
t_best=$(best_of "$runs" clfd_set)
t_mawk=$(best_of "$runs" mawk_run)
out="$tmp/clfd.json" best_of 1 clfd_set >/dev/null	# for the comparison below
t_seed=$(out="$tmp/seed.json" best_of "$seed_runs" python3 "$shared/bench/seed_ref.py" --mode process --workers 2 "${files[@]}")

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
row() { printf '%-52s %9s %8s\n' "$1" "$2" "$3"; }
row "what" "wall s" "x floor"
row "$fname" "$floor" "1.00"
[ -n "$ilimit" ] && row "zlib inflate only, 2 processes" "$t_zlib" "$(ratio "$t_zlib" "$floor")"
row "clfctl submit, warm clfd -w 2" "$t_best" "$(ratio "$t_best" "$floor")"
row "zcat | mawk '{c[\$7]++}'" "$t_mawk" "$(ratio "$t_mawk" "$floor")"
row "seed_ref.py --mode process --workers 2" "$t_seed" "$(ratio "$t_seed" "$floor")"
echo "clfd is $(ratio "$t_mawk" "$t_best")x faster than zcat | mawk"

# Same counts as the seed's reference analysis (from the runs above).
python3 - "$tmp/clfd.json" "$tmp/seed.json" <<'EOF2'
import json, sys
got = json.load(open(sys.argv[1]))["counts"]
want = json.load(open(sys.argv[2]))
if got == want:
    print("counts: clfd equals seed_ref (%d paths, %d requests)" % (len(got), sum(got.values())))
    sys.exit(0)
diff = sorted(set(got.items()) ^ set(want.items()))[:10]
print("counts DIFFER from seed_ref: %d vs %d paths; first differences: %s" % (len(got), len(want), diff))
sys.exit(1)
EOF2

[ "${BIG:-1}" = 0 ] && exit 0
# One big file, three ways, made once from the bench set.
big="$cache/big-24x100000-s7"
mkdir -p "$big"
if [ ! -f "$big/multi.gz" ]; then
	echo "== the 24 files as one multi-member file (once)"
	cat "${files[@]}" >"$big/multi.gz.tmp" && mv "$big/multi.gz.tmp" "$big/multi.gz"
fi
if [ ! -f "$big/plain.log" ]; then
	echo "== the lines as one plain file (once)"
	zcat "${files[@]}" >"$big/plain.log.tmp" && mv "$big/plain.log.tmp" "$big/plain.log"
fi
if [ ! -f "$big/single.gz" ]; then
	echo "== the lines re-gzipped whole, one member (once)"
	gzip -6 -n -c "$big/plain.log" >"$big/single.gz.tmp" && mv "$big/single.gz.tmp" "$big/single.gz"
fi
echo "== one big file; load: $(cut -d' ' -f1-3 /proc/loadavg)"
row "what" "wall s" "x floor"
for f in multi single; do
	z1=$(best_of "$runs" "$tmp/zlimit" 1 "$big/$f.gz")
	tc=$(best_of "$runs" clfd_run "$big/$f.gz")
	row "$f.gz: zlib inflate only, 1 process (floor)" "$z1" "1.00"
	if [ -n "$ilimit" ]; then
		i1=$(best_of "$runs" "$ilimit" 1 "$big/$f.gz")
		row "$f.gz: ISA-L inflate only, 1 process" "$i1" "$(ratio "$i1" "$z1")"
	fi
	row "$f.gz: clfctl submit, clfd -w 2" "$tc" "$(ratio "$tc" "$z1")"
done
t2=$(out="$tmp/plain.json" best_of "$runs" clfd_run "$big/plain.log")
python3 - "$tmp/plain.json" "$tmp/clfd.json" <<'EOF2'
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
same = a["counts"] == b["counts"] and a["totals"]["lines"] == b["totals"]["lines"]
print("plain.log in ranges: counts %s the bench set's" % ("equal" if same else "DIFFER from"))
sys.exit(0 if same else 1)
EOF2
clfd_stop
mkdir -p "$tmp/w1"
clfd_start "$tmp/w1" -w 1
t1=$(best_of "$runs" clfd_run "$big/plain.log")
row "plain.log ($(($(stat -c %s "$big/plain.log") / 1000000)) MB): clfd -w 1" "$t1" "1.00"
row "plain.log: clfd -w 2" "$t2" "$(ratio "$t2" "$t1")"
