#!/usr/bin/env bash
# Accesses nobody claims: all-ones and one warning per address, or a stop with --strict.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 8

run_slate "$GUEST/unclaimed.elf"
is "$RC" 0 "unclaimed accesses do not stop the guest"
has "$OUT" '^unclaimed ok$' "unclaimed port and MMIO reads return all-ones"
is "$(count "$ERR" 'port from 0x80 ')" 1 "two reads of port 0x80: one warning"
is "$(count "$ERR" 'MMIO from 0xe0000000 ')" 1 "two reads of 0xe0000000: one warning"
has "$ERR" 'write: 4-byte MMIO to 0xe0001000' "an unclaimed MMIO write is reported"

run_slate --strict "$GUEST/unclaimed.elf"
is "$RC" 126 "--strict: the first unclaimed access stops the machine with 126"
has "$ERR" -- '--strict: read: 1-byte port from 0x80' "--strict: the report names the access"
has "$ERR" 'rip=' "--strict: the report shows the registers"
