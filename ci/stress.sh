#!/usr/bin/env bash
# ci/stress.sh -- the long forms of stress/ (stress/README.md): kill storms
# sized to the run, the full fault sweep, crash consistency, the fuzzers,
# valgrind memcheck over the unit suite, and the ASan/UBSan and TSan passes.
# ci/test.sh runs the short forms (ctest label "stress").
#
#   ci/stress.sh [--minutes N] [--only SECTION,...]
#
# N (default 10) sizes the storms (1000*N acquisitions and 10*N kills per
# backend x kind, at least 10000 and 100 from N = 10 on), the crash rounds
# and the fuzzing time; valgrind and the sanitizer passes take what they
# take (valgrind: at most PL_VALGRIND_LIMIT seconds, default 1500, per unit
# binary; a binary that hangs under valgrind is a named failure).
# Sections: deps build storms faults crash contention fuzz asan tsan
# valgrind netfs redis (contention: the long forms of the cycling-holder
# tests of issue 9 defect 5, 240 runs each; netfs: the protocol-level NFS/SMB and two-host conformance, all of
# it, including the long SMB network cut that ci/test.sh leaves out; redis:
# the Redis lock's fault cases, N rounds each: stress/redis_faults.sh).
# PL_TEST_REDIS_PORT (default 56379) is the port of the test redis-server.
# PL_STRESS_OUT (default build-stress) is the directory for builds and logs
# (a second run beside the first, e.g. --only build,valgrind, needs its own).
# One function per section (section_NAME); add a section by writing its
# function and naming it in SECTIONS.  Every section appends its verdict and
# counts to build-stress/summary.txt, printed at the end; logs are in
# build-stress/logs/.  Exit status 1 if any section failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
minutes=10
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "ci/stress.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
case "$minutes" in
'' | *[!0-9]*) echo "ci/stress.sh: --minutes needs a whole number" >&2; exit 64 ;;
esac
[ "$minutes" -ge 1 ] || minutes=1

# valgrind last: it is the longest (about half an hour on 2 loaded cores).
SECTIONS="deps build storms faults crash contention fuzz asan tsan netfs redis valgrind"
out=${PL_STRESS_OUT:-build-stress}
logs=$root/$out/logs # absolute: some sections cd into a build
summary=$out/summary.txt
mkdir -p "$logs"
: >"$summary"
export TMPDIR=${TMPDIR:-/tmp}
# Storms and the fault sweep run on tmpfs: the lock semantics are the same
# and ext4's fsync would make the PidFileLock runs a hundred times slower;
# one storm and the crash runs stay on $TMPDIR's disk filesystem.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=$TMPDIR
failed=0

step() { printf '\n==== %s ====\n' "$*"; }
# record SECTION PASS|FAIL "counts"
record() {
    printf '%-9s %-4s %s\n' "$1" "$2" "$3" | tee -a "$summary"
    [ "$2" = PASS ] || failed=1
}
# run LOG CMD...: runs CMD with output to logs/LOG (and the tail on failure)
run() {
    local log=$logs/$1
    shift
    local rc=0
    echo "+ $*" | sed "s|$root/||g" >>"$log"
    "$@" >>"$log" 2>&1 || rc=$?
    [ "$rc" = 0 ] && return 0
    echo "---- failed ($rc): $* (last lines of ${log#"$root"/})"
    tail -n 30 "$log"
    return "$rc"
}
configure() { # DIR extra-cmake-args...
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON \
        -DPL_BUILD_BENCH=OFF -DPL_TEST_REDIS_PORT="${PL_TEST_REDIS_PORT:-56379}" \
        "$@" >/dev/null && cmake --build "$dir" -j"$jobs"
}

section_deps() {
    step "dependencies"
    if run deps.log bash ci/deps.sh; then
        record deps PASS "$(tail -n 1 "$logs/deps.log")"
    else
        record deps FAIL "see $out/logs/deps.log"
    fi
}

section_build() {
    step "build (-Werror)"
    if run build.log configure $out/build; then
        record build PASS "library, unit tests, stress programs"
    else
        record build FAIL "see $out/logs/build.log"
    fi
}

