#!/usr/bin/env bash
# run.sh BUILD - slate's benchmarks. Every figure is a ratio against the raw-KVM floor
# (bench/floor.c) measured in the same run, and against QEMU (-M microvm) when it is installed,
# because the machines this runs on are shared and noisy: absolute times are printed only for
# context. Each measurement is the median of several runs.
set -eu
BUILD=${1:-build}
SLATE=$BUILD/slate
FLOOR=$BUILD/bench/floor
BOOT=$BUILD/bench/boot.bin
HCALL=$BUILD/bench/hypercall.bin
BOOT_RUNS=${BOOT_RUNS:-21}
HCALL_RUNS=${HCALL_RUNS:-5}
NOPS=100000
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is not usable; no benchmarks run" >&2
    exit 0
fi

QEMU=$(command -v qemu-system-x86_64 || true)
# QEMU starts at the reset vector F000:FFF0, so the same real-mode guest runs there as a 64 KiB
# BIOS image: the code at F000:0000 and a far jump to it at the reset vector.
make_bios() {
    local out=$TMP/$(basename "$1" .bin).bios
    head -c 65536 /dev/zero >"$out"
    dd if="$1" of="$out" conv=notrunc status=none
    printf '\xea\x00\x00\x00\xf0' | dd of="$out" bs=1 seek=$((0xFFF0)) conv=notrunc status=none
    echo "$out"
}
qemu_cmd() {
    echo "$QEMU -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=off -accel kvm \
-m 128M -nodefaults -no-user-config -display none -chardev file,id=dc,path=/dev/null \
-device isa-debugcon,iobase=0xe9,chardev=dc -device isa-debug-exit,iobase=0xf4 -bios $1"
}

# median_ms RUNS COMMAND...: the median wall time in milliseconds (3 decimals) of RUNS runs.
median_ms() {
    local runs=$1
    shift
    for _ in $(seq "$runs"); do
        local start end
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1 </dev/null || true
        end=$(date +%s%N)
        echo $(((end - start) / 1000))
    done | sort -n | awk '{ t[NR] = $1 } END { printf "%.3f\n", t[int((NR + 1) / 2)] / 1000 }'
}

