/*
 * test_gbench -- the C API of gbench.h, exercised from C.  Each benchmark
 * checks what it can see itself (arguments, the loop count, threads) and
 * reports a mismatch with plgb_skip_with_error; check_gbench.py then reads
 * the JSON report for what only the library sees (names with arguments,
 * label, counters, paused time left out, the error run).
 *
 *   test_gbench --benchmark_out=F --benchmark_out_format=json
 *               --benchmark_min_time=0.01
 * Exit status 1 if a benchmark found a mismatch.
 */
#include "gbench.h"

#include <stdio.h>
#include <time.h>

static int failures;

static void fail(plgb_state_t *st, const char *msg) {
    failures++;
    plgb_skip_with_error(st, msg);
}

/* Arguments: BM_C_Args with Arg(3), BM_C_Args2 with Args(4, 5) and
 * Args(6, 7) (a second argument is y = x + 1). */
static void bm_args(plgb_state_t *st, void *arg) {
    int64_t a0 = plgb_range_arg(st, 0);
    while (plgb_keep_running(st)) {
    }
    if (arg == NULL ? a0 != 3
                    : (a0 != 4 && a0 != 6) || plgb_range_arg(st, 1) != a0 + 1)
        fail(st, "unexpected arguments");
}

/* The loop runs exactly plgb_iterations() times; arg reaches the body. */
static void bm_loop(plgb_state_t *st, void *arg) {
    int64_t n = 0;
    int *magic = arg;
    if (magic == NULL || *magic != 42) {
        fail(st, "arg not passed");
        return;
    }
    while (plgb_keep_running(st))
        n++;
    if (n != plgb_iterations(st) || n < 1)
        fail(st, "loop count differs from iterations()");
    plgb_set_label(st, "c-label");
    plgb_set_counter(st, "loops", (double)n, PLGB_COUNTER_DEFAULT);
    plgb_set_counter(st, "loop_rate", (double)n, PLGB_COUNTER_RATE);
    plgb_set_items_processed(st, n);
}

/* 2 ms of sleep per iteration, paused: the reported time must stay far
 * below 2 ms per iteration (check_gbench.py). */
static void bm_paused(plgb_state_t *st, void *arg) {
    struct timespec ts = {0, 2000000};
    (void)arg;
    while (plgb_keep_running(st)) {
        plgb_pause_timing(st);
        nanosleep(&ts, NULL);
        plgb_resume_timing(st);
    }
}

static void bm_error(plgb_state_t *st, void *arg) {
    (void)arg;
    plgb_skip_with_error(st, "deliberate error from C");
    while (plgb_keep_running(st)) {
    }
}

static void bm_threads(plgb_state_t *st, void *arg) {
    int i = plgb_thread_index(st);
    (void)arg;
    while (plgb_keep_running(st)) {
    }
    if (plgb_thread_count(st) != 2 || i < 0 || i > 1)
        fail(st, "thread index or count");
}

int main(int argc, char **argv) {
    static int magic = 42;
    int rc;

    plgb_arg(plgb_register("BM_C_Args", bm_args, NULL), 3);
    plgb_args2(plgb_args2(plgb_register("BM_C_Args2", bm_args, &magic), 4, 5),
               6, 7);
    plgb_use_real_time(plgb_register("BM_C_Loop", bm_loop, &magic));
    plgb_iterations_fixed(
        plgb_use_real_time(plgb_register("BM_C_Paused", bm_paused, NULL)), 20);
    plgb_register("BM_C_Error", bm_error, NULL);
    plgb_threads(plgb_register("BM_C_Threads", bm_threads, NULL), 2);
    plgb_add_context("from_c", "yes");
    rc = plgb_main(&argc, argv);
    if (failures != 0)
        fprintf(stderr, "test_gbench: %d check(s) failed\n", failures);
    return rc != 0 || failures != 0;
}
