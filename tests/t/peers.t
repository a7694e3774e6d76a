#!/usr/bin/env bash
# Hostile peers on slate's sockets: a gdb or monitor client that sends without end and never
# reads its replies must not hold slate (it is dropped when a reply cannot be sent for 0.5 s),
# SIGTERM still ends slate at once, and a guest's exit still returns its code. A flood of bad gdb
# packets makes a rate-limited handful of warnings, not one line each.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 13
SOCK=$TMP/peer.sock

# stuck_client KIND: connects to $SOCK, writes requests (gdb 'g' packets or monitor lines) until
# the socket is full, then holds the connection for 30 s without reading a byte.
stuck_client() {
    wait_until 60 test -S "$SOCK"
    perl -MIO::Socket::UNIX -MIO::Handle -e '
        my ($path, $kind, $secs) = @ARGV;
        $SIG{PIPE} = "IGNORE"; # slate dropping the client ends the writing (EPIPE), not perl
        my $s; my $until = time + $secs;
        until ($s = IO::Socket::UNIX->new(Peer => $path)) { last if time > $until; select(undef, undef, undef, 0.05) }
        $s or die "connect: $!";
        $s->blocking(0);
        my $req = $kind eq "gdb" ? "\$g#67" : "info registers\n";
        my $chunk = $req x 2000; my $full = 0; my $end = time + $secs;
        while (time < $end) { my $n = syswrite($s, $chunk); if (!defined $n) { last if $!{EPIPE} || ++$full > 20; select(undef, undef, undef, 0.05) } }
        print "stuck\n"; STDOUT->flush;
        sleep 30;' "$SOCK" "$1" "$(scaled 10)" >"$TMP/client.out" 2>&1 &
    CLIENT=$!
    wait_until 30 grep -qs stuck "$TMP/client.out"
}

# start KIND GUEST-ARGS...: slate with its gdb stub or monitor on $SOCK, in the background.
start() {
    local kind=$1; shift
    rm -f "$SOCK"
    timeout -s KILL "$(scaled 60)" "$SLATE" "--$kind" "unix:$SOCK" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null &
    PID=$!
}

# terminate_slate: SIGTERM to slate; sets RC and ms (how long it took to end), then ends the client.
terminate_slate() {
    local t0
    t0=$(date +%s%N)
    kill -TERM "$PID"
    wait "$PID"; RC=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    kill "$CLIENT" 2>/dev/null; wait "$CLIENT" 2>/dev/null
}

for kind in gdb monitor; do
    start "$kind" --append spin "$GUEST/debugme.elf"
    stuck_client "$kind"
    sleep 1 # longer than the 0.5 s send timeout: the client has been dropped by now
    terminate_slate
    if [ "$RC" = 143 ] && [ "$ms" -lt "$(scaled 2000)" ]; then
        pass "$kind: with a client that never reads, SIGTERM ends slate with 143 in ${ms} ms"
    else
        fail "$kind: with a client that never reads, SIGTERM ends slate with 143 in under 2 s" \
            "status $RC after $ms ms" "$(cat "$TMP/err")"
    fi
done
has "$(cat "$TMP/err")" 'monitor: a client stopped reading its replies; dropped it' "the monitor says it dropped the client"

start gdb --append "code=7 wait=1500" "$GUEST/power.elf"
stuck_client gdb
wait "$PID"; RC=$?
kill "$CLIENT" 2>/dev/null; wait "$CLIENT" 2>/dev/null
is "$RC" 7 "gdb: a guest's exit code still comes back with a stuck client attached"
has "$(cat "$TMP/err")" 'gdb: the client left or stopped reading; detached' "gdb says it detached the client"

start monitor --append "code=9 wait=1500" "$GUEST/power.elf"
stuck_client monitor
wait "$PID"; RC=$?
kill "$CLIENT" 2>/dev/null; wait "$CLIENT" 2>/dev/null
is "$RC" 9 "monitor: a guest's exit code still comes back with a stuck client attached"

