#!/usr/bin/env bash
# The block device: data written reaches the image byte for byte, reads come back, every bad
# request is refused without touching the image, flushed data survives SIGKILL, images are locked.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 27
BLOCK=$GUEST/block.elf
IMG=$TMP/disk.img

# expected_image SECTORS: the pattern the guest writes (sector s, word w -> s << 32 | w).
expected_image() {
    perl -e 'for my $s (0 .. $ARGV[0] - 1) { print pack("Q<*", map { ($s << 32) | $_ } 0 .. 63) }' "$1"
}

# flushed_blocks_intact IMAGE OUTPUT: every block the guest reported flushed holds its pattern.
flushed_blocks_intact() {
    perl -e '
        open(my $img, "<:raw", $ARGV[0]) or die; my $bad = 0; my $n = 0;
        open(my $out, "<", $ARGV[1]) or die;
        while (<$out>) {
            next unless /^flushed (\d+)$/; my $b = $1; $n++;
            seek($img, $b * 4096, 0); read($img, my $got, 4096);
            my $want = join("", map { my $s = $b * 8 + $_; pack("Q<*", map { ($s << 32) | $_ } 0 .. 63) } 0 .. 7);
            $bad++ if $got ne $want;
        }
        print "$n $bad\n";' "$1" "$2"
}

truncate -s 512K "$IMG"
run_slate --disk "$IMG" --append write "$BLOCK"
is "$RC" 0 "a guest writes a pattern across the whole 512 KiB disk and flushes"
expected_image 1024 >"$TMP/expected"
if cmp -s "$IMG" "$TMP/expected"; then pass "the image file matches the pattern byte for byte"; else fail "the image file matches the pattern byte for byte" "$(cmp "$IMG" "$TMP/expected" 2>&1)"; fi

run_slate --disk "$IMG" --append read "$BLOCK"
is "$RC" 0 "a second boot reads the disk back and checks every word"
has "$OUT" '^read back the pattern; checksum 0x' "it reports a checksum"
sum1=$OUT
run_slate --disk "$IMG,cache=none" --append read "$BLOCK"
is "$OUT" "$sum1" "cache=none (O_DIRECT) reads the same data"
run_slate --disk "$IMG,ro" --append read "$BLOCK"
is "$OUT" "$sum1" "a read-only disk reads the same data"

truncate -s 1M "$TMP/e.img"
before=$(sha1sum <"$TMP/e.img")
run_slate --disk "$TMP/e.img" --append errors "$BLOCK"
is "$RC/$OUT" "0/block errors ok" "out-of-range, bad-buffer and unknown requests get their status; a broken ring sets ERROR"
has "$ERR" 'the device stops' "the broken ring is reported"
run_slate --disk "$TMP/e.img,ro" --append errors "$BLOCK"
is "$RC" 0 "a read-only disk refuses writes and discards with READ_ONLY"
has "$OUT" '^read-only refusals ok$' "read-only refusals checked"
is "$(sha1sum <"$TMP/e.img")" "$before" "the image is untouched by every refused request"

# Crash consistency: SIGKILL while the guest writes and flushes block by block.
truncate -s 4M "$TMP/c.img"
# (no timeout(1) wrapper: SIGKILL must reach slate itself)
"$SLATE" --disk "$TMP/c.img" --append crash "$BLOCK" >"$TMP/crash.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq "$(scaled 200)"); do [ "$(grep -c '^flushed' "$TMP/crash.out")" -ge 50 ] && break; sleep 0.02; done
kill -KILL "$pid"
wait "$pid" 2>/dev/null
read -r flushed bad <<<"$(flushed_blocks_intact "$TMP/c.img" "$TMP/crash.out")"
if [ "$flushed" -ge 50 ] && [ "$bad" = 0 ]; then
    pass "SIGKILL mid-write: all $flushed blocks whose flush completed are intact"
else
    fail "SIGKILL mid-write: every flushed block is intact" "flushed: $flushed, damaged: $bad"
fi

