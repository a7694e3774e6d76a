#!/usr/bin/env bash
# The monitor: a script sends commands over a Unix socket and checks the replies.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 31
SOCK=$TMP/monitor.sock

timeout -s KILL "$(scaled 60)" "$SLATE" --smp 2 --monitor "unix:$SOCK" --append smp "$GUEST/debugme.elf" \
    >"$TMP/out" 2>"$TMP/err" </dev/null &
pid=$!
# Wait until both CPUs have reached their spin loops, so the checks below see a steady machine.
for _ in $(seq 50); do
    timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "info cpus" | grep -q 'cpu 1: running.*ap_spin' && break
    sleep 0.1
done
R=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "info cpus" "stop" "info registers 1" \
    "x/4i 0x100300" "x/4x 0xc0000000" "cpu 1" "step 2" "info mem" "info devices" \
    "x/2g 0x7000000000" "x/9z 0" "cpu 0" "x/1i \$rip" "x/2gx \$rsp+8" "xp/1gx \$cr3" "x/1i crash_here" \
    "x/1i crash_here+7" "x/1i crash_hree" "x/1gx \$rsq" "x/1gx \$rsp*2" "info tlb \$rip" \
    "cpu 7" "cont" "screendump s.png" "bogus" "quit")
wait "$pid"
RC=$?
has "$R" '^\* cpu 0: running, long mode, rip=0x[0-9a-f]+ spin\+0x[0-9a-f]+ \(tests/guest/debugme.c:[0-9]+\)$' "info cpus: CPU 0 runs in spin(), named with its source line"
has "$R" '^  cpu 1: running, long mode, rip=0x[0-9a-f]+ ap_spin\+' "info cpus: CPU 1 runs in ap_spin()"
has "$R" '^stopped$' "stop pauses every CPU"
has "$R" '^  rip=00000000001[0-9a-f]+ rflags=' "info registers 1 shows CPU 1's registers"
has "$R" '^  cr0=0000000080050033 ' "... including the control registers"
has "$R" '^  0000000000100310 <crash_here>:$' "x/4i labels function starts"
has "$R" '^     0000000000100310  48 c7 07 2a 00 00 00 +mov qword ptr \[rdi\], 0x2a$' "x/4i disassembles in the CPU's mode"
has "$R" '^00000000c0000000: 54414c53 48434d45 00000001 [0-9a-f]{8}$' "x/4x reads the info block: SLAT EMCH, version 1"
has "$R" '^     00000000001002[0-9a-f]+  .* (add|mov|jmp) ' "step 2 on CPU 1 shows the next instruction"
has "$R" '^  0000000000000000-0000000100000000 -> 0000000000000000 rwx$' "info mem: the boot page tables map the first 4 GiB, merged into one run"
has "$R" '^timer0 +type 4 v1  ports 0x1200-0x12ff' "info devices lists the timer"
has "$R" '^error: 0x7000000000 is not mapped to memory$' "x on an unmapped address is an error"
has "$R" '^error: usage: x/NF ADDR' "a bad format is an error"
has "$R" '^error: no CPU 7 \(0..1\)$' "a bad CPU is an error"
# Addresses as expressions: registers, function names, sums; errors say what was not understood.
# spin()'s loop starts at the function, so a label line may come first: skip it.
has "$(awk '/^### x\/1i [$]rip$/ { getline; if ($0 ~ /^  [0-9a-f]+ <.*>:$/) getline; print }' <<<"$R")" '^     00000000001[0-9a-f]{5}  [0-9a-f ]+ +[a-z]' \
    "x/1i \$rip disassembles at the selected CPU's RIP"
has "$R" '^0000000007ff[0-9a-f]{4}: [0-9a-f]{16} [0-9a-f]{16}$' "x/2gx \$rsp+8 reads the stack (gdb's letters)"
has "$R" '^00000000c0101000: 00000000c010202[0-9a-f]$' "xp/1gx \$cr3 reads the PML4's first entry"
has "$R" '^     0000000000100310  48 c7 07 2a 00 00 00 +mov qword ptr \[rdi\], 0x2a$' "x/1i crash_here: a function name"
has "$R" '^     0000000000100317  ' "x/1i crash_here+7: a function name plus an offset"
has "$R" "^error: crash_hree: 'crash_hree' is not a number, and not a function in the kernel's symbols$" \
    "a misspelt function is named"
has "$R" "^error: \\\$rsq: '\\\$rsq' is not a register" "and a misspelt register"
has "$R" "^error: \\\$rsp\\*2: expected \\+ or - at '\\*2'$" "and what the expression could not take"
has "$R" '^  page walk for address 0x1[0-9a-f]+: ' "info tlb takes an expression too"
has "$R" '^running$' "cont resumes"
has "$R" '^error: this machine has no display device$' "screendump without a display says so"
has "$R" "^error: unknown command 'bogus'" "an unknown command is an error"
is "$RC" 0 "quit stops slate with status 0"

run_slate --monitor stdio "$GUEST/debugme.elf"
has "$RC $ERR" '^125 slate: --monitor stdio needs the serial console elsewhere' "--monitor stdio with the serial console on stdio is refused"

# Page tables that point back at themselves: "info mem" answers with what it walked and says
# where it stopped, instead of visiting 511^3 tables.
: >"$TMP/out" # emptied first: the wait below must not see the last run's lines
timeout -s KILL "$(scaled 60)" "$SLATE" --monitor "unix:$SOCK" "$GUEST/selfmap.elf" >"$TMP/out" 2>"$TMP/err" </dev/null &
pid=$!
for _ in $(seq "$(scaled 100)"); do grep -q '^tables ready' "$TMP/out" && break; sleep 0.05; done
R=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "stop" "info mem" "quit")
wait "$pid"
RC=$?
has "$R" '^  0000000000000000-0000000100000000 -> 0000000000000000 rwx$' "info mem on self-referencing tables: the real mapping is listed"
has "$R" '^  \.\.\. the walk stopped after 8192 page tables ' "... and the walk stops after 8192 tables, saying so"
is "$RC" 0 "... and quit stops slate with status 0"
