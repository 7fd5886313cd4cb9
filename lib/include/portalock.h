/*
 * portalock.h -- cross-process locking: file locks, semaphores over lock
 * files, atomic file publication, and a Redis lock bound to the holder's
 * connection.  The C counterpart of Python's portalocker.
 *
 * Conventions
 *   - Every function returning int returns PL_OK (0) or a negative pl_err_t.
 *     pl_strerror() and pl_err_name() describe a code; objects keep the last
 *     OS error (errno / GetLastError()) and a human-readable message.
 *   - The library never prints, aborts or exits.
 *   - One object belongs to one thread at a time (pl_lock_interrupt is the
 *     exception).  Different objects may be used from different threads,
 *     and two objects on one path exclude each other (flock and OFD
 *     backends; see pl_backend_t for lockf).
 *   - Times are seconds as double, like portalocker: timeout 0 means exactly
 *     one attempt, a negative timeout waits forever.
 *   - No POSIX-only or Windows-only type appears here: descriptors travel as
 *     pl_fd_t (an int fd on POSIX, a HANDLE on Windows).
 */
#ifndef PORTALOCK_H
#define PORTALOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(PL_SHARED_LIBRARY) /* not PL_SHARED: a flag */
# ifdef PL_BUILDING
#  define PL_API __declspec(dllexport)
# else
#  define PL_API __declspec(dllimport)
# endif
#elif defined(__GNUC__)
# define PL_API __attribute__((visibility("default")))
#else
# define PL_API
#endif

#define PL_VERSION_MAJOR  0
#define PL_VERSION_MINOR  1
#define PL_VERSION_PATCH  0
#define PL_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * X(name, code, message).  Codes are fixed small negatives so they mean the
 * same on every platform; the raw OS code is kept separately.
 * PL_ELOCKED and PL_ETIMEDOUT are both portalocker's AlreadyLocked: the lock
 * is held by someone else (at once, or still when the timeout ran out).
 */
/* clang-format off */
#define PL_ERR_MAP(X)                                                          \
    X(EINVAL,       -1,  "invalid argument")                                   \
    X(ELOCKED,      -2,  "lock is held by another owner")                      \
    X(ETIMEDOUT,    -3,  "timed out waiting for the lock")                     \
    X(ENOTHELD,     -4,  "lock is not held by this object")                    \
    X(EOS,          -5,  "operating system error")                             \
    X(ENOMEM,       -6,  "out of memory")                                      \
    X(ENOTSUP,      -7,  "locking is not supported here")                      \
    X(ENOENT,       -8,  "no such file or directory")                          \
    X(EACCES,       -9,  "permission denied")                                  \
    X(EISDIR,       -10, "is a directory")                                     \
    X(ENAMETOOLONG, -11, "file name too long")                                 \
    X(EROFS,        -12, "read-only file system")                              \
    X(EEXIST,       -13, "file already exists")                                \
    X(EFORKED,      -14, "lock was acquired by another process (fork)")        \
    X(EREPLACED,    -15, "lock file kept being replaced while locking")        \
    X(ELOST,        -16, "lock was lost while held")                           \
    X(ECONN,        -17, "cannot reach the lock server")                       \
    X(EPROTO,       -18, "unexpected reply from the lock server")              \
    X(EAUTH,        -19, "authentication with the lock server failed")         \
    X(EHELD,        -20, "lock is already held by this object")                \
    X(EUPGRADE,     -21, "upgrade failed and the shared lock was released")    \
    X(EBUSY,        -22, "object is in use by another thread")                 \
    X(EINTR,        -23, "wait interrupted by pl_lock_interrupt")
/* clang-format on */

typedef enum pl_err {
    PL_OK = 0,
#define PL_ERR_ENUM(name, code, msg) PL_##name = (code),
    PL_ERR_MAP(PL_ERR_ENUM)
#undef PL_ERR_ENUM
} pl_err_t;

