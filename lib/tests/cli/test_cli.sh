#!/bin/bash
# test_cli.sh -- the flock(1)-compatible part of the portalock CLI:
# exit statuses, command forms, conflicts, timeouts, shared locks, -o, the
# FD form, backends, usage errors and error messages, signal forwarding,
# and interoperation with util-linux flock(1).
#
#   bash test_cli.sh PORTALOCK_BINARY [MAN_PAGE]
#
# Timing bounds are deliberately generous: the CI machine has 2 cores shared
# by several test suites, so a process start can take a few hundred ms.
. "$(dirname "$0")/lib.sh" "$@"
MAN=${2:-$(dirname "$0")/../../cli/portalock.1}
F=$T/job.lock

# ---- version, help, man page -------------------------------------------------
run --version
check_rc "--version exits 0" 0 "$RC"
check_grep "--version prints 'portalock 0.1.0'" '^portalock 0\.1\.0$' "$OUT"
run -V
check_grep "-V prints the version" '^portalock 0\.1\.0$' "$OUT"
run --help
check_rc "--help exits 0" 0 "$RC"
check_grep "--help shows usage and options" 'Usage: portalock.*--timeout' "$(printf '%s' "$OUT" | tr '\n' ' ')"
if [ -f "$MAN" ]; then
    pass "man page present ($MAN)"
    if command -v man >/dev/null; then
        page=$(MANWIDTH=80 man -l "$MAN" 2>"$T/manerr")
        check_grep "man page renders with NAME, EXIT STATUS, ENVIRONMENT" 'NAME.*EXIT STATUS.*PORTALOCK_BACKEND.*SEE ALSO' "$(printf '%s' "$page" | tr '\n' ' ')"
    else
        echo "skip - man page rendering: man(1) is not installed"
    fi
else
    fail "man page present" "$MAN missing"
fi

# ---- exit status passthrough, command forms ----------------------------------
run "$F" -c 'exit 0'
check_rc "-c 'exit 0' -> 0" 0 "$RC" "$ERR"
run "$F" -c 'exit 3'
check_rc "-c 'exit 3' -> 3" 3 "$RC" "$ERR"
run "$F" -c 'kill -TERM $$'
check_rc "command killed by SIGTERM -> 143" 143 "$RC" "$ERR"
run "$F" -- sh -c 'kill -KILL $$'
check_rc "command killed by SIGKILL -> 137 (-- form)" 137 "$RC" "$ERR"
run "$F" -- sh -c 'exit 5'
check_rc "-- form passes the status (5)" 5 "$RC" "$ERR"
run "$F" printf '%s|' a 'b c' ''
check_rc "FILE COMMAND ARGS form runs the command" 0 "$RC" "$ERR"
check "FILE COMMAND ARGS form keeps arguments intact" [ "$OUT" = "a|b c||" ]
run -c 'echo via-option' "$F"
check_grep "-c before FILE works" '^via-option$' "$OUT"
run "$F" --command 'echo long'
check_grep "FILE --command CMD works" '^long$' "$OUT"
run "$F" no-such-command-pl-test
check_rc "command not found -> 69 (flock(1): EX_UNAVAILABLE)" 69 "$RC"
check_grep "command not found is reported as flock(1) does" '^portalock: failed to execute no-such-command-pl-test: No such file or directory$' "$ERR"
printf 'echo hi\n' >"$T/noexec.sh"
chmod 0644 "$T/noexec.sh"
run "$F" "$T/noexec.sh"
check_rc "command not executable -> 69" 69 "$RC"
run "$F" -c 'no-such-command-pl-test'
check_rc "-c: the shell's own 127 passes through" 127 "$RC"
check "lock file is kept after the command" [ -f "$F" ]

