/*
 * internal.h -- what the pieces of the library share and nothing else sees.
 *
 * A pl_lock_t is one generic object (this struct) plus a kind: Lock, RLock,
 * TemporaryFileLock, PidFileLock (file_lock.c) or RedisLock (redis/).  The
 * generic layer (lock.c) owns argument checks, the held/not-held state, RLock
 * counting, fork detection and the error buffer; a kind implements
 * pl__lock_ops_t.  This follows SQLite's sqlite3_io_methods.
 *
 * Platform code lives in posix/ and win32/ behind the pl__os_* functions
 * declared here; every system call goes through pl__sys (posix/sys.h) so that
 * tests can make it fail.
 */
#ifndef PL_INTERNAL_H
#define PL_INTERNAL_H

#include "portalock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__GNUC__)
# define PL__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
# define PL__PRINTF(fmt, args)
#endif

#define PL__ERRMSG_LEN 256

/* ---- errors (error.c) ---------------------------------------------------- */

/*
 * Fills err (if not NULL) and returns code, so call sites read
 * "return pl__error_set(err, PL_EOS, errno, "open(%s)", path);".  When
 * os_error is not 0 the OS message is appended: "open(/x): No such file...".
 */
int pl__error_set(pl_error_t *err, int code, int os_error, const char *fmt, ...)
    PL__PRINTF(4, 5);
int pl__error_vset(pl_error_t *err, int code, int os_error, const char *fmt,
                   va_list ap);
/* Maps an OS error (errno on POSIX, GetLastError() on Windows) to a code:
 * ENOENT / ERROR_FILE_NOT_FOUND -> PL_ENOENT, EAGAIN / ERROR_LOCK_VIOLATION
 * -> PL_ELOCKED...  Platform layer. */
int pl__code_from_os(int os_error);
/* The OS's text for an OS error (strerror_r / FormatMessage). */
void pl__os_strerror(int os_error, char *buf, size_t len);
/* The OS error behind the last failed C library call (fflush, fclose,
 * fdopen), in the os_error space above: errno on POSIX; on Windows errno
 * translated to a GetLastError code. */
int pl__os_crt_error(void);

/* ---- lock objects (lock.c) ----------------------------------------------- */

typedef struct pl__lock_ops {
    const char *kind; /* "lock", "rlock", "temporary", "pidfile", "redis" */
    /* Take the lock; only called when not held.  Must leave the object
     * unchanged (nothing open) on failure. */
    int (*acquire)(pl_lock_t *lock, double timeout, double check_interval,
                   int fail_when_locked);
    /* Give it up; only called when held in the process that acquired it.
     * Closes lock->fp with fclose if set (it owns fd then), else fd. */
    int (*release)(pl_lock_t *lock);
    /* Held object inherited by a forked child: drop this process's
     * references (close the fd copy) without releasing anything. */
    void (*forget)(pl_lock_t *lock);
    /* Optional: PL_OK if still held, PL_ELOST otherwise. */
    int (*check)(pl_lock_t *lock);
    /* Free kind state (impl); called once by pl_lock_close after release. */
    void (*destroy)(pl_lock_t *lock);
} pl__lock_ops_t;

/* What another thread can reach to end a wait (posix/backend.c). */
typedef struct pl__wait pl__wait_t;

/* pl_lock_t.state: who is using the object right now. */
#define PL__IDLE      0
#define PL__ACQUIRING 1 /* a thread is in pl_lock_acquire* */
#define PL__CLOSING   2 /* pl_lock_close is freeing it */
#define PL__STARTING  3 /* pl_lock_acquire* is claiming it */

struct pl_lock {
    const pl__lock_ops_t *ops;
    atomic_int state;        /* PL__IDLE, PL__ACQUIRING, PL__CLOSING,
                                PL__STARTING */
    pl__wait_t *wait;        /* token for pl_lock_interrupt */
    char *path;              /* file path, or Redis channel */
    pl_lock_options_t opts;  /* resolved: no PL_UNSET, no -1 left */
    char mode[4];            /* normalised "r", "r+", "a", "a+", "w", "w+" */
    pl_backend_t backend;    /* resolved, never PL_BACKEND_DEFAULT */
    int reentrant;           /* RLock */
    int count;               /* 0 = not held */
    long owner_pid;          /* process that acquired */
    pl_fd_t fd;              /* locked descriptor (file kinds) */
    FILE *fp;                /* lazily fdopen'd by pl_lock_file */
    uint64_t fencing_token;  /* Redis */
    pl_holder_info_t holder; /* PidFileLock: last holder seen */
    int os_error;
    char errmsg[PL__ERRMSG_LEN];
    void *impl; /* kind state */
};

/* Allocates a lock with the options resolved and path copied; ops set. */
int pl__lock_new(pl_lock_t **out, const pl__lock_ops_t *ops, const char *path,
                 const pl_lock_options_t *opts, int default_fail_when_locked);
/* Records an error on the object and returns code. */
int pl__lock_fail(pl_lock_t *lock, int code, int os_error, const char *fmt, ...)
    PL__PRINTF(4, 5);
