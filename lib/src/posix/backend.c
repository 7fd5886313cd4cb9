/*
 * backend.c -- the three POSIX lock backends and the timed wait.
 *
 * WHAT EACH BACKEND GUARANTEES
 *
 * POSIX gives a process three advisory lock families.  They differ in who
 * owns a lock, which is what decides every pitfall below.
 *
 *   flock(2) (PL_BACKEND_FLOCK, the default, as in portalocker).  The lock
 *   belongs to the open file description: the thing open() creates and
 *   dup() and fork() share.  Two open() calls on one path in one process are
 *   two descriptions, so two Lock objects exclude each other, also from two
 *   threads.  A forked child shares the parent's description: the child
 *   holds the same lock, and an unlock (LOCK_UN) in the child releases it
 *   for the parent too (portalocker 2.2.1 did exactly that; our generic
 *   layer only closes the child's copy).  Closing one of several descriptors
 *   of a description releases nothing; the lock goes when the last one
 *   closes.  Closing an unrelated descriptor of the same file releases
 *   nothing.
 *
 *   lockf (PL_BACKEND_LOCKF: fcntl F_SETLK/F_SETLKW on the whole file,
 *   l_start 0 and l_len 0, so growth is covered).  The lock belongs to the
 *   PROCESS.  POSIX advisory locks are broken by design in two ways: two
 *   descriptors (two Lock objects, two threads) of one process never exclude
 *   each other, and closing ANY descriptor of the file in the process, even
 *   one opened by a library that never locked, releases all the process's
 *   locks on it.  A forked child does not inherit the lock at all.  A shared
 *   lock needs a descriptor open for reading, an exclusive one a descriptor
 *   open for writing (EBADF otherwise; modes "a"/"w" cannot take a shared
 *   lockf lock).  Its one strength: it is the family that NFS forwards to the
 *   server (NLM or NFSv4 locks), so it excludes other clients.
 *
 *   OFD (PL_BACKEND_OFD: fcntl F_OFD_SETLK/F_OFD_SETLKW, Linux >= 3.15).
 *   fcntl byte-range locks owned by the open file description, like flock:
 *   descriptions exclude each other within a process, fork shares, closing
 *   another descriptor does nothing.  And like lockf they go through the
 *   NFS lock manager.  They conflict with lockf locks on the same file.
 *
 *   On a local Linux filesystem flock locks and fcntl (lockf, OFD) locks are
 *   independent: a flock holder does not exclude an OFD or lockf contender.
 *   Every process that shares a file must therefore use one family.  Over
 *   NFS, Linux emulates flock with fcntl locks (then they do conflict); over
 *   FUSE filesystems that do not implement lock operations (sshfs, smbnetfs)
 *   the locks live in this kernel only and other clients are not excluded
 *   (see pl_probe()).
 *
 * TIMED WAITS
 *
 * portalocker polls with LOCK_NB every check_interval.  Here a timed acquire
 * waits in the kernel and wakes the moment the holder releases: after one
 * non-blocking try (the uncontended fast path, no thread), a helper thread
 * makes the blocking call on the same descriptor while the caller waits on a
 * condition variable bound to CLOCK_MONOTONIC.  At the deadline the caller
 * cancels the helper (F_SETLKW/F_OFD_SETLKW are cancellation points; flock
 * is not, so the helper switches to asynchronous cancellation just around
 * it), joins it, and makes ONE more non-blocking attempt: the helper may
 * have been granted the lock in the very instant it was cancelled, and since
 * flock and OFD locks are idempotent for one description (lockf for one
 * process) that attempt tells the truth; if it succeeds the lock is kept.
 * No signal handler of ours, no alarm(): glibc's cancellation uses its own
 * reserved signal, and the helper blocks every other signal so it never
 * takes one meant for the application.
 *
 * Some filesystems (certain FUSE and network ones) support non-blocking
 * locks but fail blocking ones with ENOLCK, EOPNOTSUPP, EINVAL or ENOSYS;
 * then the wait falls back to polling every check_interval (capped at the
 * time left).  pl_probe() reports which backends can wait in the kernel.
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#ifdef F_OFD_SETLK
# define HAVE_OFD   1
# define OFD_SETLK  F_OFD_SETLK
# define OFD_SETLKW F_OFD_SETLKW
#else
# define HAVE_OFD   0
# define OFD_SETLK  (-1)
# define OFD_SETLKW (-1)
#endif

/* ---- backends and the process default ------------------------------------ */

