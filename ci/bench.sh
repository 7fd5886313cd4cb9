#!/usr/bin/env bash
# ci/bench.sh -- benchmark portalock and write bench-report/.
#
#   ci/bench.sh [--quick] [--scale X] [--out DIR] [--no-deps] [--publish] [DIR ...]
#   ci/bench.sh --hosts A,B [--out DIR] [--no-deps] DIR [DIR_B]
#
# Installs what it needs (ci/deps.sh), builds in Release in its own build
# directory (build-bench-release), and benchmarks locking on each DIR.  With
# no DIR: the local disk (the report directory), /dev/shm, and the loop and
# loopback filesystems of ci/fs.sh (ext4, xfs, btrfs, overlay, sshfs, and the
# lock-forwarding FUSE mount plfwd with 0 / 100 us / 1 ms injected delay);
# those need root and are skipped, with the reason, otherwise.  A DIR you
# pass (say your NFS or SMB mount) is benchmarked as is.
#
# It starts a private redis-server on 127.0.0.1 at a free high port (pidfile,
# stopped on exit) for the Redis rows.  Output: bench-report/report.md
# (environment, targets, tables, embedded SVG plots), results.json, raw/.
#
#   --quick     smoke run (about half a minute; what ctest's bench.quick does)
#   --scale X   multiply the full run's sample counts and durations (default 1;
#               the full run takes about 4-6 minutes on 2 vCPUs)
#   --out DIR   report directory (default bench-report)
#   --no-deps   do not run ci/deps.sh
#   --publish   copy the report to bench/RESULTS.md (plots and JSON in
#               bench/results/) afterwards
#   --hosts A,B two machines that both mount DIR (B at DIR_B if it differs):
#               lock latency between them, run as "ssh A pl_contender" and
#               "ssh B pl_contender" ("local" = this machine), beside A + A;
#               PL_BENCH_CONTENDER (the contender's path on both hosts,
#               default this build's) and PL_BENCH_BACKEND (flock; prefer
#               lockf or ofd on NFS) adjust it (bench/netfs.sh)
# The full run also measures nfs-ganesha and samba at the protocol level
# and plfwd on two "hosts" (network namespaces; root) with bench/netfs.sh.
#   PL_BENCH_BUILD_DIR   build directory (default build-bench-release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

invocation="ci/bench.sh${*:+ $*}"
quick=0
scale=1
out=bench-report
deps=1
publish=0
hosts=""
dirs=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --scale) scale=${2:?--scale needs a value}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --no-deps) deps=0 ;;
    --publish) publish=1 ;;
    --hosts) hosts=${2:?--hosts needs A,B}; shift ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    *) dirs+=("$1") ;;
    esac
    shift
done
build=${PL_BENCH_BUILD_DIR:-$root/build-bench-release}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work="$out/.work" # fs.sh state, mounts, local-disk lock files
mkdir -p "$work" "$work/local"

step() { printf '[bench.sh] %s\n' "$*" >&2; }

# ---- cleanup: mounts, daemons (by PID), redis ------------------------------
fs_up=()
redis_port=""
cleanup() {
    set +e
    local k
    for k in "${fs_up[@]}"; do
        bash "$root/ci/fs.sh" teardown "$k" "$work" >/dev/null 2>&1 ||
            step "teardown of $k failed (see: ci/fs.sh teardown $k $work)"
    done
    if [ -n "$redis_port" ]; then
        sh "$root/ci/redis-fixture.sh" stop "$redis_port" "$work/redis" >/dev/null 2>&1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- dependencies + build --------------------------------------------------
if [ "$deps" = 1 ]; then
    step "dependencies (ci/deps.sh)"
    if ! bash ci/deps.sh >&2; then
        step "ci/deps.sh failed; continuing with what is installed"
    fi
fi
step "build (Release) in $build"
cfg=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPL_BUILD_BENCH=ON)
if ! cmake "${cfg[@]}" >"$work/cmake.log" 2>&1; then
    step "configure with tests failed (see $work/cmake.log); retrying without them"
    cmake "${cfg[@]}" -DBUILD_TESTING=OFF >"$work/cmake.log" 2>&1 ||
        { cat "$work/cmake.log" >&2; exit 1; }
fi
targets=(pl_core_check pl_cycle pl_handoff pl_contend pl_spawn portalock_cli)
help=$(cmake --build "$build" --target help 2>/dev/null || true)
grep -qw pl_bench <<<"$help" && targets+=(pl_bench)
have_plfwd=0
if grep -qw plfwd <<<"$help"; then
    targets+=(plfwd)
    have_plfwd=1
fi
cmake --build "$build" -j2 --target "${targets[@]}" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; exit 1; }

