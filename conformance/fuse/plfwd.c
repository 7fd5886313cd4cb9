/*
 * plfwd -- a passthrough FUSE filesystem that forwards file locks.
 *
 * What it is for
 *   The conformance suite and the benchmarks need a "network filesystem"
 *   whose locks ARE coherent between clients, to contrast with sshfs (whose
 *   locks stay inside one mount).  Kernel NFS is not available here, so:
 *
 *       plfwd [-f] [-o delay_us=N] BACKING_DIR MOUNTPOINT
 *
 *   Every request is served from BACKING_DIR (the "server").  Two mounts of
 *   one backing directory act as two clients of one server.  The mount shows
 *   as fstype "fuse.plfwd", which pl_probe() knows to be coherent.
 *
 * What it guarantees
 *   - Inodes, not names, like NFS file handles: a FUSE inode is one backing
 *     inode (held by an O_PATH descriptor), so after a file is unlinked or
 *     replaced through the other mount, fstat() on a descriptor still
 *     describes the file it opened (st_nlink 0) while stat() on the name
 *     describes the new file.  No name, attribute or data caching (timeouts
 *     0, page cache dropped at open): changes through one mount are seen at
 *     once through the other.  Unlink removes at once (no .fuse_hidden).
 *   - flock(2) through a mount is flock(2) on the backing descriptor of that
 *     FUSE open (one backing descriptor per open file description), so it
 *     excludes flock holders on the other mount and on the backing files.
 *   - POSIX (fcntl F_SETLK, lockf) and OFD (F_OFD_SETLK) locks become OFD
 *     locks on a backing descriptor kept per (inode, lock owner).  The
 *     kernel names the owner: the process's file table for POSIX locks, the
 *     open file description for OFD locks.  So a process's POSIX locks do
 *     not conflict with each other across its descriptors, close() of any of
 *     its descriptors drops them (the kernel's FLUSH carries the owner),
 *     fork()ed children are other owners, and OFD locks follow the
 *     description.  Both exclude fcntl/OFD holders on the other mount and on
 *     the backing files.  Deadlock detection (EDEADLK) is not reproduced.
 *     F_GETLK reports the conflicting type and range with l_pid 0; on a
 *     backing file plfwd's locks show as OFD locks (l_pid -1).
 *   - Blocking waits (F_SETLKW, flock without LOCK_NB) wait in the backing
 *     kernel and wake on release.  The loop is multithreaded (up to 512
 *     workers; -o max_threads=N), so waiters do not stall other requests
 *     unless that many wait at once on one mount.
 *   - A waiter interrupted in the client (a signal, glibc's thread
 *     cancellation) makes the kernel send INTERRUPT; plfwd then signals the
 *     worker (SIGUSR1, no SA_RESTART, re-sent every 10 ms until it returns),
 *     so fcntl/flock fail with EINTR and the wait is abandoned without
 *     taking the lock.
 *   - -o delay_us=N (or --delay-us=N) sleeps N microseconds in every request
 *     that has a reply, to stand in for a network round trip
 *     (open+flock+unlock+close is 8 requests on this kernel).
 *   Limit of FUSE itself: the kernel sends RELEASE (which closes the backing
 *   descriptor and so drops its flock and OFD locks) without waiting for it
 *   after the last close(); such locks may outlive close() for that moment.
 *   plfwd handles RELEASE before sleeping its delay to keep that short.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* A backing inode the kernel knows (fuse_ino_t is its address). */
struct inode {
    struct inode *next; /* hash chain */
    int fd;             /* O_PATH descriptor of the backing inode */
    dev_t dev;
    ino_t ino;
    uint64_t nlookup; /* kernel references; freed at 0 (never the root) */
};

/* A POSIX/OFD lock owner on one backing inode, with its own descriptor. */
struct owner {
    struct owner *next;
    dev_t dev;
    ino_t ino;
    uint64_t id;   /* fuse_file_info.lock_owner */
    int fd;        /* open file description carrying this owner's locks */
    unsigned refs; /* FUSE opens that carried this owner's requests */
};

