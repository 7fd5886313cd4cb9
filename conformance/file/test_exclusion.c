/*
 * test_exclusion.c -- mutual exclusion under real contention: many
 * exclusive contenders, shared holders, bounded semaphores (also shared
 * between two implementations).  Oracle: the [acquired, released] intervals
 * the contenders report (CLOCK_MONOTONIC, taken after the lock call returned
 * and before the unlock call, so they lie inside the true holding periods)
 * and a counter file read-modify-written under the lock.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_CONTENDERS 8
#define EX_CYCLES     200
#define SEM_MAX       3
#define SEM_PROCS     6
#define SEM_CYCLES    8

/* Collects "cycled" replies into iv; returns the total, or -1 on a failure
 * (already recorded).  sent: the suite's clock before the cycle commands
 * went out; every interval must lie between it and its reply (the
 * contenders' timestamps are on the suite's clock, or the overlap oracle
 * would compare nothing). */
static int collect_cycles(plt_proc_t **p, int n, int cycles, plt_interval_t *iv,
                          int max, int64_t sent) {
    int i, total = 0;
    for (i = 0; i < n; i++) {
        plt_reply_t r;
        int got = plt_recv(p[i], &r, 120);
        int k;
        if (!plt_check(got == 1 && plt_is(&r, "cycled"),
                       "contender %d: cycle -> %s", i,
                       got == 1 ? r.line : "no reply")) {
            plt_reply_free(&r);
            return -1;
        }
        k = plt_parse_intervals(plt_get(&r, "intervals"), iv + total,
                                max - total, i);
        plt_check(k == cycles, "contender %d reported %d intervals, not %d", i,
                  k, cycles);
        if (k > 0) {
            plt_check_on_clock(p[i], iv + total, k, sent, plt_now_ns());
            total += k;
        }
        plt_reply_free(&r);
    }
    return total;
}

static void exclusivity_run(const char *scenario, int mixed) {
    plt_impl_t peer = PLT_OURS;
    plt_proc_t *p[EX_CONTENDERS];
    plt_interval_t *iv;
    plt_interval_t x, y;
    char lock[4096], counter[4096], buf[64];
    int i, total;
    int64_t t0;

    p[0] = sc_begin(scenario, "lock", "cycle,counter");
    if (mixed)
        peer = plt_peer_impl(p[0]);
    for (i = 1; i < EX_CONTENDERS; i++) {
        char label[16];
        snprintf(label, sizeof(label), "c%d", i);
        if (mixed && i % 2 == 1)
            p[i] = plt_start_impl(label, peer, 0);
        else
            p[i] = plt_start(label);
    }
    if (mixed)
        sc_need_peer_backend(p[0], p[1]);
    if (mixed)
        plt_observe("pair", "%s/%s+%s/%s", p[0]->impl, sc_backend_for(p[0]),
                    p[1]->impl, sc_backend_for(p[1]));
    plt_path(lock, sizeof(lock), "exclusive.lock");
    plt_path(counter, sizeof(counter), "counter");
    for (i = 0; i < EX_CONTENDERS; i++)
        sc_open(p[i], "x", "lock", lock, NULL);
    t0 = plt_now_ns();
    /* Short holds (50 us) so the contenders really collide; a generous
     * timeout because a polling implementation can starve for a while. */
    for (i = 0; i < EX_CONTENDERS; i++)
        plt_send(p[i],
                 "cycle id=x n=%d hold=0.00005 timeout=60 check_interval=0.001 "
                 "counter=%s",
                 EX_CYCLES, plt_q(counter));
    iv = calloc(EX_CONTENDERS * EX_CYCLES, sizeof(*iv));
    cr_assert(iv != NULL);
    total = collect_cycles(p, EX_CONTENDERS, EX_CYCLES, iv,
                           EX_CONTENDERS * EX_CYCLES, t0);
    if (total > 0) {
        plt_measure("wall_s", (double)(plt_now_ns() - t0) / 1e9);
        plt_measure("acquisitions", total);
        if (plt_find_overlap(iv, total, &x, &y))
            plt_check(0,
                      "contenders %d and %d held the lock at once: "
                      "[%lld,%lld] and [%lld,%lld]",
                      x.who, y.who, (long long)x.a, (long long)x.b,
                      (long long)y.a, (long long)y.b);
        plt_measure("max_concurrency", plt_max_concurrency(iv, total));
        cr_assert(sc_read_file(counter, buf, sizeof(buf)) >= 0);
        plt_check(atol(buf) == EX_CONTENDERS * EX_CYCLES,
                  "counter is %ld after %d locked increments (lost updates)",
                  atol(buf), EX_CONTENDERS * EX_CYCLES);
    }
    free(iv);
    plt_finish();
}

PLT_TEST(exclusion, exclusivity) {
    exclusivity_run("exclusivity", 0);
}

/* Half portalock, half portalocker contenders on one lock file. */
PLT_TEST(exclusion, exclusivity_cross_impl) {
    exclusivity_run("exclusivity_cross_impl", 1);
}

/* A reply must NOT come within `quiet` seconds (the contender is waiting). */
static void expect_waiting(plt_proc_t *p, double quiet, const char *what) {
    plt_reply_t r;
    int got = plt_recv(p, &r, quiet);
    plt_check(got == 0, "%s: expected to wait, got %s", what,
              got == 1 ? r.line : "EOF");
    plt_reply_free(&r);
}

