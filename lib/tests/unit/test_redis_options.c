/*
 * test_redis_options.c -- pl_redis_options_init and
 * pl_redis_options_from_url (pure parsing, built with or without hiredis),
 * and pl_redis_lock_open's PL_ENOTSUP without hiredis.  The Redis lock
 * itself is tested by conformance/redis.
 */
#include "helpers.h"
#include <math.h>

#include <string.h>

TestSuite(redis_options, .timeout = 10.);

static int points_into(const char *p, const char *buf, size_t len) {
    return p >= buf && p < buf + len;
}

Test(redis_options, init_fills_the_defaults) {
    pl_redis_options_t o;
    memset(&o, 0xab, sizeof(o));
    pl_redis_options_init(&o);
    cr_assert(o.host != NULL);
    cr_expect(eq(str, (char *)o.host, "127.0.0.1"));
    cr_expect(eq(int, o.port, 6379));
    cr_expect(eq(ptr, (void *)o.unix_socket, NULL));
    cr_expect(eq(ptr, (void *)o.username, NULL));
    cr_expect(eq(ptr, (void *)o.password, NULL));
    cr_expect(eq(dbl, o.connect_timeout, 1.0));
    cr_expect(eq(dbl, o.command_timeout, 2.0));
    cr_expect(eq(dbl, o.timeout, 5.0));
    cr_expect(eq(dbl, o.check_interval, 0.25));
    cr_expect(eq(int, o.fail_when_locked, 0));
    cr_expect(eq(int, o.shared, 0));
    cr_expect(eq(dbl, o.unavailable_timeout, 1.0));
    cr_expect(eq(int, o.evict_stalled, 1));
    cr_expect(o.on_lost == NULL, "on_lost set");
    cr_expect(eq(ptr, o.on_lost_arg, NULL));
}

Test(redis_options, host_and_port) {
    char url[] = "redis://cache.example:16379";
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_assert(eq(int, pl_redis_options_from_url(&o, url, NULL), PL_OK));
    cr_expect(eq(str, (char *)o.host, "cache.example"));
    cr_expect(eq(int, o.port, 16379));
    cr_expect(points_into(o.host, url, sizeof(url)), "host copied elsewhere");
    cr_expect(eq(ptr, (void *)o.unix_socket, NULL));
    cr_expect(eq(ptr, (void *)o.password, NULL));
}

Test(redis_options, host_alone_keeps_the_default_port) {
    char url[] = "redis://localhost";
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    o.port = 1;
    cr_assert(eq(int, pl_redis_options_from_url(&o, url, NULL), PL_OK));
    cr_expect(eq(str, (char *)o.host, "localhost"));
    cr_expect(eq(int, o.port, 6379));
}

Test(redis_options, password_only) {
    char url[] = "redis://:s3cret@127.0.0.1:56379";
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_assert(eq(int, pl_redis_options_from_url(&o, url, NULL), PL_OK));
    cr_expect(eq(ptr, (void *)o.username, NULL));
    cr_assert(o.password != NULL);
    cr_expect(eq(str, (char *)o.password, "s3cret"));
    cr_expect(eq(str, (char *)o.host, "127.0.0.1"));
    cr_expect(eq(int, o.port, 56379));
    cr_expect(points_into(o.password, url, sizeof(url)));
}

Test(redis_options, user_and_password) {
    char url[] = "redis://alice:pw@h";
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_assert(eq(int, pl_redis_options_from_url(&o, url, NULL), PL_OK));
    cr_assert(o.username != NULL && o.password != NULL);
    cr_expect(eq(str, (char *)o.username, "alice"));
    cr_expect(eq(str, (char *)o.password, "pw"));
    cr_expect(eq(str, (char *)o.host, "h"));
}

Test(redis_options, unix_socket) {
    char url[] = "unix:///run/redis/redis.sock";
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_assert(eq(int, pl_redis_options_from_url(&o, url, NULL), PL_OK));
    cr_assert(o.unix_socket != NULL);
    cr_expect(eq(str, (char *)o.unix_socket, "/run/redis/redis.sock"));
    cr_expect(points_into(o.unix_socket, url, sizeof(url)));
}

