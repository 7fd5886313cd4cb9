#!/bin/bash
# test_flock_compat.sh -- portalock as a drop-in for util-linux flock(1).
#
# The cases of util-linux's own flock tests (tests/ts/flock/{flock,close,
# unlock,range-lock} at HEAD, tests/ts/misc/flock at v2.38.1), written anew
# here so that CI needs no util-linux tree (ci/flock-compat.sh runs the real
# ones), plus the flock(1) behaviours of issue 12 and the CLI defects of
# issue 9 (items 9 and 10).  The binary is run through a symlink named
# "flock", as the util-linux tests run it, so its messages must carry that
# name exactly.
#
#   bash test_flock_compat.sh PORTALOCK_BINARY [MAN_PAGE]
. "$(dirname "$0")/lib.sh" "$@"
MAN=${2:-$(dirname "$0")/../../cli/portalock.1}
ln -s "$PL" "$T/flock"
FL=$T/flock
L=$T/lockfile

# fl ARGS...: runs the "flock" symlink, sets RC, OUT, ERR.
fl() {
    "$FL" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}
# holder ID ARGS...: a background "flock ARGS -c CMD" holding until released.
holder() {
    local id=$1
    shift
    rm -f "$T/ready.$id" "$T/release.$id"
    "$FL" "$@" -c "touch '$T/ready.$id'; i=0; while [ ! -e '$T/release.$id' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done" \
        >"$T/holder.$id.out" 2>"$T/holder.$id.err" &
    HOLDER_PID[$id]=$!
    BG+=("$!")
    wait_file "$T/ready.$id" 15
}

# ---- tests/ts/flock/flock (HEAD) and tests/ts/misc/flock (2.38.1) ----------------
for api in flock fcntl; do
    p=""
    A=()
    if [ $api = fcntl ]; then
        p="fcntl-"
        A=(--fcntl)
    fi
    rm -f "$L"
    if ! holder "g$api" "${A[@]}" --shared "$L"; then
        fail "${p}general shared lock" "$(cat "$T/holder.g$api.err")"
        continue
    fi
    fl "${A[@]}" --nonblocking --conflict-exit-code 123 "$L" echo never
    check_rc "${p}non-block: --nonblocking -E 123 -> 123" 123 "$RC" "$ERR"
    check "${p}non-block: silent, command not run" [ -z "$OUT$ERR" ]
    fl "${A[@]}" --no-fork --nonblocking --conflict-exit-code 123 "$L" echo never
    check_rc "${p}no-fork: -> 123" 123 "$RC" "$ERR"
    fl "${A[@]}" --shared "$L" echo "Have shared lock"
    check_rc "${p}shared: -> 0" 0 "$RC" "$ERR"
    check "${p}shared: the command ran" [ "$OUT" = "Have shared lock" ]
    fl "${A[@]}" --nb --exclusive --conflict-exit-code 123 "$L" echo never
    check_rc "${p}exclusive: --nb --exclusive -> 123" 123 "$RC" "$ERR"
    (
        cd "$T" || exit 99
        rm -f 4
        exec 4<>"$L"
        "$FL" "${A[@]}" --nonblocking --exclusive --conflict-exit-code 123 4 >"$T/out" 2>"$T/err"
        rc=$?
        [ -e 4 ] && exit 98
        exit $rc
    )
    check_rc "${p}fd: FD form on a held file -> 123, no file named '4'" 123 "$?" "$(cat "$T/err")"
    if [ $api = fcntl ]; then
        fl --nonblock --exclusive "$L" echo "flock vs fcntl"
        check_rc "fcntl-vs-flock: flock(2) lock beside an OFD lock -> 0" 0 "$RC" "$ERR"
    fi
    t0=$(now)
    (sleep 1 && touch "$T/release.g$api") &
    fl "${A[@]}" --timeout 5 --conflict-exit-code 5 "$L" echo "After timeout."
    dt=$(elapsed_since "$t0")
    check_rc "${p}timeout: --timeout 5 gets the lock once released -> 0" 0 "$RC" "$ERR"
    # The holder releases after 1 s; 4.5 s allows for a loaded 2-core machine.
    check "${p}time-check: waited for the holder (${dt}s in [0.8, 4.5])" in_range "$dt" 0.8 4.5
    wait "${HOLDER_PID[g$api]}"
