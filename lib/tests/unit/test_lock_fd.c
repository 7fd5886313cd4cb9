/*
 * test_lock_fd.c -- pl_lock_fd, pl_lock_fd_timed, pl_unlock_fd: flag
 * validation, contention per backend, shared locks, timed waits, and OS
 * errors from the syscall table.
 *
 * flock and OFD locks belong to an open file description, so two open()s in
 * this process contend; lockf (F_SETLK) locks belong to the process, so its
 * contender runs in a forked child.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

TestSuite(lock_fd, .init = plt_setup, .fini = plt_teardown, .timeout = 60.);

static int open_rw(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
    return fd;
}

/* A message about a failing call names the call. */
static void expect_msg_names(const pl_error_t *e, plt_sys_t which) {
    cr_expect(plt_contains_any(e->msg, plt_sys_words(which)),
              "message \"%s\" does not name %s", e->msg, plt_sys_name(which));
}

/* The syscall entry a backend's lock goes through. */
static plt_sys_t lock_entry(pl_backend_t b) {
    return b == PL_BACKEND_FLOCK ? PLT_SYS_FLOCK : PLT_SYS_FCNTL;
}

/* ---- flag validation ----------------------------------------------------- */

static const unsigned bad_flags[] = {
    0,
    PL_NON_BLOCKING,
    PL_SHARED | PL_EXCLUSIVE,
    PL_SHARED | PL_EXCLUSIVE | PL_NON_BLOCKING,
    0x8u, /* LOCK_UN must not sneak in as an unlock */
    PL_EXCLUSIVE | 0x8u,
    PL_SHARED | 0x10u,
    PL_EXCLUSIVE | PL_NON_BLOCKING | 0x100u,
    0x80000000u | PL_EXCLUSIVE,
};
#define N_BAD_FLAGS (sizeof(bad_flags) / sizeof(bad_flags[0]))

static int total_sys_calls(void) {
    int n = 0;
    for (int i = 0; i < PLT_SYS_COUNT; i++)
        n += plt_sys_calls((plt_sys_t)i);
    return n;
}

Test(lock_fd, bad_flags_are_einval_without_a_system_call) {
    int fd = open_rw(plt_path("f.lock"));
    plt_sys_install();
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        for (size_t i = 0; i < N_BAD_FLAGS; i++) {
            pl_error_t e;
            memset(&e, 0, sizeof(e));
            int rc = pl_lock_fd(fd, bad_flags[i], plt_backends[b], &e);
            cr_expect(eq(int, rc, PL_EINVAL), "flags %#x backend %s",
                      bad_flags[i], pl_backend_name(plt_backends[b]));
            cr_expect(eq(int, e.code, PL_EINVAL));
            cr_expect(ne(int, (int)e.msg[0], 0), "empty message");
            rc = pl_lock_fd_timed(fd, bad_flags[i], plt_backends[b], 1.0, &e);
            cr_expect(eq(int, rc, PL_EINVAL), "timed: flags %#x backend %s",
                      bad_flags[i], pl_backend_name(plt_backends[b]));
            cr_expect(eq(int,
                         pl_lock_fd(fd, bad_flags[i], plt_backends[b], NULL),
                         PL_EINVAL));
        }
    }
    cr_expect(eq(int, total_sys_calls(), 0),
              "flock %d fcntl %d other system calls were made",
              plt_sys_calls(PLT_SYS_FLOCK), plt_sys_calls(PLT_SYS_FCNTL));
    close(fd);
}

