/*
 * file_lock.c -- the file lock kinds (Lock, RLock, TemporaryFileLock,
 * PidFileLock) behind pl__lock_ops_t, and the low-level pl_lock_fd family.
 *
 * Each kind's acquire opens the file and locks it through the backend
 * (posix/backend.c), which waits in the kernel; this file only decides what
 * to open, what to verify and what to clean up.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- low-level: pl_lock_fd, pl_lock_fd_timed, pl_unlock_fd --------------- */

static int backend_check(pl_backend_t backend, pl_error_t *err) {
    if (backend != PL_BACKEND_DEFAULT && !pl_backend_available(backend))
        return pl__error_set(err, PL_ENOTSUP, 0,
                             "backend %s is not available here",
                             pl_backend_name(backend));
    return PL_OK;
}

int pl_lock_fd(pl_fd_t fd, unsigned flags, pl_backend_t backend,
               pl_error_t *err) {
    int rc;
    if ((rc = pl__flags_check(flags, err)) != PL_OK ||
        (rc = backend_check(backend, err)) != PL_OK)
        return rc;
    return pl__os_lock(fd, flags | PL__CALLER_FD, pl__backend_resolve(backend),
                       err);
}

int pl_lock_fd_timed(pl_fd_t fd, unsigned flags, pl_backend_t backend,
                     double timeout, pl_error_t *err) {
    int rc;
    if ((rc = pl__flags_check(flags, err)) != PL_OK ||
        (rc = backend_check(backend, err)) != PL_OK)
        return rc;
    if (timeout != timeout)
        return pl__error_set(err, PL_EINVAL, 0, "timeout is not a number");
    return pl__os_lock_timed(fd, flags | PL__CALLER_FD,
                             pl__backend_resolve(backend), timeout, 0.25, err);
}

int pl_unlock_fd(pl_fd_t fd, pl_backend_t backend, pl_error_t *err) {
    int rc;
    if ((rc = backend_check(backend, err)) != PL_OK)
        return rc;
    return pl__os_unlock(fd, pl__backend_resolve(backend), err);
}

/* ---- shared steps -------------------------------------------------------- */

/* "flock(fd 5): Resource..." becomes "/x/y.lock: flock(fd 5): Resource...". */
static int with_path(pl_error_t *e, const char *path) {
    size_t cap = sizeof(e->msg) - 1, pl = strlen(path), ml = strlen(e->msg);
    if (pl + 2 > cap)
        pl = cap - 2;
    if (pl + 2 + ml > cap)
        ml = cap - pl - 2;
    memmove(e->msg + pl + 2, e->msg, ml);
    memcpy(e->msg, path, pl);
    e->msg[pl] = ':';
    e->msg[pl + 1] = ' ';
    e->msg[pl + 2 + ml] = '\0';
    return e->code;
}

static unsigned lock_type(const pl_lock_t *lock) {
    return (lock->opts.flags & PL_SHARED) ? PL_SHARED : PL_EXCLUSIVE;
}

/* Closes a descriptor we hold, via the FILE* if pl_lock_file made one. */
static int close_fd(pl_lock_t *lock, pl_fd_t fd, pl_error_t *e) {
    if (lock->fp != NULL && lock->fd == fd) {
        FILE *fp = lock->fp;
        lock->fp = NULL;
        if (fclose(fp) != 0)
            return pl__error_set(e, pl__code_from_os(pl__os_crt_error()),
                                 pl__os_crt_error(), "fclose(%s)", lock->path);
        return PL_OK;
    }
    return pl__os_close(fd, e);
}

/*
 * Lock.acquire without the bookkeeping: opens path in mode, takes the lock
 * (fail_when_locked: a single attempt; else waiting up to timeout) and, for
 * the "w" modes, truncates once the lock is held.  Nothing stays open on
 * failure.
 */
static int open_and_lock(pl_lock_t *lock, const char *path, const char *mode,
                         double timeout, double check_interval,
                         int fail_when_locked, pl_fd_t *out, pl_error_t *e) {
    pl_fd_t fd;
    int rc;

    rc = pl__os_open_lockfile(path, mode, lock->opts.file_perms, &fd, e);
    if (rc != PL_OK)
        return rc;
    rc = pl__os_lock_wait(fd, lock_type(lock), lock->backend,
                          fail_when_locked ? 0.0 : timeout, check_interval,
                          lock->wait, e);
    if (rc != PL_OK) {
        with_path(e, path);
        pl__os_close(fd, NULL);
        return rc;
    }
    if (mode[0] == 'w' && (rc = pl__os_truncate_after_lock(fd, e)) != PL_OK) {
        pl__os_unlock(fd, lock->backend, NULL);
        pl__os_close(fd, NULL);
        return with_path(e, path);
    }
    *out = fd;
    return PL_OK;
}