PLT_TEST(exclusion, shared) {
    plt_proc_t *s[3], *e;
    plt_reply_t r;
    char lock[4096];
    int64_t last = 0;
    int i;

    s[0] = sc_begin("shared", "lock", "shared");
    s[1] = plt_start("s1");
    s[2] = plt_start("s2");
    e = plt_start("e");
    plt_path(lock, sizeof(lock), "shared.lock");
    /* a+: lockf's F_RDLCK needs a readable descriptor. */
    for (i = 0; i < 3; i++)
        sc_open(s[i], "l", "lock", lock, "mode=a+ shared=1");
    sc_open(e, "l", "lock", lock, "mode=a+");

    for (i = 0; i < 3; i++) {
        sc_acquire(s[i], &r, "l", "shared timeout=0");
        plt_check(plt_is(&r, "acquired"),
                  "shared holder %d: %s (shared holders must coexist)", i,
                  r.line);
        plt_reply_free(&r);
    }
    sc_acquire(e, &r, "l", "exclusive timeout=0");
    plt_check(plt_is(&r, "already-locked"), "exclusive vs 3 shared holders: %s",
              r.line);
    plt_reply_free(&r);

    /* The exclusive waits until the last shared holder is gone. */
    plt_send(e, "acquire id=l exclusive timeout=20 check_interval=0.01");
    expect_waiting(e, 0.1, "exclusive while 3 shared held");
    for (i = 0; i < 3; i++) {
        last = sc_release(s[i], "l");
        if (i < 2)
            expect_waiting(e, 0.1, "exclusive while shared still held");
    }
    plt_recv(e, &r, PLT_REPLY);
    plt_check(plt_is(&r, "acquired"), "exclusive after shared released: %s",
              r.line);
    plt_check(plt_get_i64(&r, "t") >= last,
              "exclusive acquired at %lld before the last shared release at "
              "%lld",
              (long long)plt_get_i64(&r, "t"), (long long)last);
    plt_reply_free(&r);

    /* A shared waits for the exclusive. */
    sc_acquire(s[0], &r, "l", "shared timeout=0");
    plt_check(plt_is(&r, "already-locked"), "shared vs exclusive holder: %s",
              r.line);
    plt_reply_free(&r);
    plt_send(s[0], "acquire id=l shared timeout=20 check_interval=0.01");
    expect_waiting(s[0], 0.1, "shared while exclusive held");
    last = sc_release(e, "l");
    plt_recv(s[0], &r, PLT_REPLY);
    plt_check(plt_is(&r, "acquired") && plt_get_i64(&r, "t") >= last,
              "shared after exclusive released at %lld: %s", (long long)last,
              r.line);
    plt_reply_free(&r);
    plt_finish();
}

static void semaphore_run(const char *scenario, int mixed) {
    plt_impl_t peer = PLT_OURS;
    plt_proc_t *p[SEM_PROCS];
    plt_interval_t iv[SEM_PROCS * SEM_CYCLES];
    char opts[4096];
    int i, total, conc;
    int64_t sent;

    p[0] = sc_begin(scenario, "semaphore", "cycle");
    if (mixed)
        peer = plt_peer_impl(p[0]);
    for (i = 1; i < SEM_PROCS; i++) {
        char label[16];
        snprintf(label, sizeof(label), "c%d", i);
        if (mixed && i % 2 == 1)
            p[i] = plt_start_impl(label, peer, 0);
        else
            p[i] = plt_start(label);
    }
    if (mixed)
        sc_need_peer_backend(p[0], p[1]);
    if (mixed) {
        plt_observe("implementations", "%s+%s", p[0]->impl, p[1]->impl);
        plt_observe("backends", "%s+%s", sc_backend_for(p[0]),
                    sc_backend_for(p[1]));
    }
    snprintf(opts, sizeof(opts), "maximum=%d name=sem directory=%s", SEM_MAX,
             plt_q(plt_dir()));
    for (i = 0; i < SEM_PROCS; i++) {
        plt_reply_t r;
        plt_must(p[i], &r, PLT_REPLY, "opened",
                 "open id=s kind=semaphore backend=%s %s", sc_backend_for(p[i]),
                 opts);
        plt_reply_free(&r);
    }
    /* 20 ms holds so that N holders overlap for sure. */
    sent = plt_now_ns();
    for (i = 0; i < SEM_PROCS; i++)
        plt_send(p[i],
                 "cycle id=s n=%d hold=0.02 timeout=60 "
                 "check_interval=0.002",
                 SEM_CYCLES);
    total = collect_cycles(p, SEM_PROCS, SEM_CYCLES, iv, SEM_PROCS * SEM_CYCLES,
                           sent);
    if (total > 0) {
        conc = plt_max_concurrency(iv, total);
        plt_measure("max_concurrency", conc);
        plt_check(conc <= SEM_MAX, "%d holders at once on a semaphore of %d",
                  conc, SEM_MAX);
        plt_check(conc >= SEM_MAX,
                  "the semaphore of %d never reached %d holders (max %d) "
                  "with %d contenders",
                  SEM_MAX, SEM_MAX, conc, SEM_PROCS);
    }
    plt_finish();
}

PLT_TEST(exclusion, semaphore) {
    semaphore_run("semaphore", 0);
}

PLT_TEST(exclusion, semaphore_cross_impl) {
    semaphore_run("semaphore_cross_impl", 1);
}
