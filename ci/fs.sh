#!/usr/bin/env bash
# ci/fs.sh -- filesystems for lock tests: set up, tear down, list, check.
#
#   ci/fs.sh list                      the KINDs, one per line
#   ci/fs.sh check KIND                exit 0 if KIND can run here, else 77
#                                      with the reason on stderr
#   ci/fs.sh setup KIND WORKDIR        prints  dir=<path>   (a writable
#                                      directory on that filesystem) and, for
#                                      two-mount kinds,  dir2=<path>  (the
#                                      same export through a second mount)
#   ci/fs.sh teardown KIND WORKDIR     undoes setup: unmounts, stops daemons
#                                      by PID, removes images
#
# Exit status: 0 done; 77 KIND cannot run here (reason on stderr: ctest shows
# it as a SKIP with SKIP_RETURN_CODE 77); 1 failure (diagnostics on stderr;
# a failed setup has already torn down what it built); 2 usage.
#
# KINDs
#   ext4         a directory under WORKDIR if WORKDIR is on ext4, else a
#                loop-mounted ext4 image
#   tmpfs        a tmpfs mounted under WORKDIR (root), else a directory
#                under /dev/shm
#   xfs, btrfs   loop-mounted images (sparse files)
#   overlay      overlayfs; dir = the merged directory (lower, upper and work
#                under WORKDIR; lower holds one file, "lower-file", so tests
#                can lock a file that has not been copied up)
#   sshfs        sshd on 127.0.0.1 at a free high port with a private config
#                and keys, two sshfs mounts of one export: dir, dir2.  Locks
#                are NOT coherent between the two mounts (sshfs keeps them in
#                the local kernel).
#   plfwd, plfwd-100us, plfwd-1ms
#                two mounts of one backing directory through plfwd
#                (conformance/fuse), with 0 / 100 us / 1 ms of delay per
#                request: dir, dir2.  Locks ARE coherent between the mounts
#                and with the backing files.
#   nfs-ganesha  nfs-ganesha (VFS FSAL, NFSv4 only, Graceless, 5 s lease) on
#                127.0.0.1 at a free high port; no kernel NFS client here, so
#                no mount: dir = the export's backing directory, and
#                url=nfs://127.0.0.1/export?version=4&nfsport=PORT for
#                protocol-level clients (conformance/netfs, libnfs)
#   nfs-ganesha-netns
#                the same server inside network namespace plnS, reached from
#                the host over a veth (url=, 10.213.90.2) and from a client
#                namespace plnA over a second veth (url_a=, 10.213.90.6;
#                netns_a=plnA); cut_a= / uncut_a= are the commands that take
#                that link down and up (a client losing the network)
#   samba, samba-netns
#                smbd with a private config, one share "lock" (posix locking,
#                user root, password portalock: test only) on 127.0.0.1 at a
#                free high port, or in namespace plnS
#                as above; dir = the share's directory, smb=HOST:PORT (and
#                smb_a=, netns_a=, cut_a=, uncut_a= for samba-netns)
#   plfwd-2host  two "hosts": this one and namespace plnB with its own sshd
#                on a veth; both mount plfwd over one backing directory
#                (dir = here, dir2 = host B's mount); ssh_b= runs a command
#                on host B, cut_b= / uncut_b= take B's link down and up
# For sshfs and plfwd the server-side directory (the sshfs export, the plfwd
# backing directory) is WORKDIR/fs-KIND/backing.
#
# Finding plfwd (the first that exists):  $PLFWD (path to the binary);
# $PL_BUILD_DIR/conformance/fuse/plfwd (PL_BUILD_DIR = a CMake build
# directory of this repository); plfwd on PATH.
#
# Everything a setup creates lives in WORKDIR/fs-KIND/ and is recorded in
# WORKDIR/fs-KIND/state (mounts, daemon PIDs), so a teardown from another
# process finds it.  setup and teardown are idempotent (a second setup of a
# live KIND prints the same dirs) and serialised per WORKDIR/KIND by a lock.
# Every wait is bounded (a mount or daemon gets PL_FS_WAIT seconds, default
# 10; a teardown takes a few seconds at most); daemons listen on 127.0.0.1.
# WORKDIR must be a path without spaces.
set -u -o pipefail

