#!/usr/bin/env bash
# The hang report: on --timeout, on SIGQUIT and on the monitor's `info hang`, what every CPU is
# doing (halted or running, interrupts, RIP named with its function and line, a backtrace, the
# local APIC), the diagnosis that applies, and where each CPU spends its time.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 25
FAULTS=$GUEST/faults.elf

run_slate --timeout 1 --append spin "$FAULTS"
is "$RC" 124 "a spinning kernel under --timeout: status 124"
has "$ERR" '^slate: hang report \(--timeout expired: the guest did not finish\):$' "--timeout prints a hang report"
line=$(grep -n 'spins++;' tests/guest/faults.c | head -1 | cut -d: -f1)
has "$ERR" "^  cpu 0: running, interrupts off, long mode, rip=0x[0-9a-f]+ inner\\+0x[0-9a-f]+ \\(tests/guest/faults.c:($((line - 1))|$line)\\)$" \
    "it names the function and line the CPU spins in"
has "$ERR" '^      #1 0x[0-9a-f]+ (outer|kmain)\+0x[0-9a-f]+ ' "and a frame-pointer backtrace of its callers"
has "$ERR" '^    cpu 0: inner (9[0-9]|100)%' "the samples say where the time goes"
lacks "$ERR" 'diagnosis: a fault loop' "a spin is not called a fault loop"

# A fault loop, without --trace exc: the samples show the #PF handler and the instruction it
# returns to, unchanged; also when CR2 moves with each fault.
for mode in pfloop pfwalk; do
    run_slate --timeout 1 --append "$mode" "$FAULTS"
    has "$ERR" "^    diagnosis: a fault loop: #PF at rip=0x[0-9a-f]+ kmain\\+0x[0-9a-f]+ \\(tests/guest/faults.c:[0-9]+\\) cr2=0x7[0-9a-f]+: [0-9]+ of 25 samples in its handler or at the faulting instruction \\(seen without --trace exc\\)" \
        "$mode: the hang report names the fault loop without --trace exc"
done

run_slate --timeout 0.5 --append clihlt "$FAULTS"
has "$ERR" '^  cpu 0: halted, interrupts off, ' "cli; hlt: halted with interrupts off"
has "$ERR" '^    diagnosis: halted with interrupts off \(cli; hlt\): only an NMI or INIT can wake it$' \
    "diagnosis: nothing but NMI or INIT can wake it"
has "$ERR" '^    cpu 0: halted 100%$' "it stays halted"

run_slate --timeout 0.5 --smp 3 --append halt "$GUEST/smp.elf"
has "$ERR" '^    diagnosis: nothing can wake it: its APIC timer is masked and no device interrupt is aimed at it$' \
    "a CPU halted with interrupts on but no timer and no device line aimed at it"
has "$ERR" "^  cpu [0-9]+: halted, .*\\(slate's park stub: the CPU's entry function returned\\)$" \
    "a CPU whose entry returned is named as parked by slate"

run_slate --timeout 1 --append noeoi "$FAULTS"
if grep -q '^vector 0x40 in service$' <<<"$OUT"; then
    has "$ERR" "^    diagnosis: vector 0x40 is in service and was never EOI'd" "a timer interrupt never EOI'd is named"
    has "$ERR" "^  diagnosis: timer0's IRQ_STATUS is 0x1: its interrupt \(vector 0x40\) is held back on cpu 0 behind vector 0x40, in service and never EOI'd$" \
        "the timer's next interrupt, pending behind it, is said to be held back, not blamed on the guest's acknowledge"
else
    # PVM's local APIC leaves no vector in service even without an EOI (the guest reads its own
    # ISR and says so): the report must not claim one.
    lacks "$ERR" 'in service and was never' "this local APIC keeps no vector in service without an EOI; the report does not invent one"
    lacks "$ERR" 'is held back' "and no device's interrupt is said to be held back"
fi

lacks "$ERR" 'never acknowledged' "a device whose interrupt status the guest acknowledges is not blamed"
run_slate --timeout 1 --append noack "$FAULTS"
has "$ERR" "^  diagnosis: timer0's IRQ_STATUS is 0x1, never acknowledged: it sends no new interrupt until the guest writes those bits back$" \
    "a timer interrupt whose status the handler never acknowledges is named"

# SIGQUIT: a report, and the machine runs on.
: >"$TMP/out"
timeout -s KILL "$(scaled 60)" "$SLATE" --append spin "$FAULTS" >"$TMP/out" 2>"$TMP/err" </dev/null &
PID=$!
for _ in $(seq "$(scaled 200)"); do grep -q '^hanging' "$TMP/out" && break; sleep 0.05; done
kill -QUIT "$(pgrep -P "$PID" || echo "$PID")"
for _ in $(seq "$(scaled 200)"); do grep -q 'where the CPUs spent' "$TMP/err" && break; sleep 0.05; done
if kill -0 "$PID" 2>/dev/null; then ALIVE=yes; else ALIVE=no; fi
kill -TERM "$(pgrep -P "$PID" || echo "$PID")"
wait "$PID"
RC=$?
has "$(cat "$TMP/err")" '^slate: hang report \(SIGQUIT\):$' "SIGQUIT prints a hang report"
is "$ALIVE/$RC" "yes/143" "and the machine runs on until it is stopped"

# The monitor: info hang, and xp/N at physical addresses.
SOCK=$TMP/mon.sock
timeout -s KILL "$(scaled 60)" "$SLATE" --monitor "unix:$SOCK" --append spin "$FAULTS" >"$TMP/out" 2>"$TMP/err" </dev/null &
PID=$!
for _ in $(seq "$(scaled 200)"); do grep -q '^hanging' "$TMP/out" && break; sleep 0.05; done
M=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "info hang" "xp/4x 0xc0000000" "xp/2g 0x7000000000" "xp/1i 0" \
    "info tlb 0x7000000000" "info tlb 0x100000" "quit")
wait "$PID"
has "$M" '^  cpu 0: running, interrupts off, long mode, rip=0x[0-9a-f]+ inner\+' "info hang: the monitor shows the report"
has "$M" '^00000000c0000000: 54414c53 48434d45 00000001 [0-9a-f]{8}$' "xp/4x reads the info block at its physical address"
has "$M" '^error: 0x7000000000 is not memory$' "xp past the end of RAM is an error"
has "$M" '^error: usage: xp/NF ADDR with F one of x g b' "xp has no instruction format"
has "$M" '^  page walk for address 0x7000000000: PML4E\[0\]=0x[0-9a-f]+ PDPTE\[448\]=0 NOT PRESENT$' "info tlb: where the walk of an unmapped address stops"
has "$M" '^  page walk for address 0x100000: .* -> 0x100000$' "info tlb: a mapped address, to its physical page"
