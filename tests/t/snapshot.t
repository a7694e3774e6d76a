#!/usr/bin/env bash
# Snapshots (snapshot.c, snapfile.c): the kernel (tests/guest/cpustate.c with "snapshot") fills
# memory, programs the timer device and the LAPIC timer, sets its registers, MSRs, FPU/SSE and
# debug registers, then calls SLATE_HC_SNAPSHOT. Where it saved (0) and where slate --restore
# resumed it (1) it checks that nothing changed under it. Then what --restore refuses: truncated,
# corrupted and foreign files, a changed machine, a disk changed since.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 35
K=$GUEST/cpustate.elf
SAME="same: memory
same: clock
same: device timer
same: registers
same: control registers and tables
same: msrs
same: fpu
same: debug registers
same: tsc
same: lapic registers
same: lapic timer"
S=$TMP/machine.snap

run_slate --append snapshot --snapshot "$S" "$K"
is "$RC" 0 "the kernel snapshots itself and exits 0"
has "$OUT" '^snapshot: saved$' "SLATE_HC_SNAPSHOT returns 0 where the machine saved"
is "$(grep '^same\|^CHANGED' <<<"$OUT")" "$SAME" "the saving machine goes on unchanged"
has "$ERR" "snapshot: saved .*machine.snap \([0-9.]+ MiB" "slate says where it saved and how much"
size=$(stat -c %s "$S")
[ "$size" -lt $((16 << 20)) ] && pass "a 128 MiB guest that wrote ~2 MiB saves $((size >> 10)) KiB (zero pages are holes)" \
    || fail "the snapshot is $size bytes"

run_slate --restore "$S"
is "$RC" 0 "slate --restore resumes it in another process"
has "$OUT" '^snapshot: restored$' "SLATE_HC_SNAPSHOT returns 1 in the restored machine"
is "$(grep '^same\|^CHANGED' <<<"$OUT")" "$SAME" \
    "registers, control registers, MSRs, FPU/SSE, debug registers, memory, TSC, CLOCK and both timers are as they were"
lacks "$OUT" '^snapshot: saved$' "the restored machine does not run the boot again"

run_slate --restore "$S"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/11" "a second restore from the same file works the same"
run_slate --restore "$S,lazy"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/11" "--restore PATH,lazy maps RAM from the file and works the same"

# Four CPUs (three wait for their start-up IPI when it is taken).
run_slate --smp 4 --append snapshot --snapshot "$TMP/smp.snap" "$K"
run_slate --restore "$TMP/smp.snap"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/11" "a 4-CPU machine restores"

# What is refused, with 125 and one line naming why; nothing runs.
head -c $((size / 2)) "$S" >"$TMP/truncated.snap"
run_slate --restore "$TMP/truncated.snap"
is "$RC" 125 "a truncated file is refused with 125"
has "$ERR" "^slate: --restore .*truncated.snap: truncated" "naming it truncated"
cp "$S" "$TMP/corrupt.snap"
printf '\x55' | dd of="$TMP/corrupt.snap" bs=1 seek=$((size - 8192)) conv=notrunc status=none
run_slate --restore "$TMP/corrupt.snap"
is "$RC" 125 "a flipped byte in RAM is refused with 125"
has "$ERR" "corrupted: section memory [0-9]+ fails its checksum" "naming the section that fails its checksum"
lacks "$OUT" 'snapshot: restored' "and the machine never runs"
printf 'this is not a snapshot at all, just text ......................................\n' >"$TMP/foreign.snap"
run_slate --restore "$TMP/foreign.snap"
has "$RC $ERR" "^125 slate: --restore .*: not a slate snapshot" "a foreign file is refused by name"
run_slate --restore "$TMP/missing.snap"
has "$RC $ERR" "^125 slate: --restore .*missing.snap: No such file" "a missing file too"
run_slate --restore "$S" -m 256M
has "$RC $ERR" "^125 slate: --restore: the machine .* comes from the snapshot" "the RAM size cannot change on restore"
run_slate --restore "$S" "$K"
has "$RC $ERR" "^125 slate: .*--restore takes no kernel" "nor can a kernel be given"

