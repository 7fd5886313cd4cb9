/*
 * gbench.h -- Google Benchmark from C.
 *
 * A small C API over Google Benchmark (C++) so that benchmarks -- ours and a
 * porter's -- are plain C functions:
 *
 *   static void bm_cycle(plgb_state_t *st, void *arg) {
 *       pl_lock_t *lock = arg;
 *       while (plgb_keep_running(st)) {       (the timed loop)
 *           if (pl_lock_acquire(lock) != PL_OK) {
 *               plgb_skip_with_error(st, pl_lock_errmsg(lock));
 *               break;
 *           }
 *           pl_lock_release(lock);
 *       }
 *       plgb_set_items_processed(st, plgb_iterations(st));
 *   }
 *   ...
 *   plgb_use_real_time(plgb_register("BM_Flock_Cycle", bm_cycle, lock));
 *   return plgb_main(&argc, argv);   (or the steps plgb_main takes)
 *
 * The state and benchmark handles are the library's own objects, valid
 * only inside the call that hands them out.  Names follow the C++ API
 * (State::KeepRunning, range(i), counters[...], SetLabel, PauseTiming...).
 * Built against libbenchmark 1.7 (Debian 12).
 */
#ifndef PL_GBENCH_H
#define PL_GBENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct plgb_state plgb_state_t; /* benchmark::State */
typedef struct plgb_bench plgb_bench_t; /* benchmark::internal::Benchmark */

/* A benchmark body: runs the timed loop with plgb_keep_running. */
typedef void (*plgb_fn)(plgb_state_t *st, void *arg);

/* ---- registration (before plgb_run) ---------------------------------------
 */

/* Registers fn(st, arg) as benchmark name (copied).  Never NULL. */
plgb_bench_t *plgb_register(const char *name, plgb_fn fn, void *arg);
/* Each returns b, so calls can be nested like the C++ chain. */
plgb_bench_t *plgb_arg(plgb_bench_t *b, int64_t x);              /* ->Arg(x) */
plgb_bench_t *plgb_args2(plgb_bench_t *b, int64_t x, int64_t y); /* Args */
plgb_bench_t *plgb_range(plgb_bench_t *b, int64_t lo, int64_t hi);
plgb_bench_t *plgb_arg_name(plgb_bench_t *b, const char *name);
plgb_bench_t *plgb_use_real_time(plgb_bench_t *b);
plgb_bench_t *plgb_threads(plgb_bench_t *b, int n);
plgb_bench_t *plgb_iterations_fixed(plgb_bench_t *b, int64_t n);

/* ---- inside a benchmark ----------------------------------------------------
 */

/* True while the loop should go on (State::KeepRunning). */
int plgb_keep_running(plgb_state_t *st);
/* State::range(i): the i-th argument of this run. */
int64_t plgb_range_arg(const plgb_state_t *st, int i);
int64_t plgb_iterations(const plgb_state_t *st);
int plgb_thread_index(const plgb_state_t *st);
int plgb_thread_count(const plgb_state_t *st);
/* Stop and restart the clock (State::PauseTiming/ResumeTiming): work in
 * between is not timed. */
void plgb_pause_timing(plgb_state_t *st);
void plgb_resume_timing(plgb_state_t *st);
/* State::SkipWithError: the run is reported as an error with msg. */
void plgb_skip_with_error(plgb_state_t *st, const char *msg);
/* State::SetLabel. */
void plgb_set_label(plgb_state_t *st, const char *label);
void plgb_set_items_processed(plgb_state_t *st, int64_t n);
void plgb_set_bytes_processed(plgb_state_t *st, int64_t n);

/* Counter flags (OR them); mapped to benchmark::Counter::Flags. */
#define PLGB_COUNTER_DEFAULT        0
#define PLGB_COUNTER_RATE           1  /* kIsRate: value / seconds */
#define PLGB_COUNTER_AVG_THREADS    2  /* kAvgThreads: value / threads */
#define PLGB_COUNTER_ITER_INVARIANT 4  /* kIsIterationInvariant: * iters */
#define PLGB_COUNTER_AVG_ITERS      8  /* kAvgIterations: value / iters */
#define PLGB_COUNTER_INVERT         16 /* kInvert: 1 / value */
/* state.counters[name] = Counter(value, flags). */
void plgb_set_counter(plgb_state_t *st, const char *name, double value,
                      int flags);

/* ---- running ----------------------------------------------------------------
 */

/* benchmark::Initialize: consumes the --benchmark_* flags from argv. */
void plgb_initialize(int *argc, char **argv);
/* Non-zero (after a message) if argv still holds unknown arguments. */
int plgb_report_unrecognized(int argc, char **argv);
/* benchmark::AddCustomContext: a key/value in the report's context. */
void plgb_add_context(const char *key, const char *value);
/* RunSpecifiedBenchmarks; returns how many ran. */
int64_t plgb_run(void);
void plgb_shutdown(void);
/* All of the above in order; returns 0, or 1 on unknown arguments. */
int plgb_main(int *argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* PL_GBENCH_H */
