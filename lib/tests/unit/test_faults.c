/*
 * test_faults.c -- fault injection through the pl__sys table.
 *
 * Two kinds of tests:
 *   - required failures: a call every implementation must make on that path
 *     (open, the lock itself, ftruncate for "w", the unlock, close, unlink,
 *     the PID write...) fails with EIO; the caller gets a clear code, the
 *     OS error and a message naming the call, and nothing is left held or
 *     open.
 *   - sweeps: a clean run counts the calls an operation makes; then each
 *     call in turn (every entry, every position, up to 8) fails once, and the
 *     invariants must hold whatever the outcome: a failed acquire holds
 *     nothing, leaks no descriptor, leaves no lock behind, and the object
 *     works again once the fault is gone; a successful one really holds.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_POSITIONS 8
/* The real entries (the pseudo lock/unlock entries overlap flock/fcntl). */
#define N_REAL_ENTRIES PLT_SYS_N_REAL

TestSuite(faults, .init = plt_setup, .fini = plt_teardown, .timeout = 120.);

static const char *kind_name(plt_kind_t k) {
    static const char *const n[] = {"lock", "rlock", "temporary", "pidfile"};
    return n[k];
}

static int valid_code(int rc) {
    return strcmp(pl_err_name(rc), "PL_EUNKNOWN") != 0;
}

/* ---- lock objects -------------------------------------------------------- */

typedef struct lock_case {
    plt_kind_t kind;
    pl_backend_t backend;
    const char *mode; /* Lock / RLock only */
} lock_case_t;

enum { ACQUIRE, RELEASE };

/* The file whose OS lock the object takes. */
static const char *locked_file(plt_kind_t kind, const char *path) {
    static char buf[4200];
    if (kind == PLT_PIDFILE)
        snprintf(buf, sizeof(buf), "%s.lock", path);
    else
        snprintf(buf, sizeof(buf), "%s", path);
    return buf;
}

/* Nothing is locked any more (a missing file is not locked either). */
static int unlocked(const lock_case_t *c, const char *path) {
    int rc = plt_try_other_process(locked_file(c->kind, path), c->backend,
                                   PL_EXCLUSIVE);
    return rc == PL_OK || rc == PL_ENOENT;
}

/*
 * One run: phase ACQUIRE or RELEASE of a fresh object, with `which` failing
 * at its k-th call (which < 0: no fault).  Fills counts (may be NULL) and
 * returns the operation's result; checks the invariants.
 */
static int lock_run(const lock_case_t *c, int phase, int which, int k,
                    int counts[PLT_SYS_COUNT]) {
    const char *p = plt_path("f.lock");
    char label[160];
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    int rc, fds;

    snprintf(label, sizeof(label), "%s/%s/%s %s, %s call %d failing",
             kind_name(c->kind), pl_backend_name(c->backend),
             c->mode ? c->mode : "-", phase == ACQUIRE ? "acquire" : "release",
             which < 0 ? "no" : plt_sys_name((plt_sys_t)which), k);
    pl_lock_options_init(&o);
    if (c->kind == PLT_LOCK || c->kind == PLT_RLOCK)
        o.mode = c->mode;
    o.timeout = 0;
    o.backend = c->backend;
    fds = plt_count_fds();
    cr_assert(eq(int, plt_open_kind(c->kind, &lock, p, &o), PL_OK), "%s",
              label);
    if (phase == RELEASE)
        cr_assert(eq(int, pl_lock_acquire(lock), PL_OK), "%s: %s", label,
                  pl_lock_errmsg(lock));

    plt_sys_install();
    if (which >= 0)
        plt_fault((plt_sys_t)which, EIO, k - 1, 1, NULL);
    rc = phase == ACQUIRE ? pl_lock_acquire(lock) : pl_lock_release(lock);
    if (counts != NULL)
        for (int i = 0; i < PLT_SYS_COUNT; i++)
            counts[i] = plt_sys_calls((plt_sys_t)i);
    pl__sys_reset();

    if (which < 0)
        cr_assert(eq(int, rc, PL_OK), "%s: %s", label, pl_lock_errmsg(lock));
    cr_expect(valid_code(rc), "%s: code %d", label, rc);
    if (rc != PL_OK)
        cr_expect(ne(int, (int)pl_lock_errmsg(lock)[0], 0), "%s: no message",
                  label);
    if (phase == ACQUIRE && rc == PL_OK) {
        cr_expect(eq(int, pl_lock_is_held(lock), 1), "%s", label);
        cr_expect(eq(int,
                     plt_try_other_process(locked_file(c->kind, p), c->backend,
                                           PL_EXCLUSIVE),
                     PL_ELOCKED),
                  "%s: acquire succeeded without holding", label);
        cr_expect(eq(int, pl_lock_release(lock), PL_OK), "%s", label);
    } else {
        cr_expect(eq(int, pl_lock_is_held(lock), 0), "%s: still held", label);
        cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked",
                  label);
        cr_expect(unlocked(c, p), "%s: lock left behind", label);
    }
    if (phase == ACQUIRE && rc != PL_OK) {
        /* Usable again once the fault is gone. */
        int again = pl_lock_acquire(lock);
        cr_expect(eq(int, again, PL_OK), "%s: retry gave %s (%s)", label,
                  pl_err_name(again), pl_lock_errmsg(lock));
    }
    pl_lock_close(lock);
    if (c->kind == PLT_TEMPORARY || c->kind == PLT_PIDFILE) {
        unlink(p);
        unlink(locked_file(c->kind, p));
    }
    cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked at close",
              label);
    return rc;
}

