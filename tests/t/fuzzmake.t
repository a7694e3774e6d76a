#!/usr/bin/env bash
# `make fuzz` must fail when a harness crashes or cannot start, and pass when every harness runs
# clean: checked with a harness that crashes on its first input and one that never does.
. "$(dirname "$0")/../lib.sh"
plan 4
if ! command -v clang >/dev/null; then skip_here "clang is not installed"; fi
cat >"$TMP/crash.c" <<'C'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data; (void)size;
    __builtin_trap();
}
C
sed 's/__builtin_trap();/return 0;/' "$TMP/crash.c" >"$TMP/clean.c"
for h in crash clean; do
    clang -fsanitize=fuzzer -o "$TMP/fuzz_$h" "$TMP/$h.c" 2>"$TMP/cc.err" ||
        skip_here "clang cannot build a libFuzzer harness: $(head -1 "$TMP/cc.err")"
done
make_fuzz() {
    OUT=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory BUILD="$BUILD" \
          FUZZ_SECONDS=2 FUZZ_HARNESSES="$*" fuzz 2>&1)
    RC=$?
}
make_fuzz "$TMP/fuzz_crash" "$TMP/fuzz_clean"
isnt_zero=$([ "$RC" -ne 0 ] && echo yes || echo "no (0)")
is "$isnt_zero" yes "make fuzz fails when a harness crashes"
has "$OUT" "^FAILED: fuzz_crash exited with" "and names the harness"
make_fuzz "$TMP/fuzz_clean"
is "$RC" 0 "make fuzz passes when every harness runs clean"
make_fuzz "$TMP/fuzz_missing"
has "$RC $OUT" "^[1-9]" "make fuzz fails when a harness cannot start"
