#!/bin/sh
# redis_load.sh PORTALOCK PORT [SECONDS] -- Redis server load of waiting
# contenders (issue 8 item 9).  For 1, 8 and 32 waiters: its own
# redis-server on 127.0.0.1:PORT, one `portalock --redis` CLI holding the
# lock, N CLIs waiting for it; after 2 s of settling, SECONDS (default 5) of
# measurement: commands/s from INFO stats total_commands_processed, and the
# server's CPU (utime + stime from /proc/PID/stat) as a percentage of one
# core.  Prints a Markdown table row per N.  Handoff latencies come from
# conformance/redis/measure_redis.py (see bench/RESULTS.md).
set -eu
CLI=$1
PORT=$2
SECS=${3:-5}
DIR=${TMPDIR:-/tmp}/pl-redis-load.$$
mkdir -p "$DIR"
HZ=$(getconf CLK_TCK)
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cmds() { redis-cli -p "$PORT" info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p'; }

echo "| waiters | commands/s | Redis CPU (% of a core) |"
echo "|---:|---:|---:|"
for n in 1 8 32; do
    redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no \
        --dir "$DIR" --logfile "$DIR/redis.log" &
    SRV=$!
    i=0
    until redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "redis-server did not start" >&2; exit 1; }
        sleep 0.05
    done
    "$CLI" --redis "redis://127.0.0.1:$PORT" load -c "sleep $((SECS + 4))" &
    HOLDER=$!
    sleep 0.5
    pids=""
    k=0
    while [ $k -lt $n ]; do
        "$CLI" --redis "redis://127.0.0.1:$PORT" -w 60 load -c true &
        pids="$pids $!"
        k=$((k + 1))
    done
    sleep 2
    c0=$(cmds); t0=$(cputicks "$SRV")
    sleep "$SECS"
    c1=$(cmds); t1=$(cputicks "$SRV")
    awk -v n="$n" -v c="$((c1 - c0))" -v t="$((t1 - t0))" -v s="$SECS" -v hz="$HZ" \
        'BEGIN { printf "| %d | %.0f | %.1f |\n", n, c / s, 100 * t / hz / s }'
    kill "$HOLDER" $pids 2>/dev/null || true
    wait "$HOLDER" $pids 2>/dev/null || true
    kill "$SRV"; wait "$SRV" 2>/dev/null || true
done
rm -rf "$DIR"
