/*
 * test_mountopts.c -- the mount-option verdicts (lib/src/mountopts.c) over
 * recorded /proc/self/mountinfo lines: NFS v3/v4 with nolock, local_lock=,
 * soft/hard, lookupcache; CIFS with nobrl, cache=, nolease, unix; FUSE
 * filesystems known to forward locks or not; and finding the mount that
 * holds a path.  The lines are from real Linux 6.x mounts, trimmed only in
 * the id and address fields.
 */
#include "helpers.h"
#include "mountopts.h"

#include <string.h>

#define FL   (1u << PL_BACKEND_FLOCK)
#define LF   (1u << PL_BACKEND_LOCKF)
#define OFD  (1u << PL_BACKEND_OFD)
#define ALLB (FL | LF | OFD)

/* A mountinfo text: the root, /srv on ext4, and the line under test at
 * /mnt/x, plus a look-alike /mnt/xy that must never match /mnt/x/... */
static const char *with_line(const char *line) {
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 "
             "rw,errors=remount-ro\n"
             "30 22 254:2 / /srv rw,relatime shared:2 - ext4 /dev/vda2 rw\n"
             "%s\n"
             "99 22 0:60 / /mnt/xy rw,relatime shared:9 - nfs4 other:/e "
             "rw,vers=4.2,hard,local_lock=all,addr=10.0.0.9\n",
             line);
    return buf;
}

/* Finds /mnt/x/lock.d in the text around line and returns its verdict. */
static pl__mount_verdict_t verdict_of(const char *line, pl__mount_t *m) {
    pl__mount_verdict_t v;
    cr_assert(
        eq(int, pl__mountinfo_find(with_line(line), "/mnt/x/lock.d", m), 0),
        "no mount found for: %s", line);
    pl__mount_verdict(m->fstype, m->options, &v);
    cr_log_info("%s -> remote %#x local %#x | %s | %s", m->fstype, v.remote,
                v.local, v.verdict, v.advice);
    cr_expect(eq(uint, v.remote & v.local, 0u), "a backend both ways");
    cr_expect(eq(ptr, strchr(v.verdict, '\n'), NULL));
    cr_expect(eq(ptr, strchr(v.advice, '\n'), NULL));
    return v;
}

TestSuite(mountopts, .timeout = 30.);

/* ---- finding the mount ----------------------------------------------------
 */

Test(mountopts, longest_prefix_and_newest_mount_win) {
    static const char text[] =
        "22 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
        "40 22 0:50 / /mnt rw - tmpfs none rw,size=64k\n"
        "41 40 0:51 / /mnt/a rw shared:3 master:2 - xfs /dev/loop0 rw\n"
        "42 40 0:52 / /mnt/a rw - btrfs /dev/loop1 rw,space_cache=v2\n"
        "43 40 0:53 / /mnt/ab rw - nfs4 s:/e rw,vers=4.1\n";
    pl__mount_t m;

    cr_assert(eq(int, pl__mountinfo_find(text, "/mnt/a/f", &m), 0));
    cr_expect(eq(str, m.fstype, "btrfs"), "the later of two stacked mounts");
    cr_expect(eq(str, m.source, "/dev/loop1"));
    cr_expect(eq(str, m.options, "rw,rw,space_cache=v2"));
    cr_assert(eq(int, pl__mountinfo_find(text, "/mnt/a", &m), 0));
    cr_expect(eq(str, m.fstype, "btrfs"));
    cr_assert(eq(int, pl__mountinfo_find(text, "/mnt/abc", &m), 0));
    cr_expect(eq(str, m.fstype, "tmpfs"),
              "/mnt/ab is not a prefix of /mnt/abc");
    cr_assert(eq(int, pl__mountinfo_find(text, "/etc/x", &m), 0));
    cr_expect(eq(str, m.fstype, "ext4"));
}

Test(mountopts, escaped_mount_point_and_optional_fields) {
    static const char text[] =
        "22 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
        "50 22 0:60 /sub /mnt/my\\040share rw,nosuid shared:5 master:1 "
        "propagate_from:2 - cifs //srv/my\\040share rw,vers=3.1.1,nobrl\n";
    pl__mount_t m;

    cr_assert(eq(int, pl__mountinfo_find(text, "/mnt/my share/d", &m), 0));
    cr_expect(eq(str, m.fstype, "cifs"));
    cr_expect(eq(str, m.source, "//srv/my share"));
    cr_expect(eq(str, m.options, "rw,nosuid,rw,vers=3.1.1,nobrl"));
    cr_assert(eq(int, pl__mountinfo_find(text, "/mnt/my\\040share/d", &m), 0));
    cr_expect(eq(str, m.fstype, "ext4"), "the escape is not the name");
}

