/*
 * test_rlock.c -- RLock: counting per object, over-release, contention
 * between objects, close at any depth, fork.
 */
#include "helpers.h"

#include <fcntl.h>
#include <string.h>

TestSuite(rlock, .init = plt_setup, .fini = plt_teardown, .timeout = 30.);

static pl_lock_t *xopen_rlock(const char *path, pl_backend_t backend) {
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 0;
    o.backend = backend;
    cr_assert(eq(int, pl_rlock_open(&lock, path, &o), PL_OK));
    return lock;
}

Test(rlock, counts_acquires_and_releases) {
    const char *p = plt_path("r.lock");
    pl_lock_t *lock = xopen_rlock(p, PL_BACKEND_FLOCK);
    int fds = plt_count_fds();
    cr_expect(eq(int, pl_lock_count(lock), 0));
    for (int i = 1; i <= 3; i++) {
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
        cr_expect(eq(int, pl_lock_count(lock), i));
    }
    cr_expect(eq(int, plt_count_fds(), fds + 1), "one descriptor per object");
    pl_fd_t fd = pl_lock_fileno(lock);
    for (int i = 2; i >= 1; i--) {
        PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
        cr_expect(eq(int, pl_lock_count(lock), i));
        cr_expect(eq(int, pl_lock_is_held(lock), 1));
        cr_expect(eq(long, (long)pl_lock_fileno(lock), (long)fd));
        cr_expect(eq(int,
                     plt_try_this_process(p, PL_BACKEND_FLOCK, PL_EXCLUSIVE),
                     PL_ELOCKED),
                  "released at depth %d", i + 1);
    }
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, pl_lock_count(lock), 0));
    cr_expect(eq(int, pl_lock_is_held(lock), 0));
    cr_expect(eq(int, plt_count_fds(), fds));
    cr_expect(eq(int, plt_try_this_process(p, PL_BACKEND_FLOCK, PL_EXCLUSIVE),
                 PL_OK));
    pl_lock_close(lock);
}

Test(rlock, over_release_is_enotheld) {
    pl_lock_t *lock = xopen_rlock(plt_path("r.lock"), PL_BACKEND_FLOCK);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_ENOTHELD, lock);
    cr_expect(ne(int, (int)pl_lock_errmsg(lock)[0], 0));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_ENOTHELD, lock);
    cr_expect(eq(int, pl_lock_count(lock), 0));
    pl_lock_close(lock);
}

Test(rlock, second_object_contends) {
    for (int i = 0; i < 2; i++) {
        const char *p = plt_path(pl_backend_name(plt_desc_backends[i]));
        pl_lock_t *a = xopen_rlock(p, plt_desc_backends[i]);
        pl_lock_t *b = xopen_rlock(p, plt_desc_backends[i]);
        PLT_ASSERT_RC(pl_lock_acquire(a), PL_OK, a);
        PLT_ASSERT_RC(pl_lock_acquire(a), PL_OK, a);
        PLT_EXPECT_RC(pl_lock_acquire(b), PL_ELOCKED, b);
        cr_expect(eq(int, pl_lock_count(b), 0));
        PLT_EXPECT_RC(pl_lock_release(a), PL_OK, a);
        PLT_EXPECT_RC(pl_lock_acquire(b), PL_ELOCKED, b);
        PLT_EXPECT_RC(pl_lock_release(a), PL_OK, a);
        PLT_EXPECT_RC(pl_lock_acquire(b), PL_OK, b);
        pl_lock_close(a);
        pl_lock_close(b);
    }
}

Test(rlock, close_releases_at_any_depth) {
    const char *p = plt_path("r.lock");
    pl_lock_t *lock = xopen_rlock(p, PL_BACKEND_LOCKF);
    for (int i = 0; i < 5; i++)
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_assert(eq(int, plt_try_other_process(p, PL_BACKEND_LOCKF, PL_EXCLUSIVE),
                 PL_ELOCKED));
    cr_expect(eq(int, pl_lock_close(lock), PL_OK));
    cr_expect(eq(int, plt_try_other_process(p, PL_BACKEND_LOCKF, PL_EXCLUSIVE),
                 PL_OK));
}

Test(rlock, plain_lock_does_not_count) {
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("l.lock"), NULL), PL_OK));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, pl_lock_count(lock), 1));
    pl_lock_close(lock);
}

Test(rlock, forked_child_cannot_count_or_release) {
    const char *p = plt_path("r.lock");
    pl_lock_t *lock = xopen_rlock(p, PL_BACKEND_FLOCK);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_in_child(plt_child_acquire, lock), PL_EFORKED));
    cr_expect(eq(int, plt_in_child(plt_child_release, lock), PL_EFORKED));
    cr_expect(eq(int, pl_lock_count(lock), 2));
    cr_expect(eq(int, plt_try_other_process(p, PL_BACKEND_FLOCK, PL_EXCLUSIVE),
                 PL_ELOCKED));
    pl_lock_close(lock);
}

Test(rlock, descriptor_is_close_on_exec) {
    pl_lock_t *lock = xopen_rlock(plt_path("r.lock"), PL_BACKEND_OFD);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_cloexec(pl_lock_fileno(lock)), 1));
    pl_lock_close(lock);
}
