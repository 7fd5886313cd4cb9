#!/usr/bin/env bash
# run-2host.sh -- the cross-host scenarios of the file suite with two
# "hosts": this one (participant A) and namespace plnB reached through its
# own sshd (participant B, PORTALOCK_CONTENDER_B), each on its own plfwd
# mount of one backing directory (ci/fs.sh plfwd-2host).
#
#   run-2host.sh WORKDIR SUITE CONTENDER [SUITE ARGS...]
#
# Runs exclusivity, handoff, release_on_death and cross_mount with A and B
# alternating; exit 77 (ctest SKIP) with the reason when it cannot run here.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
fs_sh=${PL_FS_SH:-$here/../../ci/fs.sh}
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
work=$1 suite=$2 contender=$3
shift 3
mkdir -p "$work"
out=$(bash "$fs_sh" setup plfwd-2host "$work" 2>"$work/plfwd-2host.setup.err")
rc=$?
if [ $rc -ne 0 ]; then
    cat "$work/plfwd-2host.setup.err" >&2
    [ $rc -eq 77 ] && exit 77
    echo "conformance.plfwd-2host: ci/fs.sh setup failed ($rc)" >&2
    exit 1
fi
trap 'bash "$fs_sh" teardown plfwd-2host "$work" >&2' EXIT
val() { printf '%s\n' "$out" | sed -n "s/^$1=//p" | head -n1; }
mkdir -p "$(val dir)/conf" && chmod 1777 "$(val dir)/conf"
export PORTALOCK_CONTENDER=$contender
export PORTALOCK_CONTENDER_B="$(val ssh_b) $contender"
export PL_CONFORMANCE_DIR=$(val dir)/conf PL_CONFORMANCE_DIR_B=$(val dir2)/conf
export PL_CONFORMANCE_DIR2=$(val dir2)/conf PL_CONFORMANCE_FS=plfwd-2host
export CRITERION_JOBS=1
echo "conformance.plfwd-2host: B: $PORTALOCK_CONTENDER_B (paths under $PL_CONFORMANCE_DIR_B)" >&2
"$suite" --filter '*/@(exclusivity|handoff|release_on_death|cross_mount)' "$@"
