#!/usr/bin/env bash
# Kernels for other boot protocols, written as the protocols' own documentation shows
# (tests/guest/boot): Multiboot2 as ELF32 (VGA text) and ELF64 (a framebuffer it asks for),
# Multiboot 1, and Limine with every CPU. Each prints through COM1, draws on the screen and
# exits through isa-debug-exit; checked by the serial output, the exit status and the screenshot.
. "$(dirname "$0")/../lib.sh"
plan 69
MB2=$GUEST/boot-mb2.elf MB2_64=$GUEST/boot-mb2-64.elf MB1=$GUEST/boot-mb1.elf LIMINE=$GUEST/boot-limine.elf LIMINE_PIE=$GUEST/boot-limine-pie.elf
printf 'Module one\n' >"$TMP/one.txt"
printf 'Zebra\n' >"$TMP/two.txt"

# What slate would boot (no KVM needed): detection, and what --boot forces.
run_slate --check "$MB2"
has "$OUT" '^kernel .*boot-mb2.elf: Multiboot2, protected mode entry at 0x100[0-9a-f]{3}$' "--check: a Multiboot2 header is detected"
has "$OUT" '^boot data \[0x10000, 0x11000\)$' "--check: the boot information goes to low RAM at 0x10000, where GRUB puts it"
run_slate --check "$MB2_64"
has "$OUT" 'Multiboot2, protected mode entry' "--check: an ELF64 Multiboot2 kernel starts in protected mode, as GRUB starts it"
run_slate --check "$MB1"
has "$OUT" ': Multiboot, protected mode entry' "--check: a Multiboot 1 header is detected"
run_slate --check --smp 2 "$LIMINE"
has "$OUT" '^kernel .*: Limine, long mode entry at 0xffffffff8000[0-9a-f]{4}$' "--check: Limine requests are detected; the entry is the ELF's, in the higher half"
run_slate --check --boot native "$MB1"
has "$OUT" ': protected mode entry at' "--check --boot native: the Multiboot header is ignored"
run_slate --check --boot limine "$MB1"
has "$RC $ERR" '^125 slate: .*boot-mb1.elf: a Limine kernel is an ELF64 file$' "--boot limine on an ELF32 file is refused (125)"
run_slate --check --boot multiboot2 "$GUEST/info.elf"
has "$RC $ERR" '^125 slate: .*info.elf: no Multiboot2 header \(magic 0xe85250d6, with a valid checksum\) in the first 32 KiB$' "--boot multiboot2 without a header says so (125)"
run_slate --check --entry long "$MB2"
has "$RC $ERR" '^125 slate: .*--entry does not apply to a Multiboot2 kernel' "--entry with a protocol kernel is refused"
run_slate --check --boot grub "$MB2"
has "$RC $ERR" '^125 slate: --boot grub: expected native, multiboot2, multiboot or limine$' "a bad --boot is refused"
skip_without_kvm 56

boot() { # KERNEL ARGS...: boots with isa-debug-exit at 0xf4 and a screenshot
    local k=$1
    shift
    rm -f "$TMP/shot.png"
    run_slate --exit-port 0xf4 --screenshot "$TMP/shot.png" "$@" "$k"
}
pixels() { "$BUILD/tools/vnctool" png "$TMP/shot.png" "$@" | grep -E "^(size|pixel)" | cut -d" " -f2- | tr "\n" " "; }

