#!/usr/bin/env bash
# quickstart.sh: from a fresh checkout on Debian to clfd's main job in one
# command. Installs the missing build packages (apt-get, as root or through
# sudo), generates and configures an out-of-tree build in _build/, builds
# clfd and clfctl, starts a clfd on a private socket, runs
#   clfctl submit [ARGS] 'samples/*.gz' 'samples/*.log'
# through it (the JSON result on stdout), then stops that clfd.
# usage: ./quickstart.sh [clfctl submit options, e.g. --under /book --top 10]
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
say() { echo "== $*" >&2; }

pkgs="autoconf automake libtool pkg-config make gcc libevent-dev zlib1g-dev
libpcre2-dev libjansson-dev libsystemd-dev python3"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $missing >&2
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	say "autogen"
	./autogen.sh >/dev/null 2>&1 || ./autogen.sh >&2
fi
mkdir -p _build
[ -f _build/.gitignore ] || echo '*' >_build/.gitignore
if [ ! -f _build/Makefile ]; then
	say "configure (in _build/)"
	(cd _build && ../configure >configure.out 2>&1) || { cat _build/configure.out >&2; exit 1; }
fi
say "make"
make -C _build -j"$(nproc)" >_build/make.out 2>&1 || { tail -40 _build/make.out >&2; exit 1; }

tmp=$(mktemp -d)
pid=
stop() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap stop EXIT
say "starting clfd on $tmp/clfd.sock"
_build/clfd -s "$tmp/clfd.sock" 2>"$tmp/clfd.log" &
pid=$!
for ((i = 0; i < 200; i++)); do
	_build/clfctl -s "$tmp/clfd.sock" ping >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/clfd.log" >&2; exit 1; }
	sleep 0.05
done
say "clfctl submit $* 'samples/*.gz' 'samples/*.log'"
rc=0
_build/clfctl -s "$tmp/clfd.sock" submit "$@" 'samples/*.gz' 'samples/*.log' || rc=$?
say "stopping clfd. To run the full test suite: bash .ci/run"
exit $rc