# A client that reads, but slowly and steadily: it asks for far more than it reads (gdb: 8 KiB
# memory reads; the monitor: x/4096gx), so slate always has replies to send it. A stop ends
# slate within 2 s all the same (it used to wait for the whole batch: 9-29 s).
trickle_client() { # KIND BYTES-PER-SECOND
    wait_until 60 test -S "$SOCK"
    perl -MIO::Socket::UNIX -MIO::Handle -MTime::HiRes=sleep -e '
        my ($path, $kind, $rate, $secs) = @ARGV;
        $SIG{PIPE} = "IGNORE";
        my $s; my $until = time + $secs;
        until ($s = IO::Socket::UNIX->new(Peer => $path)) { last if time > $until; sleep 0.05 }
        $s or die "connect: $!";
        $s->blocking(0);
        my $req = $kind eq "gdb" ? "\$m100000,1f00#" . sprintf("%02x", unpack("%8C*", "m100000,1f00")) : "x/4096gx 0x100000\n";
        my $pending = $req x 200; my $got = 0; my $told = 0;
        while (1) {
            my $n = syswrite($s, $pending); $pending = substr($pending, $n) if $n;
            $pending .= $req x 50 if length($pending) < length($req) * 50;
            my $r = sysread($s, my $buf, 4096);
            last if defined $r && $r == 0;
            $got += $r if $r;
            if (!$told && $got > 65536) { print "trickling\n"; STDOUT->flush; $told = 1 }
            sleep 4096 / $rate;
        }' "$SOCK" "$1" "$2" "$(scaled 10)" >"$TMP/client.out" 2>&1 &
    CLIENT=$!
    wait_until 30 grep -qs trickling "$TMP/client.out"
}
for case in "gdb 1000000" "gdb 500000" "monitor 250000"; do
    set -- $case
    start "$1" --append spin "$GUEST/debugme.elf"
    trickle_client "$1" "$2"
    terminate_slate
    if [ "$RC" = 143 ] && [ "$ms" -lt "$(scaled 2000)" ]; then
        pass "$1: with a client reading $2 bytes/s, SIGTERM ends slate with 143 in ${ms} ms"
    else
        fail "$1: with a client reading $2 bytes/s, SIGTERM ends slate with 143 in under 2 s" \
            "status $RC after $ms ms" "$(tail -3 "$TMP/err")" "$(cat "$TMP/client.out")"
    fi
done

# 5,000 packets with bad checksums: each gets '-', the warnings are rate-limited.
start gdb --append spin "$GUEST/debugme.elf"
wait_until 60 test -S "$SOCK"
perl -MIO::Socket::UNIX -e '
    my $s; for (1..$ARGV[1]) { last if $s = IO::Socket::UNIX->new(Peer => $ARGV[0]); select(undef, undef, undef, 0.05) }
    for (1..5000) { print $s "\$g#00" } my $buf; $s->blocking(0);
    select(undef, undef, undef, 0.5); while (sysread($s, $buf, 65536)) {} close $s;' "$SOCK" "$(scaled 200)"
kill -TERM "$PID"; wait "$PID"; RC=$?
lines=$(grep -c 'dropped a packet with a bad checksum' "$TMP/err")
if [ "$lines" -ge 1 ] && [ "$lines" -le 12 ]; then pass "5,000 bad gdb packets make $lines warning lines (rate-limited)"
else fail "5,000 bad gdb packets make a rate-limited handful of warnings" "got $lines lines"; fi
is "$RC" 143 "and slate runs on until SIGTERM"

# A reader that stops reading slate's stdout (a full pipe): the vCPU waiting to write counts as
# parked, so the monitor still pauses the machine, and SIGTERM still ends slate at once.
rm -f "$SOCK"
# (in a subshell with stderr closed, so the shell's "Terminated" notices stay out of the TAP output)
( exec 2>/dev/null
  { timeout -s KILL "$(scaled 60)" "$SLATE" --monitor "unix:$SOCK" --append spew "$GUEST/power.elf" 2>"$TMP/err"; echo $? >"$TMP/rc"; } \
    | { sleep "$(scaled 20)"; } ) &
wait_until 60 test -S "$SOCK"
sleep 1 # the 64 KiB pipe is full long before this
R=$(timeout "$(scaled 10)" perl tests/tools/monitor-client.pl "$SOCK" "stop" "info cpus" "cont")
has "$R" '^stopped$' "stdout is a full pipe: the monitor still pauses the machine"
SPID=$(pgrep -f -- "--append spew $GUEST/power.elf" | grep -v "^$$\$" | tail -1)
t0=$(date +%s%N)
kill -TERM "$SPID"
for _ in $(seq "$(scaled 200)"); do [ -s "$TMP/rc" ] && break; sleep 0.01; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$(cat "$TMP/rc" 2>/dev/null)" = 143 ] && [ "$ms" -lt "$(scaled 2000)" ]; then
    pass "stdout is a full pipe: SIGTERM ends slate with 143 in ${ms} ms"
else
    fail "stdout is a full pipe: SIGTERM ends slate with 143 in under 2 s" "status '$(cat "$TMP/rc" 2>/dev/null)' after $ms ms"
fi
{ pkill -f "sleep $(scaled 20)"; wait; } 2>/dev/null
