/*
 * test_redis.c -- conformance cases for the Redis lock (lib/src/redis/).
 *
 * Suite "redis": scenarios played by REAL contender processes over the
 * conformance line protocol, for whichever implementation
 * PORTALOCK_CONTENDER names: ours (pl_redis_contender --redis URL) in ctest
 * conformance.redis, portalocker's RedisLock
 * (adapters/portalocker_redis_contender.py) in conformance.redis.portalocker,
 * whose expected failures are data in known/portalocker-2.2.1-redis.txt.
 *
 * Suite "redis_lib": error paths of our library called in-process (server
 * down, AUTH, unix socket, fork).
 *
 * Timing bounds are generous on purpose (2 cores shared by parallel
 * builds and tests): they catch "never" and "polls every few hundred ms",
 * not small regressions; the measured values are recorded with
 * plt_measure and printed.
 *
 * Environment: PL_TEST_REDIS_PORT (fixture on 127.0.0.1), PL_TEST_REDIS_SOCKET
 * (its unix socket), PL_REDIS_FIXTURE (ci/redis-fixture.sh).
 */
#include "harness.h"
#include "portalock.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONTENDERS 8
#define NS             1e9

/* ---- helpers ------------------------------------------------------------- */

static int fixture_port(void) {
    const char *p = getenv("PL_TEST_REDIS_PORT");
    if (p == NULL || atoi(p) <= 0)
        plt_not_applicable("PL_TEST_REDIS_PORT is not set: no Redis fixture");
    return atoi(p);
}

/* A lock name private to this test process. */
static const char *lock_name(const char *what) {
    static char buf[4][160];
    static int next;
    char *out = buf[next];
    next = (next + 1) % 4;
    snprintf(out, sizeof(buf[0]), "plt.%s.%ld.%s", criterion_current_test->name,
             (long)getpid(), what);
    return out;
}

/* Subject contender; with url != NULL one talking to another server
 * (PORTALOCK_CONTENDER with its redis:// argument replaced). */
static plt_proc_t *subject_at(const char *label, const char *url) {
    static char cmd[4096];
    char *argv[40], *save = NULL, *tok;
    int n = 0;
    const char *env = getenv("PORTALOCK_CONTENDER");

    if (url == NULL)
        return plt_start(label);
    cr_assert(env != NULL && env[0] != '\0', "PORTALOCK_CONTENDER not set");
    snprintf(cmd, sizeof(cmd), "%s", env);
    for (tok = strtok_r(cmd, " ", &save); tok != NULL && n < 38;
         tok = strtok_r(NULL, " ", &save))
        argv[n++] = strncmp(tok, "redis://", 8) == 0 ? (char *)url : tok;
    argv[n] = NULL;
    return plt_start_argv(label, argv, 1);
}

static int needs(plt_proc_t *p, const char *feature, const char *what) {
    if (plt_has(p, "features", feature))
        return 1;
    plt_check(0, "%s %s: no %s", p->impl, p->version, what);
    return 0;
}

static double secs(int64_t ns) {
    return (double)ns / NS;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* A raw hiredis connection to the fixture (the "foreign" client). */
static redisContext *raw_connect(int port) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c != NULL && c->err == 0, "raw connect: %s",
              c != NULL ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    return c;
}

/* The channel our lock records for its current holder, "" if none (or for
 * implementations that keep no record). */
static void holder_channel(int port, const char *name, char *out, size_t len) {
    redisContext *c = raw_connect(port);
    redisReply *r = redisCommand(c, "HGET pl:{%s}:owner chan", name);
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(out, len, "%s", r->str);
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
}

