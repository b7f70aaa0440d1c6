#!/bin/sh
# engine_badfiles_ahead.sh: the bad-file cases again with every gzip file
# inflated by the reader's second thread (reader_ahead), which must give
# the same lines, counts and errors.
CLFD_AHEAD=1
export CLFD_AHEAD
exec python3 "${CLFD_SRCDIR:-$(dirname "$0")/..}/tests/engine_badfiles.py"
