#!/usr/bin/env bash
# The Debian package (debian/): dpkg-buildpackage builds slate and slate-dev from a copy of the
# tree, lintian finds no error, and the package's files, unpacked into a scratch root, run: the
# binary says its version, finds its modules in /usr/lib/slate, and boots a kernel.
. "$(dirname "$0")/../lib.sh"
plan 6
if ! command -v dpkg-buildpackage >/dev/null || ! [ -e /usr/share/perl5/Debian/Debhelper ] || ! command -v lintian >/dev/null; then
    skip_tests 6 "dpkg-buildpackage, debhelper or lintian is not installed (make deps installs them)"
    exit 0
fi
SRC=$TMP/src/slate
mkdir -p "$SRC"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$SRC" 2>/dev/null || tar --exclude='./build*' -cf - . | tar -C "$SRC" -xf -
(cd "$SRC" && timeout -s KILL "$(scaled 900)" dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1
is "$?" 0 "dpkg-buildpackage -us -uc -b builds the packages"
ls "$TMP"/src/slate_*_amd64.deb "$TMP"/src/slate-dev_*_all.deb >/dev/null 2>&1 && pass "slate and slate-dev are built" \
    || fail "slate and slate-dev are built" "$(tail -20 "$TMP/build.log")"
L=$(cd "$TMP/src" && lintian slate_*_amd64.changes 2>&1 | grep -v 'running with root privileges')
lacks "$L" "^E: " "lintian finds no error"
dpkg -x "$TMP"/src/slate_*_amd64.deb "$TMP/root" && dpkg -x "$TMP"/src/slate-dev_*_all.deb "$TMP/root"
has "$("$TMP/root/usr/bin/slate" --version)" '^slate [0-9.]+ \(git ' "the packaged slate says its version"
if kvm_usable; then
    vnc=$(free_port)
    (cd / && timeout -s KILL "$(scaled 60)" "$TMP/root/usr/bin/slate" --display vnc --vnc "127.0.0.1:$vnc" --serial none \
        --symbols "$TMP/root/usr/lib/slate/demo.elf" "$TMP/root/usr/lib/slate/demo.bin" --timeout 3 >"$TMP/run.out" 2>"$TMP/run.err" </dev/null)
    is "$?/$(grep -c 'cannot load' "$TMP/run.err")" "124/0" \
        "it boots the packaged demo kernel with its VNC module (until --timeout: the demo waits for its user)"
else
    skip_tests 1 "no usable /dev/kvm: the packaged slate was not booted"
fi
[ -e "$TMP/root/usr/include/slate/slate.h" ] && pass "slate-dev holds the guest header" || fail "slate-dev holds the guest header"
