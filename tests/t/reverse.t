#!/usr/bin/env bash
# Reverse execution (timetravel.c): gdb on a replay steps and continues backwards. A kernel whose
# timer handler writes through a stale pointer (tests/guest/overwrite.c) is recorded once as it
# crashes; on the replay, gdb watches the pointer it crashed on, reverse-continues, and lands on
# the handler's store. Going back and forward again changes nothing: the same registers, and a
# replay that gdb leaves ends as recorded, with the same output and memory.
. "$(dirname "$0")/../lib.sh"
need_kvm
if ! command -v gdb >/dev/null; then
    echo "1..0 # SKIP gdb is not installed (make deps installs it)"
    exit 0
fi
plan 54
[ -n "${SLATE_UNDER_EMULATION:-}" ] && [ -z "${SLATE_TEST_SLOW:-}" ] &&
    skip_here "under emulation a replay stepped one instruction at a time takes too long (SLATE_TEST_SLOW=1 runs it)"
OW=$GUEST/overwrite.elf
RM=$GUEST/recordme.elf
SOCK=$TMP/gdb.sock
STORE_LINE=$(grep -n 'the stale store' tests/guest/overwrite.c | cut -d: -f1)
BUILD_LINE=$(grep -n 'tail->next = n;' tests/guest/overwrite.c | cut -d: -f1)
WALK_LINE=$(grep -n 'faults on the flagged pointer' tests/guest/overwrite.c | cut -d: -f1)

GDB_TIMEOUT=120
. "$(dirname "$0")/../gdb.sh"
# replay LOG: slate replaying LOG in the background, waiting for gdb on $SOCK.
replay() { start_slate --replay "$1" --gdb-wait; }
# regs_at MARK: the register lines gdb printed after "echo MARK".
regs_at() { sed -n "/^$1\$/,/^eflags/p" <<<"$GDB" | grep -E '^(r[a-z0-9]+|eflags) '; }

timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/ow.log" "$OW" >"$TMP/rec.out" 2>"$TMP/rec.err" </dev/null
is "$?/$(cat "$TMP/rec.out")" "126/walking the list" "recorded: the kernel crashes walking its list"
REC_ERR=$(cat "$TMP/rec.err")
has "$REC_ERR" "^  the last 64 instructions, oldest first \([0-9]+ run again from the last checkpoint\):\$" \
    "the recorded run's own crash report lists the last 64 instructions (its log read back, run again) ..."
has "$REC_ERR" "^  => 0+100[0-9a-f]+  [a-z_]+\+0x[0-9a-f]+ \(tests/guest/overwrite.c:$WALK_LINE\) +add " "... ending at the faulting instruction"

# Without gdb, the replay's crash report shows the instructions that led to the fault.
run_slate --replay "$TMP/ow.log"
has "$RC $ERR" "^126 slate: guest crashed on cpu 0" "replayed, the kernel crashes as recorded (126)"
has "$ERR" "^  the last 64 instructions, oldest first \([0-9]+ run again from the last checkpoint\):\$" \
    "its crash report lists the last 64 instructions, run again from the replay's last checkpoint ..."
has "$ERR" "^  => 0+100[0-9a-f]+  [a-z_]+\+0x[0-9a-f]+ \(tests/guest/overwrite.c:$WALK_LINE\) +add " "... ending at the faulting instruction, with its source line"
lacks "$ERR" "diverged" "and the replay still ends as recorded"

replay "$TMP/ow.log"
gdb_batch "$OW" "continue" "print list->next" "watch -l list->next" "reverse-continue" \
    "echo AT-STORE\n" "info registers" "reverse-stepi" "reverse-stepi" "reverse-stepi" "stepi" "stepi" "stepi" \
    "echo AGAIN\n" "info registers" "reverse-continue" "delete" "reverse-continue" "print ticks" "set var ticks = 5" \
    "detach"
finish_slate
has "$GDB" "^Program received signal SIGSEGV" "continue on the replay stops where the recorded run crashed ..."
has "$GDB" "^walk \(\) at tests/guest/overwrite.c:$WALK_LINE\$" "... in walk(), at the faulting line"
has "$GDB" '^\$1 = \(struct node \*\) 0x8000000000' "the pointer it faults on has a flag in its top bit"
has "$GDB" "^Old value = \(struct node \*\) 0x8000000000[0-9a-f]+\$" "watch -l, reverse-continue: the watchpoint is hit going back ..."
has "$GDB" "^New value = \(struct node \*\) 0x[0-9a-f]+ <pool\+16>\$" "... the value before the store was the next node"
has "$GDB" "in on_tick \(f=0x[0-9a-f]+\) at tests/guest/overwrite.c:$STORE_LINE\$" \
    "... and gdb stops in the timer handler, on its stale store (overwrite.c:$STORE_LINE)"