# ---- conflicts, -E, -n, -w ----------------------------------------------------
check "holder acquires" start_holder h1 "$F"
t0=$(now)
run -n "$F" true
dt=$(elapsed_since "$t0")
check_rc "-n on a held lock -> 1" 1 "$RC"
check "-n conflict is silent without --verbose (as flock(1))" [ -z "$ERR$OUT" ]
run -n --verbose "$F" true
check_grep "-n --verbose: flock(1)'s message" '^portalock: failed to get lock$' "$ERR"
# Bound 1.5 s: one attempt plus a process start on a loaded 2-core machine.
check "-n fails fast (${dt}s < 1.5s)" in_range "$dt" 0 1.5
run -n -E 42 "$F" true
check_rc "-E 42 on conflict -> 42" 42 "$RC"
run -E 0 -n "$F" true
check_rc "-E 0 on conflict -> 0" 0 "$RC"
t0=$(now)
run -w 0.5 "$F" true
dt=$(elapsed_since "$t0")
check_rc "-w 0.5 on a held lock -> 1" 1 "$RC"
check "-w timeout is silent without --verbose (as flock(1))" [ -z "$ERR$OUT" ]
# Lower bound 0.4 s: the kernel wait must last the timeout (minus clock
# granularity); upper 2.5 s: timeout + process start on a busy machine.
check "-w 0.5 waits about 0.5 s (${dt}s in [0.4, 2.5])" in_range "$dt" 0.4 2.5
run -w 0 "$F" true
check_rc "-w 0 behaves like -n" 1 "$RC"
run -w 0.2 --verbose "$F" true
check_grep "-w --verbose: flock(1)'s timeout message" '^portalock: timeout while waiting to get lock$' "$ERR"

# A waiter with -w 10 gets the lock as soon as the holder's command ends.
"$PL" -w 10 "$F" -c "date +%s.%N >'$T/waiter.t'" >/dev/null 2>"$T/waiter.err" &
wpid=$!
BG+=("$wpid")
"$PL" "$F" -c "touch '$T/waiter2.done'" >/dev/null 2>"$T/waiter2.err" &
wpid2=$!
BG+=("$wpid2")
sleep 0.3
check "waiter is still waiting while the lock is held" [ ! -e "$T/waiter.t" ]
check "waiter without -w is still waiting too" [ ! -e "$T/waiter2.done" ]
trel=$(date +%s.%N)
release_holder h1
check_rc "holder's command exit status passes through" 0 "$HOLDER_RC"
wait "$wpid"
wrc=$?
check_rc "waiter with -w 10 acquires after the release" 0 "$wrc" "$(cat "$T/waiter.err")"
if [ -s "$T/waiter.t" ]; then
    lat=$(awk -v a="$trel" -v b="$(cat "$T/waiter.t")" 'BEGIN { printf "%.3f", b - a }')
    # The kernel wakes the waiter at once; 1.5 s covers the holder's 50 ms
    # poll of its release file, the exits and the waiter's shell start.
    check "waiter ran promptly after the release (${lat}s < 1.5s)" in_range "$lat" 0 1.5
else
    fail "waiter ran promptly after the release" "waiter's command did not run"
fi
# Bounded: the lock is free now, so the default (wait forever) waiter must
# finish; kill it after 10 s rather than hang.
wait_file "$T/waiter2.done" 10 || kill -TERM "$wpid2" 2>/dev/null
wait "$wpid2"
check_rc "waiter without -w (waits forever) acquires after the release" 0 "$?" "$(cat "$T/waiter2.err")"

# ---- shared and exclusive -----------------------------------------------------
check "shared holder acquires" start_holder s1 -s "$F"
run -s -n "$F" true
check_rc "-s coexists with another -s" 0 "$RC" "$ERR"
run -x -n "$F" true
check_rc "-x conflicts with a held -s" 1 "$RC"
release_holder s1
check "exclusive holder acquires" start_holder x1 -x "$F"
run -s -n "$F" true
check_rc "-s conflicts with a held -x" 1 "$RC"
release_holder x1

# ---- -o: lock descriptor inheritance -----------------------------------------
# The command lists its own descriptors ($$ is the command's shell).
# shellcheck disable=SC2016
LISTFDS='for l in /proc/$$/fd/*; do readlink "$l"; done'
run "$F" -c "$LISTFDS"
check_grep "without -o the command inherits the lock descriptor" "^$F\$" "$OUT"
run -o "$F" -c "$LISTFDS"
if printf '%s\n' "$OUT" | grep -qx -- "$F"; then
    fail "-o: the command does not inherit the lock descriptor" "found $F in the command's fds"
else
    pass "-o: the command does not inherit the lock descriptor"