int pl__os_backend_available(pl_backend_t backend) {
    switch (backend) {
    case PL_BACKEND_FLOCK:
    case PL_BACKEND_LOCKF: return 1;
    case PL_BACKEND_OFD: return HAVE_OFD;
    default: return 0;
    }
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static pl_backend_t env_backend = PL_BACKEND_FLOCK;

/* An unknown or unavailable PORTALOCK_BACKEND falls back to flock: the
 * library cannot complain (it never prints), the CLI validates it loudly. */
static void read_env_backend(void) {
    const char *v = getenv("PORTALOCK_BACKEND");
    pl_backend_t b;
    if (v != NULL && pl_backend_from_name(v, &b) == PL_OK &&
        b != PL_BACKEND_DEFAULT && pl__os_backend_available(b))
        env_backend = b;
}

pl_backend_t pl__os_native_default_backend(void) {
    pthread_once(&env_once, read_env_backend);
    return env_backend;
}

/* ---- one attempt --------------------------------------------------------- */

/* flags for lock_once: 0 unlocks (never blocks). */
#define UNLOCK 0u

/* One lock (or unlock) call, retried on EINTR; returns 0 or the errno. */
static int lock_once(int fd, unsigned flags, pl_backend_t backend, int block) {
    int rc;

    if (backend == PL_BACKEND_FLOCK) {
        int op = flags == UNLOCK       ? LOCK_UN
                 : (flags & PL_SHARED) ? LOCK_SH
                                       : LOCK_EX;
        if (!block && flags != UNLOCK)
            op |= LOCK_NB;
        do
            rc = pl__sys.flock(fd, op);
        while (rc != 0 && errno == EINTR);
    } else {
        struct flock fl;
        int cmd;
        memset(&fl, 0, sizeof(fl)); /* l_start = l_len = 0: whole file;
                                       l_pid must be 0 for OFD */
        fl.l_type = flags == UNLOCK       ? F_UNLCK
                    : (flags & PL_SHARED) ? F_RDLCK
                                          : F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (backend == PL_BACKEND_OFD)
            cmd = block ? OFD_SETLKW : OFD_SETLK;
        else
            cmd = block ? F_SETLKW : F_SETLK;
        do
            rc = pl__sys.fcntl(fd, cmd, &fl);
        while (rc != 0 && errno == EINTR);
    }
    return rc == 0 ? 0 : errno;
}

static int is_contention(pl_backend_t backend, int e) {
    /* fcntl may report a conflicting lock as EACCES (POSIX allows both). */
    return e == EAGAIN || e == EWOULDBLOCK ||
           (backend != PL_BACKEND_FLOCK && e == EACCES);
}

/* Errors of a blocking call on filesystems that cannot wait in the kernel
 * (the non-blocking call worked): poll instead. */
static int cannot_wait(int e) {
    return e == ENOLCK || e == EOPNOTSUPP || e == ENOTSUP || e == EINVAL ||
           e == ENOSYS;
}

static const char *call_name(pl_backend_t backend) {
    switch (backend) {
    case PL_BACKEND_FLOCK: return "flock";
    case PL_BACKEND_OFD: return "fcntl(F_OFD_SETLK)";
    default: return "fcntl(F_SETLK)";
    }
}

static int lock_error(pl_error_t *err, int e, int fd, pl_backend_t backend) {
    int code = is_contention(backend, e) ? PL_ELOCKED : pl__code_from_os(e);
    return pl__error_set(err, code, e, "%s(fd %d)", call_name(backend), fd);
}

static int check_fd(pl_fd_t fd, pl_error_t *err) {
    if (fd < 0 || fd > INT_MAX)
        return pl__error_set(err, PL_EINVAL, 0, "invalid descriptor %ld",
                             (long)fd);
    return PL_OK;
}

int pl__os_unlock(pl_fd_t fd, pl_backend_t backend, pl_error_t *err) {
    int rc, e;

    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    if ((e = lock_once((int)fd, UNLOCK, backend, 0)) != 0)
        return pl__error_set(err, pl__code_from_os(e), e, "unlock: %s(fd %d)",
                             call_name(backend), (int)fd);
    return PL_OK;
}

/* ---- waiting: polling fallback ------------------------------------------- */

#define NS_PER_S 1000000000LL

/* Polls with non-blocking attempts every interval until deadline_ns
 * (monotonic; < 0 = forever). */
static int poll_until(int fd, unsigned flags, pl_backend_t backend,
                      int64_t deadline_ns, double interval, pl_error_t *err) {
    for (;;) {
        double step = interval > 0 ? interval : 0.001;
        int e;
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - pl__os_monotonic_ns();
            if (left <= 0)
                break;
            if (step > (double)left / 1e9)
                step = (double)left / 1e9;
        }
        pl__os_sleep(step);
        e = lock_once(fd, flags, backend, 0);
        if (e == 0)
            return PL_OK;
        if (!is_contention(backend, e))
            return lock_error(err, e, fd, backend);
    }
    return pl__error_set(err, PL_ETIMEDOUT, 0,
                         "%s(fd %d): still locked at the deadline (polling)",
                         call_name(backend), fd);
}