before=$(regs_at AT-STORE)
after=$(regs_at AGAIN)
ok=0
[ -n "$before" ] && [ "$before" = "$after" ] && ok=1
is "$ok" 1 "reverse-stepi three times, then stepi three times: the same registers"
has "$GDB" "in kmain \(info=[^)]*\) at tests/guest/overwrite.c:$BUILD_LINE\$" \
    "reverse-continue again: the store before it, kmain linking the list (overwrite.c:$BUILD_LINE)"
has "$GDB" "^No more reverse-execution history\.\$" "with nothing to stop on, reverse-continue ends at the start of the window"
has "$GDB" '^\$2 = 0$' "where no tick has come yet"
has "$GDB" "(Could not write|Cannot access memory|E01)" "a replay's memory cannot be written"
is "$RC" 126 "left by gdb, the replay runs on to the recorded crash ..."
lacks "$ERR" "diverged" "... without a divergence: the same exits and the same memory at the end"
has "$ERR" "time travel: [0-9]+ instructions stepped" "what stepping cost is said when gdb leaves"

# reverse-next, reverse-step and reverse-finish, from kmain's store back through the list's loop.
replay "$TMP/ow.log"
gdb_batch "$OW" "continue" "watch -l list->next" "reverse-continue" "reverse-continue" "delete" "echo RN\n" \
    "reverse-next" "reverse-next" "echo RS\n" "reverse-step" "reverse-step" "echo RF\n" "reverse-finish" "kill"
finish_slate
VALUE_LINE=$(grep -n 'n->value = (uint64_t)i + 1;' tests/guest/overwrite.c | cut -d: -f1)
ALLOC_LINE=$(grep -n 'free_list = s->free_next;' tests/guest/overwrite.c | cut -d: -f1)
CALL_LINE=$(grep -n 'struct node \*n = alloc();' tests/guest/overwrite.c | cut -d: -f1)
is "$(sed -n '/^RN$/,/^RS$/p' <<<"$GDB" | grep -oE '^[0-9]+' | tr '\n' ' ')" "$((BUILD_LINE - 1)) $((BUILD_LINE - 2)) " \
    "reverse-next twice from the store: the lines before it, one at a time"
has "$(sed -n '/^RS$/,/^RF$/p' <<<"$GDB")" "^$VALUE_LINE\s" "reverse-step: the line before ..."
has "$(sed -n '/^RS$/,/^RF$/p' <<<"$GDB")" "in alloc \(\) at tests/guest/overwrite.c:$ALLOC_LINE\$" "... and into the call before it, at its last line"
has "$(sed -n '/^RF$/,$p' <<<"$GDB")" "^kmain \(info=[^)]*\) at tests/guest/overwrite.c:$CALL_LINE\$" \
    "reverse-finish: out of alloc, back at its call"

replay "$TMP/ow.log"
gdb_batch "$OW" "break on_tick" "continue" "continue" "print ticks" "reverse-continue" "print ticks" "kill"
finish_slate
has "$GDB" "^Breakpoint 1, on_tick \(f=0x[0-9a-f]+\) at tests/guest/overwrite.c:[0-9]+" \
    "a breakpoint on an interrupt handler's first instruction is hit"
has "$GDB" '^\$1 = 1$' "the second hit is the second tick ..."
has "$GDB" '^\$2 = 0$' "... and reverse-continue goes back to the first hit"

# A kernel with timer, serial input and disk reads coming whenever they came: taken forward to
# the end and back to the start under gdb, then left to run on: still the recorded run.
head -c 1048576 /dev/urandom >"$TMP/disk.img"
(sleep 0.05; printf 'hello\n') | timeout -s KILL "$(scaled 60)" "$SLATE" --record "$TMP/rm.log" --disk "$TMP/disk.img" "$RM" \
    >"$TMP/rec.out" 2>/dev/null
RECORDED="$?
$(cat "$TMP/rec.out")"
rm "$TMP/disk.img"
replay "$TMP/rm.log"
gdb_batch "$RM" "watch input_len" "continue" "print input" "delete" "continue" "reverse-continue" "continue" \
    "break on_disk" "reverse-continue" "print disk_done" "detach"
finish_slate
has "$GDB" "^New value = 1\$" "recorded input under gdb: a watchpoint sees the first byte arrive ..."
has "$GDB" '^\$1 = "h", ' "... and it is the recorded one"
READS=$(sed -n 's/^disk reads: \([0-9]*\),.*/\1/p' <<<"$RECORDED")
has "$GDB" "^\\\$2 = $((READS - 1))\$" "from the end, reverse-continue to a breakpoint in the disk's handler: its last hit, before its last read completed"
is "$RC
$OUT" "$RECORDED" "there and back again, then left to run on: the same bytes and status as recorded"
lacks "$ERR" "diverged|warning: replay" "and the same exits and memory"