/* Time left until deadline (seconds, >= 0); a negative timeout stays. */
static double time_left(double timeout, double deadline) {
    double left;
    if (timeout < 0)
        return timeout;
    left = deadline - pl__os_monotonic();
    return left > 0 ? left : 0;
}

#define VERIFY_MIN_TRIES 3
#define VERIFY_MAX_TRIES 10000

/* What contention at the deadline is called: PL_ELOCKED for a single
 * attempt (timeout 0 or fail_when_locked), PL_ETIMEDOUT after a wait. */
static int contention_code(double timeout, int fail_when_locked) {
    return fail_when_locked || timeout == 0 ? PL_ELOCKED : PL_ETIMEDOUT;
}

/*
 * open_and_lock, then check that the locked descriptor is still the file at
 * path: another process may have unlinked it (TemporaryFileLock's release)
 * or replaced it between our open and our lock, and then we would hold a
 * lock nobody else can see (portalocker #115, py-filelock #574).  On a
 * mismatch: unlock, close and retry within the same deadline (at least a
 * few times, so timeout 0 survives one unlucky race).
 *
 * Landing on a file that its holder has just unlinked is ordinary
 * contention (holders releasing one after another): when the deadline
 * comes it is reported as such, PL_ETIMEDOUT or PL_ELOCKED.  PL_EREPLACED
 * ("split-brain") is kept for a path that points to another file while the
 * one we locked still has a name: someone replaces it outside the protocol.
 */
static int acquire_verified(pl_lock_t *lock, const char *path, const char *mode,
                            double timeout, double check_interval,
                            int fail_when_locked, pl_fd_t *out, pl_error_t *e) {
    double deadline = pl__os_monotonic() + (timeout > 0 ? timeout : 0);
    int tries, orphan = 0;

    for (tries = 1; tries <= VERIFY_MAX_TRIES; tries++) {
        pl_fd_t fd = PL_INVALID_FD;
        int rc, match;

        rc = open_and_lock(lock, path, mode, time_left(timeout, deadline),
                           check_interval, fail_when_locked, &fd, e);
        if (rc == PL_ELOCKED)
            /* A retry that found the lock held once the time was up, or a
             * first attempt whose deadline (a few microseconds) had passed
             * before it began, so that it was made as a single attempt: the
             * caller's wait timed out (PL_ELOCKED only for one attempt). */
            e->code = rc = contention_code(timeout, fail_when_locked);
        if (rc != PL_OK)
            return rc;
        match = pl__os_fd_matches_path(fd, path, e);
        if (match == 1) {
            *out = fd;
            return PL_OK;
        }
        orphan = match == 0 && pl__os_fd_unlinked(fd) == 1;
        pl__os_unlock(fd, lock->backend, NULL);
        pl__os_close(fd, NULL);
        if (match < 0)
            return match;
        if (tries >= VERIFY_MIN_TRIES && timeout >= 0 &&
            pl__os_monotonic() >= deadline)
            break;
    }
    if (tries > VERIFY_MAX_TRIES)
        tries = VERIFY_MAX_TRIES;
    if (orphan)
        return pl__error_set(e, contention_code(timeout, fail_when_locked), 0,
                             "%s: %s; each lock taken was on a file its "
                             "holder had just removed (%d attempts)",
                             path,
                             contention_code(timeout, fail_when_locked) ==
                                     PL_ELOCKED
                                 ? "held by others"
                                 : "timed out",
                             tries);
    return pl__error_set(e, PL_EREPLACED, 0,
                         "%s kept being replaced while locking (split-brain), "
                         "%d attempts",
                         path, tries);
}

/* ---- Lock and RLock ------------------------------------------------------ */

static int lock_acquire(pl_lock_t *lock, double timeout, double check_interval,
                        int fail_when_locked) {
    pl_error_t e;
    int rc = open_and_lock(lock, lock->path, lock->mode, timeout,
                           check_interval, fail_when_locked, &lock->fd, &e);
    return rc == PL_OK ? PL_OK : pl__lock_fail_from(lock, &e);
}

