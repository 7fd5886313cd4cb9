/*
 * mountopts.c -- the mount options that decide whether a lock on a network
 * filesystem reaches the server, read from /proc/self/mountinfo text.
 *
 * Nothing here touches the system: posix/mounts_os.c reads the file and
 * probe.c folds the verdict into pl_probe_t, so the unit tests feed recorded
 * mountinfo lines straight to these functions.
 *
 * What the Linux clients do (nfs(5), mount.cifs(8), fs/nfs, fs/smb/client):
 *
 *   NFS    fcntl locks (lockf, OFD) go to the server, through NLM (lockd +
 *          statd) for vers=2/3 and in the protocol (LOCK/LOCKU under a
 *          lease) for vers=4.x.  flock is emulated as a whole-file fcntl lock
 *          on the server, so there flock and lockf/OFD conflict with each
 *          other.  local_lock=flock|posix|all keeps that kind on the client;
 *          nolock means local_lock=all (the kernel also shows local_lock=).
 *          soft lets a lock or unlock request fail with EIO after retrans
 *          timeouts; lookupcache=all (the default, not shown) can serve a
 *          lock file another client deleted from the dentry cache.
 *   CIFS   fcntl locks become SMB byte-range locks on the server (Windows
 *          semantics, mandatory for other SMB clients, unless the unix or
 *          SMB3.1.1 POSIX extensions are on); flock is sent as a whole-file
 *          lock by Linux 5.5+.  nobrl keeps all of them on the client.
 *          cache=loose / singleclient may serve stale data under a lock.
 *   FUSE   the kernel forwards locks only if the filesystem implements the
 *          FUSE lock operations; those known not to keep them per mount.
 */
#include "mountopts.h"
#include "internal.h"

#include "portalock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIT(b) (1u << (b))
#define ALL_POSIX                                                              \
 (BIT(PL_BACKEND_FLOCK) | BIT(PL_BACKEND_LOCKF) | BIT(PL_BACKEND_OFD))
#define FCNTL_BITS (BIT(PL_BACKEND_LOCKF) | BIT(PL_BACKEND_OFD))

/* ---- mountinfo ------------------------------------------------------------
 */

/* Copies the space-delimited field at s into buf, undoing mountinfo's
 * octal escapes (\040 for a space); returns the end of the field. */
static const char *field(const char *s, const char *end, char *buf,
                         size_t len) {
    size_t n = 0;
    while (s < end && *s != ' ') {
        char c = *s;
        if (s[0] == '\\' && end - s >= 4 && s[1] >= '0' && s[1] <= '3' &&
            s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        }
        if (n + 1 < len)
            buf[n++] = c;
        s++;
    }
    if (len > 0)
        buf[n] = '\0';
    return s;
}

static const char *skip_space(const char *s, const char *end) {
    while (s < end && *s == ' ')
        s++;
    return s;
}

/* Length of mount point mp if it covers path (equal, or a prefix ending at
 * '/'), else 0. */
static size_t covers(const char *mp, const char *path) {
    size_t n = strlen(mp);
    if (strcmp(mp, "/") == 0)
        return 1;
    if (n == 0 || strncmp(mp, path, n) != 0 ||
        (path[n] != '\0' && path[n] != '/'))
        return 0;
    return n;
}

/* One line "id parent maj:min root mountpoint opts [tags...] - fstype
 * source superopts"; 1 and *m filled if well formed. */
static int parse_line(const char *s, const char *end, char *mp, size_t mplen,
                      pl__mount_t *m) {
    char opts[256], super[256], tmp[8];
    const char *sep;
    int i;

    for (i = 0; i < 4; i++) { /* id, parent, maj:min, root */
        s = skip_space(s, end);
        if (s >= end)
            return 0;
        s = field(s, end, tmp, sizeof(tmp));
    }
    s = field(skip_space(s, end), end, mp, mplen);
    s = field(skip_space(s, end), end, opts, sizeof(opts));
    for (sep = s; sep + 2 < end; sep++) /* optional fields end at " - " */
        if (sep[0] == ' ' && sep[1] == '-' && sep[2] == ' ')
            break;
    if (sep + 2 >= end)
        return 0;
    s = skip_space(sep + 2, end);
    s = field(s, end, m->fstype, sizeof(m->fstype));
    s = field(skip_space(s, end), end, m->source, sizeof(m->source));
    field(skip_space(s, end), end, super, sizeof(super));
    if (mp[0] != '/' || m->fstype[0] == '\0')
        return 0;
    snprintf(m->options, sizeof(m->options), "%s%s%s", opts,
             super[0] != '\0' ? "," : "", super);
    return 1;
}

int pl__mountinfo_find(const char *text, const char *path, pl__mount_t *out) {
    char mp[4096];
    pl__mount_t m;
    size_t best = 0, n;

    if (text == NULL || path == NULL || out == NULL)
        return -1;
    while (*text != '\0') {
        const char *end = strchr(text, '\n');
        if (end == NULL)
            end = text + strlen(text);
        if (parse_line(text, end, mp, sizeof(mp), &m) &&
            (n = covers(mp, path)) > 0 && n >= best) {
            best = n;
            *out = m;
        }
        text = *end == '\n' ? end + 1 : end;
    }
    return best > 0 ? 0 : -1;
}