Test(lock_fd, every_valid_flag_combination_locks) {
    static const unsigned good[] = {PL_SHARED, PL_EXCLUSIVE,
                                    PL_SHARED | PL_NON_BLOCKING,
                                    PL_EXCLUSIVE | PL_NON_BLOCKING};
    int fd = open_rw(plt_path("f.lock"));
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        for (size_t i = 0; i < 4; i++) {
            pl_error_t e;
            int rc = pl_lock_fd(fd, good[i], plt_backends[b], &e);
            cr_expect(eq(int, rc, PL_OK), "flags %#x backend %s: %s", good[i],
                      pl_backend_name(plt_backends[b]),
                      rc == PL_OK ? "" : e.msg);
            cr_expect(eq(int, pl_unlock_fd(fd, plt_backends[b], NULL), PL_OK));
        }
    }
    close(fd);
}

/* ---- contention ---------------------------------------------------------- */

Test(lock_fd, flock_contends_between_descriptions) {
    const char *p = plt_path("f.lock");
    int a = open_rw(p), b = open_rw(p);
    pl_error_t e;
    cr_assert(
        eq(int, pl_lock_fd(a, PL_EXCLUSIVE, PL_BACKEND_FLOCK, NULL), PL_OK));
    int rc =
        pl_lock_fd(b, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_FLOCK, &e);
    cr_expect(eq(int, rc, PL_ELOCKED), "%s", e.msg);
    cr_expect(eq(int, e.code, PL_ELOCKED));
    cr_expect(eq(
        int, pl_lock_fd(b, PL_SHARED | PL_NON_BLOCKING, PL_BACKEND_FLOCK, NULL),
        PL_ELOCKED));
    cr_assert(eq(int, pl_unlock_fd(a, PL_BACKEND_FLOCK, NULL), PL_OK));
    cr_expect(eq(
        int,
        pl_lock_fd(b, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_FLOCK, NULL),
        PL_OK));
    close(a);
    close(b);
}

Test(lock_fd, ofd_contends_between_descriptions) {
    const char *p = plt_path("f.lock");
    int a = open_rw(p), b = open_rw(p);
    pl_error_t e;
    cr_assert(
        eq(int, pl_lock_fd(a, PL_EXCLUSIVE, PL_BACKEND_OFD, NULL), PL_OK));
    int rc = pl_lock_fd(b, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_OFD, &e);
    cr_expect(eq(int, rc, PL_ELOCKED), "%s", e.msg);
    cr_expect(eq(int, e.code, PL_ELOCKED));
    cr_assert(eq(int, pl_unlock_fd(a, PL_BACKEND_OFD, NULL), PL_OK));
    cr_expect(
        eq(int,
           pl_lock_fd(b, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_OFD, NULL),
           PL_OK));
    close(a);
    close(b);
}

Test(lock_fd, every_backend_contends_with_another_process) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        int fd = open_rw(p);
        cr_assert(eq(int, pl_lock_fd(fd, PL_EXCLUSIVE, bk, NULL), PL_OK));
        cr_expect(
            eq(int, plt_try_other_process(p, bk, PL_EXCLUSIVE), PL_ELOCKED),
            "%s", pl_backend_name(bk));
        cr_expect(eq(int, plt_try_other_process(p, bk, PL_SHARED), PL_ELOCKED),
                  "%s", pl_backend_name(bk));
        cr_assert(eq(int, pl_unlock_fd(fd, bk, NULL), PL_OK));
        cr_expect(eq(int, plt_try_other_process(p, bk, PL_EXCLUSIVE), PL_OK),
                  "%s: unlock did not release", pl_backend_name(bk));
        close(fd);
    }
}

Test(lock_fd, shared_locks_coexist) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        int a = open_rw(p);
        cr_assert(eq(int, pl_lock_fd(a, PL_SHARED | PL_NON_BLOCKING, bk, NULL),
                     PL_OK));
        cr_expect(eq(int, plt_try_other_process(p, bk, PL_SHARED), PL_OK),
                  "%s: shared + shared", pl_backend_name(bk));
        cr_expect(
            eq(int, plt_try_other_process(p, bk, PL_EXCLUSIVE), PL_ELOCKED),
            "%s: exclusive vs shared", pl_backend_name(bk));
        if (bk != PL_BACKEND_LOCKF) {
            int b = open_rw(p);
            cr_expect(eq(int,
                         pl_lock_fd(b, PL_SHARED | PL_NON_BLOCKING, bk, NULL),
                         PL_OK),
                      "%s: second shared description", pl_backend_name(bk));
            cr_expect(
                eq(int, plt_try_this_process(p, bk, PL_EXCLUSIVE), PL_ELOCKED));
            close(b);
        }
        close(a);
    }
}