/* Flush (while still held), unlock, close; the first error wins. */
static int unlock_and_close(pl_lock_t *lock, pl_fd_t fd, pl_error_t *e) {
    int rc = PL_OK, rc2;

    if (lock->fp != NULL && fflush(lock->fp) != 0)
        rc = pl__error_set(e, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "fflush(%s)", lock->path);
    rc2 = pl__os_unlock(fd, lock->backend, rc == PL_OK ? e : NULL);
    if (rc == PL_OK)
        rc = rc2;
    rc2 = close_fd(lock, fd, rc == PL_OK ? e : NULL);
    return rc == PL_OK ? rc2 : rc;
}

static int lock_release(pl_lock_t *lock) {
    pl_error_t e;
    int rc = unlock_and_close(lock, lock->fd, &e);
    return rc == PL_OK ? PL_OK : pl__lock_fail_from(lock, &e);
}

/* A forked child's copy: close it without unlocking or flushing the
 * parent's buffered data a second time. */
static void lock_forget(pl_lock_t *lock) {
    if (lock->fp != NULL)
        pl__os_fclose_discard(lock->fp);
    else if (lock->fd != PL_INVALID_FD)
        pl__os_close(lock->fd, NULL);
    lock->fp = NULL;
    lock->fd = PL_INVALID_FD;
}

static const pl__lock_ops_t lock_ops = {
    "lock", lock_acquire, lock_release, lock_forget, NULL, NULL,
};
static const pl__lock_ops_t rlock_ops = {
    "rlock", lock_acquire, lock_release, lock_forget, NULL, NULL,
};

/*
 * Every file kind keeps its path absolute (portalocker 4.1.1+), so a
 * release after chdir() unlinks and unlocks what acquire created.
 */
static int file_lock_new(pl_lock_t **out, const pl__lock_ops_t *ops,
                         const char *path, const pl_lock_options_t *opts,
                         int default_fail_when_locked) {
    char *abs = NULL;
    int rc;

    if (out == NULL)
        return PL_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return PL_EINVAL;
    if ((rc = pl__os_abspath(path, &abs, NULL)) != PL_OK)
        return rc;
    rc = pl__lock_new(out, ops, abs, opts, default_fail_when_locked);
    free(abs);
    return rc;
}

int pl_lock_open(pl_lock_t **out, const char *path,
                 const pl_lock_options_t *opts) {
    return file_lock_new(out, &lock_ops, path, opts, 0);
}

int pl_rlock_open(pl_lock_t **out, const char *path,
                  const pl_lock_options_t *opts) {
    int rc = file_lock_new(out, &rlock_ops, path, opts, 0);
    if (rc == PL_OK)
        (*out)->reentrant = 1;
    return rc;
}

/* ---- TemporaryFileLock --------------------------------------------------- */

static int temporary_acquire(pl_lock_t *lock, double timeout,
                             double check_interval, int fail_when_locked) {
    pl_error_t e;
    int rc = acquire_verified(lock, lock->path, lock->mode, timeout,
                              check_interval, fail_when_locked, &lock->fd, &e);
    return rc == PL_OK ? PL_OK : pl__lock_fail_from(lock, &e);
}

/*
 * Unlinks path while still holding fd's lock (only if path is still our
 * file: never someone else's), then unlocks and closes.  The unlock runs
 * even if the unlink failed; the first error is returned.
 */
static int unlink_then_release(pl_lock_t *lock, const char *path, pl_fd_t fd,
                               pl_error_t *e) {
    int rc = PL_OK, rc2;
    int match = pl__os_fd_matches_path(fd, path, e);

    if (match < 0)
        rc = match;
    else if (match == 1)
        rc = pl__os_unlink(path, e);
    rc2 = unlock_and_close(lock, fd, rc == PL_OK ? e : NULL);
    return rc == PL_OK ? rc2 : rc;
}

static int temporary_release(pl_lock_t *lock) {
    pl_error_t e;
    int rc = unlink_then_release(lock, lock->path, lock->fd, &e);
    return rc == PL_OK ? PL_OK : pl__lock_fail_from(lock, &e);
}

/* PL_OK while fd is still the file at path; PL_ELOST once it was removed
 * or replaced (another process may then hold a lock on the new file). */
static int check_same_file(pl_lock_t *lock, const char *path) {
    pl_error_t e;
    int match = pl__os_fd_matches_path(lock->fd, path, &e);
    if (match == 1)
        return PL_OK;
    if (match == 0)
        return pl__lock_fail(lock, PL_ELOST, 0,
                             "%s was removed or replaced while held: the "
                             "lock no longer excludes anyone",
                             path);
    return pl__lock_fail_from(lock, &e);
}

