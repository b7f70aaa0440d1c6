#!/usr/bin/env bash
# bench/e2e.sh: clfd's main job end to end, side by side with its floor.
#
# usage: bench/e2e.sh [BUILDDIR]
# Times, on the bench set (gen_logs.py OUT 24 100000 --seed 7, generated once
# into a cache dir), in one run on this machine:
#   floor   zlimit 2 FILES            (zlib inflate only, 2 processes)
#   mawk    zcat FILES | mawk '{c[$7]++}'  (no parsing, no filtering)
#   seed    seed_ref.py --mode process --workers 2
#   clfd    clfctl submit FILES against a warm clfd -w 2 on a private socket
# each the best of $RUNS runs (seed_ref: $SEED_RUNS), with its ratio to the
# floor, and checks that clfd's counts equal seed_ref's.
# BUILDDIR holds clfd and clfctl (default $CLFD_BUILDDIR, else an optimised
# build made once in the cache dir: sanitizer builds are not for timing).
# Environment: CLFD_SHARED (shared/ dir), CLFD_BENCH_CACHE (cache dir,
# default ~/.cache/clfd-bench), RUNS (3), SEED_RUNS (1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
shared=${CLFD_SHARED:-$(cd "$top/.." && pwd)/shared}
cache=${CLFD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clfd-bench}
runs=${RUNS:-3}
seed_runs=${SEED_RUNS:-1}
build=${1:-${CLFD_BUILDDIR:-}}

die() { echo "e2e.sh: $*" >&2; exit 1; }
[ -f "$shared/bench/gen_logs.py" ] || die "no $shared/bench/gen_logs.py (set CLFD_SHARED)"
mkdir -p "$cache"

if ! command -v mawk >/dev/null; then
	echo "== installing mawk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mawk >/dev/null ||
		die "cannot install mawk"
fi

set_dir="$cache/set-24x100000-s7"
if [ ! -f "$set_dir/.done" ]; then
	echo "== generating the bench set in $set_dir (once)"
	rm -rf "$set_dir"
	python3 "$shared/bench/gen_logs.py" "$set_dir" 24 100000 --seed 7
	touch "$set_dir/.done"
fi
files=("$set_dir"/access-*.log.gz)
[ "${#files[@]}" -eq 24 ] || die "bench set incomplete: rm -rf $set_dir"

if [ -z "$build" ]; then
	build="$cache/build"
	if [ ! -x "$build/clfd" ] || [ ! -x "$build/clfctl" ] ||
	    [ -n "$(find "$top/src" -newer "$build/clfd" -name '*.[ch]' | head -1)" ]; then
		echo "== optimised build in $build"
		[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null)
		mkdir -p "$build"
		(cd "$build" && { [ -f Makefile ] || "$top/configure"; } &&
			make -j2 clfd clfctl) >"$cache/build.log" 2>&1 ||
			{ tail -20 "$cache/build.log" >&2; die "build failed, see $cache/build.log"; }
	fi
fi
clfd="$build/clfd"
clfctl="$build/clfctl"
[ -x "$clfd" ] && [ -x "$clfctl" ] || die "no clfd/clfctl in $build"
if nm -D "$clfd" 2>/dev/null | grep -q __asan_init; then
	echo "warning: $clfd is a sanitizer build; timings will be slow" >&2
fi

tmp=$(mktemp -d)
clfd_pid=
cleanup() {
	if [ -n "$clfd_pid" ]; then
		kill "$clfd_pid" 2>/dev/null || true
		wait "$clfd_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

cc -O2 -o "$tmp/zlimit" "$shared/bench/zlimit.c" -lz || die "cannot build zlimit"

# best_of N CMD...: run CMD N times, print the best wall time in seconds;
# CMD's output goes to $out (default /dev/null).
best_of() {
	local n=$1 best= t0 t1 i
	shift
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s.%N)
		"$@" >"${out:-/dev/null}"
		t1=$(date +%s.%N)
		best=$(python3 -c "t = $t1 - $t0; b = '$best'; print(t if not b or t < float(b) else b)")
	done
	printf '%.3f\n' "$best"
}

mawk_run() { zcat "${files[@]}" | mawk '{c[$7]++} END {for (k in c) n++; print n}'; }

# A warm 2-worker clfd on a private socket; ready when it answers ping.
sock="$tmp/clfd.sock"
"$clfd" -w 2 -s "$sock" 2>"$tmp/clfd.log" &
clfd_pid=$!
for ((i = 0; i < 200; i++)); do
	"$clfctl" -s "$sock" ping >/dev/null 2>&1 && break
	kill -0 "$clfd_pid" 2>/dev/null || { cat "$tmp/clfd.log" >&2; die "clfd exited"; }
	sleep 0.05
done
"$clfctl" -s "$sock" ping >/dev/null || die "clfd does not answer on $sock"
clfd_run() { "$clfctl" -s "$sock" submit -o compact "${files[@]}"; }
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
