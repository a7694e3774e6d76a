#!/usr/bin/env bash
# Bad kernels, images and options: one clear line naming the problem, status 125, nothing written.
. "$(dirname "$0")/../lib.sh"
plan 86

# expect_error DESCRIPTION PATTERN ARGS...: slate must refuse with 125 and a matching message.
expect_error() {
    local desc=$1 pattern=$2
    shift 2
    run_slate "$@"
    is "$RC" 125 "$desc: status 125"
    has "$ERR" "^slate: .*$pattern" "$desc: message says so"
}

# patch FILE OFFSET BYTES...: overwrites bytes (hex) in place.
patch() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f; seek($f, $ARGV[1], 0);
             print $f pack("C*", map { hex } @ARGV[2..$#ARGV]);' "$@"
}

good="$GUEST/info.elf"
expect_error "missing kernel" "$TMP/missing.elf: No such file or directory" "$TMP/missing.elf"
expect_error "directory as kernel" "$TMP: is a directory" "$TMP"
: >"$TMP/empty"
expect_error "empty kernel" "empty: the kernel file is empty" "$TMP/empty"
head -c 100 "$good" >"$TMP/truncated.elf"
expect_error "truncated ELF" "truncated.elf: .*(truncated|program header)" "$TMP/truncated.elf"
cp "$good" "$TMP/arm.elf"; patch "$TMP/arm.elf" 18 b7 00
expect_error "ELF for another machine" "arm.elf: ELF64 file for machine 183, expected x86-64" "$TMP/arm.elf"
cp "$good" "$TMP/dyn.elf"; patch "$TMP/dyn.elf" 16 03 00
expect_error "shared object as kernel" "dyn.elf: a position-independent ELF \(ET_DYN\) is loaded only as a Limine kernel; link this one with a fixed address" "$TMP/dyn.elf"
# A PIE Limine kernel with a relocation slate does not apply (R_X86_64_64, type 1): refused by name.
cp "$GUEST/boot-limine-pie.elf" "$TMP/pie64.elf"
rela=$(readelf -W -r "$TMP/pie64.elf" | sed -n "s/^Relocation section '.rela.dyn' at offset 0x\([0-9a-f]*\).*/\1/p")
printf '\x01' | dd of="$TMP/pie64.elf" bs=1 seek=$((0x$rela + 8)) conv=notrunc status=none
expect_error "a PIE Limine kernel with an R_X86_64_64 relocation" \
    "pie64.elf: relocation 0 at 0x[0-9a-f]+ is R_X86_64_64 \(type 1\): slate applies R_X86_64_RELATIVE only" "$TMP/pie64.elf"
expect_error "segment outside RAM" "info.elf: segment [0-9]+ \[0x100000, .*does not fit in RAM \(1 MiB" -m 1M "$good"
head -c 2097152 /dev/zero >"$TMP/big.bin"
expect_error "flat image larger than RAM" "big.bin: flat image .* does not fit in RAM" -m 1M "$TMP/big.bin"
printf 'data' >"$TMP/blob"
expect_error "--load into the hole" "blob: image \[0xc0000000, 0xc0000004\) lies in the device hole" -m 4G --load "$TMP/blob@0xc0000000" "$good"
expect_error "--load over the kernel" "blob: \[0x100000, 0x100004\) overlaps info.elf" --load "$TMP/blob@0x100000" "$good"
expect_error "--load of a missing file" "nope.img: No such file or directory" --load "$TMP/nope.img@0x400000" "$good"
expect_error "--load with a string and no file" "--load ,string=a: expected FILE\[@ADDR\]\[,string=S\]" --load ",string=a" "$good"
head -c 4096 /dev/zero >"$TMP/page"
expect_error "--load over the boot stack" "page: .*overlaps the boot stack" -m 2M --load "$TMP/page@0x1ff000" "$good"

expect_error "bad RAM size" "-m lots: not a size" -m lots "$good"
expect_error "too little RAM" "-m 512K: RAM must be between 1M and 256G" -m 512K "$good"
expect_error "bad --smp" "--smp 0: expected a number of CPUs" --smp 0 "$good"
expect_error "bad --entry" "--entry bios: expected real, protected or long" --entry bios "$good"
expect_error "unknown option" "--frobnicate: unknown option" --frobnicate "$good"
expect_error "no kernel" "no kernel given" -m 64M
expect_error "bad --timeout" "--timeout -1: expected a number of seconds" --timeout -1 "$good"

run_slate --serial "file:$TMP/serial.log" "$TMP/missing.elf"
if [ -e "$TMP/serial.log" ]; then fail "a refused kernel leaves no --serial file behind"; else pass "a refused kernel leaves no --serial file behind"; fi

# Everything about the user's files and options is checked before KVM is opened, so these
# messages are the same on a machine without /dev/kvm (tests/t/nokvm.t checks that).
expect_error "--disk of a missing file" "nodisk.img: No such file or directory" --disk "$TMP/nodisk.img" "$good"
truncate -s 1M "$TMP/locked.img"
exec {lock_fd}>>"$TMP/locked.img"
flock -x "$lock_fd"
expect_error "--disk in use by another process" "locked.img: in use by another process" --disk "$TMP/locked.img" "$good"
exec {lock_fd}>&-
expect_error "--serial file: in a missing directory" "--serial file: $TMP/nodir/serial.log: the directory $TMP/nodir does not exist" --serial "file:$TMP/nodir/serial.log" "$good"
expect_error "--trace-file that is a directory" "--trace-file $TMP: is a directory" --trace io --trace-file "$TMP" "$good"
expect_error "bad --gdb address" "--gdb 127.0.0.1:99999: '99999' is not a port number" --gdb 127.0.0.1:99999 "$good"
expect_error "bad --monitor address" "--monitor tcp:nowhere:1: 'nowhere' is not an IPv4 address" --monitor tcp:nowhere:1 "$good"
expect_error "missing --vnc-password file" "--vnc-password $TMP/nopass: No such file or directory" --display vnc --vnc-password "$TMP/nopass" "$good"
expect_error "--screenshot in a missing directory" "--screenshot $TMP/nodir/shot.png: the directory" --screenshot "$TMP/nodir/shot.png" "$good"
run_slate -m 99T "$good"
has "$ERR" "^slate: -m 99T: RAM must be between 1M and 256G" "-m 99T names the largest size"
run_slate -m 12X "$good"
has "$ERR" "^slate: -m 12X: not a size \(a number with K, M, G or T, binary units" "-m 12X names the suffixes"

# slate --check: what would boot, without KVM, and nothing written.
printf 'INITRD' >"$TMP/initrd.img"
truncate -s 1M "$TMP/disk.img"
run_slate --check --smp 2 -m 5G --load "$TMP/initrd.img@0x400000" --disk "$TMP/disk.img" \
    --serial "file:$TMP/check-serial.log" "$good"
is "$RC" 0 "--check: a good configuration exits 0"
has "$OUT" "^kernel $good: long mode entry at 0x100000$" "--check: names the entry mode and point"
has "$OUT" "^image initrd.img \[0x400000, 0x400006\)$" "--check: lists each --load image's range"
has "$OUT" "^ram \[0x100000000, 0x180000000\) 2048 MiB$" "--check: the RAM map (above 4 GiB)"
has "$OUT" "^device disk0 ports 0x1300\+64 irqs 1 window 0xd0000000\+" "--check: the devices with ports and windows"
has "$OUT" "^kvm (/dev/kvm is usable|not usable here: cannot open /dev/kvm)" "--check: says whether KVM is usable"
has "$OUT" "^check: ok$" "--check: ends with check: ok"
if [ -e "$TMP/check-serial.log" ]; then fail "--check creates no --serial file"; else pass "--check creates no --serial file"; fi
expect_error "--check of a bad kernel" "arm.elf: ELF64 file for machine 183" --check "$TMP/arm.elf"

# Output files are never written through a link (a link planted at the path is refused).
echo precious >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/link"
expect_error "--serial file: that is a link" "--serial file: $TMP/link: is a symbolic link" --serial "file:$TMP/link" "$good"
expect_error "--trace-file that is a link" "--trace-file $TMP/link: is a symbolic link" --trace io --trace-file "$TMP/link" "$good"
expect_error "--screenshot that is a link" "--screenshot $TMP/link: is a symbolic link" --screenshot "$TMP/link" "$good"
is "$(cat "$TMP/victim")" precious "the file behind the link is untouched"
# Nor into a FIFO, a socket or a device: opening a FIFO would wait for a reader, with the stop
# signals already blocked (only SIGKILL ended slate).
mkfifo "$TMP/fifo"
expect_error "--serial file: that is a FIFO" "--serial file: $TMP/fifo: is a FIFO" --serial "file:$TMP/fifo" "$good"
expect_error "--trace-file that is a FIFO" "--trace-file $TMP/fifo: is a FIFO" --trace io --trace-file "$TMP/fifo" "$good"
expect_error "--profile that is a FIFO" "--profile $TMP/fifo: is a FIFO" --profile "$TMP/fifo" "$good"
expect_error "--report that is a device" "--report /dev/null: is a device" --report /dev/null "$good"