done

# ---- tests/ts/flock/close (HEAD): --fd and --close -------------------------------
exec 10<>"$T/lock"
"$FL" --exclusive --close --fd 10 --command \
    "'$FL' --exclusive --nonblock --fd 10 true" >"$T/out" 2>"$T/err"
check_rc "close: with --close the command has no fd 10 -> 65" 65 "$?" "$(cat "$T/err")"
check "close: message 'flock: 10: Bad file descriptor'" [ "$(cat "$T/err")" = "flock: 10: Bad file descriptor" ]
"$FL" --exclusive --fd 10 --command \
    "'$FL' --exclusive --nonblock --fd 10 true" >"$T/out" 2>"$T/err"
check_rc "close: without --close the command shares the lock on fd 10 -> 0" 0 "$?" "$(cat "$T/err")"

# ---- tests/ts/flock/unlock (HEAD): --verbose formats, -u FD, --wait 0 --------------
fl --exclusive --nonblock --verbose 10
check_rc "unlock: -n --verbose FD -> 0" 0 "$RC" "$ERR"
check_grep "unlock: 'flock: getting lock took N.NNNNNN seconds' on stdout" '^flock: getting lock took [0-9]+\.[0-9]{6} seconds$' "$OUT"
check "unlock: nothing on stderr" [ -z "$ERR" ]
fl --unlock 10
check_rc "unlock: --unlock FD -> 0" 0 "$RC" "$ERR"
check "unlock: --unlock is silent" [ -z "$OUT$ERR" ]
fl --exclusive --wait 0 --verbose "$T/lock" true
check_rc "unlock: --wait 0 on the unlocked file -> 0" 0 "$RC" "$ERR"
check_grep "unlock: --verbose prints the wait and 'executing true'" '^flock: getting lock took [0-9]+\.[0-9]{6} seconds flock: executing true$' "$(printf '%s' "$OUT" | tr '\n' ' ')"
exec 10>&-

