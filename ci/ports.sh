#!/usr/bin/env bash
# ci/ports.sh -- the port matrix on one Linux machine (conformance/PORTS.md).
#
# For each target: build the library, the CLI, the reference contender and
# the plain-C port checks with -Werror (no Criterion, no hiredis for the
# target: PL_BUILD_CONTENDER=ON, PL_BUILD_CONFORMANCE=OFF); run the port
# checks (ctest -L ports, through the toolchain's emulator); a CLI smoke;
# then the NATIVE conformance suite with the target's contender
# (PORTALOCK_CONTENDER="<emulator> <pl_contender>") on every backend, with
# PL_CONFORMANCE_PEER=native so the cross-implementation scenarios put the
# ported contender and the native one on the same file (mixed runs), and
# PL_CONFORMANCE_PEER_BACKEND=<the same backend> for semantics/mixed_backends
# (ported and native contender, one backend, one file: both exclude).
#
#   x86_64-linux-gnu        native build (the reference)
#   x86_64-linux-musl       musl-gcc (musl-tools), runs natively
#   i686-linux-gnu          gcc-i686-linux-gnu; natively if the kernel runs
#                           32-bit programs, else under qemu-i386
#   i686-linux-gnu-time64   the same with -D_TIME_BITS=64
#   aarch64-linux-gnu       qemu-aarch64
#   s390x-linux-gnu         qemu-s390x (big-endian)
#   posix-generic           what macOS and the BSDs compile, on glibc:
#                           PL_POSIX_PLATFORM=bsd with the Linux-only calls
#                           poisoned (ci/posix-portable.sh); runs natively,
#                           no OFD backend
#
# Environment:
#   PL_PORTS="t1 t2 ..."      targets (default: all six)
#   PL_PORTS_BACKENDS="..."   conformance backends (default: flock lockf ofd)
#   PL_PORTS_FILTER=GLOB      Criterion --filter for the suite (default
#                             "!(badinput/cli)": that scenario runs the
#                             native CLI, whatever the contender)
#   PL_PORTS_CYCLES=N         cycles for the per-call cost, median of five
#                             runs (default 5000;
#                             0 = skip)
#   PL_PORTS_OUT=DIR          results (default build-ports/results)
#   PL_PORTS_NO_DEPS=1        do not run ci/deps.sh
#   PL_PORTS_NATIVE=DIR       an existing native build tree with the suite
#                             (ci/test.sh passes build-ci); default: build
#                             build-ports/x86_64-linux-gnu
#
# Writes DIR/matrix.md (the table for conformance/PORTS.md), DIR/cost.tsv,
# and per target DIR/<target>.<step>.log; exits 1 if any cell is FAIL.
# Needs root only for apt (ci/deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
targets=${PL_PORTS:-"x86_64-linux-gnu x86_64-linux-musl i686-linux-gnu i686-linux-gnu-time64 aarch64-linux-gnu s390x-linux-gnu posix-generic"}
backends=${PL_PORTS_BACKENDS:-"flock lockf ofd"}
filter=${PL_PORTS_FILTER:-}
cycles=${PL_PORTS_CYCLES:-5000}
out=${PL_PORTS_OUT:-$root/build-ports/results}
export TMPDIR=${TMPDIR:-/tmp}

step() { printf '\n==== %s ====\n' "$*"; }

if [ "${PL_PORTS_NO_DEPS:-0}" != 1 ]; then
    step "dependencies"
    bash ci/deps.sh ci/packages.txt ci/ports-packages.txt || exit 1
fi
mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.jsonl "$out/cost.tsv"

# ---- the native suite -------------------------------------------------------
step "native build (the conformance suite and the peer contender)"
native=${PL_PORTS_NATIVE:-$root/build-ports/x86_64-linux-gnu}
if [ -n "${PL_PORTS_NATIVE:-}" ]; then
    build_native() { cmake --build "$native" -j"$jobs" --target pl_conformance pl_contender portalock_cli pl_port_checks; }
