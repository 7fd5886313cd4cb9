#!/usr/bin/env bash
# bench/netfs.sh -- the protocol-level and cross-host rows of ci/bench.sh:
# writes a markdown section to stdout (ci/bench.sh appends it to report.md)
# and JSON lines to OUT/netfs.json.
#
#   bench/netfs.sh servers BUILD OUT [SCALE]
#       nfs-ganesha and samba (ci/fs.sh *-netns kinds: server in namespace
#       plnS, client B in plnA) with the project's protocol clients
#       (pl_nfs_contender over libnfs, smb2_contender.py over impacket), and
#       plfwd on two "hosts" (ci/fs.sh plfwd-2host: B is namespace plnB
#       behind its own sshd), each beside the same pattern on one host
#   bench/netfs.sh hosts BUILD OUT A,B DIR [DIR_B]
#       your two machines: contenders run as "ssh A CONTENDER" and
#       "ssh B CONTENDER" ("local" runs one here) on DIR (as B sees it:
#       DIR_B, default DIR), beside A and A on one host.  CONTENDER is
#       $PL_BENCH_CONTENDER, default the pl_contender of BUILD (the same path
#       must exist on both hosts); the lock backend is $PL_BENCH_BACKEND
#       (default flock; on NFS prefer lockf or ofd)
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fs_sh=$root/ci/fs.sh
mode=${1:?servers or hosts}
build=${2:?BUILD dir}
out=${3:?OUT dir}
py=/usr/bin/python3
json=$out/netfs.json
md=$out/netfs.rows.md
work=$out/.work
mkdir -p "$work"
: >"$md"
up=()
cleanup() {
    local k
    for k in "${up[@]}"; do bash "$fs_sh" teardown "$k" "$work" >/dev/null 2>&1; done
}
trap cleanup EXIT
note() { printf '[netfs.sh] %s\n' "$*" >&2; }
rounds=20
n=200

row() { # row LABEL ARGS...: one bench/netfs.py run
    local label=$1
    shift
    note "$label"
    timeout 600 "$py" "$here/netfs.py" --label "$label" --json "$json" --md "$md" \
        --n "$n" --rounds "$rounds" "$@" >/dev/null ||
        printf '| %s | — | failed: see %s | | | | |\n' "$label" "$(basename "$json")" >>"$md"
}

setup() { # setup KIND: sets OUTP (ci/fs.sh output) or returns 1
    local kind=$1 err
    up+=("$kind")
    if ! OUTP=$(bash "$fs_sh" setup "$kind" "$work" 2>"$work/$kind.err"); then
        err=$(tail -n1 "$work/$kind.err")
        note "skip $kind: $err"
        printf '| %s | — | not run: %s | | | | |\n' "$kind" "$err" >>"$md"
        return 1
    fi
}
val() { printf '%s\n' "$OUTP" | sed -n "s/^$1=//p" | head -n1; }

