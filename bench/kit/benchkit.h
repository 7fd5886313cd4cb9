/*
 * benchkit.h -- shared pieces of the portalock benchmark programs: clocks,
 * sample statistics, JSON output, raw lock syscalls (the physical limit),
 * and the "actor" protocol used to measure handoffs between processes.
 *
 * Actor protocol (one line per message, over a pipe pair):
 *   coordinator -> actor      actor -> coordinator
 *   "acquire"                 "held" | "err <text>"
 *   "release"                 "released <t0_ns>"   (t0 read just before the
 *                                                   release call)
 *   "wait"                    "ready", then after acquiring (with a timeout)
 *                             and releasing: "acq <t1_ns>" (t1 read right
 *                             after the acquire returned) | "err <text>"
 *   "quit"                    (exits)
 * Times are CLOCK_MONOTONIC nanoseconds, comparable across processes.  The
 * Python drivers (bench/drivers/) speak the same protocol.
 */
#ifndef PL_BENCHKIT_H
#define PL_BENCHKIT_H

#include "portalock.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clocks -------------------------------------------------------------- */

int64_t bk_now_ns(void); /* CLOCK_MONOTONIC */
void bk_sleep_ns(int64_t ns);

/* ---- samples ------------------------------------------------------------- */

typedef struct bk_samples {
    int64_t *v;
    size_t n, cap;
} bk_samples_t;

typedef struct bk_stats {
    size_t n;
    double min, p50, p90, p99, max, mean; /* nanoseconds */
} bk_stats_t;

void bk_samples_init(bk_samples_t *s);
void bk_samples_add(bk_samples_t *s, int64_t ns);
void bk_samples_free(bk_samples_t *s);
/* Sorts the samples in place. */
bk_stats_t bk_stats(bk_samples_t *s);
/* {"n":..,"min_ns":..,"p50_ns":..,...} */
void bk_stats_json(FILE *out, const bk_stats_t *st);
/* "p50 4.1 us  p99 9.0 us  (n=2000)" */
void bk_stats_line(char *buf, size_t len, const bk_stats_t *st);
/* "4.10 us", "1.20 ms"... */
void bk_fmt_ns(char *buf, size_t len, double ns);
/* Writes s as a JSON string literal (with quotes). */
void bk_json_str(FILE *out, const char *s);

/* ---- progress (stderr) --------------------------------------------------- */

void bk_progress(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- raw syscalls: the physical limit ------------------------------------ */

/* open(path, O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0644): portalocker's "a". */
int bk_raw_open(const char *path);
/* Exclusive lock of the whole file; blocking or not.  0 or an errno value. */
int bk_raw_lock(int fd, pl_backend_t backend, int blocking);
int bk_raw_unlock(int fd, pl_backend_t backend);

/* ---- process helpers ------------------------------------------------------
 */

/*
 * Waits until every thread of pid sleeps (state S or D in
 * /proc/pid/task/x/stat), then settle_ns more, and checks again.  Returns 0
 * when seen blocked, -1 after max_ns.
 */
int bk_wait_blocked(pid_t pid, int64_t settle_ns, int64_t max_ns);
/* Creates a fresh directory under base ("portalock-bench.XXXXXX"). */
char *bk_mkdtemp(const char *base);
/* Removes the files directly inside dir, then dir. */
void bk_rmdir_flat(const char *dir);

/* ---- actors ----------------------------------------------------------------
 */

/*
 * Spec of an actor:
 *   raw:<backend>            open once, blocking lock syscall (the limit)
 *   ours:<backend>           pl_lock_open + pl_lock_acquire (Lock object,
 *                            timed acquire), pl_lock_release
 *   oursinf:<backend>        the same with timeout -1 (wait forever)
 *   ourssig:<backend>        ours with pl_set_wait_signal(SIGRTMIN + 1): the
 *                            waiter blocks in the kernel itself
 *   oursfd:<backend>         open once, pl_lock_fd_timed / pl_unlock_fd
 *   oursfdsig:<backend>      oursfd with pl_set_wait_signal(SIGRTMIN + 1)
 *   redis:<host>:<port>      pl_redis_lock_open on the channel, acquire with
 *                            a timeout, release
 *   cmd:<shell command>      an external program speaking the protocol
 * The target (file path or Redis channel) is appended as the last argument of
 * a cmd actor.
 */
typedef struct bk_actor {
    pid_t pid;
    FILE *in;  /* we write commands here */
    FILE *out; /* we read replies here */
    char spec[512];
} bk_actor_t;

/* Starts an actor on target; wait_timeout is the waiter's acquire timeout. */
int bk_actor_start(bk_actor_t *a, const char *spec, const char *target,
                   double wait_timeout, char *err, size_t errlen);
/* Sends cmd and reads one reply line into buf (newline stripped); -1 on EOF or
 * after timeout_s. */
int bk_actor_cmd(bk_actor_t *a, const char *cmd, char *buf, size_t len,
                 double timeout_s);
int bk_actor_read(bk_actor_t *a, char *buf, size_t len, double timeout_s);
/* Sends quit, waits up to 2 s, then SIGKILLs. */
void bk_actor_stop(bk_actor_t *a);
void bk_actor_kill(bk_actor_t *a); /* SIGKILL + reap */

typedef struct bk_handoff_cfg {
    const char *holder;        /* actor spec, e.g. "raw:flock" */
    const char *waiter;        /* actor spec */
    const char *target;        /* lock file path or Redis channel */
    const char *holder_target; /* NULL = target; e.g. the same file through
                                  a second mount */
    int kill_holder;           /* 1: SIGKILL the holder instead of releasing */
    size_t rounds;
    double budget_s;     /* stop early after this long (0 = no limit) */
    int64_t settle_ns;   /* extra wait after the waiter is seen blocked */
    int64_t jitter_ns;   /* random extra delay in [0, jitter) before the
                            release: a polling waiter is caught at a random
                            phase of its schedule */
    double wait_timeout; /* waiter's acquire timeout, seconds */
    const char *label;   /* progress text */
} bk_handoff_cfg_t;

typedef struct bk_handoff_result {
    bk_samples_t samples; /* release (or kill) -> waiter's acquire returned */
    size_t early;         /* waiter returned before the release: exclusion
                             broken (should be 0) */
    size_t not_blocked;   /* rounds where the waiter was not seen asleep */
    char error[256];      /* "" if all went well */
} bk_handoff_result_t;

/* Runs the handoff measurement; fills r (init'd by the call). 0 or -1. */
int bk_handoff_run(const bk_handoff_cfg_t *cfg, bk_handoff_result_t *r);

/* The actor loop itself (for programs that re-exec themselves as actors). */
int bk_actor_main(const char *spec, const char *target, double wait_timeout,
                  FILE *in, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* PL_BENCHKIT_H */
