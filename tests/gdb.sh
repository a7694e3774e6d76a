# gdb.sh - what the tests that drive the real gdb share (sourced after lib.sh, with SOCK set):
# slate with its gdb stub on the unix socket $SOCK, and gdb in batch mode against it. Each waits
# at most GDB_TIMEOUT seconds (scaled; default 60).

# start_slate ARGS...: slate in the background with its gdb stub on $SOCK; sets PID.
start_slate() {
    rm -f "$SOCK"
    timeout -s KILL "$(scaled "${GDB_TIMEOUT:-60}")" "$SLATE" --gdb "unix:$SOCK" "$@" >"$TMP/slate.out" \
        2>"$TMP/slate.err" </dev/null &
    PID=$!
    for _ in $(seq "$(scaled 100)"); do [ -S "$SOCK" ] && return; sleep 0.02; done
}
# finish_slate: waits for slate; sets RC, OUT, ERR.
finish_slate() {
    wait "$PID"
    RC=$?
    OUT=$(cat "$TMP/slate.out")
    ERR=$(cat "$TMP/slate.err")
}
# gdb_batch FILE COMMANDS...: the real gdb; sets GDB (its output).
gdb_batch() {
    local file=$1 args=()
    shift
    for c in "$@"; do args+=(-ex "$c"); done
    GDB=$(timeout -s KILL "$(scaled "${GDB_TIMEOUT:-60}")" gdb -batch -nx ${file:+"$file"} -ex "target remote $SOCK" \
        "${args[@]}" 2>&1)
}
