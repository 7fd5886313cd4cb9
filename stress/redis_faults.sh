#!/bin/sh
# redis_faults.sh BUILD_DIR [ROUNDS] [PORT] -- the long forms of the Redis
# fault tests (issue 8): every timing-sensitive case of
# conformance/redis/test_redis_faults.c ROUNDS times (default 10), and the
# network-namespace partitions (conformance/redis/partition.sh on PORT,
# its dns mode on PORT + 2; root only) for ROUNDS rounds (PORT default
# 56379 + 8: odd, see conformance/redis/CMakeLists.txt).  Prints one line per case,
# "redis-faults: CASE P/N passed", and exits 1 if any round failed.
#
# ci/stress.sh runs it (section "redis"); ctest conformance.redis.faults and
# conformance.redis.partition run each case once.
set -u
BUILD=$1
ROUNDS=${2:-10}
PORT=${3:-56387}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$BUILD/conformance/redis/pl_redis_faults
cli=$BUILD/lib/portalock
[ -x "$bin" ] || { echo "redis-faults: $bin not built (hiredis missing?)"; exit 1; }
export TMPDIR=${TMPDIR:-/tmp}
failed=0
for t in stall_does_not_evict_holder stall_shorter_than_holder_deadline_keeps_lock \
    forged_ping_flood_does_not_evict flood_on_starved_holder_keeps_lock \
    probe_refused_at_maxclients_keeps_run_check \
    stale_record_after_restart_kills_nobody \
    publish_denied_waiter_does_not_evict forked_child_does_not_keep_dead_holders_lock \
    forever_waiter_survives_restart_and_stall tokens_grow_across_crash_restart_with_rdb \
    queue_only_head_polls queue_dead_head_does_not_block queue_dead_head_does_not_block_fair \
    queued_waiter_times_out_and_leaves_queue fair_mode_grants_in_arrival_order \
    fair_mode_reader_wait_is_bounded release_wakes_only_the_head \
    release_skips_dead_queue_head release_skips_pending_writers_behind_writer_head; do
    ok=0
    r=1
    while [ $r -le "$ROUNDS" ]; do
        if "$bin" --jobs 1 --filter "redis_faults/$t" >"$TMPDIR/redis_faults.$$.log" 2>&1; then
            ok=$((ok + 1))
        else
            echo "---- $t round $r failed:"
            grep -E 'Assert|\[----\]   [^ ]|redis_faults\]' "$TMPDIR/redis_faults.$$.log" | head -10
        fi
        grep -h '^\[redis_faults\]' "$TMPDIR/redis_faults.$$.log" | sed "s/^/    /"
        r=$((r + 1))
    done
    echo "redis-faults: $t $ok/$ROUNDS passed"
    [ $ok -eq "$ROUNDS" ] || failed=1
done
rm -f "$TMPDIR/redis_faults.$$.log"
# partition (server by address) and partition_dns (by name, the DNS server
# cut off too), each on its own port
for mode in plain dns; do
    name=partition
    port=$PORT
    [ $mode = dns ] && name=partition_dns && port=$((PORT + 2))
    rc=0
    sh "$here/conformance/redis/partition.sh" "$cli" "$port" "$TMPDIR/redis_$name.$$" "$ROUNDS" $mode || rc=$?
    case $rc in
    0) echo "redis-faults: $name $ROUNDS/$ROUNDS passed" ;;
    77) echo "redis-faults: $name skipped (needs root and ip; dns: python3)" ;;
    *) echo "redis-faults: $name FAILED"; failed=1 ;;
    esac
    rm -rf "$TMPDIR/redis_$name.$$"
done
exit $failed