/* A required failure: the op fails with PL_EOS, EIO and the call's name. */
static void lock_required(const lock_case_t *c, int phase, plt_sys_t which) {
    const char *p = plt_path("f.lock");
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    int rc, calls, fds;

    pl_lock_options_init(&o);
    if (c->kind == PLT_LOCK || c->kind == PLT_RLOCK)
        o.mode = c->mode;
    o.timeout = 0;
    o.backend = c->backend;
    fds = plt_count_fds();
    cr_assert(eq(int, plt_open_kind(c->kind, &lock, p, &o), PL_OK));
    if (phase == RELEASE)
        cr_assert(eq(int, pl_lock_acquire(lock), PL_OK));
    plt_sys_install();
    plt_fault(which, EIO, 0, 1, NULL);
    rc = phase == ACQUIRE ? pl_lock_acquire(lock) : pl_lock_release(lock);
    calls = plt_sys_calls(which);
    pl__sys_reset();

    const char *what = phase == ACQUIRE ? "acquire" : "release";
    cr_expect(ge(int, calls, 1), "%s/%s %s never calls %s", kind_name(c->kind),
              pl_backend_name(c->backend), what, plt_sys_name(which));
    cr_expect(eq(int, rc, PL_EOS), "%s/%s %s with %s failing: %s (%s)",
              kind_name(c->kind), pl_backend_name(c->backend), what,
              plt_sys_name(which), pl_err_name(rc), pl_lock_errmsg(lock));
    cr_expect(eq(int, pl_lock_os_error(lock), EIO), "%s/%s %s %s",
              kind_name(c->kind), pl_backend_name(c->backend), what,
              plt_sys_name(which));
    cr_expect(plt_contains_any(pl_lock_errmsg(lock), plt_sys_words(which)),
              "%s/%s %s: message \"%s\" does not name %s", kind_name(c->kind),
              pl_backend_name(c->backend), what, pl_lock_errmsg(lock),
              plt_sys_name(which));
    cr_expect(eq(int, pl_lock_is_held(lock), 0));
    cr_expect(eq(int, plt_count_fds(), fds), "%s/%s %s %s: descriptor leaked",
              kind_name(c->kind), pl_backend_name(c->backend), what,
              plt_sys_name(which));
    cr_expect(unlocked(c, p), "%s/%s %s %s: lock left behind",
              kind_name(c->kind), pl_backend_name(c->backend), what,
              plt_sys_name(which));
    pl_lock_close(lock);
    if (c->kind == PLT_TEMPORARY || c->kind == PLT_PIDFILE) {
        unlink(p);
        unlink(locked_file(c->kind, p));
    }
}

typedef int (*run_fn)(const void *ctx, int which, int k,
                      int counts[PLT_SYS_COUNT]);

