/*
 * lock.c -- the generic lock object: argument checks, held/not-held state,
 * RLock counting, fork detection, the error buffer, and dispatch to a kind
 * (pl__lock_ops_t).  Kinds never see a NULL lock or a wrong state.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pl__lock_new(pl_lock_t **out, const pl__lock_ops_t *ops, const char *path,
                 const pl_lock_options_t *opts, int default_fail_when_locked) {
    pl_lock_options_t o;
    pl_lock_t *lock;
    char mode[4];
    int rc;

    if (out == NULL)
        return PL_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return PL_EINVAL;
    if (opts != NULL)
        o = *opts;
    else
        pl_lock_options_init(&o);
    if (pl__is_unset(o.timeout))
        o.timeout = 5.0;
    if (pl__is_unset(o.check_interval))
        o.check_interval = 0.25;
    if (o.check_interval < 0 || o.check_interval != o.check_interval ||
        o.timeout != o.timeout)
        return PL_EINVAL;
    if (o.fail_when_locked < 0)
        o.fail_when_locked = default_fail_when_locked;
    if (o.flags == 0)
        o.flags = PL_EXCLUSIVE | PL_NON_BLOCKING;
    if ((rc = pl__flags_check(o.flags, NULL)) != PL_OK)
        return rc;
    if ((rc = pl__mode_normalise(o.mode, mode)) != PL_OK)
        return rc;
    if (o.backend != PL_BACKEND_DEFAULT && !pl_backend_available(o.backend))
        return PL_ENOTSUP;
    if (o.file_perms == 0)
        o.file_perms = 0644;
    /* Permission bits only: 06777 must not make a setuid/setgid (or
     * sticky) lock file. */
    o.file_perms &= 0777;

    /* One allocation: the path lives right after the struct. */
    lock = calloc(1, sizeof(*lock) + strlen(path) + 1);
    if (lock == NULL)
        return PL_ENOMEM;
    lock->path = (char *)(lock + 1);
    strcpy(lock->path, path);
    lock->ops = ops;
    lock->opts = o;
    lock->opts.mode = NULL; /* the caller's string may not outlive us */
    memcpy(lock->mode, mode, sizeof(lock->mode));
    lock->backend = pl__backend_resolve(o.backend);
    lock->fd = PL_INVALID_FD;
    atomic_init(&lock->state, PL__IDLE);
    if (pl__os_wait_new(&lock->wait) != PL_OK) {
        free(lock);
        return PL_ENOMEM;
    }
    *out = lock;
    return PL_OK;
}

int pl__lock_fail(pl_lock_t *lock, int code, int os_error, const char *fmt,
                  ...) {
    pl_error_t e;
    va_list ap;
    va_start(ap, fmt);
    pl__error_vset(&e, code, os_error, fmt, ap);
    va_end(ap);
    return pl__lock_fail_from(lock, &e);
}

int pl__lock_fail_from(pl_lock_t *lock, const pl_error_t *err) {
    lock->os_error = err->os_error;
    snprintf(lock->errmsg, sizeof(lock->errmsg), "%s", err->msg);
    return err->code;
}

void pl__lock_clear_error(pl_lock_t *lock) {
    lock->os_error = 0;
    lock->errmsg[0] = '\0';
}

int pl_lock_acquire(pl_lock_t *lock) {
    return pl_lock_acquire_with(lock, PL_UNSET, PL_UNSET, -1);
}

/*
 * Cancellation.  A thread cancelled inside an acquire (in pthread_join of
 * the helper, in a blocking fcntl, in open or close) would leave behind
 * what it had open: 20 cancelled OFD waits left 20 descriptors and 20
 * unjoined helper threads (VmSize 2.5 MB -> 240 MB).  Cleanup handlers
 * would have to cover every step of every kind, so instead acquire,
 * release and close defer cancellation until they return (every exit
 * path already cleans up), and a wait is ended from outside with
 * pl_lock_interrupt().
 */
static int acquire(pl_lock_t *lock, double timeout, double check_interval,
                   int fail_when_locked);

int pl_lock_acquire_with(pl_lock_t *lock, double timeout, double check_interval,
                         int fail_when_locked) {
    int rc, idle = PL__IDLE, old;

    if (lock == NULL)
        return PL_EINVAL;
    /* Claim the object (PL__STARTING: pl_lock_close is refused, an
     * interrupt does nothing yet), forget interrupts aimed at earlier
     * waits, then become visible to pl_lock_interrupt (in that order: an
     * interrupt that sees PL__ACQUIRING is never wiped).  The word is reset
     * only once the object is ours: a busy object's word belongs to the
     * thread waiting on it, and wiping it lost that wait's interrupt (and
     * its helper's "done"), leaving it asleep until its deadline. */
    if (!atomic_compare_exchange_strong(&lock->state, &idle, PL__STARTING))
        return PL_EBUSY; /* no message: another thread owns the buffer */
    pl__os_wait_reset(lock->wait);
    atomic_store(&lock->state, PL__ACQUIRING);
    old = pl__os_cancel_defer();
    rc = acquire(lock, timeout, check_interval, fail_when_locked);
    pl__os_cancel_restore(old);
    atomic_store(&lock->state, PL__IDLE);
    return rc;
}

int pl_lock_interrupt(pl_lock_t *lock) {
    if (lock == NULL)
        return PL_EINVAL;
    if (atomic_load(&lock->state) == PL__ACQUIRING)
        pl__os_wait_interrupt(lock->wait);
    return PL_OK;
}

int pl_set_wait_signal(int signo, pl_error_t *err) {
    return pl__os_set_wait_signal(signo, err);
}

