#!/usr/bin/env bash
# Record and replay (record.c): tests/guest/recordme.c's output depends on when its timer
# interrupts come, where the clock is when it reads it, and its serial input. Recorded once, it
# replays to the same bytes and status every time, with no input given; a replay that cannot
# follow the recording (a kernel reading the TSC, another kernel) stops and names why.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 22
K=$TMP/recordme.elf
cp "$GUEST/recordme.elf" "$K"

(sleep 0.05; printf 'hello\n') | timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/run.log" "$K" >"$TMP/rec.out" 2>"$TMP/rec.err"
RC=$?
RECORDED="$RC
$(cat "$TMP/rec.out")"
has "$RECORDED" "^input: hello$" "the recorded run got its serial input"
has "$RECORDED" "^ticks: [0-9]+$" "and its timer interrupts"
has "$RECORDED" "^cpuid: no tsc-deadline, no tsc frequency$" \
    "recording, CPUID offers no TSC deadline or frequency (KVM cannot trap RDTSC: a replay could not give it back)"
run_slate --timeout 5 "$K" </dev/null
has "$OUT" "^cpuid: (no )?tsc-deadline, tsc frequency$" "without --record the frequency is there"
same=0
for i in 1 2 3; do
    run_slate --replay "$TMP/run.log"
    [ "$RC
$OUT" = "$RECORDED" ] && same=$((same + 1))
done
is "$same" 3 "three replays print the same bytes and exit with the same status, with no input given"
lacks "$ERR" "diverged|warning" "and say nothing else"

# With a disk and a network card: reads started by timer interrupts, their data and completion
# interrupts coming whenever they come, and ARP requests whose answers arrive whenever they do.
# The replay needs no disk (the image is gone) and writes none, and has no network.
head -c 1048576 /dev/urandom >"$TMP/disk.img"
(sleep 0.05; printf 'hello\n') | timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/disk.log" --disk "$TMP/disk.img" \
    --net user "$K" >"$TMP/rec.out" 2>"$TMP/rec.err"
RC=$?
RECORDED="$RC
$(cat "$TMP/rec.out")"
has "$RECORDED" "^disk reads: [1-9][0-9]*, data hash 0x[0-9a-f]+$" "the recorded run read its disk as its timer ticked"
has "$RECORDED" "^frames in: [1-9][0-9]*, hash 0x[0-9a-f]+$" "and frames came in from the network: one kernel with a timer, serial input, a disk and a network card"
rm "$TMP/disk.img"
same=0
for i in $(seq 10); do
    run_slate --replay "$TMP/disk.log"
    [ "$RC
$OUT" = "$RECORDED" ] && ! grep -q . <<<"$ERR" && same=$((same + 1))
done
is "$same" 10 "ten replays without the disk image or a network: the same bytes, disk data and frames included, status and final memory"
truncate -s 1M "$TMP/w.img"
timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/w.log" --disk "$TMP/w.img" --append write "$GUEST/block.elf" >/dev/null 2>&1 </dev/null
: >"$TMP/w.img"
run_slate --replay "$TMP/w.log"
is "$RC/$OUT/$(stat -c %s "$TMP/w.img")" "0/wrote and flushed the disk/0" "a replay of a kernel that writes its disk writes nothing to the image"

# Interrupts that land while the kernel computes (not waiting in HLT): a timer tick and a disk
# read every millisecond for 100 ms (tests/guest/recbench.c). The recorder signals an interrupt
# only where the CPU takes it at once, one at a time, so it enters where the log says.
truncate -s 1M "$TMP/rb.img"
timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/rb.log" --disk "$TMP/rb.img" --append "disk ms=100" \
    "$GUEST/recbench.elf" >"$TMP/rec.out" 2>/dev/null </dev/null
RECORDED="$?
$(cat "$TMP/rec.out")"
has "$RECORDED" "^rounds [1-9][0-9]* reads [1-9][0-9]+$" "recorded: a kernel computing while a tick and a disk read land every millisecond"
same=0
for i in 1 2 3; do
    run_slate --replay "$TMP/rb.log"
    [ "$RC
$OUT" = "$RECORDED" ] && ! grep -q . <<<"$ERR" && same=$((same + 1))
done
is "$same" 3 "three replays: the same work done, reads, status and final memory"

# A network card: DHCP and ten pings through user-mode networking, frames arriving whenever
# libslirp sends them. The replay has no network at all.
timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/net.log" --net user --append "dhcp peer=10.0.2.2 mode=ping" \
    "$GUEST/net.elf" >"$TMP/rec.out" 2>/dev/null </dev/null
RC=$?
RECORDED="$RC
$(cat "$TMP/rec.out")"
is "$RECORDED" "0
dhcp: got 10.0.2.15
pings answered: 10" "recorded: DHCP and ten pings over the network"
same=0
for i in 1 2 3; do
    run_slate --replay "$TMP/net.log"
    [ "$RC
$OUT" = "$RECORDED" ] && ! grep -q . <<<"$ERR" && same=$((same + 1))
done
is "$same" 3 "three replays with no network: the same frames, bytes, status and final memory"

# What a replay cannot reproduce is named, never replayed wrongly.
cp "$TMP/net.log" "$TMP/bad.log"
printf '\x55' | dd of="$TMP/bad.log" bs=1 seek=$(($(stat -c %s "$TMP/bad.log") - 1)) conv=notrunc status=none
run_slate --replay "$TMP/bad.log"
has "$RC $ERR" "^125 slate: replay diverged: the guest's memory at the end differs from the recording's" \
    "a replay whose memory ends otherwise than recorded (here: the log's hash changed) says so, status 125"
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
printf 'not a log' >"$TMP/junk.log"
run_slate --replay "$TMP/junk.log"
has "$RC $ERR" "^125 slate: --replay .*junk.log: not a slate recording" "a file that is not a recording is refused"
run_slate --replay "$TMP/run.log" "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --replay PATH: takes no kernel" "a replay takes no kernel: the recording names it"
run_slate --replay "$TMP/missing.log"
has "$RC $ERR" "^125 slate: --replay .*missing.log: No such file" "a missing log is named"
