#!/bin/bash
# test_kinds.sh -- the portalock CLI's additions over flock(1): --pid,
# --temporary, --semaphore, --verbose, "portalock probe", and the failure
# paths of --redis (an unreachable server, a malformed URL).  The Redis lock
# itself is tested by the Redis suite against a real server.
#
#   bash test_kinds.sh PORTALOCK_BINARY
. "$(dirname "$0")/lib.sh" "$@"

# ---- --pid -----------------------------------------------------------------------
P=$T/app.pid
if start_holder p1 --pid "$P"; then
    hpid=${HOLDER_PID[p1]}
    check "--pid: the PID file holds the holder's pid ($hpid)" [ "$(cat "$P" 2>/dev/null)" = "$hpid" ]
    check "--pid: the OS lock is on the sidecar FILE.lock" [ -e "$P.lock" ]
    run --pid -n "$P" true
    check_rc "--pid: conflict -> 1" 1 "$RC"
    check "--pid: conflict is silent without --verbose (as flock(1))" [ -z "$ERR" ]
    run --pid -n --verbose --verbose "$P" true
    check_grep "--pid --verbose twice: conflict names the holder's pid and that it is alive" "^portalock: $P: lock is held by pid $hpid \(alive\)" "$ERR"
    t0=$(now)
    run --pid -w 0.3 --verbose --verbose "$P" true
    dt=$(elapsed_since "$t0")
    check_rc "--pid -w 0.3: timeout -> 1" 1 "$RC"
    check_grep "--pid -w 0.3: flock(1)'s timeout message" "^portalock: timeout while waiting to get lock$" "$ERR"
    check_grep "--pid -w 0.3: --verbose twice names the holder" "lock is held by pid $hpid" "$ERR"
    # Lower bound: -w must apply to PidFileLock too (fail_when_locked off).
    check "--pid -w 0.3 waited (${dt}s in [0.25, 2.5])" in_range "$dt" 0.25 2.5
    release_holder p1
    check_rc "--pid: holder's status passes through" 0 "$HOLDER_RC"
    run --pid -n "$P" -c "cat '$P'"
    check_rc "--pid: free after release" 0 "$RC" "$ERR"
    check_grep "--pid: the command sees portalock's pid in FILE" '^[1-9][0-9]*$' "$OUT"
    # shellcheck disable=SC2016
    run --pid "$P" -c 'for l in /proc/$$/fd/*; do readlink "$l"; done'
    if printf '%s\n' "$OUT" | grep -q -- "$P"; then
        fail "--pid: the lock descriptor is not passed to the command" "$(printf '%s' "$OUT" | tr '\n' ' ')"
    else
        pass "--pid: the lock descriptor is not passed to the command"
    fi
    check "--pid: FILE and FILE.lock are removed afterwards" [ ! -e "$P" ] && [ ! -e "$P.lock" ]
else
    fail "--pid: holder acquires" "$(cat "$T/holder.p1.err")"
fi

# ---- --pid: a holder recorded on another host (issue 9, defect 8) --------------------
# The PID names this (alive) shell, but the record says another host: the
# conflict must not call it alive (a local kill(pid, 0) judges the wrong
# process), it says "unknown".
P2=$T/far.pid
echo $$ >"$P2"
printf 'portalock-holder 1\npid %s\nhost elsewhere.invalid\npidns 0:1\nend\n' $$ >"$P2.lock"
if start_holder far "$P2.lock"; then
    run --pid -n --verbose --verbose "$P2" true
    check_rc "--pid, holder on another host: conflict -> 1" 1 "$RC"
    check_grep "--pid, holder on another host: liveness unknown, host named" "held by pid $$ \(unknown: another host or PID namespace\) on host elsewhere\.invalid" "$ERR"
    release_holder far
else
    fail "--pid, holder on another host: holder acquires" "$(cat "$T/holder.far.err")"
fi

# ---- --temporary --------------------------------------------------------------------
Q=$T/tmp.lock
run --temporary "$Q" -c "test -e '$Q'"
check_rc "--temporary: the file exists while the command runs" 0 "$RC" "$ERR"
check "--temporary: the file is removed afterwards" [ ! -e "$Q" ]
if start_holder t1 --temporary "$Q"; then
    run --temporary -n "$Q" true
    check_rc "--temporary: conflict -> 1" 1 "$RC"
    release_holder t1
    check "--temporary: removed after the holder's release" [ ! -e "$Q" ]
else
    fail "--temporary: holder acquires" "$(cat "$T/holder.t1.err")"
fi
run --temporary "$Q" -c 'exit 9'
check_rc "--temporary: status passes through, file removed" 9 "$RC" "$ERR"
check "--temporary: file removed after a failing command" [ ! -e "$Q" ]

