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
#   PL_WIN_CMAKE_ARGS="..."         extra configure arguments for the cross
#                                   build, e.g. a hiredis built for mingw:
#                                   -Dhiredis_DIR=<prefix>/share/hiredis
#                                   (PORTING.md, "Windows: the Redis lock")
#   PL_WIN_REDIS=0                  skip the Redis step
#   PL_TEST_REDIS_PORT=N            its redis-server port (default 56379)
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
# The Redis step, when the cross build found hiredis: the native suite
# (conformance/redis, scenarios redis/*) drives the Windows Redis contender
# (wine .../pl_redis_contender.exe) against a Linux redis-server on
# 127.0.0.1.  Debian has no hiredis for mingw, so here it says the Redis
# lock was not built (pl_redis_lock_open returns PL_ENOTSUP) and goes on.
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
# Wine's own start-up of a process fails now and then before our program
# runs (CI, 30 Nov: a Windows contender never answered hello in one of the
# three mixed runs; cli.windows once got CreateProcess error 1359): the
# suites start such a contender again, up to twice, and say so on stderr
# (conformance/PROTOCOL.md §6).  Real Windows and Linux get no retry.
export PL_CONFORMANCE_START_RETRIES=2
# Start the prefix's services (winedevice, explorer...) now, detached from
# our output: started by the first test they would inherit ctest's pipes and
# ctest would wait for them forever.
wine cmd /c exit </dev/null >/dev/null 2>&1

step "cross-build (x86_64-w64-mingw32, -Werror)"
# shellcheck disable=SC2086
configured=$(cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON -DPL_BUILD_STRESS=OFF \
    -DPL_BUILD_BENCH=OFF -DPL_BUILD_CONFORMANCE=OFF ${PL_WIN_CMAKE_ARGS:-} 2>&1)
# Whether the Redis lock is built (hiredis found) or not, said plainly.
printf '%s\n' "$configured" | grep -E 'Redis lock|hiredis' || true
cmake --build "$build" -j"$jobs"

step "ctest under Wine (label windows)"
# shellcheck disable=SC2086
(cd "$build" && ctest --output-on-failure --timeout 600 -L windows ${PL_CTEST_ARGS:-})

native=${PL_WIN_NATIVE:-$root/build-win-native}
native_ready=0
native_configure() {
    if [ -z "${PL_WIN_NATIVE:-}" ] && [ $native_ready = 0 ]; then
        bash ci/deps.sh ci/packages.txt
        cmake -S . -B "$native" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DPL_WERROR=ON -DPL_BUILD_BENCH=OFF -DPL_BUILD_STRESS=OFF \
            -DPL_BUILD_UNIT_TESTS=OFF >/dev/null
    fi
    native_ready=1
}

if [ "${PL_WIN_CONFORMANCE:-1}" != 0 ]; then
    step "conformance: the native suite drives the Windows contender (wine)"
    native_configure
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
    # Under Wine a timed-out wait can end late by more than the native
    # 0.25 s (30 Nov, idle machine: a 0.5 s timeout ended after 0.775 s,
    # the library's sleeps clamped to the deadline): timeout_expires gets
    # the 1 s given to emulated targets (ci/ports.sh); its lower bound, the
    # one that catches a wait ending early, does not move.
    PL_CONFORMANCE_TIMEOUT_SLACK=1.0 \
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
    grep -h 'starting it again' "$out"/*.log || true
    python3 conformance/report.py --windows-summary "$out/wine.jsonl" "$out/mixed.jsonl" || rc=1
    if [ $rc -ne 0 ]; then
        grep -hE -A3 'violation|Assertion|FAIL' "$out"/*.log | head -60
        echo "ci/windows.sh: conformance under Wine failed (logs in $out)" >&2
        exit 1
    fi
fi

redis_exe=$root/$build/conformance/contender/pl_redis_contender.exe
if [ "${PL_WIN_REDIS:-1}" = 0 ]; then
    :
elif [ ! -f "$redis_exe" ]; then
    step "Redis: not built for Windows (no hiredis for mingw): skipped"
    echo "The cross build found no hiredis (Debian packages none for mingw), so"
    echo "its pl_redis_lock_open returns PL_ENOTSUP (built without hiredis)."
    echo "With one: PL_WIN_CMAKE_ARGS=-Dhiredis_DIR=... (PORTING.md)."
else
    step "Redis: the native suite drives the Windows Redis contender (wine)"
    native_configure
    cmake --build "$native" -j"$jobs" --target pl_redis_conformance
    rport=${PL_TEST_REDIS_PORT:-56379}
    rdir=$root/$build/redis
    rm -rf "$rdir"
    mkdir -p "$rdir/tmp"
    sh ci/redis-fixture.sh start "$rport" "$rdir/server"
    rc=0
    # redis/*: the contender cases (redis_lib/* test the native library).
    PORTALOCK_CONTENDER="$(command -v wine) $redis_exe --redis redis://127.0.0.1:$rport" \
        PL_TEST_REDIS_PORT=$rport PL_TEST_REDIS_SOCKET=$rdir/server/redis.sock \
        PL_CONFORMANCE_DIR=$rdir/tmp PL_CONFORMANCE_BACKEND=redis \
        PL_CONFORMANCE_FS=redis \
        timeout 600 "$native/conformance/redis/pl_redis_conformance" \
        --filter 'redis/*' >"$rdir/wine-redis.log" 2>&1 || rc=1
    sh ci/redis-fixture.sh stop "$rport" "$rdir/server"
    grep -E '^\[redis\]|Synthesis' "$rdir/wine-redis.log" || true
    if [ $rc -ne 0 ]; then
        grep -hE -A3 'Assertion|FAIL|violation' "$rdir/wine-redis.log" | head -60
        echo "ci/windows.sh: Redis under Wine failed (log in $rdir)" >&2
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