Test(lock_fd, lockf_contention_is_elocked_with_a_message) {
    const char *p = plt_path("f.lock");
    plt_fd_hold_t hold = {p, PL_BACKEND_LOCKF, PL_EXCLUSIVE, -1};
    plt_holder_t h;
    pl_error_t e;
    cr_assert(
        eq(int, plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, -1),
           PL_OK));
    int fd = open_rw(p);
    int rc =
        pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_LOCKF, &e);
    cr_expect(eq(int, rc, PL_ELOCKED), "%s", e.msg);
    cr_expect(eq(int, e.code, PL_ELOCKED));
    cr_expect(ne(int, (int)e.msg[0], 0));
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    cr_expect(eq(
        int,
        pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING, PL_BACKEND_LOCKF, NULL),
        PL_OK));
    close(fd);
}

/* ---- timed waits --------------------------------------------------------- */

Test(lock_fd, timeout_zero_is_one_attempt_and_elocked) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, -1),
               PL_OK));
        int fd = open_rw(p);
        plt_sys_install();
        int rc = pl_lock_fd_timed(fd, PL_EXCLUSIVE, bk, 0.0, NULL);
        cr_expect(eq(int, rc, PL_ELOCKED), "%s: %s", pl_backend_name(bk),
                  pl_err_name(rc));
        cr_expect(eq(int, plt_sys_calls(PLT_SYS_LOCKOP), 1), "%s: attempts",
                  pl_backend_name(bk));
        pl__sys_reset();
        close(fd);
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    }
}

/*
 * The bounds are generous on purpose: the machine has 2 cores shared by
 * several builds and test runs, so a wake-up can be late by hundreds of
 * milliseconds; early is never allowed (5 ms slack for clock granularity).
 */
Test(lock_fd, timed_wait_times_out_at_the_deadline) {
    const double timeout = 0.3;
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        pl_error_t e;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, -1),
               PL_OK));
        int fd = open_rw(p);
        double t0 = plt_now();
        int rc = pl_lock_fd_timed(fd, PL_EXCLUSIVE, bk, timeout, &e);
        double dt = plt_now() - t0;
        cr_expect(eq(int, rc, PL_ETIMEDOUT), "%s: %s (%s)", pl_backend_name(bk),
                  pl_err_name(rc), e.msg);
        cr_expect(eq(int, e.code, PL_ETIMEDOUT));
        cr_expect(ge(dbl, dt, timeout - 0.005), "%s: gave up early, %.3f s",
                  pl_backend_name(bk), dt);
        cr_expect(lt(dbl, dt, timeout + 0.5), "%s: gave up late, %.3f s",
                  pl_backend_name(bk), dt);
        /* The timed-out wait left nothing behind: no waiter still blocked
         * in the kernel grabs the lock for our (still open) descriptor when
         * the holder goes (100 ms for such a waiter to win). */
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        plt_sleep_ms(100);
        cr_expect(eq(int, plt_try_other_process(p, bk, PL_EXCLUSIVE), PL_OK),
                  "%s: a cancelled wait took the lock later",
                  pl_backend_name(bk));
        close(fd);
    }
}

/*
 * The holder releases 100 ms after it reports holding.  A kernel wait wakes
 * then; a 5 s timeout must not be used up.  Upper bound 2 s (not 0.2 s)
 * because of the shared machine; lower bound 50 ms proves we really waited.
 */
