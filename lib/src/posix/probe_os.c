/*
 * probe_os.c -- the POSIX half of pl_probe(): which filesystem a directory
 * is on (statfs magic, refined from /proc/self/mountinfo for FUSE and the
 * ext family), and which lock backends really work there, tested on a
 * temporary file from two descriptors.
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- which directory ----------------------------------------------------- */

int pl__os_probe_dir(const char *path, char **dir, pl_error_t *err) {
    struct stat st;
    size_t n = strlen(path);
    char *d;
    int e = 0;

    if (pl__sys.stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        d = malloc(n + 1);
        if (d == NULL)
            return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", path);
        memcpy(d, path, n + 1);
        *dir = d;
        return PL_OK;
    }
    /* A file, or a name not created yet: its directory. */
    while (n > 0 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    d = malloc(n + 2);
    if (d == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", path);
    if (n == 0)
        strcpy(d, ".");
    else {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    if (pl__sys.stat(d, &st) != 0)
        e = errno;
    else if (!S_ISDIR(st.st_mode))
        e = ENOTDIR;
    if (e != 0) {
        int rc = pl__error_set(err, pl__code_from_os(e), e, "probe(%s): %s",
                               path, d);
        free(d);
        return rc;
    }
    *dir = d;
    return PL_OK;
}

/* ---- filesystem type ----------------------------------------------------- */

static const struct {
    uint64_t magic;
    const char *name;
} fs_magics[] = {
    {0xEF53, "ext4"}, /* ext2/3/4 share it; mountinfo tells which */
    {0x01021994, "tmpfs"},    {0x58465342, "xfs"},
    {0x9123683E, "btrfs"},    {0x794C7630, "overlay"},
    {0x6969, "nfs"},          {0x517B, "smb"},
    {0xFF534D42, "cifs"},     {0xFE534D42, "smb2"},
    {0x65735546, "fuse"},     {0x01021997, "9p"},
    {0x00C36400, "ceph"},     {0x5346414F, "afs"},
    {0x6B414653, "afs"}, /* kAFS */
    {0x73757245, "coda"},     {0x858458F6, "ramfs"},
    {0xF2F52010, "f2fs"},     {0x2FC12FC1, "zfs"},
    {0x3153464A, "jfs"},      {0x52654973, "reiserfs"},
    {0x4d44, "vfat"},         {0x2011BAB0, "exfat"},
    {0x5346544E, "ntfs"},     {0x7366746E, "ntfs3"},
    {0x4244, "hfs"},          {0x482B, "hfsplus"},
    {0x73717368, "squashfs"}, {0x9660, "iso9660"},
    {0x9FA0, "proc"},         {0x62656572, "sysfs"},
    {0xCA451A4E, "bcachefs"}, {0x3434, "nilfs2"},
    {0x0BD00BD0, "lustre"},   {0x01161970, "gfs2"},
    {0x7461636F, "ocfs2"},    {0x47504653, "gpfs"},
    {0x00BAD1DE, "vboxsf"},   {0x786F4256, "vboxsf"},
};

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s) {
    char *w = s;
    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
            s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

/* Length of mount point mp if it contains path (equal, or a prefix ending
 * at '/'), else 0. */
static size_t mount_covers(const char *mp, const char *path) {
    size_t n = strlen(mp);
    if (strcmp(mp, "/") == 0)
        return 1;
    if (strncmp(mp, path, n) != 0 || (path[n] != '\0' && path[n] != '/'))
        return 0;
    return n;
}

/*
 * One mountinfo line: "id parent maj:min root mountpoint opts [tags] -
 * fstype source superopts".  If its mount point covers path better than
 * *best_len, copies its fstype into name.
 */
static void mountinfo_line(char *line, const char *path, size_t *best_len,
                           char *name, size_t len) {
    char *f[5], *sep, *fstype, *sp;
    int i;

    for (i = 0, sp = line; i < 5; i++) {
        f[i] = sp;
        sp = strchr(sp, ' ');
        if (sp == NULL)
            return;
        *sp++ = '\0';
    }
    sep = strstr(sp, " - ");
    if (sep == NULL)
        return;
    fstype = sep + 3;
    if ((sp = strchr(fstype, ' ')) != NULL)
        *sp = '\0';
    unescape(f[4]);
    size_t n = mount_covers(f[4], path);
    if (n > 0 && n >= *best_len) { /* later lines are newer mounts */
        *best_len = n;
        snprintf(name, len, "%s", fstype);
    }
}

/* The fstype of the mount holding dir, from /proc/self/mountinfo; 0 if
 * found. */
static int mountinfo_fstype(const char *dir, char *name, size_t len) {
    char real[PATH_MAX], buf[8192], line[4096];
    size_t best = 0, ll = 0;
    ssize_t n;
    int fd;

    if (realpath(dir, real) == NULL)
        return -1;
    fd = pl__sys.open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((n = pl__sys.read(fd, buf, sizeof(buf))) > 0 ||
           (n < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (ll + 1 < sizeof(line))
                    line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            mountinfo_line(line, real, &best, name, len);
            ll = 0;
        }
    }
    pl__sys.close(fd);
    return best > 0 ? 0 : -1;
}

int pl__os_fstype(const char *dir, char *name, size_t len, uint64_t *magic,
                  pl_error_t *err) {
    struct statfs st;
    const char *known = NULL;

    if (pl__sys.statfs(dir, &st) != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno, "statfs(%s)",
                             dir);
    *magic = (uint64_t)(unsigned long)st.f_type & 0xFFFFFFFFu;
    for (size_t i = 0; i < sizeof(fs_magics) / sizeof(fs_magics[0]); i++)
        if (fs_magics[i].magic == *magic)
            known = fs_magics[i].name;
    /* FUSE ("fuse.sshfs"), the ext family and unknown magics: ask
     * mountinfo; keep the magic's name if that fails. */
    if (known != NULL && *magic != 0xEF53 && *magic != 0x65735546) {
        snprintf(name, len, "%s", known);
        return PL_OK;
    }
    if (mountinfo_fstype(dir, name, len) == 0 &&
        (known == NULL || strncmp(name, known, 3) == 0 || *magic == 0xEF53))
        return PL_OK;
    if (known != NULL)
        snprintf(name, len, "%s", known);
    else
        snprintf(name, len, "unknown(0x%llx)", (unsigned long long)*magic);
    return PL_OK;
}

/* ---- lock tests ---------------------------------------------------------- */

typedef struct releaser {
    pl_fd_t fd;
    pl_backend_t backend;
} releaser_t;

static void *release_later(void *arg) {
    releaser_t *r = arg;
    pl__os_sleep(0.002);
    pl__os_unlock(r->fd, r->backend, NULL);
    return NULL;
}

/*
 * flock/OFD: fd1 holds; a kernel wait on fd2 (another description) must
 * wake when another thread releases fd1 after ~2 ms.  lockf is per process,
 * so a second descriptor here can never be excluded: only check that
 * F_SETLKW works on an uncontended file.
 */
static int blocking_works(pl_fd_t fd1, pl_fd_t fd2, pl_backend_t b) {
    releaser_t r = {fd1, b};
    pthread_t t;
    int rc;

    if (b == PL_BACKEND_LOCKF) {
        struct flock fl;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        pl__os_unlock(fd1, b, NULL);
        do
            rc = pl__sys.fcntl((int)fd1, F_SETLKW, &fl);
        while (rc != 0 && errno == EINTR);
        return rc == 0; /* the caller unlocks fd1 */
    }
    if (pthread_create(&t, NULL, release_later, &r) != 0)
        return 0;
    rc = pl__os_lock_kernel_wait(fd2, PL_EXCLUSIVE, b, 1.0, NULL);
    pthread_join(t, NULL);
    pl__os_unlock(fd2, b, NULL);
    return rc == PL_OK;
}

/* Bit (1u << b) in *ok if b locks here (and excludes a second description
 * for flock/OFD); in *blocking if it can also wait in the kernel. */
static void probe_backend(pl_fd_t fd1, pl_fd_t fd2, pl_backend_t b,
                          unsigned *ok, unsigned *blocking) {
    int excl;

    if (pl__os_lock(fd1, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL) != PL_OK)
        return;
    if (b == PL_BACKEND_LOCKF) {
        excl = 1;
    } else {
        int rc = pl__os_lock(fd2, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL);
        excl = rc == PL_ELOCKED;
        if (rc == PL_OK)
            pl__os_unlock(fd2, b, NULL);
    }
    if (excl) {
        *ok |= 1u << b;
        if (blocking_works(fd1, fd2, b))
            *blocking |= 1u << b;
    }
    pl__os_unlock(fd1, b, NULL);
}

int pl__os_probe_locks(const char *dir, unsigned *backends_ok,
                       unsigned *blocking_ok, pl_error_t *err) {
    static const pl_backend_t backends[] = {PL_BACKEND_FLOCK, PL_BACKEND_LOCKF,
                                            PL_BACKEND_OFD};
    size_t n = strlen(dir);
    char *base = malloc(n + sizeof("/portalock-probe"));
    char *tmp = NULL;
    pl_fd_t fd1, fd2;
    int rc;

    *backends_ok = *blocking_ok = 0;
    if (base == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", dir);
    memcpy(base, dir, n);
    strcpy(base + n,
           n > 0 && dir[n - 1] == '/' ? "portalock-probe" : "/portalock-probe");
    rc = pl__os_create_temp(base, 0600, &tmp, &fd1, err);
    free(base);
    if (rc != PL_OK)
        return rc;
    rc = pl__os_open_lockfile(tmp, "r+", 0600, &fd2, err);
    if (rc == PL_OK) {
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
            if (pl__os_backend_available(backends[i]))
                probe_backend(fd1, fd2, backends[i], backends_ok, blocking_ok);
        pl__os_close(fd2, NULL);
    }
    pl__os_close(fd1, NULL);
    pl__os_unlink(tmp, NULL);
    free(tmp);
    return rc;
}
