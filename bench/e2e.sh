#!/usr/bin/env bash
# bench/e2e.sh: clfd's main job end to end, side by side with its floor.
#
# usage: bench/e2e.sh [BUILDDIR]
# Times, on the bench set (gen_logs.py OUT 24 100000 --seed 7, generated once
# into a cache dir), in one run on this machine:
#   floor   zlimit 2 FILES            (zlib inflate only, 2 processes)
#   mawk    zcat FILES | mawk '{c[$7]++}'  (no parsing, no filtering)
#   seed    seed_ref.py --mode process --workers 2
#   clfd    clfctl submit --no-cache FILES against a warm clfd -w 2 on a
#           private socket (every byte read: bench/cache.sh times the cache)
# each the best of $RUNS runs (seed_ref: $SEED_RUNS), with its ratio to the
# floor, and checks that clfd's counts equal seed_ref's.
# BUILDDIR holds clfd and clfctl (default $CLFD_BUILDDIR, else an optimised
# build made once in the cache dir: sanitizer builds are not for timing).
# Environment: CLFD_SHARED (shared/ dir), CLFD_BENCH_CACHE (cache dir,
# default ~/.cache/clfd-bench), RUNS (3), SEED_RUNS (1).
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

mawk_run() { zcat "${files[@]}" | mawk '{c[$7]++} END {for (k in c) n++; print n}'; }

# A warm 2-worker clfd on a private socket; ready when it answers ping.
clfd_start "$tmp"
clfd_run() { "$clfctl" -s "$sock" submit --no-cache -o compact "${files[@]}"; }
clfd_run >/dev/null	# warm-up

raw=$(du -cb "${files[@]}" | tail -1 | cut -f1)
echo "== bench set: ${#files[@]} files, $((raw / 1000000)) MB gzip, $(nproc) CPUs"
floor=$(best_of "$runs" "$tmp/zlimit" 2 "${files[@]}")
t_best=$(best_of "$runs" clfd_run)
t_mawk=$(best_of "$runs" mawk_run)
out="$tmp/clfd.json" best_of 1 clfd_run >/dev/null	# for the comparison below
t_seed=$(out="$tmp/seed.json" best_of "$seed_runs" python3 "$shared/bench/seed_ref.py" --mode process --workers 2 "${files[@]}")

ratio() { python3 -c "print('%.2f' % ($1 / $floor))"; }
printf '%-44s %9s %8s\n' "what" "wall s" "x floor"
printf '%-44s %9s %8s\n' "zlib inflate only, 2 processes (floor)" "$floor" "1.00"
printf '%-44s %9s %8s\n' "clfctl submit, warm clfd -w 2" "$t_best" "$(ratio "$t_best")"
printf '%-44s %9s %8s\n' "zcat | mawk '{c[\$7]++}'" "$t_mawk" "$(ratio "$t_mawk")"
printf '%-44s %9s %8s\n' "seed_ref.py --mode process --workers 2" "$t_seed" "$(ratio "$t_seed")"

# Same counts as the seed's reference analysis (from the runs above).
python3 - "$tmp/clfd.json" "$tmp/seed.json" <<'EOF'
import json, sys
got = json.load(open(sys.argv[1]))["counts"]
want = json.load(open(sys.argv[2]))
if got == want:
    print("counts: clfd equals seed_ref (%d paths, %d requests)" % (len(got), sum(got.values())))
    sys.exit(0)
diff = sorted(set(got.items()) ^ set(want.items()))[:10]
print("counts DIFFER from seed_ref: %d vs %d paths; first differences: %s" % (len(got), len(want), diff))
sys.exit(1)
EOF