/* ---- a one-shot event ------------------------------------------------------
 * Set once by the helper, awaited by the caller until a CLOCK_MONOTONIC
 * deadline.  On Linux a bare futex: the helper's wake is a single system
 * call and the caller never has to take a mutex the helper still holds, so
 * the hand-over costs one wake-up (a condition variable measured about 3x
 * slower here).  Elsewhere a mutex + condition variable bound to
 * CLOCK_MONOTONIC.
 */
#ifdef __linux__
# include <linux/futex.h>
# include <sys/syscall.h>

typedef struct event {
    atomic_int set;
} event_t;

static int event_init(event_t *ev) {
    atomic_init(&ev->set, 0);
    return 0;
}
static void event_destroy(event_t *ev) {
    (void)ev;
}

static void event_set(event_t *ev) {
    atomic_store(&ev->set, 1);
    syscall(SYS_futex, &ev->set, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* 1 if set, 0 at the deadline.  FUTEX_WAIT_BITSET takes an absolute
 * CLOCK_MONOTONIC time. */
static int event_wait(event_t *ev, const struct timespec *deadline) {
    while (atomic_load(&ev->set) == 0) {
        if (syscall(SYS_futex, &ev->set, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                    0, deadline, NULL, FUTEX_BITSET_MATCH_ANY) != 0 &&
            errno == ETIMEDOUT)
            return atomic_load(&ev->set);
    }
    return 1;
}
#else
typedef struct event {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int set;
} event_t;

static int event_init(event_t *ev) {
    pthread_condattr_t ca;
    int rc;
    ev->set = 0;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&ev->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&ev->mu, NULL) != 0) {
        pthread_cond_destroy(&ev->cv);
        return -1;
    }
    return 0;
}

static void event_destroy(event_t *ev) {
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->mu);
}

static void event_set(event_t *ev) {
    pthread_mutex_lock(&ev->mu);
    ev->set = 1;
    pthread_mutex_unlock(&ev->mu);
    pthread_cond_broadcast(&ev->cv); /* after unlocking: the waiter wakes
                                        to a free mutex */
}

static int event_wait(event_t *ev, const struct timespec *deadline) {
    int set;
    pthread_mutex_lock(&ev->mu);
    while (!ev->set &&
           pthread_cond_timedwait(&ev->cv, &ev->mu, deadline) != ETIMEDOUT)
        ;
    set = ev->set;
    pthread_mutex_unlock(&ev->mu);
    return set;
}
#endif

/* ---- waiting in the kernel: the helper thread ---------------------------- */

/*
 * Shared by the caller and the helper.  Heap-allocated and reference-counted
 * so that, once the helper has reported, the caller can return at once
 * (detaching the helper) without waiting for it to exit.
 */
typedef struct waiter {
    event_t done; /* the helper's blocking call returned */
    int error;    /* its errno; 0 = locked; written before done is set */
    atomic_int refs;
    int fd;
    unsigned flags;
    pl_backend_t backend;
} waiter_t;

static void waiter_free(waiter_t *w) {
    event_destroy(&w->done);
    free(w);
}

static void waiter_unref(waiter_t *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        waiter_free(w);
}