static void wakes_on_release(double timeout) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        pl_error_t e;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 100),
               PL_OK));
        int fd = open_rw(p);
        double t0 = plt_now();
        int rc = pl_lock_fd_timed(fd, PL_EXCLUSIVE, bk, timeout, &e);
        double dt = plt_now() - t0;
        cr_expect(eq(int, rc, PL_OK), "%s: %s (%s)", pl_backend_name(bk),
                  pl_err_name(rc), e.msg);
        cr_expect(ge(dbl, dt, 0.05), "%s: did not wait (%.3f s)",
                  pl_backend_name(bk), dt);
        cr_expect(lt(dbl, dt, 2.0), "%s: woke late (%.3f s)",
                  pl_backend_name(bk), dt);
        if (rc == PL_OK)
            cr_expect(
                eq(int, plt_try_other_process(p, bk, PL_EXCLUSIVE), PL_ELOCKED),
                "%s: timed acquire does not hold", pl_backend_name(bk));
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
}

Test(lock_fd, timed_wait_wakes_when_the_holder_releases) {
    wakes_on_release(5.0);
}

Test(lock_fd, negative_timeout_waits_until_released) {
    wakes_on_release(-1.0);
}

Test(lock_fd, blocking_lock_waits_until_released) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 100),
               PL_OK));
        int fd = open_rw(p);
        double t0 = plt_now();
        cr_expect(eq(int, pl_lock_fd(fd, PL_EXCLUSIVE, bk, NULL), PL_OK));
        /* Same bounds and reasons as wakes_on_release. */
        cr_expect(ge(dbl, plt_now() - t0, 0.05), "%s", pl_backend_name(bk));
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
}

Test(lock_fd, timed_shared_waits_do_not_block_each_other) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_SHARED, -1};
        plt_holder_t h;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, -1),
               PL_OK));
        int fd = open_rw(p);
        double t0 = plt_now();
        cr_expect(
            eq(int, pl_lock_fd_timed(fd, PL_SHARED, bk, 5.0, NULL), PL_OK),
            "%s", pl_backend_name(bk));
        /* Immediate in principle; 2 s bound for the shared machine. */
        cr_expect(lt(dbl, plt_now() - t0, 2.0));
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
}

/* ---- OS errors ----------------------------------------------------------- */

Test(lock_fd, bad_descriptor_is_an_os_error) {
    int fd = open_rw(plt_path("f.lock"));
    close(fd); /* fd is now closed: EBADF */
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_error_t e;
        int rc =
            pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING, plt_backends[i], &e);
        cr_expect(eq(int, rc, PL_EOS), "%s: %s",
                  pl_backend_name(plt_backends[i]), pl_err_name(rc));
        cr_expect(eq(int, e.os_error, EBADF));
        expect_msg_names(&e, lock_entry(plt_backends[i]));
        rc = pl_unlock_fd(fd, plt_backends[i], &e);
        cr_expect(eq(int, rc, PL_EOS));
        cr_expect(eq(int, e.os_error, EBADF));
    }
}

static void injected(int os_err, int want) {
    int fd = open_rw(plt_path("f.lock"));
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        pl_error_t e;
        plt_sys_install();
        plt_fault(PLT_SYS_LOCKOP, os_err, 0, -1, NULL);
        memset(&e, 0, sizeof(e));
        int rc = pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING, bk, &e);
        cr_expect(eq(int, rc, want), "%s: %s (%s)", pl_backend_name(bk),
                  pl_err_name(rc), e.msg);
        cr_expect(eq(int, e.code, want));
        cr_expect(eq(int, e.os_error, os_err), "%s", pl_backend_name(bk));
        cr_expect(ne(ptr, strstr(e.msg, strerror(os_err)), NULL),
                  "message \"%s\" lacks the OS text", e.msg);
        expect_msg_names(&e, lock_entry(bk));

        /* The timed path reports it too, at once: only contention is
         * retried, so 2 s must not be used up (1 s bound: shared machine). */
        memset(&e, 0, sizeof(e));
        double t0 = plt_now();
        rc = pl_lock_fd_timed(fd, PL_EXCLUSIVE, bk, 2.0, &e);
        cr_expect(eq(int, rc, want), "timed %s: %s (%s)", pl_backend_name(bk),
                  pl_err_name(rc), e.msg);
        cr_expect(eq(int, e.os_error, os_err));
        cr_expect(lt(dbl, plt_now() - t0, 1.0), "timed %s: retried",
                  pl_backend_name(bk));
        expect_msg_names(&e, lock_entry(bk));
        pl__sys_reset();
    }
    close(fd);
}

