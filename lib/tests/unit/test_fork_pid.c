/*
 * test_fork_pid.c -- fork detection must not rely on MADV_WIPEONFORK alone.
 *
 * qemu-user accepts madvise(MADV_WIPEONFORK) and ignores it, so a child
 * forked under emulation saw the parent's cached PID and believed it owned
 * the parent's lock (fork_child_release failed on aarch64 and s390x).  Here
 * the same situation is made natively: madvise "succeeds" without doing
 * anything, exactly as under qemu-user.
 */
#include "helpers.h"

#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

TestSuite(fork_pid, .init = plt_setup, .fini = plt_teardown, .timeout = 60.);

static atomic_int madvise_calls;

/* qemu-user's behaviour: accepted, ignored. */
static int madvise_ignored(void *addr, size_t len, int advice) {
    (void)addr;
    (void)len;
    (void)advice;
    atomic_fetch_add(&madvise_calls, 1);
    return 0;
}

static int child_release(void *arg) {
    return pl_lock_release(arg);
}

static int child_acquire(void *arg) {
    return pl_lock_acquire(arg);
}

Test(fork_pid, child_detected_when_wipeonfork_is_ignored) {
    pl_lock_options_t o;
    pl_lock_t *lock = NULL;
    const char *p = plt_path("lock");

    /* Before the library's first getpid: the cache page is set up now. */
    pl__sys.madvise = madvise_ignored;
    pl_lock_options_init(&o);
    o.timeout = 0;
    cr_assert(eq(int, pl_lock_open(&lock, p, &o), PL_OK));
    cr_assert(eq(int, pl_lock_acquire(lock), PL_OK), "%s",
              pl_lock_errmsg(lock));
    /* Where the platform has no MADV_WIPEONFORK nothing is cached and the
     * stub is never reached; the child checks below still apply. */
#ifdef MADV_WIPEONFORK
    cr_assert(ge(int, atomic_load(&madvise_calls), 1),
              "the PID cache did not go through pl__sys.madvise");
#endif
    cr_expect(eq(int, plt_in_child(child_release, lock), PL_EFORKED),
              "a forked child released the parent's lock: it saw the "
              "parent's cached PID");
    cr_expect(eq(int, plt_in_child(child_acquire, lock), PL_EFORKED),
              "a forked child re-acquired the parent's lock as its own");
    cr_expect(eq(int, pl_lock_is_held(lock), 1));
    cr_expect(eq(int, plt_try_other_process(p, PL_BACKEND_FLOCK, PL_EXCLUSIVE),
                 PL_ELOCKED),
              "the parent's lock was released by the child");
    cr_expect(eq(int, pl_lock_release(lock), PL_OK), "%s",
              pl_lock_errmsg(lock));
    pl_lock_close(lock);
}

/* A grandchild too: the handler runs in every generation. */
static int grandchild_release(void *arg) {
    int rc = plt_in_child(child_release, arg);
    return rc == PL_EFORKED ? PL_OK : (rc == PL_OK ? 103 : rc);
}

Test(fork_pid, grandchild_detected_when_wipeonfork_is_ignored) {
    pl_lock_t *lock = NULL;
    pl__sys.madvise = madvise_ignored;
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("lock"), NULL), PL_OK));
    cr_assert(eq(int, pl_lock_acquire(lock), PL_OK), "%s",
              pl_lock_errmsg(lock));
    cr_expect(eq(int, plt_in_child(grandchild_release, lock), PL_OK),
              "a grandchild released the lock as its own");
    cr_expect(eq(int, pl_lock_release(lock), PL_OK));
    pl_lock_close(lock);
}