/* Copies an error record onto the object and returns its code. */
int pl__lock_fail_from(pl_lock_t *lock, const pl_error_t *err);
void pl__lock_clear_error(pl_lock_t *lock);

/* ---- options (options.c) -------------------------------------------------
 * options.c also holds pl_redis_options_init and pl_redis_options_from_url
 * (pure parsing, built with or without hiredis); redis/redis_lock.c and
 * redis/redis_none.c only implement pl_redis_lock_open and the kind. */

/* 1 for PL_UNSET and for the pre-0.1 sentinel -1e300 rounded to double. */
int pl__is_unset(double v);
/* Validates and normalises "r", "rb", "w+"... into out[4]; PL_EINVAL if bad. */
int pl__mode_normalise(const char *mode, char out[4]);
/* Flags check shared by every entry point (see pl_lock_fd). */
int pl__flags_check(unsigned flags, pl_error_t *err);
pl_backend_t pl__backend_resolve(pl_backend_t backend);

/* ---- platform layer (posix/, win32/) ------------------------------------- */

double pl__os_monotonic(void); /* seconds, CLOCK_MONOTONIC */
int64_t pl__os_monotonic_ns(void);
long pl__os_getpid(void);
/* Whether process pid of this host and PID namespace lives: 1 alive, 0 dead
 * (no such process, or a zombie: exited, not yet reaped), -1 unknown. */
int pl__os_pid_alive(long pid);
/* An identifier of this process's PID namespace (Linux: the device and
 * inode of /proc/self/ns/pid, "4:4026531836"); "" and an error code where
 * there is none to tell (other systems: PIDs are per host there). */
int pl__os_pid_namespace(char *buf, size_t len);
int pl__os_random(void *buf, size_t len); /* best effort, never fails */
const char *pl__os_tmpdir(void);
void pl__os_sleep(double seconds);

/*
 * Opens path for locking in a normalised mode, O_CLOEXEC, creating it where
 * the mode allows ("a", "a+", "w", "w+"), never truncating.
 */
int pl__os_open_lockfile(const char *path, const char *mode, unsigned perms,
                         pl_fd_t *out, pl_error_t *err);
int pl__os_close(pl_fd_t fd, pl_error_t *err);
/* Truncate to 0 (called once held).  "w" modes are opened without O_APPEND,
 * so positioned writes then behave as with 'w'. */
int pl__os_truncate_after_lock(pl_fd_t fd, pl_error_t *err);
/* 1 if fd is still the file at path, 0 if path is gone or another file. */
int pl__os_fd_matches_path(pl_fd_t fd, const char *path, pl_error_t *err);
/* Replaces the content of fd, opened in mode "a", with text (truncate +
 * write). */
int pl__os_fd_set_content(pl_fd_t fd, const char *text, pl_error_t *err);
/* 1 if fd's file has no name left (unlinked: st_nlink 0 / delete pending),
 * 0 if it has one, -1 if that cannot be told. */
int pl__os_fd_unlinked(pl_fd_t fd);
int pl__os_unlink(const char *path, pl_error_t *err);
int pl__os_read_file(const char *path, char *buf, size_t len, size_t *got,
                     pl_error_t *err);
FILE *pl__os_fdopen(pl_fd_t fd, const char *mode);
/* fclose without flushing (a forked child's inherited FILE*). */
void pl__os_fclose_discard(FILE *fp);
/* PL_OK if nothing is at path, not even a (dangling) symbolic link;
 * PL_EEXIST if something is; else why it cannot be told (PL_EACCES,
 * PL_ENAMETOOLONG, PL_ENOENT for a missing or non-directory parent, PL_EOS
 * with ELOOP...). */
int pl__os_check_absent(const char *path, pl_error_t *err);
int pl__os_fsync(pl_fd_t fd, const char *path, pl_error_t *err);
/* mkdir -p of path's parent directory. */
int pl__os_mkdirs_parent(const char *path, pl_error_t *err);
/* Longest file name component on every supported platform (NAME_MAX on
 * Linux and the BSDs; 255 UTF-16 units on Windows).  Names the library
 * derives from a user's name (temporary files, PidFileLock's sidecar) are
 * shortened to fit, so every name a Lock accepts works for them too. */
#define PL__NAME_MAX 255

/* Creates a new temporary file next to path (O_EXCL, perms & ~umask), named
 * "<dir>/.<base>.<hex>.tmp" with base shortened to fit PL__NAME_MAX; *tmp
 * is malloc'd.  Not marked in use (see pl__os_clean_temps). */
int pl__os_create_temp(const char *path, unsigned perms, char **tmp,
                       pl_fd_t *fd, pl_error_t *err);

/*
 * open_atomic's temporary file for path, mode perms & ~umask.  Where the
 * platform can, an anonymous file (*tmp = NULL): it has no name, so nothing
 * is left if the process dies before publishing.  Else a named file as
 * pl__os_create_temp's (*tmp malloc'd), marked in use by this process until
 * its descriptor is closed, so that pl__os_clean_temps never removes it
 * while its creator lives.  The parent directory must exist.
 */
