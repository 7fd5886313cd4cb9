#!/usr/bin/env bash
# ci/flock-compat.sh -- run util-linux's own flock(1) tests against portalock.
#
#   ci/flock-compat.sh [options] UTIL_LINUX_TREE [UTIL_LINUX_TREE...]
#
# Each UTIL_LINUX_TREE is a util-linux source tree (not built).  The tests
# found there are run unchanged: tests/ts/flock/{flock,close,unlock,
# range-lock} (util-linux >= 2.40, e.g. HEAD) and tests/ts/misc/flock
# (older, e.g. v2.38.1).  TS_CMD_FLOCK points at a symbolic link named
# "flock" to the portalock binary (util-linux's expected output carries the
# name "flock:", and portalock prints the name it was invoked as).  Each
# test also runs against the reference flock(1), so the table printed at
# the end shows both, subtest by subtest.
#
# Options
#   --portalock PATH   the binary (default: $PL_BUILD_DIR/lib/portalock, or
#                      build/lib/portalock in this checkout)
#   --reference PATH   the flock(1) to compare with (default: flock in PATH;
#                      "none" to skip)
#   --lslocks PATH     lslocks for range-lock (default: TREE/build/lslocks if
#                      built, else lslocks in PATH).  range-lock needs an
#                      lslocks that can name the holder of an OFD lock
#                      (util-linux >= 2.41); Debian 12's 2.38.1 cannot.
#   --markdown         print the table as Markdown
#   --retries N        run a test whose subtests did not all pass up to N
#                      more times (its timing assumes an idle machine: a
#                      3-second holder must outlast several subtests); the
#                      table says which try passed
#
# Exit status: 0 if every subtest passed with portalock, 1 if one failed,
# 2 usage.  Nothing here is used by ci/test.sh (CI has no util-linux tree):
# lib/tests/cli/test_flock_compat.sh covers the same cases there.  How to
# get a tree: see README.md ("flock(1) compatibility").
set -u

usage() {
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

HERE=$(cd "$(dirname "$0")/.." && pwd)
PL=""
REF=$(command -v flock || true)
LSLOCKS=""
MD=0
RETRIES=0
TREES=()
while [ $# -gt 0 ]; do
    case $1 in
    --portalock) PL=$2; shift 2 ;;
    --reference) REF=$2; shift 2 ;;
    --lslocks) LSLOCKS=$2; shift 2 ;;
    --markdown) MD=1; shift ;;
    --retries) RETRIES=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "flock-compat: unknown option $1" >&2; usage ;;
    *) TREES+=("$1"); shift ;;
    esac
done
[ ${#TREES[@]} -gt 0 ] || usage
[ "$REF" = none ] && REF=""
if [ -z "$PL" ]; then
    PL=${PL_BUILD_DIR:-$HERE/build}/lib/portalock
fi
case $PL in /*) ;; *) PL=$PWD/$PL ;; esac
[ -x "$PL" ] || { echo "flock-compat: no portalock binary at $PL (build it or use --portalock)" >&2; exit 2; }
if [ -n "$REF" ]; then
    case $REF in /*) ;; *) REF=$(command -v "$REF") ;; esac
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pl-flock-compat.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results # lines: version<TAB>test<TAB>subtest<TAB>impl<TAB>result
: >"$RESULTS"

# A "build directory" for the util-linux test driver: flock, lslocks and the
# test_strerror helper it looks for there.  test_strerror is ours: it prints
# strerror() of an errno name (what the close test uses to clean its output).
mkbuild() { # mkbuild DIR FLOCK LSLOCKS
    mkdir -p "$1"
    ln -sf "$2" "$1/flock"
    [ -n "$3" ] && ln -sf "$3" "$1/lslocks"
    cat >"$1/test_strerror" <<'PY'
#!/usr/bin/env python3
import errno, os, sys
print(os.strerror(getattr(errno, sys.argv[1])))
PY
    chmod +x "$1/test_strerror"
}

# parse IMPL VERSION TEST < driver output: one result line per subtest (or
# one for the test when it has none).
parse() {
    awk -v impl="$1" -v ver="$2" -v test="$3" '
        function emit(name, res) {
            split(res, w, " "); print ver "\t" test "\t" name "\t" impl "\t" w[1]; n++
        }
        /^ +: [^ ]+ +\.\.\./ {           # a subtest; its result may follow a diff
            name = $2; res = $0; sub(/.*\.\.\. */, "", res)
            if (res == "") pending = name; else emit(name, res)
            next
        }
        /^ (OK|FAILED|SKIPPED)/ && pending != "" { emit(pending, substr($0, 2)); pending = ""; next }
        top == "" && (/\.\.\. (OK|FAILED|SKIPPED)/ || /^ (OK|FAILED|SKIPPED) \(/) {
            res = $0; sub(/.*\.\.\. /, "", res); sub(/^ /, "", res)
            split(res, w, " "); top = w[1]; if (top == "SKIPPED") top = res
        }
        END { if (n == 0) print ver "\t" test "\t-\t" impl "\t" (top == "" ? "NO-RESULT" : top) }
    ' >>"$RESULTS"
}