/* A port on 127.0.0.1 nobody listens on (bound and released). */
static int free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    cr_assert(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ci/redis-fixture.sh start|stop PORT DIR; returns its exit status. */
static int fixture(const char *action, int port, const char *dir) {
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof(cmd), "%s %s %d %s >&2", PL_REDIS_FIXTURE, action,
             port, dir);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- scenarios played by contenders -------------------------------------- */

TestSuite(redis, .init = plt_setup, .fini = plt_teardown, .timeout = 120);

/* >= 8 processes cycle on one lock; acquired/released timestamps never
 * overlap and fencing tokens grow in grant order. */
Test(redis, exclusivity_many_contenders) {
    plt_proc_t *p[MAX_CONTENDERS];
    static plt_interval_t iv[MAX_CONTENDERS * 64];
    plt_interval_t x, y;
    unsigned long long tokens[MAX_CONTENDERS * 64];
    const char *name = lock_name("x");
    int i, n = 0, cycles, have_tokens;
    (void)fixture_port();

    plt_begin("redis.exclusivity");
    for (i = 0; i < MAX_CONTENDERS; i++) {
        char label[16];
        plt_reply_t r;
        snprintf(label, sizeof(label), "c%d", i);
        p[i] = plt_start(label);
        plt_must(p[i], &r, 10, "opened", "open id=a path=%s timeout=60",
                 plt_q(name));
        plt_reply_free(&r);
    }
    /* portalocker 2.2.1 needs ~check_interval per contended attempt. */
    cycles = strcmp(p[0]->impl, "portalock") == 0 ? 40 : 3;
    have_tokens = plt_has(p[0], "features", "token");
    for (i = 0; i < MAX_CONTENDERS; i++)
        plt_send(p[i], "cycle id=a n=%d hold=0.0005", cycles);
    for (i = 0; i < MAX_CONTENDERS; i++) {
        plt_reply_t r;
        int got = plt_recv(p[i], &r, 100);
        if (plt_check(got == 1 && plt_is(&r, "cycled"), "c%d: %s", i,
                      got == 1 ? r.line : "no reply")) {
            const char *tk = plt_get(&r, "tokens");
            int k, m = plt_parse_intervals(plt_get(&r, "intervals"), iv + n,
                                           MAX_CONTENDERS * 64 - n, i);
            char *s = tk != NULL ? strdup(tk) : NULL, *save = NULL, *t;
            plt_check(m == cycles, "c%d: %d intervals", i, m);
            for (k = 0, t = s ? strtok_r(s, ",", &save) : NULL;
                 t != NULL && k < m; k++, t = strtok_r(NULL, ",", &save))
                tokens[n + k] = strtoull(t, NULL, 10);
            free(s);
            n += m > 0 ? m : 0;
        }
        plt_reply_free(&r);
    }
    plt_measure("grants", n);
    if (plt_find_overlap(iv, n, &x, &y))
        plt_check(0, "two holders: c%d [%lld,%lld] and c%d [%lld,%lld]", x.who,
                  (long long)x.a, (long long)x.b, y.who, (long long)y.a,
                  (long long)y.b);
    plt_measure("max_concurrency", plt_max_concurrency(iv, n));
    if (have_tokens) {
        /* Order grants by acquisition time; tokens must grow with it. */
        int a, b, bad = 0;
        for (a = 0; a < n; a++)
            for (b = 0; b < n; b++)
                if (iv[a].a < iv[b].a && tokens[a] >= tokens[b] && bad++ == 0)
                    plt_check(0, "token %llu (granted first) >= token %llu",
                              tokens[a], tokens[b]);
    } else {
        needs(p[0], "token", "fencing tokens");
    }
    plt_finish();
}

/* Contenders cycle while three of them are SIGKILLed at random moments
 * (holding or waiting): the survivors all finish, never overlap, and their
 * tokens grow in grant order. */
Test(redis, survivors_of_random_kills_stay_exclusive) {
    plt_proc_t *p[MAX_CONTENDERS];
    static plt_interval_t iv[MAX_CONTENDERS * 128];
    static unsigned long long tokens[MAX_CONTENDERS * 128];
    plt_interval_t x, y;
    const char *name = lock_name("churn");
    int i, n = 0, cycles, a, b, bad = 0;
    (void)fixture_port();

    plt_begin("redis.kill_churn");
    srand((unsigned)getpid());
    for (i = 0; i < MAX_CONTENDERS; i++) {
        plt_reply_t r;
        char label[16];
        snprintf(label, sizeof(label), "c%d", i);
        p[i] = plt_start(label);
        plt_must(p[i], &r, 10, "opened", "open id=a path=%s timeout=60",
                 plt_q(name));
        plt_reply_free(&r);
    }
    cycles = strcmp(p[0]->impl, "portalock") == 0 ? 100 : 3;
    for (i = 0; i < MAX_CONTENDERS; i++)
        plt_send(p[i], "cycle id=a n=%d hold=0.0002", cycles);
    for (i = 0; i < 3; i++) { /* victims: c0, c3, c6 */
        plt_sleep(0.05 + (double)(rand() % 250) / 1000.0);
        kill(p[3 * i]->pid, SIGKILL);
    }
    for (i = 0; i < MAX_CONTENDERS; i++) {
        plt_reply_t r;
        int got, m, k;
        char *s, *save = NULL, *t;
        if (i % 3 == 0 && i < 9) {
            plt_wait_exit(p[i], 5);
            continue;
        }
        got = plt_recv(p[i], &r, 100);
        if (!plt_check(got == 1 && plt_is(&r, "cycled"), "survivor c%d: %s", i,
                       got == 1 ? r.line : "no reply")) {
            plt_reply_free(&r);
            continue;
        }
        m = plt_parse_intervals(plt_get(&r, "intervals"), iv + n,
                                MAX_CONTENDERS * 128 - n, i);
        s = plt_get(&r, "tokens") ? strdup(plt_get(&r, "tokens")) : NULL;
        for (k = 0, t = s ? strtok_r(s, ",", &save) : NULL; t != NULL && k < m;
             k++, t = strtok_r(NULL, ",", &save))
            tokens[n + k] = strtoull(t, NULL, 10);
        free(s);
        n += m > 0 ? m : 0;
        plt_reply_free(&r);
    }
    plt_measure("survivor_grants", n);
    if (plt_find_overlap(iv, n, &x, &y))
        plt_check(0, "two holders: c%d [%lld,%lld] and c%d [%lld,%lld]", x.who,
                  (long long)x.a, (long long)x.b, y.who, (long long)y.a,
                  (long long)y.b);
    if (needs(p[1], "token", "fencing tokens"))
        for (a = 0; a < n; a++)
            for (b = 0; b < n; b++)
                if (iv[a].a < iv[b].a && tokens[a] >= tokens[b] && bad++ == 0)
                    plt_check(0, "token %llu (granted first) >= token %llu",
                              tokens[a], tokens[b]);
    plt_finish();
}

/* A SIGKILLed holder frees the lock at once: the waiter's acquire returns
 * within 2 s (generous; p50 measured and recorded). */
Test(redis, killed_holder_frees_lock) {
    const char *name = lock_name("k");
    plt_proc_t *b;
    plt_reply_t r;
    double d[5];
    int round;
    (void)fixture_port();

    plt_begin("redis.kill_handoff");
    b = plt_start("waiter");
    plt_must(b, &r, 10, "opened", "open id=b path=%s timeout=10", plt_q(name));
    plt_reply_free(&r);
    for (round = 0; round < 5; round++) {
        plt_proc_t *a = plt_start("holder");
        int64_t t_kill;
        int got;
        plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
        plt_reply_free(&r);
        plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
        plt_reply_free(&r);
        plt_send(b, "acquire id=b timeout=10");
        plt_sleep(0.3); /* the waiter is waiting now */
        t_kill = plt_now_ns();
        kill(a->pid, SIGKILL);
        got = plt_recv(b, &r, 15);
        if (!plt_check(got == 1 && plt_is(&r, "acquired"),
                       "round %d: waiter after the holder's SIGKILL: %s", round,
                       got == 1 ? r.line : "no reply")) {
            plt_reply_free(&r);
            break;
        }
        d[round] = secs(plt_get_i64(&r, "t") - t_kill);
        plt_reply_free(&r);
        plt_check(d[round] < 2.0, "round %d: handoff took %.3f s", round,
                  d[round]);
        plt_wait_exit(a, 5);
        plt_must(b, &r, 10, "released", "release id=b");
        plt_reply_free(&r);
    }
    if (round == 5) {
        plt_measure("kill_handoff_p50_ms", median(d, 5) * 1e3);
        fprintf(stderr, "[redis] %s kill->acquire p50 %.3f ms\n", b->impl,
                median(d, 5) * 1e3);
    }
    plt_finish();
}

/* A normal release wakes the waiter (bound 1 s; p50 recorded). */
Test(redis, release_wakes_waiter) {
    const char *name = lock_name("r");
    plt_proc_t *a, *b;
    plt_reply_t r;
    double d[5];
    int round;
    (void)fixture_port();

    plt_begin("redis.release_handoff");
    a = plt_start("holder");
    b = plt_start("waiter");
    plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(b, &r, 10, "opened", "open id=b path=%s", plt_q(name));
    plt_reply_free(&r);
    for (round = 0; round < 5; round++) {
        int64_t t_rel;
        int got;
        plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
        plt_reply_free(&r);
        plt_send(b, "acquire id=b timeout=10");
        plt_sleep(0.3);
        plt_must(a, &r, 10, "released", "release id=a");
        t_rel = plt_get_i64(&r, "t");
        plt_reply_free(&r);
        got = plt_recv(b, &r, 15);
        if (!plt_check(got == 1 && plt_is(&r, "acquired"),
                       "round %d: waiter after release: %s", round,
                       got == 1 ? r.line : "no reply")) {
            plt_reply_free(&r);
            break;
        }
        d[round] = secs(plt_get_i64(&r, "t") - t_rel);
        plt_reply_free(&r);
        plt_check(d[round] < 1.0, "round %d: handoff took %.3f s", round,
                  d[round]);
        plt_must(b, &r, 10, "released", "release id=b");
        plt_reply_free(&r);
    }
    if (round == 5) {
        plt_measure("release_handoff_p50_ms", median(d, 5) * 1e3);
        fprintf(stderr, "[redis] %s release->acquire p50 %.3f ms\n", a->impl,
                median(d, 5) * 1e3);
    }
    plt_finish();
}

/* A SIGSTOPped holder is evicted after unavailable_timeout (not before);
 * after SIGCONT it learns that it lost the lock. */
Test(redis, stalled_holder_evicted_and_told) {
    const char *name = lock_name("s");
    plt_proc_t *a, *b;
    plt_reply_t r;
    uint64_t ta = 0, tb = 0;
    double waited;
    int got, i, told = 0;
    (void)fixture_port();

    plt_begin("redis.stalled_holder");
    a = plt_start("holder");
    b = plt_start("waiter");
    plt_must(a, &r, 10, "opened",
             "open id=a path=%s unavailable_timeout=0.5 check_interval=0.1",
             plt_q(name));
    plt_reply_free(&r);
    plt_must(b, &r, 10, "opened",
             "open id=b path=%s unavailable_timeout=0.5 check_interval=0.1",
             plt_q(name));
    plt_reply_free(&r);
    plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
    ta = (uint64_t)plt_get_i64(&r, "token");
    plt_reply_free(&r);
    kill(a->pid, SIGSTOP);
    got = plt_cmd(b, &r, 20, "acquire id=b timeout=8");
    kill(a->pid, SIGCONT);
    if (!plt_check(got == 1 && plt_is(&r, "acquired"),
                   "waiter behind a stalled holder: %s",
                   got == 1 ? r.line : "no reply")) {
        plt_reply_free(&r);
        plt_finish();
        return;
    }
    waited = secs(plt_get_i64(&r, "t") - plt_get_i64(&r, "t0"));
    tb = (uint64_t)plt_get_i64(&r, "token");
    plt_reply_free(&r);
    plt_measure("evicted_after_s", waited);
    plt_check(waited >= 0.5, "evicted after %.3f s < unavailable_timeout",
              waited);
    plt_check(waited < 5.0, "eviction took %.3f s", waited);
    if (needs(a, "token", "fencing tokens"))
        plt_check(tb > ta, "token after eviction %llu <= %llu",
                  (unsigned long long)tb, (unsigned long long)ta);
    if (needs(a, "check", "way to learn that the lock was lost")) {
        for (i = 0; i < 100 && !told; i++) {
            plt_must(a, &r, 10, "checked", "check id=a");
            told = strcmp(plt_get(&r, "result"), "PL_ELOST") == 0 &&
                   plt_get_i64(&r, "lost") >= 1;
            plt_reply_free(&r);
            if (!told)
                plt_sleep(0.02);
        }
        plt_check(told, "the evicted holder was not told (check/on_lost)");
        got = plt_cmd(a, &r, 10, "release id=a");
        plt_check(got == 1 && plt_is(&r, "error") &&
                      strcmp(r.code, "PL_ELOST") == 0,
                  "release of the evicted holder: %s",
                  got == 1 ? r.line : "no reply");
        plt_reply_free(&r);
    }
    plt_finish();
}

/* Lock names may contain spaces: a live holder answers the pings of a
 * waiter with a short unavailable_timeout, so it is not evicted. */
Test(redis, name_with_spaces_live_holder_not_evicted) {
    const char *name = lock_name("with space");
    plt_proc_t *a, *b;
    plt_reply_t r;
    int got;
    (void)fixture_port();

    plt_begin("redis.name_with_spaces");
    a = plt_start("holder");
    b = plt_start("waiter");
    plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(b, &r, 10, "opened",
             "open id=b path=%s unavailable_timeout=0.3 check_interval=0.05",
             plt_q(name));
    plt_reply_free(&r);
    plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
    plt_reply_free(&r);
    got = plt_cmd(b, &r, 20, "acquire id=b timeout=1.5");
    plt_check(got == 1 && plt_is(&r, "timeout"),
              "waiter behind a live holder: %s",
              got == 1 ? r.line : "no reply");
    plt_reply_free(&r);
    plt_must(a, &r, 10, "released", "release id=a");
    plt_reply_free(&r);
    got = plt_cmd(b, &r, 20, "acquire id=b timeout=5");
    plt_check(got == 1 && plt_is(&r, "acquired"), "waiter after release: %s",
              got == 1 ? r.line : "no reply");
    plt_reply_free(&r);
    plt_finish();
}

/* evict_stalled=0: a stalled holder keeps the lock; after SIGCONT it still
 * holds it. */
Test(redis, stalled_holder_kept_without_eviction) {
    const char *name = lock_name("n");
    plt_proc_t *a, *b;
    plt_reply_t r;
    int got;
    (void)fixture_port();

    plt_begin("redis.stalled_no_evict");
    a = plt_start("holder");
    if (!plt_has(a, "features", "check"))
        plt_not_applicable("%s %s has no evict_stalled option", a->impl,
                           a->version);
    b = plt_start("waiter");
    plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(b, &r, 10, "opened",
             "open id=b path=%s unavailable_timeout=0.3 check_interval=0.05 "
             "evict_stalled=0",
             plt_q(name));
    plt_reply_free(&r);
    plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
    plt_reply_free(&r);
    kill(a->pid, SIGSTOP);
    got = plt_cmd(b, &r, 20, "acquire id=b timeout=1.5");
    kill(a->pid, SIGCONT);
    plt_check(got == 1 && plt_is(&r, "timeout"),
              "waiter with evict_stalled=0: %s",
              got == 1 ? r.line : "no reply");
    plt_reply_free(&r);
    plt_must(a, &r, 10, "checked", "check id=a");
    plt_check(strcmp(plt_get(&r, "result"), "PL_OK") == 0,
              "holder after SIGCONT: %s", r.line);
    plt_reply_free(&r);
    plt_must(a, &r, 10, "released", "release id=a");
    plt_reply_free(&r);
    plt_finish();
}

/* The server restarts (no persistence) while the lock is held: the holder
 * is told before anyone else can hold it, and tokens keep growing. */
Test(redis, server_restart_while_held) {
    const char *name = lock_name("restart");
    char dir[512], url[64];
    plt_proc_t *a, *b;
    plt_reply_t r;
    uint64_t ta, tb;
    int port = free_port(), got, i, told = 0;
    (void)fixture_port();

    plt_begin("redis.server_restart");
    plt_path(dir, sizeof(dir), "redis");
    cr_assert(fixture("start", port, dir) == 0, "cannot start redis on %d",
              port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    a = subject_at("holder", url);
    plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
    ta = (uint64_t)plt_get_i64(&r, "token");
    plt_reply_free(&r);
    cr_assert(fixture("stop", port, dir) == 0);
    cr_assert(fixture("start", port, dir) == 0, "cannot restart redis");
    if (needs(a, "check", "way to learn that the lock was lost")) {
        for (i = 0; i < 100 && !told; i++) {
            got = plt_cmd(a, &r, 10, "check id=a");
            told = got == 1 && plt_is(&r, "checked") &&
                   strcmp(plt_get(&r, "result"), "PL_ELOST") == 0;
            plt_reply_free(&r);
            if (!told)
                plt_sleep(0.02);
        }
        plt_check(told, "the holder was not told that the server restarted");
    }
    b = subject_at("next", url);
    plt_must(b, &r, 10, "opened", "open id=b path=%s", plt_q(name));
    plt_reply_free(&r);
    got = plt_cmd(b, &r, 15, "acquire id=b timeout=5");
    plt_check(got == 1 && plt_is(&r, "acquired"), "acquire after restart: %s",
              got == 1 ? r.line : "no reply");
    tb = (uint64_t)plt_get_i64(&r, "token");
    plt_reply_free(&r);
    if (needs(a, "token", "fencing tokens"))
        plt_check(tb > ta, "token after restart %llu <= before %llu",
                  (unsigned long long)tb, (unsigned long long)ta);
    if (plt_has(a, "features", "check")) {
        got = plt_cmd(a, &r, 10, "release id=a");
        plt_check(got == 1 && plt_is(&r, "error") &&
                      strcmp(r.code, "PL_ELOST") == 0,
                  "release after restart: %s", got == 1 ? r.line : "-");
        plt_reply_free(&r);
    }
    plt_kill(a);
    plt_kill(b);
    fixture("stop", port, dir);
    plt_finish();
}

/* A foreign client subscribed to our channels, publishing junk on them,
 * can neither block nor fool the lock. */
Test(redis, foreign_subscriber_neither_blocks_nor_fools) {
    const char *name = lock_name("f");
    char hchan[512], ev[256];
    int port = fixture_port(), got;
    redisContext *spy, *pub;
    redisReply *x;
    plt_proc_t *a, *b, *c;
    plt_reply_t r;
    double t;

    plt_begin("redis.foreign_subscriber");
    a = plt_start("a");
    b = plt_start("b");
    plt_must(a, &r, 10, "opened", "open id=a path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(b, &r, 10, "opened", "open id=b path=%s check_interval=0.1",
             plt_q(name));
    plt_reply_free(&r);
    plt_must(a, &r, 10, "acquired", "acquire id=a timeout=5");
    plt_reply_free(&r);
    /* Subscribe to everything a client could find: the name itself
     * (portalocker's channel), our event channel, the holder's channel. */
    snprintf(ev, sizeof(ev), "pl:{%s}:ev", name);
    holder_channel(port, name, hchan, sizeof(hchan));
    spy = raw_connect(port);
    x = redisCommand(spy, "SUBSCRIBE %s %s %s", name, ev,
                     hchan[0] ? hchan : "unused");
    cr_assert(x != NULL);
    freeReplyObject(x);
    pub = raw_connect(port);
    /* Junk: fake release notices and pings with foreign reply channels. */
    freeReplyObject(redisCommand(pub, "PUBLISH %s released", ev));
    freeReplyObject(redisCommand(pub, "PUBLISH %s %s", name, "{}"));
    if (hchan[0])
        freeReplyObject(
            redisCommand(pub, "PUBLISH %s %s", hchan, "ping spy 1"));
    got = plt_cmd(b, &r, 10, "acquire id=b timeout=0.5");
    plt_check(got == 1 && plt_is(&r, "timeout"),
              "fooled: acquired while held: %s", got == 1 ? r.line : "-");
    plt_reply_free(&r);
    /* Not blocked: after a release the waiter gets it at once. */
    plt_send(b, "acquire id=b timeout=10");
    plt_sleep(0.2);
    plt_must(a, &r, 10, "released", "release id=a");
    plt_reply_free(&r);
    got = plt_recv(b, &r, 15);
    plt_check(got == 1 && plt_is(&r, "acquired"),
              "blocked by a foreign subscriber after release: %s",
              got == 1 ? r.line : "no reply");
    if (got == 1 && plt_is(&r, "acquired"))
        plt_measure("release_to_acquire_s",
                    secs(plt_get_i64(&r, "t") - plt_get_i64(&r, "t0")));
    plt_reply_free(&r);
    /* Dead holder whose channel a foreign client keeps "alive". */
    holder_channel(port, name, hchan, sizeof(hchan));
    if (hchan[0]) {
        x = redisCommand(spy, "SUBSCRIBE %s", hchan);
        cr_assert(x != NULL);
        freeReplyObject(x);
    }
    c = plt_start("c");
    plt_must(c, &r, 10, "opened", "open id=c path=%s check_interval=0.1",
             plt_q(name));
    plt_reply_free(&r);
    plt_send(c, "acquire id=c timeout=8");
    plt_sleep(0.2);
    kill(b->pid, SIGKILL);
    got = plt_recv(c, &r, 20);
    plt_check(got == 1 && plt_is(&r, "acquired"),
              "dead holder kept alive by a foreign subscriber: %s",
              got == 1 ? r.line : "no reply");
    if (got == 1 && plt_is(&r, "acquired")) {
        t = secs(plt_get_i64(&r, "t") - plt_get_i64(&r, "t0"));
        plt_measure("takeover_s", t);
        plt_check(t < 5.0, "takeover took %.3f s", t);
    }
    plt_reply_free(&r);
    redisFree(spy);
    redisFree(pub);
    plt_finish();
}

/* Readers share; a waiting writer stops new readers (not starved) and gets
 * the lock when the readers leave. */
Test(redis, shared_readers_and_writer_not_starved) {
    const char *name = lock_name("rw");
    plt_proc_t *r1, *r2, *r3, *w;
    plt_reply_t r;
    int got;
    int64_t t_last_release;
    (void)fixture_port();

    plt_begin("redis.shared");
    r1 = plt_start("r1");
    if (!needs(r1, "shared", "shared (reader) mode")) {
        plt_finish();
        return;
    }
    r2 = plt_start("r2");
    r3 = plt_start("r3");
    w = plt_start("w");
    plt_must(r1, &r, 10, "opened", "open id=r path=%s shared", plt_q(name));
    plt_reply_free(&r);
    plt_must(r2, &r, 10, "opened", "open id=r path=%s shared", plt_q(name));
    plt_reply_free(&r);
    plt_must(r3, &r, 10, "opened", "open id=r path=%s shared", plt_q(name));
    plt_reply_free(&r);
    plt_must(w, &r, 10, "opened", "open id=w path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(r1, &r, 10, "acquired", "acquire id=r timeout=5");
    plt_reply_free(&r);
    got = plt_cmd(r2, &r, 10, "acquire id=r timeout=2");
    plt_check(got == 1 && plt_is(&r, "acquired"),
              "second reader did not share: %s", got == 1 ? r.line : "-");
    plt_reply_free(&r);
    plt_send(w, "acquire id=w timeout=15");
    plt_sleep(0.3);
    got = plt_recv(w, &r, 0.01);
    plt_check(got == 0, "writer acquired while readers hold: %s", r.line);
    plt_reply_free(&r);
    got = plt_cmd(r3, &r, 10, "acquire id=r timeout=0.5");
    plt_check(got == 1 && plt_is(&r, "timeout"),
              "a new reader overtook the waiting writer: %s",
              got == 1 ? r.line : "-");
    plt_reply_free(&r);
    plt_must(r1, &r, 10, "released", "release id=r");
    plt_reply_free(&r);
    plt_must(r2, &r, 10, "released", "release id=r");
    t_last_release = plt_get_i64(&r, "t");
    plt_reply_free(&r);
    got = plt_recv(w, &r, 15);
    plt_check(got == 1 && plt_is(&r, "acquired") &&
                  plt_get_i64(&r, "t") > t_last_release,
              "writer after the readers left: %s", got == 1 ? r.line : "-");
    plt_reply_free(&r);
    got = plt_cmd(r3, &r, 10, "acquire id=r timeout=0.3");
    plt_check(got == 1 && plt_is(&r, "timeout"),
              "reader acquired while the writer holds: %s",
              got == 1 ? r.line : "-");
    plt_reply_free(&r);
    plt_must(w, &r, 10, "released", "release id=w");
    plt_reply_free(&r);
    got = plt_cmd(r3, &r, 10, "acquire id=r timeout=5");
    plt_check(got == 1 && plt_is(&r, "acquired"), "reader after writer: %s",
              got == 1 ? r.line : "-");
    plt_reply_free(&r);
    plt_finish();
}

/* Dead readers and dead pending writers are pruned: neither blocks the
 * others after a SIGKILL. */
Test(redis, dead_reader_and_dead_pending_writer_are_pruned) {
    const char *name = lock_name("rwk");
    plt_proc_t *r1, *r2, *w1, *w2;
    plt_reply_t r;
    int got;
    (void)fixture_port();

    plt_begin("redis.shared_deaths");
    r1 = plt_start("r1");
    if (!needs(r1, "shared", "shared (reader) mode")) {
        plt_finish();
        return;
    }
    r2 = plt_start("r2");
    w1 = plt_start("w1");
    w2 = plt_start("w2");
    plt_must(r1, &r, 10, "opened", "open id=r path=%s shared", plt_q(name));
    plt_reply_free(&r);
    plt_must(r2, &r, 10, "opened", "open id=r path=%s shared", plt_q(name));
    plt_reply_free(&r);
    plt_must(w1, &r, 10, "opened", "open id=w path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(w2, &r, 10, "opened", "open id=w path=%s", plt_q(name));
    plt_reply_free(&r);
    plt_must(r1, &r, 10, "acquired", "acquire id=r timeout=5");
    plt_reply_free(&r);
    plt_send(w1, "acquire id=w timeout=30");
    plt_sleep(0.3); /* w1 is a pending writer now */
    kill(w1->pid, SIGKILL);
    got = plt_cmd(r2, &r, 10, "acquire id=r timeout=2");
    plt_check(got == 1 && plt_is(&r, "acquired"),
              "a dead pending writer still blocks readers: %s",
              got == 1 ? r.line : "-");
    plt_reply_free(&r);
    plt_send(w2, "acquire id=w timeout=10");
    plt_sleep(0.3);
    kill(r1->pid, SIGKILL);
    kill(r2->pid, SIGKILL);
    got = plt_recv(w2, &r, 15);
    plt_check(got == 1 && plt_is(&r, "acquired"),
              "writer after both readers died: %s", got == 1 ? r.line : "-");
    if (got == 1 && plt_is(&r, "acquired"))
        plt_measure("wait_s",
                    secs(plt_get_i64(&r, "t") - plt_get_i64(&r, "t0")));
    plt_reply_free(&r);
    plt_finish();
}

/* ---- our library in-process: error paths --------------------------------- */

TestSuite(redis_lib, .timeout = 60);

static pl_redis_options_t opts_at(int port) {
    pl_redis_options_t o;
    pl_redis_options_init(&o);
    o.port = port;
    return o;
}

Test(redis_lib, server_down_is_econn_fast) {
    pl_redis_options_t o = opts_at(free_port());
    pl_lock_t *l;
    int64_t t0;
    int rc;
    (void)fixture_port();
    cr_assert(pl_redis_lock_open(&l, lock_name("down"), &o) == PL_OK);
    t0 = plt_now_ns();
    rc = pl_lock_acquire(l);
    cr_expect(rc == PL_ECONN, "acquire with the server down: %s (%s)",
              pl_err_name(rc), pl_lock_errmsg(l));
    cr_expect(plt_now_ns() - t0 < (int64_t)(1.5 * NS),
              "took %.3f s (connect_timeout 1)", secs(plt_now_ns() - t0));
    cr_expect(!pl_lock_is_held(l));
    pl_lock_close(l);
}

Test(redis_lib, acl_user_and_wrong_password) {
    int port = fixture_port();
    char user[64], pw[64];
    redisContext *c = raw_connect(port);
    redisReply *x;
    pl_redis_options_t o = opts_at(port);
    pl_lock_t *l;
    int rc;

    snprintf(user, sizeof(user), "pl_%ld", (long)getpid());
    snprintf(pw, sizeof(pw), "pw%ld", (long)getpid());
    x = redisCommand(c, "ACL SETUSER %s on >%s ~* &* +@all", user, pw);
    cr_assert(x != NULL && x->type == REDIS_REPLY_STATUS, "ACL SETUSER");
    freeReplyObject(x);
    o.username = user;
    o.password = "wrong";
    cr_assert(pl_redis_lock_open(&l, lock_name("auth"), &o) == PL_OK);
    rc = pl_lock_acquire(l);
    cr_expect(rc == PL_EAUTH, "wrong password: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    pl_lock_close(l);
    o.password = pw;
    cr_assert(pl_redis_lock_open(&l, lock_name("auth"), &o) == PL_OK);
    rc = pl_lock_acquire(l);
    cr_expect(rc == PL_OK, "ACL user: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    cr_expect(pl_lock_fencing_token(l) > 0);
    cr_expect(pl_lock_release(l) == PL_OK);
    pl_lock_close(l);
    x = redisCommand(c, "ACL DELUSER %s", user);
    if (x != NULL)
        freeReplyObject(x);
    redisFree(c);
}

Test(redis_lib, unix_socket_and_tcp_exclude_each_other) {
    int port = fixture_port();
    const char *sock = getenv("PL_TEST_REDIS_SOCKET");
    pl_redis_options_t ou = opts_at(port), ot = opts_at(port);
    pl_lock_t *lu, *lt;
    int rc;

    if (sock == NULL || access(sock, F_OK) != 0)
        cr_skip_test("no unix socket (PL_TEST_REDIS_SOCKET=%s)",
                     sock ? sock : "unset");
    ou.unix_socket = sock;
    cr_assert(pl_redis_lock_open(&lu, lock_name("unix"), &ou) == PL_OK);
    cr_assert(pl_redis_lock_open(&lt, lock_name("unix"), &ot) == PL_OK);
    rc = pl_lock_acquire(lu);
    cr_expect(rc == PL_OK, "unix socket: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(lu));
    rc = pl_lock_acquire_with(lt, 0, PL_UNSET, -1);
    cr_expect(rc == PL_ELOCKED, "tcp while unix holds: %s", pl_err_name(rc));
    cr_expect(pl_lock_check(lu) == PL_OK);
    cr_expect(pl_lock_release(lu) == PL_OK);
    cr_expect(pl_lock_check(lu) == PL_ENOTHELD);
    cr_expect(pl_lock_release(lu) == PL_ENOTHELD);
    rc = pl_lock_acquire_with(lt, 0, PL_UNSET, -1);
    cr_expect(rc == PL_OK, "tcp after release: %s", pl_err_name(rc));
    pl_lock_close(lt);
    pl_lock_close(lu);
}

/* A forked child that inherited a held lock neither releases it nor writes
 * on the parent's connections. */
Test(redis_lib, fork_child_does_not_release) {
    int port = fixture_port(), st;
    pl_redis_options_t o = opts_at(port);
    pl_lock_t *l, *other;
    pid_t pid;

    cr_assert(pl_redis_lock_open(&l, lock_name("fork"), &o) == PL_OK);
    cr_assert(pl_lock_acquire(l) == PL_OK, "%s", pl_lock_errmsg(l));
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int rc = pl_lock_check(l);
        int rc2 = pl_lock_release(l);
        pl_lock_close(l);
        _exit(rc == PL_EFORKED && rc2 == PL_EFORKED ? 0 : 1);
    }
    cr_assert(waitpid(pid, &st, 0) == pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "child: check/release should give PL_EFORKED");
    cr_expect(pl_lock_check(l) == PL_OK, "parent after the child: %s",
              pl_lock_errmsg(l));
    cr_assert(pl_redis_lock_open(&other, lock_name("fork"), &o) == PL_OK);
    cr_expect(pl_lock_acquire_with(other, 0, PL_UNSET, -1) == PL_ELOCKED);
    cr_expect(pl_lock_release(l) == PL_OK);
    cr_expect(pl_lock_acquire_with(other, 0, PL_UNSET, -1) == PL_OK);
    pl_lock_close(other);
    pl_lock_close(l);
}

/* timeout 0 and fail_when_locked are one attempt: PL_ELOCKED at once. */
Test(redis_lib, one_attempt_is_elocked) {
    pl_redis_options_t o = opts_at(fixture_port());
    pl_lock_t *a, *b;
    int64_t t0;
    cr_assert(pl_redis_lock_open(&a, lock_name("once"), &o) == PL_OK);
    cr_assert(pl_redis_lock_open(&b, lock_name("once"), &o) == PL_OK);
    cr_assert(pl_lock_acquire(a) == PL_OK, "%s", pl_lock_errmsg(a));
    t0 = plt_now_ns();
    cr_expect(pl_lock_acquire_with(b, 0, PL_UNSET, -1) == PL_ELOCKED);
    cr_expect(pl_lock_acquire_with(b, 5, PL_UNSET, 1) == PL_ELOCKED);
    cr_expect(plt_now_ns() - t0 < (int64_t)(1 * NS), "one attempt took %.3f s",
              secs(plt_now_ns() - t0));
    cr_expect(pl_lock_acquire_with(b, 0.2, PL_UNSET, 0) == PL_ETIMEDOUT);
    cr_expect(pl_lock_fencing_token(b) == 0);
    cr_expect(pl_lock_release(a) == PL_OK);
    cr_expect(pl_lock_acquire_with(b, 0, PL_UNSET, -1) == PL_OK);
    pl_lock_close(b);
    pl_lock_close(a);
}

static atomic_int lost_calls;
static void count_lost(pl_lock_t *lock, int reason, void *arg) {
    (void)lock;
    (void)arg;
    if (reason == PL_ELOST)
        atomic_fetch_add(&lost_calls, 1);
}

/* The holder's connection is killed (by exact client id, as an admin
 * would): on_lost fires, check and release say PL_ELOST, a waiter gets the
 * lock with a larger token, and the object can acquire again. */
Test(redis_lib, killed_connection_is_reported_lost) {
    int port = fixture_port(), i;
    const char *name = lock_name("lost");
    pl_redis_options_t o = opts_at(port);
    pl_lock_t *a, *b;
    redisContext *c = raw_connect(port);
    redisReply *x;
    uint64_t ta;

    o.on_lost = count_lost;
    cr_assert(pl_redis_lock_open(&a, name, &o) == PL_OK);
    cr_assert(pl_redis_lock_open(&b, name, &o) == PL_OK);
    cr_assert(pl_lock_acquire(a) == PL_OK, "%s", pl_lock_errmsg(a));
    ta = pl_lock_fencing_token(a);
    x = redisCommand(c, "HGET pl:{%s}:owner cid", name);
    cr_assert(x != NULL && x->type == REDIS_REPLY_STRING, "owner record");
    freeReplyObject(redisCommand(c, "CLIENT KILL ID %s", x->str));
    freeReplyObject(x);
    for (i = 0; i < 200 && atomic_load(&lost_calls) == 0; i++)
        plt_sleep(0.01);
    cr_expect(atomic_load(&lost_calls) == 1, "on_lost calls: %d",
              atomic_load(&lost_calls));
    cr_expect(pl_lock_check(a) == PL_ELOST);
    cr_expect(pl_lock_acquire_with(b, 2, PL_UNSET, -1) == PL_OK, "%s",
              pl_lock_errmsg(b));
    cr_expect(pl_lock_fencing_token(b) > ta);
    cr_expect(pl_lock_release(a) == PL_ELOST, "%s", pl_lock_errmsg(a));
    cr_expect(!pl_lock_is_held(a));
    cr_expect(pl_lock_release(b) == PL_OK);
    cr_expect(pl_lock_acquire_with(a, 2, PL_UNSET, -1) == PL_OK, "%s",
              pl_lock_errmsg(a));
    cr_expect(pl_lock_fencing_token(a) > ta);
    cr_expect(pl_lock_release(a) == PL_OK);
    pl_lock_close(a);
    pl_lock_close(b);
    redisFree(c);
}

/* Someone deletes the owner record: the holder's check finds out. */
Test(redis_lib, deleted_record_is_reported_lost) {
    int port = fixture_port();
    const char *name = lock_name("del");
    pl_redis_options_t o = opts_at(port);
    pl_lock_t *a;
    redisContext *c = raw_connect(port);

    cr_assert(pl_redis_lock_open(&a, name, &o) == PL_OK);
    cr_assert(pl_lock_acquire(a) == PL_OK, "%s", pl_lock_errmsg(a));
    cr_expect(pl_lock_check(a) == PL_OK);
    freeReplyObject(redisCommand(c, "DEL pl:{%s}:owner", name));
    cr_expect(pl_lock_check(a) == PL_ELOST);
    cr_expect(pl_lock_release(a) == PL_ELOST);
    pl_lock_close(a);
    redisFree(c);
}

Test(redis_lib, bad_arguments) {
    pl_redis_options_t o;
    pl_lock_t *l = (pl_lock_t *)1;
    char big[400];
    pl_redis_options_init(&o);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_expect(pl_redis_lock_open(NULL, "x", &o) == PL_EINVAL);
    cr_expect(pl_redis_lock_open(&l, "", &o) == PL_EINVAL && l == NULL);
    cr_expect(pl_redis_lock_open(&l, NULL, &o) == PL_EINVAL);
    cr_expect(pl_redis_lock_open(&l, big, &o) == PL_EINVAL);
    o.port = 0;
    cr_expect(pl_redis_lock_open(&l, "x", &o) == PL_EINVAL);
    pl_redis_options_init(&o);
    o.connect_timeout = 0;
    cr_expect(pl_redis_lock_open(&l, "x", &o) == PL_EINVAL);
    pl_redis_options_init(&o);
    o.username = "u"; /* a user without a password */
    cr_expect(pl_redis_lock_open(&l, "x", &o) == PL_EINVAL);
    cr_expect(pl_lock_fencing_token(NULL) == 0);
}

/* A server with requirepass: no password and a wrong one are PL_EAUTH, the
 * right one (AUTH <password>, no user) works.  Own server on a free port. */
Test(redis_lib, requirepass_server) {
    char dir[] = "/tmp/pl-redis-auth-XXXXXX", cmd[1024], pidfile[600];
    pl_redis_options_t o;
    pl_lock_t *l;
    FILE *f;
    long pid = 0;
    int port = free_port(), rc, i;
    (void)fixture_port();

    cr_assert(mkdtemp(dir) != NULL);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", dir);
    snprintf(cmd, sizeof(cmd),
             "redis-server --bind 127.0.0.1 --port %d --save '' "
             "--appendonly no --daemonize yes --requirepass s3cret "
             "--pidfile %s --dir %s --logfile %s/log",
             port, pidfile, dir, dir);
    cr_assert(system(cmd) == 0, "cannot start redis-server: %s", cmd);
    for (i = 0; i < 100 && pid <= 0; i++) {
        if ((f = fopen(pidfile, "r")) != NULL) {
            if (fscanf(f, "%ld", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid <= 0)
            plt_sleep(0.05);
    }
    cr_assert(pid > 0, "redis-server wrote no pidfile");
    o = opts_at(port);
    cr_assert(pl_redis_lock_open(&l, "auth", &o) == PL_OK);
    for (i = 0; i < 100; i++) { /* until it listens */
        rc = pl_lock_acquire_with(l, 0, PL_UNSET, -1);
        if (rc != PL_ECONN)
            break;
        plt_sleep(0.05);
    }
    cr_expect(rc == PL_EAUTH, "no password: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    pl_lock_close(l);
    o.password = "wrong";
    cr_assert(pl_redis_lock_open(&l, "auth", &o) == PL_OK);
    rc = pl_lock_acquire_with(l, 0, PL_UNSET, -1);
    cr_expect(rc == PL_EAUTH, "wrong password: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    pl_lock_close(l);
    o.password = "s3cret";
    cr_assert(pl_redis_lock_open(&l, "auth", &o) == PL_OK);
    rc = pl_lock_acquire_with(l, 0, PL_UNSET, -1);
    cr_expect(rc == PL_OK, "right password: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    cr_expect(pl_lock_release(l) == PL_OK);
    pl_lock_close(l);
    kill((pid_t)pid, SIGTERM);
    for (i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
        plt_sleep(0.05);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect(system(cmd) == 0);
}

/* A waiter whose ACL user may not CLIENT KILL (nor CLIENT LIST) cannot
 * evict a stalled holder: it times out and says why; the holder's death
 * still frees the lock (NUMSUB needs no rights). */
Test(redis_lib, eviction_without_client_kill_rights) {
    int port = fixture_port(), fds[2], st;
    const char *name = lock_name("noperm");
    char user[64], pw[64], one;
    redisContext *c = raw_connect(port);
    redisReply *x;
    pl_redis_options_t o = opts_at(port);
    pl_lock_t *l;
    pid_t pid;
    int rc;

    snprintf(user, sizeof(user), "plk_%ld", (long)getpid());
    snprintf(pw, sizeof(pw), "pw%ld", (long)getpid());
    x = redisCommand(c,
                     "ACL SETUSER %s on >%s ~* &* +@all -client|kill "
                     "-client|list",
                     user, pw);
    cr_assert(x != NULL && x->type == REDIS_REPLY_STATUS, "ACL SETUSER");
    freeReplyObject(x);
    cr_assert(pipe(fds) == 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) { /* the holder */
        pl_redis_options_t ho = opts_at(port);
        pl_lock_t *h;
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (pl_redis_lock_open(&h, name, &ho) != PL_OK ||
            pl_lock_acquire(h) != PL_OK)
            _exit(1);
        if (write(fds[1], "1", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    cr_assert(read(fds[0], &one, 1) == 1, "holder did not acquire");
    close(fds[0]);
    kill(pid, SIGSTOP);
    o.username = user;
    o.password = pw;
    o.unavailable_timeout = 0.3;
    o.check_interval = 0.05;
    cr_assert(pl_redis_lock_open(&l, name, &o) == PL_OK);
    rc = pl_lock_acquire_with(l, 1.5, PL_UNSET, -1);
    cr_expect(rc == PL_ETIMEDOUT, "stalled holder, no CLIENT KILL: %s (%s)",
              pl_err_name(rc), pl_lock_errmsg(l));
    cr_expect(strstr(pl_lock_errmsg(l), "not evicted") != NULL, "message: %s",
              pl_lock_errmsg(l));
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    rc = pl_lock_acquire_with(l, 2, PL_UNSET, -1);
    cr_expect(rc == PL_OK, "after the holder died: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(l));
    pl_lock_close(l);
    x = redisCommand(c, "ACL DELUSER %s", user);
    if (x != NULL)
        freeReplyObject(x);
    redisFree(c);
}
