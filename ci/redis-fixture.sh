#!/bin/sh
# redis-fixture.sh start|stop PORT [DIR]
#
# A throw-away redis-server for the Redis conformance tests: bound to
# 127.0.0.1 on PORT, no persistence, daemonised with a pidfile in DIR
# (default: $TMPDIR or /tmp, "pl-redis-PORT"), with a unix socket
# DIR/redis.sock.  "start" waits (bounded) for PONG and fails clearly if the
# port is already taken by anything else; starting again while its own
# server runs is a no-op (ctest --repeat).  "stop" kills the server by its
# pidfile only and waits (bounded) for it to exit.
set -eu

usage() {
    echo "usage: $0 start|stop PORT [DIR]" >&2
    exit 2
}

[ $# -ge 2 ] || usage
ACTION=$1
PORT=$2
case $PORT in
'' | *[!0-9]*) usage ;;
esac
DIR=${3:-${TMPDIR:-/tmp}/pl-redis-$PORT}
PIDFILE=$DIR/redis.pid
LOG=$DIR/redis.log

port_busy() {
    # Anything listening on 127.0.0.1:PORT (or on every address)?
    if command -v ss >/dev/null 2>&1; then
        ss -ltnH "sport = :$PORT" 2>/dev/null | grep -q .
    else
        redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1
    fi
}

case $ACTION in
start)
    command -v redis-server >/dev/null 2>&1 || {
        echo "redis-fixture: redis-server not found (apt-get install redis-server)" >&2
        exit 1
    }
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        # Ours from an earlier start (e.g. ctest --repeat): reuse it if it
        # is the one answering on PORT.
        if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG &&
            [ "$(redis-cli -h 127.0.0.1 -p "$PORT" info server 2>/dev/null |
                sed -n 's/^process_id:\([0-9]*\).*/\1/p')" = "$(cat "$PIDFILE")" ]; then
            echo "redis-fixture: redis-server on 127.0.0.1:$PORT already running (pid $(cat "$PIDFILE"))"
            exit 0
        fi
        echo "redis-fixture: a fixture server (pid $(cat "$PIDFILE")) runs from $DIR but not on port $PORT; stop it first" >&2
        exit 1
    fi
    if port_busy; then
        echo "redis-fixture: port $PORT on 127.0.0.1 is busy; choose another PL_TEST_REDIS_PORT" >&2
        exit 1
    fi
    mkdir -p "$DIR"
    rm -f "$PIDFILE"
    # A unix socket too, where its path fits in sun_path (108 bytes).
    SOCK=$DIR/redis.sock
    if [ ${#SOCK} -lt 100 ]; then
        set -- --unixsocket "$SOCK" --unixsocketperm 700
    else
        set --
        SOCK="none (path too long)"
    fi
    redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no \
        --daemonize yes --pidfile "$PIDFILE" --logfile "$LOG" --dir "$DIR" "$@"
    i=0
    while [ $i -lt 100 ]; do
        if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
            echo "redis-fixture: redis-server on 127.0.0.1:$PORT (pid $(cat "$PIDFILE" 2>/dev/null), socket $SOCK)"
            exit 0
        fi
        sleep 0.05
        i=$((i + 1))
    done
    echo "redis-fixture: redis-server on port $PORT did not answer PING within 5 s; log:" >&2
    tail -n 20 "$LOG" >&2 2>/dev/null || true
    [ -f "$PIDFILE" ] && kill "$(cat "$PIDFILE")" 2>/dev/null || true
    exit 1
    ;;
stop)
    if [ ! -f "$PIDFILE" ]; then
        echo "redis-fixture: no pidfile $PIDFILE; nothing to stop"
        exit 0
    fi
    PID=$(cat "$PIDFILE")
    case $PID in
    '' | *[!0-9]*)
        echo "redis-fixture: bad pidfile $PIDFILE" >&2
        exit 1
        ;;
    esac
    kill "$PID" 2>/dev/null || true
    i=0
    while [ $i -lt 100 ] && kill -0 "$PID" 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    if kill -0 "$PID" 2>/dev/null; then
        kill -9 "$PID" 2>/dev/null || true
        echo "redis-fixture: redis-server $PID did not stop in 5 s; killed" >&2
    fi
    rm -f "$PIDFILE"
    echo "redis-fixture: stopped redis-server $PID"
    ;;
*) usage ;;
esac
