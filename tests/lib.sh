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

plan() { echo "1..$1"; }

# need_kvm: skips the whole script, loudly, when /dev/kvm cannot be used.
need_kvm() {
    if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
        echo "SKIP: /dev/kvm is missing or not accessible; guest tests in $0 did not run" >&2
        echo "1..0 # SKIP /dev/kvm is missing or not accessible"
        exit 0
    fi
}

pass() { test_number=$((test_number + 1)); echo "ok $test_number - $1"; }
fail() {
    test_number=$((test_number + 1))
    echo "not ok $test_number - $1"
    shift
    for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done   # every line a TAP comment
}

# run_slate ARGS...: runs slate with a safety timeout; sets RC, OUT (stdout), ERR (stderr).
run_slate() {
    timeout -s KILL 60 "$SLATE" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    RC=$?
    OUT=$(cat "$TMP/out")
    ERR=$(cat "$TMP/err")
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
