#!/usr/bin/env bash
# --trace and --stats: what a user sees of the guest's exits.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 10

run_slate --stats --append "code=3" "$GUEST/power.elf"
is "$RC/$OUT" "3/boot" "--stats leaves the guest's output and exit code alone"
has "$ERR" '^slate: exit statistics: 2 exits to slate on 1 CPUs' "--stats counts the exits"
has "$ERR" '^  power0 port 0x1100 +1 ' "--stats attributes one exit to the power device"
has "$ERR" '^  hypercall port 0xffff +1 ' "--stats attributes one exit to the hypercall port"

run_slate --trace hypercall --append "code=3" "$GUEST/power.elf"
has "$ERR" '^slate: trace: cpu 0 rip=0x[0-9a-f]+: hypercall 2\(0x[0-9a-f]+, 0x5, 0, 0\) = 5$' "--trace hypercall logs the console write with its arguments and result"
lacks "$ERR" 'port 0x1100' "only the events asked for are traced"

run_slate --trace io,irq --trace-file "$TMP/trace.txt" --smp 2 --append start "$GUEST/smp.elf"
is "$RC" 0 "tracing to a file, the guest runs as usual"
has "$(cat "$TMP/trace.txt")" '^slate: trace: cpu 0 rip=0x[0-9a-f]+: out port 0xffff, 4 bytes: 0x3$' "--trace io logs the start-CPU hypercall's port write"
lacks "$ERR" 'trace:' "with --trace-file nothing is traced to stderr"

run_slate --trace everything "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --trace everything: unknown event 'everything'" "an unknown trace event is refused"
