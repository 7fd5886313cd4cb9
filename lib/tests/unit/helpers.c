/*
 * helpers.c -- see helpers.h.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char plt_dir[1024];
static char extra_dirs[4][1024];
static int n_extra_dirs;

/* ---- temporary directory ------------------------------------------------- */

static void sanitize(char *s) {
    for (; *s != '\0'; s++)
        if (*s == '/' || *s == ' ')
            *s = '_';
}

static void make_temp_dir(char *out, size_t len, const char *base) {
    const char *suite = criterion_current_test != NULL
                            ? criterion_current_test->category
                            : "none";
    const char *test =
        criterion_current_test != NULL ? criterion_current_test->name : "none";
    char tmpl[1024];
    snprintf(tmpl, sizeof(tmpl), "%s/pl-unit.%.60s.%.80s.%ld.XXXXXX", base,
             suite, test, (long)getpid());
    sanitize(tmpl + strlen(base) + 1);
    cr_assert(mkdtemp(tmpl) != NULL, "mkdtemp(%s): %s", tmpl, strerror(errno));
    snprintf(out, len, "%s", tmpl);
}

void plt_setup(void) {
    /* A holder that already left must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    pl__sys_reset();
    make_temp_dir(plt_dir, sizeof(plt_dir), "/tmp");
}

const char *plt_mkdtemp_in(const char *base) {
    cr_assert(lt(int, n_extra_dirs, 4));
    make_temp_dir(extra_dirs[n_extra_dirs], sizeof(extra_dirs[0]), base);
    return extra_dirs[n_extra_dirs++];
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void plt_rmtree(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void plt_teardown(void) {
    pl__sys_reset();
    if (plt_dir[0] != '\0')
        plt_rmtree(plt_dir);
    for (int i = 0; i < n_extra_dirs; i++)
        plt_rmtree(extra_dirs[i]);
}

const char *plt_path(const char *name) {
    static char bufs[16][4200];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "%s/%s", plt_dir, name);
    return b;
}

/* ---- files --------------------------------------------------------------- */

void plt_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "fopen(%s): %s", path, strerror(errno));
    fputs(text, f);
    cr_assert(eq(int, fclose(f), 0));
}

long plt_read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return -1;
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

int plt_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int plt_dir_entries(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int plt_count_fds(void) {
    /* The directory's own descriptor is counted too, every time alike. */
    return plt_dir_entries("/proc/self/fd");
}

int plt_contains_any(const char *hay, const char *const *needles) {
    if (hay == NULL)
        return 0;
    for (; *needles != NULL; needles++)
        if (strstr(hay, *needles) != NULL)
            return 1;
    return 0;
}

/* ---- time ---------------------------------------------------------------- */

double plt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void plt_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- other processes ----------------------------------------------------- */

/* Waits for pid at most `seconds`, then kills it; returns the status or -1. */
static int reap(pid_t pid, double seconds) {
    double deadline = plt_now() + seconds;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (plt_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        plt_sleep_ms(2);
    }
}

static int decode(int status) {
    if (status == -1 || !WIFEXITED(status))
        return PLT_CHILD_FAILED;
    return (int)(signed char)(unsigned char)WEXITSTATUS(status);
}

int plt_in_child(plt_fn fn, void *arg) {
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit((unsigned char)fn(arg));
    return decode(reap(pid, 30.0));
}

static void write_byte(int fd, int v) {
    unsigned char c = (unsigned char)v;
    while (write(fd, &c, 1) < 0 && errno == EINTR)
        ;
}

/* -2 timeout / EOF, else the byte. */
static int read_byte(int fd, int timeout_ms) {
    struct pollfd p = {fd, POLLIN, 0};
    unsigned char c;
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r <= 0 || read(fd, &c, 1) != 1)
        return -2;
    return (int)(signed char)c;
}

