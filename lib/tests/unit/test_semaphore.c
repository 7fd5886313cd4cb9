/*
 * test_semaphore.c -- BoundedSemaphore / NamedBoundedSemaphore over slot
 * files "{name}.{nn}.lock".
 */
#include "helpers.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(semaphore, .init = plt_setup, .fini = plt_teardown, .timeout = 60.);

static pl_semaphore_t *xopen_sem(unsigned n, const char *name, const char *dir,
                                 double timeout, int fwl) {
    pl_semaphore_t *s = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = timeout;
    o.check_interval = 0.05;
    o.fail_when_locked = fwl;
    int rc = pl_semaphore_open(&s, n, name, dir, &o);
    cr_assert(eq(int, rc, PL_OK), "pl_semaphore_open: %s", pl_err_name(rc));
    return s;
}

#define SEM_EXPECT_RC(rc, want, s)                                             \
 cr_expect(eq(int, (rc), (want)), "got %s, want %s (%s)", pl_err_name(rc),     \
           pl_err_name(want), pl_semaphore_errmsg(s))

Test(semaphore, slot_names_use_two_digit_padding) {
    pl_semaphore_t *s = xopen_sem(3, "demo", plt_dir, 0, -1);
    char want[4200];
    cr_expect(eq(str, (char *)pl_semaphore_name(s), "demo"));
    for (unsigned i = 0; i < 3; i++) {
        snprintf(want, sizeof(want), "%s/demo.%02u.lock", plt_dir, i);
        cr_assert(pl_semaphore_slot_path(s, i) != NULL);
        cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, i), want));
    }
    cr_expect(eq(ptr, (void *)pl_semaphore_slot_path(s, 3), NULL));
    cr_expect(eq(int, pl_semaphore_slot(s), -1));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "open created files");
    pl_semaphore_close(s);

    s = xopen_sem(1000, "big", plt_dir, 0, -1);
    snprintf(want, sizeof(want), "%s/big.09.lock", plt_dir);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 9), want));
    snprintf(want, sizeof(want), "%s/big.99.lock", plt_dir);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 99), want));
    /* Three digits from 100 on, as Python's "{number:02d}". */
    snprintf(want, sizeof(want), "%s/big.100.lock", plt_dir);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 100), want));
    snprintf(want, sizeof(want), "%s/big.999.lock", plt_dir);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 999), want));
    cr_expect(eq(ptr, (void *)pl_semaphore_slot_path(s, 1000), NULL));
    pl_semaphore_close(s);
}

Test(semaphore, name_may_contain_dots) {
    pl_semaphore_t *s = xopen_sem(1, "a.b.c", plt_dir, 0, -1);
    char want[4200];
    snprintf(want, sizeof(want), "%s/a.b.c.00.lock", plt_dir);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 0), want));
    pl_semaphore_close(s);
}

Test(semaphore, null_name_is_bounded_semaphore_random) {
    pl_semaphore_t *s = xopen_sem(2, NULL, plt_dir, 0, -1);
    const char *name = pl_semaphore_name(s);
    const char *prefix = "bounded_semaphore.";
    cr_assert(name != NULL);
    cr_expect(eq(int, strncmp(name, prefix, strlen(prefix)), 0), "%s", name);
    const char *digits = name + strlen(prefix);
    cr_expect(ne(int, (int)digits[0], 0), "no number in %s", name);
    for (const char *d = digits; *d != '\0'; d++)
        cr_expect(ne(int, isdigit((unsigned char)*d), 0), "%s", name);
    char want[4200];
    snprintf(want, sizeof(want), "%s/%s.01.lock", plt_dir, name);
    cr_expect(eq(str, (char *)pl_semaphore_slot_path(s, 1), want));
    pl_semaphore_close(s);
}

Test(semaphore, null_directory_is_the_temporary_directory) {
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    pl_semaphore_t *s = xopen_sem(1, "pl-unit-nodir", NULL, 0, -1);
    const char *slot = pl_semaphore_slot_path(s, 0);
    char base[4096], want[4200];
    size_t n;
    cr_assert(slot != NULL);
    snprintf(base, sizeof(base), "%s", tmp);
    n = strlen(base);
    while (n > 1 && base[n - 1] == '/')
        base[--n] = '\0'; /* TMPDIR may end with a slash */
    snprintf(want, sizeof(want), "%s/pl-unit-nodir.00.lock", base);
    cr_expect(eq(str, (char *)slot, want));
    pl_semaphore_close(s);
}

