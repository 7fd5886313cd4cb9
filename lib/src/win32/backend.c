/*
 * backend.c -- the Windows lock backend (PL_BACKEND_LOCKFILEEX) and its
 * timed wait.
 *
 * WHAT LOCKFILEEX GUARANTEES
 *
 * LockFileEx locks a byte range of a file.  Like portalocker 4 we lock one
 * fixed range anchored at offset 0 whatever the file position: offset 0,
 * length 0xFFFF0000_00000000 (pywin32's LockFileEx(h, mode, 0, -0x10000,
 * overlapped)), exclusive or shared, so C and Python processes exclude each
 * other.  Semantics that differ from POSIX:
 *
 *   - Locks are MANDATORY.  While a range is locked exclusively, reads and
 *     writes of it through any other handle fail (ERROR_LOCK_VIOLATION),
 *     even from the same process; under a shared lock nobody may write it,
 *     the holder included.  So lock a separate lock file, never the data
 *     file itself (a data file could not be read by the other processes).
 *   - Locks belong to the HANDLE (the file object), not to the process:
 *     two handles opened separately in one process exclude each other, as
 *     with flock and OFD.  Unlock goes through the same handle.  A child
 *     process does not inherit a lock unless it inherits the handle (our
 *     handles are never inheritable), and then both share it.
 *   - Locks do not stack the POSIX way: locking an exclusively locked range
 *     again through the same handle fails, and there is no in-place upgrade
 *     from shared to exclusive.  (The lock objects never do either.)
 *   - Closing the handle or ending the process releases the lock; Microsoft
 *     says the release at exit "depends upon available system resources",
 *     so release explicitly (every lock kind does).
 *
 * TIMED WAITS
 *
 * After one LOCKFILE_FAIL_IMMEDIATELY attempt (the uncontended fast path),
 * a timed acquire waits in the kernel with no helper thread: the lock files
 * are opened with FILE_FLAG_OVERLAPPED, so LockFileEx without
 * LOCKFILE_FAIL_IMMEDIATELY returns ERROR_IO_PENDING at once and signals an
 * event when the lock is granted.  We WaitForSingleObject on that event
 * until the deadline; then CancelIoEx the request and GetOverlappedResult
 * (waiting) to learn how it ended: ERROR_OPERATION_ABORTED means cancelled,
 * success means the grant raced the cancel.  A raced grant is kept only
 * once it is verified: UnlockFileEx of our range succeeds only if this
 * handle really holds it, and then one immediate attempt re-takes it.
 *
 * Under Wine (detected at run time: ntdll exports wine_get_version) that
 * path cannot work.  Wine 8.0 does not implement the asynchronous lock wait
 * ("fixme:file:NtLockFile Async I/O lock wait not implemented"): the event
 * is never signalled, and after CancelIoEx GetOverlappedResult reports
 * success WITHOUT the lock held (a third process then got it).
 * CancelSynchronousIo cannot interrupt a blocked LockFileEx there either.
 * So under Wine a timed wait polls with LOCKFILE_FAIL_IMMEDIATELY, backing
 * off from 1 ms to check_interval, and pl_probe() reports that LockFileEx
 * cannot wait in the kernel there.
 *
 * A handle that was not opened for overlapped I/O (pl_lock_fd on a handle
 * of the caller's) waits forever with a plain blocking LockFileEx, and a
 * timed wait on it polls: a synchronous request cannot be cancelled without
 * a second thread.
 */
#include "win32/win32.h"

#include <stdlib.h>
#include <string.h>

/* portalocker's range: offset 0, nNumberOfBytesToLockLow 0, High -0x10000. */
#define RANGE_LOW  0u
#define RANGE_HIGH 0xFFFF0000u

/* ---- backends and the process default ------------------------------------ */

int pl__os_backend_available(pl_backend_t backend) {
    return backend == PL_BACKEND_LOCKFILEEX;
}

static INIT_ONCE env_once = INIT_ONCE_STATIC_INIT;
static pl_backend_t env_backend = PL_BACKEND_LOCKFILEEX;

/* PORTALOCK_BACKEND naming an unavailable backend is ignored, as on POSIX
 * (the library cannot complain; the CLI validates it loudly). */
