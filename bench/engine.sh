#!/bin/sh
# engine.sh: the engine's speed against the zlib floor, side by side.
#
# usage: bench/engine.sh [BENCHDIR]     (run from a build directory)
# Builds zlimit from the shared bench sources, generates the bench set
# (24 files x 100000 lines, seed 7) into BENCHDIR (default /tmp/benchset)
# unless it is there, then times, best of $RUNS (default 3):
#   zlimit 1         zlib inflate only, one process: the floor
#   ilimit 1         ISA-L inflate only, one process (when it builds)
#   stage lines      + open, read, line split (engine-run --stage lines)
#   stage match      + the log format regex
#   stage parse      + request split, target -> path, time
#   full             + referer check, filters, counting: analysis_file
# and prints each time, its ratio to the floor and what the stage adds.
# ENGINE_RUN names the engine-run binary (default ./bench/engine-run);
# build it without sanitizers for meaningful figures.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
shared=${CLFD_SHARED:-$here/../../shared}
dir=${1:-/tmp/benchset}
runs=${RUNS:-3}
engine=${ENGINE_RUN:-./bench/engine-run}
work=$(mktemp -d "${TMPDIR:-/tmp}/clfd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

[ -x "$engine" ] || { echo "engine.sh: no $engine (run from a build dir or set ENGINE_RUN)" >&2; exit 1; }
if ldd "$engine" 2>/dev/null | grep -q asan; then
	echo "engine.sh: warning: $engine is built with sanitizers; figures will be slow" >&2
fi
${CC:-cc} -O2 -o "$work/zlimit" "$shared/bench/zlimit.c" -lz
ilimit=
if [ -f "$shared/bench/ilimit.c" ] &&
    ${CC:-cc} -O2 -o "$work/ilimit" "$shared/bench/ilimit.c" -lisal 2>/dev/null; then
	ilimit=$work/ilimit
fi
if [ ! -f "$dir/access-023.log.gz" ]; then
	echo "generating the bench set in $dir ..." >&2
	python3 "$shared/bench/gen_logs.py" "$dir" 24 100000 --seed 7
fi
set -- "$dir"/access-*.log.gz

# best NAME CMD...: the best wall time of $runs runs, in seconds.
best() {
	name=$1
	shift
	b=
	i=0
	while [ "$i" -lt "$runs" ]; do
		t0=$(date +%s.%N)
		"$@" >/dev/null
		t1=$(date +%s.%N)
		b=$(echo "$t0 $t1 ${b:-x}" | awk '{d = $2 - $1; if ($3 == "x" || d < $3) print d; else print $3}')
		i=$((i + 1))
	done
	echo "$name $b"
}

{
	best floor "$work/zlimit" 1 "$@"
	[ -z "$ilimit" ] || best isal "$ilimit" 1 "$@"
	best lines "$engine" --stage lines "$@"
	best match "$engine" --stage match "$@"
	best parse "$engine" --stage parse "$@"
	best full "$engine" "$@"
} >"$work/times"

echo "bench set: $# files, $(cat "$@" | wc -c) bytes compressed; best of $runs"
awk '
	$1 == "floor" { floor = $2 }
	{ printf "%-6s %7.3f s  %5.2fx floor", $1, $2, $2 / floor
	  if (NR > 1 && $1 != "isal" && prev != "") printf "  (+%.3f s)", $2 - prev
	  printf "\n"; if ($1 != "isal" && $1 != "floor") prev = $2 }
' "$work/times"
"$engine" "$@" | python3 -c 'import json, sys
t = json.load(sys.stdin)["totals"]
print("lines %(lines)d, matched %(matched)d, malformed %(malformed)d, filtered %(filtered)d, counted %(counted)d, distinct %(distinct)d" % t)'
