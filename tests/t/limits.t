#!/usr/bin/env bash
# Resource limits: a guest that does, round after round, everything that could make a naive
# hypervisor allocate or log (new unclaimed ports and addresses, unknown hypercalls, a receive
# ring it never empties while provoking replies, disk requests with bad buffers, pixels while a
# VNC client sits on a connection it never reads) must not grow slate's memory with the number of
# rounds, and its warnings must stay rate-limited. Run with some and with 5 times as many rounds,
# each started by the stalled VNC client's key press; peak RSS (GNU time's %M) is compared. The
# first run is long enough for slate's caches to warm up. A growth of 2 MiB over 12,000 extra
# rounds (36,000 warnable actions) would be 58 bytes kept per action. Under ASan, whose allocator
# keeps growing its per-thread caches for a while (measured: +0.9 MiB from 3,000 to 15,000 rounds,
# against nothing without it), the bound is 4 MiB and the quarantine is kept small.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 9
[ -n "${SLATE_UNDER_EMULATION:-}" ] &&
    skip_here "under emulation 15,000 rounds outlast the test's time limits (checked on KVM only)"
FEW=3000
MANY=15000
BOUND=2048
if grep -q __asan_init "$SLATE"; then BOUND=4096; fi
PORT=$(free_port)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
truncate -s 1M "$TMP/disk.img"

flood() { # flood ROUNDS: runs the guest; sets RC, OUT, ERR, PEAK (KiB)
    : >"$TMP/out" # emptied first: the wait below must not see the last run's lines
    /usr/bin/time -o "$TMP/peak" -f '%M' "$SLATE" -m 64M --net user --disk "$TMP/disk.img" \
        --display vnc --vnc "127.0.0.1:$PORT" --timeout 300 --append "ops=$1" "$GUEST/flood.elf" \
        >"$TMP/out" 2>"$TMP/err" </dev/null &
    local pid=$!
    for _ in $(seq "$(scaled 200)"); do grep -q '^waiting for a key' "$TMP/out" && break; sleep 0.05; done
    # A client that presses the key that starts the flood, asks for updates and never reads them.
    "$BUILD/tools/vnctool" vnc "127.0.0.1:$PORT" stall 2000 >"$TMP/stall" 2>&1
    wait "$pid"
    RC=$?
    OUT=$(cat "$TMP/out")
    ERR=$(grep -v 'exited with non-zero status' "$TMP/err")
    PEAK=$(tail -1 "$TMP/peak")
}

flood $FEW
is "$RC" 0 "$FEW rounds: slate exits as the guest asks"
few_peak=$PEAK
flood $MANY
is "$RC" 0 "$MANY rounds: slate exits as the guest asks"
has "$OUT" "^flood survived $MANY rounds" "$MANY rounds: the guest's heartbeat arrives after the last round"
has "$(cat "$TMP/stall")" '^stalled' "a VNC client stalled on its connection while the guest drew"
growth=$((PEAK - few_peak))
if [ "$growth" -lt "$BOUND" ]; then
    pass "peak memory grows by less than $BOUND KiB from $FEW to $MANY rounds ($few_peak KiB -> $PEAK KiB)"
else
    fail "peak memory grew by $growth KiB from $FEW to $MANY rounds" "$few_peak KiB -> $PEAK KiB"
fi
drops=$(sed -n 's/.*rx drops \([0-9]*\).*/\1/p' <<<"$OUT")
if [ "${drops:-0}" -gt "$MANY" ]; then
    pass "frames for a guest that never reads are dropped and counted ($drops), not queued"
else
    fail "expected more than $MANY receive drops" "$OUT"
fi
lines=$(grep -c . <<<"$ERR")
if [ "$lines" -lt 200 ]; then
    pass "$((3 * MANY)) warnable guest actions make $lines lines on stderr"
else
    fail "$((3 * MANY)) warnable guest actions made $lines lines on stderr" "$(head -5 <<<"$ERR")"
fi
has "$ERR" 'similar warnings suppressed' "suppressed warnings are counted in the next one that passes"
lacks "$ERR" 'internal|AddressSanitizer|runtime error|LeakSanitizer' "no crash or sanitizer report"
