#!/usr/bin/env bash
# docs/tutorial.md and docs/testing.md cannot rot: their files are pulled out of the pages, built
# with the Makefile the tutorial shows, and booted; each "console" block's commands are run and must
# print what the page says.
. "$(dirname "$0")/../lib.sh"
plan 11
DIR=$TMP/mykernel
mkdir -p "$DIR"
ROOT=$(pwd)

# <!-- file: NAME --> before a fenced block: the block is the file NAME.
# <!-- run: NAME --> before a console block: "$ " lines are commands, the rest their output.
extract() {
    perl -e '
    my ($doc, $dir) = @ARGV; open my $in, "<", $doc or die; local $/; my $text = <$in>;
    while ($text =~ /<!-- (file|run): (\S+) -->\n```\w*\n(.*?)```\n/sg) {
        my ($kind, $name, $body) = ($1, $2, $3);
        if ($kind eq "file") { open my $o, ">", "$dir/$name" or die; print $o $body; next }
        my ($script, $want) = ("", "");
        for (split /\n/, $body) {
            if (s/^\$ //) { $script .= /^make / ? "$_ >/dev/null\n" : "$_\n" } else { $want .= "$_\n" }
        }
        open my $s, ">", "$dir/$name.sh" or die; print $s $script;
        open my $w, ">", "$dir/$name.want" or die; print $w $want;
    }' "$1" "$DIR"
}
for DOC in docs/tutorial.md docs/testing.md; do extract "$DOC"; done
is "$(cd "$DIR" && ls | tr '\n' ' ')" "Makefile ktest.c ktest.sh ktest.want link.ld step1.c step1.sh step1.want step2.c step2.sh step2.want step3.c step3.sh step3.want " \
    "the pages hold the Makefile, the linker script, four kernels and four sessions"
# A clean make: not the flags of the make that runs this test (check-asan passes its own).
BUILT=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$DIR" SLATE="$ROOT" all ktest.elf 2>&1)
is "$?" 0 "the tutorial's Makefile builds the three steps and testing.md's kernel with the host gcc"
lacks "$BUILT" 'warning' "without a warning"
skip_without_kvm 11   # the rest boots the kernels

for step in step1 step2 step3 ktest; do
    # ~/slate/build/slate in the page is this build's slate.
    sed -i "s|~/slate/build/slate|timeout -s KILL $(scaled 30) $ROOT/$SLATE|g" "$DIR/$step.sh"
    GOT=$(cd "$DIR" && bash "$step.sh" 2>&1 </dev/null | tr -d '\r')
    is "$GOT" "$(cat "$DIR/$step.want")" "$step: the session on the page is what happens"
done

# Step 3 from a VNC viewer's keyboard instead of the terminal.
PORT=$(free_port)
: >"$TMP/out" # emptied first: the wait below must not see the last run's lines
timeout -s KILL "$(scaled 30)" "$SLATE" --display vnc --vnc "127.0.0.1:$PORT" "$DIR/step3.elf" </dev/null >"$TMP/out" 2>"$TMP/vncerr" &
PID=$!
for _ in $(seq "$(scaled 200)"); do grep -q 'Press a key' "$TMP/out" && break; sleep 0.05; done
"$BUILD/tools/vnctool" vnc "127.0.0.1:$PORT" key 0x6a >/dev/null
wait "$PID"
RC=$?
is "$RC" 0 "step3 with --display vnc: a key from a VNC client ends it"
[ "$RC" = 0 ] || sed 's/^/# stderr: /' "$TMP/vncerr"
has "$(tr -d '\r' <"$TMP/out")" "^You pressed 'j'\.$" "and it names the key"

run_slate --gdb-wait --gdb "unix:$TMP/gdb.sock" --timeout 20 "$DIR/step2.elf" &
sleep 0.3
G=$(timeout "$(scaled 30)" gdb -q -batch -nx "$DIR/step2.elf" -ex "target remote $TMP/gdb.sock" -ex "break on_timer" \
    -ex continue -ex "print ticks" -ex kill 2>&1)
wait
has "$G" '^\$1 = 0$' "the tutorial's kernel can be debugged with gdb: stopped in on_timer before the first tick counts"

P=$(cd "$DIR" && prove --exec "$ROOT/$SLATE -m 64M --timeout 10" ktest.elf 2>&1)
has "$P" '^All tests successful' "testing.md: prove runs the test kernel through slate"
