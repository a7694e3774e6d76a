#!/usr/bin/env bash
# docs/machine.md against include/slate/slate.h: every name the page mentions exists, and every
# address, number, register offset and struct field offset it gives is the header's.
. "$(dirname "$0")/../lib.sh"
perl tests/tools/abi-check.pl docs/machine.md >"$TMP/abi.c" &&
    gcc -std=c17 -Wall -Werror -Iinclude -o "$TMP/abi" "$TMP/abi.c" || { echo "1..1"; echo "not ok 1 - the ABI check builds"; exit 0; }
"$TMP/abi"