static int temporary_check(pl_lock_t *lock) {
    return check_same_file(lock, lock->path);
}

static const pl__lock_ops_t temporary_ops = {
    "temporary", temporary_acquire, temporary_release,
    lock_forget, temporary_check,   NULL,
};

int pl_temporary_lock_open(pl_lock_t **out, const char *path,
                           const pl_lock_options_t *opts) {
    pl_lock_options_t o;
    if (opts != NULL)
        o = *opts;
    else
        pl_lock_options_init(&o);
    o.mode = "w";
    return file_lock_new(out, &temporary_ops, path, &o, 1);
}

/* ---- PidFileLock ---------------------------------------------------------
 *
 * The OS lock is on the sidecar "<path>.lock"; the PID file holds the
 * holder's PID as a plain decimal (what Python's portalocker reads and
 * writes).  A PID means something only on its host and in its PID
 * namespace, so the holder also records those, in the sidecar (which no
 * other implementation reads, so the PID file stays interoperable):
 *
 *   portalock-holder 1
 *   pid 1234
 *   host build-7
 *   pidns 4:4026531836
 *   end
 *
 * A reader judges liveness locally only when the record is its own host and
 * namespace (or there is no record: a Python holder); otherwise the answer
 * is "unknown" (alive -1, local 0).
 */

typedef struct pidfile_impl {
    char *sidecar; /* "<path>.lock", the file actually locked */
} pidfile_impl_t;

static char *sidecar_name(const char *path);

static const char *sidecar_of(const pl_lock_t *lock) {
    return ((const pidfile_impl_t *)lock->impl)->sidecar;
}

/* This process's host and PID namespace, as recorded. */
static void self_identity(char *host, size_t hlen, char *ns, size_t nlen) {
    if (pl__os_hostname(host, hlen) != PL_OK)
        host[0] = '\0';
    if (pl__os_pid_namespace(ns, nlen) != PL_OK)
        ns[0] = '\0';
}

/* The record above for this process. */
static void holder_record(char *buf, size_t len) {
    char host[256], ns[64];
    self_identity(host, sizeof(host), ns, sizeof(ns));
    snprintf(buf, len, "portalock-holder 1\npid %ld\nhost %s\npidns %s\nend\n",
             pl__os_getpid(), host, ns);
}

/* Parses a record; 0 if it is complete and well formed. */
static int parse_record(char *text, long *pid, char *host, size_t hlen,
                        char *ns, size_t nlen) {
    int seen = 0;
    char *line = text, *nl;

    *pid = 0;
    host[0] = ns[0] = '\0';
    if (strncmp(text, "portalock-holder 1\n", 19) != 0)
        return -1;
    for (line = text + 19; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (strncmp(line, "pid ", 4) == 0) {
            char *end;
            *pid = strtol(line + 4, &end, 10);
            seen |= *end == '\0' && *pid > 0 ? 1 : 0;
        } else if (strncmp(line, "host ", 5) == 0) {
            snprintf(host, hlen, "%s", line + 5);
            seen |= 2;
        } else if (strncmp(line, "pidns ", 6) == 0) {
            snprintf(ns, nlen, "%s", line + 6);
            seen |= 4;
        } else if (strcmp(line, "end") == 0) {
            return seen == 7 ? 0 : -1;
        }
    }
    return -1; /* no "end": absent, or being written */
}

/* Fills h (pid already set) from the sidecar's record and the local
 * checks. */
static void judge_holder(const pl_lock_t *lock, pl_holder_info_t *h) {
    char text[512], host[256], ns[64], my_host[256], my_ns[64];
    long rec_pid;

    h->host[0] = '\0';
    h->local = -1;
    if (pl__os_read_file(sidecar_of(lock), text, sizeof(text), NULL, NULL) ==
            PL_OK &&
        parse_record(text, &rec_pid, host, sizeof(host), ns, sizeof(ns)) == 0 &&
        rec_pid == h->pid) {
        self_identity(my_host, sizeof(my_host), my_ns, sizeof(my_ns));
        snprintf(h->host, sizeof(h->host), "%s", host);
        /* Both "" (no PID namespaces on either side) counts as equal. */
        h->local = strcmp(host, my_host) == 0 && strcmp(ns, my_ns) == 0;
    }
    /* Another host or PID namespace: a local kill(pid, 0) would judge some
     * unrelated process. */
    h->alive = h->local == 0 ? -1 : pl__os_pid_alive(h->pid);
}