int plt_holder_start(plt_holder_t *h, plt_fn acquire, plt_fn release, void *arg,
                     int release_after_ms) {
    int ready[2], go[2], rc;
    cr_assert(pipe(ready) == 0 && pipe(go) == 0);
    h->pid = fork();
    cr_assert(h->pid >= 0, "fork: %s", strerror(errno));
    if (h->pid == 0) {
        close(ready[0]);
        close(go[1]);
        rc = acquire(arg);
        write_byte(ready[1], rc);
        if (rc != PL_OK)
            _exit(0);
        if (release_after_ms >= 0)
            plt_sleep_ms(release_after_ms);
        else
            read_byte(go[0], 60000); /* bounded: never outlive the test */
        _exit((unsigned char)release(arg));
    }
    close(ready[1]);
    close(go[0]);
    h->ready_fd = ready[0];
    h->go_fd = go[1];
    h->timed = release_after_ms >= 0;
    rc = read_byte(h->ready_fd, 30000);
    if (rc == -2) {
        plt_holder_kill(h);
        return PLT_CHILD_FAILED;
    }
    if (rc != PL_OK) {
        reap(h->pid, 30.0);
        close(h->ready_fd);
        close(h->go_fd);
        h->pid = -1;
    }
    return rc;
}

int plt_holder_finish(plt_holder_t *h) {
    int status;
    if (h->pid <= 0)
        return PLT_CHILD_FAILED;
    if (!h->timed)
        write_byte(h->go_fd, 1);
    status = reap(h->pid, 30.0);
    close(h->ready_fd);
    close(h->go_fd);
    h->pid = -1;
    return decode(status);
}

void plt_holder_kill(plt_holder_t *h) {
    int status;
    if (h->pid <= 0)
        return;
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    close(h->ready_fd);
    close(h->go_fd);
    h->pid = -1;
}

int plt_fd_acquire(void *arg) {
    plt_fd_hold_t *a = arg;
    a->fd = open(a->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (a->fd < 0)
        return PLT_OPEN_FAILED;
    return pl_lock_fd(a->fd, a->flags, a->backend, NULL);
}

int plt_fd_release(void *arg) {
    plt_fd_hold_t *a = arg;
    int rc = pl_unlock_fd(a->fd, a->backend, NULL);
    close(a->fd);
    return rc;
}

int plt_open_kind(plt_kind_t kind, pl_lock_t **out, const char *path,
                  const pl_lock_options_t *opts) {
    switch (kind) {
    case PLT_LOCK: return pl_lock_open(out, path, opts);
    case PLT_RLOCK: return pl_rlock_open(out, path, opts);
    case PLT_TEMPORARY: return pl_temporary_lock_open(out, path, opts);
    case PLT_PIDFILE: return pl_pidfile_lock_open(out, path, opts);
    }
    return PL_EINVAL;
}

int plt_obj_acquire(void *arg) {
    plt_obj_hold_t *a = arg;
    int rc = plt_open_kind(a->kind, &a->lock, a->path, &a->opts);
    if (rc != PL_OK)
        return rc;
    return pl_lock_acquire(a->lock);
}

int plt_obj_release(void *arg) {
    plt_obj_hold_t *a = arg;
    int rc = pl_lock_release(a->lock);
    pl_lock_close(a->lock);
    return rc;
}

typedef struct try_args {
    const char *path;
    pl_backend_t backend;
    unsigned flags;
} try_args_t;

static int try_once(void *arg) {
    try_args_t *t = arg;
    int fd = open(t->path, O_RDWR | O_CLOEXEC);
    int rc;
    if (fd < 0)
        fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PL_ENOENT;
    rc = pl_lock_fd(fd, t->flags | PL_NON_BLOCKING, t->backend, NULL);
    if (rc == PL_OK)
        pl_unlock_fd(fd, t->backend, NULL);
    close(fd);
    return rc;
}

int plt_try_other_process(const char *path, pl_backend_t backend,
                          unsigned flags) {
    try_args_t t = {path, backend, flags};
    return plt_in_child(try_once, &t);
}

int plt_try_this_process(const char *path, pl_backend_t backend,
                         unsigned flags) {
    try_args_t t = {path, backend, flags};
    return try_once(&t);
}

/* ---- lock helpers -------------------------------------------------------- */

const pl_backend_t plt_backends[PLT_N_BACKENDS] = {
    PL_BACKEND_FLOCK, PL_BACKEND_LOCKF, PL_BACKEND_OFD};
const pl_backend_t plt_desc_backends[2] = {PL_BACKEND_FLOCK, PL_BACKEND_OFD};

int plt_child_acquire(void *lock) {
    return pl_lock_acquire(lock);
}
int plt_child_release(void *lock) {
    return pl_lock_release(lock);
}
int plt_child_close(void *lock) {
    return pl_lock_close(lock);
}
int plt_child_ok(void *arg) {
    (void)arg;
    return PL_OK;
}

int plt_cloexec(pl_fd_t fd) {
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0)
        return -1;
    return (flags & FD_CLOEXEC) != 0;
}

