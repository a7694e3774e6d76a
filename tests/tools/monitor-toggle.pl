# monitor-toggle.pl SOCKET SECONDS: connects to a slate monitor and sends "stop" and "cont" as
# fast as it can for SECONDS, reading every reply (a pause/resume storm).
use IO::Socket::UNIX; use IO::Select;
my $s; for (1..300) { last if $s = IO::Socket::UNIX->new(Peer => $ARGV[0]); select(undef,undef,undef,0.02) }
$s or die "connect: $!"; $s->blocking(0);
my $sel = IO::Select->new($s); my $end = time + $ARGV[1]; my $n = 0; my $buf;
while (time < $end) {
    syswrite($s, "stop\ncont\n") and $n++;
    while ($sel->can_read(0.001)) { my $r = sysread($s, $buf, 65536); exit 0 if defined $r && $r == 0; last unless $r }
}
print "toggles $n\n";
