#!/usr/bin/env bash
# slate --each (each.c): tests/guest/cases.c boots once and calls SLATE_HC_SNAPSHOT; every case
# file then runs from that point and slate puts the machine back after it. Cases that pass, fail,
# crash and hang give the right TAP lines, logs and status; a case that scribbles over memory
# leaves nothing for the next (the kernel counts the cases its memory has seen).
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 23
K=$GUEST/cases.elf
C=$TMP/cases
mkdir "$C"
printf 'pass' >"$C/01-pass"
printf 'scribble' >"$C/02-scribble"
printf 'pass' >"$C/03-pass-again"
printf 'exit 7' >"$C/04-exit7"
printf 'crash' >"$C/05-crash"
printf 'hang' >"$C/06-hang"
printf 'pass' >"$C/07-pass"

run_slate --case-timeout 1 --each-dir "$C" --each-out "$TMP/logs" "$K"
tap_lines() { grep -v '^# ' <<<"$1" | sed -E 's/after [0-9]+ ms/after N ms/'; }
ONE_JOB=$(tap_lines "$OUT")
is "$RC" 1 "a run with failing cases exits 1"
is "$(head -1 <<<"$OUT")" "1..7" "TAP's plan comes first"
has "$OUT" "^ok 1 - .*/01-pass$" "a passing case is ok"
has "$OUT" "^ok 3 - .*/03-pass-again$" "after a case scribbled over memory the next sees the snapshot's memory"
has "$OUT" "^not ok 4 - .*/04-exit7 # exit 7$" "a case exiting 7 fails with its code"
has "$OUT" "^not ok 5 - .*/05-crash # crash: triple fault" "a crashing case fails, saying how"
has "$OUT" "^# report: .*/logs/5-05-crash.report$" "its crash report is kept beside its log"
has "$(cat "$TMP/logs/5-05-crash.report")" "why: #UD: IDT\[6\] is past the IDT's limit" \
    "and explains the crash (an empty IDT)"
has "$(cat "$TMP/logs/6-06-hang.report")" "diagnosis: halted with interrupts off" "the hang's report says why it hangs"
lacks "$ERR" "guest crashed|hang report" "neither report is on stderr"
has "$OUT" "^not ok 6 - .*/06-hang # timed out after [0-9]+ ms \(--case-timeout\)$" "a hanging case times out"
has "$OUT" "^ok 7 - .*/07-pass$" "and the case after a crash and a hang starts from the snapshot again"
has "$OUT" "^# 7 cases, 3 failed; a reset took [0-9]+ us on average" "the summary says how long a reset took"
is "$(cat "$TMP/logs/boot.log")" "init done" "the boot's output is in boot.log"
is "$(cat "$TMP/logs/4-04-exit7.log")" "case 4: exit 7" "each case's output is in its own log"

run_slate --each "$C/01-pass" "$C/03-pass-again" --each-out "$TMP/out2" "$K"
is "$RC|$OUT" "0|1..2
ok 1 - $C/01-pass
ok 2 - $C/03-pass-again
# 2 cases, 0 failed; a reset took $(grep -o '[0-9]* us' <<<"$OUT") on average ($(grep -o "[0-9.]* pages" <<<"$OUT"))" \
    "cases named on the command line, all passing: exit 0" 

# --jobs: the same cases in 3 machines side by side, restored from one snapshot.
run_slate --case-timeout 1 --jobs 3 --each-dir "$C" --each-out "$TMP/jobs" "$K"
is "$RC|$(tap_lines "$OUT")" "1|$ONE_JOB" "--jobs 3 gives the same TAP lines, in order, and status"
has "$OUT" "^# report: .*/jobs/5-05-crash.report$" "with the report of a crash a worker saw"
is "$(ls "$TMP/jobs" | tr '\n' ' ')" "1-01-pass.log 2-02-scribble.log 3-03-pass-again.log 4-04-exit7.log 5-05-crash.log 5-05-crash.report 6-06-hang.log 6-06-hang.report 7-07-pass.log boot.log " \
    "each worker's cases leave their logs and reports in the same directory"
is "$(cat "$TMP/jobs/2-02-scribble.log")" "case 2: scribble" "a case a worker ran printed there"

# A kernel that exits before its snapshot ran no case: that is a failure, whatever its code.
run_slate --each "$C/01-pass" --each-out "$TMP/out3" "$GUEST/power.elf"
is "$RC" 1 "a kernel that never snapshots fails the run"
has "$OUT" "^Bail out! the kernel stopped before calling SLATE_HC_SNAPSHOT" "saying so in TAP"

truncate -s 1M "$TMP/disk.img"
run_slate --each "$C/01-pass" --disk "$TMP/disk.img" "$K"
has "$RC $ERR" "^125 slate: --each: --disk .*disk.img is writable: give it ,snapshot" \
    "a writable disk is refused: every case must start from the same disk"
