#!/usr/bin/perl
# wsclient.pl PORT [OPTION...] ACTION: a minimal WebSocket client (RFC 6455) that speaks VNC over
# it, as noVNC does, to test --display web without a browser.
#   --origin URL   the Origin header to send (default: the page's own, http://HOST; none: no header)
#   --host NAME    the Host header (default 127.0.0.1:PORT)
# ACTION:
#   hello      prints the HTTP status line; after "101", the server's RFB version and the
#              security types it offers ("security 1" or "security 2")
#   stall MS   as hello, then (security None) ClientInit, a full framebuffer update request and a
#              key press ('a'), and then reads nothing for MS milliseconds; prints "stalled"
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use MIME::Base64;

my $port = shift @ARGV or die "usage: wsclient.pl PORT [--origin URL] [--host NAME] ACTION\n";
my ($origin, $host);
while (@ARGV && $ARGV[0] =~ /^--/) {
    my $opt = shift @ARGV;
    if ($opt eq '--origin') { $origin = shift @ARGV } elsif ($opt eq '--host') { $host = shift @ARGV }
    else { die "wsclient: unknown option $opt\n" }
}
my $action = shift @ARGV // 'hello';
$host //= "127.0.0.1:$port";
$origin //= "http://$host";
$SIG{ALRM} = sub { print "timeout\n"; exit 1 };
alarm 20;

my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5) or die "wsclient: connect: $!\n";
binmode $s;
my $key = encode_base64(join('', map { chr(int(rand(256))) } 1 .. 16), '');
print $s "GET /websockify HTTP/1.1\r\nHost: $host\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
    . ($origin eq 'none' ? "" : "Origin: $origin\r\n") . "\r\n";
my $head = '';
while ($head !~ /\r\n\r\n/) {
    my $n = sysread($s, my $buf, 1);
    last unless $n;
    $head .= $buf;
}
my ($status) = $head =~ /^(HTTP\/1\.\d \d+[^\r]*)/;
print(($status // 'no answer'), "\n");
exit 0 unless $status && $status =~ / 101 /;

# Frames: the server's are unmasked; a client's must be masked.
my $pending = '';
sub fill { my $n = sysread($s, my $buf, 65536); die "wsclient: the server closed\n" unless $n; $pending .= $buf }
sub frame {
    for (;;) {
        if (length($pending) >= 2) {
            my ($b0, $b1) = unpack('C2', $pending);
            my ($len, $at) = ($b1 & 0x7F, 2);
            if ($len == 126) { next unless length($pending) >= 4; $len = unpack('n', substr($pending, 2, 2)); $at = 4 }
            elsif ($len == 127) { next unless length($pending) >= 10; $len = unpack('Q>', substr($pending, 2, 8)); $at = 10 }
            if (length($pending) >= $at + $len) {
                my $data = substr($pending, $at, $len);
                $pending = substr($pending, $at + $len);
                return $data if ($b0 & 0x0F) == 2 || ($b0 & 0x0F) == 1 || ($b0 & 0x0F) == 0;
                next;
            }
        }
        fill();
    }
}
my $rfb = '';
sub rfb_read { my $want = shift; $rfb .= frame() while length($rfb) < $want; my $r = substr($rfb, 0, $want); $rfb = substr($rfb, $want); $r }
sub send_frame {
    my $data = shift;
    my $mask = pack('N', int(rand(2**32)));
    my $len = length $data;
    my $hdr = pack('C', 0x82) . ($len < 126 ? pack('C', 0x80 | $len) : pack('Cn', 0x80 | 126, $len));
    my @m = unpack('C4', $mask);
    my $i = 0;
    my $masked = join('', map { chr(ord($_) ^ $m[$i++ % 4]) } split //, $data);
    print $s $hdr . $mask . $masked;
}

my $version = rfb_read(12);
chomp(my $v = $version);
print "server $v\n";
send_frame("RFB 003.008\n");
my $count = unpack('C', rfb_read(1));
my @types = unpack('C*', rfb_read($count));
print "security @types\n";
exit 0 unless $action eq 'stall';
die "wsclient: stall needs security None\n" unless grep { $_ == 1 } @types;
send_frame(pack('C', 1));
my $result = unpack('N', rfb_read(4));
die "wsclient: security result $result\n" if $result;
send_frame(pack('C', 1)); # ClientInit: shared
my ($w, $h) = unpack('nn', rfb_read(4));
print "size $w $h\n";
send_frame(pack('CCnnnn', 3, 0, 0, 0, $w, $h));   # a full update, then never read it
send_frame(pack('CCnN', 4, 1, 0, 0x61) . pack('CCnN', 4, 0, 0, 0x61)); # 'a' down and up
alarm 0;
select(undef, undef, undef, ($ARGV[0] // 2000) / 1000);
print "stalled\n";
