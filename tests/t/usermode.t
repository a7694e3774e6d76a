#!/usr/bin/env bash
# Hypercalls from user mode (tests/guest/usermode.c): the calls that control the machine are
# refused (SLATE_EPERM) until the kernel allows them with SLATE_HC_USER_HYPERCALLS, and every
# address a caller passes is reached with its own privilege (U/S, R/W, SMAP).
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 9
run_slate --smp 2 "$GUEST/usermode.elf"
is "$RC" 42 "EXIT from user mode, once the kernel allowed it, ends the machine with its code (42)"
has "$OUT" '^user mode: (hypercalls through the port \(IOPL 3\)|port I/O refused by this CPU; hypercalls through the MMIO page)$' \
    "user mode reaches slate (through the port, or the MMIO page where the CPU refuses it port I/O)"
is "$(grep -c '^user mode says hello$' <<<"$OUT")/$(grep -E '^console write' <<<"$OUT")" "1/console write of its own page: 21
console write of a supervisor page: -3" "a console write of user memory prints; of a supervisor-only page, SLATE_EFAULT"
lacks "$OUT" 'SECRET' "and the supervisor page's bytes never reach the console"
is "$(grep -E '^(exit|start-cpu|screenshot|debug-break|profile|user-hypercalls|exit through the MMIO page|nop):' <<<"$OUT")" \
"exit: -6
start-cpu: -6
screenshot: -6
debug-break: -6
profile: -6
user-hypercalls: -6
exit through the MMIO page: -6
nop: 0" "by default user mode gets SLATE_EPERM for every call that controls the machine (port and MMIO page); NOP works"
has "$OUT" '^the kernel allows exit and start-cpu; the mask was: 5$' "the kernel's SLATE_HC_USER_HYPERCALLS returns the default mask (NOP, CONSOLE_WRITE)"
is "$(grep -E '^(start-cpu with|start-cpu on|cpu 1 ran)' <<<"$OUT")" "start-cpu with its frame on a read-only page: -3
start-cpu with its frame on a supervisor page: -3
start-cpu on its own stack: 0
cpu 1 ran" "START_CPU from user mode writes its frame only where user mode may write"
has "$OUT" '^(smap: a user page without AC: -3|smap: not offered by this CPU)$' \
    "with CR4.SMAP on, the kernel's console write of a user page is SLATE_EFAULT without RFLAGS.AC"
has "$ERR" 'hypercall 1 from CPL 3 refused \(SLATE_EPERM\)' "refusals are logged"
