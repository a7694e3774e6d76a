#!/usr/bin/env bash
# `make install` / `make uninstall` (GNU conventions, DESTDIR and PREFIX): the installed slate
# runs from anywhere and finds its modules (also after its tree is moved), the man page renders
# and names every option --help does, bash completion completes, uninstall leaves nothing.
. "$(dirname "$0")/../lib.sh"
plan 13
ROOT=$TMP/root
KERNEL=$(cd "$GUEST" && pwd)/power.elf
make -s --no-print-directory install BUILD="$BUILD" DESTDIR="$ROOT" PREFIX=/usr >"$TMP/make.out" 2>&1
is "$?" 0 "make install DESTDIR=... PREFIX=/usr succeeds"
missing=""
for f in bin/slate lib/slate/slate-vnc.so lib/slate/slate-netuser.so include/slate/slate.h \
    share/man/man1/slate.1 share/doc/slate/machine.md lib/slate/demo.bin lib/slate/demo.elf \
    share/bash-completion/completions/slate; do
    [ -e "$ROOT/usr/$f" ] || missing="$missing $f"
done
is "$missing" "" "the binary, modules, headers, man page, docs, demo kernel and completion are in place"
cd "$TMP"
has "$("$ROOT/usr/bin/slate" --version)" '^slate [0-9.]+ \(git [0-9a-f]+(-modified)?\)$' \
    "the installed slate says its version and the commit it was built from"
MANWIDTH=100 man -l "$ROOT/usr/share/man/man1/slate.1" >"$TMP/man.txt" 2>"$TMP/man.err"
is "$?/$(cat "$TMP/man.err")" "0/" "the man page renders without a warning"
opts_help=$("$ROOT/usr/bin/slate" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
opts_man=$(grep -oE -- '--[a-z][a-z0-9-]*' "$TMP/man.txt" | sort -u)
is "$(comm -23 <(echo "$opts_help") <(echo "$opts_man"))" "" "every option --help names is in the man page"
has "$(cat "$TMP/man.txt")" "^EXAMPLES" "with examples"
has "$(bash -c ". '$ROOT/usr/share/bash-completion/completions/slate'; PATH='$ROOT/usr/bin':\$PATH;
    COMP_WORDS=(slate --bo); COMP_CWORD=1; _slate; echo \${COMPREPLY[*]}")" "^--boot$" "bash completion completes an option"
has "$(bash -c ". '$ROOT/usr/share/bash-completion/completions/slate'; COMP_WORDS=(slate --boot m); COMP_CWORD=2;
    _slate; echo \${COMPREPLY[*]}")" "^multiboot2 multiboot$" "and an option's argument"
cd - >/dev/null
if kvm_usable; then
    vnc=$(free_port)
    (cd "$TMP" && timeout -s KILL "$(scaled 60)" "$ROOT/usr/bin/slate" --display vnc --vnc "127.0.0.1:$vnc" --net user \
        --append code=0 "$KERNEL" >"$TMP/run.out" 2>"$TMP/run.err" </dev/null)
    is "$?/$(grep -c 'cannot load' "$TMP/run.err")" "0/0" "run from elsewhere, it loads its VNC and user-networking modules"
    mv "$ROOT/usr" "$TMP/moved"
    (cd / && timeout -s KILL "$(scaled 60)" "$TMP/moved/bin/slate" --display vnc --vnc "127.0.0.1:$vnc" --append code=0 "$KERNEL" \
        >"$TMP/run.out" 2>"$TMP/run.err" </dev/null)
    is "$?/$(grep -c 'cannot load' "$TMP/run.err")" "0/0" "a moved tree still finds its modules"
    mv "$TMP/moved" "$ROOT/usr"
else
    skip_tests 2 "no usable /dev/kvm: the installed slate was not booted"
fi
make -s --no-print-directory uninstall BUILD="$BUILD" DESTDIR="$ROOT" PREFIX=/usr >"$TMP/make.out" 2>&1
is "$?" 0 "make uninstall succeeds"
is "$(find "$ROOT" -mindepth 1 | head -5)" "" "and leaves nothing behind"
lacks "$(cat "$TMP/make.out")" "." "saying nothing"
