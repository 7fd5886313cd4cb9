#!/usr/bin/env bash
# run-netfs.sh -- one protocol-level conformance run: ci/fs.sh sets up the
# server, the scenarios (pl_netfs_conformance) run with two clients, the
# server is torn down.
#
#   run-netfs.sh KIND WORKDIR SUITE NFS_CONTENDER SMB_CONTENDER [SUITE ARGS...]
#
# KIND: nfs-ganesha, nfs-ganesha-netns (client B in namespace plnA, with the
# network_cut scenario), samba, samba-netns.  Exit 77 (ctest SKIP) with the
# reason when the server or the client cannot run here.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
fs_sh=${PL_FS_SH:-$here/../../ci/fs.sh}
[ $# -ge 5 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
kind=$1 work=$2 suite=$3 nfs_contender=$4 smb_contender=$5
shift 5

skip() { echo "conformance.$kind: SKIP: $*" >&2; exit 77; }
case $kind in
nfs-*) [ -x "$nfs_contender" ] || skip "no NFS contender (build with libnfs-dev)" ;;
samba*) /usr/bin/python3 -c 'import impacket.smb3' 2>/dev/null ||
    skip "python3-impacket is not installed (the SMB2 client)" ;;
esac
mkdir -p "$work"
out=$(bash "$fs_sh" setup "$kind" "$work" 2>"$work/$kind.setup.err")
rc=$?
if [ $rc -ne 0 ]; then
    cat "$work/$kind.setup.err" >&2
    [ $rc -eq 77 ] && exit 77
    echo "conformance.$kind: ci/fs.sh setup failed ($rc)" >&2
    exit 1
fi
trap 'bash "$fs_sh" teardown "$kind" "$work" >&2' EXIT
val() { printf '%s\n' "$out" | sed -n "s/^$1=//p" | head -n1; }
dir=$(val dir)
mkdir -p "$dir/conf" && chmod 1777 "$dir/conf"
export PL_CONFORMANCE_DIR=$dir/conf PL_CONFORMANCE_FS=$kind
export PL_NETFS_LEASE=$(val lease)
case $kind in
nfs-*)
    export PORTALOCK_CONTENDER="$nfs_contender --url $(val url) --root $dir"
    b_url=$(val url_a) ;;
samba*)
    export PL_NETFS_LEASE=0
    export PORTALOCK_CONTENDER="/usr/bin/python3 $smb_contender --server $(val smb) --share $(val share) --root $dir"
    b_url=$(val smb_a) ;;
esac
unset PL_NETFS_CONTENDER_B PL_NETFS_CUT PL_NETFS_UNCUT
if [ -n "$(val netns_a)" ]; then
    case $kind in
    nfs-*) b="$nfs_contender --url $b_url --root $dir" ;;
    samba*) b="/usr/bin/python3 $smb_contender --server $b_url --share $(val share) --root $dir" ;;
    esac
    export PL_NETFS_CONTENDER_B="$(command -v ip) netns exec $(val netns_a) $b"
    export PL_NETFS_CUT=$(val cut_a) PL_NETFS_UNCUT=$(val uncut_a)
fi
bugs=$(dirname "$nfs_contender")/pl_libnfs_bugs
if [ "$kind" = nfs-ganesha ] && [ -x "$bugs" ]; then
    # The libnfs bugs the NFS contender works around must still be there.
    "$bugs" "$(val url)" >&2 || { echo "conformance.$kind: pl_libnfs_bugs failed" >&2; exit 1; }
fi
echo "conformance.$kind: A: $PORTALOCK_CONTENDER" >&2
echo "conformance.$kind: B: ${PL_NETFS_CONTENDER_B:-(same as A)}" >&2
# One scenario at a time: network_cut takes client B's link down, which
# must not hit B in a scenario running beside it.
export CRITERION_JOBS=1
"$suite" "$@"