/* Contention (portalocker's AlreadyLocked): PL_ELOCKED or PL_ETIMEDOUT. */
#define PL_IS_ALREADY_LOCKED(err) ((err) == PL_ELOCKED || (err) == PL_ETIMEDOUT)

PL_API const char *pl_strerror(int err); /* never NULL */
PL_API const char *pl_err_name(int err); /* "PL_ELOCKED"; never NULL */

/*
 * Detailed result for calls that have no object to keep it on (pl_lock_fd,
 * pl_probe, pl_open_atomic...).  Pass NULL when the code is enough.
 */
typedef struct pl_error {
    int code;      /* the same pl_err_t the call returned */
    int os_error;  /* errno / GetLastError(), 0 if none */
    char msg[256]; /* e.g. "open(/x/y.lock): No such file or directory" */
} pl_error_t;

PL_API const char *pl_version(void); /* "0.1.0" */

/* ------------------------------------------------------------------------ */
/* Descriptors, flags, backends                                             */
/* ------------------------------------------------------------------------ */

typedef intptr_t pl_fd_t; /* int fd on POSIX, HANDLE on Windows */
#define PL_INVALID_FD ((pl_fd_t)-1)

/* portalocker's LockFlags; the POSIX values are kept. */
#define PL_SHARED       0x1u /* LOCK_SH */
#define PL_EXCLUSIVE    0x2u /* LOCK_EX */
#define PL_NON_BLOCKING 0x4u /* LOCK_NB */

typedef enum pl_backend {
    PL_BACKEND_DEFAULT = 0,   /* process default: PORTALOCK_BACKEND or flock */
    PL_BACKEND_FLOCK = 1,     /* flock(2): per open file description */
    PL_BACKEND_LOCKF = 2,     /* fcntl F_SETLK whole file: per process */
    PL_BACKEND_OFD = 3,       /* fcntl F_OFD_SETLK (Linux): per description */
    PL_BACKEND_LOCKFILEEX = 4 /* Windows LockFileEx */
} pl_backend_t;

/* "flock", "lockf", "ofd", "lockfileex"; "default" for PL_BACKEND_DEFAULT. */
PL_API const char *pl_backend_name(pl_backend_t backend);
/* Parses a name (also "fcntl" for lockf); PL_EINVAL if unknown. */
PL_API int pl_backend_from_name(const char *name, pl_backend_t *out);
/* Whether this build and platform implement the backend at all. */
PL_API int pl_backend_available(pl_backend_t backend);
/*
 * The process default: set by pl_set_default_backend(), else read once from
 * the environment variable PORTALOCK_BACKEND, else flock (Windows:
 * lockfileex).  Never returns PL_BACKEND_DEFAULT.
 */
PL_API pl_backend_t pl_default_backend(void);
PL_API int pl_set_default_backend(pl_backend_t backend);

/*
 * Low-level lock/unlock of an open descriptor (portalocker.lock/unlock).
 * flags: exactly one of PL_SHARED/PL_EXCLUSIVE, optionally PL_NON_BLOCKING;
 * anything else is PL_EINVAL before any system call.  With PL_NON_BLOCKING
 * contention gives PL_ELOCKED; without it the call blocks in the kernel.
 * err may be NULL.
 */
PL_API int pl_lock_fd(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      pl_error_t *err);
/*
 * Waits in the kernel for at most timeout seconds (0 = one attempt,
 * negative = forever) and wakes as soon as the holder releases.  Contention
 * gives PL_ELOCKED for timeout 0 and PL_ETIMEDOUT otherwise.  PL_NON_BLOCKING
 * in flags makes it one attempt whatever the timeout.  By default the wait
 * runs in a helper thread and installs no signal handler and no alarm();
 * see pl_set_wait_signal() for the faster opt-in.
 *
 * Upgrades: flock converts shared to exclusive by unlocking first, so a
 * failed upgrade (contention, timeout) leaves NOTHING held.  When the
 * descriptor holds a shared flock lock taken through pl_lock_fd* (and not
 * yet unlocked) such a failure returns PL_EUPGRADE instead of PL_ELOCKED /
 * PL_ETIMEDOUT.  A shared lock taken otherwise (directly with flock(2), or
 * by another process on an inherited descriptor) is not seen: checking every
 * descriptor would cost a /proc read per call.  lockf and OFD upgrades are
 * atomic and keep the shared lock on failure.
 */
