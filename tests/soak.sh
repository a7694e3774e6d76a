#!/usr/bin/env bash
# soak.sh BUILD [VMS] [SECONDS]: many VMs at once, each with a disk, a network card and a 100 Hz
# timer, for a long time. Passes when every guest ends with its summary, the sum of every word on
# its disk that the guest read back equals the sum of the image file on the host, no slate process
# crashed, and no slate process's resident memory grew by more than 2 MiB between the first
# sample (10 s in) and the last (15 s before the end). Not part of `make check`: it takes minutes.
set -u
BUILD=${1:-build}
VMS=${2:-20}
SECS=${3:-600}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
declare -a pids
for i in $(seq "$VMS"); do
    truncate -s 4M "$TMP/disk$i.img"
    "$BUILD/slate" -m 64M --disk "$TMP/disk$i.img" --net user --timeout $((SECS + 120)) \
        --append "secs=$SECS" "$BUILD/guest/soak.elf" >"$TMP/out$i" 2>"$TMP/err$i" </dev/null &
    pids[$i]=$!
done
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
sleep 10
declare -a first
for i in $(seq "$VMS"); do first[$i]=$(rss "${pids[$i]}"); done
sleep $((SECS > 20 ? SECS - 15 : 1))
failures=0
checked=0
most=0
for i in $(seq "$VMS"); do
    last=$(rss "${pids[$i]}")
    growth=$((last - ${first[$i]}))
    [ "$growth" -gt "$most" ] && most=$growth
    if [ "$growth" -gt 2048 ]; then
        echo "vm $i: RSS grew from ${first[$i]} KiB to $last KiB"
        failures=$((failures + 1))
    fi
done
for i in $(seq "$VMS"); do
    wait "${pids[$i]}"
    rc=$?
    if [ "$rc" != 0 ] || ! grep -q '^soak ok ' "$TMP/out$i"; then
        echo "vm $i: exit $rc: $(cat "$TMP/out$i" "$TMP/err$i" | head -3)"
        failures=$((failures + 1))
        continue
    fi
    guest_sum=$(sed -n 's/^soak ok .*disk-sum=\(0x[0-9a-f]*\).*/\1/p' "$TMP/out$i")
    host_sum=$(perl -e 'local $/; my $d = <STDIN>; printf "0x%x", unpack("%32L*", $d)' <"$TMP/disk$i.img")
    if [ "$guest_sum" != "$host_sum" ]; then
        echo "vm $i: the guest read a disk summing to $guest_sum; the image sums to $host_sum"
        failures=$((failures + 1))
    else
        checked=$((checked + 1))
    fi
done
echo "soak: $VMS VMs for $SECS s; first VM: $(cat "$TMP/out1"); RSS ${first[1]} KiB at 10 s"
echo "soak: $checked of $VMS disk sums match their images; the most any VM's RSS grew: $most KiB"
[ "$failures" = 0 ] && echo "soak: PASS" || { echo "soak: FAIL ($failures)"; exit 1; }
