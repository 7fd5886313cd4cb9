/*
 * test_backend.c -- backend names, availability and the process default
 * (PORTALOCK_BACKEND, pl_set_default_backend).  Each Criterion test is its
 * own process, so each sees the environment it sets before the first use.
 */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

TestSuite(backend, .init = plt_setup, .fini = plt_teardown, .timeout = 20.);

Test(backend, names_round_trip) {
    static const struct {
        pl_backend_t b;
        const char *name;
    } names[] = {{PL_BACKEND_DEFAULT, "default"},
                 {PL_BACKEND_FLOCK, "flock"},
                 {PL_BACKEND_LOCKF, "lockf"},
                 {PL_BACKEND_OFD, "ofd"},
                 {PL_BACKEND_LOCKFILEEX, "lockfileex"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        pl_backend_t out = (pl_backend_t)99;
        const char *n = pl_backend_name(names[i].b);
        cr_assert(n != NULL, "pl_backend_name(%d)", (int)names[i].b);
        cr_expect(eq(str, (char *)n, (char *)names[i].name));
        cr_expect(eq(int, pl_backend_from_name(names[i].name, &out), PL_OK),
                  "%s", names[i].name);
        cr_expect(eq(int, (int)out, (int)names[i].b), "%s", names[i].name);
    }
}

Test(backend, fcntl_is_an_alias_for_lockf) {
    pl_backend_t out = PL_BACKEND_DEFAULT;
    cr_expect(eq(int, pl_backend_from_name("fcntl", &out), PL_OK));
    cr_expect(eq(int, (int)out, (int)PL_BACKEND_LOCKF));
}

Test(backend, unknown_names_are_einval) {
    static const char *const bad[] = {"",     "bogus",  "flockx", "floc",
                                      "ofd ", " lockf", "lock"};
    pl_backend_t out;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(eq(int, pl_backend_from_name(bad[i], &out), PL_EINVAL),
                  "\"%s\"", bad[i]);
    cr_expect(eq(int, pl_backend_from_name(NULL, &out), PL_EINVAL));
    cr_expect(eq(int, pl_backend_from_name("flock", NULL), PL_EINVAL));
}

Test(backend, posix_backends_are_available) {
    cr_expect(eq(int, pl_backend_available(PL_BACKEND_FLOCK), 1));
    cr_expect(eq(int, pl_backend_available(PL_BACKEND_LOCKF), 1));
    cr_expect(eq(int, pl_backend_available(PL_BACKEND_OFD), 1));
    cr_expect(eq(int, pl_backend_available(PL_BACKEND_LOCKFILEEX), 0));
    cr_expect(eq(int, pl_backend_available((pl_backend_t)42), 0));
}

Test(backend, default_is_flock_without_environment) {
    unsetenv("PORTALOCK_BACKEND");
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_FLOCK));
}

Test(backend, default_comes_from_environment) {
    setenv("PORTALOCK_BACKEND", "ofd", 1);
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_OFD));
}

Test(backend, environment_accepts_the_fcntl_alias) {
    setenv("PORTALOCK_BACKEND", "fcntl", 1);
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_LOCKF));
}

Test(backend, environment_is_read_once) {
    setenv("PORTALOCK_BACKEND", "lockf", 1);
    cr_assert(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_LOCKF));
    setenv("PORTALOCK_BACKEND", "ofd", 1);
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_LOCKF));
}

Test(backend, bad_environment_still_gives_a_usable_backend) {
    setenv("PORTALOCK_BACKEND", "no-such-backend", 1);
    pl_backend_t b = pl_default_backend();
    cr_expect(ne(int, (int)b, (int)PL_BACKEND_DEFAULT));
    cr_expect(eq(int, pl_backend_available(b), 1), "default %d", (int)b);
}

Test(backend, unavailable_environment_still_gives_a_usable_backend) {
    setenv("PORTALOCK_BACKEND", "lockfileex", 1);
    pl_backend_t b = pl_default_backend();
    cr_expect(ne(int, (int)b, (int)PL_BACKEND_DEFAULT));
    cr_expect(eq(int, pl_backend_available(b), 1), "default %d", (int)b);
}

Test(backend, set_default_overrides_environment) {
    setenv("PORTALOCK_BACKEND", "ofd", 1);
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_LOCKF), PL_OK));
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_LOCKF));
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_FLOCK), PL_OK));
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_FLOCK));
}

Test(backend, set_default_rejects_unavailable_backends) {
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_OFD), PL_OK));
    cr_expect(ne(int, pl_set_default_backend(PL_BACKEND_LOCKFILEEX), PL_OK));
    cr_expect(ne(int, pl_set_default_backend((pl_backend_t)42), PL_OK));
    cr_expect(eq(int, (int)pl_default_backend(), (int)PL_BACKEND_OFD));
}

Test(backend, lock_objects_resolve_the_default) {
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_OFD), PL_OK));
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("a.lock"), NULL), PL_OK));
    cr_expect(eq(int, (int)pl_lock_backend(lock), (int)PL_BACKEND_OFD));
    pl_lock_close(lock);
}

Test(backend, explicit_backend_wins_over_default) {
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.backend = PL_BACKEND_LOCKF;
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_OFD), PL_OK));
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("a.lock"), &o), PL_OK));
    cr_expect(eq(int, (int)pl_lock_backend(lock), (int)PL_BACKEND_LOCKF));
    pl_lock_close(lock);
}

/* The default reaches pl_lock_fd: with OFD the call goes to fcntl and
 * flock is never called. */
Test(backend, lock_fd_default_uses_the_process_default) {
    FILE *f = fopen(plt_path("a.lock"), "w");
    cr_assert(f != NULL);
    cr_assert(eq(int, pl_set_default_backend(PL_BACKEND_OFD), PL_OK));
    plt_sys_install();
    int rc = pl_lock_fd(fileno(f), PL_EXCLUSIVE | PL_NON_BLOCKING,
                        PL_BACKEND_DEFAULT, NULL);
    cr_expect(eq(int, rc, PL_OK));
    cr_expect(eq(int, plt_sys_calls(PLT_SYS_FLOCK), 0));
    cr_expect(eq(int, plt_sys_calls(PLT_SYS_LOCKOP), 1));
    cr_expect(
        eq(int, pl_unlock_fd(fileno(f), PL_BACKEND_DEFAULT, NULL), PL_OK));
    cr_expect(eq(int, plt_sys_calls(PLT_SYS_FLOCK), 0));
    fclose(f);
}

Test(backend, lock_fd_rejects_an_unavailable_backend) {
    FILE *f = fopen(plt_path("a.lock"), "w");
    pl_error_t e;
    cr_assert(f != NULL);
    int rc = pl_lock_fd(fileno(f), PL_EXCLUSIVE | PL_NON_BLOCKING,
                        PL_BACKEND_LOCKFILEEX, &e);
    cr_expect(eq(int, rc, PL_ENOTSUP));
    cr_expect(eq(int, e.code, rc));
    fclose(f);
}

Test(backend, lock_open_rejects_an_unavailable_backend) {
    pl_lock_t *lock = (pl_lock_t *)&lock;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.backend = PL_BACKEND_LOCKFILEEX;
    cr_expect(eq(int, pl_lock_open(&lock, plt_path("a.lock"), &o), PL_ENOTSUP));
    cr_expect(eq(ptr, lock, NULL));
}