truncate -s 0 "$TMP/c.img"; truncate -s 4M "$TMP/c.img"
timeout -s KILL "$(scaled 60)" "$SLATE" --disk "$TMP/c.img" --append crash "$BLOCK" >"$TMP/term.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq "$(scaled 200)"); do [ "$(grep -c '^flushed' "$TMP/term.out")" -ge 20 ] && break; sleep 0.02; done
kill -TERM "$pid"
wait "$pid"
is "$?" 143 "SIGTERM mid-write: slate exits with 143"
read -r flushed bad <<<"$(flushed_blocks_intact "$TMP/c.img" "$TMP/term.out")"
if [ "$flushed" -ge 20 ] && [ "$bad" = 0 ]; then pass "SIGTERM: all $flushed flushed blocks are intact"; else fail "SIGTERM: flushed blocks intact" "flushed: $flushed, damaged: $bad"; fi

# Locking: a second VM on the same image is refused; two read-only users may share it.
: >"$TMP/first.out" # emptied first: the wait below must not see the last run's lines
timeout -s KILL "$(scaled 60)" "$SLATE" --smp 2 --disk "$IMG" --append halt "$GUEST/smp.elf" >"$TMP/first.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq "$(scaled 100)"); do grep -q 'all halted' "$TMP/first.out" && break; sleep 0.05; done
run_slate --disk "$IMG" --append read "$BLOCK"
is "$RC" 125 "a second slate on an image in use is refused (125)"
has "$ERR" "^slate: $IMG: in use by another process" "and says the image is locked"
run_slate --disk "$IMG,ro" --append read "$BLOCK"
is "$RC" 125 "a read-only user cannot share an image another VM writes"
kill -TERM "$pid"; wait "$pid" 2>/dev/null
run_slate --disk "$IMG,ro" --disk "$IMG,ro" --append read "$BLOCK"
is "$RC" 0 "two read-only users may share an image"

run_slate --disk "$TMP/missing.img" "$BLOCK"
is "$RC/$ERR" "125/slate: $TMP/missing.img: No such file or directory" "a missing image: one clear line, 125"
: >"$TMP/empty.img"
run_slate --disk "$TMP/empty.img" "$BLOCK"
has "$RC $ERR" '^125 slate: .*empty.img: the image is smaller than one sector' "an empty image is refused"
run_slate --disk "$IMG,fast" "$BLOCK"
has "$RC $ERR" "^125 slate: --disk .*unknown option 'fast'" "an unknown --disk option is refused"
run_slate --disk "$IMG" --disk "$TMP/e.img" --append identify "$BLOCK"
is "$RC/$OUT" "0/serial slate-disk-0" "IDENTIFY names the disk"

# A host write that fails (here: past ulimit -f, which would also have killed slate with SIGXFSZ)
# is an I/O error for the guest, and every FLUSH fails until the guest clears WRITE_ERRORS.
truncate -s 4M "$TMP/limited.img"
OUT=$(ulimit -f 1024; timeout -s KILL "$(scaled 60)" "$SLATE" --disk "$TMP/limited.img" --append failing "$BLOCK" 2>"$TMP/err" </dev/null)
RC=$?
is "$RC" 0 "a write past the file size limit does not kill slate (SIGXFSZ): the guest runs on"
is "$OUT" "write past the limit 1, flushes 1 1, write errors 1, flush after clearing 0" \
    "the write gets IO_ERROR, FLUSH fails twice (sticky), WRITE_ERRORS counts it, a flush after clearing is OK"
has "$(cat "$TMP/err")" 'disk0: write of 8 sectors at 4096 failed: File too large' "the failed write is reported"

# Version 2: the same 256 random reads, 32 in flight, rung only when the device is idle
# (device_busy) and woken once per 16 completions (irq_batch): every request completes, with a
# fraction of the doorbells and interrupts (each an exit or two on this machine).
truncate -s 16M "$TMP/batch.img"
run_slate --disk "$TMP/batch.img" --append batching "$BLOCK"
has "$OUT" '^one by one: 256 requests, [0-9]+ doorbells, [0-9]+ interrupts$' "256 requests the version-1 way"
batched=$(sed -n 's/^batched: 256 requests, \([0-9]*\) doorbells, \([0-9]*\) interrupts$/\1 \2/p' <<<"$OUT")
read -r bells irqs <<<"$batched"
if [ -n "$bells" ] && [ "$bells" -le 32 ] && [ "$irqs" -le 24 ]; then
    pass "256 requests batched: all complete, with $bells doorbells and $irqs interrupts (at most 32 and 24)"
else fail "256 requests batched with at most 32 doorbells and 24 interrupts" "$OUT" "$ERR"; fi