static BOOL CALLBACK read_env_backend(PINIT_ONCE once, PVOID param,
                                      PVOID *ctx) {
    const char *v = getenv("PORTALOCK_BACKEND");
    pl_backend_t b;
    (void)once;
    (void)param;
    (void)ctx;
    if (v != NULL && pl_backend_from_name(v, &b) == PL_OK &&
        b != PL_BACKEND_DEFAULT && pl__os_backend_available(b))
        env_backend = b;
    return TRUE;
}

pl_backend_t pl__os_native_default_backend(void) {
    InitOnceExecuteOnce(&env_once, read_env_backend, NULL, NULL);
    return env_backend;
}

/* ---- wait tokens (pl_lock_interrupt) ------------------------------------- */

/* A manual-reset event: pl_lock_interrupt sets it, a wait watches it. */
struct pl__wait {
    HANDLE event;
};

int pl__os_wait_new(pl__wait_t **out) {
    pl__wait_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return PL_ENOMEM;
    t->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (t->event == NULL) {
        free(t);
        return PL_ENOMEM;
    }
    *out = t;
    return PL_OK;
}

void pl__os_wait_free(pl__wait_t *tok) {
    if (tok == NULL)
        return;
    CloseHandle(tok->event);
    free(tok);
}

void pl__os_wait_reset(pl__wait_t *tok) {
    if (tok != NULL)
        ResetEvent(tok->event);
}

void pl__os_wait_interrupt(pl__wait_t *tok) {
    if (tok != NULL)
        SetEvent(tok->event);
}

/* Windows has no signals: the waits are interruptible through the token
 * already, with no helper thread to replace. */
int pl__os_set_wait_signal(int signo, pl_error_t *err) {
    if (signo == 0)
        return PL_OK;
    return pl__error_set(err, PL_ENOTSUP, 0,
                         "no signals on Windows: waits need no wait signal "
                         "(they are overlapped and interruptible already)");
}

int pl__os_wait_signal(void) {
    return 0;
}

/* ---- one attempt --------------------------------------------------------- */

static DWORD lock_flags(unsigned flags) {
    return (flags & PL_SHARED) ? 0 : LOCKFILE_EXCLUSIVE_LOCK;
}

static int check_fd(pl_fd_t fd, pl_error_t *err) {
    if (fd == PL_INVALID_FD || fd == 0)
        return pl__error_set(err, PL_EINVAL, 0, "invalid handle %p",
                             (void *)fd);
    return PL_OK;
}

/*
 * One LOCKFILE_FAIL_IMMEDIATELY attempt; returns 0 or the Win32 error.  On
 * an overlapped handle the request may still report ERROR_IO_PENDING: its
 * result is then collected (it completes at once either way).
 */
static DWORD try_once(HANDLE h, unsigned flags) {
    OVERLAPPED ov;
    DWORD n;

    memset(&ov, 0, sizeof(ov));
    if (pl__sys.LockFileEx(h, lock_flags(flags) | LOCKFILE_FAIL_IMMEDIATELY, 0,
                           RANGE_LOW, RANGE_HIGH, &ov))
        return 0;
    if (GetLastError() != ERROR_IO_PENDING)
        return GetLastError();
    if (GetOverlappedResult(h, &ov, &n, TRUE))
        return 0;
    return GetLastError();
}

static DWORD unlock_once(HANDLE h) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    return pl__sys.UnlockFileEx(h, 0, RANGE_LOW, RANGE_HIGH, &ov)
               ? 0
               : GetLastError();
}

static int is_contention(DWORD e) {
    return e == ERROR_LOCK_VIOLATION;
}

static int lock_error(pl_error_t *err, DWORD e, HANDLE h) {
    return pl__error_set(err, pl__code_from_os((int)e), (int)e,
                         "LockFileEx(%p)", (void *)h);
}

int pl__os_unlock(pl_fd_t fd, pl_backend_t backend, pl_error_t *err) {
    DWORD e;
    int rc;
    (void)backend;
    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    /* Unlocking a range that is not locked is not an error, as with
     * flock(LOCK_UN) and F_UNLCK.  Windows says ERROR_NOT_LOCKED; Wine says
     * ERROR_LOCK_VIOLATION when another handle holds the range (this one
     * then holds nothing to unlock either). */
    if ((e = unlock_once((HANDLE)fd)) != 0 && e != ERROR_NOT_LOCKED &&
        e != ERROR_LOCK_VIOLATION)
        return pl__error_set(err, pl__code_from_os((int)e), (int)e,
                             "unlock: UnlockFileEx(%p)", (void *)fd);
    return PL_OK;
}