fi
run "$F" -c "sleep 5 >/dev/null 2>&1 & echo \$! >'$T/bg.pid'"
cat "$T/bg.pid" >>"$T/strays"
run -n "$F" true
check_rc "without -o a background child of the command keeps the lock" 1 "$RC"
kill -KILL "$(cat "$T/bg.pid")" 2>/dev/null
sleep 0.1
run -o "$F" -c "sleep 5 >/dev/null 2>&1 & echo \$! >'$T/bg.pid'"
cat "$T/bg.pid" >>"$T/strays"
run -n "$F" true
check_rc "with -o a background child does not keep the lock" 0 "$RC" "$ERR"
kill -KILL "$(cat "$T/bg.pid")" 2>/dev/null

# ---- FD form -------------------------------------------------------------------
G=$T/fd.lock
exec 9>"$G"
run -n 9
check_rc "FD form: portalock -n 9 locks fd 9" 0 "$RC" "$ERR"
run -n "$G" true
check_rc "FD form: the lock outlives portalock (another process conflicts)" 1 "$RC"
run -u 9
check_rc "FD form: portalock -u 9 unlocks" 0 "$RC" "$ERR"
run -n "$G" true
check_rc "FD form: free again after -u" 0 "$RC" "$ERR"
run -s 9
check_rc "FD form: -s 9 takes a shared lock" 0 "$RC" "$ERR"
run -s -n "$G" true
check_rc "FD form: shared fd lock admits another -s" 0 "$RC" "$ERR"
run -u 9
exec 9>&-
run -n 9
check_rc "FD form: closed descriptor -> 65 (flock(1): EX_DATAERR)" 65 "$RC"
check_grep "FD form: closed descriptor message" '^portalock: 9: Bad file descriptor$' "$ERR"
run --backend lockf -n 0
check_rc "FD form: lockf backend refused -> 64" 64 "$RC"

# ---- backends -------------------------------------------------------------------
for b in flock lockf ofd; do
    B=$T/b-$b.lock
    if start_holder "b$b" --backend "$b" "$B"; then
        run --backend "$b" -n "$B" true
        check_rc "--backend $b: a second holder conflicts" 1 "$RC" "$ERR"
        release_holder "b$b"
        run --backend "$b" -n "$B" -c 'exit 4'
        check_rc "--backend $b: acquires when free, status passes" 4 "$RC" "$ERR"
    else
        fail "--backend $b: holder acquires" "$(cat "$T/holder.b$b.err")"
    fi
done
run --backend fcntl "$F" true
check_rc "--backend fcntl (alias of lockf) accepted" 0 "$RC" "$ERR"
run --backend bogus "$F" true
check_rc "--backend bogus -> 64" 64 "$RC"
check_grep "--backend bogus message" "unknown backend 'bogus'" "$ERR"
if [ "$(uname -s)" = Linux ]; then
    check_grep "--backend bogus lists Linux's backends" "(expected flock, lockf or ofd)" "$ERR"
fi
PORTALOCK_BACKEND=bogus run "$F" true
check_rc "PORTALOCK_BACKEND=bogus -> 64" 64 "$RC"
check_grep "PORTALOCK_BACKEND=bogus message" '^portalock: PORTALOCK_BACKEND=bogus: unknown backend' "$ERR"
PORTALOCK_BACKEND=ofd run --verbose --verbose "$F" true
check_grep "PORTALOCK_BACKEND=ofd is used" 'backend ofd' "$ERR"
PORTALOCK_BACKEND=bogus run --backend flock "$F" true
check_rc "--backend overrides PORTALOCK_BACKEND" 0 "$RC" "$ERR"