/* snprintf into a verdict line; a long line is cut, which is fine. */
static void line(char *buf, size_t len, const char *fmt, ...)
    PL__PRINTF(3, 4); /* __attribute__ only behind the macro (MSVC) */
static void line(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* ---- options --------------------------------------------------------------
 */

/* The value of key=... (the last one: superblock options come last), or
 * NULL; the bare flag `key` gives "". */
static const char *opt(const char *options, const char *key, char *buf,
                       size_t len) {
    const char *s = options, *found = NULL;
    size_t kl = strlen(key);

    buf[0] = '\0';
    while (*s != '\0') {
        const char *e = strchr(s, ',');
        size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
        if (n >= kl && strncmp(s, key, kl) == 0 && (n == kl || s[kl] == '=')) {
            size_t vl = n == kl ? 0 : n - kl - 1;
            if (vl >= len)
                vl = len - 1;
            memcpy(buf, n == kl ? s + kl : s + kl + 1, vl);
            buf[vl] = '\0';
            found = buf;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return found;
}

static int has(const char *options, const char *flag) {
    char buf[8];
    return opt(options, flag, buf, sizeof(buf)) != NULL && buf[0] == '\0';
}

/* "flock", "lockf and OFD"... for the set bits, "no backend" if none. */
static void names(unsigned bits, char *buf, size_t len) {
    static const pl_backend_t order[] = {PL_BACKEND_FLOCK, PL_BACKEND_LOCKF,
                                         PL_BACKEND_OFD};
    static const char *const shown[] = {"flock", "lockf", "OFD"};
    size_t n = 0, count = 0, done = 0;

    for (size_t i = 0; i < 3; i++)
        count += (bits >> order[i]) & 1u;
    snprintf(buf, len, "no backend");
    for (size_t i = 0; i < 3 && n < len; i++) {
        if (!((bits >> order[i]) & 1u))
            continue;
        done++;
        n += (size_t)snprintf(buf + n, len - n, "%s%s",
                              done == 1       ? ""
                              : done == count ? " and "
                                              : ", ",
                              shown[i]);
    }
}

static void nfs_verdict(const char *fstype, const char *o,
                        pl__mount_verdict_t *v) {
    char vers[16], ll[16], lc[16], remote[64], local[64];
    int major, local_flock = 0, local_fcntl = 0, nolock, soft;

    if (opt(o, "vers", vers, sizeof(vers)) == NULL &&
        opt(o, "nfsvers", vers, sizeof(vers)) == NULL)
        snprintf(vers, sizeof(vers), "%s",
                 strcmp(fstype, "nfs4") == 0 ? "4" : "?");
    major = vers[0] >= '2' && vers[0] <= '9' ? vers[0] - '0' : 0;
    nolock = has(o, "nolock");
    if (opt(o, "local_lock", ll, sizeof(ll)) != NULL) {
        local_flock = strcmp(ll, "flock") == 0 || strcmp(ll, "all") == 0;
        local_fcntl = strcmp(ll, "posix") == 0 || strcmp(ll, "all") == 0;
    } else {
        ll[0] = '\0';
    }
    if (nolock)
        local_flock = local_fcntl = 1;
    soft = has(o, "soft") || has(o, "softerr");
    if (opt(o, "lookupcache", lc, sizeof(lc)) == NULL)
        snprintf(lc, sizeof(lc), "all");
    v->local = (local_flock ? BIT(PL_BACKEND_FLOCK) : 0u) |
               (local_fcntl ? FCNTL_BITS : 0u);
    v->remote = ALL_POSIX & ~v->local;
    names(v->remote, remote, sizeof(remote));
    names(v->local, local, sizeof(local));
    line(v->verdict, sizeof(v->verdict),
         "NFS vers=%s%s%s%s, %s: %s %s the server (%s)%s%s%s%s", vers,
         nolock ? ", nolock" : "", ll[0] ? ", local_lock=" : "", ll,
         soft ? "soft" : "hard", v->remote != 0 ? remote : "no lock",
         v->remote == ALL_POSIX || v->remote == FCNTL_BITS ? "reach"
                                                           : "reaches",
         major >= 4  ? "NFSv4 LOCK under a lease"
         : major > 0 ? "NLM: lockd/statd"
                     : "NLM or NFSv4 LOCK",
         v->local != 0 ? "; " : "", v->local != 0 ? local : "",
         v->local == BIT(PL_BACKEND_FLOCK) ? " stays on this client"
         : v->local != 0                   ? " stay on this client"
                                           : "",
         (v->remote & BIT(PL_BACKEND_FLOCK)) && (v->remote & FCNTL_BITS)
             ? "; flock is a whole-file fcntl lock there"
             : "");
    if (v->local == ALL_POSIX)
        line(v->advice, sizeof(v->advice),
             "remount without %s so locks exclude other clients",
             nolock ? "nolock" : "local_lock=all");
    else if (v->local != 0)
        line(v->advice, sizeof(v->advice),
             "use %s (local_lock=%s keeps %s per client) or remount with "
             "local_lock=none",
             remote, ll, local);
    else if (soft)
        line(v->advice, sizeof(v->advice),
             "mount with hard: on a soft mount a lock or unlock can fail "
             "with EIO and a lock can be lost during an outage");
    else if (strcmp(lc, "all") == 0)
        line(v->advice, sizeof(v->advice),
             "locks are fine; for pidfile/temporary locks that other "
             "clients delete, mount with lookupcache=positive");
}

static void cifs_verdict(const char *o, pl__mount_verdict_t *v) {
    char vers[16], cache[16];
    int nobrl = has(o, "nobrl");
    int unix_ext = has(o, "unix") || has(o, "posix");
    int lease = !has(o, "nolease");

    if (opt(o, "vers", vers, sizeof(vers)) == NULL)
        snprintf(vers, sizeof(vers), "default");
    if (opt(o, "cache", cache, sizeof(cache)) == NULL)
        snprintf(cache, sizeof(cache), "strict");
    v->local = nobrl ? ALL_POSIX : 0u;
    v->remote = ALL_POSIX & ~v->local;
    if (nobrl)
        line(v->verdict, sizeof(v->verdict),
             "SMB vers=%s, nobrl: flock, lockf and OFD stay on this "
             "client (no SMB2 LOCK is sent)",
             vers);
    else
        line(v->verdict, sizeof(v->verdict),
             "SMB vers=%s, cache=%s%s%s: lockf and OFD reach the server "
             "as SMB byte-range locks (%s), flock as a whole-file one "
             "(Linux 5.5+)",
             vers, cache, lease ? "" : ", nolease",
             has(o, "locallease") ? ", locallease" : "",
             unix_ext ? "POSIX semantics: unix extensions"
                      : "Windows semantics: mandatory, no merging");
    if (nobrl)
        line(v->advice, sizeof(v->advice),
             "remount without nobrl so locks exclude other clients");
    else if (strcmp(cache, "loose") == 0 || strcmp(cache, "singleclient") == 0)
        line(v->advice, sizeof(v->advice),
             "cache=%s can serve stale data under a lock: use cache=strict "
             "or cache=none",
             cache);
    else if (!unix_ext)
        line(v->advice, sizeof(v->advice),
             "a held range is mandatory for other SMB clients: lock a "
             "separate lock file, not the data file");
}

/* FUSE filesystems that implement the lock operations (the kernel forwards
 * flock and fcntl locks to the daemon, which takes them on shared
 * storage), and those that do not (locks are kept per mount). */
static const char *const fuse_forwarding[] = {"fuse.plfwd", "fuse.glusterfs",
                                              "fuse.ceph-fuse", "fuse.juicefs"};
static const char *const fuse_local[] = {
    "fuse.sshfs",   "fuse.smbnetfs", "fuse.s3fs",      "fuse.rclone",
    "fuse.gcsfuse", "fuse.davfs",    "fuse.curlftpfs", "fuse.goofys"};

static int listed(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

static void fuse_verdict(const char *fstype, pl__mount_verdict_t *v) {
    if (listed(fstype, fuse_forwarding,
               sizeof(fuse_forwarding) / sizeof(fuse_forwarding[0]))) {
        v->remote = ALL_POSIX;
        line(v->verdict, sizeof(v->verdict),
             "%s forwards flock and fcntl locks to its daemon (known)", fstype);
    } else if (listed(fstype, fuse_local,
                      sizeof(fuse_local) / sizeof(fuse_local[0]))) {
        v->local = ALL_POSIX;
        line(v->verdict, sizeof(v->verdict),
             "%s implements no FUSE lock operations (known): locks stay "
             "in this mount",
             fstype);
        line(v->advice, sizeof(v->advice),
             "do not rely on these locks across mounts or hosts; use the "
             "Redis lock or lock on the server");
    } else {
        line(v->verdict, sizeof(v->verdict),
             "%s: whether it forwards locks is unknown", fstype);
        line(v->advice, sizeof(v->advice),
             "check with two mounts (conformance cross_mount, "
             "PL_CONFORMANCE_DIR2) before relying on it");
    }
}

void pl__mount_verdict(const char *fstype, const char *options,
                       pl__mount_verdict_t *v) {
    memset(v, 0, sizeof(*v));
    if (fstype == NULL)
        return;
    if (options == NULL)
        options = "";
    if (strcmp(fstype, "nfs") == 0 || strcmp(fstype, "nfs4") == 0)
        nfs_verdict(fstype, options, v);
    else if (strcmp(fstype, "cifs") == 0 || strcmp(fstype, "smb3") == 0 ||
             strcmp(fstype, "smb2") == 0)
        cifs_verdict(options, v);
    else if (strncmp(fstype, "fuse.", 5) == 0)
        fuse_verdict(fstype, v);
}
