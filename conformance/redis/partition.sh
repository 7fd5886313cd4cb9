#!/bin/sh
# partition.sh PORTALOCK PORT DIR [ROUNDS] [dns] -- issue 8 item 2: a
# partitioned holder must learn that it lost the lock before anybody else
# gets it.
#
# A network namespace <prefix><pid> (prefix $PL_NETNS_PREFIX, default plr;
# pld in dns mode) with a veth pair (host end 10.213.80.1, namespace end
# 10.213.80.2; 10.213.81.x in dns mode) and a redis-server bound to the host
# end and 127.0.0.1 on PORT.  Per round: a `portalock --redis --on-lost kill`
# CLI inside the namespace holds the lock and runs a command that stamps the
# time every 10 ms; the veth is set down (the holder can no longer reach
# Redis, nor Redis the holder, and TCP says nothing for ~30 s); a second CLI
# on the host (via 127.0.0.1) waits for the lock and stamps the time its own
# command starts.  Passes when, in every round, the holder's last stamp is
# earlier than the waiter's start.  Prints the gaps.
#
# dns: the holder names the server redis.pl.test, answered by a small DNS
# server inside the namespace (127.0.0.1:53, through the namespace's own
# /etc/netns/<ns>/resolv.conf: timeout 3 s, 1 attempt) that falls silent at
# the partition, as on a host cut off from the network.  The holder's probe
# (DESIGN.md 4.4) must not wait for a name lookup that the partition blocks
# (glibc's resolver waits 5 s x 2 attempts by default: past the deadline,
# and past the waiters' eviction; test ctest conformance.redis.partition_dns).
#
# Needs root and `ip` (iproute2), in dns mode python3 and a writable
# /etc/netns; exits 77 (skipped) without them.  Cleans up the namespace, the
# veth, the servers and /etc/netns/<ns> on every exit.
set -eu
CLI=$1
PORT=$2
DIR=$3
ROUNDS=${4:-1}
MODE=${5:-plain}
if [ "$MODE" = dns ]; then
    NS=${PL_NETNS_PREFIX:-pld}$$
    NET=10.213.81
    HOST=redis.pl.test
    ME="partition.sh dns"
else
    NS=${PL_NETNS_PREFIX:-plr}$$
    NET=10.213.80
    HOST=$NET.1
    ME=partition.sh
fi
VH=${NS}a
VN=${NS}b
SRV=
DNS=

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1 ||
    { [ "$MODE" = dns ] && ! command -v python3 >/dev/null 2>&1; }; then
    echo "$ME: needs root and ip(8) for a network namespace (dns: python3 too): skipped"
    exit 77
fi

cleanup() {
    [ -n "$DNS" ] && kill "$DNS" 2>/dev/null && wait "$DNS" 2>/dev/null || true
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null || true
    ip link del "$VH" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    if [ "$MODE" = dns ]; then
        rm -rf "/etc/netns/$NS"
        rmdir /etc/netns 2>/dev/null || true # only if we left it empty
    fi
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR"
rm -f "$DIR/dns.silent"
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$NET.1/24" dev "$VH"
ip link set "$VH" up
ip netns exec "$NS" ip addr add "$NET.2/24" dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
ip netns exec "$NS" ip link set lo up

if [ "$MODE" = dns ]; then
    # `ip netns exec` mounts these over /etc/resolv.conf in the namespace.
    if ! mkdir -p "/etc/netns/$NS" 2>/dev/null; then
        echo "$ME: cannot write /etc/netns (read-only /etc?): skipped"
        exit 77
    fi
    printf 'nameserver 127.0.0.1\noptions timeout:3 attempts:1\n' \
        >"/etc/netns/$NS/resolv.conf"
    # The DNS server: A redis.pl.test -> 10.213.81.1, an empty answer for
    # anything else; silent once $DIR/dns.silent exists.
    cat >"$DIR/dns.py" <<'EOF'
import os, socket, sys
silent = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, peer = s.recvfrom(512)
    if os.path.exists(silent) or len(q) < 17:
        continue
    end = 12
    while end < len(q) and q[end] != 0:
        end += q[end] + 1
    end += 5  # the root label, QTYPE, QCLASS
    name = q[12:end - 4].lower()
    qtype = q[end - 4:end - 2]
    hit = name == b"\x05redis\x02pl\x04test\x00" and qtype == b"\x00\x01"
    head = q[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if hit else b"\x00\x00")
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04" + bytes(
        [10, 213, 81, 1]) if hit else b""
    s.sendto(head + b"\x00\x00\x00\x00" + q[12:end] + ans, peer)
EOF
    ip netns exec "$NS" python3 "$DIR/dns.py" "$DIR/dns.silent" &
    DNS=$!
fi

# Bound to both addresses; must answer on the host end of the veth.
. "$(dirname "$0")/own_server.sh"
OWN_SERVER_ARGS="--protected-mode no"
own_server_start "$NET.1" "$NET.1" 127.0.0.1 || {
    echo "FAIL: redis-server on $NET.1 did not start (log $DIR/redis.log)"
    exit 1
}
URL_NS=redis://$HOST:$PORT
URL_HOST=redis://127.0.0.1:$PORT
i=0
until ip netns exec "$NS" redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "FAIL: the namespace cannot reach $HOST:$PORT"; exit 1; }
    sleep 0.05
done

now() { date +%s.%N; }
fails=0
r=1
while [ $r -le "$ROUNDS" ]; do
    NAME=plt.partition.$MODE.$$.$r
    rm -f "$DIR/holder.ts" "$DIR/waiter.ts" "$DIR/holder.err" "$DIR/dns.silent"
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
    [ "$MODE" = dns ] && touch "$DIR/dns.silent"
    ip netns exec "$NS" ip link set "$VN" down
    WRC=0
    "$CLI" --redis "$URL_HOST" -w 60 "$NAME" -c "date +%s.%N > '$DIR/waiter.ts'" || WRC=$?
    # the holder's CLI may still be closing its (partitioned) connection, or
    # (dns) waiting for a name lookup: give it time to show whether it
    # stamps on (the verdict compares the last stamp)
    [ "$MODE" = dns ] && sleep 4
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