KINDS="ext4 tmpfs xfs btrfs overlay sshfs plfwd plfwd-100us plfwd-1ms nfs-ganesha nfs-ganesha-netns samba samba-netns plfwd-2host"
# Tenths of a second to wait for a mount or a daemon (default 10 s: the CI
# machine may be busy); PL_FS_WAIT overrides it, in seconds.
MOUNT_WAIT=$((${PL_FS_WAIT:-10} * 10))

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
skip() { echo "fs.sh: $KIND: cannot run here: $*" >&2; exit 77; }
say() { echo "fs.sh: $KIND: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# --- prerequisites -------------------------------------------------------

need_root() { is_root || skip "needs root ($1)"; }
need_cmd() { # need_cmd CMD PACKAGE
    have "$1" || skip "$1 not found (Debian package $2)"
}
need_fs() { # need_fs TYPE: the running kernel supports it
    grep -qw "$1" /proc/filesystems 2>/dev/null ||
        skip "kernel has no $1 support (not in /proc/filesystems)"
}
need_loop() {
    [ -e /dev/loop-control ] || skip "no loop devices (/dev/loop-control)"
    need_cmd losetup mount
}
need_fuse() {
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    { [ -r /dev/fuse ] && [ -w /dev/fuse ]; } ||
        skip "/dev/fuse is not readable and writable by uid $(id -u)"
    need_fs fuse
    need_cmd fusermount3 fuse3
}

plfwd_bin() {
    if [ -n "${PLFWD:-}" ]; then
        [ -x "$PLFWD" ] && { echo "$PLFWD"; return 0; }
        skip "PLFWD=$PLFWD is not an executable"
    fi
    if [ -n "${PL_BUILD_DIR:-}" ] && [ -x "$PL_BUILD_DIR/conformance/fuse/plfwd" ]; then
        echo "$PL_BUILD_DIR/conformance/fuse/plfwd"
        return 0
    fi
    if have plfwd; then
        command -v plfwd
        return 0
    fi
    skip "plfwd not found: set PLFWD=/path/to/plfwd or PL_BUILD_DIR=<build dir> (target plfwd, needs libfuse3-dev)"
}

check_kind() {
    case "$KIND" in
    ext4) need_cmd findmnt util-linux ;; # loop fallback checked at setup
    tmpfs) if ! is_root && ! { [ -d /dev/shm ] && [ -w /dev/shm ]; }; then
            skip "not root and /dev/shm is not writable"
        fi ;;
    xfs) need_root "loop mount"; need_loop; need_fs xfs
        need_cmd mkfs.xfs xfsprogs ;;
    btrfs) need_root "loop mount"; need_loop; need_fs btrfs
        need_cmd mkfs.btrfs btrfs-progs ;;
    overlay) need_root "mount -t overlay"; need_fs overlay ;;
    sshfs) need_root "sshd privilege separation, /run/sshd"; need_fuse
        need_cmd sshfs sshfs
        [ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd not found (openssh-server)"
        need_cmd ssh-keygen openssh-client
        need_cmd ssh openssh-client
        need_cmd ss iproute2 ;;
    plfwd | plfwd-100us | plfwd-1ms | plfwd-2host) need_fuse; plfwd_bin >/dev/null ;;
    nfs-ganesha | nfs-ganesha-netns | samba | samba-netns) check_server ;;
    *) echo "fs.sh: unknown KIND '$KIND' (ci/fs.sh list)" >&2; exit 2 ;;
    esac
}

check_server() {
    case "$KIND" in
    nfs-ganesha*)
        need_cmd ganesha.nfsd nfs-ganesha
        ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
            skip "the VFS FSAL is missing (Debian package nfs-ganesha-vfs)" ;;
    samba*) [ -x /usr/sbin/smbd ] || skip "/usr/sbin/smbd not found (Debian package samba)" ;;
    esac
    need_cmd ss iproute2
    case "$KIND" in
    *-netns) need_root "ip netns"; need_cmd ip iproute2
        ip netns list >/dev/null 2>&1 || skip "ip netns does not work here" ;;
    esac
}

# --- state ---------------------------------------------------------------
# $ROOT/state: one action per line, undone in reverse order by teardown:
#   mount <mountpoint>          unmount (fusermount3 -u for FUSE mounts)
#   pid <pid> <comm>            SIGTERM, then SIGKILL, if /proc/<pid>/comm
#                               still is <comm> (no PID reuse accidents)
#   shm <dir>                   rm -rf a directory outside ROOT
#   netns <name>                ip netns del
#   link <name>                 ip link del (host side of a veth pair)
#   ready                       setup finished; dir lines follow
#   dir <path> / dir2 <path>
#   info <key> <value>          printed as key=value after the dirs

record() { echo "$*" >>"$ROOT/state"; }

mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# wait_for CONDITION...: retries a command for at most MOUNT_WAIT/10 s.
wait_for() {
    local i
    for ((i = 0; i < MOUNT_WAIT; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

alive() { # alive PID COMM: running (not a zombie awaiting its reaper)
    [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# stop_pids PID COMM [PID COMM]...: SIGTERM to all, up to 1 s for them to
# exit, then SIGKILL and up to 2 s more.  (plfwd and sshd exit at once on
# SIGTERM; an unmounted sshfs lingers ~2 s for its ssh and loses nothing.)
stop_pids() {
    local -a left=() next=()
    local i j sig tenths
    while [ $# -ge 2 ]; do
        alive "$1" "$2" && left+=("$1" "$2")
        shift 2
    done
    for sig in TERM KILL; do
        for ((j = 0; j < ${#left[@]}; j += 2)); do
            kill -"$sig" "${left[$j]}" 2>/dev/null
        done
        if [ "$sig" = TERM ]; then tenths=10; else tenths=20; fi
        for ((i = 0; i < tenths; i++)); do
            next=()
            for ((j = 0; j < ${#left[@]}; j += 2)); do
                alive "${left[$j]}" "${left[$j + 1]}" && next+=("${left[$j]}" "${left[$j + 1]}")
            done
            left=("${next[@]}")
            [ ${#left[@]} -eq 0 ] && return 0
            sleep 0.1
        done
    done
    say "processes did not exit: ${left[*]}"
    return 1
}

descendants() { # descendants PID: "pid" and "comm" lines, depth first
    local c
    for c in $(pgrep -P "$1" 2>/dev/null); do
        [ -r "/proc/$c/comm" ] || continue
        echo "$c"
        cat "/proc/$c/comm"
        descendants "$c"
    done
}

do_umount() { # do_umount MOUNTPOINT
    local mp=$1 fstype
    mounted "$mp" || return 0
    fstype=$(findmnt -rn -o FSTYPE --mountpoint "$mp" | head -n1)
    case "$fstype" in
    fuse | fuse.*) timeout 10 fusermount3 -u "$mp" 2>/dev/null ||
        timeout 10 umount "$mp" 2>/dev/null ;;
    *) timeout 10 umount "$mp" 2>/dev/null ;;
    esac
    mounted "$mp" || return 0
    sleep 0.5 # e.g. a test process still exiting
    timeout 10 umount "$mp" 2>/dev/null
    mounted "$mp" || return 0
    return 1
}

teardown_kind() {
    local act a b rc=0 lines=() i mp
    [ -d "$ROOT" ] || return 0
    if [ -f "$ROOT/state" ]; then
        mapfile -t lines <"$ROOT/state"
    fi
    # Unmount first (FUSE daemons exit on unmount), then stop daemons.
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r act a b <<<"${lines[$i]}"
        [ "$act" = mount ] || continue
        do_umount "$a" # a busy mount is detached lazily below
    done
    # Daemons and their descendants (sshfs's ssh, sshd's session processes).
    local -a pids=()
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r act a b <<<"${lines[$i]}"
        if [ "$act" != pid ] || ! alive "$a" "$b"; then continue; fi
        pids+=("$a" "$b")
        mapfile -t -O "${#pids[@]}" pids < <(descendants "$a")
    done
    stop_pids "${pids[@]}" || rc=1
    # A mount that resisted (busy): detach it lazily now its daemon is gone.
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r act a b <<<"${lines[$i]}"
        [ "$act" = mount ] || continue
        if mounted "$a"; then
            say "$a still busy; lazy unmount"
            timeout 10 umount -l "$a" 2>/dev/null || rc=1
            mounted "$a" && rc=1
        fi
    done
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r act a b <<<"${lines[$i]}"
        case "$act" in
        shm) case "$a" in /dev/shm/portalock-fs-*) rm -rf -- "$a" ;; esac ;;
        link) ip link del "$a" 2>/dev/null ;;
        netns) ip netns del "$a" 2>/dev/null
            if ip netns list 2>/dev/null | grep -qw "$a"; then
                say "netns $a still there"
                rc=1
            fi ;;
        esac
    done
    # Never delete through a live mount.
    while read -r mp; do
        case "$mp" in
        "$ROOT" | "$ROOT"/*) say "still mounted: $mp"; rc=1 ;;
        esac
    done < <(findmnt -rn -o TARGET 2>/dev/null)
    if [ "$rc" -eq 0 ]; then
        # keep the lock file (others may be waiting on it), drop the rest
        find "$ROOT" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf -- {} + 2>/dev/null
        find "$ROOT" -mindepth 1 -maxdepth 1 ! -name .lock | grep -q . && rc=1
    fi
    return "$rc"
}

# Prints the dirs of a finished setup whose mounts are still there.
still_ready() {
    local act a b ok=1 out=""
    [ -f "$ROOT/state" ] || return 1
    grep -qx ready "$ROOT/state" || return 1
    while read -r act a b; do
        case "$act" in
        mount) mounted "$a" || ok=0 ;;
        pid) alive "$a" "$b" || ok=0 ;;
        dir | dir2) [ -d "$a" ] || ok=0; out+="$act=$a"$'\n' ;;
        info) out+="$a=$b"$'\n' ;;
        esac
    done <"$ROOT/state"
    [ "$ok" -eq 1 ] || return 1
    printf '%s' "$out"
}

finish() { # finish DIR [DIR2]
    record ready
    record dir "$1"
    [ $# -gt 1 ] && record dir2 "$2"
    echo "dir=$1"
    [ $# -gt 1 ] && echo "dir2=$2"
    return 0
}

info() { # info KEY VALUE: an extra key=value line of the setup's output
    record info "$1" "$2"
    echo "$1=$2"
}

fail() { # fail MESSAGE: undo the partial setup, exit 1
    say "setup failed: $*"
    teardown_kind || say "teardown after the failure left something behind"
    exit 1
}

show_log() { [ -f "$1" ] && tail -n 5 "$1" | sed 's/^/    /' >&2; }

# --- kinds ---------------------------------------------------------------

fstype_of() { findmnt -rn -o FSTYPE -T "$1" 2>/dev/null | head -n1; }

loop_image() { # loop_image FSTYPE SIZE MKFS...
    local type=$1 size=$2 err
    shift 2
    mkdir -p "$ROOT/mnt" || fail "mkdir $ROOT/mnt"
    truncate -s "$size" "$ROOT/image" || fail "truncate $ROOT/image"
    err=$("$@" "$ROOT/image" 2>&1 >/dev/null) || fail "$* image: $err"
    record mount "$ROOT/mnt"
    err=$(timeout 30 mount -t "$type" -o loop "$ROOT/image" "$ROOT/mnt" 2>&1) || {
        teardown_kind
        skip "mount -t $type -o loop failed: $err"
    }
    chmod 1777 "$ROOT/mnt"
    finish "$ROOT/mnt"
}

setup_ext4() {
    if [ "$(fstype_of "$WORKDIR")" = ext4 ]; then
        mkdir -p "$ROOT/dir" || fail "mkdir $ROOT/dir"
        finish "$ROOT/dir"
        return
    fi
    need_root "WORKDIR is not on ext4: loop-mounted image"
    need_loop
    need_fs ext4
    need_cmd mkfs.ext4 e2fsprogs
    loop_image ext4 64M mkfs.ext4 -q -F
}

setup_tmpfs() {
    local err d
    if is_root; then
        mkdir -p "$ROOT/mnt" || fail "mkdir $ROOT/mnt"
        record mount "$ROOT/mnt"
        if err=$(timeout 10 mount -t tmpfs -o size=64m,mode=1777 plfs-tmpfs "$ROOT/mnt" 2>&1); then
            finish "$ROOT/mnt"
            return
        fi
        say "mount -t tmpfs failed ($err); using /dev/shm"
    fi
    { [ -d /dev/shm ] && [ -w /dev/shm ]; } || skip "/dev/shm is not writable"
    [ "$(fstype_of /dev/shm)" = tmpfs ] || skip "/dev/shm is not a tmpfs"
    d=$(mktemp -d /dev/shm/portalock-fs-XXXXXX) || fail "mktemp in /dev/shm"
    record shm "$d"
    finish "$d"
}

setup_xfs() { check_kind; loop_image xfs 300M mkfs.xfs -q -f; }
setup_btrfs() { check_kind; loop_image btrfs 256M mkfs.btrfs -q -f; }

setup_overlay() {
    local err
    check_kind
    mkdir -p "$ROOT/lower" "$ROOT/upper" "$ROOT/work" "$ROOT/merged" ||
        fail "mkdir under $ROOT"
    echo "lower layer" >"$ROOT/lower/lower-file"
    chmod 1777 "$ROOT/lower" "$ROOT/upper"
    record mount "$ROOT/merged"
    err=$(timeout 10 mount -t overlay plfs-overlay \
        -o "lowerdir=$ROOT/lower,upperdir=$ROOT/upper,workdir=$ROOT/work" \
        "$ROOT/merged" 2>&1) || {
        teardown_kind
        skip "mount -t overlay failed: $err"
    }
    finish "$ROOT/merged"
}

# start_daemon COMM LOG CMD...: runs CMD detached from our stdio and
# session (the caller may be reading our stdout through a pipe) and
# records its PID.  Sets DAEMON_PID.
start_daemon() {
    local comm=$1 log=$2
    shift 2
    # 9>&-: the daemon must not inherit (and so keep) our lock on .lock
    "$@" </dev/null >>"$log" 2>&1 9>&- &
    DAEMON_PID=$!
    record pid "$DAEMON_PID" "$comm"
}

# fuse_mount COMM LOG MOUNTPOINT CMD...: starts a foreground FUSE daemon and
# waits until MOUNTPOINT is its mount.
fuse_mount() {
    local comm=$1 log=$2 mp=$3
    shift 3
    mkdir -p "$mp" || fail "mkdir $mp"
    record mount "$mp"
    start_daemon "$comm" "$log" "$@"
    wait_for mounted_or_dead "$mp" "$DAEMON_PID" "$comm"
    if ! mounted "$mp"; then
        show_log "$log"
        alive "$DAEMON_PID" "$comm" || fail "$comm exited before mounting $mp"
        say "$comm ($DAEMON_PID): $(grep '^State' "/proc/$DAEMON_PID/status" 2>/dev/null)" \
            "wchan $(cat "/proc/$DAEMON_PID/wchan" 2>/dev/null)"
        fail "$mp did not appear within $((MOUNT_WAIT / 10)) s"
    fi
}

mounted_or_dead() { mounted "$1" || ! alive "$2" "$3"; }

setup_plfwd() {
    local bin comm delay=$1
    check_kind
    bin=$(plfwd_bin) || exit $?
    mkdir -p "$ROOT/backing" || fail "mkdir $ROOT/backing"
    chmod 1777 "$ROOT/backing"
    comm=$(basename "$bin" | cut -c1-15) # as /proc/PID/comm shows it
    fuse_mount "$comm" "$ROOT/plfwd1.log" "$ROOT/m1" \
        "$bin" -f -o "delay_us=$delay" "$ROOT/backing" "$ROOT/m1"
    fuse_mount "$comm" "$ROOT/plfwd2.log" "$ROOT/m2" \
        "$bin" -f -o "delay_us=$delay" "$ROOT/backing" "$ROOT/m2"
    [ "$(fstype_of "$ROOT/m1")" = fuse.plfwd ] || fail "m1 is not fuse.plfwd"
    finish "$ROOT/m1" "$ROOT/m2"
}

free_port() {
    local i p
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
    done
    return 1
}

port_listening() { ss -Htln "src 127.0.0.1 and sport = :$1" 2>/dev/null | grep -q .; }

setup_sshfs() {
    local ssh="$ROOT/ssh" port="" try opts p
    check_kind
    case "$ROOT" in *[[:space:]]*) skip "WORKDIR contains spaces (sshd_config)" ;; esac
    mkdir -p "$ssh" "$ROOT/backing" /run/sshd || fail "mkdir"
    chmod 700 "$ssh"
    chmod 1777 "$ROOT/backing"
    ssh-keygen -q -t ed25519 -N '' -C plfs-host -f "$ssh/host_key" </dev/null >/dev/null ||
        fail "ssh-keygen (host key)"
    ssh-keygen -q -t ed25519 -N '' -C plfs-client -f "$ssh/client_key" </dev/null >/dev/null ||
        fail "ssh-keygen (client key)"
    cp "$ssh/client_key.pub" "$ssh/authorized_keys"
    for try in 1 2 3 4 5; do
        port=$(free_port) || fail "no free port"
        cat >"$ssh/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $ssh/host_key
PidFile $ssh/sshd.pid
AuthorizedKeysFile $ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
Subsystem sftp internal-sftp
EOF
        start_daemon sshd "$ssh/sshd.log" /usr/sbin/sshd -D -f "$ssh/sshd_config" -E "$ssh/sshd.log"
        if wait_for port_listening "$port"; then
            break
        fi
        stop_pids "$DAEMON_PID" sshd
        say "sshd did not listen on 127.0.0.1:$port (try $try)"
        show_log "$ssh/sshd.log"
        port=""
    done
    [ -n "$port" ] || fail "sshd did not start"
    echo "$port" >"$ROOT/port"
    opts="IdentityFile=$ssh/client_key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null"
    opts+=",BatchMode=yes,LogLevel=ERROR,ConnectTimeout=5"
    # No name/attribute caching, so the two clients see the same files.
    opts+=",dir_cache=no,entry_timeout=0,attr_timeout=0,negative_timeout=0,allow_other"
    fuse_mount sshfs "$ROOT/sshfs1.log" "$ROOT/m1" \
        sshfs -f -o "$opts" -p "$port" "root@127.0.0.1:$ROOT/backing" "$ROOT/m1"
    fuse_mount sshfs "$ROOT/sshfs2.log" "$ROOT/m2" \
        sshfs -f -o "$opts" -p "$port" "root@127.0.0.1:$ROOT/backing" "$ROOT/m2"
    # sshfs detaches its ssh (parent: init), so record those PIDs too.
    for p in $(pgrep -x -f "ssh .*-oIdentityFile=$ssh/client_key .*" 2>/dev/null); do
        record pid "$p" ssh
    done
    finish "$ROOT/m1" "$ROOT/m2"
}

# --- protocol-level servers: nfs-ganesha, samba ---------------------------
# No kernel NFS/CIFS client here: the servers run, clients speak the protocol
# (libnfs, impacket) from the host or from namespace plnA.

# The server namespace plnS and the client namespace plnA (10.213.90.0/24):
#   host pln-h0 10.213.90.1/30 <-> plnS pln-s0 10.213.90.2/30
#   plnA pln-a0 10.213.90.5/30 <-> plnS pln-s1 10.213.90.6/30
NS_S=plnS
NS_A=plnA
netns_setup() {
    local n
    for n in $NS_S $NS_A; do
        if ip netns list 2>/dev/null | grep -qw "$n"; then
            fail "netns $n exists (another nfs-ganesha-netns/samba-netns setup?)"
        fi
    done
    record netns $NS_S
    record netns $NS_A
    record link pln-h0
    { ip netns add $NS_S && ip netns add $NS_A; } || fail "ip netns add"
    ip link add pln-h0 type veth peer name pln-s0 netns $NS_S || fail "veth pln-h0"
    ip link add pln-a0 netns $NS_A type veth peer name pln-s1 netns $NS_S ||
        fail "veth pln-a0"
    { ip addr add 10.213.90.1/30 dev pln-h0 && ip link set pln-h0 up; } || fail "pln-h0"
    ip netns exec $NS_S sh -c 'ip link set lo up &&
        ip addr add 10.213.90.2/30 dev pln-s0 && ip link set pln-s0 up &&
        ip addr add 10.213.90.6/30 dev pln-s1 && ip link set pln-s1 up' ||
        fail "plnS addresses"
    ip netns exec $NS_A sh -c 'ip link set lo up &&
        ip addr add 10.213.90.5/30 dev pln-a0 && ip link set pln-a0 up' ||
        fail "plnA addresses"
}

port_listening_in() { # port_listening_in NETNS PORT
    ip netns exec "$1" ss -Htln "sport = :$2" 2>/dev/null | grep -q .
}

# server_start NETNS(0|1) COMM LOG PORT CMD...: starts a foreground server
# (in plnS if NETNS=1) and waits for PORT; 0 if it listens.
server_start() {
    local netns=$1 comm=$2 log=$3 port=$4
    shift 4
    if [ "$netns" = 1 ]; then
        start_daemon "$comm" "$log" ip netns exec $NS_S "$@"
        wait_for port_listening_in $NS_S "$port" && return 0
    else
        start_daemon "$comm" "$log" "$@"
        wait_for port_listening "$port" && return 0
    fi
    stop_pids "$DAEMON_PID" "$comm"
    say "$comm did not listen on port $port"
    show_log "$log"
    return 1
}

netns_info() { # netns_info KEY VALUE: the client-namespace lines
    info "$1" "$2"
    info netns_a $NS_A
    info cut_a "ip netns exec $NS_S ip link set pln-s1 down"
    info uncut_a "ip netns exec $NS_S ip link set pln-s1 up && ip -n $NS_A neigh flush dev pln-a0 && ip -n $NS_S neigh flush dev pln-s1"
}

setup_ganesha() {
    local netns=$1 port="" try bind=127.0.0.1 host=127.0.0.1 conf="$ROOT/ganesha.conf"
    check_kind
    mkdir -p "$ROOT/backing" "$ROOT/recov" || fail "mkdir"
    chmod 1777 "$ROOT/backing"
    if [ "$netns" = 1 ]; then
        netns_setup
        bind=0.0.0.0 # every address of plnS, nothing else
        host=10.213.90.2
    fi
    for try in 1 2 3 4 5; do
        port=$(free_port) || fail "no free port"
        {
            echo "NFS_CORE_PARAM { Protocols = 4; NFS_Port = $port; Bind_addr = $bind;"
            echo "    Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }"
            echo "NFSv4 { Graceless = true; Lease_Lifetime = 5; RecoveryBackend = fs;"
            echo "    RecoveryRoot = $ROOT/recov; }"
            echo "EXPORT { Export_Id = 1; Path = $ROOT/backing; Pseudo = /export;"
            echo "    Access_Type = RW; Squash = No_Root_Squash; Protocols = 4;"
            echo "    Transports = TCP; SecType = sys; FSAL { Name = VFS; } }"
        } >"$conf"
        server_start "$netns" ganesha.nfsd "$ROOT/ganesha.log" "$port" \
            ganesha.nfsd -F -f "$conf" -L "$ROOT/ganesha.log" -p "$ROOT/ganesha.pid" &&
            break
        say "try $try failed"
        port=""
    done
    [ -n "$port" ] || fail "ganesha did not start"
    record ready
    record dir "$ROOT/backing"
    echo "dir=$ROOT/backing"
    info url "nfs://$host/export?version=4&nfsport=$port"
    info lease 5
    [ "$netns" = 1 ] && netns_info url_a "nfs://10.213.90.6/export?version=4&nfsport=$port"
    return 0
}

setup_samba() {
    local netns=$1 port="" try host=127.0.0.1 iface=127.0.0.1 d
    check_kind
    mkdir -p "$ROOT/backing" || fail "mkdir"
    for d in run lock state cache private ncalrpc log; do
        mkdir -p "$ROOT/samba/$d" || fail "mkdir"
    done
    chmod 1777 "$ROOT/backing"
    if [ "$netns" = 1 ]; then
        netns_setup
        host=10.213.90.2
        iface="10.213.90.2 10.213.90.6"
    fi
    for try in 1 2 3 4 5; do
        port=$(free_port) || fail "no free port"
        {
            echo "[global]"
            echo "interfaces = $iface"
            echo "bind interfaces only = yes"
            echo "smb ports = $port"
            echo "disable netbios = yes"
            echo "server role = standalone server"
            echo "map to guest = Bad User"
            for d in pid:run lock:lock state:state cache:cache; do
                echo "${d%%:*} directory = $ROOT/samba/${d#*:}"
            done
            echo "ncalrpc dir = $ROOT/samba/ncalrpc"
            echo "private dir = $ROOT/samba/private"
            echo "log file = $ROOT/samba/log/log.%m"
            echo "log level = 1"
            echo "server min protocol = SMB2_02"
            echo "load printers = no"
            echo "printcap name = /dev/null"
            echo "disable spoolss = yes"
            echo "[lock]"
            echo "path = $ROOT/backing"
            echo "read only = no"
            echo "force user = root"
            echo "posix locking = yes"
            echo "oplocks = no"
            echo "level2 oplocks = no"
        } >"$ROOT/smb.conf"
        # smbd stays the leader of its own process group (no
        # --no-process-group): on SIGTERM it signals its whole group.
        server_start "$netns" smbd "$ROOT/smbd.log" "$port" \
            /usr/sbin/smbd --foreground --debug-stdout \
            -s "$ROOT/smb.conf" && break
        say "try $try failed"
        port=""
    done
    [ -n "$port" ] || fail "smbd did not start"
    # A password user (impacket signs guest sessions wrongly): root, as the
    # share forces anyway; a test-only password on a loopback/namespace server.
    printf 'portalock\nportalock\n' | smbpasswd -c "$ROOT/smb.conf" -s -a root >/dev/null ||
        fail "smbpasswd -a root"
    record ready
    record dir "$ROOT/backing"
    echo "dir=$ROOT/backing"
    info smb "$host:$port"
    info share lock
    info user root
    info password portalock
    [ "$netns" = 1 ] && netns_info smb_a "10.213.90.6:$port"
    return 0
}

# plfwd-2host: a second "host" = network namespace plnB with its own sshd on
# a veth (host pln-h1 10.213.90.9/30 <-> plnB pln-b0 10.213.90.10/30); both
# sides mount plfwd over one backing directory (dir = host A's mount, dir2 =
# host B's), and host B's contender runs through ssh (ssh_b=).  sshd drops a
# silent client after 3 s (ClientAliveInterval 1, ClientAliveCountMax 3), so
# cutting B's link (cut_b=) ends B's session and its locks.
setup_plfwd_2host() {
    local bin comm ssh="$ROOT/ssh" port="" try
    check_kind
    need_root "ip netns"
    need_cmd ip iproute2
    [ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd not found (openssh-server)"
    need_cmd ssh openssh-client
    need_cmd ssh-keygen openssh-client
    bin=$(plfwd_bin) || exit $?
    if ip netns list 2>/dev/null | grep -qw plnB; then
        fail "netns plnB exists (another plfwd-2host setup?)"
    fi
    mkdir -p "$ROOT/backing" "$ssh/home" /run/sshd || fail "mkdir"
    chmod 1777 "$ROOT/backing"
    chmod 700 "$ssh"
    record netns plnB
    record link pln-h1
    ip netns add plnB || fail "ip netns add plnB"
    ip link add pln-h1 type veth peer name pln-b0 netns plnB || fail "veth pln-h1"
    { ip addr add 10.213.90.9/30 dev pln-h1 && ip link set pln-h1 up; } || fail "pln-h1"
    ip netns exec plnB sh -c 'ip link set lo up &&
        ip addr add 10.213.90.10/30 dev pln-b0 && ip link set pln-b0 up' ||
        fail "plnB addresses"
    ssh-keygen -q -t ed25519 -N '' -C plfs-host -f "$ssh/host_key" </dev/null >/dev/null ||
        fail "ssh-keygen (host key)"
    ssh-keygen -q -t ed25519 -N '' -C plfs-client -f "$ssh/client_key" </dev/null >/dev/null ||
        fail "ssh-keygen (client key)"
    cp "$ssh/client_key.pub" "$ssh/authorized_keys"
    # Mount first: "ip netns exec" gives sshd a copy of the mount table, and
    # mounts made after it may not propagate into that copy.
    comm=$(basename "$bin" | cut -c1-15)
    fuse_mount "$comm" "$ROOT/plfwd1.log" "$ROOT/m1" "$bin" -f "$ROOT/backing" "$ROOT/m1"
    fuse_mount "$comm" "$ROOT/plfwd2.log" "$ROOT/m2" "$bin" -f "$ROOT/backing" "$ROOT/m2"
    for try in 1 2 3 4 5; do
        port=$(free_port) || fail "no free port"
        {
            echo "Port $port"
            echo "ListenAddress 10.213.90.10"
            echo "HostKey $ssh/host_key"
            echo "PidFile $ssh/sshd.pid"
            echo "AuthorizedKeysFile $ssh/authorized_keys"
            echo "PermitRootLogin prohibit-password"
            echo "PasswordAuthentication no"
            echo "KbdInteractiveAuthentication no"
            echo "UsePAM no"
            echo "StrictModes no"
            echo "PrintMotd no"
            echo "ClientAliveInterval 1"
            echo "ClientAliveCountMax 3"
            echo "MaxStartups 100"
            echo "MaxSessions 100"
            # sshd runs commands through the user's shell, and bash sources
            # ~/.bashrc under sshd: an empty HOME keeps a heavy one (pyenv...)
            # out of every contender start.
            echo "SetEnv HOME=$ssh/home"
        } >"$ssh/sshd_config"
        start_daemon sshd "$ssh/sshd.log" ip netns exec plnB \
            /usr/sbin/sshd -D -f "$ssh/sshd_config" -E "$ssh/sshd.log"
        wait_for port_listening_in plnB "$port" && break
        stop_pids "$DAEMON_PID" sshd
        say "sshd did not listen on 10.213.90.10:$port (try $try)"
        port=""
    done
    [ -n "$port" ] || fail "sshd did not start"
    finish "$ROOT/m1" "$ROOT/m2"
    info ssh_b "$(command -v ssh) -T -i $ssh/client_key -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o ServerAliveInterval=1 root@10.213.90.10"
    info cut_b "ip link set pln-h1 down"
    info uncut_b "ip link set pln-h1 up && ip neigh flush dev pln-h1 && ip -n plnB neigh flush dev pln-b0"
}

# --- main ----------------------------------------------------------------

[ $# -ge 1 ] || usage
CMD=$1
KIND=${2:-}
case "$CMD" in
list)
    for k in $KINDS; do echo "$k"; done
    exit 0
    ;;
check)
    [ -n "$KIND" ] || usage
    check_kind
    echo "$KIND: can run here"
    exit 0
    ;;
setup | teardown)
    [ $# -eq 3 ] || usage
    ;;
*) usage ;;
esac

case " $KINDS " in *" $KIND "*) ;; *)
    echo "fs.sh: unknown KIND '$KIND' (ci/fs.sh list)" >&2
    exit 2
    ;;
esac
mkdir -p "$3" || { echo "fs.sh: cannot create WORKDIR $3" >&2; exit 1; }
WORKDIR=$(cd "$3" && pwd -P) || exit 1
ROOT="$WORKDIR/fs-$KIND"

if [ "$CMD" = teardown ]; then
    [ -d "$ROOT" ] || exit 0
    exec 9>>"$ROOT/.lock"
    # Bounded: a teardown proceeds (it is idempotent) if a setup is stuck.
    flock -w 20 9 || say "$ROOT/.lock still held after 20 s; proceeding"
    teardown_kind || { say "teardown incomplete (see above)"; exit 1; }
    exit 0
fi

check_kind
mkdir -p "$ROOT" || { say "cannot create $ROOT"; exit 1; }
exec 9>>"$ROOT/.lock"
flock -w 60 9 || { say "timed out waiting for $ROOT/.lock"; exit 1; }
if still_ready; then
    exit 0 # already set up (idempotent)
fi
teardown_kind || { say "leftovers of an earlier setup could not be removed"; exit 1; }
: >"$ROOT/state"
case "$KIND" in
ext4) setup_ext4 ;;
tmpfs) setup_tmpfs ;;
xfs) setup_xfs ;;
btrfs) setup_btrfs ;;
overlay) setup_overlay ;;
sshfs) setup_sshfs ;;
plfwd) setup_plfwd 0 ;;
plfwd-100us) setup_plfwd 100 ;;
plfwd-1ms) setup_plfwd 1000 ;;
nfs-ganesha) setup_ganesha 0 ;;
nfs-ganesha-netns) setup_ganesha 1 ;;
samba) setup_samba 0 ;;
samba-netns) setup_samba 1 ;;
plfwd-2host) setup_plfwd_2host ;;
esac
