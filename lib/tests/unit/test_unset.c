/*
 * test_unset.c -- PL_UNSET compares equal after being stored in a double,
 * whatever FLT_EVAL_METHOD is.
 *
 * On 32-bit x86 (x87, FLT_EVAL_METHOD 2) the old sentinel -1e300 was
 * evaluated as a long double that no stored double equals, so
 * "opts.check_interval == PL_UNSET" was false in the library, the CLI, the
 * contender and every API user, and each acquire failed with "invalid
 * argument".  This file is compiled with -mfpmath=387 where the compiler
 * allows it (GCC on x86_64; see CMakeLists.txt), which gives this
 * translation unit the i686 evaluation method on an x86_64 machine.
 */
#include "helpers.h"

#include <float.h>

TestSuite(unset, .init = plt_setup, .fini = plt_teardown, .timeout = 60.);

/* A real store to a double, as a struct field or an argument is. */
static double stored(double v) {
    volatile double d = v;
    return d;
}

Test(unset, equal_after_a_store) {
    pl_lock_options_t o;
    cr_log_info("FLT_EVAL_METHOD %d", (int)FLT_EVAL_METHOD);
    pl_lock_options_init(&o);
    o.timeout = PL_UNSET;
    o.check_interval = stored(PL_UNSET);
    cr_expect(eq(int, o.timeout == PL_UNSET, 1),
              "a stored PL_UNSET is not PL_UNSET");
    cr_expect(eq(int, o.check_interval == PL_UNSET, 1));
    cr_expect(eq(int, stored(PL_UNSET) == PL_UNSET, 1));
    cr_expect(eq(int, stored(PL_UNSET) != PL_UNSET, 0));
    /* Still an absurd negative number of seconds. */
    cr_expect(eq(int, PL_UNSET < -1e18, 1));
}

Test(unset, options_resolve_to_the_defaults) {
    pl_lock_options_t o;
    pl_lock_t *a = NULL, *b = NULL;
    const char *p = plt_path("lock");

    pl_lock_options_init(&o);
    o.timeout = PL_UNSET;        /* default 5 s */
    o.check_interval = PL_UNSET; /* default 0.25 s */
    cr_assert(eq(int, pl_lock_open(&a, p, &o), PL_OK));
    cr_assert(eq(int, pl_lock_acquire(a), PL_OK), "%s", pl_lock_errmsg(a));
    cr_expect(eq(int, pl_lock_acquire_with(a, PL_UNSET, PL_UNSET, -1), PL_OK),
              "%s", pl_lock_errmsg(a));
    /* An override of 0 on a second object: contention, not EINVAL. */
    cr_assert(eq(int, pl_lock_open(&b, p, &o), PL_OK));
    cr_expect(eq(int, pl_lock_acquire_with(b, 0, PL_UNSET, -1), PL_ELOCKED),
              "%s", pl_lock_errmsg(b));
    pl_lock_close(b);
    pl_lock_close(a);
}

Test(unset, semaphore_resolves_to_the_defaults) {
    pl_lock_options_t o;
    pl_semaphore_t *s = NULL;
    pl_lock_options_init(&o);
    o.timeout = PL_UNSET;
    o.check_interval = PL_UNSET;
    cr_assert(eq(int, pl_semaphore_open(&s, 1, "unset", plt_dir, &o), PL_OK));
    cr_expect(
        eq(int, pl_semaphore_acquire_with(s, PL_UNSET, PL_UNSET, -1), PL_OK));
    pl_semaphore_close(s);
}

/* Programs built against the pre-0.1 header pass -1e300 (as a double). */
Test(unset, the_old_sentinel_is_still_accepted) {
    pl_lock_t *a = NULL;
    cr_assert(eq(int, pl_lock_open(&a, plt_path("lock"), NULL), PL_OK));
    cr_expect(eq(int,
                 pl_lock_acquire_with(a, stored(-1e300), stored(-1e300), -1),
                 PL_OK),
              "%s", pl_lock_errmsg(a));
    pl_lock_close(a);
}
