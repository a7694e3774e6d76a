#!/usr/bin/env bash
# --dump-core and the monitor's dump-core: ELF core files that the stock gdb opens, with every
# CPU's registers and a backtrace through the kernel's symbols.
. "$(dirname "$0")/../lib.sh"
plan 9
run_slate --dump-core "$TMP/no/such/dir/x.core" "$GUEST/debugme.elf"
has "$RC $ERR" '^125 slate: --dump-core .*no/such/dir/x.core' "an unwritable --dump-core path is refused first (125)"
skip_without_kvm 9
command -v gdb >/dev/null || { skip_here "gdb is not installed"; }

run_slate --dump-core "$TMP/crash.core" --append crash "$GUEST/debugme.elf"
is "$RC" 126 "a crash with --dump-core: status 126"
G=$(gdb -batch -nx -ex bt -ex 'info threads' "$GUEST/debugme.elf" "$TMP/crash.core" 2>&1)
has "$G" '^#0  crash_here \(where=.*\) at tests/guest/debugme.c:[0-9]+$' "gdb opens the core: the crashing function"
has "$G" '^#1  0x[0-9a-f]+ in crash_caller \(\) at tests/guest/debugme.c:[0-9]+$' "its caller"
has "$G" '^#2  0x[0-9a-f]+ in kmain ' "and kmain: a backtrace through the kernel's symbols"
size=$(du -k "$TMP/crash.core" | cut -f1)
if [ "$size" -lt 4096 ]; then pass "the core is sparse: ${size} KiB on disk for 128 MiB of RAM"
else fail "the core is sparse" "${size} KiB on disk"; fi

# The monitor, on a running 2-CPU machine: one thread per CPU.
SOCK=$TMP/mon.sock
mkdir -p "$TMP/dumps"
timeout -s KILL "$(scaled 60)" "$SLATE" --smp 2 --monitor "unix:$SOCK" --dump-dir "$TMP/dumps" --append smp \
    "$GUEST/debugme.elf" >"$TMP/out" 2>"$TMP/err" </dev/null &
PID=$!
for _ in $(seq 50); do
    timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "info cpus" | grep -q 'cpu 1: running.*ap_spin' && break
    sleep 0.1
done
M=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "dump-core now.core" "dump-core ../x.core" "quit")
wait "$PID"
has "$M" "^saved $TMP/dumps/now.core \\(gdb KERNEL now.core\\)$" "dump-core saves a core in --dump-dir"
has "$M" '^error: usage: dump-core NAME.core' "and nowhere else"
G=$(gdb -batch -nx -ex 'info threads' "$GUEST/debugme.elf" "$TMP/dumps/now.core" 2>&1)
is "$(grep -cE '^\*? +[12] +LWP [12] +(0x[0-9a-f]+ in )?(spin|ap_spin) ' <<<"$G")" 2 "gdb sees both CPUs as threads, in spin() and ap_spin()"
