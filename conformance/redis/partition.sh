#!/bin/sh
# partition.sh PORTALOCK PORT DIR [ROUNDS] -- issue 8 item 2: a partitioned
# holder must learn that it lost the lock before anybody else gets it.
#
# A network namespace plr<pid> with a veth pair (plr<pid>a on the host,
# 10.213.80.1; plr<pid>b inside, 10.213.80.2) and a redis-server bound to
# 10.213.80.1 and 127.0.0.1 on PORT.  Per round: a `portalock --redis
# --on-lost kill` CLI inside the namespace holds the lock and runs a command
# that stamps the time every 10 ms; the veth is set down (the holder can no
# longer reach Redis, nor Redis the holder, and TCP says nothing for ~30 s);
# a second CLI on the host (via 127.0.0.1) waits for the lock and stamps the
# time its own command starts.  Passes when, in every round, the holder's
# last stamp is earlier than the waiter's start.  Prints the gaps.
#
# Needs root and `ip` (iproute2); exits 77 (skipped) without them.  Cleans
# up the namespace, the veth and the server on every exit.
set -eu
CLI=$1
PORT=$2
DIR=$3
ROUNDS=${4:-1}
NS=plr$$
VH=${NS}a
VN=${NS}b
URL_NS=redis://10.213.80.1:$PORT
URL_HOST=redis://127.0.0.1:$PORT
SRV=

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
    echo "partition.sh: needs root and ip(8) for a network namespace: skipped"
    exit 77
fi

cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null || true
    ip link del "$VH" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR"
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add 10.213.80.1/24 dev "$VH"
ip link set "$VH" up
ip netns exec "$NS" ip addr add 10.213.80.2/24 dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
ip netns exec "$NS" ip link set lo up

# Bound to both addresses; must answer on the host end of the veth.
. "$(dirname "$0")/own_server.sh"
OWN_SERVER_ARGS="--protected-mode no"
own_server_start 10.213.80.1 10.213.80.1 127.0.0.1 || {
    echo "FAIL: redis-server on 10.213.80.1 did not start (log $DIR/redis.log)"
    exit 1
}
URL_NS=redis://10.213.80.1:$PORT
URL_HOST=redis://127.0.0.1:$PORT
i=0
until ip netns exec "$NS" redis-cli -h 10.213.80.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "FAIL: the namespace cannot reach 10.213.80.1:$PORT"; exit 1; }
    sleep 0.05
done

now() { date +%s.%N; }
fails=0
r=1
while [ $r -le "$ROUNDS" ]; do
    NAME=plt.partition.$$.$r
    rm -f "$DIR/holder.ts" "$DIR/waiter.ts" "$DIR/holder.err"
    ip netns exec "$NS" ip link set "$VN" up
    ip netns exec "$NS" "$CLI" --redis "$URL_NS" --on-lost kill "$NAME" \
        -c "while :; do date +%s.%N >> '$DIR/holder.ts'; sleep 0.01; done" \
        2>"$DIR/holder.err" &
    HOLDER=$!
    i=0
    while [ ! -s "$DIR/holder.ts" ] && [ $i -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    [ -s "$DIR/holder.ts" ] || { echo "FAIL: the holder never got the lock"; cat "$DIR/holder.err"; exit 1; }
    sleep 0.3
    T_PART=$(now)
    ip netns exec "$NS" ip link set "$VN" down
    WRC=0
    "$CLI" --redis "$URL_HOST" -w 60 "$NAME" -c "date +%s.%N > '$DIR/waiter.ts'" || WRC=$?
    # the holder's CLI may still be closing its (partitioned) connection
    ip netns exec "$NS" ip link set "$VN" up
    kill "$HOLDER" 2>/dev/null || true
    wait "$HOLDER" 2>/dev/null || true
    [ $WRC -eq 0 ] && [ -s "$DIR/waiter.ts" ] || { echo "FAIL: waiter exited $WRC"; exit 1; }
    LAST=$(tail -n 1 "$DIR/holder.ts")
    W=$(cat "$DIR/waiter.ts")
    verdict=$(awk -v p="$T_PART" -v l="$LAST" -v w="$W" 'BEGIN {
        printf "holder stopped %.3f s after the partition, waiter started %.3f s after it: %s",
            l - p, w - p, (l < w) ? "ok" : "OVERLAP"; }')
    echo "round $r: $verdict"
    case $verdict in *OVERLAP*) fails=$((fails + 1)) ;; esac
    r=$((r + 1))
done
if [ $fails -ne 0 ]; then
    echo "FAIL: the partitioned holder ran on after the waiter started in $fails/$ROUNDS round(s)"
    exit 1
fi
echo "ok: $ROUNDS/$ROUNDS rounds, the holder always stopped first"
