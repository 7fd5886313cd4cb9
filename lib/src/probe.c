/*
 * probe.c -- pl_probe(): what locking guarantees a directory's filesystem
 * gives, from its type (posix/probe_os.c finds it) and from actually locking
 * a temporary file there; and pl_probe_to_json().
 */
#include "internal.h"
#include "mountopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Network filesystems whose locks the client kernel keeps to itself or
 * forwards to a server; prefix matches end at '\0' or '.'. */
static const char *const network_fs[] = {"nfs",
                                         "nfs4",
                                         "smb",
                                         "smb2",
                                         "smb3",
                                         "cifs",
                                         "9p",
                                         "ceph",
                                         "afs",
                                         "coda",
                                         "ncpfs",
                                         "lustre",
                                         "gfs2",
                                         "ocfs2",
                                         "glusterfs",
                                         "gpfs",
                                         "vboxsf",
                                         "fuse.sshfs",
                                         "fuse.smbnetfs",
                                         "fuse.s3fs",
                                         "fuse.glusterfs",
                                         "fuse.rclone",
                                         "fuse.gcsfuse",
                                         "fuse.davfs",
                                         "fuse.curlftpfs",
                                         "fuse.ceph-fuse",
                                         "fuse.juicefs",
                                         "fuse.goofys",
                                         "fuse.afpfs"};

static const char *const local_fs[] = {
    "ext2",     "ext3",      "ext4", "tmpfs", "xfs",      "btrfs",
    "overlay",  "ramfs",     "f2fs", "zfs",   "jfs",      "reiserfs",
    "vfat",     "exfat",     "ntfs", "ntfs3", "hfs",      "hfsplus",
    "squashfs", "iso9660",   "proc", "sysfs", "bcachefs", "nilfs2",
    "devtmpfs", "fuse.plfwd"};

/* FUSE network filesystems that implement no lock operations: the kernel
 * keeps their locks, so only this mount sees them. */
static const char *const client_local_fs[] = {
    "fuse.sshfs",   "fuse.smbnetfs", "fuse.s3fs",      "fuse.rclone",
    "fuse.gcsfuse", "fuse.davfs",    "fuse.curlftpfs", "fuse.goofys"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

static int classify_network(const char *fstype) {
    if (in_list(fstype, network_fs, COUNT(network_fs)))
        return 1;
    if (in_list(fstype, local_fs, COUNT(local_fs)))
        return 0;
    return -1; /* unknown FUSE and unknown types */
}

static int classify_coherent(const char *fstype, int is_network) {
    if (in_list(fstype, client_local_fs, COUNT(client_local_fs)))
        return 0;
    if (is_network == 0)
        return 1; /* local, and fuse.plfwd (forwards locks) */
    return -1;    /* NFS depends on local_lock=..., CIFS on nobrl... */
}

/* "flock, lockf and OFD" for the set bits. */
static void backend_list(unsigned bits, char *buf, size_t len) {
    static const pl_backend_t order[] = {PL_BACKEND_FLOCK, PL_BACKEND_LOCKF,
                                         PL_BACKEND_OFD, PL_BACKEND_LOCKFILEEX};
    static const char *const shown[] = {"flock", "lockf", "OFD", "LockFileEx"};
    size_t n = 0, count = 0, done = 0;

    for (size_t i = 0; i < COUNT(order); i++)
        count += (bits >> order[i]) & 1u;
    buf[0] = '\0';
    for (size_t i = 0; i < COUNT(order) && n < len; i++) {
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

static void describe(pl_probe_t *p) {
    char ok[64], poll[64];
    const char *fs = p->fstype;
    size_t n;
    unsigned polling = p->backends_ok & ~p->blocking_ok;

    backend_list(p->backends_ok, ok, sizeof(ok));
    if (p->backends_ok == 0)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: no lock backend works here", fs);
    else if (strcmp(fs, "fuse.plfwd") == 0)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: locks are forwarded to the underlying filesystem; "
                 "%s locks exclude every mount and local process",
                 fs, ok);
    else if (p->mount_verdict[0] != '\0' &&
             (strncmp(fs, "nfs", 3) == 0 || strcmp(fs, "cifs") == 0 ||
              strncmp(fs, "smb", 3) == 0))
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: network filesystem; %s", fs, p->mount_verdict);
    else if (p->cross_mount_coherent == 0)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: network filesystem; locks are local to this client; "
                 "other clients are not excluded",
                 fs);
    else if (p->is_network == 0)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: local filesystem; %s locks exclude all processes on "
                 "this host",
                 fs, ok);
    else if (strncmp(fs, "nfs", 3) == 0)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: network filesystem; lockf and OFD locks reach the "
                 "server unless mounted with local_lock=posix/all (flock is "
                 "emulated with fcntl locks unless local_lock=flock/all); "
                 "check the mount options",
                 fs);
    else if (p->is_network == 1)
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: network filesystem; %s locks exclude processes on this "
                 "host; whether other clients are excluded is unknown",
                 fs, ok);
    else
        snprintf(p->guarantee, sizeof(p->guarantee),
                 "%s: unknown filesystem; %s locks exclude processes on this "
                 "host using this mount; other mounts or clients unknown",
                 fs, ok);
    n = strlen(p->guarantee);
    if (p->flock_fcntl_exclude == 1)
        snprintf(p->guarantee + n, sizeof(p->guarantee) - n,
                 "; flock and fcntl (lockf, OFD) locks exclude each other "
                 "here (one lock manager)");
    else if (p->flock_fcntl_exclude == 0)
        snprintf(p->guarantee + n, sizeof(p->guarantee) - n,
                 "; flock and fcntl (lockf, OFD) locks do not exclude each "
                 "other here: every process on a file must use one family");
    if (polling != 0) {
        backend_list(polling, poll, sizeof(poll));
        n = strlen(p->guarantee);
        snprintf(p->guarantee + n, sizeof(p->guarantee) - n,
                 "; %s cannot wait in the kernel here, so waits poll every "
                 "check_interval",
                 poll);
    }
}

