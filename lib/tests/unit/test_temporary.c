/*
 * test_temporary.c -- TemporaryFileLock: the file exists only while held,
 * fail_when_locked defaults to 1, mode "w", the locked descriptor is
 * verified against the path (portalocker #115) and unlink failures still
 * unlock.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(temporary, .init = plt_setup, .fini = plt_teardown, .timeout = 30.);

static pl_lock_t *xopen_tmp(const char *path, double timeout,
                            double check_interval, pl_backend_t backend) {
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = timeout;
    o.check_interval = check_interval;
    o.backend = backend;
    cr_assert(eq(int, pl_temporary_lock_open(&lock, path, &o), PL_OK));
    return lock;
}

static void expect_same_file(pl_lock_t *lock, const char *path) {
    struct stat a, b;
    cr_assert(eq(int, fstat((int)pl_lock_fileno(lock), &a), 0));
    cr_assert(eq(int, stat(path, &b), 0), "%s is missing", path);
    cr_expect(a.st_dev == b.st_dev && a.st_ino == b.st_ino,
              "the locked descriptor is not the file at the path");
}

Test(temporary, file_exists_only_while_held) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        const char *p = plt_path("t.lock");
        pl_lock_t *lock = xopen_tmp(p, 0, 0.25, plt_backends[i]);
        int fds = plt_count_fds();
        cr_expect(eq(int, plt_exists(p), 0));
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
        cr_expect(plt_exists(p), "%s: not created",
                  pl_backend_name(plt_backends[i]));
        expect_same_file(lock, p);
        PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
        cr_expect(eq(int, plt_exists(p), 0), "%s: not removed",
                  pl_backend_name(plt_backends[i]));
        cr_expect(eq(int, plt_count_fds(), fds));
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
        cr_expect(plt_exists(p));
        cr_expect(eq(int, pl_lock_close(lock), PL_OK));
        cr_expect(eq(int, plt_exists(p), 0), "close did not remove the file");
    }
}

/* Default options: timeout 5 but fail_when_locked 1, so contention is
 * reported at once (250 ms bound: shared machine, far below 5 s). */
Test(temporary, fails_at_once_by_default) {
    const char *p = plt_path("t.lock");
    pl_lock_t *a = NULL, *b = NULL;
    cr_assert(eq(int, pl_temporary_lock_open(&a, p, NULL), PL_OK));
    cr_assert(eq(int, pl_temporary_lock_open(&b, p, NULL), PL_OK));
    PLT_ASSERT_RC(pl_lock_acquire(a), PL_OK, a);
    double t0 = plt_now();
    PLT_EXPECT_RC(pl_lock_acquire(b), PL_ELOCKED, b);
    cr_expect(lt(dbl, plt_now() - t0, 0.25));
    cr_expect(plt_exists(p), "the loser removed the holder's file");
    PLT_EXPECT_RC(pl_lock_release(a), PL_OK, a);
    PLT_EXPECT_RC(pl_lock_acquire(b), PL_OK, b);
    pl_lock_close(a);
    pl_lock_close(b);
}

Test(temporary, contends_with_another_process) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        const char *p = plt_path("t.lock");
        plt_obj_hold_t hold = {PLT_TEMPORARY, p, {0}, NULL};
        plt_holder_t h;
        pl_lock_options_init(&hold.opts);
        hold.opts.backend = plt_backends[i];
        cr_assert(eq(
            int,
            plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
            PL_OK));
        pl_lock_t *lock = xopen_tmp(p, 5, 0.25, plt_backends[i]);
        PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ELOCKED, lock);
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        cr_expect(eq(int, plt_exists(p), 0), "holder did not remove the file");
        PLT_EXPECT_RC(pl_lock_acquire(lock), PL_OK, lock);
        pl_lock_close(lock);
    }
}

Test(temporary, truncates_an_existing_file_once_held) {
    const char *p = plt_path("t.lock");
    struct stat st;
    plt_write_file(p, "left over by a crash");
    pl_lock_t *lock = xopen_tmp(p, 0, 0.25, PL_BACKEND_FLOCK);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_assert(eq(int, stat(p, &st), 0));
    cr_expect(eq(long, (long)st.st_size, 0L));
    FILE *f = pl_lock_file(lock);
    cr_assert(f != NULL);
    cr_expect(fputs("x", f) >= 0);
    pl_lock_close(lock);
    cr_expect(eq(int, plt_exists(p), 0));
}

Test(temporary, release_of_an_unheld_object_deletes_nothing) {
    const char *p = plt_path("t.lock");
    plt_write_file(p, "someone else's");
    pl_lock_t *lock = xopen_tmp(p, 0, 0.25, PL_BACKEND_FLOCK);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_ENOTHELD, lock);
    cr_expect(eq(int, pl_lock_close(lock), PL_OK));
    cr_expect(plt_exists(p), "a stale object removed the file");
}

