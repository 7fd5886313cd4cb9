/*
 * test_timing.c -- fail_when_locked, timeouts, hand-off latency and release
 * on death.  Elapsed times come from the contender's own timestamps (t0 when
 * the acquire started, t when it returned), so pipe latency does not count.
 *
 * Bounds, and why they are what they are (2-core CI VMs shared with
 * sanitizer builds can stall a process for tens of milliseconds):
 *   - "at once" = PLT_IMMEDIATE (50 ms);
 *   - a timeout T ends in [T - 2 ms, T + 250 ms]: the spec asks for about
 *     +100 ms; the extra 150 ms absorbs scheduler stalls under load (a
 *     polling loop that sleeps past the deadline by a whole 250 ms
 *     check_interval still fails).  PL_CONFORMANCE_TIMEOUT_SLACK=S raises
 *     the 250 ms to S seconds for a contender under an emulator: ci/ports.sh
 *     sets 1.0 under qemu-user and ci/windows.sh under Wine (a 0.5 s wait
 *     ended after 0.775 s there once), where a timed-out wait of our library
 *     overran by 0.15-0.3 s (strace: glibc's pthread_cancel dlopens
 *     libgcc_s on its first use, and qemu translates the loader and the
 *     unwinder, about 0.25 s on a loaded 2-core machine; natively about
 *     1 ms).  The lower bound never moves: ending early is the bug it
 *     catches (the i686 time64 futex);
 *   - hand-off: the median of 5 trials must be below 50 ms with
 *     check_interval = 0.5 s.  A kernel wait wakes within a millisecond or
 *     so; a polling loop needs on average half an interval and here,
 *     because the release comes 0.15 s after the waiter started, about
 *     0.35 s.  The median shrugs off one stalled trial.
 *     A contender that says wait=poll in hello (lockfileex under Wine: Wine
 *     8.0 has no asynchronous lock wait, so the library polls there, backing
 *     off up to check_interval) is held to what polling can do: below
 *     check_interval + 250 ms.  The verdict still fails a waiter that never
 *     gets the lock or sleeps past its interval; the figure is recorded.
 *   - release on death: the holder ends by "crash" (SIGKILL; Windows:
 *     TerminateProcess), then the next holder is SIGKILLed by the suite
 *     (under Wine: the wine process, as a task manager or the OOM killer
 *     would); each time the waiter must take over within 1 s.
 */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define HANDOFF_TRIALS   5
#define HANDOFF_BOUND    0.050
#define HANDOFF_INTERVAL 0.5
#define TIMEOUT_T        0.5
#define TIMEOUT_SLACK    0.250
#define DEATH_BOUND      1.0

/* The time a timeout may overrun its deadline (see above). */
static double timeout_slack(void) {
    const char *v = getenv("PL_CONFORMANCE_TIMEOUT_SLACK");
    double s = v != NULL ? strtod(v, NULL) : 0;
    return s > TIMEOUT_SLACK ? s : TIMEOUT_SLACK;
}

/* Holder a acquires path exclusively; returns after success. */
static void hold(plt_proc_t *a, const char *path) {
    plt_reply_t r;
    sc_open(a, "l", "lock", path, NULL);
    plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
    plt_reply_free(&r);
}

PLT_TEST(timing, nonblocking) {
    plt_proc_t *a = sc_begin("nonblocking", "lock", NULL);
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    double el;

    hold(a, plt_path(path, sizeof(path), "nb.lock"));
    sc_open(b, "l", "lock", path, "timeout=5 fail_when_locked=1");
    sc_acquire(b, &r, "l", NULL);
    el = sc_elapsed(&r);
    plt_measure("elapsed_ms", el * 1e3);
    plt_check(plt_is(&r, "already-locked"),
              "fail_when_locked=1 timeout=5 on a held lock: %s (want "
              "already-locked)",
              r.line);
    plt_check(el < PLT_IMMEDIATE,
              "fail_when_locked took %.1f ms (want < %.0f ms, whatever the "
              "timeout)",
              el * 1e3, PLT_IMMEDIATE * 1e3);
    plt_reply_free(&r);
    /* Whatever the timeout: also with "wait forever". */
    sc_acquire(b, &r, "l", "timeout=inf fail_when_locked=1");
    el = sc_elapsed(&r);
    plt_measure("elapsed_forever_ms", el * 1e3);
    plt_check(plt_is(&r, "already-locked") && el < PLT_IMMEDIATE,
              "fail_when_locked=1 timeout=inf: %s after %.1f ms", r.line,
              el * 1e3);
    plt_reply_free(&r);
    plt_finish();
}