Test(semaphore, bad_arguments_are_einval) {
    pl_semaphore_t *s = (pl_semaphore_t *)&s;
    pl_lock_options_t o;
    cr_expect(eq(int, pl_semaphore_open(&s, 0, "x", plt_dir, NULL), PL_EINVAL));
    cr_expect(eq(ptr, s, NULL));
    /* maximum is 1..1000 (documented). */
    s = (pl_semaphore_t *)&s;
    cr_expect(
        eq(int, pl_semaphore_open(&s, 1001, "x", plt_dir, NULL), PL_EINVAL));
    cr_expect(eq(ptr, s, NULL));
    cr_expect(
        eq(int, pl_semaphore_open(NULL, 1, "x", plt_dir, NULL), PL_EINVAL));
    pl_lock_options_init(&o);
    o.check_interval = -1;
    cr_expect(eq(int, pl_semaphore_open(&s, 1, "x", plt_dir, &o), PL_EINVAL));
    cr_expect(eq(int, pl_semaphore_acquire(NULL), PL_EINVAL));
    cr_expect(eq(int, pl_semaphore_release(NULL), PL_EINVAL));
    cr_expect(eq(int, pl_semaphore_close(NULL), PL_OK));
    cr_expect(eq(int, pl_semaphore_slot(NULL), -1));
}

/* Every slot taken: the next one retries for the whole timeout (like
 * portalocker, whatever fail_when_locked says), then reports it.  Bounds:
 * never early (5 ms slack), late by up to 500 ms on the shared machine. */
static void full_semaphore(int fwl, int want) {
    enum { N = 3 };
    pl_semaphore_t *held[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        held[i] = xopen_sem(N, "full", plt_dir, 0, -1);
        SEM_EXPECT_RC(pl_semaphore_acquire(held[i]), PL_OK, held[i]);
        int slot = pl_semaphore_slot(held[i]);
        cr_assert(slot >= 0 && slot < N, "slot %d", slot);
        cr_expect(eq(int, seen[slot]++, 0), "slot %d given twice", slot);
    }
    pl_semaphore_t *extra = xopen_sem(N, "full", plt_dir, 0.3, fwl);
    double t0 = plt_now();
    int rc = pl_semaphore_acquire(extra);
    double dt = plt_now() - t0;
    SEM_EXPECT_RC(rc, want, extra);
    cr_expect(ge(dbl, dt, 0.295), "gave up early: %.3f s", dt);
    cr_expect(lt(dbl, dt, 0.8), "gave up late: %.3f s", dt);
    cr_expect(eq(int, pl_semaphore_slot(extra), -1));
    cr_expect(ne(int, (int)pl_semaphore_errmsg(extra)[0], 0));

    /* Releasing one frees its slot for the newcomer. */
    int freed = pl_semaphore_slot(held[1]);
    SEM_EXPECT_RC(pl_semaphore_release(held[1]), PL_OK, held[1]);
    cr_expect(eq(int, pl_semaphore_slot(held[1]), -1));
    SEM_EXPECT_RC(pl_semaphore_acquire_with(extra, 0, PL_UNSET, -1), PL_OK,
                  extra);
    cr_expect(eq(int, pl_semaphore_slot(extra), freed));
    for (int i = 0; i < N; i++)
        pl_semaphore_close(held[i]);
    pl_semaphore_close(extra);
    /* Slot files are never deleted. */
    cr_expect(eq(int, plt_dir_entries(plt_dir), N));
}

Test(semaphore, full_with_fail_when_locked_is_elocked) {
    full_semaphore(1, PL_ELOCKED);
}

Test(semaphore, full_without_fail_when_locked_is_etimedout) {
    full_semaphore(0, PL_ETIMEDOUT);
}

Test(semaphore, fail_when_locked_defaults_to_one) {
    pl_semaphore_t *a = xopen_sem(1, "d", plt_dir, 0, -1);
    pl_semaphore_t *b = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 0.1;
    cr_assert(eq(int, pl_semaphore_open(&b, 1, "d", plt_dir, &o), PL_OK));
    SEM_EXPECT_RC(pl_semaphore_acquire(a), PL_OK, a);
    SEM_EXPECT_RC(pl_semaphore_acquire(b), PL_ELOCKED, b);
    pl_semaphore_close(a);
    pl_semaphore_close(b);
}

static int sem_child_holds(void *arg) {
    pl_semaphore_t **out = arg;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 0;
    int rc = pl_semaphore_open(out, 1, "w", plt_dir, &o);
    return rc == PL_OK ? pl_semaphore_acquire(*out) : rc;
}

static int sem_child_release(void *arg) {
    pl_semaphore_t **s = arg;
    int rc = pl_semaphore_release(*s);
    pl_semaphore_close(*s);
    return rc;
}

/* The wait sleeps in the kernel on a slot and wakes when another process
 * releases it (about 100 ms), well before the 5 s timeout and before any
 * 3 s polling tick.  2 s bound: shared machine. */
