#!/usr/bin/env bash
# One home for a CPU's state (cpu_state.c): the whole state taken out of a vCPU, a different one
# put in, and the saved one put back (SLATE_TEST_CPU_ROUNDTRIP on a debug-break hypercall), and
# the kernel (tests/guest/cpustate.c) cannot tell: registers, flags, control registers, tables,
# MSRs, x87/SSE, debug registers, the LAPIC and its timer. Leaving one part out, it can.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 11
K=$GUEST/cpustate.elf
ALL="same: registers
same: control registers and tables
same: msrs
same: fpu
same: debug registers
same: tsc
same: lapic registers
same: lapic timer"

run_slate "$K"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/8" "without the test switch nothing happens to the CPU"
SLATE_TEST_CPU_ROUNDTRIP=1 run_slate "$K"
has "$OUT" '^round trip: done$' "slate took the CPU's whole state out, put another in, and put it back"
is "$RC/$(grep '^same\|^CHANGED' <<<"$OUT")" "0/$ALL" "and the kernel sees every register, MSR, FPU register and its LAPIC timer as they were"

# Each part left out of the put is seen: the test would notice a part the put forgot.
for part in "fpu:fpu" "msrs:msrs" "debugregs:debug registers" "lapic:lapic registers"; do
    SLATE_TEST_CPU_ROUNDTRIP=${part%%:*} run_slate "$K"
    has "$OUT" "^CHANGED: ${part#*:}$" "with ${part%%:*} left out of the put, the kernel sees its ${part#*:} changed"
done
for part in regs sregs; do
    SLATE_TEST_CPU_ROUNDTRIP=$part run_slate "$K"
    is "$RC" 126 "with $part left out, the kernel runs in the scrambled state and crashes"
done

# AVX: where KVM runs XSAVE and AVX instructions (not on a PVM host: they fail its emulation).
SLATE_TEST_CPU_ROUNDTRIP=1 run_slate --append avx "$K"
if [ "$RC" = 126 ] && grep -q 'KVM internal error' <<<"$ERR" && grep -Eq '(xsave|xrstor|vinsertf|vmov)' <<<"$ERR"; then
    skip_tests 2 "this host's KVM cannot run XSAVE/AVX instructions in a guest (PVM): the YMM registers were not checked"
else
    has "$OUT" '^avx: (on|not offered)$' "with AVX turned on where offered"
    is "$RC/$(grep '^same\|^CHANGED' <<<"$OUT")" "0/$ALL" "the YMM registers too come back as they were"
fi
