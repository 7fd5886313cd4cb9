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
 *   (see pl_probe()).  The BSDs and macOS differ: flock and fcntl locks are
 *   kept by one lock manager there and do exclude each other (a flock
 *   holder makes a lockf attempt fail), so mixing families is safe there
 *   and only there; pl_probe() measures which case a directory is in
 *   (flock_fcntl_exclude).
 *
 * UPGRADES
 *
 * flock converts a lock (shared to exclusive or back) by removing the old
 * one first and then requesting the new one (flock(2) says so), so an
 * upgrade that meets a conflict fails with NOTHING held, whether it was one
 * attempt or a wait that timed out.  Such a failure is reported as
 * PL_EUPGRADE, not PL_ELOCKED/PL_ETIMEDOUT, for the descriptors where we
 * know a shared lock was held (see "shared flock locks" below).  lockf and
 * OFD check the conflict before converting: a failed upgrade keeps the
 * shared lock.
 *
 * TIMED WAITS
 *
 * portalocker polls with LOCK_NB every check_interval.  Here a timed acquire
 * waits in the kernel and wakes the moment the holder releases, after one
 * non-blocking try (the uncontended fast path: no thread, no timer).  Two
 * ways to wait, both ending with ONE more non-blocking attempt at the
 * deadline: the lock may have been granted in the very instant the wait
 * was ended, and since flock and OFD locks are idempotent for one
 * description (lockf for one process) that attempt tells the truth; if it
 * succeeds the lock is kept.
 *
 *   The default: no signal of ours.  A helper thread makes the blocking
 *   call on the same descriptor while the caller sleeps on a futex word
 *   (a condition variable off Linux: wait_bsd.c) until a CLOCK_MONOTONIC
 *   deadline.  At the deadline the caller cancels
 *   the helper and joins it.  The helper runs its call under asynchronous
 *   cancellation whatever the backend: flock is a cancellation point
 *   nowhere and musl does not make F_OFD_SETLKW one, so libc's list of
 *   cancellation points is not relied on.  glibc's and musl's cancellation
 *   use their own reserved signal, and the helper blocks every other signal
 *   so it never takes one meant for the application.  The price is one
 *   more wake-up per handoff (kernel -> helper -> caller).
 *
 *   The opt-in, pl_set_wait_signal(signo): the caller blocks in the call
 *   itself and a per-thread timer sends signo at the deadline (see "the
 *   opt-in signal" below): a handoff costs what a raw waiter's does.
 *
 * A wait of a lock object can also be ended by pl_lock_interrupt() from
 * another thread (a futex wake, or firing the waiter's timer), so such
 * waits never block without a way out; a forever wait of a lock object
 * therefore also goes through the helper (or the signal).  Forever waits
 * on a bare descriptor (pl_lock_fd without PL_NON_BLOCKING) block in the
 * caller as before.
 *
 * CANCELLATION
 *
 * A timed acquire is not a cancellation point: it defers cancellation
 * until it returns (pthread_setcancelstate), so a cancelled caller never
 * leaves a helper unjoined or a descriptor open; lock.c does the same
 * around the whole acquire of a lock object.  pl_lock_interrupt() is the
 * way to end a wait from outside.
 *
 * WAKE-UPS IN THE DEFAULT PATH (issue 12: measured with pl_core_check and
 * pl_handoff, holder process releases -> waiter returns, same-run ratios
 * on a shared 2-core machine; see bench/RESULTS.md)
 *
 *   kept:     the helper yields right after waking the caller.  The woken
 *             caller usually lands on the helper's CPU (wake-affine) and
 *             otherwise waits behind the helper's exit path: without the
 *             yield the p50 went from 1.54x to 3.18x raw.
 *   kept:     a bare futex word instead of a mutex + condition variable
 *             (about 3x slower: the caller woke to a mutex still held).
 *   kept:     on success the helper is detached and the caller returns
 *             at once, rather than joining it (its exit would be part of
 *             every handoff).
 *   not tried: a pool of persistent helper threads.  Thread creation
 *             happens before the wait, not in the handoff, so a pool only
 *             saves CPU, and a helper blocked in a kernel call that times
 *             out cannot be reused until its call is cancelled anyway.
 *   not tried: the caller spinning on the word before sleeping: the
 *             handoff may take seconds, and spinning steals the core the
 *             helper (or the holder) needs on a 2-core machine.
 *   The remaining wake-up (kernel -> helper -> caller) is structural; the
 *   opt-in signal removes it.
 *
 * Some filesystems (certain FUSE and network ones) support non-blocking
 * locks but fail blocking ones with ENOLCK, EOPNOTSUPP, EINVAL or ENOSYS;
 * then the wait falls back to polling every check_interval (capped at the
 * time left).  pl_probe() reports which backends can wait in the kernel.
 */
#include "internal.h"
#include "posix/platform.h"
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

/* flags for lock_call: 0 unlocks (never blocks). */
#define UNLOCK 0u

/* One lock (or unlock) system call; returns 0 or the errno (EINTR too). */
static int lock_call(int fd, unsigned flags, pl_backend_t backend, int block) {
    int rc;

    if (backend == PL_BACKEND_FLOCK) {
        int op = flags == UNLOCK       ? LOCK_UN
                 : (flags & PL_SHARED) ? LOCK_SH
                                       : LOCK_EX;
        if (!block && flags != UNLOCK)
            op |= LOCK_NB;
        rc = pl__sys.flock(fd, op);
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
        rc = pl__sys.fcntl(fd, cmd, &fl);
    }
    return rc == 0 ? 0 : errno;
}

/* lock_call retried on EINTR. */
static int lock_once(int fd, unsigned flags, pl_backend_t backend, int block) {
    int e;
    do
        e = lock_call(fd, flags, backend, block);
    while (e == EINTR);
    return e;
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

/* ---- shared flock locks taken on callers' descriptors ----------------------
 * A flock conversion is not atomic (see UPGRADES above): a failed upgrade
 * leaves nothing held.  Knowing beforehand whether a descriptor holds a
 * shared lock takes a read of /proc/self/fdinfo/N (about 3 us idle, 18 us
 * measured on the loaded test machine), far too much for every exclusive
 * lock.  So pl_lock_fd* marks the descriptors on which it took a shared
 * flock lock (one bit each, below FD_MARKS), an unlock or an exclusive lock
 * clears the mark, and only a marked descriptor pays for the fdinfo read
 * that confirms it (the descriptor may have been closed and reused without
 * pl_unlock_fd).
 */
#define FD_MARKS 1024
static atomic_uint shared_marks[FD_MARKS / 32];

static void mark_shared(int fd, int on) {
    unsigned bit;
    if (fd >= FD_MARKS)
        return;
    bit = 1u << (fd % 32);
    if (on)
        atomic_fetch_or(&shared_marks[fd / 32], bit);
    else if (atomic_load_explicit(&shared_marks[fd / 32],
                                  memory_order_relaxed) &
             bit)
        atomic_fetch_and(&shared_marks[fd / 32], ~bit);
}

/* 1 if fd (marked) really holds a shared flock lock right now; where the
 * platform cannot tell (no /proc/self/fdinfo), the mark is trusted. */
static int holds_shared_flock(int fd) {
    if (fd >= FD_MARKS ||
        !(atomic_load(&shared_marks[fd / 32]) & (1u << (fd % 32))))
        return 0;
    return pl__fd_holds_shared_flock(fd) != 0;
}

int pl__os_unlock(pl_fd_t fd, pl_backend_t backend, pl_error_t *err) {
    int rc, e;

    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    if (backend == PL_BACKEND_FLOCK)
        mark_shared((int)fd, 0);
    if ((e = lock_once((int)fd, UNLOCK, backend, 0)) != 0)
        return pl__error_set(err, pl__code_from_os(e), e, "unlock: %s(fd %d)",
                             call_name(backend), (int)fd);
    return PL_OK;
}

/* ---- wait words ------------------------------------------------------------
 * A wait ends when a 32-bit word becomes non-zero: the helper thread posts
 * WORD_DONE, pl_lock_interrupt() posts WORD_INTR.  Sleeping on the word and
 * waking it is platform code (platform.h): a bare futex on Linux
 * (wait_linux.c), a condition variable elsewhere (wait_bsd.c).
 */
#define WORD_DONE 1u /* the helper's blocking call returned */
#define WORD_INTR 2u /* pl_lock_interrupt() */

/* ---- the wait token: what pl_lock_interrupt() reaches ----------------------
 * One per lock object.  In the helper-thread mode the caller sleeps on
 * token->word itself, so an interrupt is a store and a wake.  In the signal
 * mode the waiting thread publishes its timer here (under mu, so that an
 * interrupter never arms a timer the waiter has already put away) and the
 * interrupter fires it at once.
 */
struct pl__wait {
    atomic_uint word;
    pthread_mutex_t mu;
    int has_timer; /* under mu: timer belongs to a thread waiting now */
    int armed;     /* under mu: timer was armed (disarm it after) */
    pl__wait_timer_t *timer; /* under mu: the waiting thread's */
};

int pl__os_wait_new(pl__wait_t **out) {
    pl__wait_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return PL_ENOMEM;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return PL_ENOMEM;
    }
    atomic_init(&t->word, 0);
    *out = t;
    return PL_OK;
}

void pl__os_wait_free(pl__wait_t *t) {
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void pl__os_wait_reset(pl__wait_t *t) {
    atomic_store(&t->word, 0);
}

/* The signal mode's timer period after the first expiry (see below). */
#define RETRY_NS 10000000L /* 10 ms */

void pl__os_wait_interrupt(pl__wait_t *t) {
    atomic_fetch_or(&t->word, WORD_INTR);
    pl__wait_word_wake(&t->word);
    pthread_mutex_lock(&t->mu);
    if (t->has_timer && pl__wait_timer_fire(t->timer, RETRY_NS) == 0)
        t->armed = 1;
    pthread_mutex_unlock(&t->mu);
}

/* ---- waiting: polling fallback ------------------------------------------- */

static int interrupted(pl__wait_t *tok) {
    return tok != NULL && (atomic_load(&tok->word) & WORD_INTR);
}

/* Polls with non-blocking attempts every interval until deadline_ns
 * (monotonic; < 0 = forever) or an interrupt. */
static int poll_until(int fd, unsigned flags, pl_backend_t backend,
                      int64_t deadline_ns, double interval, pl__wait_t *tok,
                      pl_error_t *err) {
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
        if (step > 0.05 && tok != NULL)
            step = 0.05; /* notice an interrupt within 50 ms */
        pl__os_sleep(step);
        e = lock_once(fd, flags, backend, 0);
        if (e == 0)
            return PL_OK;
        if (!is_contention(backend, e))
            return lock_error(err, e, fd, backend);
        if (interrupted(tok))
            return pl__error_set(err, PL_EINTR, 0, "%s(fd %d): interrupted",
                                 call_name(backend), fd);
    }
    return pl__error_set(err, PL_ETIMEDOUT, 0,
                         "%s(fd %d): still locked at the deadline (polling)",
                         call_name(backend), fd);
}

/* ---- waiting in the kernel: the helper thread ---------------------------- */

/*
 * Shared by the caller and the helper.  Heap-allocated and reference-counted
 * so that, once the helper has reported, the caller can return at once
 * (detaching the helper) without waiting for it to exit.
 */
typedef struct waiter {
    atomic_uint *word; /* where WORD_DONE is posted: a token's, or own */
    atomic_uint own;
    int error; /* the blocking call's errno; 0 = locked; written before
                  WORD_DONE */
    atomic_int refs;
    int fd;
    unsigned flags;
    pl_backend_t backend;
    struct waiter *prev, *next; /* in waiters_live, under waiters_mu */
} waiter_t;

/*
 * Every waiter not yet freed.  A process that forks while a detached
 * helper is finishing (it posted its result and has yet to drop its
 * reference) gives the child a copy of that waiter and no thread to free
 * it: the child frees them all (only the forking thread exists there, and
 * it was not inside a wait).
 */
static pthread_mutex_t waiters_mu = PTHREAD_MUTEX_INITIALIZER;
static waiter_t *waiters_live;
static long waiters_count;
static pthread_once_t waiters_once = PTHREAD_ONCE_INIT;

static void waiters_prepare(void) {
    pthread_mutex_lock(&waiters_mu);
}
static void waiters_parent(void) {
    pthread_mutex_unlock(&waiters_mu);
}
static void waiters_child(void) {
    while (waiters_live != NULL) {
        waiter_t *next = waiters_live->next;
        free(waiters_live);
        waiters_live = next;
    }
    waiters_count = 0;
    pthread_mutex_unlock(&waiters_mu);
}
static void waiters_setup(void) {
    pthread_atfork(waiters_prepare, waiters_parent, waiters_child);
}

long pl__os_waiters_live(void) {
    long n;
    pthread_mutex_lock(&waiters_mu);
    n = waiters_count;
    pthread_mutex_unlock(&waiters_mu);
    return n;
}

static waiter_t *waiter_new(void) {
    waiter_t *w;
    pthread_once(&waiters_once, waiters_setup);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return NULL;
    pthread_mutex_lock(&waiters_mu);
    w->next = waiters_live;
    if (waiters_live != NULL)
        waiters_live->prev = w;
    waiters_live = w;
    waiters_count++;
    pthread_mutex_unlock(&waiters_mu);
    return w;
}

static void waiter_free(waiter_t *w) {
    pthread_mutex_lock(&waiters_mu);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        waiters_live = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    waiters_count--;
    pthread_mutex_unlock(&waiters_mu);
    free(w);
}

static void waiter_unref(waiter_t *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        waiter_free(w);
}

static void *waiter_main(void *arg) {
    waiter_t *w = arg;
    int old, e;

    /* Asynchronous cancellation around the blocking call, whatever the
     * backend: flock is a cancellation point nowhere, and musl does not make
     * F_OFD_SETLKW one, so relying on libc's list left OFD waits running
     * past their deadline there.  The call is a bare system call with
     * nothing to clean up, and the lock it may have been granted is found
     * by the caller's final attempt. */
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    e = lock_once(w->fd, w->flags, w->backend, 1);
    /* Both calls are async-cancel-safe; from here on nothing cancels us. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    w->error = e;
    atomic_fetch_or(w->word, WORD_DONE);
    pl__wait_word_wake(w->word);
    /* The woken caller usually lands on this CPU (wake-affine); let it run
     * before this thread's exit path does. */
    sched_yield();
    waiter_unref(w);
    return NULL;
}

enum wait_result {
    WAIT_DONE,        /* *error holds the blocking call's result */
    WAIT_DEADLINE,    /* deadline passed; the caller re-checks */
    WAIT_INTERRUPTED, /* pl_lock_interrupt(); the caller re-checks */
    WAIT_NO_THREAD,   /* no helper could be started */
    WAIT_NO_SIGNAL    /* the signal mode cannot be used here */
};

/*
 * Runs the blocking call in a helper thread until deadline_ns (< 0: none)
 * or an interrupt.  On WAIT_DEADLINE / WAIT_INTERRUPTED the helper was
 * cancelled and joined; whether it got the lock is unknown.
 */
static enum wait_result wait_in_thread(int fd, unsigned flags,
                                       pl_backend_t backend,
                                       int64_t deadline_ns, pl__wait_t *tok,
                                       int *error) {
    waiter_t *w = waiter_new();
    sigset_t all, old;
    pthread_t t;
    unsigned v;
    int rc;

    if (w == NULL)
        return WAIT_NO_THREAD;
    atomic_init(&w->own, 0);
    atomic_init(&w->refs, 2);
    w->word = tok != NULL ? &tok->word : &w->own;
    w->fd = fd;
    w->flags = flags;
    w->backend = backend;
    atomic_fetch_and(w->word, ~WORD_DONE);
    sigfillset(&all); /* the helper inherits a mask blocking everything */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pl__sys.pthread_create(&t, NULL, waiter_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        waiter_free(w);
        return WAIT_NO_THREAD;
    }
    v = pl__wait_word_wait(w->word, deadline_ns);
    if (v & WORD_DONE) {
        *error = w->error;
        pthread_detach(t);
        waiter_unref(w);
        return WAIT_DONE;
    }
    pthread_cancel(t);
    pthread_join(t, NULL);
    waiter_free(w); /* joined: whatever the helper did, it is gone */
    return (v & WORD_INTR) ? WAIT_INTERRUPTED : WAIT_DEADLINE;
}

/* ---- waiting in the kernel: the opt-in signal -----------------------------
 * pl_set_wait_signal(signo) installs a handler that does nothing, without
 * SA_RESTART, so that signo makes a blocking lock call fail with EINTR.
 * The waiting thread then blocks in flock/F_SETLKW/F_OFD_SETLKW itself and
 * the kernel wakes IT when the holder releases: one wake-up, as for a raw
 * waiter.  Its deadline is a per-thread timer (platform.h; on Linux
 * timer_create with SIGEV_THREAD_ID, created on the thread's first timed
 * wait and deleted at its exit) that sends signo to that thread alone, so a
 * wait in one thread never disturbs another.  Where the platform has no
 * such timer (wait_bsd.c) pl_set_wait_signal() answers PL_ENOTSUP.
 *
 * Races.  The deadline may strike before the thread has entered the
 * blocking call; the signal is then handled and lost, so the timer is
 * periodic: it fires again every RETRY_NS until disarmed.  The lock may be
 * granted in the instant the signal arrives; one final non-blocking attempt
 * after EINTR tells the truth (locks are idempotent for their owner).
 * Another handler of the application (without SA_RESTART) also gives EINTR
 * before the deadline: the call is simply made again.
 */
static atomic_int wait_signo; /* 0: the helper-thread mode */
static pthread_mutex_t signo_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction signo_old; /* under signo_mu: to restore */

static void on_wait_signal(int sig) {
    (void)sig; /* its only job: make the blocking call return EINTR */
}

int pl__os_wait_signal(void) {
    return atomic_load(&wait_signo);
}

int pl__os_set_wait_signal(int signo, pl_error_t *err) {
    struct sigaction sa, cur;
    int prev, rc = PL_OK;

    if (!pl__wait_timers_available() && signo != 0)
        return pl__error_set(err, PL_ENOTSUP, 0,
                             "no per-thread timers here (SIGEV_THREAD_ID)");
    if (signo < 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        return pl__error_set(err, PL_EINVAL, 0, "bad signal number %d", signo);
    pthread_mutex_lock(&signo_mu);
    prev = atomic_load(&wait_signo);
    if (signo == prev)
        goto out;
    if (signo != 0) {
        if (sigaction(signo, NULL, &cur) != 0) {
            rc = pl__error_set(err, PL_EINVAL, errno, "sigaction(%d)", signo);
            goto out;
        }
        if ((cur.sa_flags & SA_SIGINFO) ||
            (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN)) {
            rc = pl__error_set(err, PL_EBUSY, 0,
                               "signal %d already has a handler", signo);
            goto out;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_wait_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: that is the point */
        if (sigaction(signo, &sa, NULL) != 0) {
            rc = pl__error_set(err, PL_EINVAL, errno, "sigaction(%d)", signo);
            goto out;
        }
    }
    if (prev != 0)
        sigaction(prev, &signo_old, NULL);
    if (signo != 0)
        signo_old = cur;
    atomic_store(&wait_signo, signo);
out:
    pthread_mutex_unlock(&signo_mu);
    return rc;
}

static enum wait_result wait_with_signal(int fd, unsigned flags,
                                         pl_backend_t backend,
                                         int64_t deadline_ns, pl__wait_t *tok,
                                         int signo, int *error) {
    pl__wait_timer_t *tt;
    enum wait_result res;
    sigset_t cur;
    int armed = deadline_ns >= 0;

    /* A blocked signo would never interrupt anything. */
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 ||
        sigismember(&cur, signo) || (tt = pl__wait_timer_get(signo)) == NULL)
        return WAIT_NO_SIGNAL;
    if (tok != NULL) {
        pthread_mutex_lock(&tok->mu);
        tok->timer = tt;
        tok->has_timer = 1;
        tok->armed = armed;
        if (armed)
            pl__wait_timer_set(tt, deadline_ns, RETRY_NS);
        pthread_mutex_unlock(&tok->mu);
    } else if (armed) {
        pl__wait_timer_set(tt, deadline_ns, RETRY_NS);
    }
    for (;;) {
        int e;
        if (interrupted(tok)) {
            res = WAIT_INTERRUPTED;
            break;
        }
        e = lock_call(fd, flags, backend, 1);
        if (e != EINTR) {
            *error = e;
            res = WAIT_DONE;
            break;
        }
        if (deadline_ns >= 0 && pl__os_monotonic_ns() >= deadline_ns) {
            res = WAIT_DEADLINE;
            break;
        }
    }
    if (tok != NULL) {
        pthread_mutex_lock(&tok->mu);
        tok->has_timer = 0;
        armed = tok->armed;
        tok->armed = 0;
        if (armed)
            pl__wait_timer_set(tt, -1, 0);
        pthread_mutex_unlock(&tok->mu);
    } else if (armed) {
        pl__wait_timer_set(tt, -1, 0);
    }
    return res;
}
/* ---- entry points -------------------------------------------------------- */

/*
 * The timed acquire (see the essay above).  may_poll = 0 reports a
 * filesystem that cannot wait in the kernel as PL_ENOTSUP instead of
 * polling (the probe uses that).  tok: the lock object's wait token (NULL
 * for a bare descriptor): its waits can be interrupted, so they never block
 * in the caller's thread without a way out.
 */
static int lock_timed_body(int fd, unsigned flags, pl_backend_t backend,
                           double timeout, double check_interval, int may_poll,
                           pl__wait_t *tok, pl_error_t *err) {
    int64_t deadline_ns = -1;
    int caller_fd = backend == PL_BACKEND_FLOCK && (flags & PL__CALLER_FD);
    int upgrade = caller_fd && !(flags & PL_SHARED) && holds_shared_flock(fd);
    int signo, e, rc;
    enum wait_result res = WAIT_NO_SIGNAL;

    if (flags & PL_NON_BLOCKING)
        timeout = 0; /* one attempt, whatever the timeout said */
    e = lock_once(fd, flags, backend, 0);
    if (e == 0)
        goto locked;
    if (!is_contention(backend, e) || timeout == 0)
        goto failed;
    if (timeout > 0 && timeout < 1e9) /* longer than 30 years: forever */
        deadline_ns = pl__os_monotonic_ns() + (int64_t)(timeout * 1e9);

    signo = atomic_load_explicit(&wait_signo, memory_order_relaxed);
    if (signo != 0)
        res = wait_with_signal(fd, flags, backend, deadline_ns, tok, signo, &e);
    if (res == WAIT_NO_SIGNAL) {
        if (deadline_ns < 0 && tok == NULL) {
            e = lock_once(fd, flags, backend, 1);
            res = WAIT_DONE;
        } else {
            res = wait_in_thread(fd, flags, backend, deadline_ns, tok, &e);
        }
    }
    switch (res) {
    case WAIT_DONE: break;
    case WAIT_NO_SIGNAL:                    /* not reached */
    case WAIT_NO_THREAD: e = ENOSYS; break; /* poll instead */
    case WAIT_DEADLINE:
    case WAIT_INTERRUPTED:
        e = lock_once(fd, flags, backend, 0);
        if (e == 0)
            goto locked;
        if (!is_contention(backend, e))
            goto failed;
        if (upgrade)
            goto lost_shared;
        if (res == WAIT_INTERRUPTED)
            return pl__error_set(err, PL_EINTR, 0, "%s(fd %d): interrupted",
                                 call_name(backend), fd);
        return pl__error_set(err, PL_ETIMEDOUT, 0,
                             "%s(fd %d): still locked after %gs",
                             call_name(backend), fd, timeout);
    }
    if (e == 0)
        goto locked;
    if (!cannot_wait(e))
        goto failed;
    if (!may_poll)
        return pl__error_set(err, PL_ENOTSUP, e,
                             "%s(fd %d): cannot wait in the kernel here",
                             call_name(backend), fd);
    rc = poll_until(fd, flags, backend, deadline_ns, check_interval, tok, err);
    if (rc == PL_OK)
        goto locked;
    if (upgrade && (rc == PL_ETIMEDOUT || rc == PL_EINTR))
        goto lost_shared;
    return rc;

locked:
    if (caller_fd)
        mark_shared(fd, (flags & PL_SHARED) != 0);
    return PL_OK;
failed:
    if (upgrade && is_contention(backend, e))
        goto lost_shared;
    return lock_error(err, e, fd, backend);
lost_shared:
    mark_shared(fd, 0);
    return pl__error_set(err, PL_EUPGRADE, 0,
                         "flock(fd %d): the upgrade to exclusive failed and "
                         "the shared lock is gone (flock converts by "
                         "unlocking first)",
                         fd);
}

/* Not a cancellation point: a thread cancelled here would leak the helper
 * or the descriptor, so cancellation waits until the call returns. */
static int lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, int may_poll,
                      pl__wait_t *tok, pl_error_t *err) {
    int rc, old;

    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    rc = lock_timed_body((int)fd, flags, backend, timeout, check_interval,
                         may_poll, tok, err);
    pthread_setcancelstate(old, &old);
    return rc;
}

int pl__os_lock_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                     double timeout, double check_interval, pl__wait_t *tok,
                     pl_error_t *err) {
    return lock_timed(fd, flags, backend, timeout, check_interval, 1, tok, err);
}

int pl__os_lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, pl_error_t *err) {
    return lock_timed(fd, flags, backend, timeout, check_interval, 1, NULL,
                      err);
}

int pl__os_lock_kernel_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                            double timeout, pl_error_t *err) {
    return lock_timed(fd, flags, backend, timeout, 0, 0, NULL, err);
}

int pl__os_lock(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                pl_error_t *err) {
    double timeout = (flags & PL_NON_BLOCKING) ? 0.0 : -1.0;
    return pl__os_lock_timed(fd, flags, backend, timeout, 0.25, err);
}
