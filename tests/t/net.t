#!/usr/bin/env bash
# The network card against real peers: the host's own ping and UDP sockets over a TAP device in
# a network namespace this test creates (and always removes), libslirp's DHCP and a host port
# forward, two guests on one Unix datagram socket, and a hostile guest.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 36
NET=$GUEST/net.elf
NS=slate-test-$$
cleanup() { ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# ---- TAP in a namespace ----
if ip netns add "$NS" 2>/dev/null && ip netns exec "$NS" ip tuntap add dev tap0 mode tap &&
    ip netns exec "$NS" ip addr add 10.77.0.1/24 dev tap0 && ip netns exec "$NS" ip link set tap0 up &&
    ip netns exec "$NS" ip link set lo up; then
    ip netns exec "$NS" perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "10.77.0.1:9999", Proto => "udp") or die "$!";
        $| = 1; print "listening\n";
        my $r = ""; vec($r, fileno($s), 1) = 1;
        if (select($r, undef, undef, $ARGV[0])) { $s->recv(my $b, 100); print "host got: $b\n" }' "$(scaled 20)" >"$TMP/udp.out" 2>&1 &
    listener=$!
    wait_until 30 grep -q listening "$TMP/udp.out" # the guest says hello as soon as it boots
    : >"$TMP/tap.out" # emptied first: the wait below must not see the last run's lines
    ip netns exec "$NS" timeout -s KILL "$(scaled 60)" "$SLATE" --net tap:tap0 --append "ip=10.77.0.2 peer=10.77.0.1 mode=hello" \
        "$NET" >"$TMP/tap.out" 2>"$TMP/tap.err" </dev/null &
    guest=$!
    for _ in $(seq "$(scaled 100)"); do grep -q '^ready' "$TMP/tap.out" && break; sleep 0.05; done
    PING=$(ip netns exec "$NS" ping -c 100 -i 0.01 -W 2 -q 10.77.0.2 2>&1)
    has "$PING" '^100 packets transmitted, 100 received, 0% packet loss' "TAP: the host's ping gets 100 answers of 100 from the guest"
    ECHO=$(ip netns exec "$NS" perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(PeerAddr => "10.77.0.2:7", Proto => "udp") or die;
        $s->send("over the tap"); my $r = ""; vec($r, fileno($s), 1) = 1;
        if (select($r, undef, undef, $ARGV[0])) { $s->recv(my $b, 100); print "echo: $b\n" }
        $s->send("quit");' "$(scaled 5)")
    is "$ECHO" "echo: over the tap" "TAP: a host UDP datagram is echoed by the guest"
    wait "$listener"
    is "$(grep -v listening "$TMP/udp.out")" "host got: hello from slate" "TAP: the guest's UDP datagram reaches a host socket"
    wait "$guest"
    is "$?/$(cat "$TMP/tap.out")" "0/ready ip=10.77.0.2
quit received" "TAP: the guest ends when told to"
    ip netns del "$NS"
    if ip netns list | grep -q "^$NS"; then fail "the test's namespace is removed"; else pass "the test's namespace is removed"; fi
else
    echo "# SKIP: cannot create a network namespace with a TAP device (needs root): TAP tests did not run" >&2
    for t in "TAP ping" "TAP UDP echo" "TAP UDP to host" "TAP guest ends" "namespace removed"; do
        test_number=$((test_number + 1)); echo "ok $test_number # SKIP $t needs root for a network namespace"
    done
fi

# ---- user mode (libslirp) ----
port=$(free_port udp)
: >"$TMP/user.out" # emptied first: the wait below must not see the last run's lines
timeout -s KILL "$(scaled 60)" "$SLATE" --net "user,hostfwd=udp:127.0.0.1:$port-:7" --append "dhcp mode=serve" "$NET" \
    >"$TMP/user.out" 2>"$TMP/user.err" </dev/null &
guest=$!
for _ in $(seq "$(scaled 100)"); do grep -q '^ready' "$TMP/user.out" && break; sleep 0.05; done
ECHO=$(perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Proto => "udp") or die;
    $s->send("through slirp"); my $r = ""; vec($r, fileno($s), 1) = 1;
    if (select($r, undef, undef, 5)) { $s->recv(my $b, 100); print "echo: $b\n" }
    $s->send("quit");' "$port")
wait "$guest"
RC=$?
OUT=$(cat "$TMP/user.out")
has "$OUT" '^dhcp: got 10.0.2.15$' "user: the guest gets 10.0.2.15 by DHCP from libslirp"
is "$ECHO" "echo: through slirp" "user: a host UDP datagram through hostfwd is echoed by the guest"
is "$RC" 0 "user: the guest ends when told to"

# ---- two guests on a socket ----
rm -f "$TMP/lan.0" "$TMP/lan.1"
: >"$TMP/a.out" # emptied first: the wait below must not see the last run's lines
timeout -s KILL "$(scaled 60)" "$SLATE" --net "socket:$TMP/lan" --append "ip=10.9.0.2 mode=serve" "$NET" \
    >"$TMP/a.out" 2>&1 </dev/null &
a=$!
for _ in $(seq "$(scaled 100)"); do grep -q '^ready' "$TMP/a.out" && break; sleep 0.05; done
run_slate --net "socket:$TMP/lan" --append "ip=10.9.0.1 peer=10.9.0.2 mode=ping" "$NET"
wait "$a"
is "$RC/$OUT" "0/pings answered: 10" "socket: one guest pings another 10 times, all answered"
is "$?/$(cat "$TMP/a.out")" "0/ready ip=10.9.0.2
quit received" "socket: the other guest answered and ended when told to"
if [ -e "$TMP/lan.0" ] || [ -e "$TMP/lan.1" ]; then fail "socket files are removed at exit"; else pass "socket files are removed at exit"; fi

# ---- the host's loopback: unreachable from user networking unless loopback=on ----
# A listener on the host's loopback (TCP and UDP) and a guest that knocks on its port, at 10.0.2.2
# (libslirp's alias for 127.0.0.1) or straight at a loopback address through the gateway.
knock() { # LISTEN-ADDR GUEST-DESTINATION NET-OPTIONS: runs the guest; sets OUT, ERR and HEARD
    local port=$((20000 + ($$ + RANDOM) % 20000)) via=""
    [ "$2" = 10.0.2.2 ] || via=" via=10.0.2.2"
    perl -MIO::Socket::INET -MIO::Select -e '
        my ($addr, $port, $secs) = @ARGV; $| = 1;
        my $t = IO::Socket::INET->new(LocalAddr => "$addr:$port", Listen => 5, ReuseAddr => 1) or die "tcp: $!";
        my $u = IO::Socket::INET->new(LocalAddr => "$addr:$port", Proto => "udp") or die "udp: $!";
        print "listening\n";
        my $sel = IO::Select->new($t, $u); my $end = time + $secs;
        while (time < $end) {
            for my $s ($sel->can_read(0.1)) {
                if ($s == $t) { my $c = $t->accept; print "tcp connection\n"; close $c }
                else { $u->recv(my $b, 100); print "udp datagram: $b\n" }
            }
        }' "$1" "$port" "$(scaled 4)" >"$TMP/listener.out" 2>&1 &
    local listener=$!
    for _ in $(seq "$(scaled 100)"); do grep -q listening "$TMP/listener.out" && break; sleep 0.02; done
    run_slate --timeout "$(scaled 10)" --net "user$3" --append "dhcp peer=$2$via mode=knock port=$port" "$NET"
    wait "$listener"
    HEARD=$(cat "$TMP/listener.out")
}
# Linux sends 0.0.0.0 to its own 127.0.0.1; a listener on 127.1.2.3 hears only that address.
refusals=""
for target in 10.0.2.2:127.0.0.1 127.0.0.1:127.0.0.1 127.1.2.3:127.1.2.3 0.0.0.0:127.0.0.1; do
    dest=${target%%:*} listen=${target#*:}
    knock "$listen" "$dest" ""
    is "$RC/$(grep answer <<<"$OUT")" "0/tcp answer: reset" "user net: a TCP SYN to $dest is refused with a reset"
    lacks "$HEARD" '^(tcp connection|udp datagram)' "user net: the host's listener on $listen hears nothing from a guest knocking on $dest"
    refusals+=$ERR
    [ "$dest" = 10.0.2.2 ] && continue
    knock "$listen" "$dest" ",loopback=on"
    is "$RC/$(grep answer <<<"$OUT")" "0/tcp answer: syn-ack" "user net, loopback=on: the guest's SYN to $dest is answered by the host's listener"
    has "$HEARD" '^tcp connection' "user net, loopback=on: the listener on $listen accepts the guest's connection to $dest"
    has "$HEARD" '^udp datagram: knock$' "user net, loopback=on: and gets its UDP datagram"
done
has "$refusals" "a connection to port [0-9]+ refused: 0.0.0.0/8 and :: are the host itself" "the refusal is logged with its reason"

# ---- a hostile guest ----
run_slate --net user --append "mode=hostile" "$NET"
is "$RC/$OUT" "0/hostile ok" "bad lengths get BAD_LENGTH, a runaway index sets ERROR until RESET, a bogus rx.tail is survived"
has "$ERR" 'transmit slot 0 has a bad length 5' "bad lengths are reported"
has "$ERR" 'more than a ring ahead' "a runaway index is reported"

# ---- bad options ----
run_slate --net bogus "$NET"
has "$RC $ERR" '^125 slate: --net bogus: expected tap:IFNAME' "an unknown backend is refused"
run_slate --net "user,hostfwd=tcp:1234" "$NET"
has "$RC $ERR" "^125 slate: --net .*'tcp:1234' is not tcp\|udp" "a malformed hostfwd is refused"
run_slate --net "user,mac=01:00:00:00:00:01" "$NET"
has "$RC $ERR" "^125 slate: --net .*multicast" "a multicast MAC is refused"
run_slate --net tap:a-name-longer-than-15 --append "mode=serve" "$NET"
has "$RC $ERR" '^125 slate: --net tap:a-name-longer-than-15: expected tap:IFNAME \(up to 15' "a TAP name longer than Linux allows is refused"