PL_API int pl_lock_fd_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                            double timeout, pl_error_t *err);
PL_API int pl_unlock_fd(pl_fd_t fd, pl_backend_t backend, pl_error_t *err);

/*
 * Opt-in: timed waits block in the calling thread itself, as a raw waiter
 * in flock(2)/F_SETLKW does, and are woken directly by the kernel (the
 * default needs a helper thread, one more wake-up per handoff).  The
 * library installs a handler that does nothing, without SA_RESTART, for
 * signo, and ends a wait at its deadline by sending signo to the waiting
 * thread alone, from a per-thread timer (timer_create, SIGEV_THREAD_ID).
 * Pick a signal the application does not use (SIGALRM in a program that
 * owns its signals, as the portalock CLI does, or e.g. SIGRTMIN + n): it
 * may make other interruptible system calls of a waiting thread fail with
 * EINTR.  A thread that blocks signo waits in a helper thread as before.
 * PL_EBUSY if signo already has a handler, PL_EINVAL for a bad number,
 * PL_ENOTSUP without per-thread timers (Linux only today).  0 goes back to
 * the default and restores signo's previous disposition.  Call it before
 * starting threads that lock; process-wide.
 */
PL_API int pl_set_wait_signal(int signo, pl_error_t *err);
/* The signal set by pl_set_wait_signal(), 0 if none. */
PL_API int pl_wait_signal(void);

/* ------------------------------------------------------------------------ */
/* Lock objects: Lock, RLock, TemporaryFileLock, PidFileLock, RedisLock     */
/* ------------------------------------------------------------------------ */

typedef struct pl_lock pl_lock_t; /* opaque */

/*
 * Sentinel for "not set" in pl_lock_options_t's double fields (and the
 * double arguments of pl_lock_acquire_with/pl_semaphore_acquire_with):
 * -2^63 seconds.  It is a power of two, so the literal is exact in float,
 * double and long double and "x == PL_UNSET" holds whatever precision the
 * compiler evaluates the literal in.  (Until 0.1 it was -1e300, which is
 * not exact: on 32-bit x86, FLT_EVAL_METHOD 2, the literal stayed a long
 * double that no stored double ever equals.  The library still accepts that
 * old value from programs built against the old header.)
 */
#define PL_UNSET (-9223372036854775808.0)

typedef struct pl_lock_options {
    /*
     * Open mode: "r", "r+", "a", "a+", "w", "w+" (a "b" is accepted and
     * ignored).  A "w" mode opens without truncating and truncates only once
     * the lock is held, so a losing contender never destroys the holder's
     * data.  NULL = "a".
     */
    const char *mode;
    double timeout;        /* seconds; default 5; 0 = one try; <0 forever */
    double check_interval; /* seconds between tries where the kernel cannot
                              wait (polling fallback); default 0.25 */
    int fail_when_locked;  /* -1 = kind's default (Lock: 0; Temporary,
                              PidFile, semaphore: 1) */
    unsigned flags;        /* 0 = PL_EXCLUSIVE | PL_NON_BLOCKING.  The mode
                              bit picks shared/exclusive; PL_NON_BLOCKING is
                              accepted for portalocker compatibility: the
                              timeout always applies */
    pl_backend_t backend;  /* PL_BACKEND_DEFAULT = pl_default_backend() */
    unsigned file_perms;   /* permissions for a created file (& ~umask);
                              0 = 0644; only the bits 0777 are used, so
                              06777 never makes a setuid/setgid file */
} pl_lock_options_t;

