#!/usr/bin/env bash
# Hostile guests with fixed seeds: random writes to every device register, the memory hole and the
# shared rings, random hypercalls, CPUs started and stopped (INIT IPIs) in random order. slate
# must stay alive and responsive (the guest's final heartbeat arrives), exit as the guest asks,
# and leave a read-only disk image untouched.
. "$(dirname "$0")/../lib.sh"
SEEDS="1 2 3 42 1234"
OPS=20000
need_kvm $((4 * $(wc -w <<<"$SEEDS")))
plan $((4 * $(wc -w <<<"$SEEDS")))
truncate -s 1M "$TMP/ro.img" "$TMP/rw.img"
printf 'precious' | dd of="$TMP/ro.img" conv=notrunc status=none
before=$(sha1sum <"$TMP/ro.img")

for seed in $SEEDS; do
    run_slate --smp 4 --disk "$TMP/ro.img,ro" --disk "$TMP/rw.img" --net user \
        --append "seed=$seed ops=$OPS" "$GUEST/chaos.elf"
    is "$RC" 0 "seed $seed: slate survives $OPS hostile operations and exits as the guest asks"
    has "$OUT" "^chaos survived $OPS operations" "seed $seed: the guest's heartbeat arrives after the last one"
    is "$(sha1sum <"$TMP/ro.img")" "$before" "seed $seed: the read-only disk image is unchanged"
    lacks "$ERR" 'internal|crashed|Assertion|AddressSanitizer|runtime error' "seed $seed: no crash report, assertion or sanitizer finding"
done
