#!/usr/bin/env bash
# slate builds clean with clang as well as gcc (-Wall -Wextra -Werror): the VMM, its plugins and
# the unit tests, in a build directory of this test's own. The clang-built slate then starts.
. "$(dirname "$0")/../lib.sh"
plan 3
if ! command -v clang >/dev/null; then skip_here "clang is not installed"; fi
OUT=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -j4 CC=clang \
      BUILD="$TMP/clang" all unit 2>&1)
RC=$?
is "$RC" 0 "make CC=clang builds slate, its plugins and the unit tests"
has "$(grep -E '(warning|error): ' <<<"$OUT" || echo none)" '^none$' "with no warning or error"
has "$("$TMP/clang/slate" --version 2>&1)" '^slate 0\.' "the clang-built slate starts and says its version"
