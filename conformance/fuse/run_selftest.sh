#!/usr/bin/env bash
# Runs plfwd_selftest on a fresh two-mount plfwd setup from ci/fs.sh:
#   run_selftest.sh KIND WORKDIR SELFTEST    (PLFWD must name the plfwd binary)
# Exit 77 (skip, with the reason from ci/fs.sh) if KIND cannot run here.
set -u
kind=$1 work=$2 selftest=$3
fs="$(cd "$(dirname "$0")/../.." && pwd)/ci/fs.sh"
out=$("$fs" setup "$kind" "$work")
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
trap '"$fs" teardown "$kind" "$work"' EXIT
dir=$(sed -n 's/^dir=//p' <<<"$out")
dir2=$(sed -n 's/^dir2=//p' <<<"$out")
"$selftest" "$dir" "$dir2" "$(cd "$work" && pwd -P)/fs-$kind/backing"
