/*
 * sys_hooks.c -- see sys_hooks.h.
 */
#include "sys_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>

const char *const ps_entry_names[E_COUNT] = {
    [E_OPEN] = "open",
    [E_CLOSE] = "close",
    [E_FLOCK] = "flock",
    [E_FCNTL] = "fcntl",
    [E_FSTAT] = "fstat",
    [E_STAT] = "stat",
    [E_FTRUNCATE] = "ftruncate",
    [E_FSYNC] = "fsync",
    [E_UNLINK] = "unlink",
    [E_RENAME] = "rename",
    [E_LINK] = "link",
    [E_MKDIR] = "mkdir",
    [E_READ] = "read",
    [E_WRITE] = "write",
    [E_LSTAT] = "lstat",
    [E_LINKAT] = "linkat",
    [E_PTHREAD_CREATE] = "pthread_create",
};

typedef struct fault {
    int active;
    ps_entry_t entry;
    int err;
    long skip, times;
    int percent, blocking_only;
} fault_t;

#define MAX_FAULTS 8
static fault_t faults[MAX_FAULTS];
static atomic_ulong rng_state = 88172645463325252u;
atomic_long ps_calls[E_COUNT];
pl__sys_table_t ps_real;
void (*ps_hook_observer)(ps_entry_t e, int after);
int ps_no_tmpfile;

static int roll(int percent) {
    unsigned long x = atomic_fetch_add(&rng_state, 0x9E3779B97F4A7C15u);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 29;
    return (int)(x % 100) < percent;
}

/* Counts the call, tells the observer, and returns the errno to inject. */
static int hit(ps_entry_t e, int blocking) {
    long n = atomic_fetch_add(&ps_calls[e], 1);
    if (ps_hook_observer != NULL)
        ps_hook_observer(e, 0);
    for (int i = 0; i < MAX_FAULTS; i++) {
        const fault_t *f = &faults[i];
        if (!f->active || f->entry != e || (f->blocking_only && !blocking))
            continue;
        if (f->percent > 0) {
            if (roll(f->percent))
                return f->err;
            continue;
        }
        if (n >= f->skip && (f->times < 0 || n < f->skip + f->times))
            return f->err;
    }
    return 0;
}

/* After the real call; keeps its errno. */
static long done(ps_entry_t e, long rc) {
    if (ps_hook_observer != NULL) {
        int saved = errno;
        ps_hook_observer(e, 1);
        errno = saved;
    }
    return rc;
}

static int fail(int e) {
    errno = e;
    return -1;
}

static int h_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    int e = hit(E_OPEN, 0);
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, unsigned);
        va_end(ap);
    }
    if (e != 0)
        return fail(e);
    /* What a filesystem without O_TMPFILE answers (NFS, CIFS, ...). */
    if (ps_no_tmpfile && (flags & O_TMPFILE) == O_TMPFILE)
        return (int)done(E_OPEN, fail(EOPNOTSUPP));
    return (int)done(E_OPEN, ps_real.open(path, flags, mode));
}

/* Linux frees the descriptor whatever close() reports: close, then fail. */
static int h_close(int fd) {
    int e = hit(E_CLOSE, 0);
    int rc = (int)done(E_CLOSE, ps_real.close(fd));
    return e != 0 ? fail(e) : rc;
}

static int h_flock(int fd, int op) {
    int e = hit(E_FLOCK, !(op & LOCK_NB) && op != LOCK_UN);
    if (e != 0)
        return fail(e);
    return (int)done(E_FLOCK, ps_real.flock(fd, op));
}

static int h_fcntl(int fd, int cmd, ...) {
    va_list ap;
    void *arg;
    int e;
    va_start(ap, cmd);
    arg = va_arg(ap, void *); /* the library passes only lock commands */
    va_end(ap);
    if (cmd != F_SETLK && cmd != F_SETLKW && cmd != F_OFD_SETLK &&
        cmd != F_OFD_SETLKW)
        return ps_real.fcntl(fd, cmd, arg);
    e = hit(E_FCNTL, cmd == F_SETLKW || cmd == F_OFD_SETLKW);
    if (e != 0)
        return fail(e);
    return (int)done(E_FCNTL, ps_real.fcntl(fd, cmd, arg));
}