/*
 * Whether this handle really holds the range after a completion we do not
 * trust: UnlockFileEx succeeds only for a lock of this handle; then one
 * immediate attempt takes it again (it may be lost in that instant: then
 * we report contention rather than a lock we do not have).
 */
static int verify_held(HANDLE h, unsigned flags) {
    if (unlock_once(h) != 0)
        return 0;
    return try_once(h, flags) == 0;
}

/* ---- waiting: polling ------------------------------------------------------
 */

#define NS_PER_S 1000000000LL

static int64_t deadline_after(double timeout) {
    if (timeout < 0 || timeout >= 1e9) /* longer than 30 years: forever */
        return -1;
    return pl__os_monotonic_ns() + (int64_t)(timeout * 1e9);
}

/* Immediate attempts until deadline_ns (< 0: forever), sleeping 1 ms at
 * first and doubling up to interval, so a short hold is noticed fast and a
 * long one costs few wake-ups. */
static int interrupted(pl_error_t *err, HANDLE h) {
    return pl__error_set(err, PL_EINTR, 0,
                         "LockFileEx(%p): wait interrupted by "
                         "pl_lock_interrupt",
                         (void *)h);
}

static int poll_until(HANDLE h, unsigned flags, int64_t deadline_ns,
                      double interval, double timeout, pl__wait_t *tok,
                      pl_error_t *err) {
    double step = 0.001;
    if (!(interval > 0))
        interval = 0.001;
    for (;;) {
        double s = step < interval ? step : interval;
        DWORD e;
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - pl__os_monotonic_ns();
            if (left <= 0)
                break;
            if (s > (double)left / 1e9)
                s = (double)left / 1e9;
        }
        if (tok != NULL) {
            DWORD ms = (DWORD)(s * 1000.0);
            if (WaitForSingleObject(tok->event, ms > 0 ? ms : 1) ==
                WAIT_OBJECT_0)
                return try_once(h, flags) == 0 ? PL_OK : interrupted(err, h);
        } else {
            pl__os_sleep(s);
        }
        step *= 2;
        e = try_once(h, flags);
        if (e == 0)
            return PL_OK;
        if (!is_contention(e))
            return lock_error(err, e, h);
    }
    return pl__error_set(err, PL_ETIMEDOUT, 0,
                         "LockFileEx(%p): still locked after %gs (polling)",
                         (void *)h, timeout);
}

/* ---- waiting in the kernel: overlapped LockFileEx ------------------------ */

/* Milliseconds to wait for; INFINITE for forever. */
static DWORD wait_ms(int64_t deadline_ns) {
    int64_t left;
    if (deadline_ns < 0)
        return INFINITE;
    left = deadline_ns - pl__os_monotonic_ns();
    if (left <= 0)
        return 0;
    /* Round up, so we never give up before the deadline. */
    left = (left + 999999) / 1000000;
    return left >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)left;
}

static int overlapped_wait(HANDLE h, unsigned flags, int64_t deadline_ns,
                           double timeout, pl__wait_t *tok, pl_error_t *err) {
    OVERLAPPED ov;
    HANDLE events[2];
    DWORD n, w, e;
    int rc, by_token = 0;

    memset(&ov, 0, sizeof(ov));
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL)
        return pl__error_set(err, pl__code_from_os((int)GetLastError()),
                             (int)GetLastError(), "CreateEvent");
    if (pl__sys.LockFileEx(h, lock_flags(flags), 0, RANGE_LOW, RANGE_HIGH,
                           &ov)) {
        rc = PL_OK;
        goto out;
    }
    if ((e = GetLastError()) != ERROR_IO_PENDING) {
        rc = lock_error(err, e, h);
        goto out;
    }
    events[0] = ov.hEvent;
    events[1] = tok != NULL ? tok->event : NULL;
    for (;;) {
        w = WaitForMultipleObjects(tok != NULL ? 2 : 1, events, FALSE,
                                   wait_ms(deadline_ns));
        if (w == WAIT_OBJECT_0 + 1) { /* pl_lock_interrupt */
            by_token = 1;
            w = WAIT_TIMEOUT;
            break;
        }
        if (w != WAIT_TIMEOUT || deadline_ns < 0 ||
            pl__os_monotonic_ns() >= deadline_ns)
            break;
    }
    if (w == WAIT_OBJECT_0) {
        if (GetOverlappedResult(h, &ov, &n, FALSE))
            rc = PL_OK;
        else
            rc = lock_error(err, GetLastError(), h);
        goto out;
    }
    /* The deadline (or a failed wait): cancel, then learn how it ended. */
    e = w == WAIT_FAILED ? GetLastError() : 0;
    CancelIoEx(h, &ov);
    if (GetOverlappedResult(h, &ov, &n, TRUE)) {
        /* Granted as we cancelled; keep it once verified. */
        if (verify_held(h, flags)) {
            rc = PL_OK;
            goto out;
        }
    } else if (GetLastError() != ERROR_OPERATION_ABORTED) {
        rc = lock_error(err, GetLastError(), h);
        goto out;
    }
    if (e != 0) {
        rc = pl__error_set(err, pl__code_from_os((int)e), (int)e,
                           "WaitForMultipleObjects");
        goto out;
    }
    if (by_token) {
        rc = try_once(h, flags) == 0 ? PL_OK : interrupted(err, h);
        goto out;
    }
    /* The holder may have released just now: one last immediate attempt,
     * as the POSIX backends do. */
    e = try_once(h, flags);
    if (e == 0)
        rc = PL_OK;
    else if (!is_contention(e))
        rc = lock_error(err, e, h);
    else
        rc = pl__error_set(err, PL_ETIMEDOUT, 0,
                           "LockFileEx(%p): still locked after %gs", (void *)h,
                           timeout);
