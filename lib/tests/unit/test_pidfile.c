/*
 * test_pidfile.c -- PidFileLock (sidecar "<path>.lock", PID published in
 * path), pl_pidfile_holder and pl_pidfile_read.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(pidfile, .init = plt_setup, .fini = plt_teardown, .timeout = 30.);

static pl_lock_t *xopen_pid(const char *path, const pl_lock_options_t *o) {
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_pidfile_lock_open(&lock, path, o), PL_OK));
    return lock;
}

static const char *sidecar(const char *path) {
    static char buf[4200];
    snprintf(buf, sizeof(buf), "%s.lock", path);
    return buf;
}

Test(pidfile, publishes_the_pid_and_locks_the_sidecar) {
    const char *p = plt_path("app.pid");
    char buf[64], want[32];
    long pid = 0;
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(plt_exists(sidecar(p)), "no sidecar %s", sidecar(p));
    snprintf(want, sizeof(want), "%ld", (long)getpid());
    cr_assert(ge(long, plt_read_file(p, buf, sizeof(buf)), 0L), "no PID file");
    cr_expect(eq(str, buf, want));
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    /* Published atomically: no temporary file is left beside them. */
    cr_expect(eq(int, plt_dir_entries(plt_dir), 2));
    /* The OS lock is on the sidecar, not on the PID file. */
    cr_expect(eq(
        int,
        plt_try_other_process(sidecar(p), pl_lock_backend(lock), PL_EXCLUSIVE),
        PL_ELOCKED));
    cr_expect(eq(int,
                 plt_try_other_process(p, pl_lock_backend(lock), PL_EXCLUSIVE),
                 PL_OK),
              "the PID file itself is locked");
    pl_lock_close(lock);
}

Test(pidfile, holder_reports_this_process_while_held) {
    const char *p = plt_path("app.pid");
    pl_holder_info_t info;
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    memset(&info, 0x5a, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, (long)getpid()));
    cr_expect(eq(int, info.alive, 1));
    /* The host is recorded or left empty, never garbage. */
    char host[256] = "";
    cr_assert(eq(int, gethostname(host, sizeof(host) - 1), 0));
    cr_expect(memchr(info.host, '\0', sizeof(info.host)) != NULL);
    cr_expect(info.host[0] == '\0' || strcmp(info.host, host) == 0,
              "host \"%.255s\"", info.host);
    pl_lock_close(lock);
}

Test(pidfile, release_removes_both_files) {
    const char *p = plt_path("app.pid");
    pl_lock_t *lock = xopen_pid(p, NULL);
    int fds = plt_count_fds();
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, plt_exists(p), 0), "PID file left");
    cr_expect(eq(int, plt_exists(sidecar(p)), 0), "sidecar left");
    cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, pl_lock_close(lock), PL_OK));
    cr_expect(eq(int, plt_exists(p), 0));
    cr_expect(eq(int, plt_exists(sidecar(p)), 0));
}

Test(pidfile, no_holder_is_enoent) {
    pl_holder_info_t info;
    pl_lock_t *lock = xopen_pid(plt_path("app.pid"), NULL);
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_ENOENT));
    pl_lock_close(lock);
}

Test(pidfile, holder_of_other_kinds_is_einval) {
    pl_holder_info_t info;
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("a.lock"), NULL), PL_OK));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_EINVAL));
    pl_lock_close(lock);
    lock = xopen_pid(plt_path("app.pid"), NULL);
    cr_expect(eq(int, pl_pidfile_holder(lock, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_pidfile_holder(NULL, &info), PL_EINVAL));
    pl_lock_close(lock);
}

/* A holder in another process: contention is immediate (fail_when_locked
 * defaults to 1; 250 ms bound for the shared machine) and the holder's PID
 * is reported; once it is SIGKILLed (leaving its PID file), it is dead. */
Test(pidfile, contention_reports_the_holder) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_holder_info_t info;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    long holder = (long)h.pid;
    pl_lock_t *lock = xopen_pid(p, NULL);
    double t0 = plt_now();
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ELOCKED, lock);
    cr_expect(lt(dbl, plt_now() - t0, 0.25));
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, holder));
    cr_expect(eq(int, info.alive, 1));

    plt_holder_kill(&h);
    cr_assert(plt_exists(p), "a killed holder cannot remove its PID file");
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, holder));
    cr_expect(eq(int, info.alive, 0), "a reaped process is alive");

    /* The kernel dropped the dead holder's lock: we take over and publish. */
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_OK, lock);
    long pid = 0;
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    pl_lock_close(lock);
}