typedef struct race_shared {
    atomic_int inside, overlaps, acquired;
} race_shared_t;

typedef struct race_arg {
    race_shared_t *sh;
    plt_kind_t kind;
    const char *path;
    pl_backend_t backend;
    int iterations;
} race_arg_t;

static int race_loop(void *arg) {
    race_arg_t *r = arg;
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    int failures = 0;
    pl_lock_options_init(&o);
    o.timeout = 20;
    o.check_interval = 0.001;
    o.fail_when_locked = 0;
    o.backend = r->backend;
    if (plt_open_kind(r->kind, &lock, r->path, &o) != PL_OK)
        return 100;
    for (int i = 0; i < r->iterations; i++) {
        if (pl_lock_acquire(lock) != PL_OK) {
            failures++;
            continue;
        }
        if (atomic_fetch_add(&r->sh->inside, 1) != 0)
            atomic_fetch_add(&r->sh->overlaps, 1);
        atomic_fetch_add(&r->sh->acquired, 1);
        sched_yield();
        atomic_fetch_sub(&r->sh->inside, 1);
        if (pl_lock_release(lock) != PL_OK)
            failures++;
    }
    pl_lock_close(lock);
    return failures > 99 ? 99 : failures;
}

plt_race_t plt_race(plt_kind_t kind, const char *path, pl_backend_t backend,
                    int processes, int iterations) {
    plt_race_t res = {0, 0, 0};
    plt_holder_t h[16];
    race_shared_t *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    race_arg_t r = {sh, kind, path, backend, iterations};
    cr_assert(sh != MAP_FAILED);
    cr_assert(processes <= 16);
    atomic_init(&sh->inside, 0);
    atomic_init(&sh->overlaps, 0);
    atomic_init(&sh->acquired, 0);
    /* Each process reports "ready" at once and runs the loop as its
     * release step, so all of them run at the same time. */
    for (int k = 0; k < processes; k++)
        cr_assert(eq(int,
                     plt_holder_start(&h[k], plt_child_ok, race_loop, &r, 0),
                     PL_OK));
    for (int k = 0; k < processes; k++) {
        int rc = plt_holder_finish(&h[k]);
        res.failures += rc == PLT_CHILD_FAILED ? 1000 : rc;
    }
    res.acquired = atomic_load(&sh->acquired);
    res.overlaps = atomic_load(&sh->overlaps);
    munmap(sh, sizeof(*sh));
    return res;
}

/* ---- fault injection ----------------------------------------------------- */

pl__sys_table_t plt_real;

typedef struct fault {
    int active;
    plt_sys_t which;
    int err, skip, times;
    char match[512];
    atomic_int seen;
} fault_t;

static fault_t faults[4];
static atomic_int counts[PLT_SYS_COUNT];
static void (*before_fn[PLT_SYS_COUNT])(void *, int);
static void *before_arg[PLT_SYS_COUNT];
static char lie_path[4096];
static atomic_int lie_left;

static const char *const names[PLT_SYS_COUNT] = {
    "open",   "close",  "flock",  "fcntl",  "fstat", "stat",  "ftruncate",
    "fsync",  "unlink", "rename", "link",   "mkdir", "read",  "write",
    "statfs", "kill",   "lstat",  "linkat", "lock",  "unlock"};

const char *plt_sys_name(plt_sys_t which) {
    return names[which];
}