# ---- --temporary under cycling holders (issue 9, defect 5) -----------------------------
# Four holders take and release the lock in a loop; a contender with -w 0.2
# must either run its command or report the conflict with -E's status, never
# fail with another error (it used to report "split-brain" at the deadline).
# PL_CLI_STRESS_RUNS sets the number of contender runs (long form: 240).
R=$T/cycle.lock
for i in 1 2 3 4; do
    (while [ ! -e "$T/cycle.stop" ]; do "$PL" --temporary -w 5 "$R" true; done) &
    BG+=($!)
done
runs=${PL_CLI_STRESS_RUNS:-15}
got=0 conflict=0 other=""
for ((i = 0; i < runs; i++)); do
    run --temporary -w 0.2 -E 99 "$R" true
    case $RC in
    0) got=$((got + 1)) ;;
    99) conflict=$((conflict + 1)) ;;
    *) other="$other run $i: status $RC: $ERR;" ;;
    esac
done
touch "$T/cycle.stop"
check "--temporary -w 0.2 -E 99 under cycling holders: $runs runs ($got ran, $conflict conflicts), only 0 or 99" [ -z "$other" ]
[ -z "$other" ] || echo "  $other"

# ---- --semaphore ----------------------------------------------------------------------
D=$T/sem
mkdir "$D"
if start_holder m1 --semaphore 2 --directory "$D" jobs && start_holder m2 --semaphore 2 --directory "$D" jobs; then
    pass "--semaphore 2: two holders get in"
    check "--semaphore: slot files jobs.00.lock and jobs.01.lock" [ -e "$D/jobs.00.lock" ] && [ -e "$D/jobs.01.lock" ]
    run --semaphore 2 --directory "$D" -n --verbose --verbose jobs true
    check_rc "--semaphore 2: a third holder is refused -> 1" 1 "$RC"
    check_grep "--semaphore: message says all slots are held" "^portalock: jobs: all 2 slots are held" "$ERR"
    run --semaphore 2 --directory "$D" -n -E 75 jobs true
    check_rc "--semaphore: -E applies" 75 "$RC"
    run --semaphore 3 --directory "$D" -n jobs -c 'exit 6'
    check_rc "--semaphore 3: the third slot is free (status passes)" 6 "$RC" "$ERR"
    # shellcheck disable=SC2016
    run --semaphore 3 --directory "$D" -n jobs -c 'for l in /proc/$$/fd/*; do readlink "$l"; done'
    if printf '%s\n' "$OUT" | grep -q -- "$D/jobs"; then
        fail "--semaphore: the slot descriptor is not passed to the command" "$(printf '%s' "$OUT" | tr '\n' ' ')"
    else
        pass "--semaphore: the slot descriptor is not passed to the command"
    fi
    release_holder m1
    run --semaphore 2 --directory "$D" -n jobs true
    check_rc "--semaphore 2: a slot is free after one release" 0 "$RC" "$ERR"
    release_holder m2
else
    fail "--semaphore 2: two holders get in" "$(cat "$T/holder.m1.err" "$T/holder.m2.err" 2>/dev/null)"
fi
run --semaphore 2 --directory "$T/nosuchdir" -n jobs true
check_rc "--semaphore: missing directory -> 1" 1 "$RC"
check_grep "--semaphore: missing directory message" 'nosuchdir' "$ERR"

# ---- a read-only lock file (as an unprivileged user) ---------------------------
# flock(1) opens read-only, so a file one may read but not write can carry a
# flock() or shared lock; portalock opens as flock(1) does.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups "$PL" --version >/dev/null 2>&1; then
    chmod 0755 "$T"
    mkdir -m 0755 "$T/ro"
    : >"$T/ro/ro.lock"
    chmod 0644 "$T/ro/ro.lock"
    nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$PL" "$@" >"$T/out" 2>"$T/err"; RC=$?; ERR=$(cat "$T/err"); }
    nobody "$T/ro/ro.lock" -c 'exit 5'
    check_rc "read-only FILE: flock lock taken read-only (status passes)" 5 "$RC" "$ERR"
    nobody -s --backend ofd "$T/ro/ro.lock" true
    check_rc "read-only FILE: shared ofd lock taken read-only" 0 "$RC" "$ERR"
    nobody --backend ofd "$T/ro/ro.lock" true
    check_rc "read-only FILE: exclusive ofd lock needs write access -> 66 (as flock --fcntl)" 66 "$RC"
    check_grep "read-only FILE: permission message" 'Permission denied|permission denied' "$ERR"
    nobody "$T/ro/new.lock" true
    check_rc "unwritable directory: cannot create FILE -> 66 (as flock(1))" 66 "$RC"
    check "unwritable directory: nothing created" [ ! -e "$T/ro/new.lock" ]
    chmod 0700 "$T"
else
    echo "skip - read-only lock file checks: need root and setpriv(1) to run as uid 65534, and $PL executable by it"
fi