Test(mountopts, malformed_lines_are_skipped) {
    static const char text[] = "garbage\n"
                               "1 2 3\n"
                               "60 22 0:1 / /mnt/x rw no-separator ext4\n"
                               "\n"
                               "61 22 0:1 / relative rw - ext4 /dev/x rw";
    pl__mount_t m;

    cr_expect(eq(int, pl__mountinfo_find(text, "/mnt/x/a", &m), -1));
    cr_expect(eq(int, pl__mountinfo_find("", "/", &m), -1));
    cr_expect(eq(int, pl__mountinfo_find(NULL, "/", &m), -1));
}

/* ---- NFS ------------------------------------------------------------------
 */

Test(mountopts, nfs4_default_sends_everything) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "412 29 0:52 / /mnt/x rw,relatime shared:220 - nfs4 srv:/export "
        "rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,"
        "timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,local_lock=none,"
        "addr=10.0.0.1",
        &m);
    cr_expect(eq(str, m.fstype, "nfs4"));
    cr_expect(eq(str, m.source, "srv:/export"));
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(eq(uint, v.local, 0u));
    cr_expect(strstr(v.verdict, "vers=4.2") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "hard") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "NFSv4 LOCK") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "whole-file fcntl lock") != NULL, "%s",
              v.verdict);
    cr_expect(strstr(v.advice, "lookupcache=positive") != NULL, "%s", v.advice);
}

Test(mountopts, nfs3_nolock_keeps_everything_local) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "413 29 0:53 / /mnt/x rw,relatime shared:221 - nfs srv:/export "
        "rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,nolock,"
        "proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.1,"
        "mountvers=3,mountport=20048,mountproto=udp,local_lock=all,"
        "addr=10.0.0.1",
        &m);
    cr_expect(eq(uint, v.remote, 0u));
    cr_expect(eq(uint, v.local, ALLB));
    cr_expect(strstr(v.verdict, "nolock") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "without nolock") != NULL, "%s", v.advice);
}

Test(mountopts, nfs3_lock_goes_through_nlm) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "414 29 0:54 / /mnt/x rw - nfs srv:/e rw,vers=3,hard,proto=tcp,"
        "local_lock=none,addr=10.0.0.1",
        &m);
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(strstr(v.verdict, "NLM") != NULL, "%s", v.verdict);
}

Test(mountopts, nfs_local_lock_flock_splits_the_backends) {
    pl__mount_t m;
    pl__mount_verdict_t v =
        verdict_of("415 29 0:55 / /mnt/x rw - nfs4 srv:/e rw,vers=4.1,hard,"
                   "local_lock=flock,addr=10.0.0.1",
                   &m);
    cr_expect(eq(uint, v.local, FL));
    cr_expect(eq(uint, v.remote, LF | OFD));
    cr_expect(strstr(v.verdict, "lockf and OFD reach the server") != NULL, "%s",
              v.verdict);
    cr_expect(strstr(v.verdict, "flock stays on this client") != NULL, "%s",
              v.verdict);
    cr_expect(strstr(v.advice, "use lockf and OFD") != NULL, "%s", v.advice);
}

Test(mountopts, nfs_local_lock_posix_and_all) {
    pl__mount_t m;
    pl__mount_verdict_t v =
        verdict_of("416 29 0:56 / /mnt/x rw - nfs4 srv:/e rw,vers=4.0,hard,"
                   "local_lock=posix,addr=10.0.0.1",
                   &m);
    cr_expect(eq(uint, v.local, LF | OFD));
    cr_expect(eq(uint, v.remote, FL));
    v = verdict_of("417 29 0:57 / /mnt/x rw - nfs4 srv:/e rw,vers=4.2,hard,"
                   "local_lock=all,addr=10.0.0.1",
                   &m);
    cr_expect(eq(uint, v.local, ALLB));
    cr_expect(eq(uint, v.remote, 0u));
    cr_expect(strstr(v.advice, "local_lock=all") != NULL, "%s", v.advice);
}

Test(mountopts, nfs_soft_is_flagged) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "418 29 0:58 / /mnt/x rw - nfs4 srv:/e rw,vers=4.2,soft,proto=tcp,"
        "timeo=600,retrans=2,local_lock=none,addr=10.0.0.1",
        &m);
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(strstr(v.verdict, "soft") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "mount with hard") != NULL, "%s", v.advice);
}