/* The clean run, then every entry failing at each of its positions; every
 * operation opens something and locks or writes, so at least 2 runs. */
static void sweep(const char *label, run_fn run, const void *ctx) {
    int counts[PLT_SYS_COUNT], runs = 0, failed = 0;
    run(ctx, -1, 0, counts);
    for (int w = 0; w < N_REAL_ENTRIES; w++) {
        int n = counts[w] < MAX_POSITIONS ? counts[w] : MAX_POSITIONS;
        for (int k = 1; k <= n; k++) {
            runs++;
            int rc = run(ctx, w, k, NULL);
            failed += rc != PL_OK;
            if (rc == PL_OK)
                cr_log_info("%s: %s call %d failing was tolerated", label,
                            plt_sys_name((plt_sys_t)w), k);
        }
    }
    cr_log_info("%s: %d injected faults, %d reported", label, runs, failed);
    cr_expect(ge(int, runs, 2), "%s: the sweep injected nothing", label);
    cr_expect(ge(int, failed, 1), "%s: no injected fault was reported", label);
}

typedef struct lock_sweep {
    lock_case_t c;
    int phase;
} lock_sweep_t;

static int lock_sweep_run(const void *ctx, int which, int k,
                          int counts[PLT_SYS_COUNT]) {
    const lock_sweep_t *ls = ctx;
    return lock_run(&ls->c, ls->phase, which, k, counts);
}

static void sweep_lock(const lock_case_t *c, int phase) {
    lock_sweep_t ls = {*c, phase};
    char label[96];
    snprintf(label, sizeof(label), "%s/%s/%s %s", kind_name(c->kind),
             pl_backend_name(c->backend), c->mode ? c->mode : "-",
             phase == ACQUIRE ? "acquire" : "release");
    sweep(label, lock_sweep_run, &ls);
}

static void sweep_kind(plt_kind_t kind, const char *mode) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        lock_case_t c = {kind, plt_backends[b], mode};
        sweep_lock(&c, ACQUIRE);
        sweep_lock(&c, RELEASE);
    }
}

Test(faults, lock_acquire_requires) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        lock_case_t c = {PLT_LOCK, plt_backends[b], "w"};
        lock_required(&c, ACQUIRE, PLT_SYS_OPEN);
        lock_required(&c, ACQUIRE, PLT_SYS_LOCKOP);
        lock_required(&c, ACQUIRE,
                      plt_backends[b] == PL_BACKEND_FLOCK ? PLT_SYS_FLOCK
                                                          : PLT_SYS_FCNTL);
        lock_required(&c, ACQUIRE, PLT_SYS_FTRUNCATE);
    }
}

Test(faults, lock_release_requires) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        lock_case_t c = {PLT_LOCK, plt_backends[b], "a"};
        lock_required(&c, RELEASE, PLT_SYS_UNLOCKOP);
        lock_required(&c, RELEASE, PLT_SYS_CLOSE);
    }
}

Test(faults, temporary_requires) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        lock_case_t c = {PLT_TEMPORARY, plt_backends[b], NULL};
        lock_required(&c, ACQUIRE, PLT_SYS_OPEN);
        lock_required(&c, ACQUIRE, PLT_SYS_LOCKOP);
        lock_required(&c, RELEASE, PLT_SYS_UNLINK);
        lock_required(&c, RELEASE, PLT_SYS_UNLOCKOP);
        lock_required(&c, RELEASE, PLT_SYS_CLOSE);
    }
}

/* How the PID file is published: linkat of an anonymous file where
 * O_TMPFILE works (after removing a stale one), else rename. */
static plt_sys_t pid_publish_call(void) {
    int fd = open(plt_dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0)
        return PLT_SYS_RENAME;
    close(fd);
    return PLT_SYS_LINKAT;
}

Test(faults, pidfile_requires) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        lock_case_t c = {PLT_PIDFILE, plt_backends[b], NULL};
        lock_required(&c, ACQUIRE, PLT_SYS_OPEN);
        lock_required(&c, ACQUIRE, PLT_SYS_LOCKOP);
        lock_required(&c, ACQUIRE, PLT_SYS_WRITE);
        lock_required(&c, ACQUIRE, pid_publish_call());
        lock_required(&c, RELEASE, PLT_SYS_UNLINK);
        lock_required(&c, RELEASE, PLT_SYS_UNLOCKOP);
    }
}