# A recording stopped by its crash (--on-crash pause) goes back too: gdb, attached from the first
# instruction, continues to the crash, then goes back to the stale store and on past the start of
# the crash's window (the checkpoints the recording kept as it ran), and forward to the crash again.
start_slate --record "$TMP/paused.log" --on-crash pause --gdb-wait "$OW"
gdb_batch "$OW" "continue" "print list->next" "watch -l list->next" "reverse-continue" "reverse-continue" "delete" \
    "reverse-continue" "continue" "kill"
finish_slate
has "$GDB" "^Program received signal SIGSEGV" "recording under gdb: the crash stops the machine and gdb hears it (SIGSEGV)"
has "$GDB" "in on_tick \(f=0x[0-9a-f]+\) at tests/guest/overwrite.c:$STORE_LINE\$" \
    "on the recording stopped at its crash, reverse-continue lands on the stale store"
has "$GDB" "in kmain \(info=[^)]*\) at tests/guest/overwrite.c:$BUILD_LINE\$" \
    "... and again, on kmain linking the list: back past the crash's window, a kept checkpoint at a time"
has "$GDB" "^No more reverse-execution history\.\$" "... to the recording's oldest checkpoint"
is "$(grep -c "^Program received signal SIGSEGV" <<<"$GDB")" 2 "continue from there runs forward to the crash again"
is "$RC" 126 "the machine ends as a crash does (126)"
has "$ERR" "time travel: gdb can go back from the crash" "slate says where gdb can go back from ..."
has "$ERR" "time travel: the window reaches [0-9]+ instructions further back" "... and when the window reached back"
run_slate --replay "$TMP/paused.log"
is "$RC/$OUT" "126/walking the list" "the log of that recording replays to the same crash ..."
lacks "$ERR" "diverged|warning: replay" "... with the same exits and memory"

# gdb at work during the recording: breakpoints hit live, the guest's memory not writable (its
# log must stay what the guest did), a breakpoint still set at the crash, then used going back.
RELEASE_LINE=$(grep -n 'release(tick_stats);' tests/guest/overwrite.c | cut -d: -f1)
start_slate --record "$TMP/live.log" --on-crash pause --gdb-wait "$OW"
gdb_batch "$OW" "break on_tick" "break overwrite.c:$RELEASE_LINE" "continue" "print ticks" "set var ticks = 5" \
    "delete 1" "continue" "continue" "echo BACK\n" "reverse-continue" "kill"
finish_slate
has "$GDB" "^Breakpoint 1, on_tick \(f=0x[0-9a-f]+\) at tests/guest/overwrite.c:[0-9]+" "recording: a breakpoint is hit live ..."
has "$GDB" "(Could not write|Cannot access memory|E01)" "... a recording's memory cannot be written from gdb ..."
has "$(sed -n '/^BACK$/!p;/^BACK$/q' <<<"$GDB")" "^Breakpoint 2, kmain \(info=[^)]*\) at tests/guest/overwrite.c:$RELEASE_LINE\$" \
    "... and the next, after interrupts came while gdb held the machine"
has "$(sed -n '/^BACK$/,$p' <<<"$GDB")" "^Breakpoint 2, kmain \(info=[^)]*\) at tests/guest/overwrite.c:$RELEASE_LINE\$" \
    "after the crash, reverse-continue stops at the breakpoint set while recording"
lacks "$GDB" "Cannot (insert|remove) breakpoint" "breakpoints set before the crash come out and go in again"
run_slate --replay "$TMP/live.log"
is "$RC/$OUT" "126/walking the list" "a recording gdb stopped twice replays to the same crash ..."
lacks "$ERR" "diverged|warning: replay" "... with the same exits and memory"

# Going back over disk writes writes nothing: a kernel writes "first", then "second" to one
# sector and crashes; from the crash gdb goes back before both writes and forward over the
# first. The guest's buffer says "first" there; the image still holds "second".
DC=$GUEST/diskcrash.elf
SECOND_LINE=$(grep -n 'the second write' tests/guest/diskcrash.c | cut -d: -f1)
head -c 65536 /dev/zero >"$TMP/dc.img"
start_slate --record "$TMP/dc.log" --on-crash pause --gdb-wait --disk "$TMP/dc.img" "$DC"
gdb_batch "$DC" "continue" "reverse-continue" "break diskcrash.c:$SECOND_LINE" "continue" "print (char *)buffer" "kill"
finish_slate
has "$GDB" "^No more reverse-execution history\.\$" "from the crash back to before both writes ..."
has "$GDB" "^Breakpoint 1, kmain \(info=[^)]*\) at tests/guest/diskcrash.c:$SECOND_LINE\$" "... and forward over the first"
has "$GDB" '^\$1 = 0x[0-9a-f]+ <buffer> "first"$' "the guest's memory there is as it was then"
is "$(head -c 6 "$TMP/dc.img")" "second" "the disk image holds what the recorded run wrote last: nothing was written again"
