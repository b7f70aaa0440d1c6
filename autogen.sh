#!/bin/sh
# autogen.sh: generate configure and the Makefile templates from a checkout.
set -e
cd "$(dirname "$0")"
autoreconf -fi
# automake ships the TAP driver but does not install it by itself.
for d in /usr/share/automake-*; do
	if [ -f "$d/tap-driver.sh" ]; then
		cp "$d/tap-driver.sh" build-aux/tap-driver.sh
		chmod +x build-aux/tap-driver.sh
		break
	fi
done
