#!/usr/bin/env bash
# ci/conformance-matrix.sh -- the conformance matrix: implementation (ours,
# Python portalocker) x backend (flock, lockf, ofd) x filesystem (ci/fs.sh
# kinds), written to conformance/RESULTS.md and conformance/results.json.
#
#   ci/conformance-matrix.sh [-B BUILD_DIR] [-k "KIND..."] [-o OUT_DIR] [--no-build]
#
#   -B  build directory (default build-matrix; configured and built here
#       unless --no-build: pl_conformance pl_contender portalock_cli plfwd)
#   -k  filesystem kinds (default: ext4 tmpfs xfs btrfs overlay sshfs plfwd
#       plfwd-1ms)
#   -o  where RESULTS.md and results.json go (default: conformance/)
#
# Needs root for the mounts; a kind that cannot run here (ci/fs.sh exit 77)
# is listed in RESULTS.md with the reason.  Exit status 0 when every scenario
# is pass / expected-fail / not-applicable / not-coherent, 1 when any is fail
# or unexpected-pass (the report is written either way), 2 usage.
set -u -o pipefail
invocation="ci/conformance-matrix.sh${*:+ $*}"
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-matrix
kinds="ext4 tmpfs xfs btrfs overlay sshfs plfwd plfwd-1ms"
out=$root/conformance
do_build=1
python=/usr/bin/python3
while [ $# -gt 0 ]; do
    case $1 in
    -B) build=$(realpath -m "$2"); shift 2 ;;
    -k) kinds=$2; shift 2 ;;
    -o) out=$(realpath -m "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "conformance-matrix: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ $do_build -eq 1 ]; then
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/matrix-configure.log" 2>&1 ||
        { cat "$build/matrix-configure.log" >&2; exit 1; }
    cmake --build "$build" -j2 --target pl_conformance pl_contender portalock_cli >/dev/null ||
        { echo "conformance-matrix: build failed" >&2; exit 1; }
    cmake --build "$build" -j2 --target plfwd >/dev/null 2>&1 ||
        echo "conformance-matrix: plfwd not built (no libfuse3?): the plfwd kind will be skipped" >&2
fi
suite=$build/conformance/pl_conformance
ours=$build/conformance/contender/pl_contender
[ -x "$suite" ] && [ -x "$ours" ] || { echo "conformance-matrix: $suite or $ours missing" >&2; exit 1; }
py_contender="$python $root/conformance/adapters/portalocker_contender.py"
py_version=$($python -c 'import portalocker; print(portalocker.__version__)' 2>/dev/null || echo "")

