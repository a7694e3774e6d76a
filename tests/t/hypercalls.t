#!/usr/bin/env bash
# Every hypercall through the port and the MMIO page; console writes translated page by page.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 11

run_slate --append "from the info block" "$GUEST/hypercalls.elf"
has "$OUT" '^registers kept$' "a hypercall preserves every register but RAX, the arguments included"
is "$RC" 42 "exit hypercall through the MMIO page passes code 42"
lacks "$OUT" 'ASSERT FAILED' "nop, unknown function, CPU index and debugcon results are as documented"
has "$OUT" '^port console write$' "console write through the port"
has "$OUT" '^mmio console write$' "console write through the MMIO page"
has "$OUT" '^debugcon write$' "bytes written to port 0xE9 reach the console"
has "$OUT" '^\[split pages\]$' "console write from a virtual address spanning two remapped pages"
has "$OUT" '^hypercalls ok$' "bad addresses and lengths return errors and print nothing"
has "$OUT" '^from the info block$' "console write straight from the info block (the command line): it is readable memory"
is "$(count "$OUT" '.')" 7 "nothing else was printed (failed writes are all-or-nothing)"
has "$ERR" 'unknown hypercall 12345' "an unknown hypercall is reported"