# Disks: the snapshot knows the image's size and modification time.
truncate -s 1M "$TMP/disk.img"
run_slate --append snapshot --snapshot "$TMP/disk.snap" --disk "$TMP/disk.img" "$K"
run_slate --restore "$TMP/disk.snap"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/11" "a machine with a disk restores on the same, unchanged disk"
printf 'changed' | dd of="$TMP/disk.img" bs=1 seek=4096 conv=notrunc status=none
run_slate --restore "$TMP/disk.snap"
has "$RC $ERR" "^125 slate: disk0: .*disk.img changed since the snapshot" "a disk changed since is refused, naming it"
run_slate --restore "$TMP/disk.snap" --disk "$TMP/disk.img,snapshot"
is "$RC/$(grep -c '^same' <<<"$OUT")" "0/11" "with ,snapshot (a private copy) the changed disk is taken as it is"
has "$ERR" "disk0: .*changed since the snapshot; the guest sees it as it is now" "with a warning"
truncate -s 2M "$TMP/other.img"
run_slate --restore "$TMP/disk.snap" --disk "$TMP/other.img,snapshot"
has "$RC $ERR" "^125 slate: disk0: .*other.img has 4096 sectors; the snapshot's disk had 2048" "a disk of another size is refused"
run_slate --restore "$TMP/disk.snap" --disk "$TMP/disk.img" --disk "$TMP/other.img"
has "$RC $ERR" "^125 slate: --restore: the snapshot's machine has 1 disk; give --disk 1 time" "so is another number of disks"

# Devices busy across the snapshot (tests/guest/snapdev.c): a disk whose ring has run, a network
# card that has had an ARP exchange through user-mode networking, a picture on the screen.
DEV="same: disk contents
same: disk ring
same: network rings
same: display"
truncate -s 1M "$TMP/dev.img"
run_slate --disk "$TMP/dev.img,snapshot" --net user --screenshot "$TMP/saved.png" --snapshot "$TMP/dev.snap" "$GUEST/snapdev.elf"
is "$RC|$(grep '^same\|^CHANGED\|^side' <<<"$OUT")" "0|$DEV
side: saved" "with a disk, a network card and a display busy, the saving machine goes on"
run_slate --restore "$TMP/dev.snap" --disk "$TMP/dev.img,snapshot" --screenshot "$TMP/restored.png"
is "$RC|$(grep '^same\|^CHANGED\|^side' <<<"$OUT")" "0|$DEV
side: restored" "restored: what the guest wrote to its disk is there, and the disk, card and display work on"
cmp -s "$TMP/saved.png" "$TMP/restored.png" && pass "the restored screen is the saved one, pixel for pixel (PNG files equal)" \
    || fail "the screenshots differ"
run_slate --restore "$TMP/dev.snap" --disk "$TMP/dev.img"
has "$RC $ERR" "^125 slate: disk0: the snapshot holds 4 KiB the guest wrote to its private copy; restore with --disk .*dev.img,snapshot" \
    "what the guest wrote to a ,snapshot disk is never restored onto the image itself"

# The monitor's `snapshot save`: any moment, only in --dump-dir.
rm -f "$TMP/mon.sock"
mkdir -p "$TMP/dumps"
timeout -s KILL "$(scaled 60)" "$SLATE" --monitor "unix:$TMP/mon.sock" --dump-dir "$TMP/dumps" --serial none \
    --append halt "$GUEST/halt_forever.elf" >"$TMP/out" 2>&1 </dev/null &
PID=$!
for _ in $(seq "$(scaled 200)"); do [ -S "$TMP/mon.sock" ] && break; sleep 0.05; done
M=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$TMP/mon.sock" "snapshot save m.snap" \
    "snapshot save ../m.snap" "snapshot save m.snap" "quit")
wait "$PID"
has "$M" "^saved $TMP/dumps/m.snap \([0-9.]+ MiB\)$" "the monitor's snapshot save writes into --dump-dir"
has "$M" "^error: usage: snapshot save NAME" "and nowhere else"
has "$M" "^error: m.snap exists \(snapshot save m.snap force replaces it\)$" "nor over a file unless told"
run_slate --restore "$TMP/dumps/m.snap" --timeout 1
has "$RC|$(grep 'cpu 0:' <<<"$ERR")" "^124\|  cpu 0: halted, interrupts off, long mode, rip=.* kmain" \
    "the machine it saved resumes, halted where it was"
