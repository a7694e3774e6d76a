#!/usr/bin/env bash
# The kernel `make run` boots: describes the machine, echoes typed lines, powers off.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 6
DEMO=$BUILD/guest/demo.elf

printf 'hello slate\nexit\nnot read\n' >"$TMP/typed"
timeout -k 5 60 "$SLATE" --smp 2 -m 256M --append "hello from a test" "$DEMO" <"$TMP/typed" >"$TMP/out" 2>"$TMP/err"
RC=$?
OUT=$(tr -d '\r' <"$TMP/out")
is "$RC" 0 "the demo powers off with status 0 after 'exit'"
has "$OUT" '^  cmdline: hello from a test$' "it prints the command line from the info block"
has "$OUT" '^  memory:  256 MiB' "it prints the RAM size"
has "$OUT" '^you typed: hello slate$' "it echoes a typed line"
lacks "$OUT" 'not read' "nothing after 'exit' is read"

run_slate "$DEMO"   # stdin is /dev/null: the end of input powers it off
is "$RC" 0 "with no input at all it powers off instead of waiting forever"
