/*
 * fs.c -- the POSIX platform layer apart from locking: clocks, processes,
 * randomness, and the file operations the lock kinds and open_atomic need.
 * Every system call goes through pl__sys (sys.h).
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Where the POSIX variants differ (file scope only; PORTING.md):
 *   dropping a FILE's buffer: __fpurge (glibc, musl) or fpurge (the BSDs,
 *   macOS); kernel randomness: getrandom (Linux, FreeBSD 12+) or getentropy
 *   (macOS, at most 256 bytes a call). */
#if defined(__linux__)
# include <stdio_ext.h>
# define PL_FPURGE(fp) __fpurge(fp)
#else
# define PL_FPURGE(fp) fpurge(fp)
#endif
#if defined(__APPLE__)
static ssize_t os_getrandom(void *buf, size_t len) {
    size_t n = len < 256 ? len : 256;
    return getentropy(buf, n) == 0 ? (ssize_t)n : -1;
}
#else
static ssize_t os_getrandom(void *buf, size_t len) {
    return getrandom(buf, len, GRND_NONBLOCK);
}
#endif

#define OPEN_FLAGS_BASE (O_CLOEXEC | O_NOCTTY)

/* ---- time, processes, randomness ----------------------------------------- */

int64_t pl__os_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double pl__os_monotonic(void) {
    return (double)pl__os_monotonic_ns() / 1e9;
}

/*
 * getpid() is a system call that the generic layer makes on every acquire
 * and release (fork detection), a measurable share of an uncontended cycle,
 * so the PID is cached.  A child must never see the parent's value, and no
 * single mechanism guarantees that everywhere, so the cache is cleared in
 * the child twice over:
 *
 *   - it lives in a page marked MADV_WIPEONFORK, which the kernel zeroes in
 *     every child however it was created (fork, _Fork, a raw clone), and
 *   - a pthread_atfork child handler zeroes it after every fork() made
 *     through libc.
 *
 * The atfork handler is not redundant: qemu-user accepts MADV_WIPEONFORK
 * and ignores it (a forked aarch64 or s390x child under emulation saw the
 * parent's PID), and some sandboxes may do the same.  Where the kernel has
 * no MADV_WIPEONFORK (Linux < 4.14, the BSDs, macOS) nothing is cached:
 * atfork handlers alone miss _Fork() and raw clones.
 */
#ifdef MADV_WIPEONFORK
# define PL_MADV_WIPEONFORK MADV_WIPEONFORK
#else
# define PL_MADV_WIPEONFORK (-1)
#endif

static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static _Atomic long *pid_cache;

static void pid_cache_clear_in_child(void) {
    if (pid_cache != NULL)
        atomic_store_explicit(pid_cache, 0, memory_order_relaxed);
}

static void pid_cache_init(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *p;

    if (PL_MADV_WIPEONFORK < 0 || page <= 0)
        return;
    p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    if (pl__sys.madvise(p, (size_t)page, PL_MADV_WIPEONFORK) != 0 ||
        pthread_atfork(NULL, NULL, pid_cache_clear_in_child) != 0) {
        munmap(p, (size_t)page);
        return;
    }
    pid_cache = p;
}

long pl__os_getpid(void) {
    long pid;
    pthread_once(&pid_once, pid_cache_init);
    if (pid_cache == NULL)
        return (long)getpid();
    pid = atomic_load_explicit(pid_cache, memory_order_relaxed);
    if (pid == 0) {
        pid = (long)getpid();
        atomic_store_explicit(pid_cache, pid, memory_order_relaxed);
    }
    return pid;
}

int pl__os_pid_alive(long pid) {
    if (pid <= 0 || (long)(pid_t)pid != pid)
        return -1;
    if (pl__sys.kill((pid_t)pid, 0) == 0)
        return 1;
    if (errno == ESRCH)
        return 0;
    return errno == EPERM ? 1 : -1; /* EPERM: exists, another user's */
}

/* getrandom/getentropy, else a splitmix64 stream seeded from time, pid and a
 * counter. */
