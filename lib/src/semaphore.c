/*
 * semaphore.c -- BoundedSemaphore / NamedBoundedSemaphore: N slot files
 * "{name}.{nn}.lock" in a directory, each an exclusive Lock in mode "a".
 * Holding any slot is holding the semaphore.  The names are portalocker's,
 * so C and Python processes share the slots.
 *
 * Unlike portalocker (fixed order 0..N-1, polling every check_interval),
 * each sweep starts at a random slot, and between sweeps we wait in the
 * kernel on one random slot for up to check_interval, so a release of that
 * slot wakes us at once; a release of another slot is seen at the next
 * sweep.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_SEMAPHORE_MAX 1000

struct pl_semaphore {
    unsigned maximum;
    char *name;
    pl_lock_t **slots; /* one Lock per slot file */
    pl_lock_options_t opts;
    int held; /* slot index, -1 if none */
    int os_error;
    char errmsg[PL__ERRMSG_LEN];
};

static unsigned random_below(unsigned n) {
    uint32_t r;
    pl__os_random(&r, sizeof(r));
    return (unsigned)(r % n);
}

static int sem_fail(pl_semaphore_t *sem, int code, const char *fmt,
                    const char *arg) {
    sem->os_error = 0;
    snprintf(sem->errmsg, sizeof(sem->errmsg), fmt, arg);
    return code;
}

/* Copies a slot Lock's error onto the semaphore. */
static int sem_fail_slot(pl_semaphore_t *sem, int code, unsigned i) {
    sem->os_error = pl_lock_os_error(sem->slots[i]);
    snprintf(sem->errmsg, sizeof(sem->errmsg), "%s",
             pl_lock_errmsg(sem->slots[i]));
    return code;
}

static void sem_free(pl_semaphore_t *sem) {
    if (sem->slots != NULL)
        for (unsigned i = 0; i < sem->maximum; i++)
            pl_lock_close(sem->slots[i]);
    free(sem->slots);
    free(sem->name);
    free(sem);
}

/* "{directory}/{name}.{i:02d}.lock" */
static char *slot_path(const char *directory, const char *name, unsigned i) {
    size_t dl = strlen(directory), cap = dl + strlen(name) + 16;
    char *p = malloc(cap);
    if (p == NULL)
        return NULL;
    while (dl > 1 && directory[dl - 1] == '/')
        dl--;
    snprintf(p, cap, "%.*s%s%s.%02u.lock", (int)dl, directory,
             directory[dl - 1] == '/' ? "" : "/", name, i);
    return p;
}

static int make_slots(pl_semaphore_t *sem, const char *directory) {
    pl_lock_options_t lo = sem->opts;
    int rc = PL_OK;

    lo.mode = "a";
    lo.flags = PL_EXCLUSIVE | PL_NON_BLOCKING;
    sem->slots = calloc(sem->maximum, sizeof(*sem->slots));
    if (sem->slots == NULL)
        return PL_ENOMEM;
    for (unsigned i = 0; i < sem->maximum && rc == PL_OK; i++) {
        char *path = slot_path(directory, sem->name, i);
        if (path == NULL)
            return PL_ENOMEM;
        rc = pl_lock_open(&sem->slots[i], path, &lo);
        free(path);
    }
    return rc;
}

int pl_semaphore_open(pl_semaphore_t **out, unsigned maximum, const char *name,
                      const char *directory, const pl_lock_options_t *opts) {
    pl_semaphore_t *sem;
    char anon[40];
    int rc;

    if (out == NULL)
        return PL_EINVAL;
    *out = NULL;
    if (maximum == 0 || maximum > PL_SEMAPHORE_MAX)
        return PL_EINVAL;
    if (name == NULL) {
        snprintf(anon, sizeof(anon), "bounded_semaphore.%u",
                 random_below(1000000));
        name = anon;
    }
    if (name[0] == '\0' || strchr(name, '/') != NULL)
        return PL_EINVAL;
    if (directory == NULL)
        directory = pl__os_tmpdir();
    if (directory[0] == '\0')
        return PL_EINVAL;
    sem = calloc(1, sizeof(*sem));
    if (sem == NULL)
        return PL_ENOMEM;
    sem->maximum = maximum;
    sem->held = -1;
    if (opts != NULL)
        sem->opts = *opts;
    else
        pl_lock_options_init(&sem->opts);
    if (pl__is_unset(sem->opts.timeout))
        sem->opts.timeout = 5.0;
    if (pl__is_unset(sem->opts.check_interval))
        sem->opts.check_interval = 0.25;
    if (sem->opts.fail_when_locked < 0)
        sem->opts.fail_when_locked = 1;
    if (sem->opts.timeout != sem->opts.timeout ||
        !(sem->opts.check_interval >= 0)) {
        free(sem);
        return PL_EINVAL;
    }
    sem->name = malloc(strlen(name) + 1);
    if (sem->name == NULL) {
        free(sem);
        return PL_ENOMEM;
    }
    strcpy(sem->name, name);
    if ((rc = make_slots(sem, directory)) != PL_OK) {
        sem_free(sem);
        return rc;
    }
    *out = sem;
    return PL_OK;
}

int pl_semaphore_acquire(pl_semaphore_t *sem) {
    return pl_semaphore_acquire_with(sem, PL_UNSET, PL_UNSET, -1);
}