# Multiboot2, ELF32: the boot information as the specification lays it out.
boot "$MB2" --append "hello world" --load "$TMP/one.txt" --load "$TMP/two.txt,string=two --fast, really"
is "$RC" 33 "Multiboot2: the kernel ran to its end (isa-debug-exit 0x10: status 33)"
has "$OUT" '^info at 0x[1-9a-f][0-9a-f]{4,7}$' "Multiboot2: the information sits at 0x10000 or above, where GRUB puts it (the kernel wrote over 0x1000-0x1fff first)"
has "$OUT" '^multiboot2: magic ok, 32-bit code$' "Multiboot2: EAX holds 0x36d76289 in 32-bit protected mode"
has "$OUT" '^info: 8-byte aligned$' "Multiboot2: EBX points to 8-byte-aligned information"
has "$OUT" '^cmdline: hello world$' "Multiboot2: the command line tag is --append"
has "$OUT" '^loader: slate ' "Multiboot2: the boot loader name"
has "$OUT" "^module: $TMP/one.txt size 11 page-aligned starts M\$" "Multiboot2: the first --load is a module, page-aligned, with its bytes; its string the file as given"
has "$OUT" '^module: two --fast, really size 6 page-aligned starts Z$' "Multiboot2: and the second, with the string given by ,string= (commas kept)"
has "$OUT" '^meminfo: lower 640 KiB, upper 130048 KiB$' "Multiboot2: basic memory information (128 MiB)"
has "$OUT" '^mmap: 0x100000 \+ 0x7f00000 type 1$' "Multiboot2: the memory map has RAM from 1 MiB"
has "$OUT" '^mmap: 0xa0000 \+ 0x60000 type 2$' "Multiboot2: and the legacy hole reserved"
has "$OUT" '^framebuffer: type 2 80x25 bpp 16$' "Multiboot2: the framebuffer tag is EGA text when none was asked for"
has "$OUT" '^slate tag: info block at 0xc0000000 \(SLATEMCH\)$' "Multiboot2: slate's tag leads to the info block"
is "$(pixels 1 1 1 5)" "640 400 1 1 0000aa 1 5 ffffff " "Multiboot2: the screenshot shows its white-on-blue VGA text"

# Multiboot2, ELF64 with a framebuffer request.
boot "$MB2_64"
is "$RC" 33 "Multiboot2 ELF64: runs to its end"
has "$OUT" '^info at 0x[1-9a-f][0-9a-f]{4,7}$' "Multiboot2 ELF64: the information sits at 0x10000 or above, where GRUB puts it (the kernel wrote over 0x1000-0x1fff first)"
has "$OUT" '^multiboot2: magic ok, 32-bit code$' "Multiboot2 ELF64: entered in 32-bit protected mode at its physical entry"
has "$OUT" '^framebuffer: type 1 640x480 bpp 32$' "Multiboot2 ELF64: the framebuffer it asked for, 640x480x32 RGB"
is "$(pixels 10 10 200 200)" "640 480 10 10 ff0000 200 200 000000 " "Multiboot2 ELF64: the screenshot shows its red square"

# Multiboot 1.
before=$(date +%s)
boot "$MB1" --append "mb1 args" --load "$TMP/one.txt,string=initrd root=/"
after=$(date +%s)
is "$RC" 35 "Multiboot: runs to its end (isa-debug-exit 0x11: status 35)"
has "$OUT" '^info at 0x[1-9a-f][0-9a-f]{4,7}$' "Multiboot: the information sits at 0x10000 or above, where GRUB puts it (the kernel wrote over 0x1000-0x1fff first)"
has "$OUT" '^multiboot: magic ok, flags 0x124d$' "Multiboot: EAX holds 0x2badb002; flags: memory, cmdline, modules, mmap, name, framebuffer"
has "$OUT" '^meminfo: lower 640 KiB, upper 130048 KiB$' "Multiboot: mem_lower and mem_upper"
has "$OUT" '^cmdline: mb1 args$' "Multiboot: the command line"
has "$OUT" '^module: initrd root=/ size 11 page-aligned starts M$' "Multiboot: the module, with its ,string="
# The CMOS clock (read-only, UTC, BCD, 24-hour) and what the kernel hears of the PIC and PS/2.
cmos=$(sed -n 's/^cmos: \(.*\) bcd 24h$/\1/p' <<<"$OUT")
t=$([ -n "$cmos" ] && date -u -d "$cmos" +%s 2>/dev/null)
if [ -n "$t" ] && [ "$t" -ge "$before" ] && [ "$t" -le "$after" ]; then
    pass "Multiboot: the CMOS clock reads the host's UTC time in BCD, 24-hour ($cmos)"
else
    fail "Multiboot: the CMOS clock reads the host's UTC time" "read '$cmos', run between $before and $after"
fi
is "$(grep -c 'the kernel looks for the 8259 PIC' <<<"$ERR")" 1 "Multiboot: masking both PICs gets one line naming the 8259 PIC"
has "$ERR" '^slate: warning: cpu 0: write: 1-byte port to 0x21 \(unclaimed\); ignored: the kernel looks for the 8259 PIC, which slate does not have: device interrupts are MSIs to the local APIC' \
    "... saying what slate has instead"
has "$ERR" 'port from 0x64 \(unclaimed\); reads as all-ones: the kernel looks for the PS/2 controller, which slate does not have: use the keyboard and pointer devices' \
    "Multiboot: reading the PS/2 status port names the PS/2 controller and slate's keyboard"