PLT_TEST(timing, timeout_zero) {
    plt_proc_t *a = sc_begin("timeout_zero", "lock", NULL);
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    double el;

    hold(a, plt_path(path, sizeof(path), "t0.lock"));
    sc_open(b, "l", "lock", path, "check_interval=0.5");
    sc_acquire(b, &r, "l", "timeout=0");
    el = sc_elapsed(&r);
    plt_measure("elapsed_ms", el * 1e3);
    plt_check(plt_is(&r, "already-locked"),
              "timeout=0 on a held lock: %s (want already-locked)", r.line);
    plt_check(el < PLT_IMMEDIATE,
              "timeout=0 took %.1f ms: more than one attempt? (check_interval "
              "0.5 s)",
              el * 1e3);
    plt_reply_free(&r);
    plt_finish();
}

PLT_TEST(timing, timeout_expires) {
    plt_proc_t *a = sc_begin("timeout_expires", "lock", NULL);
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    double el;

    hold(a, plt_path(path, sizeof(path), "tt.lock"));
    sc_open(b, "l", "lock", path, NULL);
    sc_acquire(b, &r, "l", "timeout=0.5 check_interval=0.25");
    el = sc_elapsed(&r);
    plt_measure("elapsed_ms", el * 1e3);
    plt_observe("reply", "%s", r.word);
    plt_check(plt_is(&r, "timeout") || plt_is(&r, "already-locked"),
              "timeout=%.1f on a held lock: %s (want timeout)", TIMEOUT_T,
              r.line);
    plt_observe("slack_s", "%.3f", timeout_slack());
    plt_check(el >= TIMEOUT_T - 0.002 && el <= TIMEOUT_T + timeout_slack(),
              "timeout=%.1f gave up after %.3f s (want [%.3f, %.3f])",
              TIMEOUT_T, el, TIMEOUT_T - 0.002, TIMEOUT_T + timeout_slack());
    plt_reply_free(&r);
    /* Still held by a. */
    sc_acquire(b, &r, "l", "timeout=0");
    plt_check(plt_is(&r, "already-locked"), "after the timeout: %s", r.line);
    plt_reply_free(&r);
    plt_finish();
}

static int dbl_cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