# peak_rss_kb COMMAND...: the peak resident set of one run, in KiB.
peak_rss_kb() {
    /usr/bin/time -f '%M' -o "$TMP/rss" "$@" >/dev/null 2>&1 </dev/null || true
    tail -1 "$TMP/rss"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
us_per_call() { awk -v a="$1" -v b="$2" -v n="$NOPS" 'BEGIN { printf "%.2f", (a - b) * 1000 / n }'; }

# Correctness first: every contender must run both guests to a clean exit.
"$FLOOR" "$BOOT" >/dev/null && "$FLOOR" "$HCALL" >/dev/null
"$SLATE" "$BOOT" >/dev/null && "$SLATE" "$HCALL" >/dev/null

echo "slate benchmarks ($(nproc) CPUs, $(uname -r); medians of $BOOT_RUNS boots and $HCALL_RUNS hypercall runs)"
echo
floor_boot=$(median_ms "$BOOT_RUNS" "$FLOOR" "$BOOT")
slate_boot=$(median_ms "$BOOT_RUNS" "$SLATE" "$BOOT")
slate_boot_16g=$(median_ms "$BOOT_RUNS" "$SLATE" -m 16G "$BOOT")
floor_hc=$(median_ms "$HCALL_RUNS" "$FLOOR" "$HCALL")
slate_hc=$(median_ms "$HCALL_RUNS" "$SLATE" "$HCALL")
floor_call=$(us_per_call "$floor_hc" "$floor_boot")
slate_call=$(us_per_call "$slate_hc" "$slate_boot")

printf '%-44s %10s %10s %9s\n' "measurement" "floor" "slate" "ratio"
printf '%-44s %8s ms %8s ms %9s   (target <= 1.30x)\n' "boot: start to exit, print one byte" "$floor_boot" "$slate_boot" "$(ratio "$slate_boot" "$floor_boot")"
printf '%-44s %8s ms %8s ms %9s\n' "boot with -m 16G (lazy RAM)" "$floor_boot" "$slate_boot_16g" "$(ratio "$slate_boot_16g" "$floor_boot")"
printf '%-44s %8s us %8s us %9s   (target <= 1.05x)\n' "hypercall round trip ($NOPS nops)" "$floor_call" "$slate_call" "$(ratio "$slate_call" "$floor_call")"

floor_rss=$(peak_rss_kb "$FLOOR" "$BOOT")
slate_rss=$(peak_rss_kb "$SLATE" "$BOOT")
slate_rss_16g=$(peak_rss_kb "$SLATE" -m 16G "$BOOT")
printf '%-44s %7s KiB %6s KiB %9s   (target slate < 8192 KiB)\n' "peak RSS, boot guest (touches ~2 pages)" "$floor_rss" "$slate_rss" "$(ratio "$slate_rss" "$floor_rss")"
printf '%-44s %7s KiB %6s KiB\n' "peak RSS with -m 16G" "-" "$slate_rss_16g"

# SMP and time, from guests that measure themselves with rdtsc (tests/guest/smp.c, timer.c).
GUESTS=$BUILD/guest
echo
printf '%-44s %10s %10s %9s\n' "SMP and timers (guest-measured)" "reference" "slate" "ratio"
boot1=$(median_ms "$BOOT_RUNS" "$SLATE" --smp 1 --append start "$GUESTS/smp.elf")
for n in 2 4 8; do
    bootn=$(median_ms "$BOOT_RUNS" "$SLATE" --smp "$n" --append start "$GUESTS/smp.elf")
    printf '%-44s %8s ms %8s ms %9s\n' "boot+start all CPUs: 1 vs $n vCPUs" "$boot1" "$bootn" "$(ratio "$bootn" "$boot1")"
done
ipi=$("$SLATE" --smp 2 --append ipi "$GUESTS/smp.elf" | sed -n 's/^ipi round trip ns: //p')
printf '%-44s %10s %8s us\n' "IPI round trip CPU 0 -> 1 -> 0 (in-kernel)" "-" "$(awk -v n="$ipi" 'BEGIN { printf "%.2f", n / 1000 }')"
lat=$("$SLATE" --append latency "$GUESTS/timer.elf")
dev=$(sed -n 's/^timer latency mean ns: //p' <<<"$lat")
lapic=$(sed -n 's/^lapic latency mean ns: //p' <<<"$lat")
printf '%-44s %8s us %8s us %9s   (reference: TSC-deadline LAPIC timer)\n' "timer deadline to handler, mean" \
    "$(awk -v n="$lapic" 'BEGIN { printf "%.2f", n / 1000 }')" "$(awk -v n="$dev" 'BEGIN { printf "%.2f", n / 1000 }')" "$(ratio "$dev" "$lapic")"

# Block: the guest's view (tests/guest/block.c bench mode) against dd on the same file, in the
# same run, both from the page cache.
DISK=$TMP/bench-disk.img
truncate -s 64M "$DISK"
dd if=/dev/zero of="$DISK" bs=1M count=64 conv=notrunc status=none
dd_mbs() { dd "$@" 2>&1 >/dev/null | awk '/copied/ { t = $(NF-3); b = $1 } END { printf "%.0f", b / t / 1e6 }'; }
host_read=$(dd_mbs if="$DISK" of=/dev/null bs=1M)
host_write=$(dd_mbs if=/dev/zero of="$DISK" bs=1M count=64 conv=notrunc)
host_iops=$("$BUILD/bench/preadrate" "$DISK" 200000)
host_seq=$("$BUILD/bench/preadrate" "$DISK" 2000 seq 1048576 8 | awk '{ printf "%.0f", $1 * 1048576 / 1e6 }')
# The guest's driver the version-1 way (a doorbell per batch, an interrupt per completion) and
# with version 2's device_busy and irq_batch, in the same run.
guest_v1=$("$SLATE" -m 256M --disk "$DISK" --append bench-v1 "$GUESTS/block.elf")
guest=$("$SLATE" -m 256M --disk "$DISK" --append bench "$GUESTS/block.elf")
field() { awk -v k="$1:" -v i="$2" '$1 == k { print (i == 1) ? $3 : (i == 2) ? $5 : (i == 3) ? $7 : $9 }' <<<"${3:-$guest}"; }
echo
printf '%-44s %10s %10s %9s\n' "block device (64 MiB image, page cache)" "host" "guest" "ratio"
printf '%-44s %7s MB/s %5s MB/s %9s   (host dd: one buffer, hot in the cache)\n' "sequential 1 MiB reads, 8 in flight" "$host_read" "$(field seq-read-1M 1)" "$(ratio "$(field seq-read-1M 1)" "$host_read")"
printf '%-44s %7s MB/s %5s MB/s %9s   (goal >= 0.90x; host preads into 8 buffers in turn)\n' "" "$host_seq" "$(field seq-read-1M 1)" "$(ratio "$(field seq-read-1M 1)" "$host_seq")"
printf '%-44s %7s MB/s %5s MB/s %9s\n' "sequential 1 MiB writes, 8 in flight" "$host_write" "$(field seq-write-1M 1)" "$(ratio "$(field seq-write-1M 1)" "$host_write")"
printf '%-44s %7s IOPS %5s IOPS %9s   (goal >= 0.50x; host: one thread of random preads)\n' "random 4 KiB reads, 32 in flight" "$host_iops" "$(field rand-read-4K 2)" "$(ratio "$(field rand-read-4K 2)" "$host_iops")"
printf '%-44s %10s %5s IOPS\n' "random 4 KiB writes" "" "$(field rand-write-4K 2)"
printf '%-44s %10s %10s %9s\n' "  version 1 driver vs version 2 (same run)" "v1" "v2" "ratio"
for row in seq-read-1M rand-read-4K; do
    printf '%-44s %5s IOPS %5s IOPS %9s   doorbells/request %s -> %s, interrupts/request %s -> %s\n' "  $row" \
        "$(field $row 2 "$guest_v1")" "$(field $row 2)" "$(ratio "$(field $row 2)" "$(field $row 2 "$guest_v1")")" \
        "$(field $row 3 "$guest_v1")" "$(field $row 3)" "$(field $row 4 "$guest_v1")" "$(field $row 4)"
done

# Debugging: what tracing costs per exit, off and on, and the single-step rate through gdb.
echo
printf '%-44s %10s %10s %9s\n' "debugging" "off" "on" "ratio"
trace_hc=$(median_ms "$HCALL_RUNS" "$SLATE" --trace io --trace-file "$TMP/trace.log" "$HCALL")
stats_hc=$(median_ms "$HCALL_RUNS" "$SLATE" --stats "$HCALL")
exc_hc=$(median_ms "$HCALL_RUNS" "$SLATE" --trace exc "$HCALL")
noflight_hc=$(median_ms "$HCALL_RUNS" "$SLATE" --flight 0 "$HCALL")
trace_call=$(us_per_call "$trace_hc" "$slate_boot")
stats_call=$(us_per_call "$stats_hc" "$slate_boot")
exc_call=$(us_per_call "$exc_hc" "$slate_boot")
noflight_call=$(us_per_call "$noflight_hc" "$slate_boot")
printf '%-44s %8s us %8s us %9s\n' "exit cost, --trace io (to /dev/null)" "$slate_call" "$trace_call" "$(ratio "$trace_call" "$slate_call")"
printf '%-44s %8s us %8s us %9s\n' "exit cost, --stats" "$slate_call" "$stats_call" "$(ratio "$stats_call" "$slate_call")"
printf '%-44s %8s us %8s us %9s\n' "exit cost, --trace exc (IDT checked per exit)" "$slate_call" "$exc_call" "$(ratio "$exc_call" "$slate_call")"
printf '%-44s %8s us %8s us %9s\n' "exit cost, flight recorder (--flight 0 vs 32)" "$noflight_call" "$slate_call" "$(ratio "$slate_call" "$noflight_call")"
# The whole-run comparison above is within the machine's noise; one event's own cost is not.
event_ns=$("$BUILD/bench/flightcost")
printf '%-44s %8s us %8s ns %9s   (goal <= 1.02x)\n' "flight recorder: one event vs one exit" "$slate_call" "$event_ns" \
    "$(awk -v e="$event_ns" -v x="$slate_call" 'BEGIN { printf "%.3fx", 1 + e / 1000 / x }')"
# The profiler's cost: a CPU-bound guest loop with and without sampling at 997 Hz.
work_plain=$(median_ms "$HCALL_RUNS" "$SLATE" --append work=200000 "$GUESTS/profile.elf")
work_prof=$(median_ms "$HCALL_RUNS" "$SLATE" --profile "$TMP/bench.folded" --append work=200000 "$GUESTS/profile.elf")
printf '%-44s %8s ms %8s ms %9s   (goal <= 1.02x)\n' "a CPU-bound loop, --profile at 997 Hz" "$work_plain" "$work_prof" "$(ratio "$work_prof" "$work_plain")"
# The same, from its parts: each sample is one kick out of the guest, so 997 exits a second.
printf '%-44s %8s us %8s /s %9s   (goal <= 1.02x)\n' "--profile from its parts: exit cost x 997 Hz" "$slate_call" 997 \
    "$(awk -v x="$slate_call" 'BEGIN { printf "%.3fx", 1 + x * 997 / 1e6 }')"
if command -v gdb >/dev/null; then
    steps_ms() {
        local sock=$TMP/gdb.sock
        rm -f "$sock"
        "$SLATE" --gdb "unix:$sock" --gdb-wait --append spin "$GUESTS/debugme.elf" >/dev/null 2>&1 &
        local pid=$!
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.02; done
        local start end
        start=$(date +%s%N)
        gdb -batch -nx -ex "target remote $sock" -ex "stepi $1" -ex kill >/dev/null 2>&1
        end=$(date +%s%N)
        wait "$pid" 2>/dev/null
        echo $(((end - start) / 1000000))
    }
    one=$(steps_ms 1)
    many=$(steps_ms 2001)
    printf '%-44s %10s %7s /s\n' "gdb single steps (stepi 2000)" "" "$(awk -v a="$many" -v b="$one" 'BEGIN { printf "%.0f", 2000 / ((a - b) / 1000) }')"
fi

# Network: guest-to-host frames per second over TAP, against this host writing frames into a TAP
# device itself (the floor for this design), in a namespace created and removed here.
NS=slate-bench-$$
if ip netns add "$NS" 2>/dev/null; then
    trap 'ip netns del "$NS" 2>/dev/null || true; rm -rf "$TMP"' EXIT
    ip netns exec "$NS" ip tuntap add dev tap0 mode tap && ip netns exec "$NS" ip link set tap0 up
    echo
    printf '%-44s %10s %10s %9s\n' "network, guest to host over TAP" "raw TAP" "guest" "ratio"
    blast() { ip netns exec "$NS" "$SLATE" --net tap:tap0 --append "mode=blast size=$1 count=200000 ${2:-}" "$GUESTS/net.elf"; }
    for size in 64 1514; do
        raw=$(ip netns exec "$NS" "$BUILD/bench/taprate" tap0 "$size" 200000)
        v1=$(blast "$size" v1)
        v2=$(blast "$size")
        got=$(sed -n 's/^blast frames\/s \([0-9]*\).*/\1/p' <<<"$v2")
        got_v1=$(sed -n 's/^blast frames\/s \([0-9]*\).*/\1/p' <<<"$v1")
        mbit=$(awk -v f="$got" -v s="$size" 'BEGIN { printf "%.0f", f * s * 8 / 1e6 }')
        printf '%-44s %8s/s %8s/s %9s   %s Mbit/s  (goal >= 0.90x)\n' "$size-byte frames" "$raw" "$got" "$(ratio "$got" "$raw")" "$mbit"
        printf '%-44s %8s/s %8s/s %9s   doorbells %s -> %s\n' "  version 1 driver vs version 2 (v1, v2)" "$got_v1" "$got" \
            "$(ratio "$got" "$got_v1")" "$(sed -n 's/.* doorbells //p' <<<"$v1")" "$(sed -n 's/.* doorbells //p' <<<"$v2")"
    done
    ip netns del "$NS"
else
    echo
    echo "network: cannot create a network namespace (needs root): no TAP benchmark"
fi

# Display: updates a VNC client sees per second, and how many pixels each carries, for a guest
# that keeps redrawing the whole 640x480 screen and for one that changes a 32x32 square. An update
# should carry what changed: 1024 pixels for the square, whatever the guest managed to repaint
# in one refresh for the full screen. "screens/s" is pixels per second over 307200.
echo
printf '%-44s %10s %14s %10s\n' "display over VNC (3 s each)" "updates/s" "pixels/update" "screens/s"
vport=$((5960 + $$ % 30))
for mode in animate-full animate-small; do
    "$SLATE" --display vnc --vnc "127.0.0.1:$vport" --append "$mode" "$GUESTS/display.elf" >/dev/null 2>&1 &
    vpid=$!
    sleep 1
    w=$("$BUILD/tools/vnctool" vnc "127.0.0.1:$vport" watch 3000 | sed -n 's/^updates [0-9]* per_second \([0-9.]*\) pixels_per_update \([0-9]*\)$/\1 \2/p')
    kill "$vpid" 2>/dev/null
    wait "$vpid" 2>/dev/null || true
    printf '%-44s %10s %14s %10s\n' "$mode (of 307200 pixels)" "${w% *}" "${w#* }" \
        "$(awk -v u="${w% *}" -v p="${w#* }" 'BEGIN { printf "%.2f", u * p / 307200 }')"
done

# --each: 200 cases from one boot against a boot per case, for a kernel whose init takes 100 ms
# (tests/guest/cases.c with init-ms=100; each case exits 0 at once).
each_dir=$(mktemp -d)
mkdir "$each_dir/cases"
for i in $(seq -w 1 200); do printf 'exit 0' >"$each_dir/cases/case$i"; done
each_kernel=(--append init-ms=100 --each-out "$each_dir/out" "$BUILD/guest/cases.elf")
t0=$(date +%s%N)
for i in 1 2 3 4 5; do "$BUILD/slate" --each "$each_dir/cases/case00$i" "${each_kernel[@]}" >/dev/null 2>&1; done
t1=$(date +%s%N)
one_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 5e6 }')
t0=$(date +%s%N)
summary=$("$BUILD/slate" --each-dir "$each_dir/cases" "${each_kernel[@]}" 2>/dev/null | tail -1)
t1=$(date +%s%N)
per_case=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 / 200 }')
reset_us=$(sed -n 's/.*a reset took \([0-9]*\) us.*/\1/p' <<<"$summary")
rm -rf "$each_dir"
echo
printf '%-44s %10s %10s %9s\n' "--each, 200 cases, a 100 ms init" "boot/case" "--each" "speed-up"
printf '%-44s %8s ms %8s ms %9s   (target >= 50x)\n' "time per case" "$one_ms" "$per_case" "$(ratio "$one_ms" "$per_case")"
printf '%-44s %10s %8s us   (target < 100 us on bare KVM; %s)\n' "reset between cases (pages, CPUs, devices)" "-" \
    "$reset_us" "$(sed 's/^# //' <<<"$summary")"