const char *const *plt_sys_words(plt_sys_t which) {
    static const char *const w_fcntl[] = {"fcntl", "F_SETLK", "F_OFD_SETLK",
                                          "lockf", NULL};
    static const char *const w_lock[] = {
        "flock", "fcntl", "F_SETLK", "F_OFD_SETLK", "lockf", "lock", NULL};
    static const char *const w_trunc[] = {"truncate", NULL};
    static const char *const w_unlink[] = {"unlink", "remove", NULL};
    static const char *const w_stat[] = {"stat", NULL};
    static const char *one[PLT_SYS_COUNT][2];
    switch (which) {
    case PLT_SYS_FCNTL: return w_fcntl;
    case PLT_SYS_LOCKOP:
    case PLT_SYS_UNLOCKOP: return w_lock;
    case PLT_SYS_FTRUNCATE: return w_trunc;
    case PLT_SYS_UNLINK: return w_unlink;
    case PLT_SYS_FSTAT:
    case PLT_SYS_LSTAT:
    case PLT_SYS_STAT: return w_stat;
    default:
        one[which][0] = names[which];
        one[which][1] = NULL;
        return one[which];
    }
}

void plt_sys_reset_counts(void) {
    for (int i = 0; i < PLT_SYS_COUNT; i++)
        atomic_store(&counts[i], 0);
}

int plt_sys_calls(plt_sys_t which) {
    return atomic_load(&counts[which]);
}

void plt_fault(plt_sys_t which, int err, int skip, int times,
               const char *match) {
    for (int i = 0; i < 4; i++) {
        if (!faults[i].active) {
            faults[i].which = which;
            faults[i].err = err;
            faults[i].skip = skip;
            faults[i].times = times;
            snprintf(faults[i].match, sizeof(faults[i].match), "%s",
                     match != NULL ? match : "");
            atomic_store(&faults[i].seen, 0);
            faults[i].active = 1;
            return;
        }
    }
    cr_fatal("more than 4 faults");
}

void plt_fault_clear(void) {
    for (int i = 0; i < 4; i++)
        faults[i].active = 0;
}

void plt_sys_before(plt_sys_t which, void (*fn)(void *, int), void *arg) {
    before_arg[which] = arg;
    before_fn[which] = fn;
}

void plt_stat_lie(const char *path, int times) {
    snprintf(lie_path, sizeof(lie_path), "%s", path);
    atomic_store(&lie_left, times);
}

/* Counts a call; runs the before-hook; returns the errno to fail with, or 0. */
static int enter(plt_sys_t which, const char *path) {
    int n = atomic_fetch_add(&counts[which], 1) + 1;
    int err = 0;
    if (before_fn[which] != NULL)
        before_fn[which](before_arg[which], n);
    for (int i = 0; i < 4; i++) {
        fault_t *f = &faults[i];
        int seen;
        if (!f->active || f->which != which)
            continue;
        if (f->match[0] != '\0' &&
            (path == NULL || strstr(path, f->match) == NULL))
            continue;
        seen = atomic_fetch_add(&f->seen, 1) + 1;
        if (seen > f->skip && (f->times < 0 || seen <= f->skip + f->times))
            err = f->err;
    }
    return err;
}

#define FAIL_IF(which, path)                                                   \
 do {                                                                          \
  int e_ = enter((which), (path));                                             \
  if (e_ != 0) {                                                               \
   errno = e_;                                                                 \
   return -1;                                                                  \
  }                                                                            \
 } while (0)

static int h_open(const char *path, int flags, ...) {
    int mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, int);
        va_end(ap);
    }
    FAIL_IF(PLT_SYS_OPEN, path);
    return plt_real.open(path, flags, mode);
}

static int h_close(int fd) {
    int e = enter(PLT_SYS_CLOSE, NULL);
    int r = plt_real.close(fd);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return r;
}

static int h_flock(int fd, int op) {
    FAIL_IF(PLT_SYS_FLOCK, NULL);
    if ((op & LOCK_UN) != 0)
        FAIL_IF(PLT_SYS_UNLOCKOP, NULL);
    else
        FAIL_IF(PLT_SYS_LOCKOP, NULL);
    return plt_real.flock(fd, op);
}