PLT_TEST(timing, handoff) {
    plt_proc_t *a = sc_begin("handoff", "lock", NULL);
    plt_proc_t *b = plt_start("b");
    double ms[HANDOFF_TRIALS];
    char path[4096];
    int i, n = 0;

    plt_path(path, sizeof(path), "handoff.lock");
    sc_open(a, "l", "lock", path, NULL);
    sc_open(b, "l", "lock", path, NULL);
    for (i = 0; i < HANDOFF_TRIALS; i++) {
        plt_reply_t r;
        int64_t released;
        int got;
        plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
        plt_reply_free(&r);
        plt_send(b, "acquire id=l timeout=10 check_interval=%.3f",
                 HANDOFF_INTERVAL);
        got = plt_recv(b, &r, 0.15);
        plt_check(got == 0, "waiter answered while the lock was held: %s",
                  r.line);
        plt_reply_free(&r);
        released = sc_release(a, "l");
        got = plt_recv(b, &r, PLT_REPLY);
        if (plt_check(got == 1 && plt_is(&r, "acquired"),
                      "waiter after release: %s",
                      got == 1 ? r.line : "no reply"))
            ms[n++] = (double)(plt_get_i64(&r, "t") - released) / 1e6;
        plt_reply_free(&r);
        if (got == 1)
            sc_release(b, "l");
    }
    if (n > 0) {
        double bound =
            b->wait_poll ? HANDOFF_INTERVAL + TIMEOUT_SLACK : HANDOFF_BOUND;
        qsort(ms, (size_t)n, sizeof(ms[0]), dbl_cmp);
        plt_measure("handoff_ms_median", ms[n / 2]);
        plt_measure("handoff_ms_min", ms[0]);
        plt_measure("handoff_ms_max", ms[n - 1]);
        plt_observe("wait", "%s", b->wait_poll ? "poll" : "kernel");
        plt_check(ms[n / 2] < bound * 1e3,
                  "median hand-off %.1f ms (min %.1f, max %.1f) with "
                  "check_interval %.0f ms: the waiter %s (want < %.0f ms)",
                  ms[n / 2], ms[0], ms[n - 1], HANDOFF_INTERVAL * 1e3,
                  b->wait_poll ? "sleeps past its polling interval"
                               : "polls instead of waking on release",
                  bound * 1e3);
    }
    plt_finish();
}

PLT_TEST(timing, release_on_death) {
    plt_proc_t *a = sc_begin("release_on_death", "lock", "crash");
    plt_proc_t *b = plt_start("b");
    plt_proc_t *c;
    plt_reply_t r;
    char path[4096];
    int64_t killed;
    int status, got;

    hold(a, plt_path(path, sizeof(path), "death.lock"));
    sc_open(b, "l", "lock", path, NULL);
    plt_send(b, "acquire id=l timeout=10 check_interval=0.05");
    got = plt_recv(b, &r, 0.1);
    plt_check(got == 0, "waiter answered while the lock was held: %s", r.line);
    plt_reply_free(&r);
    killed = plt_now_ns();
    plt_send(a, "crash");
    status = plt_wait_exit(a, 10);
    plt_check(
        plt_crashed(a, status), "holder did not die by SIGKILL%s (status 0x%x)",
        a->crash_terminate ? " or TerminateProcess (exit 137)" : "", status);
    got = plt_recv(b, &r, PLT_REPLY);
    if (plt_check(got == 1 && plt_is(&r, "acquired"),
                  "waiter after the holder was killed: %s",
                  got == 1 ? r.line : "no reply")) {
        double s = (double)(plt_get_i64(&r, "t") - killed) / 1e9;
        plt_measure("takeover_ms", s * 1e3);
        plt_check(s < DEATH_BOUND,
                  "took %.3f s to take over from a killed holder (bound %.1f "
                  "s)",
                  s, DEATH_BOUND);
    }
    if (!plt_is(&r, "acquired")) {
        plt_reply_free(&r);
        plt_finish();
        return;
    }
    plt_reply_free(&r);
    /* Killed from outside: SIGKILL of b's process by its pid. */
    c = plt_start("c");
    sc_open(c, "l", "lock", path, NULL);
    plt_send(c, "acquire id=l timeout=10 check_interval=0.05");
    got = plt_recv(c, &r, 0.1);
    plt_check(got == 0, "second waiter answered while the lock was held: %s",
              r.line);
    plt_reply_free(&r);
    killed = plt_now_ns();
    plt_kill(b);
    got = plt_recv(c, &r, PLT_REPLY);
    if (plt_check(got == 1 && plt_is(&r, "acquired"),
                  "waiter after the holder got SIGKILL from the suite: %s",
                  got == 1 ? r.line : "no reply")) {
        double s = (double)(plt_get_i64(&r, "t") - killed) / 1e9;
        plt_measure("takeover_sigkill_ms", s * 1e3);
        plt_check(s < DEATH_BOUND,
                  "took %.3f s to take over from a holder killed by SIGKILL "
                  "(bound %.1f s)",
                  s, DEATH_BOUND);
    }
    plt_reply_free(&r);
    plt_finish();
}