static int h_fstat(int fd, struct stat *st) {
    int e = hit(E_FSTAT, 0);
    return e != 0 ? fail(e) : (int)done(E_FSTAT, ps_real.fstat(fd, st));
}
static int h_stat(const char *p, struct stat *st) {
    int e = hit(E_STAT, 0);
    return e != 0 ? fail(e) : (int)done(E_STAT, ps_real.stat(p, st));
}
static int h_ftruncate(int fd, off_t len) {
    int e = hit(E_FTRUNCATE, 0);
    return e != 0 ? fail(e)
                  : (int)done(E_FTRUNCATE, ps_real.ftruncate(fd, len));
}
static int h_fsync(int fd) {
    int e = hit(E_FSYNC, 0);
    return e != 0 ? fail(e) : (int)done(E_FSYNC, ps_real.fsync(fd));
}
static int h_unlink(const char *p) {
    int e = hit(E_UNLINK, 0);
    return e != 0 ? fail(e) : (int)done(E_UNLINK, ps_real.unlink(p));
}
static int h_rename(const char *a, const char *b) {
    int e = hit(E_RENAME, 0);
    return e != 0 ? fail(e) : (int)done(E_RENAME, ps_real.rename(a, b));
}
static int h_link(const char *a, const char *b) {
    int e = hit(E_LINK, 0);
    return e != 0 ? fail(e) : (int)done(E_LINK, ps_real.link(a, b));
}
static int h_mkdir(const char *p, mode_t m) {
    int e = hit(E_MKDIR, 0);
    return e != 0 ? fail(e) : (int)done(E_MKDIR, ps_real.mkdir(p, m));
}
static ssize_t h_read(int fd, void *buf, size_t len) {
    int e = hit(E_READ, 0);
    return e != 0 ? fail(e) : (ssize_t)done(E_READ, ps_real.read(fd, buf, len));
}
static ssize_t h_write(int fd, const void *buf, size_t len) {
    int e = hit(E_WRITE, 0);
    return e != 0 ? fail(e)
                  : (ssize_t)done(E_WRITE, ps_real.write(fd, buf, len));
}

static int h_lstat(const char *p, struct stat *st) {
    int e = hit(E_LSTAT, 0);
    return e != 0 ? fail(e) : (int)done(E_LSTAT, ps_real.lstat(p, st));
}
static int h_linkat(int fd1, const char *a, int fd2, const char *b, int fl) {
    int e = hit(E_LINKAT, 0);
    return e != 0 ? fail(e)
                  : (int)done(E_LINKAT, ps_real.linkat(fd1, a, fd2, b, fl));
}

/* pthread_create reports its error as the return value. */
static int h_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                            void *(*fn)(void *), void *arg) {
    int e = hit(E_PTHREAD_CREATE, 0);
    if (e != 0)
        return e;
    return (int)done(E_PTHREAD_CREATE,
                     ps_real.pthread_create(t, attr, fn, arg));
}

void ps_faults_clear(void) {
    memset(faults, 0, sizeof(faults));
    for (int i = 0; i < E_COUNT; i++)
        atomic_store(&ps_calls[i], 0);
}

void ps_hooks_install(void) {
    pl__sys_reset();
    ps_real = pl__sys;
    ps_faults_clear();
    pl__sys.open = h_open;
    pl__sys.close = h_close;
    pl__sys.flock = h_flock;
    pl__sys.fcntl = h_fcntl;
    pl__sys.fstat = h_fstat;
    pl__sys.stat = h_stat;
    pl__sys.ftruncate = h_ftruncate;
    pl__sys.fsync = h_fsync;
    pl__sys.unlink = h_unlink;
    pl__sys.rename = h_rename;
    pl__sys.link = h_link;
    pl__sys.mkdir = h_mkdir;
    pl__sys.read = h_read;
    pl__sys.write = h_write;
    pl__sys.lstat = h_lstat;
    pl__sys.linkat = h_linkat;
    pl__sys.pthread_create = h_pthread_create;
}

void ps_hooks_remove(void) {
    ps_faults_clear();
    pl__sys_reset();
}

void ps_fault_add(ps_entry_t e, int err, long skip, long times, int percent,
                  int blocking_only) {
    for (int i = 0; i < MAX_FAULTS; i++) {
        if (faults[i].active)
            continue;
        faults[i].active = 1;
        faults[i].entry = e;
        faults[i].err = err;
        faults[i].skip = skip;
        faults[i].times = times;
        faults[i].percent = percent;
        faults[i].blocking_only = blocking_only;
        return;
    }
}
