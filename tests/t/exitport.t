#!/usr/bin/env bash
# --exit-port: QEMU's isa-debug-exit (a write of V exits with (V << 1) | 1), so test runners
# written for QEMU work unchanged; the port cannot be one slate or a device already uses.
. "$(dirname "$0")/../lib.sh"
plan 9
K=$GUEST/exitport.elf
run_slate --exit-port 0x1000 "$K"
has "$RC $ERR" '^125 slate: --exit-port 0x1000: the port belongs to serial0 \(ports 0x1000-0x101f\)$' "a device's port is refused (125)"
run_slate --exit-port 0xffff "$K"
has "$RC $ERR" "^125 slate: --exit-port 0xffff: the port is slate's own" "the hypercall port is refused"
run_slate --exit-port 0x10000 "$K"
has "$RC $ERR" '^125 slate: --exit-port 0x10000: expected a port number from 1 to 0xffff$' "a port past 0xffff is refused"
skip_without_kvm 9

run_slate --exit-port 0xf4 --append "v=16" "$K"
is "$RC" 33 "outl 16 to 0xf4 exits with (16 << 1) | 1 = 33, as under QEMU"
run_slate --exit-port 0xf4 --append "v=0" "$K"
is "$RC" 1 "0 exits with 1 (QEMU's success convention for many runners)"
run_slate --exit-port 0x501 --append "port=1281 v=49 width=1" "$K"
is "$RC" 99 "outb 0x31 to another port: 99"
run_slate --exit-port 0xf4 --append "v=128" "$K"
is "$RC" 1 "(0x80 << 1) | 1 = 0x101: the low 8 bits, 1, as QEMU's exit() leaves them"
run_slate --exit-port 0xf4 --report "$TMP/r.json" --append "v=3" "$K"
has "$(cat "$TMP/r.json")" '"reason": "--exit-port: the guest wrote 0x3"' "the report says why it ended"
run_slate --append "v=16" "$K"
is "$RC" 7 "without --exit-port the write is an unclaimed port: the guest runs on"
