#!/usr/bin/env bash
# --report PATH.json (read back with a JSON parser) and --on-crash pause.
. "$(dirname "$0")/../lib.sh"
plan 23
FAULTS=$GUEST/faults.elf
json() { # FILE PERL-EXPRESSION ($r is the decoded report)
    perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!\n"; my $r = decode_json(<$f>);
        my $v = eval $ARGV[1]; die $@ if $@; print defined $v ? $v : "undef", "\n"' "$1" "$2" 2>&1
}

# Without KVM: the options are checked first.
run_slate --report "$TMP/no/such/dir/r.json" "$GUEST/power.elf"
has "$RC $ERR" '^125 slate: --report .*no/such/dir/r.json' "an unwritable --report path is refused before the machine starts (125)"
run_slate --on-crash maybe "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --on-crash maybe: expected pause or exit" "a bad --on-crash is refused (125)"
run_slate --flight 5000 "$GUEST/power.elf"
has "$RC $ERR" "^125 slate: --flight 5000: expected a number of events from 0 to 4096" "a --flight past 4096 is refused (125)"
skip_without_kvm 23

run_slate --report "$TMP/crash.json" --append ist0 "$FAULTS"
is "$RC/$(json "$TMP/crash.json" '$r->{status}')" "126/126" "a crash: the report's status is slate's (126)"
is "$(json "$TMP/crash.json" '$r->{reason}')" "crash: triple fault (shutdown)" "its reason"
has "$(json "$TMP/crash.json" '$r->{why}')" 'its stack \(IST1\) is 0 -> triple fault$' "the explainer's verdict"
has "$(json "$TMP/crash.json" '$r->{cpus}[0]{where}')" '^kmain\+0x[0-9a-f]+ \(tests/guest/faults.c:[0-9]+\)$' "each CPU's RIP, named"
is "$(json "$TMP/crash.json" '$r->{cpus}[0]{rsp}')" "0x7000000000" "its registers, as 0x strings"
is "$(json "$TMP/crash.json" '$r->{cpus}[0]{state}')" "crashed (triple fault (shutdown))" "the crashed CPU is called crashed, not running"
has "$(json "$TMP/crash.json" 'join ",", map { $_->{kind} } @{$r->{events}}')" 'hypercall' "the flight recorder's last events"
run_slate --report "$TMP/many.json" --timeout 0.5 --append noeoi "$FAULTS" # a timer, ticking
is "$RC/$(json "$TMP/many.json" 'scalar @{$r->{events}}')" "124/32" "the last 32 events by default"
run_slate --flight 3 --report "$TMP/many3.json" "$GUEST/hypercalls.elf"
is "$(json "$TMP/many3.json" 'join ",", map { $_->{kind} } @{$r->{events}}')" "hypercall,hypercall,hypercall" \
    "--flight 3 keeps the last 3"
run_slate --flight 0 --report "$TMP/crash0.json" --append ist0 "$FAULTS"
is "$RC/$(json "$TMP/crash0.json" 'scalar @{$r->{events}}')/$(grep -c 'flight recorder' <<<"$ERR")" "126/0/0" \
    "--flight 0 turns the recorder off: no events, and the crash is still reported"

# Console output is one event per line, not one per byte: in the crash report and in the JSON.
run_slate --report "$TMP/e9.json" --append e9noidt "$FAULTS"
has "$ERR" '^    -[0-9.]+ ms cpu0 out 0xe9 \(debugcon\+0\) "fault ahead\\n" \(12 bytes\)$' \
    "the flight recorder folds bytes written to port 0xE9 into one event"
is "$(json "$TMP/e9.json" 'join "|", map { "$_->{text}/$_->{bytes}" } grep { $_->{text} } @{$r->{events}}')" "fault ahead
/12" "and --report's JSON has the text and its length"

run_slate --report "$TMP/hang.json" --timeout 0.5 --append spin "$FAULTS"
is "$(json "$TMP/hang.json" '"$r->{status} $r->{reason}"')" "124 --timeout expired" "a hang: status 124, and why"
has "$(json "$TMP/hang.json" '$r->{cpus}[0]{where}')" '^inner\+' "where it spun"

run_slate --report "$TMP/ok.json" "$GUEST/debugme.elf"
is "$RC/$(json "$TMP/ok.json" '"$r->{status} $r->{reason}"')" "0/0 the guest exited" "a clean exit is reported too"

# --on-crash pause: the crashed machine stays for the monitor; quit ends it with 126.
SOCK=$TMP/mon.sock
timeout -s KILL "$(scaled 60)" "$SLATE" --on-crash pause --monitor "unix:$SOCK" --append ist0 "$FAULTS" \
    >"$TMP/out" 2>"$TMP/err" </dev/null &
PID=$!
for _ in $(seq "$(scaled 200)"); do grep -q 'on-crash pause' "$TMP/err" && break; sleep 0.05; done
M=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "info registers" "info cpus" "info hang" "quit")
wait "$PID"
RC=$?
has "$(cat "$TMP/err")" '^slate: --on-crash pause: the machine is stopped for gdb and the monitor' "--on-crash pause keeps the machine and says so"
has "$M" ' rsp=0000007000000000$' "the monitor reads the crashed CPU's registers"
has "$M" '^\* cpu 0: crashed \(triple fault \(shutdown\)\), long mode' "info cpus calls the CPU crashed"
has "$M" '^  cpu 0: crashed \(triple fault \(shutdown\)\), interrupts' "and so does info hang"
is "$RC" 126 "quitting a crashed machine exits with 126"