# ---- --verbose ---------------------------------------------------------------------------
V=$T/v.lock
run --verbose "$V" true
check_rc "--verbose: exit 0" 0 "$RC" "$ERR"
check_grep "--verbose: flock(1)'s lines on stdout" "^portalock: getting lock took [0-9]+\.[0-9]{6} seconds portalock: executing true$" "$(printf '%s' "$OUT" | tr '\n' ' ')"
check "--verbose: nothing on stderr (as flock(1))" [ -z "$ERR" ]
run --verbose --verbose "$V" true
check_grep "--verbose: reports the wait and backend" "^portalock: $V: exclusive lock acquired after [0-9.]+ s \(backend flock\)" "$ERR"
check_grep "--verbose: reports the probe verdict" "^portalock: probe of $T: " "$ERR"
run --verbose --verbose -s --backend ofd "$V" true
check_grep "--verbose: shared lock with ofd" "shared lock acquired after [0-9.]+ s \(backend ofd\)" "$ERR"

# ---- probe -------------------------------------------------------------------------------
before=$(ls -A "$T")
run probe "$T"
check_rc "probe: exit 0" 0 "$RC" "$ERR"
check_grep "probe: fstype line" '^fstype: +[a-z0-9.]+' "$OUT"
check_grep "probe: network line" '^network: +(yes|no|unknown)$' "$OUT"
check_grep "probe: flock works here" '^backends: .*flock' "$OUT"
check_grep "probe: blocking line" '^blocking: ' "$OUT"
check_grep "probe: coherence line" '^coherence: ' "$OUT"
check_grep "probe: guarantee line" '^guarantee: +.+' "$OUT"
check "probe: leaves nothing behind" [ "$(ls -A "$T")" = "$before" ]
run probe "$T" --json
check_rc "probe --json: exit 0" 0 "$RC" "$ERR"
if printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, dict) and d' 2>"$T/json.err"; then
    pass "probe --json: valid JSON object"
else
    fail "probe --json: valid JSON object" "$(cat "$T/json.err"): $OUT"
fi
run probe "$T/no/such/dir"
check_rc "probe: missing path -> 1" 1 "$RC"
check_grep "probe: missing path message" "^portalock probe: $T/no/such/dir: " "$ERR"
run probe
check_rc "probe: no PATH -> 64" 64 "$RC"
run probe "$T" --bogus
check_rc "probe: unknown option -> 64" 64 "$RC"

# ---- --redis failure paths --------------------------------------------------------------
# A closed high port on loopback: the connection is refused at once.
port=
for p in 59123 59789 60411 61237 62551; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        port=$p
        break
    fi
done
if [ -n "$port" ]; then
    t0=$(now)
    run --redis "redis://127.0.0.1:$port" -n pl-cli-test true
    dt=$(elapsed_since "$t0")
    check_rc "--redis unreachable -> 1" 1 "$RC"
    if printf '%s' "$ERR" | grep -q 'built without Redis support'; then
        echo "skip - --redis unreachable message: this build has no Redis support (hiredis); got: $ERR"
    else
        check_grep "--redis unreachable: clear message" "pl-cli-test.*127\.0\.0\.1:$port|127\.0\.0\.1:$port.*(reach|refused|connect)" "$ERR"
    fi
    # Refused at once; 3 s covers the 1 s connect timeout if it applied.
    check "--redis unreachable fails fast (${dt}s < 3s)" in_range "$dt" 0 3
else
    echo "skip - --redis unreachable: no closed port found among the candidates"
fi
run --redis "http://127.0.0.1:1" name true
check_rc "--redis malformed URL -> 64" 64 "$RC"
check_grep "--redis malformed URL message" "invalid --redis URL" "$ERR"

# ---- -w of a few microseconds, every kind and backend ------------------------------
# A deadline that strikes before the wait has begun (before the blocking call
# is entered, or before the helper thread runs) once left a range wait blocked
# for good (test_flock_compat.sh).  The same edge for the kinds and backends:
# each run must time out (1); 137 = hung (timeout's SIGKILL after 5 s).
for form in "--backend flock" "--backend lockf" "--backend ofd" "--temporary" "--pid" "--semaphore 1 --directory $T"; do
    F=$T/tiny.${form//[^a-z]/}
    case $form in --semaphore*) F=tiny${form//[^a-z]/} ;; esac
    # shellcheck disable=SC2086 # form is several words on purpose
    if start_holder tiny $form "$F"; then
        # shellcheck disable=SC2086
        tiny_waits 10 "0.000000001 0.000001 0.00001 0.0001" "$PL" $form -w "{w}" "$F" true
        check "$form: 40 runs of -w 1 ns-100 us on a held lock all time out (hung $HUNG, other exit $OTHER$FIRST)" \
            [ "$HUNG:$OTHER" = "0:0" ]
        release_holder tiny
    else
        fail "$form: holder for the -w edge runs" "$(cat "$T/holder.tiny.err")"
    fi
done

finish