work=$build/conformance/matrix-work
logs=$build/conformance/matrix-logs
mkdir -p "$work" "$logs" "$out"
rm -f "$logs"/*.log
results=$logs/results.jsonl
runs=$logs/runs.jsonl
: >"$results"
: >"$runs"
export PL_BUILD_DIR=$build

json_str() { $python -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

record_run() { # impl backend fs status reason log
    printf '{"implementation":%s,"backend":%s,"filesystem":%s,"status":%s,"reason":%s,"log":%s}\n' \
        "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" "$(json_str "$4")" \
        "$(json_str "$5")" "$(json_str "$6")" >>"$runs"
}

cleanup() {
    for k in $kinds; do
        [ -f "$work/.up-$k" ] && bash "$root/ci/fs.sh" teardown "$k" "$work" >/dev/null 2>&1
        rm -f "$work/.up-$k"
    done
}
trap cleanup EXIT

for kind in $kinds; do
    echo "== $kind" >&2
    setup_out=$(bash "$root/ci/fs.sh" setup "$kind" "$work" 2>"$logs/setup-$kind.log")
    rc=$?
    if [ $rc -ne 0 ]; then
        reason=$(tr '\n' ' ' <"$logs/setup-$kind.log" | sed 's/ *$//')
        [ $rc -eq 77 ] || reason="setup failed (status $rc): $reason"
        echo "   skipped: $reason" >&2
        record_run "*" "*" "$kind" "skipped" "$reason" "$logs/setup-$kind.log"
        continue
    fi
    touch "$work/.up-$kind"
    dir=$(printf '%s\n' "$setup_out" | sed -n 's/^dir=//p')
    dir2=$(printf '%s\n' "$setup_out" | sed -n 's/^dir2=//p')
    for impl in portalock portalocker; do
        if [ $impl = portalocker ] && [ -z "$py_version" ]; then
            record_run "portalocker" "*" "$kind" "skipped" "$python cannot import portalocker" ""
            continue
        fi
        for backend in flock lockf ofd; do
            log=$logs/$impl-$kind-$backend.log
            if [ $impl = portalock ]; then contender=$ours; else contender=$py_contender; fi
            start=$(date +%s.%N)
            env PL_CONFORMANCE_DIR="$dir" PL_CONFORMANCE_FS="$kind" \
                PL_CONFORMANCE_BACKEND="$backend" PL_CONFORMANCE_RESULTS="$results" \
                PORTALOCK_CONTENDER="$contender" \
                ${dir2:+PL_CONFORMANCE_DIR2="$dir2"} \
                "$suite" >"$log" 2>&1
            rc=$?
            secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            synth=$(grep -a 'Synthesis' "$log" | tail -1 | sed 's/^\[====\] //; s/ *$//')
            printf '   %-11s %-5s rc=%d %5.1fs %s\n' "$impl" "$backend" "$rc" "$secs" "$synth" >&2
            record_run "$impl" "$backend" "$kind" "$([ $rc -eq 0 ] && echo ok || echo failed)" "$synth" "$log"
        done
    done
    bash "$root/ci/fs.sh" teardown "$kind" "$work" >>"$logs/setup-$kind.log" 2>&1
    rm -f "$work/.up-$kind"
done

$python "$root/conformance/report.py" --results "$results" --runs "$runs" \
    --markdown "$out/RESULTS.md" --json "$out/results.json" --kinds "$kinds" \
    --invocation "$invocation"
report_rc=$?

# Protocol-level NFS/SMB (no kernel client) and two hosts: their own
# scenarios (conformance/netfs), appended as one more section.
if [ $do_build -eq 1 ]; then
    cmake --build "$build" -j2 --target pl_netfs_conformance pl_nfs_contender plfwd >/dev/null 2>&1 ||
        echo "conformance-matrix: some netfs targets not built (libnfs-dev?): those runs skip" >&2
fi
netfs_results=$logs/netfs.jsonl
: >"$netfs_results"
for kind in nfs-ganesha nfs-ganesha-netns samba samba-netns; do
    echo "== $kind (protocol level)" >&2
    PL_CONFORMANCE_RESULTS=$netfs_results bash "$root/conformance/netfs/run-netfs.sh" "$kind" \
        "$work/netfs" "$build/conformance/netfs/pl_netfs_conformance" \
        "$build/conformance/netfs/pl_nfs_contender" "$root/conformance/netfs/smb2_contender.py" \
        >"$logs/netfs-$kind.log" 2>&1
    echo "   rc=$? $(grep -a Synthesis "$logs/netfs-$kind.log" | tail -1 | sed 's/^\[====\] //')" >&2
done
echo "== plfwd-2host" >&2
PL_CONFORMANCE_RESULTS=$netfs_results bash "$root/conformance/netfs/run-2host.sh" "$work/netfs" \
    "$suite" "$ours" >"$logs/netfs-plfwd-2host.log" 2>&1
echo "   rc=$? $(grep -a Synthesis "$logs/netfs-plfwd-2host.log" | tail -1 | sed 's/^\[====\] //')" >&2
$python "$root/conformance/netfs/report_netfs.py" "$netfs_results" ci/conformance-matrix.sh >>"$out/RESULTS.md"
grep -q '"verdict": *"fail"' "$netfs_results" && report_rc=1
# The appended section too: no absolute machine paths in a committed report.
$python "$root/ci/pl_paths.py" "$out/RESULTS.md" || report_rc=1
exit $report_rc