section_storms() {
    step "kill storms"
    local acq=$((minutes * 1000)) kills=$((minutes * 10)) ok=PASS
    local bin=$out/build/stress/pl_storm
    [ "$acq" -ge 10000 ] || [ "$minutes" -lt 10 ] || acq=10000
    run storms.log "$bin" --backend all --kind all --procs 16 --threads 2 \
        --acquisitions "$acq" --kills "$kills" --max-seconds 900 \
        --dir "$shm" || ok=FAIL
    # The same on the disk filesystem, smaller (fsync per PID file).
    run storms.log "$bin" --backend all --kind lock,pidfile,mixed --procs 16 \
        --threads 2 --acquisitions $((acq / 5)) --kills $((kills / 2 + 1)) \
        --max-seconds 900 --dir "$TMPDIR" || ok=FAIL
    # PidFileLocks through named temporary files (O_TMPFILE refused, as on
    # NFS): the path where a kill leaves a ".tmp" for the next acquire.
    run storms.log "$bin" --backend all --kind pidfile --no-tmpfile \
        --procs 16 --threads 2 --acquisitions $((acq / 5)) \
        --kills $((kills / 2 + 1)) --max-seconds 900 --dir "$TMPDIR" || ok=FAIL
    record storms $ok "$(grep -h 'storm summary' "$logs/storms.log" |
        sed 's/^storm summary: //' | paste -sd ';' -)"
}

section_faults() {
    step "fault injection (full sweep)"
    local ok=PASS
    run faults.log $out/build/stress/pl_faults --rounds 200 --dir "$shm" ||
        ok=FAIL
    record faults $ok "$(grep -hE '^faults: |checks passed' "$logs/faults.log" |
        paste -sd ';' -)"
}

section_crash() {
    step "crash consistency"
    local ok=PASS known=PASS
    run crash.log $out/build/stress/pl_crash --rounds "$minutes" || ok=FAIL
    record crash $ok "$(grep -h 'checks passed' "$logs/crash.log") ($(grep -h '^crash: ' "$logs/crash.log" | tail -n 2 | paste -sd ';' -))"
    # Issue 9 defect 1 (temporary files and second links left by a kill).
    run crash-leftovers.log $out/build/stress/pl_crash --only leftovers ||
        known=FAIL
    record leftovers $known "issue 9 defect 1: $(grep -h 'checks passed' "$logs/crash-leftovers.log")"
}

# Issue 9 defect 5: a contender among cycling TemporaryFileLock/PidFileLock
# holders only ever gets the lock or a timeout (never "split-brain"), in
# the library (240 runs per kind) and in the CLI (--temporary -w 0.2 -E 99:
# 240 runs, every status 0 or 99).  ci/test.sh runs 40 and 15.
section_contention() {
    step "contention at the deadline (240 runs each)"
    local ok=PASS
    [ -x $out/build/lib/tests/unit/pl_unit_temporary ] || configure $out/build
    run contention.log env PLT_STRESS_RUNS=240 \
        $out/build/lib/tests/unit/pl_unit_temporary --verbose \
        --filter 'temporary/cycling*' || ok=FAIL
    run contention.log env PL_CLI_STRESS_RUNS=240 bash \
        lib/tests/cli/test_kinds.sh $out/build/lib/portalock || ok=FAIL
    record contention $ok "$(grep -hE 'runs: |cycling holders' "$logs/contention.log" | sed 's/^\[----\] //' | paste -sd ';' -)"
}

section_netfs() {
    step "protocol-level NFS/SMB and two hosts (ctest -L netfs)"
    local ok=PASS
    [ -f $out/build/CTestTestfile.cmake ] || configure $out/build
    run netfs.log sh -c "cd $out/build && ctest --output-on-failure --timeout 900 -L netfs" || ok=FAIL
    record netfs $ok "$(grep -h 'tests passed' "$logs/netfs.log" | tail -n 1)"
}

