#!/usr/bin/env bash
# Backtraces a newcomer can trust (tests/guest/bt.c, built without frame pointers as gcc -O2
# leaves it, and with them): every frame of the crash report's backtrace, unwound with the
# kernel's call frame information, is the frame gdb's bt shows, a caller's line is its call, and
# a hang inside an interrupt handler shows the code it interrupted.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 12
SRC=tests/guest/bt.c
line_of() { grep -n "$1" "$SRC" | head -1 | cut -d: -f1; }
L_UD2=$(line_of 'volatile("ud2")') L_LEAF=$(line_of '    leaf(p);') L_LEVEL2=$(line_of '    level2(p);')
L_LEVEL1=$(line_of '    level1(&sink);')

for k in bt bt-fp; do
    K=$GUEST/$k.elf
    SOCK=$TMP/$k.sock
    rm -f "$SOCK"
    timeout -s KILL "$(scaled 60)" "$SLATE" --on-crash pause --gdb "unix:$SOCK" "$K" >"$TMP/out" 2>"$TMP/err" </dev/null &
    PID=$!
    wait_until 30 grep -q 'on-crash pause' "$TMP/err"
    G=$(timeout -s KILL "$(scaled 60)" gdb -batch -nx "$K" -ex "target remote $SOCK" -ex bt 2>&1)
    kill -INT "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
    R=$(sed -n '/^  backtrace:$/,/exit stub/p' "$TMP/err")
    # name:line of each frame, in order; compiler suffixes (.constprop.0) aside
    ours=$(sed -n 's/^    #[0-9]* 0x[0-9a-f]* \([a-z_0-9]*\)[.a-z_0-9]*+0x[0-9a-f]* (tests\/guest\/bt.c:\([0-9]*\))$/\1:\2/p' <<<"$R" | tr '\n' ' ')
    is "$ours" "leaf:$L_UD2 level2:$L_LEAF level1:$L_LEVEL2 kmain:$L_LEVEL1 " \
        "$k: the crash report's backtrace names every frame, each caller at the line of its call"
    has "$R" '^    #4 0xc0100800 \(slate.s exit stub' "$k: and ends where kmain would return"
    gdbs=$(sed -n 's/^#[0-9]*  *\(0x[0-9a-f]* in \)\{0,1\}\([a-z_0-9]*\) (.*) at tests\/guest\/bt.c:\([0-9]*\)$/\2:\3/p' <<<"$G" | tr '\n' ' ')
    is "$gdbs" "$ours" "$k: gdb's bt agrees on every frame"
    pcs_ours=$(sed -n 's/^    #[1-3] \(0x[0-9a-f]*\) .*/\1/p' <<<"$R" | tr '\n' ' ')
    pcs_gdb=$(sed -n 's/^#[1-3]  0x0*\([0-9a-f]*\) in .*/0x\1/p' <<<"$G" | tr '\n' ' ')
    is "$pcs_gdb" "$pcs_ours" "$k: and on every return address"
    run_slate --timeout "$(scaled 1)" --append handler "$K"
    has "$ERR" '^      #1 0x[0-9a-f]+ wait_for_tick\+0x[0-9a-f]+ \(tests/guest/bt.c:[0-9]+\) \(interrupted here\)$' \
        "$k: a hang inside an interrupt handler: the backtrace goes through the interrupt frame"
    has "$ERR" '^      #2 0x[0-9a-f]+ kmain\+0x[0-9a-f]+ ' "$k: into the interrupted code's callers"
done
