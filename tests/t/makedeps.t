#!/usr/bin/env bash
# `make check`, `make` and `make run` as the very first command on a fresh Debian machine: the
# missing packages are installed before anything is built, or, where slate cannot install them
# (no root, no sudo), make stops before anything else with one line saying what to run. Checked
# with the packages hidden: fake dpkg-query, apt-get, id and sudo, and compilers that log and fail.
. "$(dirname "$0")/../lib.sh"
plan 10
FAKE=$TMP/fakebin
mkdir -p "$FAKE"
cat >"$FAKE/dpkg-query" <<'SH'
#!/bin/sh
[ -e "$STATE/installed" ] || exit 1 # nothing installed: no line for any package
shift 2
for p; do echo "$p install ok installed"; done
SH
cat >"$FAKE/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >>"$LOG"
case " $* " in *" install "*) touch "$STATE/installed" ;; esac
SH
cat >"$FAKE/id" <<'SH'
#!/bin/sh
echo "${FAKE_UID:-0}"
SH
printf '#!/bin/sh\nexit 1\n' >"$FAKE/sudo"
for tool in gcc cc clang perl ld objcopy; do
    printf '#!/bin/sh\necho "build: %s $*" >>"$LOG"\nexit 1\n' "$tool" >"$FAKE/$tool"
done
chmod +x "$FAKE"/*

# fresh_make TARGET [UID]: make -j2 TARGET in a fresh build directory with nothing installed.
fresh_make() {
    export STATE=$TMP/state-$1-${2:-0} LOG=$TMP/log-$1-${2:-0}
    rm -rf "$STATE" "$TMP/build-$1"; mkdir -p "$STATE"; : >"$LOG"
    MAKE_OUT=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL FAKE_UID=${2:-0} PATH="$FAKE:$PATH" timeout 120 make --no-print-directory -j2 \
        BUILD="$TMP/build-$1" RUN_DISK="$TMP/run.img" "$1" </dev/null 2>&1)
    MAKE_RC=$?
}

for target in check all run; do
    fresh_make "$target"
    first_build=$(grep -n '^build:' "$LOG" | head -1 | cut -d: -f1)
    install_at=$(grep -n '^apt-get .*install -y .*kbd' "$LOG" | head -1 | cut -d: -f1)
    if [ -n "$install_at" ] && { [ -z "$first_build" ] || [ "$install_at" -lt "$first_build" ]; }; then
        pass "make $target as root: the missing packages (kbd among them) are installed before anything is built"
    else
        fail "make $target as root: the missing packages are installed before anything is built" "$(head -5 "$LOG")"
    fi
    has "$(head -1 <<<"$MAKE_OUT")" '^slate: installing Debian packages: ' "make $target: its first line says so"
done

fresh_make check 1000
is "$MAKE_RC" 2 "make check without root or sudo fails"
has "$(head -1 <<<"$MAKE_OUT")" '^slate: missing Debian packages: .*kbd.*Install them as root: sudo make deps' \
    "its first line names the packages and what to run"
is "$(cat "$LOG")" "" "and nothing was installed or built"

# Everything there: make deps is silent and installs nothing.
export STATE=$TMP/state-present LOG=$TMP/log-present
mkdir -p "$STATE"; touch "$STATE/installed"; : >"$LOG"
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PATH="$FAKE:$PATH" make --no-print-directory deps 2>&1)
is "$out/$(cat "$LOG")" "/" "with every package installed, make deps says nothing and runs no apt-get"