Test(temporary, forked_child_neither_unlocks_nor_unlinks) {
    const char *p = plt_path("t.lock");
    pl_lock_t *lock = xopen_tmp(p, 0, 0.25, PL_BACKEND_FLOCK);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_in_child(plt_child_release, lock), PL_EFORKED));
    cr_expect(plt_exists(p), "the child removed the parent's lock file");
    cr_expect(eq(int, plt_try_other_process(p, PL_BACKEND_FLOCK, PL_EXCLUSIVE),
                 PL_ELOCKED));
    pl_lock_close(lock);
    cr_expect(eq(int, plt_exists(p), 0));
}

/* ---- verification (portalocker #115) ------------------------------------- */

Test(temporary, retries_while_stat_reports_another_file) {
    const char *p = plt_path("t.lock");
    pl_lock_t *lock = xopen_tmp(p, 2, 0.01, PL_BACKEND_FLOCK);
    plt_sys_install();
    plt_stat_lie(p, 2);
    int rc = pl_lock_acquire(lock);
    int attempts = plt_sys_calls(PLT_SYS_LOCKOP);
    pl__sys_reset();
    PLT_EXPECT_RC(rc, PL_OK, lock);
    cr_expect(ge(int, attempts, 3), "%d lock attempts for 2 mismatches",
              attempts);
    if (rc == PL_OK)
        expect_same_file(lock, p);
    pl_lock_close(lock);
}

/* A path that never matches: PL_EREPLACED when the timeout runs out, not a
 * lock on a file nobody else can see.  Bounds: shared machine. */
Test(temporary, persistent_mismatch_is_ereplaced) {
    const char *p = plt_path("t.lock");
    pl_lock_t *lock = xopen_tmp(p, 0.3, 0.01, PL_BACKEND_FLOCK);
    int fds = plt_count_fds();
    plt_sys_install();
    plt_stat_lie(p, -1);
    double t0 = plt_now();
    int rc = pl_lock_acquire(lock);
    double dt = plt_now() - t0;
    int attempts = plt_sys_calls(PLT_SYS_LOCKOP);
    pl__sys_reset();
    PLT_EXPECT_RC(rc, PL_EREPLACED, lock);
    cr_expect(ge(int, attempts, 2), "no retry (%d attempts)", attempts);
    cr_expect(lt(dbl, dt, 0.3 + 0.5), "%.3f s", dt);
    cr_expect(ne(int, (int)pl_lock_errmsg(lock)[0], 0));
    cr_expect(eq(int, pl_lock_is_held(lock), 0));
    cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
    pl_lock_close(lock);
}

typedef struct replace_arg {
    const char *path;
    int recreate;
    int done;
} replace_arg_t;

/* Before the first lock attempt another party replaces (or removes) the
 * file we opened: the lock we then get is on an orphan inode. */
static void replace_before_lock(void *arg, int nth) {
    replace_arg_t *r = arg;
    if (nth != 1 || r->done)
        return;
    r->done = 1;
    unlink(r->path);
    if (r->recreate) {
        int fd = open(r->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            if (write(fd, "new", 3) != 3)
                r->done = 2;
            close(fd);
        }
    }
}

static void replaced_during_acquire(int recreate) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        const char *p = plt_path("t.lock");
        replace_arg_t r = {p, recreate, 0};
        pl_lock_t *lock = xopen_tmp(p, 2, 0.01, plt_backends[i]);
        plt_sys_install();
        plt_sys_before(PLT_SYS_LOCKOP, replace_before_lock, &r);
        int rc = pl_lock_acquire(lock);
        int attempts = plt_sys_calls(PLT_SYS_LOCKOP);
        pl__sys_reset();
        cr_assert(eq(int, r.done, 1), "the replacement did not happen");
        PLT_EXPECT_RC(rc, PL_OK, lock);
        cr_expect(ge(int, attempts, 2), "%s: no retry",
                  pl_backend_name(plt_backends[i]));
        if (rc == PL_OK)
            expect_same_file(lock, p);
        /* The winner holds the file that is at the path now. */
        cr_expect(eq(int,
                     plt_try_other_process(p, plt_backends[i], PL_EXCLUSIVE),
                     PL_ELOCKED),
                  "%s", pl_backend_name(plt_backends[i]));
        pl_lock_close(lock);
        cr_expect(eq(int, plt_exists(p), 0));
    }
}

Test(temporary, retries_when_the_file_is_replaced) {
    replaced_during_acquire(1);
}