Test(semaphore, waiting_acquire_wakes_on_release) {
    pl_semaphore_t *child_sem = NULL;
    plt_holder_t h;
    cr_assert(eq(int,
                 plt_holder_start(&h, sem_child_holds, sem_child_release,
                                  &child_sem, 100),
                 PL_OK));
    pl_semaphore_t *s = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 5;
    o.check_interval = 3;
    o.fail_when_locked = 0;
    cr_assert(eq(int, pl_semaphore_open(&s, 1, "w", plt_dir, &o), PL_OK));
    double t0 = plt_now();
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
    double dt = plt_now() - t0;
    cr_expect(lt(dbl, dt, 2.0), "%.3f s", dt);
    cr_expect(ge(dbl, dt, 0.05), "did not wait: %.3f s", dt);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    pl_semaphore_close(s);
}

Test(semaphore, slots_exclude_other_processes) {
    pl_semaphore_t *s = xopen_sem(2, "x", plt_dir, 0, -1);
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
    const char *slot =
        pl_semaphore_slot_path(s, (unsigned)pl_semaphore_slot(s));
    cr_assert(slot != NULL);
    cr_expect(
        eq(int, plt_try_other_process(slot, pl_default_backend(), PL_EXCLUSIVE),
           PL_ELOCKED));
    SEM_EXPECT_RC(pl_semaphore_release(s), PL_OK, s);
    cr_expect(
        eq(int, plt_try_other_process(slot, pl_default_backend(), PL_EXCLUSIVE),
           PL_OK));
    cr_expect(plt_exists(slot), "release deleted the slot file");
    pl_semaphore_close(s);
}

Test(semaphore, double_acquire_is_eheld) {
    pl_semaphore_t *s = xopen_sem(2, "x", plt_dir, 0, -1);
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
    int slot = pl_semaphore_slot(s);
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_EHELD, s);
    cr_expect(eq(int, pl_semaphore_slot(s), slot), "slot changed");
    SEM_EXPECT_RC(pl_semaphore_release(s), PL_OK, s);
    SEM_EXPECT_RC(pl_semaphore_release(s), PL_ENOTHELD, s);
    pl_semaphore_close(s);
}

Test(semaphore, missing_directory_is_enoent_then_usable) {
    const char *dir = plt_path("later");
    pl_semaphore_t *s = xopen_sem(2, "x", dir, 1, 0);
    double t0 = plt_now();
    int rc = pl_semaphore_acquire(s);
    SEM_EXPECT_RC(rc, PL_ENOENT, s);
    /* Not contention: reported at once, not after the 1 s timeout. */
    cr_expect(lt(dbl, plt_now() - t0, 0.5));
    cr_expect(eq(int, pl_semaphore_os_error(s), ENOENT));
    cr_expect(eq(int, pl_semaphore_slot(s), -1));
    cr_assert(eq(int, mkdir(dir, 0755), 0));
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
    cr_expect(ge(int, pl_semaphore_slot(s), 0));
    pl_semaphore_close(s);
}

Test(semaphore, close_releases_the_slot) {
    pl_semaphore_t *a = xopen_sem(1, "c", plt_dir, 0, -1);
    pl_semaphore_t *b = xopen_sem(1, "c", plt_dir, 0, -1);
    SEM_EXPECT_RC(pl_semaphore_acquire(a), PL_OK, a);
    SEM_EXPECT_RC(pl_semaphore_acquire(b), PL_ELOCKED, b);
    cr_expect(eq(int, pl_semaphore_close(a), PL_OK));
    SEM_EXPECT_RC(pl_semaphore_acquire(b), PL_OK, b);
    pl_semaphore_close(b);
}

Test(semaphore, releasing_all_leaves_no_descriptor) {
    int fds = plt_count_fds();
    pl_semaphore_t *s = xopen_sem(4, "f", plt_dir, 0, -1);
    for (int i = 0; i < 3; i++) {
        SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
        SEM_EXPECT_RC(pl_semaphore_release(s), PL_OK, s);
    }
    pl_semaphore_close(s);
    cr_expect(eq(int, plt_count_fds(), fds));
}

static int take_one_slot(void *arg) {
    pl_semaphore_t **out = arg;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 0;
    int rc = pl_semaphore_open(out, 2, "shared", plt_dir, &o);
    return rc == PL_OK ? pl_semaphore_acquire(*out) : rc;
}