# --record: the cost of recording an exit-heavy kernel (100000 hypercalls), and the log's size.
rec_log=$(mktemp)
rec_hc=$(median_ms "$HCALL_RUNS" "$SLATE" --record "$rec_log" "$HCALL")
rec_bytes=$(stat -c %s "$rec_log")
rm -f "$rec_log"
echo
printf '%-44s %10s %10s %9s\n' "--record (100000 hypercall exits)" "plain" "recording" "ratio"
printf '%-44s %8s ms %8s ms %9s   (goal <= 1.30x)\n' "run time" "$slate_hc" "$rec_hc" "$(ratio "$rec_hc" "$slate_hc")"
printf '%-44s %10s %7s KiB   (%s bytes per exit)\n' "log size" "-" "$((rec_bytes / 1024))" "$((rec_bytes / NOPS))"

# --record on kernels that compute for one second of their CLOCK (tests/guest/recbench.c): alone,
# and with a 1 kHz timer starting a 4 KiB disk read every tick. The work done is the measure (the
# run lasts a second either way); the log's size is per second of guest time.
rb_disk=$TMP/recbench.img
truncate -s 1M "$rb_disk"
# rounds MODE [ARGS...]: the median of 3 runs' work done.
rounds() {
    local mode=$1
    shift
    for _ in 1 2 3; do
        "$SLATE" "$@" --disk "$rb_disk" --append "$mode" "$BUILD/guest/recbench.elf" </dev/null 2>/dev/null |
            sed -n 's/^rounds \([0-9]*\).*/\1/p'
    done | sort -n | sed -n 2p
}
printf '%-44s %10s %10s %9s\n' "--record, one second of guest time" "plain" "recording" "ratio"
for mode in compute disk; do
    plain=$(rounds "$mode")
    recorded=$(rounds "$mode" --record "$TMP/rb.log")
    goal=""
    [ "$mode" = disk ] && goal="   (goal <= 1.30x)"
    printf '%-44s %10s %10s %9s%s\n' "work done, $mode" "$plain" "$recorded" "$(ratio "$plain" "$recorded")" "$goal"
    printf '%-44s %10s %7s KiB\n' "log size per second of guest time, $mode" "-" "$(($(stat -c %s "$TMP/rb.log") / 1024))"
