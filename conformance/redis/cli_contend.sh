#!/bin/sh
# cli_contend.sh PORTALOCK PORT DIR -- two `portalock --redis` commands on
# one lock name against the fixture server: the second waits until the
# first command is done, then runs (the second with --fair, which needs
# --redis: usage error 64 without it).
set -eu
CLI=$1
PORT=$2
DIR=$3
URL=redis://127.0.0.1:$PORT
NAME=plt.cli.$$
mkdir -p "$DIR"
rm -f "$DIR/first.start" "$DIR/first.end" "$DIR/second.start"

"$CLI" --redis "$URL" "$NAME" -c "date +%s%N > '$DIR/first.start'; sleep 1; date +%s%N > '$DIR/first.end'" &
FIRST=$!
i=0
while [ ! -s "$DIR/first.start" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
[ -s "$DIR/first.start" ] || { echo "FAIL: first CLI never got the lock"; kill $FIRST 2>/dev/null; exit 1; }
RC=0
"$CLI" --redis "$URL" --fair -w 10 "$NAME" -c "date +%s%N > '$DIR/second.start'" || RC=$?
FRC=0
wait $FIRST || FRC=$?
[ $FRC -eq 0 ] || { echo "FAIL: first CLI exited with $FRC"; exit 1; }
[ $RC -eq 0 ] || { echo "FAIL: second CLI exited with $RC"; exit 1; }
END=$(cat "$DIR/first.end")
START2=$(cat "$DIR/second.start")
if [ "$START2" -lt "$END" ]; then
    echo "FAIL: second command started at $START2, before the first ended at $END"
    exit 1
fi
URC=0
"$CLI" --fair "$DIR/f" -c true 2>/dev/null || URC=$?
[ $URC -eq 64 ] || { echo "FAIL: --fair without --redis exited with $URC, not 64"; exit 1; }
echo "ok: second command ran $(( (START2 - END) / 1000 )) us after the first ended"
