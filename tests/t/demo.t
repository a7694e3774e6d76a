#!/usr/bin/env bash
# The demo OS that `make run` boots (guest/), driven through its shell as a user would: scripted
# input on the serial console, a real VNC client for the pointer, ping from a network namespace.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 27
DEMO=$BUILD/guest/demo.bin
VNCTOOL=$BUILD/tools/vnctool
PORT=$(free_port)

# ---- every device attached, a scripted session ----
truncate -s 4M "$TMP/disk.img"
cat >"$TMP/typed" <<'IN'
devices
sleep 300
cpus
mem
time
net
ping 10.0.2.2 2
disk write 5 written by the demo test
disk read 5
frobnicate
poweroff 7
IN
timeout -s KILL "$(scaled 60)" "$SLATE" --smp 4 -m 128M --disk "$TMP/disk.img" --net user --display vnc --vnc "127.0.0.1:$PORT" \
    --screenshot "$TMP/end.png" "$DEMO" <"$TMP/typed" >"$TMP/out" 2>"$TMP/err"
RC=$?
OUT=$(tr -d '\r' <"$TMP/out")
is "$RC" 7 "the demo boots from real mode and 'poweroff 7' ends slate with status 7"
has "$OUT" '^slate demo OS: 4 CPU\(s\), 128 MiB of RAM' "it reads the CPU count and RAM size from the info block"
is "$(grep -cE '^(serial0|power0|timer0|disk0|net0|display0|keyboard0|pointer0) +(serial|power|timer|block|network|display|keyboard|pointer) +0x' <<<"$OUT")" 16 \
    "the device table lists all eight devices, at boot and for 'devices'"
has "$OUT" '^disk0: "slate disk" slate-disk-0, 8192 sectors' "the disk driver identifies the disk"
has "$OUT" '^net: 10\.0\.2\.15/24 gateway 10\.0\.2\.2 \(DHCP\)$' "the network driver gets its address by DHCP from --net user"
TICKS=$(sed -n '/^slate> cpus$/,/^slate> mem$/p' <<<"$OUT" | awk '$3 == "shell" || $3 == "idle" { n++; if ($4 > 0) t++ } END { print n "/" t }')
is "$TICKS" "4/4" "cpus: all four CPUs are running and every one has counted ticks"
has "$OUT" '^  0x000000000000 - 0x000007ffffff  128 MiB$' "mem: the RAM region from the info block"
has "$OUT" "^wall clock $(date -u +%Y-%m-%d) " "time: the wall clock shows today's date"
has "$OUT" '^  address 10\.0\.2\.15/24 gateway 10\.0\.2\.2 \(DHCP\)$' "net: the address and gateway"
has "$OUT" '^reply from 10\.0\.2\.2: seq=2 ' "ping: the user-mode network's gateway answers"
has "$OUT" '^2 sent, 2 received$' "ping: both pings were answered"
has "$OUT" '^disk write 5: ok$' "disk write: the sector is written and flushed"
has "$OUT" '^0000  77 72 69 74 74 65 6e 20 62 79 20 74 68 65 20 64  written by the d$' "disk read: the sector reads back"
is "$(dd if="$TMP/disk.img" bs=512 skip=5 count=1 2>/dev/null | tr -d '\0')" "written by the demo test" \
    "and the host's disk image holds the text at sector 5"
has "$OUT" '^frobnicate: no such command \(try help\)$' "an unknown command is named"
is "$("$VNCTOOL" png "$TMP/end.png" 2 2 | grep '^pixel')" "pixel 2 2 0000aa" "the screen shows the shell under a blue status line"

# ---- the graphics demo, seen in a screenshot and painted through a VNC client ----
mkfifo "$TMP/in"
: >"$TMP/out" # emptied first: wait_for must not see the last run's lines
timeout -s KILL "$(scaled 60)" "$SLATE" --display vnc --vnc "127.0.0.1:$PORT" --screenshot "$TMP/draw.png" "$DEMO" \
    <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
