#!/usr/bin/env bash
# The gdb stub, driven by the real gdb in batch mode against kernels built with -g.
. "$(dirname "$0")/../lib.sh"
need_kvm
if ! command -v gdb >/dev/null; then
    echo "1..0 # SKIP gdb is not installed (make deps installs it)"
    exit 0
fi
plan 35
[ -n "${SLATE_UNDER_EMULATION:-}" ] &&
    skip_here "under emulation gdb's single steps and software watchpoints take over 10 minutes per session (see docs/testing.md)"
DEBUGME=$GUEST/debugme.elf
SOCK=$TMP/gdb.sock

. "$(dirname "$0")/../gdb.sh"

start_slate --gdb-wait --append run "$DEBUGME"
gdb_batch "$DEBUGME" "info threads" "break add" "continue" "bt" "print a" "print b" "next" "next" \
    "print sum" "delete" "watch counter" "continue" "continue" "delete" "x/4xb &counter" \
    "set var counter = 1000" "print counter" "continue"
finish_slate
has "$GDB" '^\* 1 +Thread 1 \(CPU 0\) +kmain' "--gdb-wait: gdb attaches before the first instruction, at kmain"
has "$GDB" '^Breakpoint 1, add \(a=a@entry=0, b=b@entry=0\) at tests/guest/debugme.c:[0-9]+' "break on a function by name, continue, hit"
has "$GDB" '^#1 +0x[0-9a-f]+ in kmain .* at tests/guest/debugme.c:[0-9]+' "the backtrace reaches kmain"
has "$GDB" '^\$1 = 0$' "print an argument"
has "$GDB" '^16[[:space:]]+return sum;' "next steps by source line"
has "$GDB" 'Old value = 0' "a watchpoint on a global is hit ..."
has "$GDB" 'New value = 3' "... when its value changes (add(1, 2))"
has "$GDB" 'New value = 9' "... and again at the next change"
has "$GDB" '^0x[0-9a-f]+ <counter>:[[:space:]]+0x09[[:space:]]+0x00' "read memory (x/4xb)"
has "$GDB" '^\$[0-9]+ = 1000$' "write memory (set var)"
has "$GDB" 'received signal SIGTRAP' "the break hypercall stops in the debugger"
is "$RC" 0 "the guest runs to its end after gdb detaches"
has "$OUT" '^debugger was attached$' "the break hypercall returns 1 with a debugger attached"
has "$OUT" '^counter 1[0-9][0-9][0-9]$' "the guest saw the value gdb wrote"

run_slate --append run "$DEBUGME"
has "$RC $OUT" '^0 no debugger' "without a debugger the break hypercall is ignored"

start_slate --smp 2 --append smp "$DEBUGME"
(sleep 1.5; pkill -INT -f "^gdb -batch -nx $DEBUGME -ex target remote $SOCK") &
gdb_batch "$DEBUGME" "continue" "info threads" "thread 2" "bt 1" "kill"
finish_slate
has "$GDB" 'received signal SIGINT' "Ctrl-C (interrupt) stops a spinning guest"
has "$GDB" '^\* 1 +Thread 1 \(CPU 0\) +.*spin \(\)' "two vCPUs: thread 1 is CPU 0, in spin()"
has "$GDB" '^ +2 +Thread 2 \(CPU 1\) .*ap_spin' "two vCPUs: thread 2 is CPU 1, in ap_spin()"
is "$RC" 137 "kill from gdb stops slate (137)"

start_slate --gdb-wait "$GUEST/real_hello.bin"
gdb_batch "" "print \$pc" "break *0x9" "continue" "print \$pc" "print/x \$ebx" "stepi" "print \$pc" "delete" "continue"
finish_slate
has "$GDB" '^\$1 = \(void \(\*\)\(\)\) 0x0$' "real mode: gdb attaches at 0000:0000, before the first instruction"
has "$GDB" '^Breakpoint 1, 0x0+9 in' "real mode: a breakpoint in 16-bit code is hit"
has "$GDB" '^\$[0-9]+ = 0xc0000000$' "real mode: EBX holds the info block address"
has "$GDB" '^\$[0-9]+ = \(void \(\*\)\(\)\) 0xa$' "real mode: stepi moves one instruction"
is "$RC/$OUT" "7/real mode: hello from 0000:0000" "the real-mode guest then runs to its end"

