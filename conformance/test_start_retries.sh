#!/bin/sh
# ctest conformance.start_retries: PL_CONFORMANCE_START_RETRIES (PROTOCOL.md
# §6).  A contender whose launcher dies before hello fails the test and the
# message says how it ended; with retries it is started again (said on
# stderr); a contender that never starts fails after its last try.
#
#   test_start_retries.sh PL_CONFORMANCE PL_CONTENDER SCRATCH_DIR
set -u
suite=$1 contender=$2 dir=$3
rm -rf "$dir"
mkdir -p "$dir/locks"
fails=0
check() { # name, then a command that must succeed
    name=$1
    shift
    if "$@"; then echo "ok - $name"; else echo "FAIL - $name"; fails=$((fails + 1)); fi
}

# Exits 3 on the first start of each contender slot (counted per run), then
# runs the real contender: the shape of Wine failing before our program runs.
cat >"$dir/flaky" <<EOS
#!/bin/sh
n=\$(cat "$dir/starts" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$dir/starts"
[ "\$n" -eq 0 ] && exit 3
exec "$contender"
EOS
printf '#!/bin/sh\nexit 3\n' >"$dir/dead"
chmod +x "$dir/flaky" "$dir/dead"

run() { # retries, contender, log
    PL_CONFORMANCE_START_RETRIES=$1 PORTALOCK_CONTENDER=$2 \
        PL_CONFORMANCE_DIR=$dir/locks timeout 120 "$suite" \
        --filter 'exclusion/exclusivity' >"$3" 2>&1
}

rm -f "$dir/starts"
run 0 "$dir/flaky" "$dir/none.log"
check "without retries a contender that exits before hello fails the test" \
    test $? -ne 0
check "the failure says how the contender ended" \
    grep -q 'did not answer hello (EOF; exit status 3)' "$dir/none.log"

rm -f "$dir/starts"
run 1 "$dir/flaky" "$dir/one.log"
check "one retry starts it again and the test passes" test $? -eq 0
check "the retry is said on stderr" \
    grep -q 'starting it again (PL_CONFORMANCE_START_RETRIES=1)' "$dir/one.log"

run 2 "$dir/dead" "$dir/dead.log"
check "a contender that never starts fails after its tries" test $? -ne 0
check "and says it was the last try" \
    grep -q 'exit status 3), the last of its tries' "$dir/dead.log"
check "it was started three times" \
    test "$(grep -c 'starting it again' "$dir/dead.log")" -eq 2

if [ $fails -ne 0 ]; then
    for f in "$dir"/*.log; do
        echo "---- $f"
        tail -15 "$f"
    done
    exit 1
fi
rm -rf "$dir"