int pl_wait_signal(void) {
    return pl__os_wait_signal();
}

static int acquire(pl_lock_t *lock, double timeout, double check_interval,
                   int fail_when_locked) {
    int rc;

    if (pl__is_unset(timeout))
        timeout = lock->opts.timeout;
    if (pl__is_unset(check_interval))
        check_interval = lock->opts.check_interval;
    if (fail_when_locked < 0)
        fail_when_locked = lock->opts.fail_when_locked;
    if (timeout != timeout || check_interval != check_interval ||
        check_interval < 0)
        return pl__lock_fail(lock, PL_EINVAL, 0,
                             "timeout and check_interval must be numbers, "
                             "check_interval >= 0");
    if (lock->count > 0) {
        if (lock->owner_pid != pl__os_getpid())
            return pl__lock_fail(lock, PL_EFORKED, 0,
                                 "%s: held by the parent process (fork)",
                                 lock->path);
        if (lock->reentrant) {
            if (lock->count == INT32_MAX)
                return pl__lock_fail(lock, PL_EINVAL, 0, "%s: RLock overflow",
                                     lock->path);
            lock->count++;
        }
        return PL_OK;
    }
    pl__lock_clear_error(lock);
    rc = lock->ops->acquire(lock, timeout, check_interval, fail_when_locked);
    if (rc == PL_OK) {
        lock->count = 1;
        lock->owner_pid = pl__os_getpid();
    }
    return rc;
}

static int release(pl_lock_t *lock);

int pl_lock_release(pl_lock_t *lock) {
    int rc, old;

    if (lock == NULL)
        return PL_EINVAL;
    old = pl__os_cancel_defer();
    rc = release(lock);
    pl__os_cancel_restore(old);
    return rc;
}

static int release(pl_lock_t *lock) {
    int rc;

    if (lock->count == 0)
        return pl__lock_fail(lock, PL_ENOTHELD, 0,
                             lock->reentrant
                                 ? "%s: cannot release more times than acquired"
                                 : "%s: not held",
                             lock->path);
    if (lock->owner_pid != pl__os_getpid()) {
        /* A forked child: the lock belongs to the parent.  Drop our copy
         * without unlocking (portalocker 2.2.1 released the parent's flock). */
        lock->ops->forget(lock);
        lock->count = 0;
        return pl__lock_fail(lock, PL_EFORKED, 0,
                             "%s: acquired by process %ld, not released here",
                             lock->path, lock->owner_pid);
    }
    if (lock->count > 1) {
        lock->count--;
        return PL_OK;
    }
    rc = lock->ops->release(lock);
    /* The kind closed everything even on error: the object is not held. */
    lock->count = 0;
    lock->fd = PL_INVALID_FD;
    lock->fp = NULL;
    lock->fencing_token = 0;
    return rc;
}

int pl_lock_close(pl_lock_t *lock) {
    int rc = PL_OK, idle = PL__IDLE, old;

    if (lock == NULL)
        return PL_OK;
    /* Freeing under another thread's acquire was a use-after-free.  (A
     * close racing with an acquire that has not started yet cannot be
     * caught: the caller must not use a closed object.) */
    if (!atomic_compare_exchange_strong(&lock->state, &idle, PL__CLOSING))
        return PL_EBUSY;
    old = pl__os_cancel_defer();
    if (lock->count > 0) {
        lock->count = 1; /* close releases fully, whatever the RLock depth */
        rc = release(lock);
    }
    if (lock->ops->destroy != NULL)
        lock->ops->destroy(lock);
    pl__os_wait_free(lock->wait);
    free(lock); /* and the path with it */
    pl__os_cancel_restore(old);
    return rc;
}

int pl_lock_check(pl_lock_t *lock) {
    if (lock == NULL)
        return PL_EINVAL;
    if (lock->count == 0)
        return PL_ENOTHELD;
    if (lock->ops->check != NULL)
        return lock->ops->check(lock);
    return PL_OK;
}

int pl_lock_is_held(const pl_lock_t *lock) {
    return lock != NULL && lock->count > 0;
}

int pl_lock_count(const pl_lock_t *lock) {
    return lock != NULL ? lock->count : 0;
}

pl_fd_t pl_lock_fileno(const pl_lock_t *lock) {
    if (lock == NULL || lock->count == 0 || lock->fd == PL_INVALID_FD)
        return PL_INVALID_FD;
    pl__os_fd_handout(lock->fd);
    return lock->fd;
}

FILE *pl_lock_file(pl_lock_t *lock) {
    if (lock == NULL || lock->count == 0 || lock->fd == PL_INVALID_FD)
        return NULL;
    if (lock->fp == NULL) {
        pl__os_fd_handout(lock->fd);
        lock->fp = pl__os_fdopen(lock->fd, lock->mode);
    }
    return lock->fp;
}

const char *pl_lock_path(const pl_lock_t *lock) {
    return lock != NULL ? lock->path : NULL;
}

pl_backend_t pl_lock_backend(const pl_lock_t *lock) {
    return lock != NULL ? lock->backend : PL_BACKEND_DEFAULT;
}

int pl_lock_os_error(const pl_lock_t *lock) {
    return lock != NULL ? lock->os_error : 0;
}

const char *pl_lock_errmsg(const pl_lock_t *lock) {
    if (lock == NULL)
        return "invalid argument: NULL lock";
    return lock->errmsg;
}

uint64_t pl_lock_fencing_token(const pl_lock_t *lock) {
    return lock != NULL && lock->count > 0 ? lock->fencing_token : 0;
}
