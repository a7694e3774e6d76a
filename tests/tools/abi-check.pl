#!/usr/bin/perl
# abi-check.pl MACHINE.md: writes a C program that checks docs/machine.md against
# include/slate/slate.h and prints the result as TAP. It checks every SLATE_* name the page
# mentions is defined, every address and number the page pairs with a name, every register offset
# in the device sections, and the byte offsets of the info block's header and device entry.
use strict;
use warnings;

my ($doc) = @ARGV;
open my $in, '<', $doc or die "abi-check: $doc: $!\n";
my (@checks, %named, @prefixes, $section, $table_index);
my @structs = ('slate_info', 'slate_device');
my %section_prefixes = (
    'Serial' => ['SERIAL'], 'Timer' => ['TIMER'], 'Network' => ['NET'],
    'Display' => ['DISPLAY', 'KEYBOARD', 'POINTER'], 'Block' => ['BLOCK'], 'Power' => ['POWER'],
);

# A register name in the current section: the first prefix that defines it.
sub register_check {
    my ($name, $value, $where) = @_;
    return unless @prefixes;
    my @names = map { "SLATE_${_}_$name" } @prefixes;
    my $code = "#if " . join("\n#elif ", map { "defined($_)\n    check($_ == $value, \"$where: $_ is $value\");" } @names)
        . "\n#else\n    check(0, \"$where: no SLATE_*_$name in slate.h\");\n#endif\n";
    push @checks, $code;
}

my $prev_offset = -1;
while (my $line = <$in>) {
    if ($line =~ /^## (\w+)/) {
        $section = $1;
        @prefixes = @{ $section_prefixes{$section} // [] };
        $table_index = -1;
        $prev_offset = -1;
    }
    $named{$1} = 1 while $line =~ /\b(SLATE_[A-Z0-9_]+)/g;
    # `0xADDR` ... (`SLATE_NAME`) in the memory map; `0x08` `SLATE_SEL_...`; `N` `SLATE_HC_...`
    if ($line =~ /^\| `(0x[0-9A-Fa-f]+)`[^|]*\|[^|]*\(`(SLATE_[A-Z0-9_]+)`\)/ ||
        $line =~ /^\| `?(0x[0-9A-Fa-f]+|\d+)`? `(SLATE_[A-Z0-9_]+)` \|/) {
        push @checks, "    check($2 == $1, \"$2 is $1\");\n";
        next;
    }
    # the info block's tables: | OFFSET | `field`... |
    if ($line =~ /^\| (\d+) \| `(\w+)/) {
        my ($offset, $field) = ($1, $2);
        $table_index++ if $offset == 0;
        my $struct = $structs[$table_index] or next;
        push @checks, "    check(offsetof(struct $struct, $field) == $offset, \"struct $struct: $field at byte $offset\");\n";
        next;
    }
    # device registers: | `0xNN` | `NAME` | or | `0xNN`, `0xMM` | `A`, `B` |
    if ($line =~ /^\| `0x([0-9A-Fa-f]+)`(?:, `0x([0-9A-Fa-f]+)`)? \| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/) {
        my ($off1, $off2, $name1, $name2) = (hex $1, defined $2 ? hex $2 : undef, $3, $4);
        if ($name1 eq 'IRQ_VECTOR') {
            register_check('IRQ_REG', $off1, "$section section");
        } else {
            register_check($name1, $off1, "$section section");
            register_check($name2, $off2, "$section section") if defined $name2 && defined $off2;
        }
        next;
    }
    # registers in prose: `NAME` (`0xNN`
    while ($line =~ /`([A-Z][A-Z_]*)` \(`0x([0-9A-Fa-f]+)`/g) {
        register_check($1, hex $2, "$section section, prose");
    }
}

print "#include <stddef.h>\n#include <stdio.h>\n#include \"slate/slate.h\"\n";
print "static int n, failed;\n";
print "static void check(int ok, const char *what) { printf(\"%s %d - %s\\n\", ok ? \"ok\" : \"not ok\", ++n, what); failed += !ok; }\n";
print "int main(void)\n{\n";
for my $name (sort keys %named) {
    print "#ifdef $name\n    check(1, \"$name is defined\");\n#else\n    check(0, \"$name is named in machine.md but not defined in slate.h\");\n#endif\n";
}
print @checks;
print "    printf(\"1..%d\\n\", n);\n    return failed != 0;\n}\n";