else
    build_native() {
        cmake -S . -B "$native" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON \
            -DPL_BUILD_BENCH=OFF -DPL_BUILD_STRESS=OFF -DPL_BUILD_UNIT_TESTS=OFF &&
            cmake --build "$native" -j"$jobs"
    }
fi
if ! build_native >"$out/native.build.log" 2>&1; then
    tail -30 "$out/native.build.log"
    echo "ports: the native build failed: nothing can run" >&2
    exit 1
fi
suite=$native/conformance/pl_conformance

# ---- per target -------------------------------------------------------------

# The command prefix that runs the target's programs ("" = natively).
runner_for() {
    case $1 in
    x86_64-linux-gnu | x86_64-linux-musl | posix-generic) echo "" ;;
    i686-linux-gnu*)
        # Some kernels are built or booted without 32-bit support.
        if [ -x "$TMPDIR/pl-ports-i686-probe" ] && "$TMPDIR/pl-ports-i686-probe" 2>/dev/null; then
            echo ""
        else
            echo "$(command -v qemu-i386) -L /usr/i686-linux-gnu"
        fi
        ;;
    aarch64-linux-gnu) echo "$(command -v qemu-aarch64) -L /usr/aarch64-linux-gnu" ;;
    s390x-linux-gnu) echo "$(command -v qemu-s390x) -L /usr/s390x-linux-gnu" ;;
    esac
}

if command -v i686-linux-gnu-gcc >/dev/null; then
    echo 'int main(void) { return 0; }' >"$TMPDIR/pl-ports-i686-probe.c"
    i686-linux-gnu-gcc -static -o "$TMPDIR/pl-ports-i686-probe" "$TMPDIR/pl-ports-i686-probe.c" 2>/dev/null || true
fi

declare -A cell
fails=0
mark() { # target column verdict
    cell[$1.$2]=$3
    case $3 in FAIL*) fails=$((fails + 1)) ;; esac
}

# CLI smoke: run, conflict exit code, timeout length, probe.
cli_smoke() { # runner cli dir
    local run=$1 cli=$2 d=$3 holder rc t0 t1
    # shellcheck disable=SC2086
    $run "$cli" "$d/smoke.lock" true || { echo "plain run failed"; return 1; }
    # shellcheck disable=SC2086
    $run "$cli" "$d/smoke.lock" -c 'exit 7'
    rc=$?
    [ $rc -eq 7 ] || { echo "exit status not passed on: $rc"; return 1; }
    # The holder is the native CLI: the ported one must see it (mixed).
    "$native/lib/portalock" "$d/smoke.lock" sleep 30 &
    holder=$!
    sleep 0.5
    # shellcheck disable=SC2086
    $run "$cli" -n -E 42 "$d/smoke.lock" true
    rc=$?
    [ $rc -eq 42 ] || { echo "-n against a native holder gave $rc, not 42"; kill $holder; wait $holder 2>/dev/null; return 1; }
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    $run "$cli" -w 0.5 -E 43 "$d/smoke.lock" true
    rc=$?
    t1=$(date +%s%N)
    kill $holder
    wait $holder 2>/dev/null
    [ $rc -eq 43 ] || { echo "-w 0.5 against a holder gave $rc, not 43"; return 1; }
    # Generous bounds (emulation is slow): early return is the bug looked for.
    if [ $(((t1 - t0) / 1000000)) -lt 450 ] || [ $(((t1 - t0) / 1000000)) -gt 10000 ]; then
        echo "-w 0.5 took $(((t1 - t0) / 1000000)) ms"
        return 1
    fi
    # shellcheck disable=SC2086
    $run "$cli" probe "$d" >/dev/null || { echo "probe failed"; return 1; }
    echo "cli smoke: pass (-w 0.5 took $(((t1 - t0) / 1000000)) ms)"
}

