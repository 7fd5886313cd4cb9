/*
 * stress_util.h -- what the stress programs (storm/, faults/, crash/) share:
 * a monotonic clock, a per-thread random stream, memory shared with forked
 * children, a private work directory, leak probes (descriptors, threads,
 * directory entries) and named checks with one summary line.
 *
 * Plain C without Criterion, so every program also runs under
 * ThreadSanitizer and valgrind.
 */
#ifndef PS_STRESS_UTIL_H
#define PS_STRESS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds (system-wide: comparable across
 * processes). */
int64_t ps_now_ns(void);
void ps_sleep_us(long us);

/* xorshift64*; seed with ps_rng_seed (never 0). */
typedef struct ps_rng {
    uint64_t s;
} ps_rng_t;
void ps_rng_seed(ps_rng_t *r, uint64_t seed);
uint64_t ps_rng_next(ps_rng_t *r);
/* Uniform in [0, n); n > 0. */
unsigned ps_rng_below(ps_rng_t *r, unsigned n);

/* Zeroed memory shared with children forked afterwards; exits on failure. */
void *ps_shared_alloc(size_t len);
void ps_shared_free(void *p, size_t len);

/* Creates "<base>/<prefix>.XXXXXX" into out; base NULL = $TMPDIR or /tmp. */
int ps_workdir(char *out, size_t len, const char *base, const char *prefix);
/* Removes a tree, ignoring errors. */
void ps_rmtree(const char *path);

/* kill(2) that refuses pid <= 0: kill(-1, ...) would signal every process
 * the caller may signal (all of them, as root). */
int ps_kill(long pid, int sig);

/* Open descriptors of this process (/proc/self/fd). */
int ps_count_fds(void);
/* Threads of this process (/proc/self/task). */
int ps_count_threads(void);
/* Waits up to ms for the thread count to drop to want (detached helper
 * threads finish a moment after the call that started them returned);
 * returns the last count seen. */
int ps_wait_threads(int want, int ms);
/* Entries of dir whose name contains needle (NULL = all); "." and ".."
 * excluded; -1 if unreadable.  The first match is copied to first. */
int ps_dir_count(const char *dir, const char *needle, char *first,
                 size_t first_len);

/* Sets the modification time of every entry of dir whose name contains
 * needle to `seconds` ago; returns how many. */
int ps_backdate(const char *dir, const char *needle, int seconds);

/*
 * Named checks: ps_check("storm.overlap", ok, "detail %d", x) counts a pass
 * or prints "FAIL storm.overlap: detail" to stderr.  ps_checks_summary()
 * prints "<prog>: N checks passed, M failed" and returns M.
 */
void ps_check(const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ps_checks_failed(void);
int ps_checks_summary(const char *prog);

/* Parses a non-negative integer / double option value; exits 64 if bad. */
long ps_parse_long(const char *opt, const char *s, long lo, long hi);
double ps_parse_double(const char *opt, const char *s, double lo, double hi);

#endif /* PS_STRESS_UTIL_H */