Test(semaphore, processes_share_the_slots) {
    pl_semaphore_t *child = NULL;
    plt_holder_t h;
    cr_assert(eq(
        int, plt_holder_start(&h, take_one_slot, sem_child_release, &child, -1),
        PL_OK));
    pl_semaphore_t *a = xopen_sem(2, "shared", plt_dir, 0, -1);
    pl_semaphore_t *b = xopen_sem(2, "shared", plt_dir, 0, -1);
    SEM_EXPECT_RC(pl_semaphore_acquire(a), PL_OK, a);
    SEM_EXPECT_RC(pl_semaphore_acquire(b), PL_ELOCKED, b);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    SEM_EXPECT_RC(pl_semaphore_acquire(b), PL_OK, b);
    cr_expect(ne(int, pl_semaphore_slot(a), pl_semaphore_slot(b)));
    pl_semaphore_close(a);
    pl_semaphore_close(b);
}

/* Timeout 0: one sweep, reported at once (250 ms bound: shared machine). */
Test(semaphore, timeout_zero_is_one_sweep) {
    pl_semaphore_t *a = xopen_sem(1, "z", plt_dir, 0, -1);
    pl_semaphore_t *b = xopen_sem(1, "z", plt_dir, 0, 0);
    SEM_EXPECT_RC(pl_semaphore_acquire(a), PL_OK, a);
    double t0 = plt_now();
    int rc = pl_semaphore_acquire(b);
    cr_expect(ne(int, PL_IS_ALREADY_LOCKED(rc), 0), "got %s", pl_err_name(rc));
    cr_expect(lt(dbl, plt_now() - t0, 0.25));
    pl_semaphore_close(a);
    pl_semaphore_close(b);
}

typedef struct sem_thread {
    atomic_int *inside;
    atomic_int *peak;
    int failures;
} sem_thread_t;

/* Each thread has its own semaphore object over the same 2 slots. */
static void *sem_hammer(void *p) {
    sem_thread_t *t = p;
    pl_semaphore_t *s = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 30;
    o.fail_when_locked = 0;
    if (pl_semaphore_open(&s, 2, "threads", plt_dir, &o) != PL_OK) {
        t->failures = 1000;
        return NULL;
    }
    for (int i = 0; i < 100; i++) {
        if (pl_semaphore_acquire(s) != PL_OK) {
            t->failures++;
            continue;
        }
        int now = atomic_fetch_add(t->inside, 1) + 1;
        int peak = atomic_load(t->peak);
        while (now > peak && !atomic_compare_exchange_weak(t->peak, &peak, now))
            ;
        sched_yield();
        atomic_fetch_sub(t->inside, 1);
        if (pl_semaphore_release(s) != PL_OK)
            t->failures++;
    }
    pl_semaphore_close(s);
    return NULL;
}

Test(semaphore, threads_never_exceed_the_maximum) {
    atomic_int inside = 0, peak = 0;
    sem_thread_t args[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (sem_thread_t){&inside, &peak, 0};
        cr_assert(
            eq(int, pthread_create(&th[k], NULL, sem_hammer, &args[k]), 0));
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        cr_expect(eq(int, args[k].failures, 0), "thread %d", k);
    }
    int holders_at_once = atomic_load(&peak);
    cr_expect(le(int, holders_at_once, 2));
}

/* A huge check_interval must not stall the wait on a slot (no overflow
 * either: UBSan checks that in the sanitizer build). */
Test(semaphore, huge_check_interval_still_wakes_on_release) {
    pl_semaphore_t *child_sem = NULL;
    plt_holder_t h;
    cr_assert(eq(int,
                 plt_holder_start(&h, sem_child_holds, sem_child_release,
                                  &child_sem, 100),
                 PL_OK));
    pl_semaphore_t *s = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = 10;
    o.check_interval = 1e300;
    o.fail_when_locked = 0;
    cr_assert(eq(int, pl_semaphore_open(&s, 1, "w", plt_dir, &o), PL_OK));
    double t0 = plt_now();
    SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
    /* ~100 ms; 2 s bound: shared machine. */
    cr_expect(lt(dbl, plt_now() - t0, 2.0));
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    pl_semaphore_close(s);
}

/* The sweep starts at a random slot (portalocker always starts at 00):
 * 50 acquisitions all landing on one slot of 3 has odds of 3^-49. */
Test(semaphore, sweep_starts_at_a_random_slot) {
    int used[3] = {0, 0, 0}, distinct = 0;
    pl_semaphore_t *s = xopen_sem(3, "rnd", plt_dir, 0, -1);
    for (int i = 0; i < 50; i++) {
        SEM_EXPECT_RC(pl_semaphore_acquire(s), PL_OK, s);
        int slot = pl_semaphore_slot(s);
        cr_assert(slot >= 0 && slot < 3);
        used[slot]++;
        SEM_EXPECT_RC(pl_semaphore_release(s), PL_OK, s);
    }
    for (int i = 0; i < 3; i++)
        distinct += used[i] > 0;
    cr_expect(ge(int, distinct, 2), "slots used %d/%d/%d", used[0], used[1],
              used[2]);
    pl_semaphore_close(s);
}
