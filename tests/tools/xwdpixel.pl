#!/usr/bin/perl
# xwdpixel.pl FILE X Y...: prints "pixel X Y RRGGBB" from an xwd(1) dump of a 24/32-bit window.
use strict;
use warnings;
my ($file, @xy) = @ARGV;
open my $f, '<:raw', $file or die "xwdpixel: $file: $!\n";
local $/;
my $d = <$f>;
my @h = unpack('N25', $d);
my ($header_size, $width, $height, $byte_order, $bpp, $bytes_per_line, $ncolors) = @h[0, 4, 5, 7, 11, 12, 19];
die "xwdpixel: $file: only 32 bits per pixel\n" unless $bpp == 32;
my $base = $header_size + 12 * $ncolors;
print "size $width $height\n";
while (my ($x, $y) = splice(@xy, 0, 2)) {
    my $p = unpack($byte_order ? 'N' : 'V', substr($d, $base + $y * $bytes_per_line + $x * 4, 4));
    printf "pixel %d %d %06x\n", $x, $y, $p & 0xFFFFFF;
}