Test(lock_fd, injected_eio_is_eos_with_os_error) {
    injected(EIO, PL_EOS);
}

Test(lock_fd, injected_enolck_is_enotsup_with_os_error) {
    injected(ENOLCK, PL_ENOTSUP);
}

/* POSIX lets F_SETLK report a conflict as EACCES as well as EAGAIN
 * (portalocker maps both to AlreadyLocked). */
Test(lock_fd, fcntl_eacces_is_contention) {
    int fd = open_rw(plt_path("f.lock"));
    static const pl_backend_t fcntl_backends[] = {PL_BACKEND_LOCKF,
                                                  PL_BACKEND_OFD};
    for (int i = 0; i < 2; i++) {
        pl_error_t e;
        plt_sys_install();
        plt_fault(PLT_SYS_LOCKOP, EACCES, 0, -1, NULL);
        int rc = pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING,
                            fcntl_backends[i], &e);
        cr_expect(eq(int, rc, PL_ELOCKED), "%s: %s (%s)",
                  pl_backend_name(fcntl_backends[i]), pl_err_name(rc), e.msg);
        pl__sys_reset();
    }
    close(fd);
}

Test(lock_fd, injected_unlock_failure_is_reported) {
    int fd = open_rw(plt_path("f.lock"));
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        pl_error_t e;
        cr_assert(eq(int, pl_lock_fd(fd, PL_EXCLUSIVE, bk, NULL), PL_OK));
        plt_sys_install();
        plt_fault(PLT_SYS_UNLOCKOP, EIO, 0, 1, NULL);
        int rc = pl_unlock_fd(fd, bk, &e);
        cr_expect(eq(int, rc, PL_EOS), "%s: %s", pl_backend_name(bk),
                  pl_err_name(rc));
        cr_expect(eq(int, e.os_error, EIO));
        expect_msg_names(&e, lock_entry(bk));
        pl__sys_reset();
        cr_assert(eq(int, pl_unlock_fd(fd, bk, NULL), PL_OK));
    }
    close(fd);
}

/*
 * "Waits in the kernel": while the holder keeps the lock for 1 s the wait
 * makes a handful of lock calls (the first try, the sleeping call, maybe a
 * last try at the deadline), not one per polling tick (a 0.25 s poll would
 * make at least 5).  Counting calls is immune to the machine's load.
 */
Test(lock_fd, timed_wait_sleeps_in_the_kernel) {
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        pl_backend_t bk = plt_backends[i];
        const char *p = plt_path(pl_backend_name(bk));
        plt_fd_hold_t hold = {p, bk, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        cr_assert(eq(
            int,
            plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 1000),
            PL_OK));
        int fd = open_rw(p);
        plt_sys_install();
        int rc = pl_lock_fd_timed(fd, PL_EXCLUSIVE, bk, 10.0, NULL);
        int attempts = plt_sys_calls(PLT_SYS_LOCKOP);
        pl__sys_reset();
        cr_expect(eq(int, rc, PL_OK), "%s: %s", pl_backend_name(bk),
                  pl_err_name(rc));
        cr_expect(le(int, attempts, 4), "%s: %d lock calls (polling?)",
                  pl_backend_name(bk), attempts);
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
}

