#!/usr/bin/env bash
# ci/posix-portable.sh -- the code macOS and the BSDs compile, checked here.
#
# Debian has no macOS SDK or FreeBSD sysroot, so this builds what those
# systems get -- the generic POSIX files plus the *_bsd.c platform files of
# lib/src/posix (PL_POSIX_PLATFORM=bsd, lib/src/posix/platform.h) -- against
# glibc with ci/portable/no-linux.h forced in front of every file: the
# Linux-only calls (futex syscalls, timer_create, getrandom, __fpurge,
# pipe2, pthread_condattr_setclock...) poisoned, the Linux-only feature
# macros (O_TMPFILE, MADV_WIPEONFORK, F_OFD_*, SIGEV_THREAD_ID) undefined and
# __linux__ gone.  Any use outside the *_linux.c files is a compile error.
# Not covered: fstype_bsd.c (reads struct statfs f_fstypename, which glibc
# lacks; this build uses fstype_linux.c) and the headers' own differences.
#
#   ci/posix-portable.sh --syntax      gcc -fsyntax-only per file (seconds;
#                                      ci/test.sh)
#   ci/posix-portable.sh [BUILD_DIR]   a -Werror CMake build of the library,
#                                      the CLI, the contender and the port
#                                      checks (default build-ports/posix-generic);
#                                      ci/ports.sh then runs it like a target
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
force=$root/ci/portable/no-linux.h

if [ "${1:-}" = --syntax ]; then
    cc=${CC:-gcc}
    files=()
    for f in lib/src/*.c lib/src/posix/*.c lib/cli/*.c lib/cli/posix/*.c \
        conformance/contender/*.c \
        conformance/contender/posix/*.c \
        lib/tests/port/port_checks.c lib/src/redis/redis_none.c; do
        case $f in
        *_linux.c) continue ;;                       # Linux's platform files
        lib/src/posix/fstype_bsd.c) continue ;;      # f_fstypename: not in glibc
        lib/src/posix/redis_os.c) continue ;;        # needs hiredis: below
        esac
        files+=("$f")
    done
    redis_flags=()
    if pkg-config --exists hiredis 2>/dev/null; then
        files+=(lib/src/redis/redis_lock.c lib/src/redis/script.c
            lib/src/redis/conn.c lib/src/redis/sub.c lib/src/posix/redis_os.c)
        # shellcheck disable=SC2207
        redis_flags=($(pkg-config --cflags hiredis))
    fi
    fails=0
    for f in "${files[@]}"; do
        if ! "$cc" -std=c11 -fsyntax-only -Wall -Wextra -Werror \
            -D_FILE_OFFSET_BITS=64 -DPL_BUILDING -Ilib/include -Ilib/src \
            -Iconformance/contender "${redis_flags[@]}" -include "$force" "$f"; then
            echo "posix-portable: $f uses something Linux-only (see above)" >&2
            fails=$((fails + 1))
        fi
    done
    if [ $fails -gt 0 ]; then
        echo "posix-portable: $fails of ${#files[@]} files FAIL" >&2
        exit 1
    fi
    echo "posix-portable: ${#files[@]} files compile without Linux-only calls, macros or __linux__"
    exit 0
fi

b=${1:-$root/build-ports/posix-generic}
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON \
    -DPL_POSIX_PLATFORM=bsd -DCMAKE_C_FLAGS="-include $force" \
    -DPL_BUILD_UNIT_TESTS=OFF -DPL_BUILD_CONFORMANCE=OFF -DPL_BUILD_STRESS=OFF \
    -DPL_BUILD_BENCH=OFF -DPL_BUILD_CONTENDER=ON -DPL_BUILD_PORT_TESTS=ON &&
    cmake --build "$b" -j"$(nproc 2>/dev/null || echo 2)"
