#!/usr/bin/env bash
# The serial console: input from stdin by interrupt, output to stdio, a file or nowhere.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 9

printf 'hello\nworld\nquit\n' | timeout -k 5 30 "$SLATE" "$GUEST/serial_echo.elf" >"$TMP/out" 2>"$TMP/err"
RC=$?
OUT=$(cat "$TMP/out")
is "$RC" 0 "serial echo guest ends when it reads 'quit'"
has "$OUT" '^got: hello$' "first piped line echoed back by the guest"
has "$OUT" '^got: world$' "second piped line echoed back by the guest"
has "$OUT" '^interrupts seen: yes$' "input arrived by MSI interrupt to a halted CPU"

# Input that arrives in pieces, after the guest is already waiting.
( echo one; sleep 0.3; echo two; sleep 0.3; echo quit ) | timeout -k 5 30 "$SLATE" "$GUEST/serial_echo.elf" >"$TMP/out" 2>&1
has "$(cat "$TMP/out")" '^got: two$' "input arriving later wakes the guest again"

run_slate --serial "file:$TMP/console.log" "$GUEST/prot_info.elf"
is "$RC" 3 "--serial file: the guest runs"
has "$(cat "$TMP/console.log")" '^protected mode: hello through serial0$' "--serial file: output goes to the file"
is "$OUT" "" "--serial file: nothing on stdout"

run_slate --serial none "$GUEST/prot_info.elf"
is "$OUT$RC" "3" "--serial none: output discarded, guest still runs"