/* A shared lock needs only read access, for every backend. */
Test(lock_fd, shared_lock_on_a_read_only_descriptor) {
    const char *p = plt_path("ro.lock");
    close(open_rw(p));
    for (int i = 0; i < PLT_N_BACKENDS; i++) {
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        pl_error_t e;
        cr_assert(fd >= 0);
        int rc =
            pl_lock_fd(fd, PL_SHARED | PL_NON_BLOCKING, plt_backends[i], &e);
        cr_expect(eq(int, rc, PL_OK), "%s: %s",
                  pl_backend_name(plt_backends[i]), rc == PL_OK ? "" : e.msg);
        cr_expect(eq(int, pl_unlock_fd(fd, plt_backends[i], NULL), PL_OK));
        close(fd);
    }
}

/* Two threads wait on their own descriptions: the holder's release lets
 * exactly one in; the other times out (bounds: shared machine). */
typedef struct waiter {
    const char *path;
    pl_backend_t backend;
    int rc;
    double dt;
} waiter_t;

static void *wait_for_lock(void *p) {
    waiter_t *w = p;
    int fd = open(w->path, O_RDWR | O_CLOEXEC);
    double t0 = plt_now();
    w->rc = fd < 0 ? PLT_OPEN_FAILED
                   : pl_lock_fd_timed(fd, PL_EXCLUSIVE, w->backend, 1.0, NULL);
    w->dt = plt_now() - t0;
    /* Keep the lock until both threads are done: the descriptor stays open
     * (closed by the test). */
    return (void *)(intptr_t)fd;
}

Test(lock_fd, concurrent_timed_waiters_one_wins) {
    for (int i = 0; i < 2; i++) {
        const char *p = plt_path(pl_backend_name(plt_desc_backends[i]));
        plt_fd_hold_t hold = {p, plt_desc_backends[i], PL_EXCLUSIVE, -1};
        plt_holder_t h;
        waiter_t w[2] = {{p, plt_desc_backends[i], 1, 0},
                         {p, plt_desc_backends[i], 1, 0}};
        pthread_t th[2];
        void *fds[2];
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 100),
               PL_OK));
        for (int k = 0; k < 2; k++)
            cr_assert(
                eq(int, pthread_create(&th[k], NULL, wait_for_lock, &w[k]), 0));
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], &fds[k]);
        int ok = (w[0].rc == PL_OK) + (w[1].rc == PL_OK);
        int timedout = (w[0].rc == PL_ETIMEDOUT) + (w[1].rc == PL_ETIMEDOUT);
        cr_expect(eq(int, ok, 1), "%s: %s and %s",
                  pl_backend_name(plt_desc_backends[i]), pl_err_name(w[0].rc),
                  pl_err_name(w[1].rc));
        cr_expect(eq(int, timedout, 1), "%s",
                  pl_backend_name(plt_desc_backends[i]));
        for (int k = 0; k < 2; k++) {
            if (w[k].rc == PL_ETIMEDOUT)
                cr_expect(ge(dbl, w[k].dt, 0.995), "early: %.3f s", w[k].dt);
            if (w[k].rc == PL_OK)
                cr_expect(lt(dbl, w[k].dt, 0.9), "late: %.3f s", w[k].dt);
            close((int)(intptr_t)fds[k]);
        }
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    }
}