static void *waiter_main(void *arg) {
    waiter_t *w = arg;
    int old, e;

    if (w->backend == PL_BACKEND_FLOCK) /* not a cancellation point */
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    e = lock_once(w->fd, w->flags, w->backend, 1);
    /* Both calls are async-cancel-safe; from here on nothing cancels us. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    w->error = e;
    event_set(&w->done);
    sched_yield();
    waiter_unref(w);
    return NULL;
}

static waiter_t *waiter_new(int fd, unsigned flags, pl_backend_t backend) {
    waiter_t *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    if (event_init(&w->done) != 0) {
        free(w);
        return NULL;
    }
    atomic_init(&w->refs, 2);
    w->fd = fd;
    w->flags = flags;
    w->backend = backend;
    return w;
}

enum wait_result { WAIT_DONE, WAIT_DEADLINE, WAIT_NO_THREAD };

/*
 * Runs the blocking call in a helper thread until deadline_ns.  WAIT_DONE:
 * *error holds the call's result.  WAIT_DEADLINE: the helper was cancelled
 * and joined; whether it got the lock is unknown (the caller re-checks).
 * WAIT_NO_THREAD: no thread could be started.
 */
static enum wait_result wait_in_thread(int fd, unsigned flags,
                                       pl_backend_t backend,
                                       int64_t deadline_ns, int *error) {
    waiter_t *w = waiter_new(fd, flags, backend);
    struct timespec ts;
    sigset_t all, old;
    pthread_t t;
    int rc;

    if (w == NULL)
        return WAIT_NO_THREAD;
    sigfillset(&all); /* the helper inherits a mask blocking everything */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pl__sys.pthread_create(&t, NULL, waiter_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        waiter_free(w);
        return WAIT_NO_THREAD;
    }
    ts.tv_sec = (time_t)(deadline_ns / NS_PER_S);
    ts.tv_nsec = (long)(deadline_ns % NS_PER_S);
    if (event_wait(&w->done, &ts)) {
        *error = w->error;
        pthread_detach(t);
        waiter_unref(w);
        return WAIT_DONE;
    }
    pthread_cancel(t);
    pthread_join(t, NULL);
    waiter_free(w); /* joined: whatever the helper did, it is gone */
    return WAIT_DEADLINE;
}

/* ---- entry points -------------------------------------------------------- */

/*
 * The timed acquire (see the essay above).  may_poll = 0 reports a
 * filesystem that cannot wait in the kernel as PL_ENOTSUP instead of
 * polling (the probe uses that).
 */
static int lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, int may_poll,
                      pl_error_t *err) {
    int64_t deadline_ns = -1;
    int ifd, e, rc;

    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    ifd = (int)fd;
    e = lock_once(ifd, flags, backend, 0);
    if (e == 0)
        return PL_OK;
    if (!is_contention(backend, e) || timeout == 0)
        return lock_error(err, e, ifd, backend);
    if (timeout > 0 && timeout < 1e9) /* longer than 30 years: forever */
        deadline_ns = pl__os_monotonic_ns() + (int64_t)(timeout * 1e9);

    if (deadline_ns < 0) {
        e = lock_once(ifd, flags, backend, 1);
    } else {
        switch (wait_in_thread(ifd, flags, backend, deadline_ns, &e)) {
        case WAIT_DONE: break;
        case WAIT_NO_THREAD: e = ENOSYS; break; /* poll instead */
        case WAIT_DEADLINE:
            e = lock_once(ifd, flags, backend, 0);
            if (e == 0)
                return PL_OK;
            if (!is_contention(backend, e))
                return lock_error(err, e, ifd, backend);
            return pl__error_set(err, PL_ETIMEDOUT, 0,
                                 "%s(fd %d): still locked after %gs",
                                 call_name(backend), ifd, timeout);
        }
    }
    if (e == 0)
        return PL_OK;
    if (!cannot_wait(e))
        return lock_error(err, e, ifd, backend);
    if (!may_poll)
        return pl__error_set(err, PL_ENOTSUP, e,
                             "%s(fd %d): cannot wait in the kernel here",
                             call_name(backend), ifd);
    return poll_until(ifd, flags, backend, deadline_ns, check_interval, err);
}

int pl__os_lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, pl_error_t *err) {
    return lock_timed(fd, flags, backend, timeout, check_interval, 1, err);
}

int pl__os_lock_kernel_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                            double timeout, pl_error_t *err) {
    return lock_timed(fd, flags, backend, timeout, 0, 0, err);
}

int pl__os_lock(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                pl_error_t *err) {
    double timeout = (flags & PL_NON_BLOCKING) ? 0.0 : -1.0;
    return pl__os_lock_timed(fd, flags, backend, timeout, 0.25, err);
}
