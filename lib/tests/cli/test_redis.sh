#!/bin/bash
# test_redis.sh -- the portalock CLI's --redis mode against a throw-away
# redis-server on 127.0.0.1 (its own high port, no persistence, stopped by
# its PID): exit statuses, conflict and timeout messages, shared locks, and
# what --on-lost warn|kill do when the lock is lost while the command runs.
# The Redis lock's own semantics are tested by the Redis suite.
#
#   bash test_redis.sh PORTALOCK_BINARY [PORT]
. "$(dirname "$0")/lib.sh" "$@"
PORT=${2:-56993}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "skip - redis-server/redis-cli not installed (apt-get install redis-server redis-tools)"
    echo "cli: $PASS passed, $FAIL failed"
    exit 0
fi
mkdir "$T/redis"
stop_redis() {
    local pid i=0
    pid=$(cat "$T/redis/redis.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    rm -f "$T/redis/redis.pid"
}
trap 'stop_redis; cleanup' EXIT
# Other build trees may run this test at the same time: take the first of
# ten ports from $PORT on where our own server comes up.
started=
for try in 0 1 2 3 4 5 6 7 8 9; do
    p=$((PORT + try))
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        continue
    fi
    redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --save '' \
        --appendonly no --pidfile "$T/redis/redis.pid" --logfile "$T/redis/redis.log" \
        --dir "$T/redis" >/dev/null
    i=0
    until [ -s "$T/redis/redis.pid" ] && redis-cli -p "$p" ping 2>/dev/null | grep -q PONG || [ $i -ge 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ -s "$T/redis/redis.pid" ] && kill -0 "$(cat "$T/redis/redis.pid")" 2>/dev/null &&
        redis-cli -p "$p" ping 2>/dev/null | grep -q PONG; then
        PORT=$p
        started=1
        break
    fi
    stop_redis
done
if [ -z "$started" ]; then
    fail "start redis-server on 127.0.0.1" "no port usable in $PORT..$((PORT + 9)): $(tail -3 "$T/redis/redis.log" 2>/dev/null)"
    finish
fi
pass "redis-server (pid $(cat "$T/redis/redis.pid")) answers on 127.0.0.1:$PORT"
URL=redis://127.0.0.1:$PORT

run --redis "$URL" cli-a -c 'exit 3'
if [ "$RC" = 1 ] && printf '%s' "$ERR" | grep -q 'built without Redis support'; then
    echo "skip - this portalock has no Redis support: $ERR"
    finish
fi
check_rc "--redis: command status passes (3)" 3 "$RC" "$ERR"
# shellcheck disable=SC2016
run --redis "$URL" cli-a -c 'for l in /proc/$$/fd/*; do readlink "$l"; done'
if printf '%s\n' "$OUT" | grep -q '^socket:'; then
    fail "--redis: the command inherits no Redis connection" "$(printf '%s' "$OUT" | tr '\n' ' ')"
else
    pass "--redis: the command inherits no Redis connection"
fi

if start_holder r1 --redis "$URL" cli-a; then
    run --redis "$URL" -n --verbose cli-a true
    check_rc "--redis: conflict -> 1" 1 "$RC"
    check_grep "--redis: conflict message (--verbose, flock(1)'s)" '^portalock: failed to get lock$' "$ERR"
    run --redis "$URL" -n -E 42 cli-a true
    check_rc "--redis: -E 42 on conflict" 42 "$RC"
    t0=$(now)
    run --redis "$URL" -w 0.5 --verbose cli-a true
    dt=$(elapsed_since "$t0")
    check_rc "--redis -w 0.5: timeout -> 1" 1 "$RC"
    check_grep "--redis -w 0.5: timeout message (--verbose, flock(1)'s)" '^portalock: timeout while waiting to get lock$' "$ERR"
    # Generous bounds: timeout plus connection set-up on a busy 2-core VM.
    check "--redis -w 0.5 waited (${dt}s in [0.4, 2.5])" in_range "$dt" 0.4 2.5
    run --redis "$URL" -n cli-b true
    check_rc "--redis: another name is independent" 0 "$RC" "$ERR"
    "$PL" --redis "$URL" -w 10 cli-a -c "date +%s.%N >'$T/rw.t'" 2>"$T/rw.err" &
    wpid=$!
    BG+=("$wpid")
    sleep 0.3
    trel=$(date +%s.%N)
    release_holder r1
    wait "$wpid"
    check_rc "--redis: waiter acquires after the holder's command ends" 0 "$?" "$(cat "$T/rw.err")"
    if [ -s "$T/rw.t" ]; then
        lat=$(awk -v a="$trel" -v b="$(cat "$T/rw.t")" 'BEGIN { printf "%.3f", b - a }')
        check "--redis: waiter ran promptly (${lat}s < 1.5s)" in_range "$lat" 0 1.5
    fi
else
    fail "--redis: holder acquires" "$(cat "$T/holder.r1.err")"
fi

if start_holder r2 -s --redis "$URL" cli-s; then
    run -s --redis "$URL" -n cli-s true
    check_rc "--redis -s: shared holders coexist" 0 "$RC" "$ERR"
    run --redis "$URL" -n cli-s true
    check_rc "--redis: exclusive conflicts with shared" 1 "$RC"
    release_holder r2
else
    fail "--redis -s: holder acquires" "$(cat "$T/holder.r2.err")"
fi

# Lost while the command runs: CLIENT KILL TYPE pubsub ends the holder's
# subscription connection, which is what binds the lock to the holder.
rm -f "$T/warn.done"
"$PL" --redis "$URL" cli-lost -c "touch '$T/warn.ready'; sleep 1; touch '$T/warn.done'" \
    >/dev/null 2>"$T/warn.err" &
lpid=$!
BG+=("$lpid")
if wait_file "$T/warn.ready" 10; then
    redis-cli -p "$PORT" CLIENT KILL TYPE pubsub >/dev/null
    wait "$lpid"
    check_rc "--on-lost warn (default): exit 1 after the lock was lost" 1 "$?" "$(cat "$T/warn.err")"
    check "--on-lost warn: the command kept running to its end" [ -e "$T/warn.done" ]
    check_grep "--on-lost warn: warning on stderr" 'cli-lost: the Redis lock was lost; the command keeps running' "$(cat "$T/warn.err")"
else
    fail "--on-lost warn" "holder did not start: $(cat "$T/warn.err")"
fi
rm -f "$T/kill.done"
t0=$(now)
"$PL" --redis "$URL" --on-lost kill cli-lost2 -c "touch '$T/kill.ready'; i=0; while [ \$i -lt 160 ]; do sleep 0.05; i=\$((i+1)); done; touch '$T/kill.done'" \
    >/dev/null 2>"$T/kill.err" &
lpid=$!
BG+=("$lpid")
if wait_file "$T/kill.ready" 10; then
    redis-cli -p "$PORT" CLIENT KILL TYPE pubsub >/dev/null
    wait "$lpid"
    check_rc "--on-lost kill: exit 1" 1 "$?" "$(cat "$T/kill.err")"
    dt=$(elapsed_since "$t0")
    check "--on-lost kill: the command was stopped (${dt}s < 5s, not its 8 s)" in_range "$dt" 0 5
    check "--on-lost kill: the command did not finish" [ ! -e "$T/kill.done" ]
    check_grep "--on-lost kill: warning on stderr" 'sending SIGTERM to the command' "$(cat "$T/kill.err")"
else
    fail "--on-lost kill" "holder did not start: $(cat "$T/kill.err")"
fi

# A SIGKILLed portalock frees the Redis lock (its connection dies).
"$PL" --redis "$URL" cli-k -c "echo \$\$ >'$T/k.pid'; exec sleep 8" >/dev/null 2>"$T/k.err" &
kpid=$!
BG+=("$kpid")
if wait_file "$T/k.pid" 10; then
    cat "$T/k.pid" >>"$T/strays"
    kill -KILL "$kpid"
    wait "$kpid" 2>/dev/null
    run --redis "$URL" -w 3 cli-k true
    check_rc "--redis: lock freed when portalock is SIGKILLed" 0 "$RC" "$ERR"
    kill -KILL "$(cat "$T/k.pid")" 2>/dev/null
else
    fail "--redis: SIGKILL frees the lock" "holder did not start"
fi

finish
