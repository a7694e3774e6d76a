#!/usr/bin/env bash
# Machine control with gdb and the monitor on one machine: each holds the machine with its own
# hold, so the monitor's commands never let the guest run behind gdb's back, and the monitor's
# single step keeps gdb's watchpoint (the guest-debug state is the union of what both asked for).
# The guest's spin loop increments `sink` for ever: whether it moved says whether the guest ran.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 8
DEBUGME=$GUEST/debugme.elf
SINK=0x$(nm "$DEBUGME" | awk '$3 == "sink" { print $1 }' | sed 's/^0*//')
GSOCK=$TMP/gdb.sock MSOCK=$TMP/mon.sock

start() { # MODE: slate with gdb and the monitor on Unix sockets, in the background
    rm -f "$GSOCK" "$MSOCK" "$TMP/go"
    timeout -s KILL "$(scaled 60)" "$SLATE" --gdb "unix:$GSOCK" --monitor "unix:$MSOCK" --append "$1" \
        "$DEBUGME" >"$TMP/out" 2>"$TMP/err" </dev/null &
    PID=$!
}
monitor() { timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$MSOCK" "$@"; }
sink_value() { sed -n "/^### x\/1g $SINK/{n;p}" <<<"$1" | awk '{ print $2 }' | sed -n "${2}p"; }

# 1. gdb stops the machine; the monitor reads memory (a short hold of its own), waits, reads
#    again, and even says stop and cont: the guest must not have moved in between.
start spin
: >"$TMP/rsp.out"
perl tests/tools/rsp-client.pl "$GSOCK" "?" "say:attached" "until:$TMP/go" "D" >"$TMP/rsp.out" 2>&1 &
RSP=$!
for _ in $(seq "$(scaled 200)"); do grep -q attached "$TMP/rsp.out" && break; sleep 0.05; done
M=$(monitor "x/1g $SINK" "info registers" "x/1g $SINK" "stop" "cont" "x/1g $SINK")
sleep 0.5
M2=$(monitor "x/1g $SINK")
touch "$TMP/go"
wait "$RSP"
monitor "quit" >/dev/null # gdb detached: the guest would spin for ever
wait "$PID"
has "$(cat "$TMP/rsp.out")" '^\? => T05' "gdb attaches and the machine stops"
first=$(sink_value "$M" 1)
if [ -n "$first" ] && [ "$first" = "$(sink_value "$M" 2)" ] && [ "$first" = "$(sink_value "$M" 3)" ] &&
    [ "$first" = "$(sink_value "$M2" 1)" ]; then
    pass "the monitor's reads, stop and cont never let the guest run while gdb holds it"
else
    fail "the monitor's reads, stop and cont never let the guest run while gdb holds it" \
        "sink: $(sink_value "$M" 1) $(sink_value "$M" 2) $(sink_value "$M" 3) $(sink_value "$M2" 1)" "$M"
fi
has "$M" '^running \(once gdb or Ctrl-A p lets the machine go too\)$' "cont says the machine waits for gdb"

# 2. gdb sets a write watchpoint on sink; the monitor stops, single-steps and continues; then gdb
#    continues: the watchpoint must still fire (a monitor step used to clear gdb's setup).
start spin
: >"$TMP/rsp.out"
perl tests/tools/rsp-client.pl "$GSOCK" "?" "Z2,${SINK#0x},8" "say:armed" "until:$TMP/go" "c" "D" \
    >"$TMP/rsp.out" 2>&1 &
RSP=$!
for _ in $(seq "$(scaled 200)"); do grep -q armed "$TMP/rsp.out" && break; sleep 0.05; done
M=$(monitor "stop" "step 3" "cont")
touch "$TMP/go"
wait "$RSP"
monitor "quit" >/dev/null # gdb detached: the guest would spin for ever
wait "$PID"
R=$(cat "$TMP/rsp.out")
has "$R" "^Z2,${SINK#0x},8 => OK$" "gdb sets a write watchpoint"
has "$M" '^stopped$' "the monitor stops the machine too"
has "$M" '^ +[0-9a-f]{16}  ' "and single-steps it"
has "$R" "^c => T05watch:${SINK#0x};" "after the monitor's steps, gdb's watchpoint still fires"
lacks "$(cat "$TMP/err")" 'KVM_SET_GUEST_DEBUG' "no guest-debug errors"