/* Fills *opts with the defaults above (timeout 5, check_interval 0.25...). */
PL_API void pl_lock_options_init(pl_lock_options_t *opts);

/* Lock(path): acquire returns an open descriptor; opts may be NULL. */
PL_API int pl_lock_open(pl_lock_t **out, const char *path,
                        const pl_lock_options_t *opts);
/* RLock(path): re-entrant per object; each acquire needs one release. */
PL_API int pl_rlock_open(pl_lock_t **out, const char *path,
                         const pl_lock_options_t *opts);
/*
 * TemporaryFileLock(path): mode "w", fail_when_locked defaults to 1.  The
 * file exists only while held: release unlinks it while still holding the
 * lock, then unlocks.  Acquire verifies that the locked descriptor is still
 * the file at path and retries otherwise (portalocker #115).  Landing on a
 * file that its holder has just removed is ordinary contention: at the
 * deadline it gives PL_ETIMEDOUT (PL_ELOCKED for a single attempt).
 * PL_EREPLACED means the path kept pointing to another file while the one
 * locked still had a name (someone replaces it outside the protocol).
 */
PL_API int pl_temporary_lock_open(pl_lock_t **out, const char *path,
                                  const pl_lock_options_t *opts);
/*
 * PidFileLock(path): the OS lock is on the sidecar "<path>.lock"; the holder's
 * PID is published atomically in path (readers see the old PID, none, or
 * the new one) and durably.  fail_when_locked defaults to 1.  On contention
 * pl_pidfile_holder() reports the holder.  Names too long for ".lock" (over
 * 250 bytes) get the sidecar "<first 233 bytes>.<16 hex hash>.lock".
 */
PL_API int pl_pidfile_lock_open(pl_lock_t **out, const char *path,
                                const pl_lock_options_t *opts);

/* Acquires with the object's options.  Already held: PL_OK (no-op), except
 * that an RLock counts. */
PL_API int pl_lock_acquire(pl_lock_t *lock);
/* Same with per-call overrides; PL_UNSET / -1 keep the object's value. */
PL_API int pl_lock_acquire_with(pl_lock_t *lock, double timeout,
                                double check_interval, int fail_when_locked);
/*
 * Unlocks and closes (never deletes, except Temporary/PidFile files).
 * Not held: PL_ENOTHELD.  In a forked child that inherited a held object the
 * lock is not released (the parent still owns it): the child's descriptor is
 * closed and PL_EFORKED is returned.
 */
PL_API int pl_lock_release(pl_lock_t *lock);
/*
 * Releases if held, frees; NULL-safe; returns the release error if any.
 * PL_EBUSY (and nothing freed) while another thread is inside
 * pl_lock_acquire* on the object: interrupt that wait first.
 */
PL_API int pl_lock_close(pl_lock_t *lock);
/*
 * Ends a wait in pl_lock_acquire* on this object from another thread (the
 * one call on an object that may come from another thread).  The acquire
 * returns PL_EINTR, or PL_OK if the lock was granted first.  Does nothing
 * when no acquire is running.  File lock kinds only: a RedisLock's wait
 * still ends at its timeout.  This is the way to stop a waiting thread:
 * pl_lock_acquire*, pl_lock_release and pl_lock_close are not cancellation
 * points (cancellation is deferred until they return, so a cancelled
 * thread leaks no descriptor, memory or thread), so call
 * pthread_cancel(t) and then pl_lock_interrupt(lock).
 */
PL_API int pl_lock_interrupt(pl_lock_t *lock);

PL_API int pl_lock_is_held(const pl_lock_t *lock);
/* RLock depth (0/1 for the other kinds). */
PL_API int pl_lock_count(const pl_lock_t *lock);
/* The locked descriptor, PL_INVALID_FD when not held (Redis: always).  (Named
 * fileno: pl_lock_fd is the low-level lock of a raw descriptor.) */
