#!/bin/sh
# cli_check_lost.sh PORTALOCK PORT DIR -- issue 8 item 13: when the CLI
# cannot reach Redis after the command, for longer than the holder's
# deadline, it must not claim the command ran under the lock.
#
# Its own redis-server on 127.0.0.1:PORT.  `portalock --redis` runs
# `sleep 0.5`; meanwhile the server is SIGSTOPped for 3 s (longer than the
# holder's deadline, 0.5 s by default, plus command_timeout, 2 s).  The CLI
# must exit 1 and say the lock was lost (it used to exit 0: pl_lock_check
# said PL_ECONN, which it took for "still held").
set -eu
CLI=$1
PORT=$2
DIR=$3
mkdir -p "$DIR"
. "$(dirname "$0")/own_server.sh"
SRV=
trap '[ -z "$SRV" ] || { kill -CONT $SRV 2>/dev/null; kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; } || true' EXIT INT TERM
own_server_start 127.0.0.1 127.0.0.1 || {
    echo "FAIL: redis-server did not start (log $DIR/redis.log)"
    exit 1
}
rm -f "$DIR/started"
RC=0
"$CLI" --redis "redis://127.0.0.1:$PORT" plt.clilost.$$ \
    -c "touch '$DIR/started'; sleep 0.5" 2>"$DIR/cli.err" &
CLIPID=$!
i=0
while [ ! -e "$DIR/started" ] && [ $i -lt 200 ]; do
    sleep 0.02
    i=$((i + 1))
done
kill -STOP "$SRV"
sleep 3
kill -CONT "$SRV"
wait $CLIPID || RC=$?
cat "$DIR/cli.err"
if [ $RC -ne 1 ] || ! grep -q "lock was lost" "$DIR/cli.err"; then
    echo "FAIL: Redis unreachable after the command: the CLI exited $RC"
    exit 1
fi
echo "ok: the CLI exited 1 and said the lock was lost"
