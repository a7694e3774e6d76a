#!/usr/bin/env bash
# A guest that opens flows without end through user networking must not take slate's descriptors:
# 5,000 UDP flows and 500 TCP connections (to a sink on this machine's loopback, loopback=on) at
# `ulimit -n 1024`, after which a VNC viewer, the monitor and gdb all work and slate idles. And
# slate's listeners out of descriptors close a connection at once instead of spinning on accept.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 15
NET=$GUEST/net.elf
VNCTOOL=$BUILD/tools/vnctool

# cpu_ticks PID: the user and system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# A sink on 127.0.0.1 that takes every TCP connection and keeps it, and swallows UDP.
sink=$(free_port tcp)
perl -MIO::Socket::INET -MIO::Select -e '
    my ($port, $secs) = @ARGV; $| = 1;
    my $t = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port", Listen => 1024, ReuseAddr => 1) or die "tcp: $!";
    my $u = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port", Proto => "udp") or die "udp: $!";
    print "listening\n";
    my $sel = IO::Select->new($t, $u); my @keep; my $end = time + $secs;
    while (time < $end) {
        for my $s ($sel->can_read(0.1)) {
            if ($s == $t) { push @keep, scalar $t->accept } else { $u->recv(my $b, 100) }
        }
    }' "$sink" "$(scaled 120)" >"$TMP/sink.out" 2>&1 &
SINK=$!
wait_until 30 grep -q listening "$TMP/sink.out"

vnc=$(free_port) mon=$(free_port) gdbport=$(free_port)
: >"$TMP/out"
(ulimit -n 1024; exec timeout -s KILL "$(scaled 120)" "$SLATE" --net user,loopback=on --display vnc \
    --vnc "127.0.0.1:$vnc" --monitor "tcp:127.0.0.1:$mon" --gdb "127.0.0.1:$gdbport" \
    --append "dhcp peer=127.0.0.1 via=10.0.2.2 mode=flows port=$sink udp=5000 tcp=500" "$NET" \
    >"$TMP/out" 2>"$TMP/err" </dev/null) &
PID=$!
wait_until 90 grep -q '^flows sent' "$TMP/out"
has "$(cat "$TMP/out")" '^flows sent' "the guest sent 5,000 UDP flows and 500 TCP connections"
sleep 1 # the last frames through libslirp
slate_pid=$(pgrep -P "$PID" -x slate || echo "$PID")
fds=$(ls "/proc/$slate_pid/fd" | wc -l)
if [ "$fds" -le 300 ]; then pass "slate holds $fds descriptors (at most 200 host sockets for the card, and its own)"
else fail "slate holds at most 300 descriptors" "it holds $fds"; fi
has "$(cat "$TMP/err")" 'host sockets, the most this card may \(sockets=200\); a new (UDP flow|connection) refused' \
    "the refused flows are reported"
lines=$(grep -c 'host sockets, the most' "$TMP/err")
if [ "$lines" -le 15 ]; then pass "at a limited rate ($lines lines for 5,000 refusals)"; else fail "at a limited rate" "$lines lines"; fi

V=$("$VNCTOOL" vnc "127.0.0.1:$vnc" pixel 1 1 2>&1)
has "$V" '^pixel 1 1 ' "a VNC viewer then gets the screen"
M=$(perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die "connect: $!";
    print $s "info cpus\n"; $s->shutdown(1); local $/; my $r = <$s>; print $r' "$mon" 2>&1)
has "$M" "cpu 0: halted" "the monitor answers info cpus"
G=$(timeout -s KILL "$(scaled 60)" gdb -batch -nx -ex "target remote 127.0.0.1:$gdbport" -ex 'info registers rip' 2>&1)
has "$G" '^rip +0x' "gdb attaches and reads RIP"

t0=$(cpu_ticks "$slate_pid"); sleep 2; t1=$(cpu_ticks "$slate_pid")
if [ $((t1 - t0)) -le 20 ]; then pass "slate then idles: $((t1 - t0)) clock ticks of CPU in 2 s"
else fail "slate then idles (at most 10% of a CPU)" "$((t1 - t0)) clock ticks in 2 s"; fi

perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die; print $s "quit\n"; sleep 1' "$mon"
wait "$PID"; RC=$?
is "$RC" 0 "the monitor's quit ends the machine"
kill "$SINK" 2>/dev/null; wait "$SINK" 2>/dev/null

# ---- a listener out of descriptors ----
# At `ulimit -n 40` a crowd of VNC connections exhausts slate's descriptors: each extra connection
# is closed at once, slate does not spin, and a viewer is served once the crowd has gone. The
# second time, tests/tools/slow_vnc_start.c delays each libvncserver client start by 20 ms: the
# library takes its client's pipe there, and a descriptor freed for it beforehand was taken by the
# accept loop meanwhile, so slate aborted (glibc's fd_set check on the pipe's -1) every time.
crowd() { # crowd PRELOAD WHAT
    local vnc preload=$1 what=$2
    vnc=$(free_port)
    (ulimit -n 40; export LD_PRELOAD=$preload ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
     exec timeout -s KILL "$(scaled 60)" "$SLATE" --display vnc --vnc "127.0.0.1:$vnc" \
        --append "halt" "$GUEST/halt_forever.elf" >"$TMP/out" 2>"$TMP/err" </dev/null) &
    PID=$!
    wait_until 30 perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or exit 1' "$vnc"
    slate_pid=$(pgrep -P "$PID" -x slate || echo "$PID")
    perl -MIO::Socket::INET -e '
        my @c; for (1 .. 60) { my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or next; push @c, $s }
        print "crowd\n"; sleep $ARGV[1]' "$vnc" 4 >"$TMP/crowd.out" 2>&1 &
    CROWD=$!
    wait_until 30 grep -q crowd "$TMP/crowd.out"
    sleep 1
    t0=$(cpu_ticks "$slate_pid"); sleep 2; t1=$(cpu_ticks "$slate_pid")
    if [ -z "$t0" ] || [ -z "$t1" ]; then fail "$what: out of descriptors, slate lives and does not spin" "slate is gone: $(tail -n 3 "$TMP/err")"
    elif [ $((t1 - t0)) -le 20 ]; then pass "$what: out of descriptors, slate lives and does not spin on accept: $((t1 - t0)) ticks in 2 s"
    else fail "$what: out of descriptors, slate does not spin on accept" "$((t1 - t0)) clock ticks in 2 s"; fi
    has "$(cat "$TMP/err")" 'VNC: out of descriptors; closed a new connection at once' "$what: and says so"
    wait "$CROWD"
    sleep 1
    V=$("$VNCTOOL" vnc "127.0.0.1:$vnc" pixel 1 1 2>&1)
    has "$V" '^pixel 1 1 ' "$what: once the crowd has gone, a viewer gets the screen"
    kill -TERM "$PID"; wait "$PID" || true
}
crowd "" "a crowd of viewers"
crowd "$BUILD/tools/slow_vnc_start.so" "a crowd of viewers, each start slowed"