int pl__os_random(void *buf, size_t len) {
    static atomic_uint_fast64_t counter;
    unsigned char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = os_getrandom(p + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    while (got < len) {
        uint64_t z = (uint64_t)pl__os_monotonic_ns() ^
                     ((uint64_t)getpid() << 32) ^
                     (uint64_t)atomic_fetch_add(&counter, 0x9E3779B97F4A7C15u);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        z ^= z >> 31;
        for (int i = 0; i < 8 && got < len; i++, z >>= 8)
            p[got++] = (unsigned char)z;
    }
    return 0;
}

/* Python's tempfile.gettempdir() order, minus its writability probing, so C
 * and Python semaphores meet in the same directory. */
const char *pl__os_tmpdir(void) {
    static const char *const vars[] = {"TMPDIR", "TEMP", "TMP"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return v;
    }
    return "/tmp";
}

void pl__os_sleep(double seconds) {
    struct timespec ts;
    if (!(seconds > 0))
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int pl__os_hostname(char *buf, size_t len) {
    if (len == 0)
        return PL_EINVAL;
    if (gethostname(buf, len) != 0) {
        buf[0] = '\0';
        return pl__code_from_os(errno);
    }
    buf[len - 1] = '\0';
    return PL_OK;
}

/* strerror_r is GNU (char *) or XSI (int) depending on the libc. */
static inline const char *strerror_xsi(int rc, char *buf) {
    return rc == 0 ? buf : NULL;
}
static inline const char *strerror_gnu(char *s, char *buf) {
    (void)buf;
    return s;
}
#define STRERROR_PICK(r, buf)                                                  \
 _Generic((r), int : strerror_xsi, default : strerror_gnu)((r), (buf))

void pl__os_strerror(int os_error, char *buf, size_t len) {
    const char *s;
    if (len == 0)
        return;
    buf[0] = '\0';
    s = STRERROR_PICK(strerror_r(os_error, buf, len), buf);
    if (s == NULL || s[0] == '\0')
        snprintf(buf, len, "error %d", os_error);
    else if (s != buf)
        snprintf(buf, len, "%s", s);
}

/* ---- files --------------------------------------------------------------- */

static int os_fail(pl_error_t *err, int e, const char *what, const char *path) {
    return pl__error_set(err, pl__code_from_os(e), e, "%s(%s)", what, path);
}

/* open(2) retried on EINTR (FIFOs and some network filesystems). */
static int open_retry(const char *path, int flags, mode_t mode) {
    int fd;
    do
        fd = pl__sys.open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/*
 * The "w" modes are opened without O_TRUNC and without O_APPEND: a contender
 * that loses must not truncate the holder's data, and once truncated
 * (pl__os_truncate_after_lock) positioned writes behave as with 'w'.
 */
static int mode_flags(const char *mode) {
    int plus = mode[1] == '+';
    switch (mode[0]) {
    case 'r': return plus ? O_RDWR : O_RDONLY;
    case 'a': return (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    default: return (plus ? O_RDWR : O_WRONLY) | O_CREAT; /* 'w' */
    }
}

/* O_RDONLY opens a directory where the writable modes get EISDIR; Python's
 * open() refuses it too, so mode "r" checks (one fstat, that mode only). */
static int is_dir_fd(int fd) {
    struct stat st;
    return pl__sys.fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int pl__os_open_lockfile(const char *path, const char *mode, unsigned perms,
                         pl_fd_t *out, pl_error_t *err) {
    int fd =
        open_retry(path, mode_flags(mode) | OPEN_FLAGS_BASE, (mode_t)perms);
    if (fd < 0)
        return os_fail(err, errno, "open", path);
    if (mode[0] == 'r' && mode[1] != '+' && is_dir_fd(fd)) {
        pl__sys.close(fd);
        return os_fail(err, EISDIR, "open", path);
    }
    *out = (pl_fd_t)fd;
    return PL_OK;
}

int pl__os_close(pl_fd_t fd, pl_error_t *err) {
    /* Never retry close: Linux frees the descriptor even on EINTR. */
    if (pl__sys.close((int)fd) != 0 && errno != EINTR)
        return pl__error_set(err, pl__code_from_os(errno), errno, "close(%d)",
                             (int)fd);
    return PL_OK;
}

/* The descriptor was opened without O_APPEND (see mode_flags), so only the
 * truncation is left to do. */
int pl__os_truncate_after_lock(pl_fd_t fd, pl_error_t *err) {
    int rc;
    do
        rc = pl__sys.ftruncate((int)fd, 0);
    while (rc != 0 && errno == EINTR);
    if (rc != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno,
                             "ftruncate(%d)", (int)fd);
    return PL_OK;
}

/* ESTALE: network and FUSE filesystems report an unlinked file that way. */
static int is_gone(int e) {
    return e == ENOENT || e == ENOTDIR || e == ESTALE;
}

int pl__os_fd_matches_path(pl_fd_t fd, const char *path, pl_error_t *err) {
    struct stat a, b;
    if (pl__sys.fstat((int)fd, &a) != 0)
        return is_gone(errno) ? 0 : os_fail(err, errno, "fstat", path);
    if (pl__sys.stat(path, &b) != 0)
        return is_gone(errno) ? 0 : os_fail(err, errno, "stat", path);
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int pl__os_unlink(const char *path, pl_error_t *err) {
    if (pl__sys.unlink(path) != 0)
        return os_fail(err, errno, "unlink", path);
    return PL_OK;
}

int pl__os_exists(const char *path) {
    struct stat st;
    return pl__sys.stat(path, &st) == 0 ||
           (errno != ENOENT && errno != ENOTDIR);
}

int pl__os_fsync(pl_fd_t fd, const char *path, pl_error_t *err) {
    int rc;
    do
        rc = pl__sys.fsync((int)fd);
    while (rc != 0 && errno == EINTR);
    /* EINVAL/ENOTSUP: the file cannot be synced (pipes, some FUSE fs). */
    if (rc != 0 && errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP)
        return os_fail(err, errno, "fsync", path);
    return PL_OK;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = pl__sys.write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int is_dir(const char *path) {
    struct stat st;
    return pl__sys.stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * mkdir -p of path's parent directory.  Walks forward creating each
 * component; EEXIST is fine (another process may be doing the same).
 */
int pl__os_mkdirs_parent(const char *path, pl_error_t *err) {
    size_t n = strlen(path);
    char *dir = malloc(n + 1);
    int rc = PL_OK;

    if (dir == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "mkdir(%s)", path);
    memcpy(dir, path, n + 1);
    while (n > 0 && dir[n - 1] != '/')
        n--;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    dir[n] = '\0';
    if (n == 0 || is_dir(dir))
        n = 0;
    for (char *p = dir + 1; n > 0 && rc == PL_OK; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (pl__sys.mkdir(dir, 0777) != 0 && errno != EEXIST && !is_dir(dir))
            rc = os_fail(err, errno, "mkdir", dir);
        *p = c;
        if (c == '\0')
            break;
    }
    free(dir);
    return rc;
}

/*
 * Creates "<dir>/.<base>.<12 hex>.tmp" next to path with O_EXCL, mode
 * perms & ~umask.  *tmp_out is malloc'd.  Retries a few names on EEXIST.
 */
int pl__os_create_temp(const char *path, unsigned perms, char **tmp_out,
                       pl_fd_t *fd_out, pl_error_t *err) {
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    int fd = -1, e = 0;

    if (tmp == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "temporary file for %s", path);
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        pl__os_random(r, sizeof(r));
        snprintf(tmp, cap, "%.*s.%s.%02x%02x%02x%02x%02x%02x.tmp", (int)dirlen,
                 path, path + dirlen, r[0], r[1], r[2], r[3], r[4], r[5]);
        fd = open_retry(tmp, O_RDWR | O_CREAT | O_EXCL | OPEN_FLAGS_BASE,
                        (mode_t)perms);
        if (fd >= 0 || (e = errno) != EEXIST)
            break;
    }
    if (fd < 0) {
        int rc = os_fail(err, e, "open", tmp);
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    *fd_out = (pl_fd_t)fd;
    return PL_OK;
}

/*
 * Publishes tmp as path without ever replacing an existing path: link(2)
 * refuses an existing destination atomically.  Where hard links are not
 * supported, falls back to check-then-rename (a small race, as
 * portalocker 4.1.1+).  On success tmp is gone; on failure it is kept.
 */
int pl__os_publish_noreplace(const char *tmp, const char *path,
                             pl_error_t *err) {
    if (pl__sys.link(tmp, path) == 0) {
        pl__sys.unlink(tmp);
        return PL_OK;
    }
    int e = errno;
    if (e == EEXIST)
        return pl__error_set(err, PL_EEXIST, e,
                             "%s appeared meanwhile; data kept in %s", path,
                             tmp);
    if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != EXDEV &&
        e != ENOSYS && e != EMLINK)
        return pl__error_set(err, pl__code_from_os(e), e,
                             "link(%s, %s); data kept in %s", tmp, path, tmp);
    if (pl__os_exists(path))
        return pl__error_set(err, PL_EEXIST, EEXIST,
                             "%s appeared meanwhile; data kept in %s", path,
                             tmp);
    if (pl__sys.rename(tmp, path) != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno,
                             "rename(%s, %s); data kept in %s", tmp, path, tmp);
    return PL_OK;
}

/* Temp file in the same directory + write + fsync + rename over path. */
int pl__os_write_file_atomic(const char *path, const char *text,
                             pl_error_t *err) {
    char *tmp = NULL;
    pl_fd_t fd;
    int rc;

    if ((rc = pl__os_create_temp(path, 0666, &tmp, &fd, err)) != PL_OK)
        return rc;
    if (write_all((int)fd, text, strlen(text)) != 0)
        rc = os_fail(err, errno, "write", tmp);
    else
        rc = pl__os_fsync(fd, tmp, err);
    if (pl__sys.close((int)fd) != 0 && rc == PL_OK && errno != EINTR)
        rc = os_fail(err, errno, "close", tmp);
    if (rc == PL_OK && pl__sys.rename(tmp, path) != 0)
        rc = pl__error_set(err, pl__code_from_os(errno), errno,
                           "rename(%s, %s)", tmp, path);
    if (rc != PL_OK)
        pl__sys.unlink(tmp);
    free(tmp);
    return rc;
}

int pl__os_read_file(const char *path, char *buf, size_t len, size_t *got,
                     pl_error_t *err) {
    size_t n = 0;
    int fd, rc = PL_OK;

    if (len == 0)
        return pl__error_set(err, PL_EINVAL, 0, "read(%s): no buffer", path);
    fd = open_retry(path, O_RDONLY | OPEN_FLAGS_BASE, 0);
    if (fd < 0)
        return os_fail(err, errno, "open", path);
    while (n + 1 < len) {
        ssize_t r = pl__sys.read(fd, buf + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = os_fail(err, errno, "read", path);
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    pl__sys.close(fd);
    buf[n] = '\0';
    if (got != NULL)
        *got = n;
    return rc;
}

FILE *pl__os_fdopen(pl_fd_t fd, const char *mode) {
    return fdopen((int)fd, mode);
}

void pl__os_fclose_discard(FILE *fp) {
    PL_FPURGE(fp);
    fclose(fp);
}

int pl__os_abspath(const char *path, char **out, pl_error_t *err) {
    char cwd[PATH_MAX];
    size_t n, m;

    *out = NULL;
    if (path[0] == '/') {
        n = strlen(path);
        if ((*out = malloc(n + 1)) == NULL)
            return pl__error_set(err, PL_ENOMEM, 0, "abspath(%s)", path);
        memcpy(*out, path, n + 1);
        return PL_OK;
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        int e = errno;
        return pl__error_set(err, pl__code_from_os(e), e, "getcwd for %s",
                             path);
    }
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    n = strlen(cwd);
    m = strlen(path);
    if ((*out = malloc(n + m + 2)) == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "abspath(%s)", path);
    memcpy(*out, cwd, n);
    (*out)[n] = '/';
    memcpy(*out + n + 1, path, m + 1);
    return PL_OK;
}