done

if [ -n "$QEMU" ]; then
    boot_bios=$(make_bios "$BOOT")
    hc_bios=$(make_bios "$HCALL")
    # isa-debug-exit makes QEMU exit with (0 << 1) | 1 = 1
    # shellcheck disable=SC2046
    $(qemu_cmd "$boot_bios") >/dev/null 2>&1 </dev/null || [ $? = 1 ] || { echo "qemu failed to run the boot guest" >&2; exit 1; }
    # shellcheck disable=SC2046
    qemu_boot=$(median_ms "$BOOT_RUNS" $(qemu_cmd "$boot_bios"))
    # shellcheck disable=SC2046
    qemu_hc=$(median_ms "$HCALL_RUNS" $(qemu_cmd "$hc_bios"))
    qemu_call=$(us_per_call "$qemu_hc" "$qemu_boot")
    # shellcheck disable=SC2046
    qemu_rss=$(peak_rss_kb $(qemu_cmd "$boot_bios"))
    echo
    printf '%-44s %10s %10s %9s\n' "against QEMU microvm" "qemu" "slate" "slate/qemu"
    printf '%-44s %8s ms %8s ms %9s\n' "boot: start to exit" "$qemu_boot" "$slate_boot" "$(ratio "$slate_boot" "$qemu_boot")"
    printf '%-44s %8s us %8s us %9s\n' "hypercall round trip (port I/O exit)" "$qemu_call" "$slate_call" "$(ratio "$slate_call" "$qemu_call")"
    printf '%-44s %7s KiB %6s KiB %9s\n' "peak RSS, boot guest" "$qemu_rss" "$slate_rss" "$(ratio "$slate_rss" "$qemu_rss")"
else
    echo
    echo "qemu-system-x86_64 is not installed: no QEMU comparison (apt-get install qemu-system-x86)"
fi