/*
 * The mount options' verdict.  They decide coherence where the type alone
 * cannot (NFS, CIFS): when they keep every working backend on this client
 * the locks are not coherent; when they send every one to the server they
 * are.
 */
static void mount_options(const char *dir, pl_probe_t *p) {
    pl__mount_t m;
    pl__mount_verdict_t v;
    unsigned ok = p->backends_ok & ~(1u << PL_BACKEND_LOCKFILEEX);

    if (pl__os_mount(dir, &m) == 0) {
        snprintf(p->mount_source, sizeof(p->mount_source), "%s", m.source);
        snprintf(p->mount_options, sizeof(p->mount_options), "%s", m.options);
        pl__mount_verdict(m.fstype, m.options, &v);
    } else {
        pl__mount_verdict(p->fstype, "", &v);
    }
    p->remote_backends = v.remote;
    p->local_backends = v.local;
    snprintf(p->mount_verdict, sizeof(p->mount_verdict), "%s", v.verdict);
    snprintf(p->mount_advice, sizeof(p->mount_advice), "%s", v.advice);
    if (ok != 0 && (ok & ~v.local) == 0)
        p->cross_mount_coherent = 0;
    else if (ok != 0 && (ok & ~v.remote) == 0)
        p->cross_mount_coherent = 1;
}

/*
 * Whether flock and fcntl locks exclude each other here, measured: this
 * process holds a flock lock on a temporary file and tries a non-blocking
 * lockf (fcntl F_SETLK) lock from a second descriptor.  The owners differ
 * (an open file description, a process), so the attempt fails exactly when
 * both families live in one lock manager: on the BSDs and macOS always, on
 * Linux over NFS (flock emulated with fcntl locks), never on Linux's local
 * filesystems.  -1 when flock or lockf does not work here (Windows).
 */
static int flock_fcntl_exclude(const char *dir, unsigned ok) {
    static const char name[] = "/portalock-probe-families";
    size_t n = strlen(dir);
    char *base, *tmp = NULL;
    pl_fd_t fd1, fd2;
    int rc, verdict = -1;

    if (!(ok & (1u << PL_BACKEND_FLOCK)) || !(ok & (1u << PL_BACKEND_LOCKF)))
        return -1;
    if ((base = malloc(n + sizeof(name))) == NULL)
        return -1;
    memcpy(base, dir, n);
    memcpy(base + n, name, sizeof(name));
    rc = pl__os_create_temp(base, 0600, &tmp, &fd1, NULL);
    free(base);
    if (rc != PL_OK)
        return -1;
    if (pl__os_open_lockfile(tmp, "r+", 0600, &fd2, NULL) == PL_OK) {
        if (pl__os_lock(fd1, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_FLOCK,
                        NULL) == PL_OK) {
            rc = pl__os_lock(fd2, PL_EXCLUSIVE | PL_NON_BLOCKING,
                             PL_BACKEND_LOCKF, NULL);
            if (rc == PL_ELOCKED)
                verdict = 1;
            else if (rc == PL_OK)
                verdict = 0;
            pl__os_unlock(fd2, PL_BACKEND_LOCKF, NULL);
            pl__os_unlock(fd1, PL_BACKEND_FLOCK, NULL);
        }
        pl__os_close(fd2, NULL);
    }
    pl__os_close(fd1, NULL);
    pl__os_unlink(tmp, NULL);
    free(tmp);
    return verdict;
}

