/*
 * helpers.h -- what the unit tests share: a temporary directory per test,
 * forked lock holders with a pipe handshake, descriptor counting, timing,
 * a small JSON checker, and fault injection through the pl__sys table.
 *
 * Criterion runs every test in its own forked process, so the globals here
 * are per test.  Processes forked by a test must leave with _exit().
 */
#ifndef PLT_HELPERS_H
#define PLT_HELPERS_H

#include "portalock.h"
#include "posix/sys.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stddef.h>
#include <sys/types.h>

/* ---- temporary directory ------------------------------------------------- */

/* The current test's private directory (created by plt_setup). */
extern char plt_dir[1024];

/* Creates plt_dir ("/tmp/pl-unit.<suite>.<test>.<pid>.XXXXXX") and restores
 * the syscall table; use as a suite's .init. */
void plt_setup(void);
/* Restores the syscall table and removes plt_dir recursively; .fini. */
void plt_teardown(void);
/* "<plt_dir>/<name>" in one of 16 rotating static buffers. */
const char *plt_path(const char *name);
/* Creates a private directory under base (e.g. "/dev/shm"); returns it in a
 * static buffer and removes it at plt_teardown. */
const char *plt_mkdtemp_in(const char *base);
/* Removes a tree (files and directories), ignoring errors. */
void plt_rmtree(const char *path);

/* ---- files --------------------------------------------------------------- */

void plt_write_file(const char *path, const char *text);
/* Reads up to len-1 bytes into buf (NUL-terminated); -1 if missing. */
long plt_read_file(const char *path, char *buf, size_t len);
int plt_exists(const char *path);
/* Entries in a directory, "." and ".." excluded; -1 if it cannot be read. */
int plt_dir_entries(const char *path);
/* Open descriptors of this process (/proc/self/fd). */
int plt_count_fds(void);
/* Whether a string contains any of the NULL-terminated needles. */
int plt_contains_any(const char *hay, const char *const *needles);

/* ---- time ---------------------------------------------------------------- */

double plt_now(void); /* CLOCK_MONOTONIC seconds */
void plt_sleep_ms(int ms);

/* ---- other processes ----------------------------------------------------- */

/* Returned instead of a pl_err_t when a child died or misbehaved. */
#define PLT_CHILD_FAILED 1000
/* Returned by a child that could not drop root (permission tests skip). */
#define PLT_CHILD_NO_SETUID 77
/* Returned by plt_fd_acquire when open() failed. */
#define PLT_OPEN_FAILED 99

typedef int (*plt_fn)(void *arg);

/*
 * Runs fn(arg) in a forked child and returns its result (an int in
 * -128..127, e.g. a pl_err_t), or PLT_CHILD_FAILED if the child crashed or
 * did not finish within 30 s.
 */
int plt_in_child(plt_fn fn, void *arg);

/*
 * A forked process that acquires something, reports the result over a pipe,
 * holds, then releases on request (or after release_after_ms) and exits with
 * the release result.
 */
typedef struct plt_holder {
    pid_t pid;
    int ready_fd; /* parent reads the acquire result */
    int go_fd;    /* parent writes to ask for the release */
    int timed;    /* releases by itself after a delay */
} plt_holder_t;

/* Returns the child's acquire result (PL_OK when it holds), or
 * PLT_CHILD_FAILED.  release_after_ms < 0: hold until plt_holder_finish. */
int plt_holder_start(plt_holder_t *h, plt_fn acquire, plt_fn release, void *arg,
                     int release_after_ms);
/* Asks the holder to release, reaps it, returns its release result. */
int plt_holder_finish(plt_holder_t *h);
/* SIGKILLs and reaps the holder (its lock is dropped by the kernel). */
void plt_holder_kill(plt_holder_t *h);

/* Raw descriptor holder: open(path, O_RDWR|O_CREAT) + pl_lock_fd(flags). */
typedef struct plt_fd_hold {
    const char *path;
    pl_backend_t backend;
    unsigned flags;
    int fd;
} plt_fd_hold_t;
int plt_fd_acquire(void *arg);
int plt_fd_release(void *arg);

/* Lock object holder (acquire with its options; release + close). */
typedef enum plt_kind {
    PLT_LOCK,
    PLT_RLOCK,
    PLT_TEMPORARY,
    PLT_PIDFILE
} plt_kind_t;
typedef struct plt_obj_hold {
    plt_kind_t kind;
    const char *path;
    pl_lock_options_t opts;
    pl_lock_t *lock;
} plt_obj_hold_t;
int plt_obj_acquire(void *arg);
int plt_obj_release(void *arg);
int plt_open_kind(plt_kind_t kind, pl_lock_t **out, const char *path,
                  const pl_lock_options_t *opts);

/*
 * One non-blocking attempt from a new open file description in another
 * process (so it is a contender for every backend, lockf included);
 * returns its pl_err_t (PL_OK: it got the lock and released it).
 */