/* "Installs no signal handler and uses no alarm()". */
Test(lock_fd, timed_wait_leaves_signals_alone) {
    static const int sigs[] = {SIGALRM,   SIGUSR1, SIGUSR2,
                               SIGVTALRM, SIGPROF, SIGIO};
    struct sigaction before[6], after;
    for (int i = 0; i < 6; i++)
        cr_assert(eq(int, sigaction(sigs[i], NULL, &before[i]), 0));
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        const char *p = plt_path(pl_backend_name(plt_backends[b]));
        plt_fd_hold_t hold = {p, plt_backends[b], PL_EXCLUSIVE, -1};
        plt_holder_t h;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, -1),
               PL_OK));
        int fd = open_rw(p);
        cr_expect(eq(
            int, pl_lock_fd_timed(fd, PL_EXCLUSIVE, plt_backends[b], 0.1, NULL),
            PL_ETIMEDOUT));
        cr_expect(eq(uint, alarm(0), 0u), "an alarm is pending");
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
    for (int i = 0; i < 6; i++) {
        cr_assert(eq(int, sigaction(sigs[i], NULL, &after), 0));
        cr_expect(after.sa_handler == before[i].sa_handler,
                  "handler of signal %d changed", sigs[i]);
    }
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
    (void)sig;
    usr1_seen++;
}

typedef struct pester {
    pid_t pid;
    atomic_int stop;
} pester_t;

static void *pester_with_usr1(void *p) {
    pester_t *ps = p;
    for (int i = 0; i < 1000 && !atomic_load(&ps->stop); i++) {
        kill(ps->pid, SIGUSR1);
        plt_sleep_ms(10);
    }
    return NULL;
}

/*
 * An application signal handler (without SA_RESTART) interrupting the wait
 * must not turn it into an error: the wait goes on until the release (about
 * 300 ms) or the timeout.  Bounds: shared machine.
 */
static void wait_under_signals(double timeout) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    cr_assert(eq(int, sigaction(SIGUSR1, &sa, &old), 0));
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        const char *p = plt_path(pl_backend_name(plt_backends[b]));
        plt_fd_hold_t hold = {p, plt_backends[b], PL_EXCLUSIVE, -1};
        plt_holder_t h;
        pester_t ps = {getpid(), 0};
        pthread_t th;
        pl_error_t e;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 300),
               PL_OK));
        int fd = open_rw(p);
        usr1_seen = 0;
        cr_assert(eq(int, pthread_create(&th, NULL, pester_with_usr1, &ps), 0));
        double t0 = plt_now();
        int rc =
            pl_lock_fd_timed(fd, PL_EXCLUSIVE, plt_backends[b], timeout, &e);
        double dt = plt_now() - t0;
        atomic_store(&ps.stop, 1);
        pthread_join(th, NULL);
        cr_expect(eq(int, rc, PL_OK), "%s: %s (%s) after %.3f s",
                  pl_backend_name(plt_backends[b]), pl_err_name(rc),
                  rc == PL_OK ? "" : e.msg, dt);
        cr_expect(ge(dbl, dt, 0.2), "%s: returned early",
                  pl_backend_name(plt_backends[b]));
        cr_expect(gt(int, (int)usr1_seen, 0), "no signal was delivered");
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
    sigaction(SIGUSR1, &old, NULL);
}

Test(lock_fd, timed_wait_survives_signals) {
    wait_under_signals(5.0);
}

Test(lock_fd, endless_wait_survives_signals) {
    wait_under_signals(-1.0);
}

/* Huge and infinite timeouts mean "forever" (no overflow converting them to
 * a deadline: UBSan checks that in the sanitizer build). */
Test(lock_fd, huge_timeouts_wait_until_released) {
    static const double timeouts[] = {1e12, 1e300, INFINITY};
    for (int i = 0; i < 3; i++) {
        const char *p = plt_path("huge.lock");
        plt_fd_hold_t hold = {p, PL_BACKEND_OFD, PL_EXCLUSIVE, -1};
        plt_holder_t h;
        cr_assert(
            eq(int,
               plt_holder_start(&h, plt_fd_acquire, plt_fd_release, &hold, 100),
               PL_OK));
        int fd = open_rw(p);
        cr_expect(eq(int,
                     pl_lock_fd_timed(fd, PL_EXCLUSIVE, PL_BACKEND_OFD,
                                      timeouts[i], NULL),
                     PL_OK),
                  "timeout %g", timeouts[i]);
        cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
        close(fd);
    }
}