PID=$!
exec 3>"$TMP/in"
wait_for() { for _ in $(seq "$(scaled 200)"); do grep -q "$1" "$TMP/out" && return 0; sleep 0.05; done; return 1; }
wait_for '^slate> '
echo draw >&3
wait_for 'screenshot taken'
cp "$TMP/draw.png" "$TMP/pattern.png" 2>/dev/null
# Every 16th pixel across and 20th down, against the pattern's formula (guest/screen.c).
ARGS=$(for y in $(seq 0 20 479) 479; do for x in $(seq 0 16 639) 639; do printf '%d %d ' "$x" "$y"; done; done)
# shellcheck disable=SC2086
BAD=$("$VNCTOOL" png "$TMP/pattern.png" $ARGS | perl -ne '
    next unless /^pixel (\d+) (\d+) (\w+)/;
    my @bars = qw(ffffff ffff00 00ffff 00ff00 ff00ff ff0000 0000ff 000000);
    my $want = $2 < 360 ? $bars[int($1 * 8 / 640)] : sprintf("%02x" x 3, (int($1 * 255 / 639)) x 3);
    print "$1,$2: $3 not $want\n" if $3 ne $want;')
is "${BAD:-none}" "none" "draw: the screenshot matches the colour bars and grey ramp pixel for pixel (1066 samples)"
"$VNCTOOL" vnc "127.0.0.1:$PORT" pointer 100 100 1 wait 200 pointer 200 100 1 wait 200 pointer 200 100 0 wait 300 >/dev/null
V=$("$VNCTOOL" vnc "127.0.0.1:$PORT" pixel 150 100 pixel 150 110)
has "$V" '^pixel 150 100 ff8000$' "draw: dragging with the left button paints a line"
has "$V" '^pixel 150 110 ffff00$' "draw: and nothing beside it"
printf 'q\npoweroff\n' >&3
exec 3>&-
wait "$PID"
RC=$?
OUT=$(tr -d '\r' <"$TMP/out")
is "$RC" 0 "q ends the drawing and poweroff the machine"
has "$OUT" '^draw: back to text$' "the console comes back after drawing"

# ---- the end of input, and reboot ----
printf 'reboot\n' >"$TMP/typed"
timeout -s KILL "$(scaled 60)" "$SLATE" "$DEMO" <"$TMP/typed" >"$TMP/out" 2>"$TMP/err"
RC=$?
OUT=$(tr -d '\r' <"$TMP/out")
is "$(count "$OUT" '^slate demo OS:')/$RC" "2/0" "reboot starts the kernel again; then the end of serial input powers it off"

# ---- ping from the host, over TAP, in a namespace of the test's own ----
NS=slate-demo-$$
if ip netns add "$NS" 2>/dev/null && ip netns exec "$NS" ip tuntap add dev tap0 mode tap &&
    ip netns exec "$NS" ip addr add 10.78.0.1/24 dev tap0 && ip netns exec "$NS" ip link set tap0 up; then
    rm -f "$TMP/in" && mkfifo "$TMP/in"
    : >"$TMP/out"
    ip netns exec "$NS" timeout -s KILL "$(scaled 60)" "$SLATE" --smp 2 --net tap:tap0 --append "ip=10.78.0.2/24" "$DEMO" \
        <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    exec 3>"$TMP/in"
    wait_for '^slate> '
    PING=$(ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 10.78.0.2 2>&1)
    has "$PING" ' 3 received' "TAP: the host pings the demo and all three pings are answered"
    printf 'ping 10.78.0.1 1\npoweroff\n' >&3
    exec 3>&-
    wait "$PID"
    RC=$?
    OUT=$(tr -d '\r' <"$TMP/out")
    has "$OUT" '^net: 10\.78\.0\.2/24 \(from the command line\)$' "TAP: the address comes from ip= on the command line"
    has "$OUT" '^reply from 10\.78\.0\.1: seq=1 ' "TAP: the demo pings the host"
    is "$RC" 0 "TAP: the demo powers off"
    ip netns del "$NS"
    if ip netns list | grep -q "^$NS\b"; then fail "the test's namespace is removed"; else pass "the test's namespace is removed"; fi
else
    ip netns del "$NS" 2>/dev/null
    for _ in 1 2 3 4 5; do test_number=$((test_number + 1)); echo "ok $test_number # SKIP cannot create a network namespace with a TAP device"; done
fi