case $mode in
servers)
    [ "${4:-1}" != 1 ] && rounds=$(awk -v s="$4" 'BEGIN { r = int(20 * s); print r < 5 ? 5 : r }')
    nfs=$build/conformance/netfs/pl_nfs_contender
    smb="$py $root/conformance/netfs/smb2_contender.py"
    if [ -x "$nfs" ] && setup nfs-ganesha-netns; then
        d=$(val dir)
        a="$nfs --url $(val url) --root $d"
        b="$(command -v ip) netns exec $(val netns_a) $nfs --url $(val url_a) --root $d"
        row "nfs-ganesha: two clients on this host" --a "$a" --b "$a" \
            --path-a "$d/l1.lock" --path-b "$d/l1.lock" --death
        row "nfs-ganesha: this host + namespace plnA" --a "$a" --b "$b" \
            --path-a "$d/l2.lock" --path-b "$d/l2.lock" --cut "$(val cut_a)" --uncut "$(val uncut_a)"
        bash "$fs_sh" teardown nfs-ganesha-netns "$work" >/dev/null 2>&1
    elif [ ! -x "$nfs" ]; then
        printf '| nfs-ganesha | — | not run: no pl_nfs_contender (libnfs-dev) | | | | |\n' >>"$md"
    fi
    if "$py" -c 'import impacket.smb3' 2>/dev/null && setup samba-netns; then
        d=$(val dir)
        a="$smb --server $(val smb) --share $(val share) --root $d"
        b="$(command -v ip) netns exec $(val netns_a) $smb --server $(val smb_a) --share $(val share) --root $d"
        n=50 # impacket signs/encrypts in Python: ms per request
        row "samba: two sessions on this host" --a "$a" --b "$a" \
            --path-a "$d/l1.lock" --path-b "$d/l1.lock" --death
        row "samba: this host + namespace plnA" --a "$a" --b "$b" \
            --path-a "$d/l2.lock" --path-b "$d/l2.lock" --cut "$(val cut_a)" --uncut "$(val uncut_a)"
        n=200
        bash "$fs_sh" teardown samba-netns "$work" >/dev/null 2>&1
    fi
    c=$build/conformance/contender/pl_contender
    if [ -x "$c" ] && PL_BUILD_DIR=$build setup plfwd-2host; then
        d1=$(val dir) d2=$(val dir2)
        row "plfwd: two mounts on this host (same-host baseline)" --a "$c" --b "$c" \
            --path-a "$d1/l1.lock" --path-b "$d2/l1.lock" --death
        row "plfwd: this host + host plnB over ssh" --a "$c" --b "$(val ssh_b) $c" \
            --path-a "$d1/l2.lock" --path-b "$d2/l2.lock" --death \
            --cut "$(val cut_b)" --uncut "$(val uncut_b)"
        bash "$fs_sh" teardown plfwd-2host "$work" >/dev/null 2>&1
    elif [ ! -x "$c" ]; then
        printf '| plfwd | — | not run: no conformance/contender/pl_contender in the build | | | | |\n' >>"$md"
    fi
    ;;
hosts)
    hosts=${4:?A,B}
    dir=${5:?DIR}
    dir_b=${6:-$dir}
    c=${PL_BENCH_CONTENDER:-$build/conformance/contender/pl_contender}
    be=${PL_BENCH_BACKEND:-flock}
    on() { if [ "$1" = local ]; then echo "$c"; else echo "ssh -T -o BatchMode=yes $1 $c"; fi; }
    ha=${hosts%%,*} hb=${hosts#*,}
    row "$ha + $ha (one host, baseline)" --a "$(on "$ha")" --b "$(on "$ha")" --backend "$be" \
        --path-a "$dir/portalock-bench-hosts-1.lock" --path-b "$dir/portalock-bench-hosts-1.lock" --death
    row "$ha + $hb" --a "$(on "$ha")" --b "$(on "$hb")" --backend "$be" \
        --path-a "$dir/portalock-bench-hosts-2.lock" --path-b "$dir_b/portalock-bench-hosts-2.lock" --death
    ;;
*) echo "netfs.sh: unknown mode $mode" >&2; exit 2 ;;
esac

cat <<EOF
## Network filesystems at the protocol level, and two hosts

**protocol-level (no kernel client)**: this machine has no NFS or CIFS client, so the NFS rows
speak NFSv4 LOCK/LOCKU themselves (libnfs 4.0.0, conformance/netfs/pl_nfs_contender; one
libnfs context = one client with its own lease) against nfs-ganesha 4.3 (VFS FSAL, 5 s lease,
Graceless), and the SMB rows send SMB2 LOCK through python3-impacket against samba 4.17
(posix locking). What they measure is the server's lock manager and the network, not a kernel
client's cache. The plfwd rows run our library (pl_contender) on two mounts of the lock-forwarding
FUSE filesystem, the second "host" being a network namespace with its own sshd. Waiting is
polling at the interval shown (NFSv4.0 has no wait; a Linux NFSv4.0 client polls at 1 s, 2 s,
4 s... up to 30 s). Ping-pong: A releases → B (polling) acquires → B releases → A acquires,
half of that round trip on the driver's clock (no shared clock needed; it includes the pipes or
ssh to each side). Produced by \`bench/netfs.sh\` (bench/netfs.py), $(date -u '+%Y-%m-%d %H:%M UTC');
the machine was shared with other work.

| Participants | Client | Uncontended acquire+release | Refused (conflict) p50 | Ping-pong half RTT p50 (poll interval, polls) | Holder SIGKILLed → other gets it | Holder's network cut → other gets it |
|---|---|---|---|---|---|---|
EOF
cat "$md"
echo