# ---- tests/ts/flock/range-lock (HEAD): --fcntl --start --length --no-fork DIR -----
(cd "$T" && exec "$FL" --shared --fcntl --start 1 --length 2 --no-fork . -c 'exec sleep 3') &
rpid=$!
BG+=("$rpid")
ino=$(stat -c %i "$T")
found=""
for _ in $(seq 1 60); do
    # /proc/PID/fdinfo/N of the exec'd command lists the OFD lock it holds
    # (what util-linux HEAD's lslocks --pid reads): "OFDLCK ADVISORY READ
    # ... :INODE 1 2" = bytes 1 to 2 of the directory.
    if found=$(grep -hE "OFDLCK +ADVISORY +READ .*:$ino 1 2$" /proc/"$rpid"/fdinfo/* 2>/dev/null) && [ -n "$found" ]; then
        break
    fi
    sleep 0.05
done
check "range-lock: --no-fork: the exec'd command holds OFD READ bytes 1-2 of the directory" [ -n "$found" ]
check "range-lock: --no-fork: the command replaced flock (same pid)" [ "$(cat /proc/$rpid/comm 2>/dev/null)" = sleep ]
kill -TERM "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
R=$T/range
if holder r1 --start 1 --length 2 "$R"; then
    fl --nonblocking --start 2 --length 1 "$R" true
    check_rc "range: an exclusive lock on byte 2 conflicts with bytes 1-2" 1 "$RC" "$ERR"
    fl --nonblocking --start 3 --length 1K "$R" true
    check_rc "range: bytes 3.. (1K, a size suffix) are free" 0 "$RC" "$ERR"
    fl -s --nonblocking --fcntl "$R" true
    check_rc "range: a whole-file shared fcntl lock conflicts" 1 "$RC" "$ERR"
    fl -n "$R" true
    check_rc "range: a flock(2) lock is independent of it" 0 "$RC" "$ERR"
    (sleep 0.5 && touch "$T/release.r1") &
    fl -w 5 --start 0 --length 2 "$R" true
    check_rc "range: -w 5 waits for the range to be released" 0 "$RC" "$ERR"
    wait "${HOLDER_PID[r1]}"
    if holder r2 --start 0 --length 1 "$R"; then
        t0=$(now)
        fl -w 0.3 --start 0 --length 1 "$R" true
        dt=$(elapsed_since "$t0")
        check_rc "range: -w 0.3 on a held range times out -> 1" 1 "$RC" "$ERR"
        # Lower bound: the wait lasts the timeout; upper: a busy machine.
        check "range: -w 0.3 waited (${dt}s in [0.25, 2.5])" in_range "$dt" 0.25 2.5
        # A deadline that strikes before the blocking fcntl is entered
        # (microseconds) once left it blocked for good: 9 of 300 runs of
        # -w 0.000001 hung here.  Each run must time out (1); 137 = hung.
        tiny_waits 70 "0.000001 0.00001 0.0001" "$FL" -w "{w}" --start 0 --length 1 "$R" true
        check "range: 210 runs of -w 1-100 us on a held range all time out (hung $HUNG, other exit $OTHER$FIRST)" \
            [ "$HUNG:$OTHER" = "0:0" ]
        # Started with SIGALRM blocked (inherited mask): the timer's signal
        # stayed pending and the wait never ended (util-linux flock(1) hangs
        # the same way).  perl is in every Debian (perl-base is Essential).
        # A stale SIGALRM already pending must not end the wait early.
        for pend in 0 1; do
            t0=$(now)
            timeout -s KILL 5 perl -e 'use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGALRM)) or die; kill("ALRM", $$) if shift; exec @ARGV or die' \
                $pend "$FL" -w 0.3 --start 0 --length 1 "$R" true 2>/dev/null
            rc=$?
            dt=$(elapsed_since "$t0")
            check_rc "range: SIGALRM blocked (pending: $pend): -w 0.3 times out (137 = hung)" 1 "$rc"
            check "range: SIGALRM blocked (pending: $pend): waited the timeout (${dt}s in [0.25, 2.5])" in_range "$dt" 0.25 2.5
        done
        touch "$T/release.r2"
        wait "${HOLDER_PID[r2]}"
    fi
else
    fail "range: holder of bytes 1-2" "$(cat "$T/holder.r1.err")"
fi
fl --start x "$L" true
check_rc "--start x -> 64" 64 "$RC"
fl --backend flock --start 1 "$L" true
check_rc "--start with --backend flock -> 64 (flock(2) has no ranges)" 64 "$RC"

# ---- flock(1) behaviours from issue 12 ------------------------------------------
rm -f "$L"
if holder s1 -s "$L"; then
    fl -s -x -n "$L" true
    check_rc "-s -x: the last one wins (exclusive conflicts with a shared holder)" 1 "$RC" "$ERR"
    fl -x -s -n "$L" true
    check_rc "-x -s: the last one wins (shared coexists)" 0 "$RC" "$ERR"
    touch "$T/release.s1"
    wait "${HOLDER_PID[s1]}"
else
    fail "shared holder for -s/-x" "$(cat "$T/holder.s1.err")"
fi
mkdir "$T/dir"
if holder d1 "$T/dir"; then
    fl -n "$T/dir" true
    check_rc "a directory as FILE is locked (a second lock conflicts)" 1 "$RC" "$ERR"
    check "a directory as FILE: nothing created inside" [ -z "$(ls -A "$T/dir")" ]
    touch "$T/release.d1"
    wait "${HOLDER_PID[d1]}"
    check_rc "a directory as FILE: the holder's command ran" 0 "$?"
else
    fail "a directory as FILE is locked" "$(cat "$T/holder.d1.err")"
fi
fl -u "$L" echo ran
check_rc "-u FILE cmd runs the command (flock(1) unlocks, then runs)" 0 "$RC" "$ERR"
check "-u FILE cmd: the command's output" [ "$OUT" = ran ]
fl "$T/nodir/f" true
check_rc "missing directory -> 66" 66 "$RC"
check "missing directory: flock(1)'s message" [ "$ERR" = "flock: cannot open lock file $T/nodir/f: No such file or directory" ]
fl 77
check_rc "bad descriptor -> 65" 65 "$RC"
check "bad descriptor: flock(1)'s message" [ "$ERR" = "flock: 77: Bad file descriptor" ]
fl "$L" "$T/no-such-command"
check_rc "command cannot be executed -> 69" 69 "$RC"
check "command cannot be executed: flock(1)'s message" [ "$ERR" = "flock: failed to execute $T/no-such-command: No such file or directory" ]
fl -F -o "$L" true
check_rc "-F with -o -> 64" 64 "$RC"
fl --bogus "$L" true
check_rc "unknown option -> 64" 64 "$RC"
fl "$L" sh -c 'kill -TERM $$'
check_rc "command killed by SIGTERM -> 143" 143 "$RC"
fl -F "$L" sh -c 'exit 6'
check_rc "-F: the command's status is portalock's (exec)" 6 "$RC" "$ERR"

# ---- issue 9, item 10: read-only file systems, semaphore bounds and slots ---------
ro_run() { # ro_run SCRIPT: runs SCRIPT in a private mount namespace
    if [ "$(id -u)" = 0 ]; then
        timeout 20 unshare -m bash -c "$1"
    else
        timeout 20 unshare -rm bash -c "$1"
    fi
}
if ro_run true 2>/dev/null; then
    M=$T/rofs
    mkdir "$M"
    ro_run "mount -t tmpfs pl-ro '$M' && : >'$M/f' && mount -o remount,ro '$M' &&
        { '$FL' '$M/f' true; echo \"\$?\" >'$T/ro.rc1'; '$FL' -s --fcntl '$M/f' true; echo \"\$?\" >'$T/ro.rc2';
          '$FL' '$M/new' true 2>'$T/ro.err3'; echo \"\$?\" >'$T/ro.rc3'; }" 2>"$T/ro.err"
    check_rc "read-only file system: an existing FILE is locked (as flock(1))" 0 "$(cat "$T/ro.rc1" 2>/dev/null)" "$(cat "$T/ro.err")"
    check_rc "read-only file system: a shared fcntl lock too" 0 "$(cat "$T/ro.rc2" 2>/dev/null)" "$(cat "$T/ro.err")"
    check_rc "read-only file system: a FILE that cannot be created -> 73" 73 "$(cat "$T/ro.rc3" 2>/dev/null)" "$(cat "$T/ro.err")"
else
    echo "skip - read-only file system checks: unshare(1) cannot make a mount namespace here"
fi
fl --semaphore 1001 sem true
check_rc "--semaphore 1001 (above the library's 1000) -> 64" 64 "$RC" "$ERR"
fl --semaphore 1000 --directory "$T" -n big true
check_rc "--semaphore 1000 is accepted" 0 "$RC" "$ERR"
if [ -f "$MAN" ]; then
    check "man page: --semaphore says 1 to 1000" grep -q '1 to 1000' "$MAN"
    check "man page: no 9999 limit left" eval "! grep -q 9999 '$MAN'"
fi
# Slot files one may read but not write (another user's): the flock backend
# locks them read-only, as flock(1) would.
mkdir -m 0755 "$T/slots"
: >"$T/slots/ro.00.lock"
: >"$T/slots/ro.01.lock"
chmod 0444 "$T/slots"/ro.0*.lock
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null &&
        setpriv --reuid=65534 --regid=65534 --clear-groups "$PL" --version >/dev/null 2>&1; then
        chmod 0755 "$T"
        setpriv --reuid=65534 --regid=65534 --clear-groups "$PL" --semaphore 2 --directory "$T/slots" -n ro -c 'exit 4' >"$T/out" 2>"$T/err"
        check_rc "semaphore slots of another user: locked read-only (status passes)" 4 "$?" "$(cat "$T/err")"
        chmod 0700 "$T"
    else
        echo "skip - semaphore slots of another user: need setpriv(1) to run as uid 65534"
    fi
else
    fl --semaphore 2 --directory "$T/slots" -n ro -c 'exit 4'
    check_rc "semaphore slots we may not write: locked read-only (status passes)" 4 "$RC" "$ERR"
fi

# ---- issue 9, item 9: INT/TERM/HUP reach the command once ---------------------------
# The command counts the signals it gets in a file.  setsid(1) gives
# portalock and the command a process group of their own (and no
# controlling terminal); a kill of that group is what a terminal's keys do
# to a foreground job.  (SIGINT itself cannot be used from this script: a
# background job of a non-interactive shell starts with SIGINT ignored, and
# a shell cannot trap a signal ignored at entry.)
for sig in TERM HUP; do
    for mode in inherit close; do
        O=()
        [ $mode = close ] && O=(-o)
        rm -f "$T/sigs" "$T/sig.ready"
        setsid "$PL" "${O[@]}" "$L" bash -c "trap 'echo x >>\"$T/sigs\"' $sig; touch '$T/sig.ready'; i=0; while [ \$i -lt 30 ]; do sleep 0.05; i=\$((i+1)); done" >/dev/null 2>"$T/sig.err" &
        spid=$!
        BG+=("$spid")
        if wait_file "$T/sig.ready" 15; then
            kill -"$sig" -- "-$spid"
            wait "$spid"
            n=$(cat "$T/sigs" 2>/dev/null | wc -l)
            check "$mode: SIG$sig to the group reaches the command once ($n times)" [ "$n" = 1 ]
        else
            fail "$mode: SIG$sig to the group" "the command never started: $(cat "$T/sig.err")"
        fi
    done
done
# A SIGTERM to portalock alone: flock(1) dies of it and the command, which
# shares the lock through its descriptor, runs on holding it.
rm -f "$T/sig.ready" "$T/sig.done"
"$PL" "$L" bash -c "trap 'echo term >\"$T/sig.term\"; exit 7' TERM; touch '$T/sig.ready'; i=0; while [ \$i -lt 40 ]; do sleep 0.05; i=\$((i+1)); done; touch '$T/sig.done'" \
    >/dev/null 2>"$T/sig.err" &
spid=$!
BG+=("$spid")
if wait_file "$T/sig.ready" 15; then
    kill -TERM "$spid"
    wait "$spid"
    check_rc "inherit: SIGTERM to portalock alone ends it, as flock(1) (143)" 143 "$?"
    fl -n "$L" true
    check_rc "inherit: the command still holds the lock" 1 "$RC" "$ERR"
    wait_file "$T/sig.done" 10
    check "inherit: the command was not signalled and ran to its end" [ -e "$T/sig.done" ] && [ ! -e "$T/sig.term" ]
else
    fail "inherit: SIGTERM to portalock alone" "the command never started"
fi

# SIGALRM.  flock(1) catches it only for a -w wait (its timer's signal): a
# SIGALRM to a flock(1) without -w ends it (128+14), waiting or running.
# portalock used to catch SIGALRM from its start (the library's wait
# signal) and swallowed it: the wait went on, the command ran to its end.
rm -f "$L" "$T/alrm.ready" "$T/alrm.done"
"$FL" "$L" sh -c "touch '$T/alrm.ready'; i=0; while [ \$i -lt 60 ]; do sleep 0.05; i=\$((i+1)); done; touch '$T/alrm.done'" \
    >/dev/null 2>"$T/alrm.err" &
apid=$!
BG+=("$apid")
if wait_file "$T/alrm.ready" 15; then
    kill -ALRM "$apid"
    wait "$apid"
    check_rc "no -w: SIGALRM to flock while its command runs ends it (142), as flock(1)" 142 "$?"
    check "no -w: ... and it ended before its command" [ ! -e "$T/alrm.done" ]
    wait_file "$T/alrm.done" 10
else
    fail "no -w: SIGALRM while the command runs" "the command never started: $(cat "$T/alrm.err")"
fi
if holder al1 "$L"; then
    "$FL" "$L" true 2>/dev/null &
    apid=$!
    BG+=("$apid")
    sleep 0.3
    kill -ALRM "$apid"
    i=0
    while kill -0 "$apid" 2>/dev/null && [ $i -lt 80 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -KILL "$apid" 2>/dev/null # still waiting after 4 s: 137
    wait "$apid"
    check_rc "no -w: SIGALRM to a waiting flock ends it (142; 137 = it went on waiting)" 142 "$?"
    touch "$T/release.al1"
    wait "${HOLDER_PID[al1]}"
else
    fail "no -w: SIGALRM while waiting" "$(cat "$T/holder.al1.err")"
fi

finish