out:
    CloseHandle(ov.hEvent);
    return rc;
}

/* A synchronous handle, waiting forever: the plain blocking call. */
static int blocking_wait(HANDLE h, unsigned flags, pl_error_t *err) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    if (pl__sys.LockFileEx(h, lock_flags(flags), 0, RANGE_LOW, RANGE_HIGH, &ov))
        return PL_OK;
    return lock_error(err, GetLastError(), h);
}

/* ---- entry points -------------------------------------------------------- */

/*
 * The timed acquire (see the essay above).  may_poll = 0 reports "cannot
 * wait in the kernel here" as PL_ENOTSUP instead of polling (the probe).
 */
static int lock_timed(pl_fd_t fd, unsigned flags, double timeout,
                      double check_interval, int may_poll, pl__wait_t *tok,
                      pl_error_t *err) {
    HANDLE h = (HANDLE)fd;
    int64_t deadline_ns;
    int overlapped, rc;
    DWORD e;

    if ((rc = check_fd(fd, err)) != PL_OK)
        return rc;
    e = try_once(h, flags);
    if (e == 0)
        return PL_OK;
    if (!is_contention(e) || timeout == 0)
        return lock_error(err, e, h);
    deadline_ns = deadline_after(timeout);
    overlapped = pl__win_handle_overlapped(h);
    if (overlapped == 1 && !pl__win_is_wine())
        return overlapped_wait(h, flags, deadline_ns, timeout, tok, err);
    if (overlapped == 0 && deadline_ns < 0 && tok == NULL)
        return blocking_wait(h, flags, err);
    if (!may_poll)
        return pl__error_set(err, PL_ENOTSUP, 0,
                             "LockFileEx(%p): cannot wait in the kernel here "
                             "(%s)",
                             (void *)h,
                             pl__win_is_wine()
                                 ? "Wine does not implement overlapped lock "
                                   "waits"
                                 : "handle not opened for overlapped I/O");
    return poll_until(h, flags, deadline_ns, check_interval, timeout, tok, err);
}

int pl__os_lock_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                      double timeout, double check_interval, pl_error_t *err) {
    (void)backend;
    return lock_timed(fd, flags, timeout, check_interval, 1, NULL, err);
}

int pl__os_lock_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                     double timeout, double check_interval, pl__wait_t *tok,
                     pl_error_t *err) {
    (void)backend;
    if (flags & PL_NON_BLOCKING)
        timeout = 0;
    return lock_timed(fd, flags, timeout, check_interval, 1, tok, err);
}

int pl__os_lock_kernel_wait(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                            double timeout, pl_error_t *err) {
    (void)backend;
    return lock_timed(fd, flags, timeout, 0, 0, NULL, err);
}

int pl__os_lock(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                pl_error_t *err) {
    double timeout = (flags & PL_NON_BLOCKING) ? 0.0 : -1.0;
    return pl__os_lock_timed(fd, flags, backend, timeout, 0.25, err);
}