Test(faults, lock_sweep_append) {
    sweep_kind(PLT_LOCK, "a");
}
Test(faults, lock_sweep_write) {
    sweep_kind(PLT_LOCK, "w+");
}
Test(faults, lock_sweep_read) {
    plt_write_file(plt_path("f.lock"), "x");
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        /* fcntl locks (lockf, OFD) need a writable descriptor for an
         * exclusive lock. */
        lock_case_t c = {PLT_LOCK, plt_backends[b],
                         plt_backends[b] == PL_BACKEND_FLOCK ? "r" : "r+"};
        sweep_lock(&c, ACQUIRE);
        sweep_lock(&c, RELEASE);
    }
}
Test(faults, rlock_sweep) {
    sweep_kind(PLT_RLOCK, "a");
}
Test(faults, temporary_sweep) {
    sweep_kind(PLT_TEMPORARY, NULL);
}
Test(faults, pidfile_sweep) {
    sweep_kind(PLT_PIDFILE, NULL);
}

/* ---- semaphore ----------------------------------------------------------- */

static int sem_run(const void *ctx, int which, int k,
                   int counts[PLT_SYS_COUNT]) {
    (void)ctx;
    pl_semaphore_t *s = NULL;
    pl_lock_options_t o;
    char label[96];
    int rc, fds = plt_count_fds();
    snprintf(label, sizeof(label), "semaphore acquire, %s call %d failing",
             which < 0 ? "no" : plt_sys_name((plt_sys_t)which), k);
    pl_lock_options_init(&o);
    o.timeout = 0;
    cr_assert(eq(int, pl_semaphore_open(&s, 2, "sem", plt_dir, &o), PL_OK));
    plt_sys_install();
    if (which >= 0)
        plt_fault((plt_sys_t)which, EIO, k - 1, 1, NULL);
    rc = pl_semaphore_acquire(s);
    if (counts != NULL)
        for (int i = 0; i < PLT_SYS_COUNT; i++)
            counts[i] = plt_sys_calls((plt_sys_t)i);
    pl__sys_reset();
    if (which < 0)
        cr_assert(eq(int, rc, PL_OK), "%s", pl_semaphore_errmsg(s));
    cr_expect(valid_code(rc), "%s: code %d", label, rc);
    if (rc == PL_OK) {
        cr_expect(ge(int, pl_semaphore_slot(s), 0), "%s", label);
        cr_expect(eq(int, pl_semaphore_release(s), PL_OK), "%s", label);
    } else {
        cr_expect(eq(int, pl_semaphore_slot(s), -1), "%s", label);
        cr_expect(ne(int, (int)pl_semaphore_errmsg(s)[0], 0), "%s", label);
        cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked",
                  label);
        int again = pl_semaphore_acquire(s);
        cr_expect(eq(int, again, PL_OK), "%s: retry gave %s", label,
                  pl_err_name(again));
    }
    pl_semaphore_close(s);
    cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked", label);
    return rc;
}

Test(faults, semaphore_requires) {
    static const plt_sys_t req[] = {PLT_SYS_OPEN, PLT_SYS_LOCKOP};
    for (int i = 0; i < 2; i++) {
        pl_semaphore_t *s = NULL;
        pl_lock_options_t o;
        pl_lock_options_init(&o);
        o.timeout = 0;
        cr_assert(eq(int, pl_semaphore_open(&s, 2, "sem", plt_dir, &o), PL_OK));
        plt_sys_install();
        plt_fault(req[i], EIO, 0, -1, NULL);
        int rc = pl_semaphore_acquire(s);
        pl__sys_reset();
        /* Not contention: an OS error stops the sweep (as in portalocker). */
        cr_expect(eq(int, rc, PL_EOS), "%s failing: %s (%s)",
                  plt_sys_name(req[i]), pl_err_name(rc),
                  pl_semaphore_errmsg(s));
        cr_expect(eq(int, pl_semaphore_os_error(s), EIO));
        cr_expect(
            plt_contains_any(pl_semaphore_errmsg(s), plt_sys_words(req[i])),
            "message \"%s\"", pl_semaphore_errmsg(s));
        pl_semaphore_close(s);
    }
}