runtest() { # runtest IMPL FLOCK TREE VERSION SCRIPT
    local impl=$1 bin=$2 tree=$3 ver=$4 script=$5 b ls
    b=$WORK/build-$impl-$ver
    ls=$LSLOCKS
    [ -z "$ls" ] && [ -x "$tree/build/lslocks" ] && ls=$tree/build/lslocks
    [ -z "$ls" ] && ls=$(command -v lslocks || true)
    mkbuild "$b" "$bin" "$ls"
    local try=1 before
    before=$(wc -l <"$RESULTS")
    while :; do
        echo "== $impl: $ver $(basename "$(dirname "$script")")/$(basename "$script") (try $try)" >&2
        rm -rf "$b/tests"
        (cd "$tree/tests" && timeout 120 bash "$script" --nolocks --show-diff --builddir="$b") \
            >"$WORK/out" 2>&1
        cat "$WORK/out" >&2
        head -n "$before" "$RESULTS" >"$WORK/keep"
        cp "$WORK/keep" "$RESULTS"
        parse "$impl" "$ver" "$(basename "$script")" <"$WORK/out"
        # util-linux's flock test holds its lock for 3 s while the subtests
        # run; on a loaded machine they can outlast it, for any flock.
        # Retry (--retries) and say so in the table.
        if ! tail -n +"$((before + 1))" "$RESULTS" | cut -f5 | grep -qv '^OK$' ||
            [ "$try" -gt "$RETRIES" ]; then
            break
        fi
        try=$((try + 1))
    done
    if [ "$try" -gt 1 ]; then
        awk -F'\t' -v OFS='\t' -v n="$before" -v t="$try" \
            'NR > n { $5 = $5 " (try " t ")" } { print }' "$RESULTS" >"$WORK/keep"
        cp "$WORK/keep" "$RESULTS"
    fi
}

for tree in "${TREES[@]}"; do
    tree=$(cd "$tree" && pwd) || exit 2
    ver=$(git -C "$tree" describe --tags 2>/dev/null || basename "$tree")
    scripts=()
    for t in flock close unlock range-lock; do
        [ -f "$tree/tests/ts/flock/$t" ] && scripts+=("$tree/tests/ts/flock/$t")
    done
    [ -f "$tree/tests/ts/misc/flock" ] && scripts+=("$tree/tests/ts/misc/flock")
    if [ ${#scripts[@]} -eq 0 ]; then
        echo "flock-compat: $tree has no tests/ts/flock/* or tests/ts/misc/flock" >&2
        exit 2
    fi
    for s in "${scripts[@]}"; do
        runtest portalock "$PL" "$tree" "$ver" "$s"
        [ -n "$REF" ] && runtest flock "$REF" "$tree" "$ver" "$s"
    done
done

# The table: one row per (version, test, subtest), portalock beside flock(1).
refname="flock(1)"
[ -n "$REF" ] && refname="$REF $("$REF" --version 2>/dev/null | sed -n 's/.* \([0-9][0-9.]*\)$/\1/p' | head -1)"
awk -F'\t' -v md="$MD" -v ref="$refname" '
    { key = $1 "\t" $2 "\t" $3; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      r[key "\t" $4] = $5 }
    END {
        if (md) {
            print "| util-linux | test | subtest | portalock | " ref " |"
            print "|---|---|---|---|---|"
        } else
            printf "%-24s %-11s %-20s %-10s %s\n", "util-linux", "test", "subtest", "portalock", ref
        for (i = 1; i <= n; i++) {
            split(order[i], k, "\t")
            p = r[order[i] "\tportalock"]; f = r[order[i] "\tflock"]
            if (p == "") p = "not run"
            if (f == "") f = "not run"
            if (md) printf "| %s | %s | %s | %s | %s |\n", k[1], k[2], k[3], p, f
            else printf "%-24s %-11s %-20s %-10s %s\n", k[1], k[2], k[3], p, f
        }
    }' "$RESULTS"
npass=$(awk -F'\t' '$4 == "portalock" && $5 ~ /^OK/' "$RESULTS" | wc -l)
nall=$(awk -F'\t' '$4 == "portalock"' "$RESULTS" | wc -l)
echo "portalock: $npass of $nall subtests passed" >&2
[ "$npass" = "$nall" ]