Test(temporary, retries_when_the_file_is_removed) {
    replaced_during_acquire(0);
}

/* ---- release errors ------------------------------------------------------ */

Test(temporary, unlink_failure_still_unlocks) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        const char *p = plt_path("t.lock");
        pl_lock_t *lock = xopen_tmp(p, 0, 0.25, plt_backends[i]);
        int fds = plt_count_fds();
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
        plt_sys_install();
        plt_fault(PLT_SYS_UNLINK, EIO, 0, -1, NULL);
        int rc = pl_lock_release(lock);
        pl__sys_reset();
        cr_expect(ne(int, rc, PL_OK), "%s: unlink failure was swallowed",
                  pl_backend_name(plt_backends[i]));
        cr_expect(eq(int, pl_lock_os_error(lock), EIO));
        cr_expect(plt_contains_any(pl_lock_errmsg(lock),
                                   plt_sys_words(PLT_SYS_UNLINK)),
                  "message \"%s\"", pl_lock_errmsg(lock));
        cr_expect(eq(int, pl_lock_is_held(lock), 0));
        cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
        cr_expect(plt_exists(p));
        cr_expect(eq(int,
                     plt_try_other_process(p, plt_backends[i], PL_EXCLUSIVE),
                     PL_OK),
                  "%s: still locked", pl_backend_name(plt_backends[i]));
        pl_lock_close(lock);
        unlink(p);
    }
}

Test(temporary, descriptor_is_close_on_exec) {
    pl_lock_t *lock = xopen_tmp(plt_path("t.lock"), 0, 0.25, PL_BACKEND_OFD);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_cloexec(pl_lock_fileno(lock)), 1));
    pl_lock_close(lock);
}

/* A relative path names the file in the directory current at open (as
 * portalocker 4.1.1+, which makes it absolute): a chdir while held must
 * not make release miss the file. */
Test(temporary, relative_path_survives_chdir) {
    char here[4096];
    cr_assert(getcwd(here, sizeof(here)) != NULL);
    cr_assert(eq(int, chdir(plt_dir), 0));
    pl_lock_t *lock = xopen_tmp("rel.lock", 0, 0.25, PL_BACKEND_FLOCK);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(plt_exists(plt_path("rel.lock")));
    cr_assert(eq(int, chdir("/"), 0));
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, plt_exists(plt_path("rel.lock")), 0),
              "release missed the file after chdir");
    pl_lock_close(lock);
    cr_assert(eq(int, chdir(here), 0));
}

/* ---- the #115 race for real ---------------------------------------------- */

/* Waiting contenders hold descriptors of files the holder unlinks on
 * release: only the verification keeps them out. */
Test(temporary, processes_never_overlap) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        plt_race_t r = plt_race(PLT_TEMPORARY, plt_path("race.lock"),
                                plt_backends[b], 3, 100);
        cr_expect(eq(int, r.failures, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.overlaps, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.acquired, 300), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, plt_exists(plt_path("race.lock")), 0));
    }
}

/* ---- ordinary contention at the deadline (issue 9, defect 5) ------------- */

static void unlink_before_lock(void *arg, int nth) {
    (void)nth;
    unlink((const char *)arg);
}

/* Every lock attempt lands on an inode its holder has just unlinked (as
 * when holders keep cycling): that is contention, so the deadline gives
 * PL_ETIMEDOUT (PL_ELOCKED for a single attempt), never PL_EREPLACED.
 * Bounds: shared machine. */
Test(temporary, landing_on_unlinked_files_times_out) {
    const char *p = plt_path("t.lock");
    static const struct {
        double timeout;
        int fwl, want;
    } cases[] = {
        {0.2, 0, PL_ETIMEDOUT}, {0, 0, PL_ELOCKED}, {0.2, 1, PL_ELOCKED}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_lock_t *lock =
            xopen_tmp(p, cases[i].timeout, 0.01, PL_BACKEND_FLOCK);
        int fds = plt_count_fds();
        plt_sys_install();
        plt_sys_before(PLT_SYS_LOCKOP, unlink_before_lock, (void *)p);
        double t0 = plt_now();
        int rc = pl_lock_acquire_with(lock, PL_UNSET, PL_UNSET, cases[i].fwl);
        double dt = plt_now() - t0;
        int attempts = plt_sys_calls(PLT_SYS_LOCKOP);
        pl__sys_reset();
        PLT_EXPECT_RC(rc, cases[i].want, lock);
        cr_expect(ge(int, attempts, 2), "no retry (%d attempts)", attempts);
        cr_expect(lt(dbl, dt, cases[i].timeout + 0.5), "%.3f s", dt);
        cr_expect(eq(int, pl_lock_is_held(lock), 0));
        cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
        pl_lock_close(lock);
    }
}

