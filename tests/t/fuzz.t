#!/usr/bin/env bash
# The fuzz harnesses, built without libFuzzer, replay the committed corpus (what `make fuzz`
# found worth keeping) and every input that once broke slate (tests/fuzz/regressions/), so a
# fixed bug stays fixed; under `make check-asan` the sanitizers watch every replay. The ELF
# loader's harness also gets every guest kernel this build made. A harness that hangs (the
# unbounded page-table walk did) is stopped after 60 s and fails.
. "$(dirname "$0")/../lib.sh"
HARNESSES=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
plan $((2 * $(wc -w <<<"$HARNESSES")))
for h in $HARNESSES; do
    inputs=()
    for dir in tests/fuzz/corpus/$h tests/fuzz/regressions/$h; do
        [ -d "$dir" ] && inputs+=("$dir")
    done
    [ "$h" = fuzz_loader ] || [ "$h" = fuzz_symbols ] && inputs+=("$GUEST")
    expected=0
    for dir in "${inputs[@]}"; do
        expected=$((expected + $(find "$dir" -maxdepth 1 -type f ! -name '.*' | wc -l)))
    done
    out=$(timeout "$(scaled 60)" "$BUILD/fuzz/$h" "${inputs[@]}" 2>&1)
    rc=$?
    is "$rc" 0 "$h: replaying its corpus and regressions ends cleanly"
    if [ "$expected" -gt 0 ] && grep -qx "ok $expected inputs" <<<"$out"; then
        pass "$h: all $expected inputs replayed"
    else
        fail "$h: expected $expected inputs replayed" "$(tail -5 <<<"$out")"
    fi
done
