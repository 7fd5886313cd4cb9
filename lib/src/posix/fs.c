/*
 * fs.c -- the POSIX platform layer apart from locking: clocks, processes,
 * randomness, and the file operations the lock kinds and open_atomic need.
 * Every system call goes through pl__sys (sys.h).
 */
#include "internal.h"
#include "posix/platform.h"
#include "posix/sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define OPEN_FLAGS_BASE (O_CLOEXEC | O_NOCTTY)

/* Anonymous files (Linux >= 3.11); 0 where the system has none (macOS, the
 * BSDs): open_atomic then always takes its named fallback. */
#ifdef O_TMPFILE
# define PL_O_TMPFILE O_TMPFILE
#else
# define PL_O_TMPFILE 0
#endif

static int open_retry(const char *path, int flags, mode_t mode);

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

/*
 * A zombie (exited, not yet reaped) still answers kill(pid, 0), but it holds
 * nothing: /proc/PID/stat's state field ('Z', or 'X' while it is being
 * reaped) tells.  The state follows the last ')' (the command name may hold
 * any character).  Without /proc the kill() answer stands.
 */
static int pid_is_zombie(long pid) {
    char path[64], buf[512], *p;
    ssize_t n;
    size_t got = 0;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    fd = open_retry(path, O_RDONLY | OPEN_FLAGS_BASE, 0);
    if (fd < 0)
        return 0;
    while (got + 1 < sizeof(buf) &&
           ((n = pl__sys.read(fd, buf + got, sizeof(buf) - 1 - got)) > 0 ||
            (n < 0 && errno == EINTR)))
        if (n > 0)
            got += (size_t)n;
    pl__sys.close(fd);
    buf[got] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return 0;
    return p[2] == 'Z' || p[2] == 'X';
}

int pl__os_pid_alive(long pid) {
    int alive;
    if (pid <= 0 || (long)(pid_t)pid != pid)
        return -1;
    if (pl__sys.kill((pid_t)pid, 0) == 0)
        alive = 1;
    else if (errno == ESRCH)
        return 0;
    else if (errno == EPERM) /* exists, another user's */
        alive = 1;
    else
        return -1;
    return alive == 1 && pid_is_zombie(pid) ? 0 : alive;
}

/* The inode of /proc/self/ns/pid names the PID namespace (namespaces(7)). */
int pl__os_pid_namespace(char *buf, size_t len) {
    struct stat st;
    if (len == 0)
        return PL_EINVAL;
    buf[0] = '\0';
    if (pl__sys.stat("/proc/self/ns/pid", &st) != 0)
        return pl__code_from_os(errno);
    snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    return PL_OK;
}

/* getrandom/getentropy (fs_*.c), else a splitmix64 stream seeded from time, pid
 * and a counter. */