/* One FUSE open (fi->fh). */
struct file {
    int fd;    /* backing descriptor: data and flock */
    int flags; /* open flags */
    dev_t dev;
    ino_t ino;
    struct owner **owners; /* owners that used this open (refs held) */
    size_t nowners, capowners;
};

struct dir {
    DIR *dp;
    off_t offset;        /* position of the next entry */
    struct dirent *next; /* read but not yet returned, or NULL */
};

#define NBUCKETS 4096

static struct {
    struct inode root;
    struct inode *buckets[NBUCKETS];
    unsigned delay_us;
    pthread_mutex_t mu; /* guards buckets, owners, files' owner lists */
    struct owner *owners;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void delay(void) {
    struct timespec ts;

    if (g.delay_us == 0)
        return;
    ts.tv_sec = g.delay_us / 1000000u;
    ts.tv_nsec = (long)(g.delay_us % 1000000u) * 1000L;
    nanosleep(&ts, NULL); /* an interrupt may cut it short: fine */
}

static struct inode *inode_of(fuse_ino_t ino) {
    return ino == FUSE_ROOT_ID ? &g.root : (struct inode *)(uintptr_t)ino;
}

static struct file *file_of(const struct fuse_file_info *fi) {
    return (struct file *)(uintptr_t)fi->fh;
}

/* "/proc/self/fd/N": reopens or names an O_PATH descriptor's inode. */
static void proc_path(char *buf, size_t len, int fd) {
    snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static void reply_errno(fuse_req_t req, int r) {
    fuse_reply_err(req, r == -1 ? errno : 0);
}

/* ------------------------------------------------------------------------ */
/* Inode table                                                              */
/* ------------------------------------------------------------------------ */

static size_t bucket(dev_t dev, ino_t ino) {
    return (size_t)((uint64_t)ino * 31u + (uint64_t)dev) % NBUCKETS;
}

/*
 * Takes over pathfd (an O_PATH descriptor) and fills e with the inode it
 * names, adding one kernel reference.  Returns 0 or an errno value.
 */
static int make_entry(int pathfd, struct fuse_entry_param *e) {
    struct stat st;
    struct inode *n;
    size_t b;

    memset(e, 0, sizeof(*e));
    if (fstatat(pathfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1) {
        int err = errno;
        close(pathfd);
        return err;
    }
    b = bucket(st.st_dev, st.st_ino);
    pthread_mutex_lock(&g.mu);
    for (n = g.buckets[b]; n != NULL; n = n->next)
        if (n->ino == st.st_ino && n->dev == st.st_dev)
            break;
    if (n != NULL) {
        close(pathfd);
    } else if (st.st_ino == g.root.ino && st.st_dev == g.root.dev) {
        n = &g.root; /* ".." of a top-level directory */
        close(pathfd);
    } else {
        n = calloc(1, sizeof(*n));
        if (n == NULL) {
            pthread_mutex_unlock(&g.mu);
            close(pathfd);
            return ENOMEM;
        }
        *n = (struct inode){g.buckets[b], pathfd, st.st_dev, st.st_ino, 0};
        g.buckets[b] = n;
    }
    n->nlookup++;
    pthread_mutex_unlock(&g.mu);
    e->ino = n == &g.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
    e->attr = st;
    e->attr_timeout = 0;
    e->entry_timeout = 0;
    return 0;
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup) {
    struct inode *n = inode_of(ino), **pp;

    pthread_mutex_lock(&g.mu);
    n->nlookup = nlookup < n->nlookup ? n->nlookup - nlookup : 0;
    if (n->nlookup == 0 && n != &g.root) {
        for (pp = &g.buckets[bucket(n->dev, n->ino)]; *pp != n;
             pp = &(*pp)->next)
            ;
        *pp = n->next;
        close(n->fd);
        free(n);
    }
    pthread_mutex_unlock(&g.mu);
}

/* Replies with the entry for parent/name (after it was created). */
static void reply_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    struct fuse_entry_param e;
    int err, fd;

    fd = openat(inode_of(parent)->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    err = fd == -1 ? errno : make_entry(fd, &e);
    if (err != 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

/* ------------------------------------------------------------------------ */
/* Names and attributes                                                     */
/* ------------------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
    (void)userdata;
    if (conn->capable & FUSE_CAP_POSIX_LOCKS)
        conn->want |= FUSE_CAP_POSIX_LOCKS;
    if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
        conn->want |= FUSE_CAP_FLOCK_LOCKS;
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    delay();
    reply_lookup(req, parent, name);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    forget_one(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets) {
    size_t i;

    for (i = 0; i < count; i++)
        forget_one(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino) {
    struct stat st;

    if (fstatat(inode_of(ino)->fd, "", &st,
                AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
        fuse_reply_err(req, errno);
    else
        fuse_reply_attr(req, &st, 0);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
    (void)fi;
    delay();
    reply_attr(req, ino);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi) {
    int fd = inode_of(ino)->fd, r = 0;
    char proc[64];

    delay();
    proc_path(proc, sizeof(proc), fd);
    if (to_set & FUSE_SET_ATTR_MODE)
        r = fi != NULL ? fchmod(file_of(fi)->fd, attr->st_mode)
                       : chmod(proc, attr->st_mode);
    if (r == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
        r = fchownat(fd, "",
                     (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
                     (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1,
                     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (r == 0 && (to_set & FUSE_SET_ATTR_SIZE))
        r = fi != NULL ? ftruncate(file_of(fi)->fd, attr->st_size)
                       : truncate(proc, attr->st_size);
    if (r == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
        struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};

        if (to_set & FUSE_SET_ATTR_ATIME_NOW)
            tv[0].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_ATIME)
            tv[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            tv[1].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_MTIME)
            tv[1] = attr->st_mtim;
        r = fi != NULL ? futimens(file_of(fi)->fd, tv)
                       : utimensat(AT_FDCWD, proc, tv, 0);
    }
    if (r == -1)
        fuse_reply_err(req, errno);
    else
        reply_attr(req, ino);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    char buf[PATH_MAX + 1];
    ssize_t n;

    delay();
    n = readlinkat(inode_of(ino)->fd, "", buf, sizeof(buf) - 1);
    if (n == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    buf[n] = '\0';
    fuse_reply_readlink(req, buf);
}

/* Files and directories created for a non-root caller get its ids
 * (name NULL: fd is the new file itself). */
static void give_to_caller(fuse_req_t req, int fd, const char *name) {
    const struct fuse_ctx *ctx = fuse_req_ctx(req);

    if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
        return;
    if (name == NULL)
        (void)!fchown(fd, ctx->uid, ctx->gid);
    else
        (void)!fchownat(fd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode) {
    int dirfd = inode_of(parent)->fd;

    delay();
    if (mkdirat(dirfd, name, mode) == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, dirfd, name);
    reply_lookup(req, parent, name);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev) {
    int dirfd = inode_of(parent)->fd;

    delay();
    if (mknodat(dirfd, name, mode, rdev) == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, dirfd, name);
    reply_lookup(req, parent, name);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
                       const char *name) {
    int dirfd = inode_of(parent)->fd;

    delay();
    if (symlinkat(target, dirfd, name) == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, dirfd, name);
    reply_lookup(req, parent, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname) {
    char proc[64];

    delay();
    proc_path(proc, sizeof(proc), inode_of(ino)->fd);
    if (linkat(AT_FDCWD, proc, inode_of(newparent)->fd, newname,
               AT_SYMLINK_FOLLOW) == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    reply_lookup(req, newparent, newname);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
    delay();
    reply_errno(req, unlinkat(inode_of(parent)->fd, name, 0));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
    delay();
    reply_errno(req, unlinkat(inode_of(parent)->fd, name, AT_REMOVEDIR));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
    delay();
    reply_errno(req, renameat2(inode_of(parent)->fd, name,
                               inode_of(newparent)->fd, newname, flags));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    struct statvfs st;

    delay();
    if (fstatvfs(inode_of(ino)->fd, &st) == -1)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &st);
}

/* ------------------------------------------------------------------------ */
/* Directories                                                              */
/* ------------------------------------------------------------------------ */

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
    struct dir *d = calloc(1, sizeof(*d));
    int fd;

    delay();
    fd = d == NULL ? -1
                   : openat(inode_of(ino)->fd, ".",
                            O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1 || (d->dp = fdopendir(fd)) == NULL) {
        int err = d == NULL ? ENOMEM : errno;
        if (fd != -1)
            close(fd);
        free(d);
        fuse_reply_err(req, err);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
    struct dir *d = (struct dir *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    size_t pos = 0;

    (void)ino;
    delay();
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (off != d->offset) {
        seekdir(d->dp, off);
        d->next = NULL;
        d->offset = off;
    }
    for (;;) {
        struct stat st;
        size_t len;

        if (d->next == NULL) {
            errno = 0;
            d->next = readdir(d->dp);
            if (d->next == NULL) {
                if (errno != 0 && pos == 0) {
                    free(buf);
                    fuse_reply_err(req, errno);
                    return;
                }
                break;
            }
        }
        memset(&st, 0, sizeof(st));
        st.st_ino = d->next->d_ino;
        st.st_mode = (mode_t)DTTOIF(d->next->d_type);
        len = fuse_add_direntry(req, buf + pos, size - pos, d->next->d_name,
                                &st, d->next->d_off);
        if (len > size - pos)
            break; /* keep d->next for the next call */
        pos += len;
        d->offset = d->next->d_off;
        d->next = NULL;
    }
    fuse_reply_buf(req, buf, pos);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi) {
    struct dir *d = (struct dir *)(uintptr_t)fi->fh;

    (void)ino;
    closedir(d->dp);
    free(d);
    delay();
    fuse_reply_err(req, 0);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* Wraps a new backing descriptor into fi->fh (closes fd on failure). */
static int attach(int fd, struct fuse_file_info *fi) {
    struct file *f = calloc(1, sizeof(*f));
    struct stat st;

    if (f == NULL || fstat(fd, &st) == -1) {
        int err = f == NULL ? ENOMEM : errno;
        free(f);
        close(fd);
        return err;
    }
    f->fd = fd;
    f->flags = fi->flags;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    fi->fh = (uint64_t)(uintptr_t)f;
    fi->keep_cache = 0; /* another client may have written: reread */
    fi->direct_io = 0;
    return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    char proc[64];
    int fd, err;

    delay();
    proc_path(proc, sizeof(proc), inode_of(ino)->fd);
    fd = open(proc, (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
    err = fd == -1 ? errno : attach(fd, fi);
    if (err != 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi) {
    struct fuse_entry_param e;
    char proc[64];
    int fd, pathfd, err;

    delay();
    e.ino = 0;
    fd = openat(inode_of(parent)->fd, name,
                (fi->flags & ~O_NOFOLLOW) | O_CREAT | O_CLOEXEC, mode);
    if (fd == -1) {
        fuse_reply_err(req, errno);
        return;
    }
    give_to_caller(req, fd, NULL);
    /* The entry is the inode we opened, whatever the name is by now. */
    proc_path(proc, sizeof(proc), fd);
    pathfd = open(proc, O_PATH | O_CLOEXEC);
    err = pathfd == -1 ? errno : make_entry(pathfd, &e);
    if (err == 0)
        err = attach(fd, fi);
    else
        close(fd);
    if (err != 0) {
        if (e.ino != 0)
            forget_one(e.ino, 1);
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
    char *buf = malloc(size != 0 ? size : 1);
    ssize_t n;

    (void)ino;
    delay();
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    n = pread(file_of(fi)->fd, buf, size, off);
    if (n == -1)
        fuse_reply_err(req, errno);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi) {
    ssize_t n;

    (void)ino;
    delay();
    n = pwrite(file_of(fi)->fd, buf, size, off);
    if (n == -1)
        fuse_reply_err(req, errno);
    else
        fuse_reply_write(req, (size_t)n);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi) {
    int fd = file_of(fi)->fd;

    (void)ino;
    delay();
    reply_errno(req, datasync ? fdatasync(fd) : fsync(fd));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
                         off_t len, struct fuse_file_info *fi) {
    (void)ino;
    delay();
    reply_errno(req, fallocate(file_of(fi)->fd, mode, off, len));
}

/* ------------------------------------------------------------------------ */
/* Locks                                                                    */
/* ------------------------------------------------------------------------ */

/* Opens a new description of f's inode, read-write if allowed, else with
 * f's access mode. */
static int reopen(const struct file *f) {
    char proc[64];
    int fd;

    proc_path(proc, sizeof(proc), f->fd);
    fd = open(proc, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd == -1 && (errno == EACCES || errno == EROFS || errno == EISDIR ||
                     errno == ETXTBSY))
        fd = open(proc, (f->flags & O_ACCMODE) | O_CLOEXEC | O_NOCTTY);
    return fd;
}

/*
 * Finds (create: or makes) the descriptor of lock owner id on f's inode and
 * makes sure f holds a reference to it.  Returns the descriptor, -1 if there
 * is none (and !create), or -errno.
 */
static int owner_fd(struct file *f, uint64_t id, int create) {
    struct owner *o;
    size_t i;
    int fd;

    pthread_mutex_lock(&g.mu);
    if (f->nowners == f->capowners) { /* room for one more, up front */
        size_t cap = f->capowners != 0 ? 2 * f->capowners : 4;
        struct owner **p = realloc(f->owners, cap * sizeof(*p));

        if (p == NULL) {
            pthread_mutex_unlock(&g.mu);
            return -ENOMEM;
        }
        f->owners = p;
        f->capowners = cap;
    }
    for (o = g.owners; o != NULL; o = o->next)
        if (o->id == id && o->ino == f->ino && o->dev == f->dev)
            break;
    if (o == NULL && create) {
        o = calloc(1, sizeof(*o));
        fd = o != NULL ? reopen(f) : -1;
        if (fd == -1) {
            int err = o == NULL ? ENOMEM : errno;
            free(o);
            pthread_mutex_unlock(&g.mu);
            return -err;
        }
        *o = (struct owner){g.owners, f->dev, f->ino, id, fd, 0};
        g.owners = o;
    }
    if (o == NULL) {
        pthread_mutex_unlock(&g.mu);
        return -1;
    }
    for (i = 0; i < f->nowners && f->owners[i] != o; i++)
        ;
    if (i == f->nowners) {
        f->owners[f->nowners++] = o;
        o->refs++;
    }
    fd = o->fd;
    pthread_mutex_unlock(&g.mu);
    return fd;
}

/*
 * Interrupting a blocking wait: libfuse calls on_interrupt() from the thread
 * that read the INTERRUPT (with the request's lock held), or from the
 * waiting thread itself if the INTERRUPT came first.  The waiter may not
 * have entered fcntl/flock yet when a signal lands, so the signal is re-sent
 * every 10 ms until the waiter says it is done.
 */
struct waiter {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int interrupted, done;
};

static void on_interrupt(fuse_req_t req, void *data) {
    struct waiter *w = data;

    (void)req;
    pthread_mutex_lock(&w->mu);
    w->interrupted = 1;
    while (!w->done && !pthread_equal(w->thread, pthread_self())) {
        struct timespec ts;

        pthread_kill(w->thread, SIGUSR1);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
}

static void wait_begin(fuse_req_t req, struct waiter *w) {
    w->thread = pthread_self();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->interrupted = w->done = 0;
    fuse_req_interrupt_func(req, on_interrupt, w);
}

/*
 * A wait that was granted although an INTERRUPT came is still reported as
 * granted: the client's system call then succeeds (as it may when a signal
 * arrives just as a lock is granted), so no lock is held unknowingly.
 */
static void wait_end(fuse_req_t req, struct waiter *w) {
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    fuse_req_interrupt_func(req, NULL, NULL); /* waits for on_interrupt */
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static int interrupted_before(struct waiter *w) {
    int r;

    pthread_mutex_lock(&w->mu);
    r = w->interrupted;
    pthread_mutex_unlock(&w->mu);
    return r;
}

/* POSIX and OFD locks: OFD locks on the owner's backing description.
 * Returns 0 or an errno value. */
static int do_lock(fuse_req_t req, struct fuse_file_info *fi, int cmd,
                   struct flock *lk) {
    struct file *f = file_of(fi);
    struct flock l = *lk;
    struct waiter w;
    int fd, err = 0;

    fd = owner_fd(f, fi->lock_owner, cmd != F_GETLK && lk->l_type != F_UNLCK);
    if (fd < -1)
        return -fd;
    if (fd == -1) {
        if (cmd != F_GETLK)
            return 0; /* unlocking an owner that holds nothing */
        fd = f->fd;   /* holds no fcntl locks: tests against everyone */
    }
    l.l_pid = 0; /* required by the OFD commands */
    if (cmd == F_GETLK) {
        if (fcntl(fd, F_OFD_GETLK, &l) == -1)
            return errno;
        lk->l_type = l.l_type;
        lk->l_whence = l.l_whence;
        lk->l_start = l.l_start;
        lk->l_len = l.l_len;
        lk->l_pid = 0;
        return 0;
    }
    if (cmd == F_SETLK)
        return fcntl(fd, F_OFD_SETLK, &l) == -1 ? errno : 0;
    wait_begin(req, &w);
    if (interrupted_before(&w))
        err = EINTR;
    else if (fcntl(fd, F_OFD_SETLKW, &l) == -1)
        err = errno;
    wait_end(req, &w);
    return err;
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                     struct flock *lock) {
    int err;

    (void)ino;
    delay();
    err = do_lock(req, fi, F_GETLK, lock);
    if (err != 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_lock(req, lock);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                     struct flock *lock, int sleep) {
    (void)ino;
    delay();
    fuse_reply_err(req, do_lock(req, fi, sleep ? F_SETLKW : F_SETLK, lock));
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                     int op) {
    struct waiter w;
    int err = 0;

    (void)ino;
    delay();
    if ((op & LOCK_NB) || (op & LOCK_UN)) {
        fuse_reply_err(req, flock(file_of(fi)->fd, op) == -1 ? errno : 0);
        return;
    }
    wait_begin(req, &w);
    if (interrupted_before(&w))
        err = EINTR;
    else if (flock(file_of(fi)->fd, op) == -1)
        err = errno;
    wait_end(req, &w);
    fuse_reply_err(req, err);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino,
                     struct fuse_file_info *fi) {
    struct flock l;
    int fd;

    (void)ino;
    delay();
    /* close() drops the closing process's POSIX locks on this inode. */
    fd = owner_fd(file_of(fi), fi->lock_owner, 0);
    if (fd >= 0) {
        memset(&l, 0, sizeof(l));
        l.l_type = F_UNLCK;
        l.l_whence = SEEK_SET;
        (void)fcntl(fd, F_OFD_SETLK, &l);
    }
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
    struct file *f = file_of(fi);
    size_t i;

    (void)ino;
    pthread_mutex_lock(&g.mu);
    for (i = 0; i < f->nowners; i++) {
        struct owner *o = f->owners[i], **pp;

        if (--o->refs != 0)
            continue;
        for (pp = &g.owners; *pp != o; pp = &(*pp)->next)
            ;
        *pp = o->next;
        close(o->fd); /* drops whatever this owner still held */
        free(o);
    }
    pthread_mutex_unlock(&g.mu);
    free(f->owners);
    close(f->fd); /* drops this open's flock */
    free(f);
    delay(); /* after the work: the kernel does not wait for RELEASE */
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops plfwd_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .statfs = op_statfs,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .fsync = op_fsync,
    .fallocate = op_fallocate,
    .getlk = op_getlk,
    .setlk = op_setlk,
    .flock = op_flock,
    .flush = op_flush,
    .release = op_release,
};

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

struct cmdline {
    char *backing;
    unsigned delay_us;
};

static const struct fuse_opt cmdline_spec[] = {
    {"delay_us=%u", offsetof(struct cmdline, delay_us), 0},
    {"--delay-us=%u", offsetof(struct cmdline, delay_us), 0},
    {"--delay-us %u", offsetof(struct cmdline, delay_us), 0},
    FUSE_OPT_END,
};

static int cmdline_proc(void *data, const char *arg, int key,
                        struct fuse_args *args) {
    struct cmdline *c = data;

    (void)args;
    if (key == FUSE_OPT_KEY_NONOPT && c->backing == NULL) {
        c->backing = strdup(arg);
        return c->backing == NULL ? -1 : 0;
    }
    return 1; /* the mount point and libfuse's options */
}

/* SIGUSR1 only has to interrupt a worker's blocking system call. */
static void on_sigusr1(int sig) {
    (void)sig;
}

static int serve(struct fuse_args *args, const struct fuse_cmdline_opts *o) {
    struct fuse_session *se;
    struct fuse_loop_config *cfg;
    int rc = 1;

    se = fuse_session_new(args, &plfwd_ops, sizeof(plfwd_ops), NULL);
    if (se == NULL)
        return 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, o->mountpoint) == 0) {
            fuse_daemonize(o->foreground);
            cfg = fuse_loop_cfg_create();
            if (cfg != NULL) {
                fuse_loop_cfg_set_clone_fd(cfg, (unsigned)o->clone_fd);
                fuse_loop_cfg_set_idle_threads(cfg, o->max_idle_threads);
                fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
                rc = o->singlethread ? fuse_session_loop(se)
                                     : fuse_session_loop_mt(se, cfg);
                fuse_loop_cfg_destroy(cfg);
            }
            fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    return rc != 0 ? 1 : 0;
}

int main(int argc, char *argv[]) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts opts;
    struct cmdline c = {NULL, 0};
    struct sigaction sa;
    struct stat st;
    int rc;

    if (fuse_opt_parse(&args, &c, cmdline_spec, cmdline_proc) == -1)
        return 2;
    /* Defaults first, so options given on the command line override them. */
    if (fuse_opt_insert_arg(&args, 1,
                            "-osubtype=plfwd,fsname=plfwd,default_permissions,"
                            "max_threads=512,max_idle_threads=64") == -1 ||
        (geteuid() == 0 &&
         fuse_opt_insert_arg(&args, 1, "-oallow_other") == -1) ||
        fuse_parse_cmdline(&args, &opts) != 0)
        return 2;
    if (opts.show_help || opts.show_version) {
        printf("usage: %s [options] BACKING_DIR MOUNTPOINT\n"
               "    -o delay_us=N, --delay-us=N  sleep N us in every "
               "request\n",
               argv[0]);
        if (opts.show_help) {
            fuse_cmdline_help();
            fuse_lowlevel_help();
        } else {
            fuse_lowlevel_version();
        }
        return 0;
    }
    if (c.backing == NULL || opts.mountpoint == NULL) {
        fprintf(stderr, "usage: %s [options] BACKING_DIR MOUNTPOINT\n",
                argv[0]);
        return 2;
    }
    g.root.fd = open(c.backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g.root.fd == -1 || fstat(g.root.fd, &st) == -1) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], c.backing, strerror(errno));
        return 2;
    }
    g.root.dev = st.st_dev;
    g.root.ino = st.st_ino;
    g.root.nlookup = 1;
    g.delay_us = c.delay_us;
    umask(0); /* the kernel has applied the caller's umask already */
    /* Sleep what was asked, not up to 50 us more (default timer slack);
     * the workers inherit this. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr1; /* no SA_RESTART: waits end with EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) == -1)
        return 2;

    rc = serve(&args, &opts);
    free(opts.mountpoint);
    fuse_opt_free_args(&args);
    close(g.root.fd);
    free(c.backing);
    return rc;
}