section_fuzz() {
    step "fuzzers"
    if ! command -v clang >/dev/null; then
        record fuzz FAIL "clang not installed"
        return
    fi
    if ! run fuzz.log configure $out/fuzz -DCMAKE_C_COMPILER=clang \
        -DCMAKE_BUILD_TYPE=Debug -DPL_BUILD_FUZZERS=ON \
        -DPL_BUILD_UNIT_TESTS=OFF -DPL_BUILD_CONFORMANCE=OFF; then
        record fuzz FAIL "build, see $out/logs/fuzz.log"
        return
    fi
    local dir=$out/fuzz/stress/fuzz ok=PASS counts="" f name secs runs
    local targets
    targets=$(find "$dir" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
    local n
    n=$(echo "$targets" | wc -w)
    secs=$((minutes * 60 * 15 / 100 / (n > 0 ? n : 1)))
    [ "$secs" -ge 10 ] || secs=10
    for f in $targets; do
        name=$(basename "$f")
        mkdir -p "$dir/work/$name" "$dir/artifacts"
        if run "fuzz-$name.log" "$f" -max_total_time="$secs" -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$dir/artifacts/$name-" \
            "$dir/work/$name" "stress/fuzz/corpus/$name"; then
            runs=$(grep -h 'stat::number_of_executed_units' "$logs/fuzz-$name.log" | tail -n 1 | awk '{print $2}')
            counts="$counts $name ${runs:-?} runs in ${secs}s;"
        else
            ok=FAIL
            counts="$counts $name CRASHED (see $dir/artifacts);"
        fi
    done
    record fuzz $ok "${counts# }"
}

section_valgrind() {
    step "valgrind memcheck (unit suite, faults, crash, a small storm)"
    if ! command -v valgrind >/dev/null; then
        record valgrind FAIL "valgrind not installed"
        return
    fi
    local shim=$root/$out/build/stress/libpl_valgrind_ofd_poll.so
    local xml=$root/$out/valgrind # one XML report per process
    rm -rf "$xml"
    mkdir -p "$xml"
    # Criterion re-executes itself for every test: follow the children.
    # Reports are counted from the XML files (every process, forked test
    # helpers included), not from exit statuses.  The shim is needed for
    # the ofd backend under valgrind 3.19 (stress/valgrind/ofd_poll.c).
    local vg=(env LD_PRELOAD="$shim" valgrind --trace-children=yes --quiet
        --leak-check=full --show-leak-kinds=definite
        --errors-for-leak-kinds=definite --suppressions=stress/valgrind.supp
        --xml=yes)
    local ok=PASS n=0 tests=0 bad="" slow="" t rc name
    # Bounds.  Every test runs in its own valgrind process (startup and a
    # leak check each: seconds per test on 2 loaded cores, 20-50x slower
    # code), so the suites' own timeouts (60-120 s, sized for native runs)
    # are replaced by one of 600 s per test, and the bound per binary (a
    # backstop for a hung runner: a named failure, not a stuck run) is
    # generous: 25 min by default.  A test that hits its timeout or crashes
    # (Criterion: ERRORED) fails the section: its code did not run to the
    # end under memcheck.  Tests that fail their own assertions are named in
    # the summary but do not fail it: the unit suite's time bounds are set
    # for native runs (a 0.3 s deadline given up by 0.8 s), memcheck makes
    # the code 20-50x slower, and those tests are judged natively (ci/test.sh,
    # the asan section); a memory error behind a failure is a report here.
    local limit=${PL_VALGRIND_LIMIT:-1500} ttimeout=600
    [ -f "$shim" ] || { record valgrind FAIL "no $shim (build)"; return; }
    for t in $out/build/lib/tests/unit/pl_unit_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        n=$((n + 1))
        rc=0
        run valgrind.log timeout -k 10 "$limit" "${vg[@]}" \
            --xml-file="$xml/$name.%p.xml" "$t" --jobs 2 \
            --timeout "$ttimeout" --json="$xml/$name.json" || rc=$?
        tests=$((tests + $(grep -c '"status": ' "$xml/$name.json" 2>/dev/null || echo 0)))
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            bad="$bad $name(hung>${limit}s)"
        elif [ "$rc" != 0 ]; then
            # Criterion's own verdict: name the tests that did not pass.
            local errored failed
            errored=$(criterion_tests "$xml/$name.json" ERRORED)
            failed=$(criterion_tests "$xml/$name.json" FAILED)
            [ -z "$failed" ] || slow="$slow $name($failed)"
            [ -n "$errored$failed" ] || errored="status $rc"
            [ -z "$errored" ] || bad="$bad $name($errored)"
        fi
    done
    run valgrind.log "${vg[@]}" --xml-file="$xml/pl_faults.%p.xml" \
        $out/build/stress/pl_faults --quick --rounds 10 --dir "$shm" ||
        bad="$bad pl_faults"
    run valgrind.log "${vg[@]}" --xml-file="$xml/pl_crash.%p.xml" \
        $out/build/stress/pl_crash --only atomic,pidfile || bad="$bad pl_crash"
    run valgrind.log "${vg[@]}" --xml-file="$xml/pl_storm.%p.xml" \
        $out/build/stress/pl_storm --procs 4 --acquisitions 100 --kills 4 \
        --dir "$shm" || bad="$bad pl_storm"
    # Every memcheck report (suppressed ones are not in the XML).
    local procs reports
    procs=$(find "$xml" -name '*.xml' | wc -l)
    reports=$(cat "$xml"/*.xml 2>/dev/null | grep -c '<error>')
    if [ "$reports" != 0 ]; then
        bad="$bad $reports-memcheck-reports($(cat "$xml"/*.xml |
            grep -oE '<kind>[A-Za-z_]+</kind>' | sort | uniq -c |
            sed -E 's/ *([0-9]+) <kind>(.*)<.kind>/\2 x\1/' | paste -sd, -))"
        grep -l '<error>' "$xml"/*.xml | sed "s|^$root/|  report in |" >>"$logs/valgrind.log"
    fi
    [ -z "$bad" ] || ok=FAIL
    record valgrind $ok "$n unit binaries ($tests tests) + pl_faults, pl_crash, pl_storm; $procs processes under memcheck, $reports reports; failures:${bad:- none}; time bounds missed under memcheck:${slow:- none}"
}

# criterion_tests JSON STATUS: the names of the tests with that status in a
# Criterion --json report, comma-separated.
criterion_tests() {
    tr -d '\n' <"$1" 2>/dev/null |
        grep -oE '"name": "[a-z0-9_]+", *"assertions": [0-9]+, *"status": "'"$2"'"' |
        sed -E 's/"name": "([a-z0-9_]+)".*/\1/' | paste -sd, -
}

section_asan() {
    # ci/test.sh already runs unit, cli, conformance and redis under ASan;
    # here the unit suite again and the long stress forms.
    step "ASan + UBSan (unit suite, long storm, full fault sweep, crash)"
    local ok=PASS
    if ! run asan.log configure $out/asan -DCMAKE_BUILD_TYPE=Debug \
        -DPL_SANITIZE="address;undefined" -DPL_BUILD_CONFORMANCE=OFF; then
        record asan FAIL "build, see $out/logs/asan.log"
        return
    fi
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export LSAN_OPTIONS=suppressions=$root/stress/lsan.supp
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    (cd $out/asan && run asan.log ctest --output-on-failure --timeout 900 \
        -L unit) || ok=FAIL
    run asan.log $out/asan/stress/pl_storm --procs 16 --acquisitions 2000 \
        --kills 20 --dir "$shm" --max-seconds 900 || ok=FAIL
    run asan.log $out/asan/stress/pl_faults --rounds 50 --dir "$shm" || ok=FAIL
    run asan.log $out/asan/stress/pl_crash --rounds 2 || ok=FAIL
    record asan $ok "$(grep -hE 'tests passed|storm summary|pl_faults:|pl_crash:' "$logs/asan.log" | paste -sd ';' -)"
}

section_tsan() {
    step "ThreadSanitizer (stress programs)"
    local ok=PASS
    if ! run tsan.log configure $out/tsan -DCMAKE_BUILD_TYPE=Debug \
        -DPL_SANITIZE=thread -DPL_BUILD_UNIT_TESTS=OFF \
        -DPL_BUILD_CONFORMANCE=OFF; then
        record tsan FAIL "build, see $out/logs/tsan.log"
        return
    fi
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    run tsan.log $out/tsan/stress/pl_storm --procs 8 --threads 3 \
        --kind lock,rlock,semaphore,mixed \
        --acquisitions $((minutes * 30)) --kills "$minutes" \
        --dir "$shm" --max-seconds 900 || ok=FAIL
    run tsan.log $out/tsan/stress/pl_faults --only eintr,enolck,thread \
        --rounds 20 --dir "$shm" || ok=FAIL
    run tsan.log $out/tsan/stress/pl_crash --only atomic || ok=FAIL
    record tsan $ok "$(grep -hE 'storm summary|pl_faults:|pl_crash:' "$logs/tsan.log" | paste -sd ';' -)"
}

# ---- Redis (issue 8) ------------------------------------------------------
# The Redis lock's fault cases (stalls, forged pings, restarts with
# persistence, fork, reconnecting waiters, the netns partition), N rounds
# each, on their own redis-servers (the partition on PL_TEST_REDIS_PORT+1).
section_redis() {
    step "Redis fault cases ($minutes rounds each)"
    local ok=PASS
    [ -x $out/build/conformance/redis/pl_redis_faults ] || configure $out/build
    run redis.log sh stress/redis_faults.sh "$root/$out/build" "$minutes" \
        $((${PL_TEST_REDIS_PORT:-56379} + 8)) || ok=FAIL
    record redis $ok "$(grep -hE '^redis-faults: ' "$logs/redis.log" |
        sed 's/^redis-faults: //' | paste -sd ';' -)"
}

start=$(date +%s)
echo "ci/stress.sh: --minutes $minutes, logs in $out/logs"
for s in $SECTIONS; do
    if [ -n "$only" ] && ! echo ",$only," | grep -q ",$s,"; then
        continue
    fi
    "section_$s"
done
elapsed=$(($(date +%s) - start))
step "summary ($((elapsed / 60))m$((elapsed % 60))s, --minutes $minutes)"
cat "$summary"
if [ "$failed" = 0 ]; then
    echo "ci/stress.sh: all sections passed"
else
    echo "ci/stress.sh: some sections failed (logs in $out/logs)"
fi
exit "$failed"