int pl_probe(const char *path, pl_probe_t *out, pl_error_t *err) {
    char *dir = NULL;
    int rc;

    if (path == NULL || out == NULL)
        return pl__error_set(err, PL_EINVAL, 0, "probe: NULL argument");
    memset(out, 0, sizeof(*out));
    out->is_network = -1;
    out->cross_mount_coherent = -1;
    out->flock_fcntl_exclude = -1;
    if ((rc = pl__os_probe_dir(path, &dir, err)) != PL_OK)
        return rc;
    rc = pl__os_fstype(dir, out->fstype, sizeof(out->fstype), &out->fs_magic,
                       err);
    if (rc == PL_OK)
        rc = pl__os_probe_locks(dir, &out->backends_ok, &out->blocking_ok, err);
    if (rc != PL_OK) {
        free(dir);
        return rc;
    }
    out->is_network = classify_network(out->fstype);
    out->cross_mount_coherent = classify_coherent(out->fstype, out->is_network);
    out->flock_fcntl_exclude = flock_fcntl_exclude(dir, out->backends_ok);
    mount_options(dir, out);
    free(dir);
    describe(out);
    return PL_OK;
}

/* ---- JSON ---------------------------------------------------------------- */

typedef struct jbuf {
    char *p;
    size_t len, n;
    int overflow;
} jbuf_t;

static void jraw(jbuf_t *b, const char *s, size_t n) {
    if (b->overflow || b->n + n >= b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void jputs(jbuf_t *b, const char *s) {
    jraw(b, s, strlen(s));
}

static void jstring(jbuf_t *b, const char *s) {
    jraw(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jraw(b, esc, 2);
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            jraw(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jputs(b, esc);
        } else {
            jraw(b, s, 1);
        }
    }
    jraw(b, "\"", 1);
}

static void jbackends(jbuf_t *b, unsigned bits) {
    int first = 1;
    jraw(b, "[", 1);
    for (int i = PL_BACKEND_FLOCK; i <= PL_BACKEND_LOCKFILEEX; i++) {
        if (!((bits >> i) & 1u))
            continue;
        if (!first)
            jraw(b, ",", 1);
        jstring(b, pl_backend_name((pl_backend_t)i));
        first = 0;
    }
    jraw(b, "]", 1);
}

int pl_probe_to_json(const pl_probe_t *probe, char *buf, size_t len) {
    jbuf_t b = {buf, len, 0, 0};
    char num[128];

    if (probe == NULL || buf == NULL || len == 0)
        return PL_EINVAL;
    buf[0] = '\0';
    jputs(&b, "{\"fstype\":");
    jstring(&b, probe->fstype);
    snprintf(num, sizeof(num), ",\"fs_magic\":%llu,\"is_network\":%d,",
             (unsigned long long)probe->fs_magic, probe->is_network);
    jputs(&b, num);
    jputs(&b, "\"backends_ok\":");
    jbackends(&b, probe->backends_ok);
    jputs(&b, ",\"blocking_ok\":");
    jbackends(&b, probe->blocking_ok);
    snprintf(num, sizeof(num),
             ",\"cross_mount_coherent\":%d,\"flock_fcntl_exclude\":%d,",
             probe->cross_mount_coherent, probe->flock_fcntl_exclude);
    jputs(&b, num);
    jputs(&b, "\"guarantee\":");
    jstring(&b, probe->guarantee);
    jputs(&b, ",\"mount_source\":");
    jstring(&b, probe->mount_source);
    jputs(&b, ",\"mount_options\":");
    jstring(&b, probe->mount_options);
    jputs(&b, ",\"remote_backends\":");
    jbackends(&b, probe->remote_backends);
    jputs(&b, ",\"local_backends\":");
    jbackends(&b, probe->local_backends);
    jputs(&b, ",\"mount_verdict\":");
    jstring(&b, probe->mount_verdict);
    jputs(&b, ",\"mount_advice\":");
    jstring(&b, probe->mount_advice);
    jputs(&b, "}");
    if (b.overflow) {
        buf[0] = '\0';
        return PL_EINVAL;
    }
    return PL_OK;
}
