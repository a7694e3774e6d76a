#!/usr/bin/env bash
# A triple fault ends in a crash report and status 126.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 6

run_slate "$GUEST/triple_fault.elf"
is "$RC" 126 "triple fault: exit status 126"
has "$OUT" '^about to triple fault$' "the guest ran up to the fault"
has "$ERR" '^slate: guest crashed on cpu 0' "crash report names the CPU"
has "$ERR" 'rip=0000000000100' "crash report shows RIP inside the kernel"
has "$ERR" 'idt base=0000000000000000 limit=0000' "crash report shows the empty IDT that caused it"
has "$ERR" 'code at 0x[0-9a-f]+: cc ' "crash report shows the bytes at RIP (int3)"