PL_API pl_fd_t pl_lock_fileno(const pl_lock_t *lock);
/* A FILE* over the locked descriptor, opened in the lock's mode on first
 * use and closed by release; NULL when not held. */
PL_API FILE *pl_lock_file(pl_lock_t *lock);
PL_API const char *pl_lock_path(const pl_lock_t *lock); /* channel for Redis */
PL_API pl_backend_t pl_lock_backend(const pl_lock_t *lock);
/* Last error on this object: OS code (0 if none) and message (never NULL). */
PL_API int pl_lock_os_error(const pl_lock_t *lock);
PL_API const char *pl_lock_errmsg(const pl_lock_t *lock);

typedef struct pl_holder_info {
    long pid;       /* 0 if unknown */
    int alive;      /* 1 alive, 0 dead (gone, or a zombie), -1 unknown:
                       another host or PID namespace, or cannot be told */
    char host[256]; /* holder's host name if recorded, else "" */
    int local;      /* 1 recorded on this host and in this PID namespace,
                       0 recorded elsewhere (alive is then -1), -1 not
                       recorded (e.g. a Python holder: judged locally) */
} pl_holder_info_t;

/*
 * PidFileLock: who holds the lock (after PL_ELOCKED/PL_ETIMEDOUT, or any
 * time).  PL_ENOENT if no PID is published, PL_EINVAL for other kinds.  The
 * PID file stays a plain decimal (Python's portalocker reads it); the holder
 * records its host and PID namespace in the sidecar, and a PID from another
 * host or namespace is reported with alive -1 rather than judged by a local
 * kill(pid, 0), which would look at an unrelated process.
 */
PL_API int pl_pidfile_holder(pl_lock_t *lock, pl_holder_info_t *out);
/* Reads a PID file as PidFileLock writes it (strict positive decimal). */
PL_API int pl_pidfile_read(const char *path, long *pid, pl_error_t *err);

/* ------------------------------------------------------------------------ */
/* BoundedSemaphore / NamedBoundedSemaphore                                 */
/* ------------------------------------------------------------------------ */

typedef struct pl_semaphore pl_semaphore_t; /* opaque */

/*
 * N slot files "{name}.{nn}.lock" (two-digit zero padding) in directory, the
 * same names portalocker uses, so Python and C processes share the slots.
 * name NULL = NamedBoundedSemaphore's "bounded_semaphore.<random>"; directory
 * NULL = the system temporary directory.  opts: timeout, check_interval,
 * fail_when_locked (default 1), backend; mode/flags are ignored.  maximum is
 * 1..1000 (PL_EINVAL otherwise); slot 100 and up are named "{name}.100.lock"
 * as Python's "{number:02d}" does.
 */
PL_API int pl_semaphore_open(pl_semaphore_t **out, unsigned maximum,
                             const char *name, const char *directory,
                             const pl_lock_options_t *opts);
/*
 * Sweeps the slots starting at a random one, waiting in the kernel on one
 * slot between sweeps, until the timeout.  Like portalocker it retries for
 * the whole timeout; then it gives PL_ELOCKED if fail_when_locked, else
 * PL_ETIMEDOUT.  Already holding a slot: PL_EHELD.
 */
PL_API int pl_semaphore_acquire(pl_semaphore_t *sem);
PL_API int pl_semaphore_acquire_with(pl_semaphore_t *sem, double timeout,
                                     double check_interval,
                                     int fail_when_locked);
PL_API int pl_semaphore_release(pl_semaphore_t *sem);
PL_API int pl_semaphore_close(pl_semaphore_t *sem);      /* NULL-safe */
PL_API int pl_semaphore_slot(const pl_semaphore_t *sem); /* -1 if none */
PL_API const char *pl_semaphore_name(const pl_semaphore_t *sem);
/* Path of slot i (valid until close), NULL if out of range. */
PL_API const char *pl_semaphore_slot_path(const pl_semaphore_t *sem,
                                          unsigned i);