typedef struct cycler_arg {
    const char *path;
    plt_kind_t kind;
    atomic_int *stop;
    int hold_ms;
} cycler_arg_t;

/* Acquires, holds for hold_ms, releases, until *stop. */
static int cycle(void *arg) {
    cycler_arg_t *c = arg;
    pl_lock_options_t o;
    pl_lock_t *lock = NULL;
    pl_lock_options_init(&o);
    o.timeout = 5;
    o.check_interval = 0.01;
    o.fail_when_locked = 0;
    if (plt_open_kind(c->kind, &lock, c->path, &o) != PL_OK)
        return 1;
    while (!atomic_load(c->stop)) {
        int rc = pl_lock_acquire(lock);
        if (rc == PL_OK) {
            plt_sleep_ms(c->hold_ms);
            rc = pl_lock_release(lock);
        } else if (!PL_IS_ALREADY_LOCKED(rc)) {
            return 2;
        }
    }
    pl_lock_close(lock);
    return 0;
}

/*
 * The stress form of the above with real processes: holders cycle a
 * TemporaryFileLock (or PidFileLock), holding each time for 5 ms, and a
 * contender waiting 50 ms at a time must only ever get the lock, PL_ETIMEDOUT
 * or PL_ELOCKED.  PLT_STRESS_RUNS overrides the number of attempts (the long
 * form runs 240).
 */
static void contention_never_ereplaced(plt_kind_t kind) {
    const char *p = plt_path("t.lock");
    const char *env = getenv("PLT_STRESS_RUNS");
    int runs = env != NULL ? atoi(env) : 40, other = 0, got = 0, timed = 0;
    atomic_int *stop = mmap(NULL, sizeof(*stop), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cycler_arg_t c = {p, kind, stop, 5};
    pid_t kids[3];
    cr_assert(stop != MAP_FAILED);
    atomic_store(stop, 0);
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        cr_assert(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(cycle(&c));
    }
    for (int i = 0; i < runs; i++) {
        pl_lock_options_t o;
        pl_lock_t *lock = NULL;
        pl_lock_options_init(&o);
        o.timeout = 0.05;
        o.check_interval = 0.01;
        o.fail_when_locked = 0;
        cr_assert(eq(int, plt_open_kind(kind, &lock, p, &o), PL_OK));
        int rc = pl_lock_acquire(lock);
        if (rc == PL_OK)
            got++;
        else if (PL_IS_ALREADY_LOCKED(rc))
            timed++;
        else {
            other++;
            cr_expect(eq(int, rc, PL_ETIMEDOUT), "run %d: %s (%s)", i,
                      pl_err_name(rc), pl_lock_errmsg(lock));
        }
        pl_lock_close(lock);
    }
    atomic_store(stop, 1);
    for (int i = 0; i < 3; i++) {
        int st;
        cr_expect(eq(int, waitpid(kids[i], &st, 0), kids[i]));
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        cr_expect(ok, "cycler %d: status %#x", i, st);
    }
    cr_log_info("%d runs: %d acquired, %d timed out, %d other", runs, got,
                timed, other);
    cr_expect(eq(int, other, 0));
}

Test(temporary, cycling_holders_give_only_timeouts, .timeout = 120.) {
    contention_never_ereplaced(PLT_TEMPORARY);
}

Test(temporary, cycling_pidfile_holders_give_only_timeouts, .timeout = 120.) {
    contention_never_ereplaced(PLT_PIDFILE);
}

/* ---- pl_lock_check (issue 9, defect 11b) --------------------------------- */

/* The file is unlinked behind the holder's back and another process locks
 * a new one at the path: the first lock excludes nobody any more, and
 * pl_lock_check reports PL_ELOST (it said PL_OK). */
Test(temporary, check_reports_a_lost_lock) {
    const char *p = plt_path("t.lock");
    plt_obj_hold_t hold = {PLT_TEMPORARY, p, {0}, NULL};
    plt_holder_t h;
    pl_lock_t *lock = xopen_tmp(p, 0, 0.01, PL_BACKEND_DEFAULT);
    pl_lock_options_init(&hold.opts);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_check(lock), PL_OK, lock);
    cr_assert(eq(int, unlink(p), 0));
    PLT_EXPECT_RC(pl_lock_check(lock), PL_ELOST, lock);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    PLT_EXPECT_RC(pl_lock_check(lock), PL_ELOST, lock);
    cr_expect(ne(int, (int)pl_lock_errmsg(lock)[0], 0));
    cr_expect(eq(int, pl_lock_is_held(lock), 1), "check must not release");
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    /* Release never removes the other holder's file. */
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    pl_lock_close(lock);
}
