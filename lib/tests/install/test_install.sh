#!/usr/bin/env bash
# install.consumer: install the build tree to a temporary prefix, then build
# and run a consumer with find_package(portalock CONFIG) and with pkg-config.
# Usage: test_install.sh BUILD_DIR CONSUMER_SRC C_COMPILER
set -euo pipefail
build=$1 src=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
check() { # name, command...
    local name=$1; shift
    if "$@" >"$work/out.txt" 2>&1; then
        echo "ok   $name"; pass=$((pass + 1))
    else
        echo "FAIL $name"; sed 's/^/     /' "$work/out.txt" | tail -20; fail=$((fail + 1))
    fi
}
prefix=$work/prefix
check "cmake --install" cmake --install "$build" --prefix "$prefix"
lib=$(ls -d "$prefix"/lib* | head -1)
check "header installed" test -f "$prefix/include/portalock.h"
check "versioned soname" bash -c "ls '$lib'/libportalock.so.0 && ls '$lib'/libportalock.so.0.1.0"
check "static library" test -f "$lib/libportalock.a"
check "CLI installed" "$prefix/bin/portalock" --version
check "man page installed" test -f "$prefix/share/man/man1/portalock.1"
check "package config" test -f "$lib/cmake/portalock/portalockConfig.cmake"

check "find_package configure" cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
check "find_package build" cmake --build "$work/b"
check "find_package shared consumer runs" env LD_LIBRARY_PATH="$lib" "$work/b/consumer_shared" "$work/lock1"
check "find_package static consumer runs" "$work/b/consumer_static" "$work/lock2"

export PKG_CONFIG_PATH="$lib/pkgconfig"
check "pkg-config knows portalock" pkg-config --exists portalock
check "pkg-config build (shared)" bash -c "$cc \$(pkg-config --cflags portalock) '$src/consumer.c' -o '$work/pc_shared' \$(pkg-config --libs portalock)"
check "pkg-config shared consumer runs" env LD_LIBRARY_PATH="$lib" "$work/pc_shared" "$work/lock3"
check "pkg-config build (static)" bash -c "$cc \$(pkg-config --cflags portalock) '$src/consumer.c' -o '$work/pc_static' '$lib/libportalock.a' \$(pkg-config --static --libs portalock | sed 's/-lportalock//')"
check "pkg-config static consumer runs" "$work/pc_static" "$work/lock4"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
