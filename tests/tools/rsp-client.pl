# rsp-client.pl SOCKET ACTION...: speaks the GDB remote protocol to slate's stub over a Unix
# socket, as gdb does, and prints "PACKET => REPLY" for each packet sent. An ACTION is a packet
# body ("?", "Z2,1000,8", "c"), "say:TEXT" (prints TEXT, for the test to wait on), or
# "until:PATH" (waits until PATH exists). A packet whose reply does not come within 5 s prints
# "PACKET => TIMEOUT".
use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
$| = 1;
my $s;
for (1..400) { $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) and last; select(undef, undef, undef, 0.05) }
die "connect: $!" unless $s;
my $sel = IO::Select->new($s);
my $buf = "";

sub packet {
    my $body = shift;
    my $sum = 0;
    $sum += ord($_) for split //, $body;
    return sprintf('$%s#%02x', $body, $sum % 256);
}

# The next packet from the stub (acks skipped), or undef after 5 s.
sub reply {
    my $end = time + 5;
    while (1) {
        $buf =~ s/^\++//;
        if ($buf =~ s/^\$([^#]*)#[0-9a-fA-F]{2}//) {
            print $s "+";
            return $1;
        }
        my $left = $end - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, my $chunk, 65536);
        return undef unless $n;
        $buf .= $chunk;
    }
}

for my $action (@ARGV[1 .. $#ARGV]) {
    if ($action =~ /^say:(.*)/) { print "$1\n"; next }
    if ($action =~ /^until:(.*)/) { select(undef, undef, undef, 0.02) until -e $1; next }
    print $s packet($action);
    my $r = reply();
    print "$action => ", (defined $r ? $r : "TIMEOUT"), "\n";
}
