#!/usr/bin/env bash
# ci/windows.sh -- the Windows port, validated here: installs mingw-w64 and
# Wine (Debian packages), creates a Wine prefix, cross-builds portalock for
# x86_64-w64-mingw32 with -Werror and runs its ctest tests (label
# "windows") through Wine, with `wineserver -p` kept alive so that a test
# costs well under a second instead of 3 s of Wine start-up.
#
#   ci/windows.sh                   set up, build, test
#   PL_WIN_BUILD=dir ci/windows.sh  build directory (default build-win)
#   WINEPREFIX=dir ci/windows.sh    Wine prefix (default build-win/wineprefix)
#   PL_CTEST_ARGS=... ci/windows.sh extra ctest arguments
#
# Called by ci/test.sh.  Needs root for apt (like ci/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
build=${PL_WIN_BUILD:-build-win}

step() { printf '\n==== windows: %s ====\n' "$*"; }

step "dependencies (mingw-w64, wine)"
bash ci/deps.sh ci/packages-windows.txt

export WINEPREFIX=${WINEPREFIX:-$root/$build/wineprefix}
export WINEDEBUG=${WINEDEBUG:--all}
export WINEARCH=win64
# No desktop integration, no Mono/Gecko download prompts: headless.
export WINEDLLOVERRIDES="mscoree,mshtml,winemenubuilder.exe="
mkdir -p "$(dirname "$WINEPREFIX")"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    step "wineboot (new prefix $WINEPREFIX)"
    wine wineboot --init >/dev/null 2>&1
fi
# A persistent wineserver for this prefix, stopped (by its prefix) at exit.
# The server wineboot left behind is not persistent: replace it.
wineserver -k >/dev/null 2>&1 || true
wineserver -w >/dev/null 2>&1 || true
wineserver -p </dev/null >/dev/null 2>&1
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
# Start the prefix's services (winedevice, explorer...) now, detached from
# our output: started by the first test they would inherit ctest's pipes and
# ctest would wait for them forever.
wine cmd /c exit </dev/null >/dev/null 2>&1

step "cross-build (x86_64-w64-mingw32, -Werror)"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON -DPL_BUILD_STRESS=OFF \
    -DPL_BUILD_BENCH=OFF -DPL_BUILD_CONFORMANCE=OFF >/dev/null
cmake --build "$build" -j"$jobs"

step "ctest under Wine (label windows)"
# shellcheck disable=SC2086
(cd "$build" && ctest --output-on-failure --timeout 600 -L windows ${PL_CTEST_ARGS:-})
echo "ci/windows.sh: all passed"
