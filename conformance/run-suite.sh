#!/usr/bin/env bash
# run-suite.sh -- the ctest side of the mounted-filesystem conformance runs.
#
#   run-suite.sh setup KIND WORKDIR        ci/fs.sh setup; remembers dir/dir2
#   run-suite.sh run KIND WORKDIR SUITE [ARGS...]
#                                          runs SUITE with PL_CONFORMANCE_DIR,
#                                          PL_CONFORMANCE_DIR2 and
#                                          PL_CONFORMANCE_FS=KIND
#   run-suite.sh teardown KIND WORKDIR     ci/fs.sh teardown
#
# Exit 77 (ctest SKIP) with the reason on stderr when KIND cannot run here
# (not root, no FUSE, ci/fs.sh missing...); the run step repeats the reason
# recorded by setup, so every skipped test says why.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
fs_sh=${PL_FS_SH:-$here/../ci/fs.sh}

[ $# -ge 3 ] || { echo "usage: $0 setup|run|teardown KIND WORKDIR [SUITE...]" >&2; exit 2; }
step=$1 kind=$2 work=$3
shift 3
mkdir -p "$work"
state=$work/conformance-$kind.env

case $step in
setup)
    rm -f "$state"
    if [ ! -x "$fs_sh" ] && [ ! -f "$fs_sh" ]; then
        echo "skip=$fs_sh is missing: cannot mount $kind" >"$state"
        echo "conformance: $kind: SKIP: $fs_sh is missing" >&2
        exit 77
    fi
    out=$(bash "$fs_sh" setup "$kind" "$work" 2>"$state.err")
    rc=$?
    cat "$state.err" >&2
    if [ $rc -eq 77 ]; then
        reason=$(tr '\n' ' ' <"$state.err")
        echo "skip=${reason:-ci/fs.sh setup $kind exited 77}" >"$state"
        echo "conformance: $kind: SKIP: ${reason:-cannot run here}" >&2
        exit 77
    fi
    if [ $rc -ne 0 ]; then
        echo "fail=ci/fs.sh setup $kind failed with status $rc" >"$state"
        echo "conformance: $kind: setup failed (status $rc)" >&2
        exit 1
    fi
    printf '%s\n' "$out" | grep -E '^dir2?=' >"$state"
    grep -q '^dir=' "$state" || { echo "conformance: $kind: ci/fs.sh printed no dir=" >&2; echo "fail=no dir= from ci/fs.sh" >"$state"; exit 1; }
    cat "$state"
    ;;
run)
    [ $# -ge 1 ] || { echo "run: SUITE missing" >&2; exit 2; }
    if [ ! -f "$state" ]; then
        echo "conformance: $kind: SKIP: the mount fixture did not run (no $state)" >&2
        exit 77
    fi
    if grep -q '^skip=' "$state"; then
        echo "conformance: $kind: SKIP: $(sed -n 's/^skip=//p' "$state")" >&2
        exit 77
    fi
    if grep -q '^fail=' "$state"; then
        echo "conformance: $kind: the mount fixture failed: $(sed -n 's/^fail=//p' "$state")" >&2
        exit 1
    fi
    dir=$(sed -n 's/^dir=//p' "$state")
    dir2=$(sed -n 's/^dir2=//p' "$state")
    export PL_CONFORMANCE_DIR=$dir PL_CONFORMANCE_FS=$kind
    if [ -n "$dir2" ]; then export PL_CONFORMANCE_DIR2=$dir2; else unset PL_CONFORMANCE_DIR2; fi
    echo "conformance: $kind: dir=$dir${dir2:+ dir2=$dir2} backend=${PL_CONFORMANCE_BACKEND:-flock}" >&2
    exec "$@"
    ;;
teardown)
    if [ -f "$state" ] && grep -q '^skip=' "$state"; then
        rm -f "$state" "$state.err"
        exit 0
    fi
    rm -f "$state" "$state.err"
    [ -f "$fs_sh" ] || exit 0
    bash "$fs_sh" teardown "$kind" "$work"
    ;;
*)
    echo "unknown step $step" >&2
    exit 2
    ;;
esac
