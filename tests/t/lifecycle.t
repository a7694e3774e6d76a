#!/usr/bin/env bash
# How a run ends: --timeout, signals, reset, and a 16 GiB guest.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 10

start=$(date +%s%N)
run_slate --timeout 0.5 "$GUEST/halt_forever.elf"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$RC" 124 "--timeout: status 124"
has "$OUT" '^halting$' "--timeout: the guest ran before being stopped"
if [ "$elapsed_ms" -lt 10000 ]; then pass "--timeout stops a halted guest (took ${elapsed_ms} ms)"; else fail "--timeout took ${elapsed_ms} ms"; fi

for sig in TERM INT HUP; do
    : >"$TMP/out" # emptied first: the wait below must not see the last run's lines
    "$SLATE" "$GUEST/halt_forever.elf" >"$TMP/out" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq "$(scaled 50)"); do grep -q halting "$TMP/out" && break; sleep 0.1; done
    kill -s "$sig" "$pid"
    wait "$pid"
    statuses="$statuses $?"
done
is "$statuses" " 143 130 129" "SIGTERM, SIGINT, SIGHUP stop a halted guest with 128+signal"

run_slate --timeout 1 --append reset "$GUEST/power.elf"
boots=$(count "$OUT" '^boot$')
if [ "$boots" -ge 3 ]; then pass "power reset: the machine boots again ($boots boots in 1 s)"; else fail "power reset: only $boots boots"; fi
if [ "$RC" = 124 ]; then pass "power reset: --timeout still ends a resetting guest"
else fail "power reset: --timeout still ends a resetting guest" "status $RC after $boots boots; stderr ends:" "$(tail -5 <<<"$ERR")"; fi

run_slate -m 16G "$GUEST/bigmem.elf"
is "$RC" 0 "16 GiB guest runs"
has "$OUT" '^region 0x0-0xc0000000 ok$' "16 GiB: low RAM written and read at both ends"
has "$OUT" '^region 0x100000000-0x440000000 ok$' "16 GiB: high RAM written and read at both ends"

rss_kb=$( { /usr/bin/time -f '%M' "$SLATE" -m 16G "$GUEST/bigmem.elf" >/dev/null; } 2>&1 | tail -1)
if [ "$rss_kb" -lt 65536 ]; then pass "16 GiB guest: RAM is lazy (peak RSS ${rss_kb} KiB)"; else fail "16 GiB guest: peak RSS ${rss_kb} KiB"; fi