for t in $targets; do
    step "$t"
    b=$root/build-ports/$t
    flags=()
    case $t in
    x86_64-linux-gnu | posix-generic) ;;
    i686-linux-gnu-time64)
        flags=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchains/i686-linux-gnu.cmake"
            -DCMAKE_C_FLAGS=-D_TIME_BITS=64) ;;
    *) flags=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchains/$t.cmake") ;;
    esac
    run=$(runner_for "$t")
    if [ -n "$run" ]; then
        # shellcheck disable=SC2206
        emu=($run)
        flags+=("-DCMAKE_CROSSCOMPILING_EMULATOR=$(
            IFS=';'
            echo "${emu[*]}"
        )")
    fi
    # 1. build (-Werror).  The native target reuses the suite's build.
    if [ "$t" = posix-generic ]; then
        if bash ci/posix-portable.sh "$b" >"$out/$t.build.log" 2>&1; then
            mark "$t" build pass
        else
            mark "$t" build "FAIL (see $t.build.log)"
            tail -20 "$out/$t.build.log"
            continue
        fi
    elif [ "$t" != x86_64-linux-gnu ]; then
        if { cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON \
                -DPL_WITH_REDIS=OFF -DPL_BUILD_UNIT_TESTS=OFF -DPL_BUILD_CONFORMANCE=OFF \
                -DPL_BUILD_STRESS=OFF -DPL_BUILD_BENCH=OFF -DPL_BUILD_CONTENDER=ON \
                "${flags[@]}" && cmake --build "$b" -j"$jobs"; } >"$out/$t.build.log" 2>&1; then
            mark "$t" build pass
        else
            mark "$t" build "FAIL (see $t.build.log)"
            tail -20 "$out/$t.build.log"
            continue
        fi
    else
        b=$native
        mark "$t" build pass
    fi
    echo "build: ${cell[$t.build]}"
    contender=$b/conformance/contender/pl_contender

    # 2. port checks under the emulator.
    if (cd "$b" && ctest -L '^ports$' --output-on-failure --timeout 300) >"$out/$t.ports.log" 2>&1; then
        mark "$t" ports pass
    else
        mark "$t" ports "FAIL: $(grep -E '^\s*[0-9]+ - ' "$out/$t.ports.log" | awk '{print $3}' | tr '\n' ' ')"
    fi
    echo "port checks: ${cell[$t.ports]}"

    # 3. CLI smoke.
    d=$(mktemp -d "$TMPDIR/pl-ports.XXXXXX")
    if cli_smoke "$run" "$b/lib/portalock" "$d" >"$out/$t.cli.log" 2>&1; then
        mark "$t" cli pass
    else
        mark "$t" cli "FAIL: $(tail -1 "$out/$t.cli.log")"
    fi
    rm -rf "$d"
    echo "cli: ${cell[$t.cli]}"

    # 4. the native suite driving the target's contender, per backend.
    for be in $backends; do
        if [ "$t" = posix-generic ] && [ "$be" = ofd ]; then
            mark "$t" "conf.$be" "n/a (no OFD locks on macOS and the BSDs; F_OFD_* undefined in this build)"
            echo "conformance $be: ${cell[$t.conf.$be]}"
            continue
        fi
        d=$(mktemp -d "$TMPDIR/pl-ports.XXXXXX")
        # badinput/cli drives the native CLI whatever the contender is: the
        # ported CLI gets the smoke above, the native one ctest's runs.
        args=(--filter "${filter:-!(badinput/cli)}")
        # Under an emulator a timed-out wait overruns its deadline by up to
        # 0.3 s (the first pthread_cancel dlopens libgcc_s and qemu
        # translates it): timeout_expires gets 1 s of slack there instead of
        # 0.25 s (conformance/file/test_timing.c); its lower bound stays.
        slack=0.25
        [ -z "$run" ] || slack=1.0
        start=$(date +%s)
        if PL_CONFORMANCE_TIMEOUT_SLACK=$slack \
            PORTALOCK_CONTENDER="${run:+$run }$contender" PL_CONFORMANCE_PEER=native \
            PL_CONFORMANCE_PEER_BACKEND=$be PL_CONFORMANCE_BACKEND=$be PL_CONFORMANCE_DIR=$d \
            PL_CONFORMANCE_RESULTS=$out/$t.$be.jsonl \
            timeout 1200 "$suite" -j"$jobs" "${args[@]}" >"$out/$t.conformance.$be.log" 2>&1; then
            v=pass
        else
            v=FAIL
        fi
        # Scenario verdicts from the results file: "pass 20, n/a 1" and the
        # failed scenarios by name.
        syn=$(python3 - "$out/$t.$be.jsonl" <<'PY' 2>/dev/null
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
c = collections.Counter(r["verdict"] for r in rows)
bad = sorted(r["scenario"] for r in rows
             if r["verdict"] in ("fail", "unexpected-pass"))
short = {"not-applicable": "n/a"}
text = ", ".join("%s %d" % (short.get(k, k), n) for k, n in sorted(c.items()))
print(text + (": " + " ".join(bad) if bad else ""))
PY
)
        [ -n "$syn" ] || syn="no results: see $t.conformance.$be.log"
        mark "$t" "conf.$be" "$v ($syn; $(($(date +%s) - start)) s)"
        echo "conformance $be: ${cell[$t.conf.$be]}"
        rm -rf "$d"
    done

    # 5. per-call cost (a measurement; never a failure).
    if [ "$cycles" -gt 0 ]; then
        # The median of five runs: the machine may be shared, and a load
        # spike in one run should not become the number.
        for be in $backends; do
            vals=()
            for _ in 1 2 3 4 5; do
                # shellcheck disable=SC2086
                line=$(cd "$TMPDIR" && $run "$b/lib/tests/port/pl_port_checks" cycle "$be" "$cycles" 2>/dev/null | grep '^cycle')
                [ -n "$line" ] && vals+=("${line##*ns_per_cycle=}")
            done
            med=""
            [ ${#vals[@]} -gt 0 ] && med=$(printf '%s\n' "${vals[@]}" | sort -n | sed -n "$(((${#vals[@]} + 1) / 2))p")
            printf '%s\t%s\t%s\n' "$t" "$be" "$med" >>"$out/cost.tsv"
        done
    fi
done

# ---- the table --------------------------------------------------------------
{
    printf '| | %s |\n' "$(echo $targets | sed 's/ / | /g')"
    printf '|---|%s\n' "$(for _ in $targets; do printf -- '---|'; done)"
    for col in build ports cli $(for be in $backends; do echo conf.$be; done); do
        printf '| %s |' "$col"
        for t in $targets; do printf ' %s |' "${cell[$t.$col]:-n/a (not run)}"; done
        printf '\n'
    done
} >"$out/matrix.md"
step "matrix ($out/matrix.md)"
cat "$out/matrix.md"
if [ -s "$out/cost.tsv" ]; then
    step "per-call cost: one uncontended Lock acquire + release (median of 5 runs) ($out/cost.md)"
    python3 - "$out/cost.tsv" >"$out/cost.md" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
native = {b: float(v) for t, b, v in rows if t == "x86_64-linux-gnu" and v}
backends = list(dict.fromkeys(b for _, b, _ in rows))
targets = list(dict.fromkeys(t for t, _, _ in rows))
print("| target | " + " | ".join(backends) + " |")
print("|---|" + "---|" * len(backends))
for t in targets:
    cells = []
    for b in backends:
        v = [float(x) for tt, bb, x in rows if tt == t and bb == b and x]
        if not v:
            cells.append("n/a")
        elif b in native and t != "x86_64-linux-gnu":
            cells.append("%.1f us (%.1fx)" % (v[0] / 1e3, v[0] / native[b]))
        else:
            cells.append("%.1f us" % (v[0] / 1e3))
    print("| %s | %s |" % (t, " | ".join(cells)))
PY
    cat "$out/cost.md"
fi
if [ $fails -gt 0 ]; then
    echo "ports: $fails FAIL cell(s)" >&2
    exit 1
fi
echo "ports: all passed"