/* Who holds it: the PID published in path, judged as above. */
static void read_holder(pl_lock_t *lock) {
    pl_holder_info_t *h = &lock->holder;
    memset(h, 0, sizeof(*h));
    if (pl_pidfile_read(lock->path, &h->pid, NULL) != PL_OK) {
        h->pid = 0;
        h->alive = -1;
        h->local = -1;
        return;
    }
    judge_holder(lock, h);
}

static void set_self_holder(pl_lock_t *lock) {
    pl_holder_info_t *h = &lock->holder;
    memset(h, 0, sizeof(*h));
    h->pid = pl__os_getpid();
    h->alive = 1;
    h->local = 1;
    pl__os_hostname(h->host, sizeof(h->host));
}

static int pidfile_acquire(pl_lock_t *lock, double timeout,
                           double check_interval, int fail_when_locked) {
    char pid[32], record[512];
    pl_fd_t fd;
    pl_error_t e;
    int rc;

    rc = acquire_verified(lock, sidecar_of(lock), lock->mode, timeout,
                          check_interval, fail_when_locked, &fd, &e);
    if (rc != PL_OK) {
        if (PL_IS_ALREADY_LOCKED(rc)) {
            read_holder(lock);
            if (lock->holder.pid > 0) {
                size_t n = strlen(e.msg);
                if (lock->holder.local == 0)
                    snprintf(e.msg + n, sizeof(e.msg) - n,
                             " (held by pid %ld on host %.64s, another host or "
                             "PID namespace)",
                             lock->holder.pid, lock->holder.host);
                else
                    snprintf(e.msg + n, sizeof(e.msg) - n, " (held by pid %ld)",
                             lock->holder.pid);
            }
        }
        return pl__lock_fail_from(lock, &e);
    }
    /* Temporary files a killed holder left while publishing (we hold the
     * lock: nobody else is writing one now). */
    pl__os_clean_temps(lock->path);
    holder_record(record, sizeof(record));
    snprintf(pid, sizeof(pid), "%ld", pl__os_getpid());
    rc = pl__os_fd_set_content(fd, record, &e);
    if (rc != PL_OK)
        with_path(&e, sidecar_of(lock));
    else
        rc = pl__os_write_file_atomic(lock->path, pid, &e);
    if (rc != PL_OK) { /* roll back: do not keep a lock nobody can see */
        long published = 0;
        if (pl_pidfile_read(lock->path, &published, NULL) == PL_OK &&
            published == pl__os_getpid())
            pl__os_unlink(lock->path, NULL);
        unlink_then_release(lock, sidecar_of(lock), fd, NULL);
        return pl__lock_fail_from(lock, &e);
    }
    lock->fd = fd;
    set_self_holder(lock);
    return PL_OK;
}

/*
 * Unlinks the PID file and the sidecar while holding, then unlocks.  The PID
 * file goes only while the sidecar is still ours and it still holds our PID:
 * if the sidecar was replaced behind our back, someone else may own the
 * lock and the PID file by now.
 */
static int pidfile_release(pl_lock_t *lock) {
    pl_error_t e;
    long pid = 0;
    int rc = PL_OK, rc2;

    if (pl__os_fd_matches_path(lock->fd, sidecar_of(lock), NULL) == 1 &&
        pl_pidfile_read(lock->path, &pid, NULL) == PL_OK &&
        pid == pl__os_getpid()) {
        rc = pl__os_unlink(lock->path, &e);
        if (rc == PL_ENOENT) /* removed meanwhile: nothing to undo */
            rc = PL_OK;
    }
    rc2 = unlink_then_release(lock, sidecar_of(lock), lock->fd,
                              rc == PL_OK ? &e : NULL);
    if (rc == PL_OK)
        rc = rc2;
    memset(&lock->holder, 0, sizeof(lock->holder));
    return rc == PL_OK ? PL_OK : pl__lock_fail_from(lock, &e);
}

static void pidfile_destroy(pl_lock_t *lock) {
    pidfile_impl_t *impl = lock->impl;
    if (impl != NULL)
        free(impl->sidecar);
    free(impl);
    lock->impl = NULL;
}

/* Still ours: the sidecar at its path is the file we locked, and the PID
 * file, if any, holds our PID (see temporary_check). */
