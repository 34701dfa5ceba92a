#!/bin/sh
# test_meta_pkgconfig.sh: the uninstalled echoviewmeta.pc gives an application everything it
# needs: compile tests/gst/meta_pkgconfig_example.c with its --cflags --libs and run it.
# usage: test_meta_pkgconfig.sh UNINSTALLED_PC_DIR SOURCE_DIR BUILD_DIR CC [CC ARGS...]
set -eu
export PKG_CONFIG_PATH="$1${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs echoviewmeta)
echo "pkg-config echoviewmeta: $flags"
src="$2/meta_pkgconfig_example.c"
out="$3/meta_pkgconfig_example"
shift 3
# shellcheck disable=SC2086
"$@" -std=c11 -Wall -Werror -o "$out" "$src" $flags
libdir=$(pkg-config --libs-only-L echoviewmeta | sed "s/-L//g; s/ *$//; s/  */:/g")
result=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$out")
echo "$result"
[ "$result" = "ok PLAX-full 4" ]
