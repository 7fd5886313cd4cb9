# own_server.sh -- sourced by the Redis test scripts that need a
# redis-server of their own (partition.sh, cli_check_lost.sh).
#
#   own_server_start HOST [BIND...]
#
# starts `redis-server --bind BIND... --port $PORT` (no persistence, logs in
# $DIR/redis.log, extra options in $OWN_SERVER_ARGS), waits until it answers
# on HOST and checks that the answer is from this server, not another that
# had the port.  A fixed port can be taken: our ports lie in Linux's
# ephemeral range (32768-60999), so an outgoing connection of another test
# may hold it for a while (seen in ci/test.sh's ASan pass, after the fault
# tests' thousands of connections).  Then it tries PORT + 10, + 20, ... (8
# candidates).  Sets PORT and SRV (the server's pid); returns 1 when no
# candidate worked.
own_server_try() {
    # shellcheck disable=SC2086
    redis-server --bind "$@" --port "$PORT" --save '' --appendonly no \
        --dir "$DIR" --logfile "$DIR/redis.log" ${OWN_SERVER_ARGS:-} &
    SRV=$!
    i=0
    until redis-cli -h "$OWN_SERVER_HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG; do
        i=$((i + 1))
        kill -0 "$SRV" 2>/dev/null && [ $i -lt 100 ] || return 1
        sleep 0.05
    done
    redis-cli -h "$OWN_SERVER_HOST" -p "$PORT" info server | grep -q "^process_id:$SRV\b"
}

own_server_start() {
    OWN_SERVER_HOST=$1
    shift
    tries=0
    until own_server_try "$@"; do
        kill "$SRV" 2>/dev/null || true
        wait "$SRV" 2>/dev/null || true
        SRV=
        tries=$((tries + 1))
        [ $tries -lt 8 ] || return 1
        PORT=$((PORT + 10))
    done
}
