// gbench.cc -- the C API of gbench.h over Google Benchmark 1.7 (C++).
// A plgb_state_t* is a benchmark::State*, a plgb_bench_t* a
// benchmark::internal::Benchmark*: the casts below are the whole bridge.
#include "gbench.h"

#include <benchmark/benchmark.h>

#include <string>

namespace {

benchmark::State *S(plgb_state_t *st) {
    return reinterpret_cast<benchmark::State *>(st);
}
const benchmark::State *S(const plgb_state_t *st) {
    return reinterpret_cast<const benchmark::State *>(st);
}
benchmark::internal::Benchmark *B(plgb_bench_t *b) {
    return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}
plgb_bench_t *C(benchmark::internal::Benchmark *b) {
    return reinterpret_cast<plgb_bench_t *>(b);
}

} // namespace

extern "C" {

plgb_bench_t *plgb_register(const char *name, plgb_fn fn, void *arg) {
    return C(
        benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &st) {
            fn(reinterpret_cast<plgb_state_t *>(&st), arg);
        }));
}

plgb_bench_t *plgb_arg(plgb_bench_t *b, int64_t x) {
    return C(B(b)->Arg(x));
}
plgb_bench_t *plgb_args2(plgb_bench_t *b, int64_t x, int64_t y) {
    return C(B(b)->Args({x, y}));
}
plgb_bench_t *plgb_range(plgb_bench_t *b, int64_t lo, int64_t hi) {
    return C(B(b)->Range(lo, hi));
}
plgb_bench_t *plgb_arg_name(plgb_bench_t *b, const char *name) {
    return C(B(b)->ArgName(name));
}
plgb_bench_t *plgb_use_real_time(plgb_bench_t *b) {
    return C(B(b)->UseRealTime());
}
plgb_bench_t *plgb_threads(plgb_bench_t *b, int n) {
    return C(B(b)->Threads(n));
}
plgb_bench_t *plgb_iterations_fixed(plgb_bench_t *b, int64_t n) {
    return C(B(b)->Iterations(static_cast<benchmark::IterationCount>(n)));
}

int plgb_keep_running(plgb_state_t *st) {
    return S(st)->KeepRunning();
}
int64_t plgb_range_arg(const plgb_state_t *st, int i) {
    return S(st)->range(static_cast<std::size_t>(i));
}
int64_t plgb_iterations(const plgb_state_t *st) {
    return static_cast<int64_t>(S(st)->iterations());
}
int plgb_thread_index(const plgb_state_t *st) {
    return S(st)->thread_index();
}
int plgb_thread_count(const plgb_state_t *st) {
    return S(st)->threads();
}
void plgb_pause_timing(plgb_state_t *st) {
    S(st)->PauseTiming();
}
void plgb_resume_timing(plgb_state_t *st) {
    S(st)->ResumeTiming();
}
void plgb_skip_with_error(plgb_state_t *st, const char *msg) {
    S(st)->SkipWithError(msg);
}
void plgb_set_label(plgb_state_t *st, const char *label) {
    S(st)->SetLabel(label);
}
void plgb_set_items_processed(plgb_state_t *st, int64_t n) {
    S(st)->SetItemsProcessed(n);
}
void plgb_set_bytes_processed(plgb_state_t *st, int64_t n) {
    S(st)->SetBytesProcessed(n);
}
void plgb_set_counter(plgb_state_t *st, const char *name, double value,
                      int flags) {
    int f = 0;
    if (flags & PLGB_COUNTER_RATE)
        f |= benchmark::Counter::kIsRate;
    if (flags & PLGB_COUNTER_AVG_THREADS)
        f |= benchmark::Counter::kAvgThreads;
    if (flags & PLGB_COUNTER_ITER_INVARIANT)
        f |= benchmark::Counter::kIsIterationInvariant;
    if (flags & PLGB_COUNTER_AVG_ITERS)
        f |= benchmark::Counter::kAvgIterations;
    if (flags & PLGB_COUNTER_INVERT)
        f |= benchmark::Counter::kInvert;
    S(st)->counters[name] =
        benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(f));
}

void plgb_initialize(int *argc, char **argv) {
    benchmark::Initialize(argc, argv);
}
int plgb_report_unrecognized(int argc, char **argv) {
    return benchmark::ReportUnrecognizedArguments(argc, argv) ? 1 : 0;
}
void plgb_add_context(const char *key, const char *value) {
    benchmark::AddCustomContext(key, value);
}
int64_t plgb_run(void) {
    return static_cast<int64_t>(benchmark::RunSpecifiedBenchmarks());
}
void plgb_shutdown(void) {
    benchmark::Shutdown();
}
int plgb_main(int *argc, char **argv) {
    plgb_initialize(argc, argv);
    if (plgb_report_unrecognized(*argc, argv))
        return 1;
    plgb_run();
    plgb_shutdown();
    return 0;
}

} // extern "C"
