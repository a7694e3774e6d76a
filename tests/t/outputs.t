#!/usr/bin/env bash
# Every file slate writes is a new file of its own renamed into place: a hard link planted at an
# output's name (or in --dump-dir) is replaced, never written through, and the monitor's dumps
# replace an existing file only when told (force).
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 13
POWER=$GUEST/power.elf
PROFILE=$GUEST/profile.elf

# hardlinked NAME: a file outside that NAME (in $TMP/files/) is a hard link to.
mkdir -p "$TMP/files" "$TMP/outside"
hardlinked() { echo precious >"$TMP/outside/$1"; ln "$TMP/outside/$1" "$TMP/files/$1"; }
hardlinked serial.log
hardlinked trace.log
hardlinked prof.folded
hardlinked report.json
run_slate --serial "file:$TMP/files/serial.log" --trace io --trace-file "$TMP/files/trace.log" \
    --profile "$TMP/files/prof.folded" --report "$TMP/files/report.json" --append "code=3" "$POWER"
is "$RC" 3 "the guest runs with every output at a hard link's name"
for f in serial.log trace.log prof.folded report.json; do
    is "$(cat "$TMP/outside/$f")" precious "$f: the file behind the hard link is untouched"
done
has "$(cat "$TMP/files/serial.log")" '^boot$' "the serial output is at its name"
has "$(cat "$TMP/files/report.json")" '"status": 3' "and so is the report"
if ls -a "$TMP/files" | grep -q '\.part$'; then fail "no temporary file is left behind" "$(ls -a "$TMP/files")"
else pass "no temporary file is left behind"; fi

# The monitor's profile dump: only in --dump-dir, never over a file without force, never
# through a hard link planted there.
SOCK=$TMP/mon.sock
mkdir -p "$TMP/dumps"
echo old >"$TMP/dumps/kept.folded"
echo precious >"$TMP/outside/planted.folded"
ln "$TMP/outside/planted.folded" "$TMP/dumps/planted.folded"
timeout -s KILL "$(scaled 60)" "$SLATE" --profile "$TMP/m.folded" --monitor "unix:$SOCK" --dump-dir "$TMP/dumps" \
    --append forever "$PROFILE" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null &
PID=$!
wait_until 60 test -S "$SOCK"
M=$(timeout "$(scaled 30)" perl tests/tools/monitor-client.pl "$SOCK" "profile dump kept.folded" \
    "profile dump planted.folded force" "quit")
wait "$PID"
has "$M" '^error: kept.folded exists \(profile dump kept.folded force replaces it\)$' "profile dump refuses an existing file without force"
is "$(cat "$TMP/dumps/kept.folded")" old "and leaves it as it was"
is "$(cat "$TMP/outside/planted.folded")" precious "with force it replaces a planted hard link's name, not the file behind it"
has "$M" "written to $TMP/dumps/planted.folded" "and the dump is at that name"
lacks "$(cat "$TMP/dumps/planted.folded")" '^precious$' "in place of the link"