int pl__os_random(void *buf, size_t len) {
    static atomic_uint_fast64_t counter;
    unsigned char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = pl__posix_random_bytes(p + got, len - got);
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

/* ---- errors -------------------------------------------------------------- */

int pl__code_from_os(int os_error) {
    switch (os_error) {
    case 0: return PL_OK;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return PL_ELOCKED;
    case ENOENT:
    case ENOTDIR: return PL_ENOENT;
    case EACCES:
    case EPERM: return PL_EACCES;
    case EISDIR: return PL_EISDIR;
    case ENAMETOOLONG: return PL_ENAMETOOLONG;
    case EROFS: return PL_EROFS;
    case EEXIST: return PL_EEXIST;
    case ENOMEM: return PL_ENOMEM;
    case ENOLCK:
    case EOPNOTSUPP:
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
    case ENOSYS: return PL_ENOTSUP;
    case ETIMEDOUT: return PL_ETIMEDOUT;
    default: return PL_EOS;
    }
}

int pl__os_crt_error(void) {
    return errno;
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

/* "FIFO", "socket"... for a message about a file that is not regular. */
static const char *file_type_name(mode_t m) {
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "not a regular file";
}

/* PL_EISDIR for a directory, PL_EINVAL for any other non-regular file. */
static int not_regular(pl_error_t *err, mode_t m, const char *path) {
    if (S_ISDIR(m))
        return pl__error_set(err, PL_EISDIR, EISDIR, "open(%s)", path);
    return pl__error_set(err, PL_EINVAL, 0,
                         "%s is %s, not a regular file: refusing to open it",
                         path, file_type_name(m));
}

/*
 * Opens path non-blocking and keeps it only if it is a regular file.  A
 * blocking open() of a FIFO waits for a peer forever, whatever timeout the
 * caller has; with O_NONBLOCK it returns at once (or fails with ENXIO for a
 * write-only open without a reader, or a socket), and the fstat refuses it.
 * flags must not contain O_NONBLOCK.
 *
 * O_NONBLOCK stays set: on a regular file it changes nothing for read,
 * write, ftruncate, fsync or any lock (Linux, the BSDs, macOS; Linux's
 * mandatory locking, the one thing that honoured it, is gone since 5.15),
 * and clearing it costs a system call in every Lock cycle (the cycle is
 * four calls without the check: 1.15x for the fstat alone).  It is cleared
 * when the descriptor is handed to the caller (pl__os_fd_handout).
 */
static int open_regular(const char *path, int flags, mode_t mode, int *out,
                        pl_error_t *err) {
    struct stat st;
    int fd = open_retry(path, flags | O_NONBLOCK, mode), e;

    if (fd < 0) {
        e = errno;
        if (e == ENXIO && pl__sys.stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return not_regular(err, st.st_mode, path);
        return os_fail(err, e, "open", path);
    }
    if (pl__sys.fstat(fd, &st) != 0) {
        e = errno;
        pl__sys.close(fd);
        return os_fail(err, e, "fstat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        pl__sys.close(fd);
        return not_regular(err, st.st_mode, path);
    }
    *out = fd;
    return PL_OK;
}

void pl__os_fd_handout(pl_fd_t fd) {
    int fl = pl__sys.fcntl((int)fd, F_GETFL);
    /* F_SETFL only changes status flags; the access mode stays. */
    if (fl >= 0 && (fl & O_NONBLOCK) != 0)
        pl__sys.fcntl((int)fd, F_SETFL, fl & ~O_NONBLOCK);
}

int pl__os_open_lockfile(const char *path, const char *mode, unsigned perms,
                         pl_fd_t *out, pl_error_t *err) {
    int fd = -1;
    int rc = open_regular(path, mode_flags(mode) | OPEN_FLAGS_BASE,
                          (mode_t)perms, &fd, err);
    if (rc != PL_OK)
        return rc;
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

int pl__os_fd_unlinked(pl_fd_t fd) {
    struct stat st;
    if (pl__sys.fstat((int)fd, &st) != 0)
        return -1;
    return st.st_nlink == 0;
}

int pl__os_unlink(const char *path, pl_error_t *err) {
    if (pl__sys.unlink(path) != 0)
        return os_fail(err, errno, "unlink", path);
    return PL_OK;
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

/* fd was opened with O_APPEND (mode "a"): after the truncation the write
 * lands at offset 0. */
int pl__os_fd_set_content(pl_fd_t fd, const char *text, pl_error_t *err) {
    int rc;
    do
        rc = pl__sys.ftruncate((int)fd, 0);
    while (rc != 0 && errno == EINTR);
    if (rc != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno,
                             "ftruncate(%d)", (int)fd);
    if (write_all((int)fd, text, strlen(text)) != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno, "write(%d)",
                             (int)fd);
    return PL_OK;
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

/* ---- temporary files, publication, durability ----------------------------
 *
 * open_atomic and the PID file write a temporary file beside the final name
 * and then publish it.  What may be left behind if the process dies:
 *
 *   - open_atomic uses an anonymous file (O_TMPFILE) where the kernel and
 *     the filesystem support it: it has no name until linkat() publishes it
 *     in one step, so a crash at any point leaves either nothing or the
 *     complete file with one link.
 *   - Elsewhere, and for the PID file (which must replace: rename), the
 *     temporary file is named "<dir>/.<base>.<12 hex>.tmp" and its creator
 *     holds a flock() on it until the name is gone.  A name that nobody
 *     holds locked and that is older than TEMP_STALE_AGE seconds, or that
 *     is a second link of the published file (a crash between link and
 *     unlink), was left by a dead process: pl__os_clean_temps removes it.
 *     The age rule covers the microseconds between the creator's open and
 *     its flock.
 *
 * Every publication ends with an fsync of the directory, so the new name
 * survives a power loss once the call returns.
 */

#define TEMP_HEX       12 /* random hex digits in a temporary name */
#define TEMP_STALE_AGE 10 /* seconds; see above */
/* A temporary name is "." + base + "." + TEMP_HEX hex + ".tmp" or ".kept";
 * base is cut so that the whole stays within PL__NAME_MAX. */
#define TEMP_DECOR (1 + 1 + TEMP_HEX + 5)

/* Where path's last component starts, and how much of it a temporary name
 * keeps. */
static void temp_split(const char *path, size_t *dirlen, size_t *keep) {
    const char *slash = strrchr(path, '/');
    size_t blen;
    *dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    blen = strlen(path + *dirlen);
    *keep = blen > PL__NAME_MAX - TEMP_DECOR ? PL__NAME_MAX - TEMP_DECOR : blen;
}

/* A fresh "<dir>/.<base>.<hex>.<suffix>" for path; NULL if out of memory. */
static char *temp_name(const char *path, const char *suffix) {
    size_t dirlen, keep, cap = strlen(path) + TEMP_DECOR + 8;
    unsigned char r[TEMP_HEX / 2];
    char *tmp = malloc(cap), *p;

    if (tmp == NULL)
        return NULL;
    temp_split(path, &dirlen, &keep);
    pl__os_random(r, sizeof(r));
    p = tmp + snprintf(tmp, cap, "%.*s.%.*s.", (int)dirlen, path, (int)keep,
                       path + dirlen);
    for (size_t i = 0; i < sizeof(r); i++)
        p += snprintf(p, 3, "%02x", r[i]);
    snprintf(p, (size_t)(tmp + cap - p), ".%s", suffix);
    return tmp;
}

/* path's directory ("." for a bare name); malloc'd, NULL if out of memory. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir == NULL)
        return NULL;
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    return dir;
}

/* Marks a named temporary file as in use by this process (see above).  A
 * cleaner holds the lock only for an instant, so a few tries are enough;
 * where flock does not work at all the file stays unmarked and no cleaner
 * can lock it either, so none removes it. */
static void temp_mark(int fd) {
    for (int i = 0; i < 50; i++) {
        if (pl__sys.flock(fd, LOCK_EX | LOCK_NB) == 0 ||
            (errno != EWOULDBLOCK && errno != EINTR))
            return;
        pl__os_sleep(0.001);
    }
}

/* Creates a new named temporary file beside path (O_EXCL, perms & ~umask),
 * marked in use if mark is set. */
static int create_named(const char *path, unsigned perms, int mark,
                        char **tmp_out, int *fd_out, pl_error_t *err) {
    char *tmp = NULL;
    int fd = -1, e = 0;

    for (int attempt = 0; attempt < 16; attempt++) {
        free(tmp);
        if ((tmp = temp_name(path, "tmp")) == NULL)
            return pl__error_set(err, PL_ENOMEM, 0, "temporary file for %s",
                                 path);
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
    if (mark)
        temp_mark(fd);
    *tmp_out = tmp;
    *fd_out = fd;
    return PL_OK;
}

int pl__os_create_temp(const char *path, unsigned perms, char **tmp_out,
                       pl_fd_t *fd_out, pl_error_t *err) {
    int fd = -1;
    int rc = create_named(path, perms, 0, tmp_out, &fd, err);
    if (rc == PL_OK)
        *fd_out = (pl_fd_t)fd;
    return rc;
}

/* fsync of path's directory, so that a new or removed name in it survives
 * a power loss.  EINVAL/ENOTSUP (directories that cannot be synced) are not
 * errors. */
static int sync_dir(const char *path, pl_error_t *err) {
    char *dir = dir_of(path);
    int fd, rc = PL_OK;

    if (dir == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "fsync(directory of %s)", path);
    fd = open_retry(dir, O_RDONLY | O_DIRECTORY | OPEN_FLAGS_BASE, 0);
    if (fd < 0)
        rc = os_fail(err, errno, "open", dir);
    else {
        rc = pl__os_fsync((pl_fd_t)fd, dir, err);
        pl__sys.close(fd);
    }
    free(dir);
    return rc;
}

int pl__os_check_absent(const char *path, pl_error_t *err) {
    struct stat st;
    if (pl__sys.lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return pl__error_set(err, PL_EEXIST, EEXIST,
                                 "%s is a symbolic link (dangling or not): "
                                 "refusing to publish through it",
                                 path);
        return pl__error_set(err, PL_EEXIST, EEXIST, "%s: file already exists",
                             path);
    }
    if (errno == ENOENT)
        return PL_OK;
    return os_fail(err, errno, "lstat", path);
}

/* "/proc/self/fd/N": the name through which linkat() publishes an
 * anonymous file without privileges. */
static void proc_fd_path(int fd, char *buf, size_t len) {
    snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int pl__os_atomic_create(const char *path, unsigned perms, char **tmp_out,
                         pl_fd_t *fd_out, pl_error_t *err) {
    char *dir = dir_of(path), proc[64];
    struct stat st;
    int fd = -1, rc;

    *tmp_out = NULL;
    if (dir == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "temporary file for %s", path);
    /* EOPNOTSUPP (filesystem), EISDIR (kernel before 3.11): not there, and
     * any other failure gets its proper error from the named fallback. */
    if (PL_O_TMPFILE != 0)
        fd = open_retry(dir, PL_O_TMPFILE | O_RDWR | OPEN_FLAGS_BASE,
                        (mode_t)perms);
    free(dir);
    if (fd >= 0) {
        proc_fd_path(fd, proc, sizeof(proc));
        if (pl__sys.stat(proc, &st) == 0) {
            *fd_out = (pl_fd_t)fd;
            return PL_OK;
        }
        pl__sys.close(fd); /* no /proc: it could never get a name */
    }
    rc = create_named(path, perms, 1, tmp_out, &fd, err);
    if (rc == PL_OK)
        *fd_out = (pl_fd_t)fd;
    return rc;
}

/* Gives the data of a publication that failed a name of its own,
 * "<dir>/.<base>.<hex>.kept" (never touched by the cleaner), in *kept.  fd
 * is the anonymous file when tmp is NULL.  Returns 0 on success. */
static int keep_data(int fd, const char *tmp, const char *path, char **kept) {
    char proc[64];
    *kept = NULL;
    for (int attempt = 0; attempt < 16; attempt++) {
        char *name = temp_name(path, "kept");
        int rc;
        if (name == NULL)
            return -1;
        if (tmp == NULL) {
            proc_fd_path(fd, proc, sizeof(proc));
            rc = pl__sys.linkat(AT_FDCWD, proc, AT_FDCWD, name,
                                AT_SYMLINK_FOLLOW);
        } else {
            rc = pl__sys.rename(tmp, name);
        }
        if (rc == 0) {
            *kept = name;
            return 0;
        }
        free(name);
        if (errno != EEXIST)
            break;
    }
    return -1;
}

/* A publication failed with (code, e, what): keep the data and say where. */
static int publish_failed(int fd, const char *tmp, const char *path, int code,
                          int e, const char *what, char **kept,
                          pl_error_t *err) {
    if (keep_data(fd, tmp, path, kept) == 0) {
        sync_dir(path, NULL);
        if (code == PL_EEXIST)
            return pl__error_set(err, code, e,
                                 "%s appeared meanwhile; data kept in %s", path,
                                 *kept);
        return pl__error_set(err, code, e, "%s(%s); data kept in %s", what,
                             path, *kept);
    }
    if (tmp != NULL) /* still under its temporary name */
        return pl__error_set(err, code, e, "%s(%s); data kept in %s", what,
                             path, tmp);
    return pl__error_set(err, code, e, "%s(%s); the data could not be kept",
                         what, path);
}

/*
 * Publishes without ever replacing path.  Anonymous file: linkat() of its
 * /proc/self/fd name, which refuses an existing destination atomically.
 * Named file: link(2), the same guarantee, then the temporary name goes
 * (a crash in between leaves a second link that the cleaner removes);
 * where hard links are not supported, check-then-rename (a small race, as
 * portalocker 4.1.1+).  Then the directory is synced.
 */
int pl__os_atomic_publish(pl_fd_t fd, const char *tmp, const char *path,
                          char **kept, pl_error_t *err) {
    char proc[64];
    int rc, e;

    *kept = NULL;
    if (tmp == NULL) {
        proc_fd_path((int)fd, proc, sizeof(proc));
        rc = pl__sys.linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
    } else {
        rc = pl__sys.link(tmp, path);
    }
    e = rc == 0 ? 0 : errno;
    if (rc != 0 && tmp != NULL &&
        (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EXDEV ||
         e == ENOSYS || e == EMLINK)) {
        /* No hard links here. */
        if ((rc = pl__os_check_absent(path, err)) != PL_OK) {
            if (rc != PL_EEXIST)
                return rc;
            return publish_failed((int)fd, tmp, path, PL_EEXIST, EEXIST,
                                  "rename", kept, err);
        }
        if (pl__sys.rename(tmp, path) != 0) {
            e = errno;
            return publish_failed((int)fd, tmp, path, pl__code_from_os(e), e,
                                  "rename", kept, err);
        }
        return sync_dir(path, err);
    }
    if (rc != 0)
        return publish_failed((int)fd, tmp, path, pl__code_from_os(e), e,
                              tmp == NULL ? "linkat" : "link", kept, err);
    if (tmp != NULL && pl__sys.unlink(tmp) != 0 && errno != ENOENT) {
        /* Published; the second name is only clutter. */
        e = errno;
        sync_dir(path, NULL);
        return pl__error_set(err, pl__code_from_os(e), e,
                             "%s published, but unlink(%s) failed", path, tmp);
    }
    return sync_dir(path, err);
}

/* 1 if name is "." + prefix + "." + TEMP_HEX hex digits + ".tmp". */
static int is_temp_of(const char *name, const char *prefix, size_t plen) {
    size_t n = strlen(name);
    if (n != 1 + plen + 1 + TEMP_HEX + 4 || name[0] != '.' ||
        memcmp(name + 1, prefix, plen) != 0 || name[1 + plen] != '.' ||
        strcmp(name + n - 4, ".tmp") != 0)
        return 0;
    for (size_t i = 2 + plen; i < 2 + plen + TEMP_HEX; i++)
        if (!((name[i] >= '0' && name[i] <= '9') ||
              (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

/* Removes one candidate if it is a leftover (see the top of this part). */
static void clean_one(const char *full, const struct stat *target, time_t now) {
    struct stat st;
    int fd = open_retry(
        full, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | OPEN_FLAGS_BASE, 0);
    if (fd < 0)
        return;
    if (pl__sys.fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        pl__sys.flock(fd, LOCK_EX | LOCK_NB) == 0) {
        int second_link = target != NULL && st.st_dev == target->st_dev &&
                          st.st_ino == target->st_ino;
        int old = now - st.st_mtime >= TEMP_STALE_AGE;
        /* Still this file under that name (never someone's new one). */
        if ((second_link || old) &&
            pl__os_fd_matches_path((pl_fd_t)fd, full, NULL) == 1)
            pl__sys.unlink(full);
    }
    pl__sys.close(fd);
}

void pl__os_clean_temps(const char *path) {
    size_t dirlen, keep;
    struct stat target;
    struct dirent *ent;
    char *dir = dir_of(path), *full;
    int have_target, dfd;
    time_t now = time(NULL);
    DIR *d;

    if (dir == NULL)
        return;
    dfd = open_retry(dir, O_RDONLY | O_DIRECTORY | OPEN_FLAGS_BASE, 0);
    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0)
            pl__sys.close(dfd);
        free(dir);
        return;
    }
    temp_split(path, &dirlen, &keep);
    have_target = pl__sys.lstat(path, &target) == 0;
    full = malloc(strlen(dir) + 1 + PL__NAME_MAX + 1);
    while (full != NULL && (ent = readdir(d)) != NULL) {
        if (!is_temp_of(ent->d_name, path + dirlen, keep))
            continue;
        sprintf(full, "%s/%s", dir, ent->d_name);
        clean_one(full, have_target ? &target : NULL, now);
    }
    free(full);
    closedir(d);
    free(dir);
}

/*
 * Replaces path's content: readers see the old content, no file, or the
 * complete new one, never a partial file; durable on return.  For a file
 * only its writer changes (the PID file, written under the sidecar lock).
 *
 * Where O_TMPFILE works: an anonymous file, written and synced, then
 * linkat() under path, after removing the old path if there is one.  A
 * process killed at any point leaves the old file, none, or the new one,
 * and no temporary name.  Elsewhere: a marked named temporary file renamed
 * over path (a kill before the rename leaves the temporary file for
 * pl__os_clean_temps).
 */
int pl__os_write_file_atomic(const char *path, const char *text,
                             pl_error_t *err) {
    char *tmp = NULL, proc[64];
    pl_fd_t pfd;
    int fd = -1, rc;

    if ((rc = pl__os_atomic_create(path, 0666, &tmp, &pfd, err)) != PL_OK)
        return rc;
    fd = (int)pfd;
    if (write_all(fd, text, strlen(text)) != 0)
        rc = os_fail(err, errno, "write", tmp != NULL ? tmp : path);
    else
        rc = pl__os_fsync(pfd, tmp != NULL ? tmp : path, err);
    if (rc == PL_OK && tmp != NULL && pl__sys.rename(tmp, path) != 0)
        rc = pl__error_set(err, pl__code_from_os(errno), errno,
                           "rename(%s, %s)", tmp, path);
    if (rc == PL_OK && tmp == NULL) {
        proc_fd_path(fd, proc, sizeof(proc));
        for (int attempt = 0;; attempt++) {
            if (pl__sys.linkat(AT_FDCWD, proc, AT_FDCWD, path,
                               AT_SYMLINK_FOLLOW) == 0)
                break;
            if (errno != EEXIST || attempt == 8) {
                rc = os_fail(err, errno, "linkat", path);
                break;
            }
            if (pl__sys.unlink(path) != 0 && errno != ENOENT) {
                rc = os_fail(err, errno, "unlink", path);
                break;
            }
        }
    }
    if (rc != PL_OK && tmp != NULL)
        pl__sys.unlink(tmp);
    else if (rc == PL_OK)
        rc = sync_dir(path, err);
    if (pl__sys.close(fd) != 0 && rc == PL_OK && errno != EINTR)
        rc = os_fail(err, errno, "close", tmp != NULL ? tmp : path);
    free(tmp);
    return rc;
}

int pl__os_read_file(const char *path, char *buf, size_t len, size_t *got,
                     pl_error_t *err) {
    size_t n = 0;
    int fd, rc = PL_OK;

    if (len == 0)
        return pl__error_set(err, PL_EINVAL, 0, "read(%s): no buffer", path);
    if ((rc = open_regular(path, O_RDONLY | OPEN_FLAGS_BASE, 0, &fd, err)) !=
        PL_OK)
        return rc;
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
    pl__posix_fpurge(fp);
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
