#!/bin/sh
# engine_badfiles_zlib.sh: engine_badfiles.py again with the gzip inflater
# forced to zlib (the fallback of a build with ISA-L): bad and odd gzip
# files must end the same way with either inflater.
CLFD_INFLATE=zlib
export CLFD_INFLATE
exec python3 "${CLFD_SRCDIR:-$(dirname "$0")/..}/tests/engine_badfiles.py"
