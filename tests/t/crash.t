#!/usr/bin/env bash
# A triple fault ends in a crash report and status 126.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 33
# KVM on AMD (kvm_amd) resets a CPU that triple-faults before slate sees it; slate then replays
# the CPU from where it last resumed to the faulting instruction (src/debug/replay.h), so the same
# report comes out on every KVM. SLATE_TEST_CRASH_REPLAY=1 makes slate replay on any KVM: the
# second half of this file checks that the replayed report says what the direct one says.
on_amd_kvm && echo "# NOTE: KVM on AMD here: every report below comes from a replay" >&2

run_slate "$GUEST/triple_fault.elf"
is "$RC" 126 "triple fault: exit status 126"
has "$OUT" '^about to triple fault$' "the guest ran up to the fault"
has "$ERR" '^slate: guest crashed on cpu 0' "crash report names the CPU"
has "$ERR" 'rip=0000000000100' "crash report shows RIP inside the kernel"
has "$ERR" 'idt base=0000000000000000 limit=0000' "crash report shows the empty IDT that caused it"
has "$ERR" '^  => [0-9a-f]+  cc +int3' "crash report disassembles the instruction at RIP (int3)"
has "$ERR" "^  why: #BP: IDT\[3\] is past the IDT's limit \(0\) -> #DF: IDT\[8\] is past the IDT's limit \(0\) -> triple fault$" \
    "the explainer: the int3's delivery, then #DF's, fail at the empty IDT"

# A crash in a known function of a kernel built with -g: the report names it, its source line,
# the faulting instruction, where the page walk for CR2 ends, and the caller on the stack.
run_slate --append crash "$GUEST/debugme.elf"
is "$RC" 126 "a page fault with no IDT ends in a triple fault (126)"
line=$(grep -n 'unmapped: #PF' tests/guest/debugme.c | cut -d: -f1)
has "$ERR" "^  at crash_here\+0x[0-9a-f]+ \(tests/guest/debugme.c:$line\)$" "the report names the function and source line of RIP"
has "$ERR" '^  => [0-9a-f]+  .* mov qword ptr \[rdi\], 0x2a$' "it disassembles the faulting instruction"
has "$ERR" '^  page walk for access 0x7000000000: PML4E\[0\]=0x[0-9a-f]+ PDPTE\[448\]=0 NOT PRESENT$' "the page walk for the faulting access says which level is missing"
has "$ERR" "^    #2 0x[0-9a-f]+ kmain\\+0x[0-9a-f]+ \\(tests/guest/debugme.c:$(grep -n '    crash_caller' tests/guest/debugme.c | head -1 | cut -d: -f1)\\)$" \
    "the report's backtrace names each caller at the line of its call"
has "$ERR" "^  why: #PF: IDT\\[14\\] is past the IDT's limit \\(0\\) -> #DF: IDT\\[8\\] is past the IDT's limit \\(0\\) -> triple fault$" \
    "the explainer names the page fault"
has "$ERR" '^       \(#PF: mov writes 0x7000000000, which is not mapped\)$' "and names the access that raised the #PF (decoded from the instruction)"

# The triple-fault explainer on broken exception setups: the first step of the delivery that
# fails, for the first exception and then for #DF.
why() { run_slate --append "$1" "$GUEST/faults.elf"; grep '^  why: ' <<<"$ERR"; }
is "$(why noidt)" "  why: #UD: IDT[6] is past the IDT's limit (0) -> #DF: IDT[8] is past the IDT's limit (0) -> triple fault" \
    "an empty IDT (lidt with limit 0), then ud2"
is "$(why badstack)" "  why: #UD: its stack (RSP=0x7000000000) is not mapped -> #DF: IDT[8] is not present -> triple fault" \
    "an unmapped stack under a good #UD gate: the double fault, then no #DF gate"
