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
#   PL_WIN_NATIVE=dir ci/windows.sh a native (Linux) build tree with the
#                                   conformance suite (ci/test.sh passes
#                                   build-ci); default: build-win-native
#   PL_WIN_CONFORMANCE=0            skip the conformance step
#   ci/windows.sh --report          the full form: also the handoff ratio
#                                   with 200 trials, and the Windows section
#                                   of conformance/RESULTS.md and
#                                   conformance/results-windows.json
#                                   rewritten from this run
#
# The conformance step: the native suite drives the Windows contender
# (PORTALOCK_CONTENDER="wine .../pl_contender.exe", backend lockfileex; the
# "windows (wine)" column), then the mixed runs: the Windows contender and
# the native one on one file, per Linux backend (semantics/mixed_backends).
#
# Called by ci/test.sh.  Needs root for apt (like ci/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
build=${PL_WIN_BUILD:-build-win}
report=0
case ${1:-} in
--report) report=1 ;;
"") ;;
*)
    echo "usage: ci/windows.sh [--report]" >&2
    exit 2
    ;;
esac

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

if [ "${PL_WIN_CONFORMANCE:-1}" != 0 ]; then
    step "conformance: the native suite drives the Windows contender (wine)"
    native=${PL_WIN_NATIVE:-$root/build-win-native}
    if [ -z "${PL_WIN_NATIVE:-}" ]; then
        bash ci/deps.sh ci/packages.txt
        cmake -S . -B "$native" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DPL_WERROR=ON -DPL_BUILD_BENCH=OFF -DPL_BUILD_STRESS=OFF \
            -DPL_BUILD_UNIT_TESTS=OFF >/dev/null
    fi
    cmake --build "$native" -j"$jobs" --target pl_conformance pl_contender portalock_cli
    out=$root/$build/conformance
    mkdir -p "$out"
    rm -f "$out"/*.jsonl "$out"/*.log
    # The wine launcher execs the Windows process: the suite's child pid is
    # the contender's Linux process (SIGKILL and /proc reach it).
    contender="$(command -v wine) $root/$build/conformance/contender/pl_contender.exe"
    # Inside the repository: the report makes its paths repository-relative.
    conf_dir=$out/tmp
    rm -rf "$conf_dir"
    mkdir -p "$conf_dir"
    rc=0
    PORTALOCK_CONTENDER=$contender PL_CONFORMANCE_BACKEND=lockfileex \
        PL_CONFORMANCE_DIR=$conf_dir PL_CONFORMANCE_RESULTS=$out/wine.jsonl \
        timeout 900 "$native/conformance/pl_conformance" -j"$jobs" \
        >"$out/wine.log" 2>&1 || rc=1
    for be in flock lockf ofd; do
        PORTALOCK_CONTENDER=$contender PL_CONFORMANCE_BACKEND=lockfileex \
            PL_CONFORMANCE_PEER_BACKEND=$be PL_CONFORMANCE_DIR=$conf_dir \
            PL_CONFORMANCE_RESULTS=$out/mixed.jsonl \
            timeout 300 "$native/conformance/pl_conformance" \
            --filter 'semantics/mixed_backends' >"$out/mixed.$be.log" 2>&1 || rc=1
    done
    rm -rf "$conf_dir"
    python3 conformance/report.py --windows-summary "$out/wine.jsonl" "$out/mixed.jsonl" || rc=1
    if [ $rc -ne 0 ]; then
        grep -hE 'violation|Assertion|FAIL' "$out"/*.log | head -40
        echo "ci/windows.sh: conformance under Wine failed (logs in $out)" >&2
        exit 1
    fi
fi

if [ $report = 1 ]; then
    step "handoff ratio: raw blocked LockFileEx waiter vs portalock (200 trials)"
    wine "$build/bench/win32/pl_win_handoff.exe" --trials 200 | tee "$out/handoff.txt"
    step "conformance/RESULTS.md: the Windows section"
    python3 conformance/report.py --windows-update "$out/wine.jsonl" "$out/mixed.jsonl" \
        --invocation "ci/windows.sh --report" --wine "$(wine --version)"
fi
echo "ci/windows.sh: all passed"
