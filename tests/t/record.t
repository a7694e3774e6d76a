#!/usr/bin/env bash
# Record and replay (record.c): tests/guest/recordme.c's output depends on when its timer
# interrupts come, where the clock is when it reads it, and its serial input. Recorded once, it
# replays to the same bytes and status every time, with no input given; a replay that cannot
# follow the recording (a kernel reading the TSC, another kernel) stops and names why.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 12
K=$TMP/recordme.elf
cp "$GUEST/recordme.elf" "$K"

(sleep 0.05; printf 'hello\n') | timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/run.log" "$K" >"$TMP/rec.out" 2>"$TMP/rec.err"
RC=$?
RECORDED="$RC
$(cat "$TMP/rec.out")"
has "$RECORDED" "^input: hello$" "the recorded run got its serial input"
has "$RECORDED" "^ticks: [0-9]+$" "and its timer interrupts"
same=0
for i in 1 2 3; do
    run_slate --replay "$TMP/run.log"
    [ "$RC
$OUT" = "$RECORDED" ] && same=$((same + 1))
done
is "$same" 3 "three replays print the same bytes and exit with the same status, with no input given"
lacks "$ERR" "diverged|warning" "and say nothing else"

# What a replay cannot reproduce is named, never replayed wrongly.
timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/tsc.log" "$GUEST/tscspin.elf" >/dev/null 2>&1 </dev/null
run_slate --replay "$TMP/tsc.log"
is "$RC" 125 "a kernel that spins on the TSC diverges: the replay stops with 125"
has "$ERR" "^slate: replay diverged at exit [0-9]+, rip=0x[0-9a-f]+: .*: rdtsc at 0x[0-9a-f]+ - the TSC is not recorded" \
    "naming the rdtsc"
cp "$GUEST/power.elf" "$K"
run_slate --replay "$TMP/run.log"
has "$RC $ERR" "^125 slate: replay diverged at exit 1, " "another kernel in the recorded one's place diverges at its first exit"

run_slate --record "$TMP/x.log" --smp 2 "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --record: --smp: one CPU only" "recording more than one CPU is refused"
truncate -s 1M "$TMP/disk.img"
run_slate --record "$TMP/x.log" --disk "$TMP/disk.img" "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --record: --disk: disks are not recorded yet" "so is a disk"
printf 'not a log' >"$TMP/junk.log"
run_slate --replay "$TMP/junk.log"
has "$RC $ERR" "^125 slate: --replay .*junk.log: not a slate recording" "a file that is not a recording is refused"
run_slate --replay "$TMP/run.log" "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --replay PATH: takes no kernel" "a replay takes no kernel: the recording names it"
run_slate --replay "$TMP/missing.log"
has "$RC $ERR" "^125 slate: --replay .*missing.log: No such file" "a missing log is named"