lacks "$ERR" 'port (to|from) 0x7[01]' "Multiboot: the CMOS ports are claimed (no unclaimed-port warning)"
has "$OUT" '^mmap: 0x100000 \+ 0x7f00000 type 1$' "Multiboot: the memory map"
is "$(pixels 1 1 1 5)" "640 400 1 1 00aa00 1 5 ffffff " "Multiboot: the screenshot shows its white-on-green VGA text"

# Limine, on two CPUs.
before=$(date +%s)
boot "$LIMINE" --smp 2 --append "lim args" --load "$TMP/one.txt"
after=$(date +%s)
is "$RC" 37 "Limine: runs to its end (isa-debug-exit 0x12: status 37)"
has "$OUT" '^limine: entered at 0xffffffff80' "Limine: entered in 64-bit mode at its higher-half address"
has "$OUT" '^base revision 3 supported, loaded revision 3$' "Limine: the base revision tag says supported (third word 0, second the revision)"
t=$(sed -n 's/^boot time: //p' <<<"$OUT")
if [ -n "$t" ] && [ "$t" -ge "$before" ] && [ "$t" -le "$after" ]; then
    pass "Limine: the boot time response is the host's Unix time ($t, run between $before and $after)"
else
    fail "Limine: the boot time response is the host's Unix time" "got '$t', run between $before and $after"
fi
has "$OUT" '^bootloader: slate ' "Limine: bootloader info"
has "$OUT" '^hhdm: 0xffff800000000000$' "Limine: the HHDM offset"
has "$OUT" '^stack: in the HHDM, size request answered$' "Limine: the stack is in reclaimable memory; the stack-size request answered"
has "$OUT" '^kernel: phys 0x100000 virt 0xffffffff80000000$' "Limine: the executable address"
has "$OUT" "^file: /boot-limine.elf \(ELF\) string 'lim args'$" "Limine: the executable file, with the command line as its string"
has "$OUT" '^cmdline: lim args$' "Limine: the executable command line"
has "$OUT" "^module: /one.txt size 11 starts M string '$TMP/one.txt'\$" "Limine: the module, read through the HHDM; its string the file as given"
has "$OUT" '^memmap: sorted, usable and reclaimable page-aligned$' "Limine: the memory map is sorted and aligned as the protocol promises"
has "$OUT" '^memmap: 0x100000 \+ 0x[0-9a-f]+ type 6$' "Limine: the kernel is 'executable and modules'"
has "$OUT" '^memmap: 0x[0-9a-f]+ \+ 0x[0-9a-f]+ type 5$' "Limine: the responses are bootloader-reclaimable"
has "$OUT" '^memmap: 0x[0-9a-f]+ \+ 0x300000 type 7$' "Limine: the framebuffer is listed"
has "$OUT" '^paging: 4-level$' "Limine: the paging-mode response"
has "$OUT" '^rsdp: no response \(no ACPI\)$' "Limine: a request slate cannot answer gets no response"
has "$OUT" '^slate info block: through the HHDM$' "Limine: slate's info block is reachable through the HHDM"
has "$OUT" '^rodata: rodata$' "Limine: each segment is mapped at its address"
has "$OUT" '^framebuffer: 1024x768 bpp 32 red at 16$' "Limine: the framebuffer response"
has "$OUT" '^mp: 2 CPUs, BSP LAPIC ID 0$' "Limine: the MP response lists both CPUs"
has "$OUT" '^mp: 1 APs ran their goto_address$' "Limine: the other CPU jumped to its goto_address"
is "$(pixels 10 10 200 200)" "1024 768 10 10 00ff00 200 200 000000 " "Limine: the screenshot shows its green square"

# A position-independent Limine kernel (ET_DYN, linked at 0, as Limine's own test kernel is):
# slid to the top 2 GiB and its R_X86_64_RELATIVE relocations applied before the first instruction.
boot "$LIMINE_PIE"
is "$RC" 37 "Limine PIE: runs to its end"
has "$OUT" '^limine: entered at 0xffffffff80' "Limine PIE: entered at its slid address in the top 2 GiB"
has "$OUT" '^pointer: data pointers relocated$' "Limine PIE: a pointer in its data was relocated (unrelocated, it points into unmapped low memory)"
has "$OUT" '^kernel: phys 0x100000 virt 0xffffffff80000000$' "Limine PIE: the executable address response gives the slid base"