Test(faults, semaphore_sweep) {
    sweep("semaphore acquire", sem_run, NULL);
}

/* ---- open_atomic --------------------------------------------------------- */

static int atomic_run(const void *ctx, int which, int k,
                      int counts[PLT_SYS_COUNT]) {
    (void)ctx;
    const char *p = plt_path("sub/out.txt");
    pl_atomic_file_t *af = NULL;
    pl_error_t e;
    char label[96], buf[32];
    int fds = plt_count_fds();
    snprintf(label, sizeof(label), "open_atomic, %s call %d failing",
             which < 0 ? "no" : plt_sys_name((plt_sys_t)which), k);
    plt_rmtree(plt_path("sub"));
    plt_sys_install();
    if (which >= 0)
        plt_fault((plt_sys_t)which, EIO, k - 1, 1, NULL);
    memset(&e, 0, sizeof(e));
    int rc = pl_open_atomic(&af, p, &e);
    if (rc == PL_OK) {
        fputs("complete", pl_atomic_fp(af));
        rc = pl_atomic_commit(af, &e);
    }
    if (counts != NULL)
        for (int i = 0; i < PLT_SYS_COUNT; i++)
            counts[i] = plt_sys_calls((plt_sys_t)i);
    pl__sys_reset();
    if (which < 0)
        cr_assert(eq(int, rc, PL_OK), "%s", e.msg);
    cr_expect(valid_code(rc), "%s: code %d", label, rc);
    if (rc != PL_OK) {
        cr_expect(eq(int, e.code, rc), "%s", label);
        cr_expect(ne(int, (int)e.msg[0], 0), "%s: no message", label);
    } else {
        cr_expect(plt_exists(p), "%s: success without a file", label);
        /* No temporary file left (unless removing it was what failed). */
        if (which != PLT_SYS_UNLINK)
            cr_expect(eq(int, plt_dir_entries(plt_path("sub")), 1),
                      "%s: temporary file left", label);
    }
    /* Never a partial destination. */
    if (plt_exists(p)) {
        plt_read_file(p, buf, sizeof(buf));
        cr_expect(eq(str, buf, "complete"), "%s", label);
    }
    cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked", label);
    return rc;
}

Test(faults, atomic_sweep) {
    sweep("open_atomic", atomic_run, NULL);
}

/* ---- probe --------------------------------------------------------------- */

static int probe_run(const void *ctx, int which, int k,
                     int counts[PLT_SYS_COUNT]) {
    (void)ctx;
    pl_probe_t pr;
    pl_error_t e;
    char label[96];
    int fds = plt_count_fds();
    snprintf(label, sizeof(label), "probe, %s call %d failing",
             which < 0 ? "no" : plt_sys_name((plt_sys_t)which), k);
    plt_sys_install();
    if (which >= 0)
        plt_fault((plt_sys_t)which, EIO, k - 1, 1, NULL);
    memset(&e, 0, sizeof(e));
    int rc = pl_probe(plt_dir, &pr, &e);
    if (counts != NULL)
        for (int i = 0; i < PLT_SYS_COUNT; i++)
            counts[i] = plt_sys_calls((plt_sys_t)i);
    pl__sys_reset();
    if (which < 0)
        cr_assert(eq(int, rc, PL_OK), "%s", e.msg);
    cr_expect(valid_code(rc), "%s: code %d", label, rc);
    if (rc != PL_OK)
        cr_expect(ne(int, (int)e.msg[0], 0), "%s: no message", label);
    cr_expect(eq(int, plt_count_fds(), fds), "%s: descriptor leaked", label);
    if (which != PLT_SYS_UNLINK)
        cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "%s: files left",
                  label);
    plt_rmtree(plt_dir);
    cr_assert(eq(int, mkdir(plt_dir, 0700), 0));
    return rc;
}

Test(faults, probe_sweep) {
    sweep("probe", probe_run, NULL);
}