# A breakpoint on the entry point, hit at the first instruction of the next boot: the guest resets
# itself, gdb stays attached, and the breakpoint is put back in the new machine.
start_slate --gdb-wait --append reset "$GUEST/power.elf"
gdb_batch "$GUEST/power.elf" "break kmain" "continue" "continue" "print \$pc == kmain" "kill"
finish_slate
has "$GDB" '^Breakpoint 1, kmain ' "a breakpoint on the entry point is hit"
if [ "$(grep -c '^Breakpoint 1, kmain ' <<<"$GDB")" = 2 ]; then pass "and hit again at the first instruction after a guest reset"; else fail "hit again after a reset" "$GDB"; fi

# A hostile client: bad checksums, oversized and malformed packets get '-' or an error reply.
start_slate --append spin "$DEBUGME"
replies=$(perl -MIO::Socket::UNIX -e '
    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
    sub pkt { my $d = shift; my $sum = 0; $sum += ord for split //, $d; sprintf("\$%s#%02x", $d, $sum % 256) }
    my @send = ("\$g#00", pkt("m0,ffffffffffffffffffff"), pkt("m100000,zz"), pkt("Z0,1"), pkt("Hgfff"),
                pkt("M100000,4:zz"), "\$" . ("A" x 20000) . "#00", pkt("p999"));
    for my $p (@send) { print $s $p; select(undef, undef, undef, 0.1); }
    $s->blocking(0); my $all = ""; my $buf;
    while (defined(sysread($s, $buf, 65536)) && length $buf) { $all .= $buf }
    print $all;' "$SOCK")
kill -TERM "$PID"
finish_slate
has "$replies" '^-' "a bad checksum gets '-'"
if [ "$(grep -o 'E01' <<<"$replies" | wc -l)" -ge 5 ]; then pass "malformed packets get error replies"; else fail "malformed packets get error replies" "replies: $replies"; fi
is "$RC" 143 "slate survives the hostile client and stops cleanly on SIGTERM"

run_slate --gdb 127.0.0.1:99999 "$DEBUGME"
has "$RC $ERR" "^125 slate: --gdb 127.0.0.1:99999: '99999' is not a port number" "a bad --gdb address is refused (125)"

# A single step over an instruction that exits to slate (here a console-write hypercall's `out`)
# stops right after it. It used to let the CPU run on, and gdb waited for ever.
start_slate --gdb-wait --append run "$DEBUGME"
gdb_batch "$DEBUGME" "break add" "continue" "delete" "set \$skip_outs = 1" "source tests/tools/step-to-out.py" \
    "continue" "continue"
read -r addr len <<<"$(sed -n 's/^at out 0x\([0-9a-f]*\) length \([0-9]*\)$/\1 \2/p' <<<"$GDB")"
after=$(sed -n 's/^after out 0x\([0-9a-f]*\)$/\1/p' <<<"$GDB")
if [ -n "$addr" ] && [ -n "$after" ] && [ "$((16#$after))" = "$((16#$addr + len))" ]; then
    pass "stepi over a hypercall's out stops at the next instruction (0x$after)"
else fail "stepi over a hypercall's out stops at the next instruction" "$GDB"; fi
finish_slate
is "$RC/$OUT" "0/debugger was attached
counter 135" "and the guest then runs on to its end"

# --on-crash pause with gdb attached and the guest running: the crash is a stop gdb hears
# (SIGSEGV), and the machine stays for it to look.
start_slate --gdb-wait --on-crash pause --append crash "$DEBUGME"
gdb_batch "$DEBUGME" "continue" "bt" "kill"
finish_slate
has "$GDB" "^Program received signal SIGSEGV" "a crash under --on-crash pause stops a continuing gdb with SIGSEGV ..."
has "$GDB" "^#1 +0x[0-9a-f]+ in crash_caller \(\) at tests/guest/debugme.c:[0-9]+" "... and gdb looks at the crashed machine (bt)"
is "$RC" 126 "killed from gdb, the crashed machine ends with 126"
