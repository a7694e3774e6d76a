# monitor-client.pl SOCKET COMMAND...: sends each command to a slate monitor on a Unix socket and
# prints "### COMMAND" and the reply, so test scripts can check replies line by line.
use strict;
use warnings;
$| = 1;
use IO::Socket::UNIX;
my $s;
for (1..400) { $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) and last; select(undef,undef,undef,0.05) }
die "connect: $!" unless $s;
sub cmd { my $c = shift; print $s "$c\n"; my $out = ""; my $buf;
  while (1) { my $n = sysread($s, $buf, 65536); last unless $n; $out .= $buf; last if $out =~ /\(slate\) $/ }
  $out =~ s/\(slate\) $//; print "### $c\n$out"; }
my $greeting = ""; my $b; while (sysread($s, $b, 4096)) { $greeting .= $b; last if $greeting =~ /\(slate\) $/ }
cmd($_) for @ARGV[1..$#ARGV];