# ---- two hosts (--hosts): only the cross-host rows ------------------------------
if [ -n "$hosts" ]; then
    [ ${#dirs[@]} -ge 1 ] || { echo "bench.sh: --hosts A,B needs DIR [DIR_B]" >&2; exit 2; }
    cmake --build "$build" -j2 --target pl_contender >"$work/build-contender.log" 2>&1 ||
        { tail -n 20 "$work/build-contender.log" >&2; exit 1; }
    : >"$out/netfs.json"
    step "cross-host rows: $hosts on ${dirs[*]}"
    bash "$root/bench/netfs.sh" hosts "$build" "$out" "$hosts" "${dirs[@]}" >"$out/report.md"
    step "done: $out/report.md"
    exit 0
fi

# ---- filesystems --------------------------------------------------------------
run_args=()
if [ ${#dirs[@]} -gt 0 ]; then
    i=0
    for d in "${dirs[@]}"; do
        i=$((i + 1))
        [ -d "$d" ] || { echo "bench.sh: $d is not a directory" >&2; exit 2; }
        run_args+=(--fs "dir$i=$(cd "$d" && pwd)=given on the command line")
    done
else
    run_args+=(--fs "local=$work/local=the local disk (report directory)")
    run_args+=(--fs "tmpfs=/dev/shm=/dev/shm")
    if [ "$quick" = 1 ]; then
        run_args+=(--fs-skipped "loop and network filesystems: not in --quick")
    else
        export PL_BUILD_DIR=$build
        [ "$have_plfwd" = 1 ] && export PLFWD=$build/conformance/fuse/plfwd
        for kind in ext4 xfs btrfs overlay sshfs plfwd plfwd-100us plfwd-1ms; do
            if [ ! -f "$root/ci/fs.sh" ]; then
                run_args+=(--fs-skipped "$kind: ci/fs.sh not found")
                continue
            fi
            step "setting up $kind"
            fs_up+=("$kind")
            set +e
            info=$(bash "$root/ci/fs.sh" setup "$kind" "$work" 2>"$work/fs-$kind.err")
            rc=$?
            set -e
            if [ $rc -ne 0 ]; then
                reason=$(grep -v '^\s*$' "$work/fs-$kind.err" | tail -n 1)
                [ $rc -eq 77 ] && step "skip $kind: $reason" || step "setup of $kind failed: $reason"
                run_args+=(--fs-skipped "$kind: ${reason:-setup failed (exit $rc)}")
                continue
            fi
            d1=$(sed -n 's/^dir=//p' <<<"$info")
            d2=$(sed -n 's/^dir2=//p' <<<"$info")
            case "$kind" in
            ext4) note="loop image or the work dir if it is ext4" ;;
            xfs | btrfs) note="loop-mounted image" ;;
            overlay) note="overlayfs merged dir" ;;
            sshfs) note="sshfs over loopback; locks local to each mount" ;;
            plfwd) note="lock-forwarding FUSE, no delay" ;;
            plfwd-100us) note="lock-forwarding FUSE, 100 us per request (LAN NFS/SMB stand-in)" ;;
            plfwd-1ms) note="lock-forwarding FUSE, 1 ms per request (WAN NFS/SMB stand-in)" ;;
            esac
            run_args+=(--fs "$kind=$d1=$note")
            [ -n "$d2" ] && run_args+=(--fs-dir2 "$kind=$d2")
        done
    fi
fi

# ---- redis ------------------------------------------------------------------------
if [ -f "$root/ci/redis-fixture.sh" ] && command -v redis-server >/dev/null 2>&1; then
    for try in 1 2 3; do
        port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        if sh "$root/ci/redis-fixture.sh" start "$port" "$work/redis" >&2; then
            redis_port=$port
            break
        fi
    done
fi
if [ -n "$redis_port" ]; then
    run_args+=(--redis-port "$redis_port")
else
    run_args+=(--start-redis) # run.py says "not available: <reason>" if it cannot
fi

# ---- run ------------------------------------------------------------------------
mode=()
[ "$quick" = 1 ] && mode+=(--quick)
step "running the benchmarks (progress below; report in $out)"
/usr/bin/python3 "$root/bench/run.py" "${mode[@]}" --scale "$scale" --invocation "$invocation" \
    --bin-dir "$build/bench" --out "$out" --local-dir "$work/local" \
    --cli "$build/lib/portalock" --build-type Release "${run_args[@]}"
if [ "$quick" = 0 ] && [ ${#dirs[@]} -eq 0 ]; then
    step "protocol-level NFS/SMB and two-host rows (bench/netfs.sh)"
    cmake --build "$build" -j2 --target pl_contender pl_nfs_contender >"$work/build-netfs.log" 2>&1 ||
        step "pl_nfs_contender not built (libnfs-dev?): NFS rows skipped"
    : >"$out/netfs.json"
    bash "$root/bench/netfs.sh" servers "$build" "$out" "$scale" >>"$out/report.md" ||
        step "bench/netfs.sh failed (see above)"
fi
step "done: $out/report.md"
if [ "$publish" = 1 ]; then
    /usr/bin/python3 "$root/bench/publish.py" "$out" >&2
fi
