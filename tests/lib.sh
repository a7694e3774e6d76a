# lib.sh - TAP helpers for slate's test scripts (sourced by tests/t/*.t, run through prove).
# Each script declares its plan, boots real guests with the real binary, and asserts on what a
# user observes: the exit status, the console output, stderr.
set -u
BUILD=${BUILD:-build}
SLATE=$BUILD/slate
GUEST=$BUILD/guest
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slate-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
test_number=0
codes=""
statuses=""

PLANNED=""
plan() { PLANNED=$1; echo "1..$1"; }

# Guest tests' time limits scale by SLATE_TIME_SCALE (e.g. 10 under emulation): scaled SECONDS.
scaled() { echo $(( $1 * ${SLATE_TIME_SCALE:-1} )); }

# wait_until SECONDS COMMAND...: runs COMMAND every 0.05 s until it succeeds, or until SECONDS
# (scaled) of wall time have passed (then 1). Counts time, not tries: under emulation every try
# (a fork, a grep) takes far longer than the sleep between them.
wait_until() {
    local end=$((SECONDS + $(scaled "$1")))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}

# tsc_steady: true when this host's kernel trusts its TSC (clocksource tsc); else KVM re-bases a
# vCPU's TSC as it moves between CPUs and the exit-free clock is not exact (docs/machine.md).
tsc_steady() { [ "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)" = tsc ]; }

kvm_usable() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# record_skip COUNT REASON [file|tests]: notes skipped tests (a whole script's, or some of them,
# each also reported as "ok N # SKIP") for the summary at the end of `make check`.
record_skip() {
    [ -n "${SLATE_SKIP_LOG:-}" ] &&
        printf '%s\t%s\t%s\t%s\n' "$(basename "$0")" "$1" "${3:-file}" "$2" >>"$SLATE_SKIP_LOG"
    return 0
}

# need_kvm [PLANNED]: skips the whole script, loudly, when /dev/kvm cannot be used.
need_kvm() {
    if ! kvm_usable; then
        local planned=${1:-}
        [ -n "$planned" ] || planned=$(sed -n 's/^plan \([0-9]*\).*/\1/p' "$0" | head -1)
        echo "SKIP: /dev/kvm is missing or not accessible; guest tests in $0 did not run" >&2
        echo "1..0 # SKIP /dev/kvm is missing or not accessible"
        record_skip "${planned:-0}" "/dev/kvm is missing or not accessible"
        exit 0
    fi
}

# skip_without_kvm LAST: in a script that ran its first tests without KVM, reports tests
# test_number+1..LAST as skipped (and exits) when /dev/kvm cannot be used.
skip_without_kvm() {
    kvm_usable && return 0
    skip_rest "$1" "/dev/kvm is missing or not accessible"
}

# skip_tests COUNT REASON: reports the next COUNT tests as skipped, loudly, and goes on.
skip_tests() {
    echo "SKIP: $2; $1 tests in $0 did not run" >&2
    local i
    for ((i = 0; i < $1; i++)); do echo "ok $((test_number += 1)) # SKIP $2"; done
    record_skip "$1" "$2" tests
}

# skip_rest PLANNED REASON: reports the rest of this script's tests as skipped, loudly, and ends it.
skip_rest() {
    skip_tests $(($1 - test_number)) "$2"
    exit 0
}

# on_amd_kvm: true when KVM is AMD's (the kvm_amd module), whose triple fault handling resets the
# vCPU before slate sees it. (Other KVMs on AMD hardware, such as PVM, do not.)
on_amd_kvm() { [ -d /sys/module/kvm_amd ]; }

# skip_here REASON: skips this whole script (e.g. under emulation, for a reason of the emulator).
skip_here() {
    # After the plan is out, the rest of its tests are reported skipped (a second plan line
    # would make the whole file fail).
    [ -n "$PLANNED" ] && skip_rest "$PLANNED" "$1"
    local planned
    planned=$(sed -n 's/^plan \([0-9]*\).*/\1/p' "$0" | head -1)
    echo "SKIP: $1; $0 did not run" >&2
    echo "1..0 # SKIP $1"
    record_skip "${planned:-0}" "$1"
    exit 0
}

# TODO_REASON, when set, marks the tests that follow as known failures (TAP "# TODO"): reported,
# not counted as failed. Used only where docs/testing.md lists the reason.
TODO_REASON=""
todo_suffix() { [ -n "$TODO_REASON" ] && echo " # TODO $TODO_REASON"; }
pass() { test_number=$((test_number + 1)); echo "ok $test_number - $1$(todo_suffix)"; }
fail() {
    test_number=$((test_number + 1))
    echo "not ok $test_number - $1$(todo_suffix)"
    shift
    for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done   # every line a TAP comment
}

# run_slate ARGS...: runs slate with a safety timeout; sets RC, OUT (stdout), ERR (stderr).
run_slate() {
    timeout -s KILL "$(scaled 60)" "$SLATE" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    RC=$?
    OUT=$(cat "$TMP/out")
    ERR=$(cat "$TMP/err")
}

# free_port [tcp|udp]: a port on 127.0.0.1 that nothing uses now, picked by the kernel: a fixed
# or pid-derived port may be held by another program on a shared machine.
free_port() {
    perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:0", Proto => $ARGV[0],
        $ARGV[0] eq "tcp" ? (Listen => 1) : ()) or die "free_port: $!\n"; print $s->sockport, "\n"' "${1:-tcp}"
}

# is GOT WANT DESCRIPTION
is() {
    if [ "$1" = "$2" ]; then pass "$3"; else fail "$3" "got:  '$1'" "want: '$2'"; fi
}

# has TEXT PATTERN DESCRIPTION: an extended regular expression matches a line of TEXT.
has() {
    if grep -Eq -- "$2" <<<"$1"; then pass "$3"; else fail "$3" "no line matches /$2/ in:" "$(head -c 2000 <<<"$1")"; fi
}

# lacks TEXT PATTERN DESCRIPTION
lacks() {
    if grep -Eq -- "$2" <<<"$1"; then fail "$3" "a line matches /$2/:" "$(grep -E -- "$2" <<<"$1" | head -5)"; else pass "$3"; fi
}

# count TEXT PATTERN: lines matching PATTERN.
count() { grep -Ec -- "$2" <<<"$1"; }