int plt_try_other_process(const char *path, pl_backend_t backend,
                          unsigned flags);
/* The same from a new description in this process (flock / OFD only). */
int plt_try_this_process(const char *path, pl_backend_t backend,
                         unsigned flags);

/* ---- lock helpers -------------------------------------------------------- */

/* The POSIX backends, for loops over all of them. */
#define PLT_N_BACKENDS 3
extern const pl_backend_t plt_backends[PLT_N_BACKENDS];
/* The backends whose locks belong to an open file description (two objects
 * in one process exclude each other). */
extern const pl_backend_t plt_desc_backends[2];

/* plt_fn adapters: one call on an inherited lock object in a forked child. */
int plt_child_acquire(void *lock);
int plt_child_release(void *lock);
int plt_child_close(void *lock);
/* A plt_fn that does nothing and returns PL_OK. */
int plt_child_ok(void *arg);
/* 1 if fd has FD_CLOEXEC, 0 if not, -1 if it is not an open descriptor. */
int plt_cloexec(pl_fd_t fd);

/*
 * `processes` forked processes each open their own lock of `kind` on path
 * (timeout 20 s, fail_when_locked 0) and acquire / check that nobody else
 * is inside / release it `iterations` times, all at once.  Overlaps are
 * counted in shared memory.
 */
typedef struct plt_race {
    int acquired; /* successful acquires, all processes */
    int overlaps; /* acquires that found another holder inside */
    int failures; /* failed acquires or releases, crashed processes */
} plt_race_t;
plt_race_t plt_race(plt_kind_t kind, const char *path, pl_backend_t backend,
                    int processes, int iterations);

/* ---- JSON ---------------------------------------------------------------- */

/* 1 if text is exactly one valid JSON value (RFC 8259 syntax). */
int plt_json_valid(const char *text);

/* ---- fault injection ----------------------------------------------------- */

typedef enum plt_sys {
    PLT_SYS_OPEN,
    PLT_SYS_CLOSE,
    PLT_SYS_FLOCK,
    PLT_SYS_FCNTL,
    PLT_SYS_FSTAT,
    PLT_SYS_STAT,
    PLT_SYS_FTRUNCATE,
    PLT_SYS_FSYNC,
    PLT_SYS_UNLINK,
    PLT_SYS_RENAME,
    PLT_SYS_LINK,
    PLT_SYS_MKDIR,
    PLT_SYS_READ,
    PLT_SYS_WRITE,
    PLT_SYS_STATFS,
    PLT_SYS_KILL,
    PLT_SYS_LSTAT,
    PLT_SYS_LINKAT,
    PLT_SYS_N_REAL, /* marker: the real entries are the ones above */
    /* Pseudo entries, counted on top of flock/fcntl: */
    PLT_SYS_LOCKOP = PLT_SYS_N_REAL, /* flock SH/EX, fcntl set-lock RD/WR */
    PLT_SYS_UNLOCKOP,                /* flock UN, fcntl set-lock UNLCK */
    PLT_SYS_COUNT
} plt_sys_t;

/* The real table, saved by plt_sys_install. */
extern pl__sys_table_t plt_real;

/* Name of the call ("open"...); the pseudo entries give "lock"/"unlock". */
const char *plt_sys_name(plt_sys_t which);
/* Words a message about a failing call may use (NULL-terminated). */
const char *const *plt_sys_words(plt_sys_t which);
/* Replaces every entry with a counting hook. */
void plt_sys_install(void);
/* Zeroes the counters. */
void plt_sys_reset_counts(void);
int plt_sys_calls(plt_sys_t which);
/*
 * Makes calls to `which` fail with errno err: the first `skip` calls pass,
 * the next `times` fail (times < 0: all).  A close fails after really
 * closing (as Linux does on EIO).  match: only calls whose path contains
 * it (path entries), or NULL.  Up to 4 faults at once.
 */
void plt_fault(plt_sys_t which, int err, int skip, int times,
               const char *match);
void plt_fault_clear(void);
/* Calls fn(arg, nth) before the nth (1-based) real call to `which`. */
void plt_sys_before(plt_sys_t which, void (*fn)(void *arg, int nth), void *arg);
/* stat(path) reports a different inode for its first `times` calls (times
 * < 0: always); simulates a lock file replaced behind our back. */
void plt_stat_lie(const char *path, int times);

/* ---- assertions ---------------------------------------------------------- */

/* cr_expect that rc == want, printing names and the lock's message. */
#define PLT_EXPECT_RC(rc, want, lock)                                          \
 cr_expect(eq(int, (rc), (want)), "got %s, want %s (%s)", pl_err_name(rc),     \
           pl_err_name(want), pl_lock_errmsg(lock))
#define PLT_ASSERT_RC(rc, want, lock)                                          \
 cr_assert(eq(int, (rc), (want)), "got %s, want %s (%s)", pl_err_name(rc),     \
           pl_err_name(want), pl_lock_errmsg(lock))

#endif /* PLT_HELPERS_H */
