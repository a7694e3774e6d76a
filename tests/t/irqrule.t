#!/usr/bin/env bash
# Every device follows one interrupt rule: only a new event raises a line, never the acknowledge.
# The guest's handler only acknowledges (then works 200 us, so a line raised again by the
# acknowledge would be pending at its EOI) and its main loop does all the reading; the main loop
# must finish, with no more interrupts than new events.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 16
K=$GUEST/irqrule.elf
interrupts() { sed -n "s/^$1: main loop read [0-9]* with interrupts \([0-9]*\)$/\1/p" <<<"$OUT"; }
at_most() { # DESCRIPTION GOT MAX
    if [ -n "$2" ] && [ "$2" -le "$3" ]; then pass "$1 ($2 interrupts, at most $3)";
    else fail "$1" "got: '$2' interrupts, want at most $3" "$OUT" "$ERR"; fi
}

(sleep 0.5; head -c 200 /dev/zero | tr '\0' x) | timeout -s KILL "$(scaled 60)" "$SLATE" --timeout "$(scaled 20)" \
    --append serial "$K" >"$TMP/out" 2>"$TMP/err"
RC=$?; OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
is "$RC" 0 "serial: a handler that only acknowledges lets the main loop read all input"
at_most "serial: one interrupt for the burst of input, one for its end" "$(interrupts serial)" 2
has "$OUT" '^acknowledged with events queued: status stays clear$' "serial: an acknowledge with input unread does not set IRQ_RX again"

run_slate --timeout "$(scaled 20)" --append timer "$K"
is "$RC" 0 "timer: the main loop sees 50 expirations"
at_most "timer: no more interrupts than expirations" "$(interrupts timer)" 50

truncate -s 1M "$TMP/disk.img"
run_slate --timeout "$(scaled 20)" --disk "$TMP/disk.img" --append block "$K"
is "$RC" 0 "block: the main loop sees 4 requests complete"
at_most "block: no more interrupts than completions" "$(interrupts block)" 4

run_slate --timeout "$(scaled 20)" --net user --append net "$K"
is "$RC" 0 "net: the main loop receives slirp's ARP reply"
at_most "net: one interrupt per event (sent, received)" "$(interrupts net)" 2

# Keyboard and pointer: events from a real VNC client while the guest waits.
vnc_guest() { # MODE VNCTOOL-ARGS...
    local mode=$1; shift
    local port=$(free_port)
    : >"$TMP/out" # emptied first: the wait below must not see the last run's lines
    timeout -s KILL "$(scaled 60)" "$SLATE" --timeout "$(scaled 20)" --display vnc --vnc "127.0.0.1:$port" \
        --append "$mode" "$K" >"$TMP/out" 2>"$TMP/err" </dev/null &
    local pid=$!
    for _ in $(seq "$(scaled 200)"); do grep -q '^ready' "$TMP/out" && break; sleep 0.05; done
    "$BUILD/tools/vnctool" vnc "127.0.0.1:$port" "$@" >/dev/null
    wait "$pid"; RC=$?; OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
}
vnc_guest keyboard key 0x61 key 0x62 key 0x63 key 0x64 key 0x65
is "$RC" 0 "keyboard: the main loop reads all 10 events"
at_most "keyboard: no more interrupts than events" "$(interrupts keyboard)" 10
has "$OUT" '^acknowledged with events queued: status stays clear$' "keyboard: an acknowledge with events queued does not raise it again"
vnc_guest pointer pointer 10 10 0 pointer 100 100 0 pointer 300 200 0
is "$RC" 0 "pointer: the main loop sees the last position"
at_most "pointer: no more interrupts than changes" "$(interrupts pointer)" 3

run_slate --stats --append reroute "$K"
is "$RC" 0 "reroute: a guest writes the same IRQ_VECTOR and IRQ_CPU 101 times"
has "$ERR" '^  interrupt routing updates +1$' "only the first write that changes the route updates KVM's routing table"