# With an empty IDT nothing is delivered, so which exception came first is read from the
# instruction: a store to a non-canonical address is a #GP, a division by zero a #DE.
run_slate --append noidt-gp "$GUEST/faults.elf"
is "$(grep -A1 '^  why: ' <<<"$ERR")" "  why: #GP: IDT[13] is past the IDT's limit (0) -> #DF: IDT[8] is past the IDT's limit (0) -> triple fault
       (#GP: mov writes 0x8000000000000000, which is not canonical)" \
    "an empty IDT and a store to a non-canonical address: the first exception (#GP) is named from the instruction"
run_slate --append noidt-de "$GUEST/faults.elf"
is "$(grep -A1 '^  why: ' <<<"$ERR")" "  why: #DE: IDT[0] is past the IDT's limit (0) -> #DF: IDT[8] is past the IDT's limit (0) -> triple fault
       (#DE: div divides by rcx, which is 0)" "and a division by zero: #DE"
is "$(why overflow)" "  why: #UD: a stack overflow: its stack (RSP=0x401000) ran off the bottom of its pages: the push at 0x400ff8 is not mapped -> #DF: IDT[8] is not present -> triple fault" \
    "a stack run off its bottom: the push that fails is named (not RSP, which is mapped), and it is called a stack overflow"
is "$(why notss)" "  why: #UD: its stack (RSP=0x7000000000) is not mapped -> #DF: its IST entry needs the TSS, and none is loaded (LTR) -> triple fault" \
    "a #DF gate asking for an IST stack with no TSS loaded"
is "$(why ist0)" "  why: #UD: its stack (RSP=0x7000000000) is not mapped -> #DF: its stack (IST1) is 0 -> triple fault" \
    "a #DF gate whose IST entry in the TSS is 0"

# The replay, forced: the report is the direct one's, with a note saying how it was found.
direct=$(run_slate "$GUEST/triple_fault.elf"; grep -E '^  (why|=>|rip=|gdt )' <<<"$ERR")
SLATE_TEST_CRASH_REPLAY=1 run_slate "$GUEST/triple_fault.elf"
has "$ERR" '^  note: KVM reset this CPU at the fault .*; slate replayed it from its last exit,$' "replay: the report says the state was replayed from the last exit"
has "$ERR" '^        [0-9]+ instructions by single steps, to the instruction that faulted$' "and how many instructions it stepped"
is "$(grep -E '^  (why|=>|rip=|gdt )' <<<"$ERR")" "$direct" "replay: the same RIP, instruction, tables and explanation as without it (int3)"
direct=$(run_slate --append crash "$GUEST/debugme.elf"; grep -E '^  (at|why|page walk for access)|#PF:' <<<"$ERR")
SLATE_TEST_CRASH_REPLAY=1 run_slate --append crash "$GUEST/debugme.elf"
has "$ERR" 'slate replayed it from its start,$' "replay from the entry state, for a kernel that faults before its first exit"
is "$(grep -E '^  (at|why|page walk for access)|#PF:' <<<"$ERR")" "$direct" "replay: the same function, page fault and walk as without it"
SLATE_TEST_CRASH_REPLAY=1 run_slate --report "$TMP/replayed.json" --append badstack "$GUEST/faults.elf"
has "$ERR" "^  why: #UD: its stack \(RSP=0x7000000000\) is not mapped -> #DF: IDT\[8\] is not present -> triple fault$" \
    "replay: the explainer on the replayed tables (an unmapped stack)"
has "$(cat "$TMP/replayed.json")" '"recovered": "replayed"' "--report says the CPU's state was replayed"
SLATE_TEST_CRASH_REPLAY=1 run_slate --append longrun "$GUEST/faults.elf"
has "$ERR" "a replay from its last exit did\$" "a fault too far from the last exit: the replay gives up and says so"
has "$ERR" '^       \(with the IDT, GDT and stack of the last exit; which exception came first is not known' \
    "and the explainer says its tables are the last exit's"

# An instruction KVM could not emulate (fldcw on a PVM host), run before any IDT: named as such,
# not as a triple fault. Where KVM runs it, the kernel just ends.
run_slate "$GUEST/noemulate.elf"
if [ "$RC" = 0 ] && grep -q "the host's KVM ran fldcw" <<<"$OUT"; then
    skip_tests 3 "this host's KVM runs fldcw for the guest: no emulation failure to name"
else
    is "$RC" 126 "an instruction KVM cannot emulate: status 126"
    has "$ERR" '^  why: KVM could not emulate the instruction at RIP: fldcw word ptr \[rip \+ 0x[0-9a-f]+\] \(d9 2d( [0-9a-f]{2}){4}\)$' \
        "the report names the instruction KVM could not emulate, with its bytes"
    lacks "$ERR" '(-> triple fault|#DF)' "and does not explain it as a double fault becoming a triple fault"
fi