# ---- usage errors -> 64 ------------------------------------------------------------
usage() { # NAME ARGS...
    local name=$1
    shift
    run "$@"
    if [ "$RC" = 64 ] && printf '%s' "$ERR" | grep -q "^Try 'portalock --help'"; then
        pass "usage error: $name"
    else
        fail "usage error: $name" "exit $RC, stderr: $ERR"
    fi
}
usage "no arguments"
usage "no FILE (only options)" -n
usage "-w 1x" -w 1x "$F" true
usage "-w nan" -w nan "$F" true
usage "-w inf" -w inf "$F" true
usage "-w ''" -w '' "$F" true
usage "-w without argument" -w
usage "-E 256" -E 256 "$F" true
usage "-E x" -E x "$F" true
usage "unknown long option" --bogus "$F" true
usage "unknown short option" -q "$F" true
usage "FILE without a command" "$F"
usage "-c and a command" -c true "$F" true
usage "FILE -c with extra arguments" "$F" -c true extra
usage "-- without a command" "$F" --
usage "--check-interval abc" --check-interval abc "$F" true
usage "--semaphore 0" --semaphore 0 name true
usage "--pid with --temporary" --pid --temporary "$F" true
usage "--on-lost bogus" --on-lost bogus --redis redis://127.0.0.1:1 n true
usage "--directory without --semaphore" --directory "$T" "$F" true
usage "--backend with --redis" --backend flock --redis redis://127.0.0.1:1 n true
usage "-w 1e999 (overflow)" -w 1e999 "$F" true
usage "-w 1e" -w 1e "$F" true
usage "-w 0x10" -w 0x10 "$F" true
usage "-w ' 1'" -w ' 1' "$F" true
usage "-E -1" -E -1 "$F" true
usage "--semaphore 99999999999" --semaphore 99999999999 n true
usage "empty FILE" '' true
usage "FD 99999999999" 99999999999
usage "--shared=1 (no argument allowed)" --shared=1 "$F" true

# ---- accepted spellings -------------------------------------------------------------
run --timeout=0.2 --nb --exclusive "$F" true
check_rc "--timeout=S --nb --exclusive accepted" 0 "$RC" "$ERR"
run -w0.2 -e --wait 1 --check-interval 0.01 "$F" true
check_rc "-wS -e --wait S --check-interval S accepted" 0 "$RC" "$ERR"
run --fcntl --verbose --verbose "$F" true
check_grep "--fcntl selects the ofd backend" 'backend ofd' "$ERR"

# ---- errors: flock(1)'s message and sysexits status, nothing created -----------------
run "$T/nodir/x.lock" true
check_rc "missing directory -> 66 (flock(1): EX_NOINPUT)" 66 "$RC"
check_grep "missing directory message" "^portalock: cannot open lock file $T/nodir/x.lock: No such file or directory$" "$ERR"
check "missing directory: nothing created" [ ! -e "$T/nodir" ]
run -w -1 "$F" true
check_rc "-w -1 -> 71, as flock(1) (its timer cannot be armed)" 71 "$RC"

# ---- signals (see also test_flock_compat.sh) ---------------------------------------
# -o: the lock is portalock's alone, so portalock outlives the command and
# passes a SIGTERM sent to it alone on to the command.
rm -f "$T/sig.ready"
"$PL" -o "$F" -c "trap 'exit 7' TERM; touch '$T/sig.ready'; i=0; while [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done; exit 0" \
    >/dev/null 2>"$T/sig.err" &
spid=$!
BG+=("$spid")
if wait_file "$T/sig.ready" 15; then
    kill -TERM "$spid"
    wait "$spid"
    check_rc "-o: SIGTERM is forwarded to the command (its trap exits 7)" 7 "$?"
    run -n "$F" true
    check_rc "lock is free after the forwarded signal" 0 "$RC" "$ERR"
else
    fail "SIGTERM is forwarded to the command" "command never started"
fi

# ---- util-linux flock(1) cross-check ------------------------------------------------
if command -v flock >/dev/null; then
    X=$T/x.lock
    rm -f "$T/fl.ready" "$T/fl.release"
    flock "$X" -c "touch '$T/fl.ready'; i=0; while [ ! -e '$T/fl.release' ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i+1)); done" &
    fpid=$!
    BG+=("$fpid")
    if wait_file "$T/fl.ready" 15; then
        run -n "$X" true
        check_rc "flock(1) holder excludes portalock -n" 1 "$RC"
    else
        fail "flock(1) holder excludes portalock -n" "flock(1) did not start"
    fi
    touch "$T/fl.release"
    wait "$fpid"
    if start_holder fx "$X"; then
        flock -n "$X" true
        check_rc "portalock holder excludes flock(1) -n" 1 "$?"
        release_holder fx
        flock -n "$X" true
        check_rc "flock(1) gets the lock after portalock released it" 0 "$?"
    else
        fail "portalock holder excludes flock(1) -n" "holder did not start"
    fi
else
    echo "skip - flock(1) cross-check: util-linux flock is not installed"
fi

finish
