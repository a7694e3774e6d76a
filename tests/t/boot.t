#!/usr/bin/env bash
# Boot in each entry mode, and the info block as the guest reads it.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 24

run_slate "$GUEST/real_hello.bin"
is "$RC" 7 "real mode: flat image at 0 exits with its own code through the hypercall port"
has "$OUT" '^real mode: hello from 0000:0000$' "real mode: output through port 0xE9"

run_slate "$GUEST/prot_info.elf"
is "$RC" 3 "protected mode ELF32: exits with 3 through the power device"
has "$OUT" '^protected mode: hello through serial0$' "protected mode: finds serial0 in the info block and prints"

run_slate --entry long --append "code=7" "$GUEST/power.elf"
is "$RC" 7 "--entry long given explicitly for an ELF64 kernel boots it as the default does"

printf 'INITRD!!0123456789' > "$TMP/initrd.img"
run_slate -m 256M --smp 2 --append "console=ttyS0 quiet" --load "$TMP/initrd.img@0x400000" "$GUEST/info.elf"
is "$RC" 0 "long mode ELF64: kmain returns, the exit stub exits with 0"
has "$OUT" '^info ok$' "long mode: entry state checks pass (RDI, RSP, paging, SSE, read-only info)"
has "$OUT" '^ram_total 0x10000000$' "info block: total RAM is -m"
has "$OUT" '^ram 0x0 0x10000000 usable$' "info block: one RAM region below 3 GiB"
has "$OUT" '^cpu_count 2$' "info block: CPU count is --smp"
has "$OUT" '^cpu 1 apic 1$' "info block: CPU table lists each CPU with its APIC ID"
has "$OUT" '^cmdline \[console=ttyS0 quiet\]$' "info block: the command line is --append"
has "$OUT" '^image info.elf 0x100000 0x[0-9a-f]+ kernel$' "info block: the kernel is image 0 at its physical address"
has "$OUT" '^image initrd.img 0x400000 0x12 starts INITRD!!$' "info block: --load image listed with address, size and its bytes in RAM"
has "$OUT" '^device serial0 type 3 ports 0x1000\+32 irqs 1$' "info block: serial device entry"
has "$OUT" '^device power0 type 8 ports 0x1100\+16 irqs 0$' "info block: power device entry"
has "$ERR" 'read-only info block at 0xc0000008' "a guest write to the info block is reported and ignored"

run_slate "$GUEST/info.elf"
has "$OUT" '^cmdline \[\]$' "info block: an empty command line without --append"
has "$OUT" '^ram_total 0x8000000$' "default RAM is 128 MiB"

run_slate -m 5G "$GUEST/info.elf"
has "$OUT" '^ram 0x0 0xc0000000 usable$' "5 GiB: low RAM stops at 3 GiB"
has "$OUT" '^ram 0x100000000 0x80000000 usable$' "5 GiB: the rest starts at 4 GiB"

for code in 0 1 123; do
    run_slate --append "code=$code" "$GUEST/power.elf"
    codes="$codes $RC"
done
is "$codes" " 0 1 123" "power device: exit codes 0, 1 and 123 pass through unchanged"

run_slate --append "code=200" "$GUEST/power.elf"
is "$RC" 123 "power device: an exit code above 123 becomes 123"
has "$ERR" 'exit code 200 is outside 0..123' "power device: the clamped code is reported"
