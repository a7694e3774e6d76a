#!/usr/bin/env bash
# Pausing and resuming every vCPU (Ctrl-A p on a terminal), and Ctrl-A x, driven through a pty.
. "$(dirname "$0")/../lib.sh"
need_kvm
if ! command -v script >/dev/null; then
    echo "1..0 # SKIP script(1) from util-linux is needed to give slate a terminal"
    exit 0
fi
plan 6

# on_tty INPUT-SCRIPT ARGS...: runs slate on a pty; INPUT-SCRIPT is a shell snippet whose output
# is typed into it.
on_tty() {
    local input=$1
    shift
    : >"$TMP/out" # emptied first: the input's wait_out must not see the last run's lines
    { eval "$input"; } | timeout -s KILL "$(scaled 60)" script -qec "$SLATE $*" /dev/null >"$TMP/out" 2>&1
    RC=$?
    OUT=$(tr -d '\r' <"$TMP/out")
}

# The keys are typed once the guest has printed its first line: slate's terminal is raw by then.
wait_out() { for _ in $(seq "$(scaled 400)"); do grep -q "$1" "$TMP/out" 2>/dev/null && return; sleep 0.01; done; }
on_tty "wait_out ticking; printf '\001p'; sleep 0.8; printf '\001p'; sleep $(scaled 2)" --append ticker "$GUEST/timer.elf"
is "$RC" 0 "paused and resumed, the guest runs to its end"
has "$OUT" '^slate: paused: every CPU is stopped' "Ctrl-A p says the machine is paused"
has "$OUT" '^slate: resumed$' "a second Ctrl-A p resumes it"
gap=$(sed -n 's/^longest gap ms: //p' <<<"$OUT")
if [ -n "$gap" ] && [ "$gap" -ge 500 ]; then
    pass "the guest saw no timer tick for ${gap} ms while paused (paused for 800 ms)"
else
    fail "the guest saw a gap of at least 500 ms while paused" "got: '$gap'"
fi

on_tty "wait_out 'all halted'; printf '\001x'; sleep $(scaled 2)" --smp 4 --append halt "$GUEST/smp.elf"
is "$RC" 130 "Ctrl-A x stops a machine whose CPUs are halted (130)"
has "$OUT" '^all halted$' "the CPUs were running before"