Test(pidfile, holder_removes_its_pid_file_on_release) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_holder_info_t info;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ELOCKED, lock);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    cr_expect(eq(int, plt_exists(p), 0));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_ENOENT));
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_OK, lock);
    pl_lock_close(lock);
}

/* fail_when_locked 0: waits the timeout, then PL_ETIMEDOUT.  Bounds: never
 * early (5 ms slack), late by up to 500 ms on the shared machine. */
Test(pidfile, waiting_contender_times_out) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_lock_options_t o;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    pl_lock_options_init(&o);
    o.timeout = 0.3;
    o.fail_when_locked = 0;
    pl_lock_t *lock = xopen_pid(p, &o);
    double t0 = plt_now();
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ETIMEDOUT, lock);
    double dt = plt_now() - t0;
    cr_expect(ge(dbl, dt, 0.295), "%.3f s", dt);
    cr_expect(lt(dbl, dt, 0.8), "%.3f s", dt);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    pl_lock_close(lock);
}

/* ---- pl_pidfile_read ----------------------------------------------------- */

Test(pidfile, read_accepts_a_positive_decimal) {
    const char *p = plt_path("x.pid");
    long pid = 0;
    pl_error_t e;
    plt_write_file(p, "42");
    cr_expect(eq(int, pl_pidfile_read(p, &pid, &e), PL_OK));
    cr_expect(eq(long, pid, 42L));
    plt_write_file(p, "4194304");
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, 4194304L));
}

Test(pidfile, read_rejects_anything_else) {
    static const char *const bad[] = {
        "",   "12x", "-5", " 42",  "0",   "+7",
        "x1", "4 2", "00", "0x10", "1.5", "99999999999999999999999"};
    const char *p = plt_path("x.pid");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long pid = 12345;
        pl_error_t e;
        memset(&e, 0, sizeof(e));
        plt_write_file(p, bad[i]);
        int rc = pl_pidfile_read(p, &pid, &e);
        cr_expect(ne(int, rc, PL_OK), "\"%s\" accepted as %ld", bad[i], pid);
        cr_expect(ne(int, rc, PL_ENOENT), "\"%s\"", bad[i]);
        cr_expect(eq(int, e.code, rc), "\"%s\"", bad[i]);
        cr_expect(ne(int, (int)e.msg[0], 0), "\"%s\": no message", bad[i]);
    }
}

Test(pidfile, read_of_a_missing_file_is_enoent) {
    long pid = 0;
    pl_error_t e;
    int rc = pl_pidfile_read(plt_path("none.pid"), &pid, &e);
    cr_expect(eq(int, rc, PL_ENOENT));
    cr_expect(eq(int, e.code, PL_ENOENT));
    cr_expect(eq(int, e.os_error, ENOENT));
    cr_expect(eq(int, pl_pidfile_read(NULL, &pid, NULL), PL_EINVAL));
    cr_expect(
        eq(int, pl_pidfile_read(plt_path("none.pid"), NULL, NULL), PL_EINVAL));
}

Test(pidfile, descriptor_is_close_on_exec) {
    pl_lock_t *lock = xopen_pid(plt_path("app.pid"), NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_cloexec(pl_lock_fileno(lock)), 1));
    pl_lock_close(lock);
}

Test(pidfile, forked_child_leaves_the_parents_files) {
    const char *p = plt_path("app.pid");
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_in_child(plt_child_release, lock), PL_EFORKED));
    cr_expect(plt_exists(p));
    cr_expect(plt_exists(sidecar(p)));
    long pid = 0;
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    pl_lock_close(lock);
}

/* As for TemporaryFileLock: a relative path is fixed at open (portalocker
 * 4.1.1+ makes it absolute), so a chdir while held changes nothing. */
Test(pidfile, relative_path_survives_chdir) {
    char here[4096];
    pl_lock_t *lock = NULL;
    cr_assert(getcwd(here, sizeof(here)) != NULL);
    cr_assert(eq(int, chdir(plt_dir), 0));
    cr_assert(eq(int, pl_pidfile_lock_open(&lock, "rel.pid", NULL), PL_OK));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_assert(eq(int, chdir("/"), 0));
    pl_holder_info_t info;
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "files left behind");
    pl_lock_close(lock);
    cr_assert(eq(int, chdir(here), 0));
}

/* The sidecar is unlinked on release while held, so waiting contenders race
 * exactly as with TemporaryFileLock. */
Test(pidfile, processes_never_overlap) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        plt_race_t r = plt_race(PLT_PIDFILE, plt_path("race.pid"),
                                plt_backends[b], 3, 100);
        cr_expect(eq(int, r.failures, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.overlaps, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.acquired, 300), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "files left");
    }
}