/*
 * A slot file we may not open for writing (another user's, or on a
 * read-only file system) can still carry a flock() lock through a read-only
 * descriptor, as flock(1) locks such files: reopen that slot in mode "r"
 * (which never creates it).  The fcntl-based backends need write access
 * for an exclusive lock, so this is for flock only.  Returns PL_OK when the
 * slot was replaced.
 */
static int slot_reopen_readonly(pl_semaphore_t *sem, unsigned i) {
    pl_lock_options_t lo = sem->opts;
    pl_lock_t *ro = NULL;
    const char *path = pl_lock_path(sem->slots[i]);
    int rc;

    if (pl_lock_backend(sem->slots[i]) != PL_BACKEND_FLOCK || path == NULL)
        return PL_ENOTSUP;
    lo.mode = "r";
    lo.flags = PL_EXCLUSIVE | PL_NON_BLOCKING;
    if ((rc = pl_lock_open(&ro, path, &lo)) != PL_OK)
        return rc;
    pl_lock_close(sem->slots[i]);
    sem->slots[i] = ro;
    return PL_OK;
}

/* One sweep over every slot from a random start; PL_ELOCKED if all are
 * taken, PL_OK with sem->held set, or a non-contention error. */
static int sweep(pl_semaphore_t *sem) {
    unsigned start = random_below(sem->maximum);
    for (unsigned k = 0; k < sem->maximum; k++) {
        unsigned i = (start + k) % sem->maximum;
        int rc = pl_lock_acquire_with(sem->slots[i], 0, 0, 1);
        if ((rc == PL_EACCES || rc == PL_EROFS) &&
            slot_reopen_readonly(sem, i) == PL_OK)
            rc = pl_lock_acquire_with(sem->slots[i], 0, 0, 1);
        if (rc == PL_OK) {
            sem->held = (int)i;
            return PL_OK;
        }
        if (!PL_IS_ALREADY_LOCKED(rc))
            return sem_fail_slot(sem, rc, i);
    }
    return PL_ELOCKED;
}

int pl_semaphore_acquire_with(pl_semaphore_t *sem, double timeout,
                              double check_interval, int fail_when_locked) {
    double deadline, step;
    int rc;

    if (sem == NULL)
        return PL_EINVAL;
    if (pl__is_unset(timeout))
        timeout = sem->opts.timeout;
    if (pl__is_unset(check_interval))
        check_interval = sem->opts.check_interval;
    if (fail_when_locked < 0)
        fail_when_locked = sem->opts.fail_when_locked;
    if (timeout != timeout || !(check_interval >= 0))
        return sem_fail(sem, PL_EINVAL, "%s: bad timeout or check_interval",
                        sem->name);
    if (sem->held >= 0)
        return sem_fail(sem, PL_EHELD, "%s: already holding a slot", sem->name);
    sem->os_error = 0;
    sem->errmsg[0] = '\0';
    deadline = pl__os_monotonic() + (timeout > 0 ? timeout : 0);
    /* check_interval 0 asks for quick re-sweeps: wait 10 ms at most. */
    step = check_interval > 0 ? check_interval : 0.01;
    for (;;) {
        double wait;
        unsigned i;

        if ((rc = sweep(sem)) != PL_ELOCKED)
            return rc;
        if (timeout == 0)
            break;
        wait = timeout < 0 ? step : deadline - pl__os_monotonic();
        if (wait <= 0)
            break;
        if (wait > step)
            wait = step;
        i = random_below(sem->maximum);
        rc = pl_lock_acquire_with(sem->slots[i], wait, check_interval, 0);
        if (rc == PL_OK) {
            sem->held = (int)i;
            return PL_OK;
        }
        if (!PL_IS_ALREADY_LOCKED(rc))
            return sem_fail_slot(sem, rc, i);
    }
    return sem_fail(sem, fail_when_locked ? PL_ELOCKED : PL_ETIMEDOUT,
                    "%s: all slots are taken", sem->name);
}

int pl_semaphore_release(pl_semaphore_t *sem) {
    int i, rc;

    if (sem == NULL)
        return PL_EINVAL;
    if (sem->held < 0)
        return sem_fail(sem, PL_ENOTHELD, "%s: no slot held", sem->name);
    i = sem->held;
    sem->held = -1;
    rc = pl_lock_release(sem->slots[i]);
    if (rc != PL_OK)
        return sem_fail_slot(sem, rc, (unsigned)i);
    return PL_OK;
}

int pl_semaphore_close(pl_semaphore_t *sem) {
    int rc = PL_OK;
    if (sem == NULL)
        return PL_OK;
    if (sem->held >= 0)
        rc = pl_semaphore_release(sem);
    sem_free(sem);
    return rc;
}

int pl_semaphore_slot(const pl_semaphore_t *sem) {
    return sem != NULL ? sem->held : -1;
}

const char *pl_semaphore_name(const pl_semaphore_t *sem) {
    return sem != NULL ? sem->name : NULL;
}

const char *pl_semaphore_slot_path(const pl_semaphore_t *sem, unsigned i) {
    if (sem == NULL || i >= sem->maximum)
        return NULL;
    return pl_lock_path(sem->slots[i]);
}

int pl_semaphore_os_error(const pl_semaphore_t *sem) {
    return sem != NULL ? sem->os_error : 0;
}

const char *pl_semaphore_errmsg(const pl_semaphore_t *sem) {
    return sem != NULL ? sem->errmsg : "invalid argument: NULL semaphore";
}
