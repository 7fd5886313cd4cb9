# lib.sh -- helpers shared by the portalock CLI test scripts (sourced).
#
# Usage in a script:  . "$(dirname "$0")/lib.sh" "$@"   (PL = portalock binary)
# Every check prints "ok - NAME" or "FAIL - NAME: detail"; finish() prints
# "cli: N passed, M failed" and exits non-zero on any failure.  Background
# holders wait for a release file with a bounded loop and are killed by the
# EXIT trap, so no test can hang.
# RC, OUT, ERR and HOLDER_RC are read by the scripts that source this file.
# shellcheck disable=SC2034

PL=${1:?usage: $0 PORTALOCK_BINARY [MAN_PAGE]}
case $PL in /*) ;; *) PL=$PWD/$PL ;; esac
[ -x "$PL" ] || { echo "not executable: $PL"; exit 2; }
export SHELL=/bin/sh          # -c commands below are POSIX sh
unset PORTALOCK_BACKEND
T=$(mktemp -d "${TMPDIR:-/tmp}/pl-cli.XXXXXX")
PASS=0
FAIL=0
BG=()
declare -A HOLDER_PID

cleanup() {
    local p
    for p in "${BG[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${BG[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ -f "$T/strays" ]; then
        while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$T/strays"
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { PASS=$((PASS + 1)); echo "ok - $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL - $1: $2"; }
# check NAME CONDITION-COMMAND... : passes if the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "'$*' is false"; fi
}
# check_rc NAME EXPECTED ACTUAL [stderr to show on failure]
check_rc() {
    if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "exit status $3, expected $2${4:+; stderr: $4}"; fi
}
# check_grep NAME PATTERN TEXT
check_grep() {
    if printf '%s' "$3" | grep -qE -- "$2"; then pass "$1"; else fail "$1" "'$3' does not match /$2/"; fi
}

# run ARGS...: runs portalock, sets RC, OUT, ERR.
run() {
    "$PL" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
    # A sanitizer report may exit 1, like a conflict: never let it pass.
    if grep -qE 'Sanitizer|runtime error:' "$T/err"; then
        fail "no sanitizer report (portalock $*)" "$(head -5 "$T/err")"
    fi
}

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
# in_range X LO HI: LO <= X <= HI (decimals)
in_range() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

# wait_file PATH SECONDS: bounded wait for a file to appear.
wait_file() {
    local i=0 n
    n=$(awk -v s="$2" 'BEGIN { printf "%d", s * 20 }')
    while [ ! -e "$1" ] && [ $i -lt "$n" ]; do
        sleep 0.05
        i=$((i + 1))
    done
    [ -e "$1" ]
}

# start_holder ID PORTALOCK-ARGS...: runs portalock ARGS -c CMD in the
# background, where CMD signals readiness and waits (at most 60 s) for
# release_holder.  Returns 0 once the holder has the lock.
start_holder() {
    local id=$1
    shift
    rm -f "$T/ready.$id" "$T/release.$id"
    "$PL" "$@" -c "touch '$T/ready.$id'; i=0; while [ ! -e '$T/release.$id' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done" \
        >"$T/holder.$id.out" 2>"$T/holder.$id.err" &
    HOLDER_PID[$id]=$!
    BG+=("$!")
    wait_file "$T/ready.$id" 15
}
# release_holder ID: lets the holder's command end; sets HOLDER_RC.
release_holder() {
    touch "$T/release.$1"
    wait "${HOLDER_PID[$1]}"
    HOLDER_RC=$?
}

# tiny_waits RUNS "W1 W2 ..." CMD ARGS...: runs CMD RUNS times for each W,
# its "{w}" argument replaced by W, under a 5 s SIGKILL timeout, against a
# held lock: every run must time out (exit 1).  Sets HUNG (killed: 137),
# OTHER (any other status) and FIRST (the first of those, for a message).
tiny_waits() {
    local runs=$1 ws=$2 w a i rc cmd
    shift 2
    HUNG=0 OTHER=0 FIRST=""
    for w in $ws; do
        cmd=()
        for a in "$@"; do
            if [ "$a" = "{w}" ]; then cmd+=("$w"); else cmd+=("$a"); fi
        done
        for ((i = 0; i < runs; i++)); do
            timeout -s KILL 5 "${cmd[@]}" 2>/dev/null
            rc=$?
            if [ $rc = 137 ]; then
                HUNG=$((HUNG + 1))
            elif [ $rc != 1 ]; then
                OTHER=$((OTHER + 1))
                FIRST=${FIRST:-" (first: -w $w exit $rc)"}
            fi
        done
    done
}

finish() {
    local f
    for f in "$T"/*.err; do
        if [ -f "$f" ] && grep -qE 'Sanitizer|runtime error:' "$f"; then
            fail "no sanitizer report in $(basename "$f")" "$(head -5 "$f")"
        fi
    done
    echo "cli: $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}