PL_API int pl_semaphore_os_error(const pl_semaphore_t *sem);
PL_API const char *pl_semaphore_errmsg(const pl_semaphore_t *sem);

/* ------------------------------------------------------------------------ */
/* open_atomic                                                              */
/* ------------------------------------------------------------------------ */

typedef struct pl_atomic_file pl_atomic_file_t; /* opaque */

/*
 * Creates the temporary file for path in path's directory (creating the
 * directory if needed), mode 0666 & ~umask.  Write through pl_atomic_fp().
 * Refused at once: PL_EEXIST if anything is at path, even a dangling
 * symbolic link (the publication could never succeed); PL_EACCES,
 * PL_ENAMETOOLONG, PL_ENOENT, PL_EOS (ELOOP...) if path cannot be checked.
 *
 * Where the platform allows (Linux O_TMPFILE) the temporary file has no
 * name, so a process that dies before commit leaves nothing.  Elsewhere it
 * is "<dir>/.<name>.<12 hex>.tmp" (name shortened to fit 255 bytes), and a
 * later pl_open_atomic of the same path removes those left by processes that
 * died (unlocked and older than 10 s).
 */
PL_API int pl_open_atomic(pl_atomic_file_t **out, const char *path,
                          pl_error_t *err);
/* The same with the published file's permissions: perms & 0777 & ~umask, as
 * open(2) applies them; 0 = 0666. */
PL_API int pl_open_atomic_perms(pl_atomic_file_t **out, const char *path,
                                unsigned perms, pl_error_t *err);
PL_API FILE *pl_atomic_fp(pl_atomic_file_t *af);
/* The temporary file's name, or NULL while it has none (anonymous). */
PL_API const char *pl_atomic_temp_path(const pl_atomic_file_t *af);
/*
 * Flushes, fsyncs and publishes atomically without replacing anything, then
 * fsyncs the directory: once PL_OK is returned the file survives a power
 * loss.  A crash at any point leaves either no file at path or the complete
 * one.  If path appeared in the meantime: PL_EEXIST, and the data is kept as
 * "<dir>/.<name>.<12 hex>.kept" (named in the message; never cleaned up
 * automatically).  Frees af in every case.
 */
PL_API int pl_atomic_commit(pl_atomic_file_t *af, pl_error_t *err);
/* Discards the temporary file and frees af; NULL-safe. */
PL_API void pl_atomic_abort(pl_atomic_file_t *af);

/* ------------------------------------------------------------------------ */
/* Capability probe                                                         */
/* ------------------------------------------------------------------------ */

typedef struct pl_probe {
    char fstype[64];          /* "ext4", "tmpfs", "fuse.sshfs", "nfs"... */
    uint64_t fs_magic;        /* statfs f_type (0 on Windows) */
    int is_network;           /* 1 network filesystem, 0 local, -1 unknown */
    unsigned backends_ok;     /* bit (1u << pl_backend_t) per working backend */
    unsigned blocking_ok;     /* same bits: a blocking wait woke on release */
    int cross_mount_coherent; /* 1 yes, 0 no (locks local to this client),
                                 -1 unknown */
    char guarantee[512];      /* one line, e.g. "fuse.sshfs: locks are local to
                                 this client; other clients are not excluded" */
    /* From the mount options (Linux /proc/self/mountinfo; "" / 0 elsewhere). */
    char mount_source[128];   /* "server:/export", "//server/share"... */
    char mount_options[512];  /* per-mount, then superblock options */
    unsigned remote_backends; /* bits: the options send these backends' locks
                                 to the server (other clients see them) */
    unsigned local_backends;  /* bits: the options keep these on this client
                                 (nolock, local_lock=, nobrl, FUSE without
                                 lock operations) */
    char mount_verdict[256];  /* one line, e.g. "NFS vers=4.2, hard: flock,
                                 lockf and OFD reach the server (...)" */
    char mount_advice[256];   /* one line: what to change; "" if nothing */
    int flock_fcntl_exclude;  /* 1: flock and fcntl (lockf, OFD) locks
                                 exclude each other here (one lock manager:
                                 the BSDs, macOS, Linux NFS); 0: independent
                                 (Linux local filesystems: every process on a
                                 file must use one family); -1 unknown */
} pl_probe_t;