static int pidfile_check(pl_lock_t *lock) {
    long pid = 0;
    int rc = check_same_file(lock, sidecar_of(lock));
    if (rc == PL_OK && pl_pidfile_read(lock->path, &pid, NULL) == PL_OK &&
        pid != lock->owner_pid)
        return pl__lock_fail(lock, PL_ELOST, 0,
                             "%s: now publishes pid %ld; the lock was taken "
                             "over",
                             lock->path, pid);
    return rc;
}

static const pl__lock_ops_t pidfile_ops = {
    "pidfile",   pidfile_acquire, pidfile_release,
    lock_forget, pidfile_check,   pidfile_destroy,
};

/* FNV-1a, 64 bits: a stable short tag for a long name. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

/* "<path>.lock", or where the last component is too long for that
 * "<first 233 bytes of it>.<16 hex FNV-1a of all of it>.lock", so every name
 * a Lock accepts works (Python's portalocker cannot lock such names at all:
 * nothing to interoperate with).  malloc'd; NULL if out of memory. */
static char *sidecar_name(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    size_t blen = strlen(path + dirlen), cap = strlen(path) + 32;
    size_t keep = PL__NAME_MAX - sizeof(".lock") + 1 - 17;
    char *s = malloc(cap);

    if (s == NULL)
        return NULL;
    if (blen + sizeof(".lock") - 1 <= PL__NAME_MAX)
        snprintf(s, cap, "%s.lock", path);
    else
        snprintf(s, cap, "%.*s%.*s.%016llx.lock", (int)dirlen, path, (int)keep,
                 path + dirlen, (unsigned long long)fnv1a(path + dirlen));
    return s;
}

int pl_pidfile_lock_open(pl_lock_t **out, const char *path,
                         const pl_lock_options_t *opts) {
    pl_lock_options_t o;
    pidfile_impl_t *impl;
    int rc;

    if (opts != NULL)
        o = *opts;
    else
        pl_lock_options_init(&o);
    o.mode = "a";
    if ((rc = file_lock_new(out, &pidfile_ops, path, &o, 1)) != PL_OK)
        return rc;
    impl = calloc(1, sizeof(*impl));
    if (impl != NULL)
        impl->sidecar = sidecar_name((*out)->path); /* absolute */
    if (impl == NULL || impl->sidecar == NULL) {
        free(impl);
        pl_lock_close(*out);
        *out = NULL;
        return PL_ENOMEM;
    }
    (*out)->impl = impl;
    return PL_OK;
}

int pl_pidfile_holder(pl_lock_t *lock, pl_holder_info_t *out) {
    pl_holder_info_t h;
    int rc;

    if (lock == NULL || out == NULL || lock->ops != &pidfile_ops)
        return PL_EINVAL;
    if (lock->count > 0 && lock->owner_pid == pl__os_getpid()) {
        set_self_holder(lock);
        *out = lock->holder;
        return PL_OK;
    }
    memset(&h, 0, sizeof(h));
    rc = pl_pidfile_read(lock->path, &h.pid, NULL);
    if (rc == PL_OK) {
        judge_holder(lock, &h);
        lock->holder = h;
    } else if (rc != PL_ENOENT && lock->holder.pid > 0) {
        /* Unreadable now (permissions...): the last holder seen. */
        judge_holder(lock, &lock->holder);
        rc = PL_OK;
    }
    if (rc == PL_OK)
        *out = lock->holder;
    return rc;
}

/* A positive decimal, optionally followed by one newline; nothing else. */
int pl_pidfile_read(const char *path, long *pid, pl_error_t *err) {
    char buf[32];
    size_t n, i;
    long v = 0;
    int rc;

    if (path == NULL || pid == NULL)
        return pl__error_set(err, PL_EINVAL, 0, "NULL argument");
    *pid = 0;
    if ((rc = pl__os_read_file(path, buf, sizeof(buf), &n, err)) != PL_OK)
        return rc;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n == 0 || n > 10)
        return pl__error_set(err, PL_EINVAL, 0, "%s: not a PID file", path);
    for (i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return pl__error_set(err, PL_EINVAL, 0, "%s: not a PID file", path);
        v = v * 10 + (buf[i] - '0');
    }
    if (v <= 0 || v > 0x7fffffffL)
        return pl__error_set(err, PL_EINVAL, 0, "%s: PID out of range", path);
    *pid = v;
    return PL_OK;
}
