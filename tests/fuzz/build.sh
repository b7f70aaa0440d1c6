#!/bin/sh
# build.sh: build the libFuzzer harnesses with ASan and UBSan.
# Usage: tests/fuzz/build.sh OUTDIR   (from anywhere; needs clang with
# the libFuzzer runtime and the pkg-config files of pcre2, zlib, jansson,
# xxhash)
# Also builds fuzz_analysis_small: the same harness over a reader with
# tiny buffers, so that small inputs cross every buffer boundary.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../src" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
CC=${CC:-clang}
CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
 -fno-sanitize-recover=undefined -I$src $(pkg-config --cflags libpcre2-8 zlib jansson libxxhash)"
LIBS=$(pkg-config --libs libpcre2-8 zlib jansson libxxhash)

$CC $CFLAGS -o "$out/fuzz_logformat" "$here/fuzz_logformat.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_access" "$here/fuzz_access.c" "$src/access.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_counts" "$here/fuzz_counts.c" "$src/counts.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_filter" "$here/fuzz_filter.c" "$src/filter.c" \
    "$src/access.c" $LIBS
engine="$src/access.c $src/analysis.c $src/counts.c $src/filter.c $src/logformat.c"
$CC $CFLAGS -o "$out/fuzz_analysis" "$here/fuzz_analysis.c" $engine \
    "$src/reader.c" $LIBS
# The reader with 16-byte input and 32-byte output buffers.
sed -e 's/^#define READER_IN_SIZE.*/#define READER_IN_SIZE 16/' \
    -e 's/^#define READER_OUT_SIZE.*/#define READER_OUT_SIZE 32/' \
    "$src/reader.c" > "$out/reader_small.c"
grep -q 'READER_IN_SIZE 16' "$out/reader_small.c"
grep -q 'READER_OUT_SIZE 32' "$out/reader_small.c"
$CC $CFLAGS -o "$out/fuzz_analysis_small" "$here/fuzz_analysis.c" $engine \
    "$out/reader_small.c" $LIBS
# The gzip reader against zlib as an oracle (fuzz_gzip.c), with the real
# buffers and with the small ones; the _nohcrc builds leave out streams
# whose only fault is a header CRC, which the reader does not check.
$CC $CFLAGS -o "$out/fuzz_gzip" "$here/fuzz_gzip.c" "$src/reader.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_gzip_small" "$here/fuzz_gzip.c" \
    "$out/reader_small.c" $LIBS
$CC $CFLAGS -DFUZZ_GZIP_SKIP_HCRC -o "$out/fuzz_gzip_nohcrc" \
    "$here/fuzz_gzip.c" "$src/reader.c" $LIBS
$CC $CFLAGS -DFUZZ_GZIP_SKIP_HCRC -o "$out/fuzz_gzip_small_nohcrc" \
    "$here/fuzz_gzip.c" "$out/reader_small.c" $LIBS
# reader_crc32 against zlib's crc32, with and without carry-less multiply.
sed -e '/^#define READER_CLMUL/d' "$src/reader.c" > "$out/reader_noclmul.c"
! grep -q '^#define READER_CLMUL' "$out/reader_noclmul.c"
$CC $CFLAGS -o "$out/fuzz_crc" "$here/fuzz_crc.c" $LIBS
$CC $CFLAGS -I"$out" -DREADER_SRC='"reader_noclmul.c"' \
    -o "$out/fuzz_crc_noclmul" "$here/fuzz_crc.c" $LIBS
# The formats that cross a trust boundary: partials (cache entries, spool
# files) and their merge, the worker messages, clfctl's time arguments.
$CC $CFLAGS -o "$out/fuzz_partial" "$here/fuzz_partial.c" "$src/partial.c" \
    "$src/merge.c" $engine "$src/reader.c" $LIBS
# The same over a partial writer and a result writer with 16-byte
# buffers: every record straddles a flush, and no run pays for mapping
# ASan's big blocks (the real buffers make a run three times slower).
sed -e 's/^#define PW_BUF.*/#define PW_BUF	16u/' "$src/partial.c" \
    > "$out/partial_small.c"
sed -e 's/^#define MW_BUF.*/#define MW_BUF	16u/' "$src/merge.c" \
    > "$out/merge_small.c"
grep -q 'PW_BUF	16u' "$out/partial_small.c"
grep -q 'MW_BUF	16u' "$out/merge_small.c"
$CC $CFLAGS -o "$out/fuzz_partial_small" "$here/fuzz_partial.c" \
    "$out/partial_small.c" "$out/merge_small.c" $engine "$src/reader.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_proto" "$here/fuzz_proto.c" "$src/proto.c" $LIBS
$CC $CFLAGS -o "$out/fuzz_timearg" "$here/fuzz_timearg.c" "$src/timearg.c" \
    $LIBS
$CC $CFLAGS -o "$out/fuzz_request" "$here/fuzz_request.c" "$src/request.c" \
    "$src/filter.c" "$src/access.c" "$src/config.c" "$src/errcode.c" \
    "$src/logformat.c" $LIBS
# The same gzip harnesses over the reader with ISA-L's inflater (its
# default when built with HAVE_ISAL), when libisal is installed: igzip
# must end every stream as zlib does.
if pkg-config --exists libisal 2>/dev/null || [ -f /usr/include/isa-l/igzip_lib.h ]; then
	$CC $CFLAGS -DHAVE_ISAL -o "$out/fuzz_gzip_isal" "$here/fuzz_gzip.c" \
	    "$src/reader.c" $LIBS -lisal
	$CC $CFLAGS -DHAVE_ISAL -o "$out/fuzz_gzip_small_isal" \
	    "$here/fuzz_gzip.c" "$out/reader_small.c" $LIBS -lisal
	$CC $CFLAGS -DHAVE_ISAL -o "$out/fuzz_analysis_small_isal" \
	    "$here/fuzz_analysis.c" $engine "$out/reader_small.c" $LIBS -lisal
fi
