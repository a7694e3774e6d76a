#!/usr/bin/env bash
# Every C code block in README.md and docs/*.md is built, warning-free, so the pages cannot rot.
# Each block carries a marker comment just before it:
#   <!-- c: fragment -->          statements: compiled inside a function with the header and a
#                                 few helpers in scope (info, port, win, serial, rdtsc, outl)
#   <!-- c: fragment file -->     file-scope declarations, compiled as they are
#   <!-- c: file NAME -->         a file that a later "sh: build" block builds
#   <!-- c: kernel NAME [OPTIONS] => OUTPUT -->
#                                 a whole kernel: built as README says, booted with OPTIONS where
#                                 KVM is available, and its output must contain OUTPUT
#   <!-- file: NAME -->           the tutorial's files (tests/t/tutorial.t builds and runs those)
# and README's "sh: build NAME => OUTPUT" block is run as a user would type it.
# A C block without a marker fails the test. Building needs no KVM; booting does.
. "$(dirname "$0")/../lib.sh"
ROOT=$(pwd)
DIR=$TMP/docs
mkdir -p "$DIR/build"
ln -s "$ROOT/include" "$DIR/include"
ln -s "$ROOT/$SLATE" "$DIR/build/slate"

# Writes one line per block to $DIR/blocks: KIND|ARG|FILE (ARG "-" when empty), the code in
# $DIR/FILE.
perl -e '
    my $dir = shift; my $n = 0;
    open my $list, ">", "$dir/blocks" or die;
    for my $doc (@ARGV) {
        open my $in, "<", $doc or die "$doc: $!"; local $/; my $text = <$in>;
        while ($text =~ /(?:<!-- ([^\n]*?) -->\n)?```(c|sh)\n(.*?)```\n/sg) {
            my ($marker, $lang, $body) = ($1 // "", $2, $3);
            next if $lang eq "sh" && $marker !~ /^sh: build /;
            $n++;
            my $file = "block$n." . ($lang eq "c" ? "c" : "sh");
            open my $o, ">", "$dir/$file" or die; print $o $body; close $o;
            my ($kind, $arg) = $marker =~ /^(c: fragment file|c: fragment|c: file|c: kernel|sh: build|file:)\s*(.*)$/
                ? ($1, $2) : ("none", "$doc: a ```$lang block without a marker");
            $kind =~ s/[: ]+/-/g;
            print $list "$kind|" . ($arg eq "" ? "-" : $arg) . "|$file\n";
        }
    }' "$DIR" README.md docs/*.md
BLOCKS=$(grep -vc '^file-' "$DIR/blocks")
KERNELS=$(grep -c '^c-kernel' "$DIR/blocks")
BUILDS=$(grep -c '^sh-build' "$DIR/blocks")
TOTAL=$((BLOCKS + KERNELS + 2 * BUILDS))
plan "$TOTAL"

KFLAGS="-ffreestanding -mno-red-zone -mgeneral-regs-only -nostdlib -static -no-pie -Iinclude
    -Wl,-Ttext-segment=0x100000 -Wl,--build-id=none -Wl,-e,kmain"
WARN="-Wall -Wextra -Werror"
FRAG_WARN="$WARN -Wno-unused-variable -Wno-unused-but-set-variable -Wno-unused-parameter -Wno-unused-but-set-parameter"
PRELUDE='#include <slate/slate.h>
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (uint64_t)hi << 32 | lo; }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline void handle_frame(const uint8_t *frame, uint16_t length) { (void)frame; (void)length; }
void fragment(const struct slate_info *info, uint16_t port, volatile struct slate_net_window *win,
              const struct slate_device *serial);
void fragment(const struct slate_info *info, uint16_t port, volatile struct slate_net_window *win,
              const struct slate_device *serial)
{'

booted=""
while IFS='|' read -r kind arg file; do
    case $kind in
    none) fail "$arg" "$(head -3 "$DIR/$file")" ;;
    c-fragment)
        { echo "$PRELUDE"; cat "$DIR/$file"; echo "}"; } >"$DIR/frag.c"
        OUT=$(cd "$DIR" && gcc -std=gnu17 $FRAG_WARN -ffreestanding -mno-red-zone -Iinclude -c -o frag.o frag.c 2>&1)
        is "$?/$OUT" "0/" "fragment $(head -1 "$DIR/$file" | cut -c1-50): builds without a warning" ;;
    c-fragment-file)
        { echo "#include <slate/slate.h>"; cat "$DIR/$file"; } >"$DIR/frag.c"
        OUT=$(cd "$DIR" && gcc -std=gnu17 $FRAG_WARN -ffreestanding -mno-red-zone -Iinclude -c -o frag.o frag.c 2>&1)
        is "$?/$OUT" "0/" "declarations $(head -1 "$DIR/$file" | cut -c1-50): build without a warning" ;;
    c-file)
        cp "$DIR/$file" "$DIR/$arg"
        OUT=$(cd "$DIR" && gcc -std=gnu17 $WARN -ffreestanding -mno-red-zone -Iinclude -c -o /dev/null "$arg" 2>&1)
        is "$?/$OUT" "0/" "$arg: compiles with -Wall -Wextra -Werror" ;;
    c-kernel)
        name=${arg%% *}; rest=${arg#"$name"}; options=${rest%%=>*}; want=${arg##*=> }
        cp "$DIR/$file" "$DIR/$name"
        OUT=$(cd "$DIR" && gcc $WARN $KFLAGS -o "${name%.c}.elf" "$name" 2>&1)
        is "$?/$OUT" "0/" "$name: builds as a kernel without a warning"
        booted="$booted$name|$options|$want"$'\n' ;;
    sh-build)
        name=${arg%% *}; want=${arg##*=> }
        # The page's commands as typed in a checkout: gcc, then build/slate (checked without KVM).
        grep -v '^build/slate' "$DIR/$file" >"$DIR/build.sh"
        OUT=$(cd "$DIR" && bash build.sh 2>&1)
        is "$?/$OUT" "0/" "README: the commands build $name without a message"
        elf=$(sed -n 's/.* -o \([^ ]*\.elf\).*/\1/p' "$DIR/$file")
        run_slate --check -m 4M "$DIR/$elf"
        is "$RC" 0 "README: slate --check -m 4M accepts $elf (no segment past a small RAM)"
        boot_cmd=$(grep '^build/slate' "$DIR/$file")
        booted="$booted${elf}|cmd:$boot_cmd|$want"$'\n' ;;
    file-) ;;
    esac
done <"$DIR/blocks"

# Booting: needs KVM.
skip_without_kvm "$TOTAL"
while IFS='|' read -r name options want; do
    [ -n "$name" ] || continue
    if [[ $options == cmd:* ]]; then
        OUT=$(cd "$DIR" && timeout -s KILL "$(scaled 30)" bash -c "${options#cmd:}" 2>&1 </dev/null)
    else
        OUT=$(cd "$DIR" && timeout -s KILL "$(scaled 30)" build/slate --timeout "$(scaled 10)" $options "${name%.c}.elf" 2>&1 </dev/null)
    fi
    has "$OUT" "^$want\$" "$name boots and prints '$want'"
done <<<"$booted"