int pl__os_atomic_create(const char *path, unsigned perms, char **tmp,
                         pl_fd_t *fd, pl_error_t *err);
/*
 * Publishes the file from pl__os_atomic_create (fd open, its data synced) as
 * path, atomically and never replacing an existing path, and makes the new
 * name durable (the directory is synced) before returning PL_OK.  A
 * temporary name is gone on success.  On failure (PL_EEXIST if path exists)
 * the data is kept under a new name beside path that no cleaner removes,
 * returned in *kept (malloc'd, or NULL if it could not be kept) and named in
 * the message.  fd stays open either way: the caller closes it.
 */
int pl__os_atomic_publish(pl_fd_t fd, const char *tmp, const char *path,
                          char **kept, pl_error_t *err);
/*
 * Best effort, never fails: removes the named temporary files of path (as
 * pl__os_create_temp names them) that processes left when they died: those
 * nobody has marked in use and that are older than a few seconds, and those
 * that are a second link of path (a crash between publishing and removing
 * the temporary name).  A no-op where temporary files are never left.
 */
void pl__os_clean_temps(const char *path);
/* Replaces path's content for a file only its writer changes (the PID
 * file): readers see the old content, no file, or the complete new content;
 * durable on return.  Leaves no temporary file if the process dies where
 * pl__os_atomic_create gives anonymous files (else pl__os_clean_temps'
 * kind). */
int pl__os_write_file_atomic(const char *path, const char *text,
                             pl_error_t *err);
int pl__os_hostname(char *buf, size_t len);
/* path made absolute against the current directory, lexically (like
 * os.path.abspath: no symlinks resolved); *out is malloc'd. */
int pl__os_abspath(const char *path, char **out, pl_error_t *err);

/* Backends: lock/unlock one descriptor (posix/backend.c). */
/* Internal flags bit: the descriptor is the caller's (pl_lock_fd*), so it
 * may already hold a lock (a flock upgrade is then detected). */
#define PL__CALLER_FD 0x100u
int pl__os_lock(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                pl_error_t *err);
int pl__os_lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, pl_error_t *err);
int pl__os_unlock(pl_fd_t fd, pl_backend_t backend, pl_error_t *err);
/* pl__os_lock_timed whose wait another thread can end through tok
 * (pl__os_wait_interrupt: PL_EINTR unless the lock was got). */
int pl__os_lock_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                     double timeout, double check_interval, pl__wait_t *tok,
                     pl_error_t *err);
int pl__os_wait_new(pl__wait_t **out);
void pl__os_wait_free(pl__wait_t *tok); /* NULL-safe */
/* Forgets an interrupt aimed at an earlier wait. */
void pl__os_wait_reset(pl__wait_t *tok);
void pl__os_wait_interrupt(pl__wait_t *tok);
/* Called before a lock's descriptor reaches the caller (pl_lock_fileno,
 * pl_lock_file): makes it behave as a plain open's (posix: clears the
 * O_NONBLOCK the open used). */
void pl__os_fd_handout(pl_fd_t fd);
/* Defers thread cancellation until the matching restore (acquire, release
 * and close run to the end: see lock.c); a no-op where threads cannot be
 * cancelled asynchronously (Windows). */
int pl__os_cancel_defer(void);
void pl__os_cancel_restore(int state);
/* pl_set_wait_signal / pl_wait_signal. */
int pl__os_set_wait_signal(int signo, pl_error_t *err);
int pl__os_wait_signal(void);
/* pl__os_lock_timed without the polling fallback: PL_ENOTSUP where the
 * kernel cannot wait (used by the probe). */
int pl__os_lock_kernel_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                            double timeout, pl_error_t *err);
int pl__os_backend_available(pl_backend_t backend);
/* PORTALOCK_BACKEND (read once; unknown or unavailable names are ignored),
 * else the platform's native backend.  Never PL_BACKEND_DEFAULT. */
pl_backend_t pl__os_native_default_backend(void);

/* Probe (posix/probe_os.c): the directory probed for path (path itself if
 * it is a directory, else its parent), malloc'd. */
int pl__os_probe_dir(const char *path, char **dir, pl_error_t *err);
/* Filesystem type name ("ext4", "fuse.sshfs"...) and magic of dir. */
int pl__os_fstype(const char *dir, char *name, size_t len, uint64_t *magic,
                  pl_error_t *err);
/* Locks a temporary file in dir with each backend; fills the bit sets of
 * pl_probe_t (backends_ok, blocking_ok) and leaves nothing behind. */
int pl__os_probe_locks(const char *dir, unsigned *backends_ok,
                       unsigned *blocking_ok, pl_error_t *err);
/* The mount holding dir and its options (posix/mounts_os.c); 0 if found,
 * -1 if unknown (no /proc/self/mountinfo).  Never an error to the caller. */
struct pl__mount;
int pl__os_mount(const char *dir, struct pl__mount *m);

#endif /* PL_INTERNAL_H */
