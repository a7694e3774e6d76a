#!/usr/bin/env bash
# The timer and clock device, and the LAPIC timer with the frequency CPUID gives.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 18
TIMER=$GUEST/timer.elf

run_slate --append periodic "$TIMER"
is "$RC" 0 "periodic: a 1 kHz timer runs until a one-shot 1 s timer ends it"
# The timer's accuracy is its expiry count (a busy host may coalesce interrupts, which the
# guest learns from EXPIRATIONS): 1000 in one second, and at most one interrupt per expiry.
ticks=$(sed -n 's/^ticks in one second: //p' <<<"$OUT")
expirations=$(sed -n 's/^expirations: //p' <<<"$OUT")
if [ -n "$expirations" ] && [ "$expirations" -ge 950 ] && [ "$expirations" -le 1050 ] &&
   [ -n "$ticks" ] && [ "$ticks" -ge 1 ] && [ "$ticks" -le "$expirations" ]; then
    pass "periodic: $expirations expirations in one second (1000 +-5%), $ticks interrupts"
else
    fail "periodic: 1000 +-5% expirations in one second, at most one interrupt each" \
        "expirations: '$expirations' interrupts: '$ticks'"
fi

run_slate --smp 2 --append oneshot "$TIMER"
is "$RC" 0 "oneshot: halted CPUs wake on their one-shot timers"
has "$OUT" '^cpu 0 woke after ms: ' "a one-shot 20 ms timer wakes halted CPU 0 no earlier than 20 ms"
has "$OUT" '^past deadline fired$' "an absolute deadline in the past fires at once"
has "$OUT" '^cpu 1 woke by its own timer$' "a timer routed to CPU 1 wakes CPU 1"

UNSTEADY="this host's clocksource is not tsc (its kernel marked the TSC unstable), so the exit-free clock is not exact here (docs/machine.md)"
if tsc_steady; then
    run_slate --append clock "$TIMER"
    is "$RC" 0 "clock: rdtsc with the info block agrees with the register clock to 1 ms"
    guest_wall=$(sed -n 's/^wall clock s: //p' <<<"$OUT")
    host_wall=$(date +%s)
    if [ -n "$guest_wall" ] && [ $((host_wall - guest_wall)) -ge 0 ] && [ $((host_wall - guest_wall)) -le "$(scaled 2)" ]; then
        pass "the wall clock register matches the host's time"
    else
        fail "the wall clock register matches the host's time" "guest: '$guest_wall' host: '$host_wall'"
    fi
else
    skip_tests 2 "$UNSTEADY"
fi

run_slate --append errors "$TIMER"
is "$RC/$OUT" "0/timer errors ok" "bad timer numbers read all-ones; short periods and unknown bits set ERROR; bad vectors are refused"
has "$ERR" 'there is no timer 4' "a bad timer number is reported"
has "$ERR" 'below the minimum' "a refused period is reported"

run_slate --append lapic "$TIMER"
is "$RC" 0 "the LAPIC timer (one-shot and TSC-deadline) fires on time with CPUID's frequencies, no calibration"
has "$OUT" '^lapic one-shot 10 ms took us: ' "LAPIC one-shot measured"
has "$OUT" '^tsc-deadline 10 ms took us: ' "TSC-deadline measured"

run_slate --append cpuid "$TIMER"
is "$RC" 0 "CPUID 0x40000000's 12 signature bytes are \"SlateMachine\", 0x40000010 the frequencies"
has "$OUT" '^cpuid signature: SlateMachine$' "the guest reads the signature in order"
has "$OUT" '^tsc-deadline yes$' "CPUID.1:ECX[24] says TSC-deadline (KVM emulates it whatever the host CPU)"

if tsc_steady; then
    run_slate --append drift "$TIMER"
    is "$RC" 0 "drift: over 3 s the rdtsc clock and the CLOCK register agree within 0.01% ($(sed -n 's/^clock drift over ms: //p' <<<"$OUT") ppm)"
else
    skip_tests 1 "$UNSTEADY"
fi
