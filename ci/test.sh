#!/usr/bin/env bash
# ci/test.sh -- the test command (README): on a fresh Debian 12 machine it
# installs the Debian packages it needs, builds with -Werror, checks the
# formatting, runs every ctest test (unit, cli, install, conformance on local
# and loop/FUSE/sshfs filesystems, protocol-level nfs-ganesha and samba and
# two namespace "hosts", redis, bench smoke), then repeats the unit, CLI,
# conformance, Redis and stress tests in an ASan+UBSan build and the stress
# programs in a ThreadSanitizer build, and cross-builds the Windows port and
# runs its unit tests under Wine (ci/windows.sh).  The long forms of the
# stress suite (storms, fuzzing, valgrind) are ci/stress.sh.
#
#   ci/test.sh               everything
#   PL_SKIP_ASAN=1 / PL_SKIP_TSAN=1 ci/test.sh   skip a sanitizer pass
#   PL_SKIP_PORTS=1 ci/test.sh   skip the short port matrix (musl, i686)
#   PL_SKIP_WINDOWS=1 ci/test.sh   skip the Windows cross build (ci/windows.sh)
#   PL_CTEST_ARGS="-L unit" ci/test.sh   pass extra arguments to ctest
#
# Needs root for apt and for the mounted filesystems (without root those
# conformance tests report SKIP with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n==== %s ====\n' "$*"; }

step "dependencies"
bash ci/deps.sh

step "format check"
bash ci/format-check.sh

step "layout: generic files include only ISO C and test no platform (ci/layout-check.sh)"
bash ci/layout-check.sh

step "macOS/BSD code paths: no Linux-only call outside *_linux.c (ci/posix-portable.sh)"
bash ci/posix-portable.sh --syntax

step "configure + build (-Werror)"
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON >/dev/null
cmake --build build-ci -j"$jobs"

step "clang build (-Werror, library, CLI, tests and fuzzers compile)"
if command -v clang >/dev/null; then
    cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DPL_WERROR=ON -DPL_BUILD_BENCH=OFF -DPL_BUILD_FUZZERS=ON >/dev/null
    cmake --build build-clang -j"$jobs"
    step "fuzzer smoke (corpus replay + a few seconds each; ci/stress.sh fuzzes longer)"
    (cd build-clang && ctest --output-on-failure -L fuzz)
else
    echo "clang not installed: skipped"
fi

step "ctest (all labels but netfs-long)"
# netfs-long (the SMB network-cut window, ~85 s) runs in ci/stress.sh.
# shellcheck disable=SC2086
(cd build-ci && ctest --output-on-failure --timeout 900 -LE netfs-long ${PL_CTEST_ARGS:-})

if [ "${PL_SKIP_PORTS:-0}" != 1 ]; then
    # Short form of ci/ports.sh (all six targets): musl and 32-bit x86, two
    # backends, the native suite from build-ci driving the ported contenders.
    step "ports, short form (x86_64 musl, i686; ci/ports.sh runs all six)"
    PL_PORTS="x86_64-linux-musl i686-linux-gnu" PL_PORTS_BACKENDS="flock ofd" \
        PL_PORTS_CYCLES=0 PL_PORTS_NO_DEPS=1 PL_PORTS_NATIVE="$root/build-ci" \
        PL_PORTS_OUT="$root/build-ci/ports" bash ci/ports.sh
fi

if [ "${PL_SKIP_WINDOWS:-0}" != 1 ]; then
    step "Windows port: mingw-w64 cross build, unit tests and conformance under Wine"
    PL_WIN_NATIVE="$root/build-ci" bash ci/windows.sh
fi

if [ "${PL_SKIP_ASAN:-0}" != 1 ]; then
    step "ASan + UBSan build"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPL_WERROR=ON \
        -DPL_SANITIZE="address;undefined" -DPL_BUILD_BENCH=OFF >/dev/null
    cmake --build build-asan -j"$jobs"
    step "ctest under ASan + UBSan (unit, cli, conformance on local filesystems, redis)"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export LSAN_OPTIONS=suppressions=$root/stress/lsan.supp # reasons inside
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    (cd build-asan && ctest --output-on-failure --timeout 900 -LE "mountfs|install|bench|netfs")
fi
if [ "${PL_SKIP_TSAN:-0}" != 1 ]; then
    # Criterion cannot run under ThreadSanitizer (Criterion#274), so this
    # pass builds only the library and the plain stress programs.
    step "ThreadSanitizer build (stress programs)"
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPL_WERROR=ON \
        -DPL_SANITIZE=thread -DPL_BUILD_UNIT_TESTS=OFF -DPL_BUILD_CONFORMANCE=OFF \
        -DPL_BUILD_BENCH=OFF >/dev/null
    cmake --build build-tsan -j"$jobs"
    step "ctest under TSan (stress)"
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    (cd build-tsan && ctest --output-on-failure --timeout 900 -L stress)
fi
echo "ci/test.sh: all passed ($root)"