/*
 * Probes a directory (or a file's directory) by locking a temporary file
 * there with each backend, from two descriptors, blocking and not.  Leaves
 * nothing behind.
 */
PL_API int pl_probe(const char *path, pl_probe_t *out, pl_error_t *err);
/* The probe as one JSON object (no trailing newline); returns PL_EINVAL if
 * the buffer is too small. */
PL_API int pl_probe_to_json(const pl_probe_t *probe, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Redis lock bound to the holder's connection (see lib/src/redis/DESIGN.md) */
/* ------------------------------------------------------------------------ */

typedef struct pl_redis_options {
    const char *host;           /* "127.0.0.1"; ignored if unix_socket */
    int port;                   /* 6379 */
    const char *unix_socket;    /* path, or NULL */
    const char *username;       /* ACL user, or NULL */
    const char *password;       /* or NULL */
    double connect_timeout;     /* seconds, > 0 and <= 1e6; default 1 */
    double command_timeout;     /* seconds, > 0 and <= 1e6; default 2 */
    double timeout;             /* acquire timeout; default 5 */
    double check_interval;      /* safety re-check while waiting; 0.25 */
    int fail_when_locked;       /* default 0 */
    int shared;                 /* 1 = shared (reader) mode */
    double unavailable_timeout; /* a holder whose connection the server saw
                                   idle this long is evicted; a holder that
                                   cannot confirm its grant for half this
                                   long reports it lost; 0.01 to 1e6,
                                   default 1 */
    int evict_stalled;          /* 1 = evict stalled holders (needs CLIENT
                                   KILL rights); default 1 */
    /* Called (from the library's watcher thread) when a held lock is lost. */
    void (*on_lost)(pl_lock_t *lock, int reason, void *arg);
    void *on_lost_arg;
    int fair; /* 1 = grant in arrival order among fair waiters (a writer
                 arriving later waits behind a queued reader); default 0:
                 writers are preferred and can starve readers */
} pl_redis_options_t;

PL_API void pl_redis_options_init(pl_redis_options_t *opts);
/*
 * Parses "redis://[[user]:password@]host[:port]" or "unix:///path/to/sock"
 * into opts, in place: url is modified and opts' strings point into it, so
 * keep it alive as long as opts.
 */
PL_API int pl_redis_options_from_url(pl_redis_options_t *opts, char *url,
                                     pl_error_t *err);
/* PL_ENOTSUP if the library was built without hiredis. */
PL_API int pl_redis_lock_open(pl_lock_t **out, const char *channel,
                              const pl_redis_options_t *opts);
/* Returns PL_OK while the lock is held, PL_ELOST once it was lost,
 * PL_ENOTHELD if never acquired.  Redis: checks with the server.
 * TemporaryFileLock and PidFileLock: PL_ELOST once the locked file is no
 * longer the one at the path (removed, or replaced and maybe locked by
 * another) or the PID file names another process. */
PL_API int pl_lock_check(pl_lock_t *lock);
/* Fencing token of the current grant (only ever increases per channel);
 * 0 when not held or not a Redis lock. */
PL_API uint64_t pl_lock_fencing_token(const pl_lock_t *lock);

#ifdef __cplusplus
}
#endif
#endif /* PORTALOCK_H */
