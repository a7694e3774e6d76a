#!/bin/sh
# deps.sh PACKAGE...: installs the Debian packages that are missing (as root, or through sudo), or
# says in one line what to run when it cannot. Silent, and quick, when every package is there:
# one dpkg-query for all of them.
set -u
command -v dpkg-query >/dev/null 2>&1 || exit 0 # not Debian: the pkg-config checks speak instead
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }')
missing=""
for p in "$@"; do
    echo "$installed" | grep -qx -- "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
    # sudo without a password, or one it can ask for on a terminal; otherwise say what to run.
    if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
        sudo=sudo
    else
        echo "slate: missing Debian packages:$missing. Install them as root: sudo make deps (or apt-get install$missing)" >&2
        exit 1
    fi
fi
echo "slate: installing Debian packages:$missing"
apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq"
for try in 1 2 3 4 5 6 7 8 9 10; do
    # shellcheck disable=SC2086 # $apt and $missing are word lists
    $apt update && $apt install -y $missing && exit 0
    echo "slate: apt-get failed (another package manager holding the lock?); retrying in 30 s" >&2
    sleep 30
done
exit 1