Test(redis_options, bad_urls_are_einval) {
    static const char *const bad[] = {
        "",
        "http://host",
        "redis://",
        "redis://host:",
        "redis://host:port",
        "redis://host:0",
        "redis://host:65536",
        "redis://host:-1",
        "unix://relative/path",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char url[128];
        pl_redis_options_t o;
        pl_error_t e;
        snprintf(url, sizeof(url), "%s", bad[i]);
        pl_redis_options_init(&o);
        memset(&e, 0, sizeof(e));
        int rc = pl_redis_options_from_url(&o, url, &e);
        cr_expect(eq(int, rc, PL_EINVAL), "\"%s\": %s", bad[i],
                  pl_err_name(rc));
        cr_expect(eq(int, e.code, PL_EINVAL), "\"%s\"", bad[i]);
        cr_expect(ne(int, (int)e.msg[0], 0), "\"%s\": no message", bad[i]);
    }
    pl_redis_options_t o;
    char url[] = "redis://h";
    cr_expect(eq(int, pl_redis_options_from_url(NULL, url, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_redis_options_from_url(&o, NULL, NULL), PL_EINVAL));
}

#if PLT_HAVE_REDIS
/* Argument checks happen before any connection. */
Test(redis_options, lock_open_checks_its_arguments) {
    pl_lock_t *lock = (pl_lock_t *)&lock;
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_expect(eq(int, pl_redis_lock_open(NULL, "chan", &o), PL_EINVAL));
    cr_expect(eq(int, pl_redis_lock_open(&lock, NULL, &o), PL_EINVAL));
    cr_expect(eq(ptr, lock, NULL));
    lock = (pl_lock_t *)&lock;
    cr_expect(eq(int, pl_redis_lock_open(&lock, "", &o), PL_EINVAL));
    cr_expect(eq(ptr, lock, NULL));
}

/* Timeouts must be finite and within bounds: an unavailable_timeout of 1 ns
 * was accepted and its holder lost the lock at once; infinite or huge ones
 * reached (int)(seconds * 1000) conversions that are undefined. */
Test(redis_options, lock_open_bounds_its_timeouts) {
    static const struct {
        int which; /* 0 unavailable, 1 connect, 2 command */
        double v;
        int rc;
    } cases[] = {
        {0, 1e-9, PL_EINVAL},       {0, 0.009, PL_EINVAL},
        {0, 0.01, PL_OK},           {0, 1e6, PL_OK},
        {0, 1.000001e6, PL_EINVAL}, {0, INFINITY, PL_EINVAL},
        {0, NAN, PL_EINVAL},        {1, INFINITY, PL_EINVAL},
        {1, 1e300, PL_EINVAL},      {1, 1e6, PL_OK},
        {1, NAN, PL_EINVAL},        {2, INFINITY, PL_EINVAL},
        {2, 2e6, PL_EINVAL},        {2, 0.001, PL_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_lock_t *lock = NULL;
        pl_redis_options_t o;
        pl_redis_options_init(&o);
        double *f = cases[i].which == 0   ? &o.unavailable_timeout
                    : cases[i].which == 1 ? &o.connect_timeout
                                          : &o.command_timeout;
        *f = cases[i].v;
        int rc = pl_redis_lock_open(&lock, "chan", &o);
        cr_expect(eq(int, rc, cases[i].rc), "case %zu (%d = %g): %s", i,
                  cases[i].which, cases[i].v, pl_err_name(rc));
        if (lock != NULL)
            pl_lock_close(lock);
    }
}
#else
Test(redis_options, lock_open_without_hiredis_is_enotsup) {
    pl_lock_t *lock = (pl_lock_t *)&lock;
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    cr_expect(eq(int, pl_redis_lock_open(&lock, "chan", &o), PL_ENOTSUP));
    cr_expect(eq(ptr, lock, NULL));
}
#endif
