#!/usr/bin/env bash
# A machine without /dev/kvm, made by hiding it in a private mount namespace (tools/without-kvm):
# slate still names what is wrong with the user's files, explains why KVM is missing, --check
# works, and the test runner's last lines say what was skipped.
. "$(dirname "$0")/../lib.sh"
plan 12
if ! tools/without-kvm true 2>/dev/null; then
    skip_here "cannot make a mount namespace here (needs root or user namespaces)"
fi
nokvm() { timeout -s KILL "$(scaled 60)" tools/without-kvm "$@" >"$TMP/out" 2>"$TMP/err" </dev/null; RC=$?;
          OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err"); }
good="$GUEST/info.elf"

nokvm "$SLATE" "$TMP/missing.elf"
is "$RC" 125 "no KVM, missing kernel: status 125"
has "$ERR" "^slate: $TMP/missing.elf: No such file or directory$" "no KVM, missing kernel: the message names the kernel, not /dev/kvm"
nokvm "$SLATE" --disk "$TMP/nodisk.img" "$good"
has "$ERR" "^slate: $TMP/nodisk.img: No such file or directory$" "no KVM, missing --disk: named"
nokvm "$SLATE" --serial "file:$TMP/serial.log" "$good"
is "$RC" 125 "no KVM, good kernel: status 125"
has "$ERR" "^slate: cannot open /dev/kvm: No such file or directory \((no hardware virtualization here|the CPU has VT-x/AMD-V: load the module)" \
    "no KVM: the message says why, and what to do"
is "$(wc -l <<<"$ERR")" 1 "no KVM: one line on stderr"
if [ -e "$TMP/serial.log" ]; then fail "no KVM: no --serial file is left behind"; else pass "no KVM: no --serial file is left behind"; fi
nokvm "$SLATE" --check "$good"
is "$RC" 0 "no KVM: --check still checks the kernel and exits 0"
has "$OUT" "^kvm not usable here: cannot open /dev/kvm" "no KVM: --check says KVM is not usable"

# The suite's runner, as `make check` uses it, on one guest test file.
nokvm env BUILD="$BUILD" perl tests/run-suite.pl tests/t/boot.t
is "$RC" 0 "no KVM: a suite of skipped guest tests still passes"
has "$(tail -3 "$TMP/out")" "^SKIPPED: 24 tests in 1 test file did not run: /dev/kvm is missing or not accessible\.$" \
    "no KVM: the last lines say how many tests were skipped and why"
is "$(tail -1 "$TMP/out")" "check: 0 passed, 0 failed, 24 skipped" "no KVM: the last line counts them"
