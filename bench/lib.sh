# bench/lib.sh: what the end-to-end benchmarks share (sourced by bash).
#
# The caller sets prog (its name, for messages) and top (the checkout), then
# sources this file. It sets:
#   shared   the shared/ directory ($CLFD_SHARED, else beside the checkout
#            or beside the worktree directory the checkout is in)
#   cache    the cache directory ($CLFD_BENCH_CACHE, default
#            ~/.cache/clfd-bench), created
# and defines die, need_mawk, clfd_build, clfd_start, clfd_stop, best_of.

die() { echo "$prog: $*" >&2; exit 1; }

if [ -n "${CLFD_SHARED:-}" ]; then
	shared=$CLFD_SHARED
elif [ -d "$top/../shared/bench" ]; then
	shared=$(cd "$top/../shared" && pwd)
elif [ -d "$top/../../shared/bench" ]; then
	shared=$(cd "$top/../../shared" && pwd)
else
	shared=$(cd "$top/.." && pwd)/shared
fi
cache=${CLFD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clfd-bench}
mkdir -p "$cache"

# Install mawk with apt-get when it is missing.
need_mawk() {
	command -v mawk >/dev/null && return 0
	echo "== installing mawk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mawk >/dev/null ||
		die "cannot install mawk"
}

# clfd_build [BUILDDIR]: set clfd and clfctl. Without BUILDDIR (or
# $CLFD_BUILDDIR), make an optimised build (the configure defaults: -O2, no
# sanitizers) of this checkout once in the cache dir, one build dir per
# checkout, and make it again when the sources are newer.
clfd_build() {
	local build=${1:-${CLFD_BUILDDIR:-}} key
	if [ -z "$build" ]; then
		key=$(printf '%s' "$top" | cksum | cut -d' ' -f1)
		build="$cache/build-$key"
		if [ ! -x "$build/clfd" ] || [ ! -x "$build/clfctl" ] ||
		    [ "$top/configure.ac" -nt "$build/clfd" ] ||
		    [ -n "$(find "$top/src" "$top/Makefile.am" "$top/configure.ac" \
		        -newer "$build/clfd" \( -name '*.[ch]' -o -name '*.am' -o -name '*.ac' \) |
		        head -1)" ]; then
			echo "== optimised build of $top in $build"
			# configure again when configure.ac changed (a library
			# found or not changes what is built: ISA-L, say)
			if [ ! -x "$top/configure" ] ||
			    [ "$top/configure.ac" -nt "$top/configure" ]; then
				(cd "$top" && ./autogen.sh >/dev/null)
			fi
			mkdir -p "$build"
			(cd "$build" && { { [ -f Makefile ] &&
				[ ! "$top/configure" -nt config.status ]; } ||
				"$top/configure"; } &&
				make -j2 clfd clfctl) >"$build/build.log" 2>&1 ||
				{ tail -20 "$build/build.log" >&2; die "build failed, see $build/build.log"; }
		fi
	fi
	clfd="$build/clfd"
	clfctl="$build/clfctl"
	[ -x "$clfd" ] && [ -x "$clfctl" ] || die "no clfd/clfctl in $build"
	if nm -D "$clfd" 2>/dev/null | grep -q __asan_init; then
		echo "warning: $clfd is a sanitizer build; timings will be slow" >&2
	fi
}

# clfd_start DIR [ARGS...]: start clfd -w 2 on the private socket DIR/clfd.sock
# (its log in DIR/clfd.log) and wait until it answers ping. Sets sock and
# clfd_pid (the supervisor's pid).
clfd_start() {
	local dir=$1 i
	shift
	sock="$dir/clfd.sock"
	# (its cache in DIR: a bench never touches the user's)
	XDG_CACHE_HOME="$dir/cache" "$clfd" -w 2 -s "$sock" "$@" 2>"$dir/clfd.log" &
	clfd_pid=$!
	for ((i = 0; i < 200; i++)); do
		"$clfctl" -s "$sock" ping >/dev/null 2>&1 && break
		kill -0 "$clfd_pid" 2>/dev/null || { cat "$dir/clfd.log" >&2; die "clfd exited"; }
		sleep 0.05
	done
	"$clfctl" -s "$sock" ping >/dev/null || die "clfd does not answer on $sock"
}

# Stop the clfd that clfd_start started, by its pid.
clfd_stop() {
	if [ -n "${clfd_pid:-}" ]; then
		kill "$clfd_pid" 2>/dev/null || true
		wait "$clfd_pid" 2>/dev/null || true
		clfd_pid=
	fi
}

# best_of N CMD...: run CMD N times, print the best wall time in seconds;
# CMD's output goes to $out (default /dev/null).
best_of() {
	local n=$1 best= t0 t1 i
	shift
	for ((i = 0; i < n; i++)); do
		# bash's own clock (a decimal comma made a point): the exit
		# and the start of two date(1) processes would sit inside
		# the window, milliseconds of a query of a few
		t0=${EPOCHREALTIME/,/.}
		"$@" >"${out:-/dev/null}"
		t1=${EPOCHREALTIME/,/.}
		best=$(python3 -c "t = $t1 - $t0; b = '$best'; print(t if not b or t < float(b) else b)")
	done
	printf '%.3f\n' "$best"
}