Test(mountopts, nfs_lookupcache_positive_needs_no_advice) {
    pl__mount_t m;
    pl__mount_verdict_t v =
        verdict_of("419 29 0:59 / /mnt/x rw - nfs4 srv:/e rw,vers=4.2,hard,"
                   "lookupcache=pos,local_lock=none,addr=10.0.0.1",
                   &m);
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(eq(str, v.advice, ""));
}

/* ---- CIFS / SMB3 ------------------------------------------------------------
 */

Test(mountopts, cifs_default_sends_byte_range_locks) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "420 29 0:60 / /mnt/x rw,relatime shared:230 - cifs //srv/share "
        "rw,vers=3.1.1,cache=strict,username=u,uid=0,noforceuid,gid=0,"
        "noforcegid,addr=10.0.0.1,file_mode=0755,dir_mode=0755,soft,nounix,"
        "serverino,mapposix,rsize=4194304,wsize=4194304,bsize=1048576,"
        "echo_interval=60,actimeo=1,closetimeo=1",
        &m);
    cr_expect(eq(str, m.fstype, "cifs"));
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(eq(uint, v.local, 0u));
    cr_expect(strstr(v.verdict, "vers=3.1.1") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "Windows semantics") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "separate lock file") != NULL, "%s", v.advice);
}

Test(mountopts, cifs_nobrl_keeps_locks_local) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "421 29 0:61 / /mnt/x rw - cifs //srv/share rw,vers=3.0,cache=strict,"
        "nobrl,soft,nounix,serverino",
        &m);
    cr_expect(eq(uint, v.remote, 0u));
    cr_expect(eq(uint, v.local, ALLB));
    cr_expect(strstr(v.verdict, "nobrl") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "without nobrl") != NULL, "%s", v.advice);
}

Test(mountopts, cifs_cache_lease_and_unix) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "422 29 0:62 / /mnt/x rw - smb3 //srv/share rw,vers=3.1.1,cache=loose,"
        "nolease,unix,posixpaths,serverino",
        &m);
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(strstr(v.verdict, "cache=loose") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "nolease") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.verdict, "POSIX semantics") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "cache=strict") != NULL, "%s", v.advice);
    v = verdict_of("423 29 0:63 / /mnt/x rw - cifs //srv/s rw,vers=3.1.1,"
                   "cache=none,locallease,posix,serverino",
                   &m);
    cr_expect(strstr(v.verdict, "locallease") != NULL, "%s", v.verdict);
    cr_expect(eq(str, v.advice, ""), "%s", v.advice);
}

/* ---- FUSE
 * -------------------------------------------------------------------- */

Test(mountopts, fuse_known_lists_and_unknown) {
    pl__mount_t m;
    pl__mount_verdict_t v = verdict_of(
        "430 29 0:70 / /mnt/x rw,nosuid,nodev,relatime shared:240 - fuse.sshfs "
        "root@127.0.0.1:/srv rw,user_id=0,group_id=0,allow_other",
        &m);
    cr_expect(eq(uint, v.local, ALLB));
    cr_expect(eq(uint, v.remote, 0u));
    cr_expect(ne(str, v.advice, ""));
    v = verdict_of("431 29 0:71 / /mnt/x rw,nosuid,nodev - fuse.plfwd plfwd "
                   "rw,user_id=0,group_id=0,default_permissions,allow_other",
                   &m);
    cr_expect(eq(uint, v.remote, ALLB));
    cr_expect(eq(str, v.advice, ""));
    v = verdict_of("432 29 0:72 / /mnt/x rw,nosuid,nodev - fuse.mystery src "
                   "rw,user_id=0,group_id=0",
                   &m);
    cr_expect(eq(uint, v.remote | v.local, 0u));
    cr_expect(strstr(v.verdict, "unknown") != NULL, "%s", v.verdict);
    cr_expect(strstr(v.advice, "cross_mount") != NULL, "%s", v.advice);
}

Test(mountopts, local_filesystems_have_nothing_to_say) {
    pl__mount_verdict_t v;
    pl__mount_verdict("ext4", "rw,relatime", &v);
    cr_expect(eq(uint, v.remote | v.local, 0u));
    cr_expect(eq(str, v.verdict, ""));
    pl__mount_verdict(NULL, NULL, &v);
    cr_expect(eq(str, v.verdict, ""));
    pl__mount_verdict("nfs4", NULL, &v); /* no options: the defaults */
    cr_expect(eq(uint, v.remote, ALLB));
}
