#!/usr/bin/env bash
# Bad kernels, images and options: one clear line naming the problem, status 125, nothing written.
. "$(dirname "$0")/../lib.sh"
plan 39

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
expect_error "shared object as kernel" "dyn.elf: ELF type 3 is not an executable" "$TMP/dyn.elf"
expect_error "segment outside RAM" "info.elf: segment [0-9]+ \[0x100000, .*does not fit in RAM \(1 MiB" -m 1M "$good"
head -c 2097152 /dev/zero >"$TMP/big.bin"
expect_error "flat image larger than RAM" "big.bin: flat image .* does not fit in RAM" -m 1M "$TMP/big.bin"
printf 'data' >"$TMP/blob"
expect_error "--load into the hole" "blob: image \[0xc0000000, 0xc0000004\) lies in the device hole" -m 4G --load "$TMP/blob@0xc0000000" "$good"
expect_error "--load over the kernel" "blob: \[0x100000, 0x100004\) overlaps info.elf" --load "$TMP/blob@0x100000" "$good"
expect_error "--load of a missing file" "nope.img: No such file or directory" --load "$TMP/nope.img@0x400000" "$good"
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
