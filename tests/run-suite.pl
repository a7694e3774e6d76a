#!/usr/bin/perl
# run-suite.pl TEST...: runs slate's tests through TAP::Harness (prove's engine: cmocka unit
# binaries and tests/t/*.t scripts), then ends with what did not run and why, so a green run on a
# machine without KVM cannot pass for a full one. Skipped scripts record themselves in
# $SLATE_SKIP_LOG (tests/lib.sh). Exits non-zero when any test failed.
use strict;
use warnings;
use File::Temp qw(tempfile);
use TAP::Harness;

my (undef, $skip_log) = tempfile('slate-skips.XXXXXX', TMPDIR => 1, UNLINK => 1);
$ENV{SLATE_SKIP_LOG} = $skip_log;
$ENV{CMOCKA_MESSAGE_OUTPUT} = 'TAP';

my $harness = TAP::Harness->new({
    failures => 1,
    exec => sub {
        my (undef, $file) = @_;
        return $file =~ /\.t$/ ? ['bash', $file] : [$file];
    },
});
my $agg = $harness->runtests(@ARGV);

my (%files, %tests);
my $whole = 0; # tests of scripts skipped whole: they planned 0, so only the log counts them
open my $log, '<', $skip_log or die "$skip_log: $!";
while (<$log>) {
    chomp;
    my ($file, $count, $kind, $reason) = split /\t/, $_, 4;
    $files{$reason}{$file} = 1;
    $tests{$reason} += $count;
    $whole += $count if $kind eq 'file';
}
print "\n";
if (!%files) {
    print "check: nothing was skipped: every guest test ran on KVM",
        ($ENV{SLATE_UNDER_EMULATION} ? " (inside a VM under emulation)" : ""), ".\n";
}
for my $reason (sort keys %files) {
    my $n = keys %{$files{$reason}};
    print "SKIPPED: $tests{$reason} tests in $n test file", ($n == 1 ? "" : "s"), " did not run: $reason.\n";
}
print "Without /dev/kvm, `make check-vm` runs the guest tests under emulation (docs/testing.md).\n"
    if grep { /kvm/ } keys %files;
# "ok N # SKIP" lines count as passed in the aggregate: they are moved to skipped here.
my $inline = scalar $agg->skipped;
my $passed = scalar($agg->passed) - $inline;
my $failed = scalar($agg->failed) + scalar($agg->parse_errors);
printf "check: %d passed, %d failed, %d skipped\n", $passed, $failed, $whole + $inline;
exit($agg->has_errors ? 1 : 0);