static int h_fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    switch (cmd) {
    case F_GETFD:
    case F_GETFL:
    case F_GETOWN:
    case F_GETSIG:
    case F_GETLEASE:
    case F_GETPIPE_SZ:
    case F_GET_SEALS:
        va_end(ap);
        FAIL_IF(PLT_SYS_FCNTL, NULL);
        return plt_real.fcntl(fd, cmd);
    case F_SETLK:
    case F_SETLKW:
    case F_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
    case F_OFD_GETLK: {
        struct flock *fl = va_arg(ap, struct flock *);
        va_end(ap);
        FAIL_IF(PLT_SYS_FCNTL, NULL);
        if (cmd != F_GETLK && cmd != F_OFD_GETLK) {
            if (fl->l_type == F_UNLCK)
                FAIL_IF(PLT_SYS_UNLOCKOP, NULL);
            else
                FAIL_IF(PLT_SYS_LOCKOP, NULL);
        }
        return plt_real.fcntl(fd, cmd, fl);
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
    case F_SETFD:
    case F_SETFL:
    case F_SETOWN:
    case F_SETSIG:
    case F_SETLEASE:
    case F_NOTIFY:
    case F_SETPIPE_SZ:
    case F_ADD_SEALS: {
        int v = va_arg(ap, int);
        va_end(ap);
        FAIL_IF(PLT_SYS_FCNTL, NULL);
        return plt_real.fcntl(fd, cmd, v);
    }
    default: {
        void *p = va_arg(ap, void *);
        va_end(ap);
        FAIL_IF(PLT_SYS_FCNTL, NULL);
        return plt_real.fcntl(fd, cmd, p);
    }
    }
}

static int h_fstat(int fd, struct stat *st) {
    FAIL_IF(PLT_SYS_FSTAT, NULL);
    return plt_real.fstat(fd, st);
}

static int h_stat(const char *path, struct stat *st) {
    int r;
    FAIL_IF(PLT_SYS_STAT, path);
    r = plt_real.stat(path, st);
    if (r == 0 && lie_path[0] != '\0' && strcmp(path, lie_path) == 0) {
        int left = atomic_load(&lie_left);
        if (left != 0) {
            if (left > 0)
                atomic_fetch_sub(&lie_left, 1);
            st->st_ino ^= 0x5a5a5a;
        }
    }
    return r;
}

static int h_ftruncate(int fd, off_t len) {
    FAIL_IF(PLT_SYS_FTRUNCATE, NULL);
    return plt_real.ftruncate(fd, len);
}

static int h_fsync(int fd) {
    FAIL_IF(PLT_SYS_FSYNC, NULL);
    return plt_real.fsync(fd);
}

static int h_unlink(const char *path) {
    FAIL_IF(PLT_SYS_UNLINK, path);
    return plt_real.unlink(path);
}

static int h_rename(const char *from, const char *to) {
    FAIL_IF(PLT_SYS_RENAME, to);
    return plt_real.rename(from, to);
}

static int h_link(const char *from, const char *to) {
    FAIL_IF(PLT_SYS_LINK, to);
    return plt_real.link(from, to);
}

static int h_mkdir(const char *path, mode_t mode) {
    FAIL_IF(PLT_SYS_MKDIR, path);
    return plt_real.mkdir(path, mode);
}

static ssize_t h_read(int fd, void *buf, size_t len) {
    FAIL_IF(PLT_SYS_READ, NULL);
    return plt_real.read(fd, buf, len);
}

static ssize_t h_write(int fd, const void *buf, size_t len) {
    FAIL_IF(PLT_SYS_WRITE, NULL);
    return plt_real.write(fd, buf, len);
}

static int h_statfs(const char *path, struct statfs *st) {
    FAIL_IF(PLT_SYS_STATFS, path);
    return plt_real.statfs(path, st);
}

static int h_kill(pid_t pid, int sig) {
    FAIL_IF(PLT_SYS_KILL, NULL);
    return plt_real.kill(pid, sig);
}

static int h_lstat(const char *path, struct stat *st) {
    FAIL_IF(PLT_SYS_LSTAT, path);
    return plt_real.lstat(path, st);
}

static int h_linkat(int fromdir, const char *from, int todir, const char *to,
                    int flags) {
    FAIL_IF(PLT_SYS_LINKAT, to);
    return plt_real.linkat(fromdir, from, todir, to, flags);
}

void plt_sys_install(void) {
    pl__sys_reset();
    plt_real = pl__sys;
    plt_fault_clear();
    plt_sys_reset_counts();
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
    pl__sys.statfs = h_statfs;
    pl__sys.kill = h_kill;
    pl__sys.lstat = h_lstat;
    pl__sys.linkat = h_linkat;
}
