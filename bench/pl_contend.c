/*
 * pl_contend -- N processes (not threads) contend for one lock for a fixed
 * time: throughput, handoff latency (previous holder's release -> next
 * holder's acquire, when the holder changes process), fairness (per-process
 * acquisitions: min/max and Jain's index) and an exclusion check.
 *
 *   pl_contend --impl IMPL [--backend B] --target PATH|CHANNEL --procs N
 *              [--seconds S] [--slots M] [--hold-us U] [--redis HOST:PORT]
 *              [--json FILE] [--wait-signal SIGNO]
 *
 * IMPL: ours (Lock object, timed acquire: open + lock ... unlock + close),
 * oursfd (pl_lock_fd_timed on an open descriptor), raw (open + blocking
 * lock + unlock + close), rawfd (blocking lock syscall on an open
 * descriptor), sem (pl_semaphore_acquire over M slots in PATH's directory),
 * redis (pl_redis_lock on channel PATH).  --wait-signal SIGNO makes every
 * process call pl_set_wait_signal(SIGNO) first (the opt-in wait).
 */
#include "benchkit.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXP 128
#define CAP  32768 /* handoff samples kept per process */

typedef struct shared {
    atomic_int stop;
    atomic_int inside;
    atomic_int max_inside;
    atomic_int errors;
    int64_t t_rel;  /* written by the holder (exclusive kinds only) */
    int last_owner; /* idem */
    long count[MAXP];
    long nsamp[MAXP];
    char err[256];
} shared_t;

typedef struct cfg {
    const char *impl;
    pl_backend_t backend;
    const char *target;
    const char *redis;
    int procs, slots;
    double seconds, hold_us;
    int wait_signal; /* --wait-signal SIG: pl_set_wait_signal(SIG) */
} cfg_t;

static int exclusive(const cfg_t *c) {
    return strcmp(c->impl, "sem") != 0;
}

static void fail(shared_t *sh, const char *what) {
    if (atomic_fetch_add(&sh->errors, 1) == 0)
        snprintf(sh->err, sizeof sh->err, "%s", what);
}

static void child(const cfg_t *c, shared_t *sh, int64_t *samples, int me,
                  int go_fd) {
    pl_lock_t *lock = NULL;
    pl_semaphore_t *sem = NULL;
    pl_lock_options_t o;
    int fd = -1, rc = PL_OK;
    char buf[1], msg[300];
    const int ex = exclusive(c);
    const char *impl = c->impl;

    int64_t hard_stop;

    /* never outlive the parent, never loop unbounded */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    hard_stop = bk_now_ns() + (int64_t)((c->seconds + 120) * 1e9);
    pl_lock_options_init(&o);
    o.backend = c->backend;
    o.timeout = 60;
    if (c->wait_signal != 0 &&
        pl_set_wait_signal(c->wait_signal, NULL) != PL_OK)
        _exit(1);
    if (strcmp(impl, "ours") == 0) {
        rc = pl_lock_open(&lock, c->target, &o);
    } else if (strcmp(impl, "redis") == 0) {
        pl_redis_options_t ro;
        char hp[300], *colon;
        pl_redis_options_init(&ro);
        snprintf(hp, sizeof hp, "%s", c->redis ? c->redis : "127.0.0.1:6379");
        colon = strrchr(hp, ':');
        if (colon != NULL) {
            *colon = '\0';
            ro.port = atoi(colon + 1);
        }
        ro.host = hp;
        ro.timeout = 60;
        rc = pl_redis_lock_open(&lock, c->target, &ro);
    } else if (strcmp(impl, "sem") == 0) {
        char dir[4096];
        const char *slash = strrchr(c->target, '/');
        size_t dl = slash ? (size_t)(slash - c->target) : 1;
        if (dl >= sizeof dir)
            dl = sizeof dir - 1;
        memcpy(dir, slash ? c->target : ".", dl);
        dir[dl] = '\0';
        o.fail_when_locked = 0;
        rc = pl_semaphore_open(&sem, (unsigned)c->slots,
                               slash ? slash + 1 : c->target, dir, &o);
    } else if (strcmp(impl, "oursfd") == 0 || strcmp(impl, "rawfd") == 0) {
        fd = bk_raw_open(c->target);
        if (fd < 0)
            rc = PL_EOS;
    }
    if (rc != PL_OK) {
        snprintf(msg, sizeof msg, "%s setup: %s", impl, pl_strerror(rc));
        fail(sh, msg);
        _exit(1);
    }
    /* start barrier: the parent closes the write end */
    while (read(go_fd, buf, 1) < 0 && errno == EINTR)
        ;
    while (!atomic_load(&sh->stop) && bk_now_ns() < hard_stop) {
        int64_t t_acq;
        int in, m;
        pl_error_t e;
        int tfd = -1;
        if (lock != NULL) {
            rc = pl_lock_acquire(lock);
            if (rc != PL_OK)
                snprintf(msg, sizeof msg, "acquire: %s", pl_lock_errmsg(lock));
        } else if (sem != NULL) {
            rc = pl_semaphore_acquire(sem);
            if (rc != PL_OK)
                snprintf(msg, sizeof msg, "sem acquire: %s",
                         pl_semaphore_errmsg(sem));
        } else if (strcmp(impl, "oursfd") == 0) {
            rc =
                pl_lock_fd_timed((pl_fd_t)fd, PL_EXCLUSIVE, c->backend, 60, &e);
            if (rc != PL_OK)
                snprintf(msg, sizeof msg, "pl_lock_fd_timed: %s", e.msg);
        } else {
            tfd = fd >= 0 ? fd : bk_raw_open(c->target);
            rc = tfd < 0 ? errno : bk_raw_lock(tfd, c->backend, 1);
            if (rc != 0)
                snprintf(msg, sizeof msg, "lock: %s", strerror(rc));
        }
        if (rc != 0) {
            fail(sh, msg);
            break;
        }
        t_acq = bk_now_ns();
        in = atomic_fetch_add(&sh->inside, 1) + 1;
        m = atomic_load(&sh->max_inside);
        while (in > m && !atomic_compare_exchange_weak(&sh->max_inside, &m, in))
            ;
        if (ex && sh->last_owner >= 0 && sh->last_owner != me &&
            sh->nsamp[me] < CAP)
            samples[sh->nsamp[me]++] = t_acq - sh->t_rel;
        sh->count[me]++;
        if (c->hold_us > 0)
            bk_sleep_ns((int64_t)(c->hold_us * 1000));
        if (ex) {
            sh->last_owner = me;
            sh->t_rel = bk_now_ns();
        }
        atomic_fetch_sub(&sh->inside, 1);
        if (lock != NULL) {
            rc = pl_lock_release(lock);
        } else if (sem != NULL) {
            rc = pl_semaphore_release(sem);
        } else if (strcmp(impl, "oursfd") == 0) {
            rc = pl_unlock_fd((pl_fd_t)fd, c->backend, &e);
        } else {
            rc = bk_raw_unlock(tfd, c->backend);
            if (tfd != fd)
                close(tfd);
        }
        if (rc != 0) {
            fail(sh, "release failed");
            break;
        }
    }
    pl_lock_close(lock);
    pl_semaphore_close(sem);
    if (fd >= 0)
        close(fd);
    _exit(0);
}

static void usage(void) {
    fprintf(stderr, "usage: pl_contend --impl IMPL [--backend B] --target T "
                    "--procs N [--seconds S] [--slots M] [--hold-us U] "
                    "[--redis HOST:PORT] [--json FILE]\n");
}

int main(int argc, char **argv) {
    cfg_t c;
    const char *json = NULL, *bname = "flock";
    shared_t *sh;
    int64_t *samples;
    pid_t pids[MAXP];
    int go[2], i, p, alive;
    int64_t t_start, t_end;
    bk_samples_t all;
    bk_stats_t st;
    long total = 0, cmin = -1, cmax = 0;
    double sum = 0, sumsq = 0, jain = 0, dur;
    FILE *out = stdout;

    memset(&c, 0, sizeof c);
    c.impl = "ours";
    c.procs = 2;
    c.slots = 2;
    c.seconds = 2;
    for (i = 1; i < argc; i += 2) { /* --option value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--impl") == 0)
            c.impl = v;
        else if (strcmp(a, "--backend") == 0)
            bname = v;
        else if (strcmp(a, "--target") == 0)
            c.target = v;
        else if (strcmp(a, "--procs") == 0)
            c.procs = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            c.seconds = atof(v);
        else if (strcmp(a, "--slots") == 0)
            c.slots = atoi(v);
        else if (strcmp(a, "--hold-us") == 0)
            c.hold_us = atof(v);
        else if (strcmp(a, "--redis") == 0)
            c.redis = v;
        else if (strcmp(a, "--json") == 0)
            json = v;
        else if (strcmp(a, "--wait-signal") == 0)
            c.wait_signal = atoi(v); /* e.g. 35 = SIGRTMIN + 1 on glibc */
        else {
            usage();
            return 2;
        }
    }
    if (c.target == NULL || c.procs < 1 || c.procs > MAXP || c.slots < 1 ||
        c.seconds <= 0 || pl_backend_from_name(bname, &c.backend) != PL_OK) {
        usage();
        return 2;
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    samples = mmap(NULL, sizeof(int64_t) * CAP * (size_t)c.procs,
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || samples == MAP_FAILED || pipe(go) != 0) {
        perror("pl_contend: mmap/pipe");
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    sh->last_owner = -1;
    fflush(NULL);
    for (p = 0; p < c.procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0) {
            perror("fork");
            atomic_store(&sh->stop, 1);
            c.procs = p;
            break;
        }
        if (pids[p] == 0) {
            close(go[1]);
            child(&c, sh, samples + (size_t)p * CAP, p, go[0]);
        }
    }
    close(go[0]);
    bk_sleep_ns(50000000); /* let every child open its lock */
    t_start = bk_now_ns();
    close(go[1]);
    bk_sleep_ns((int64_t)(c.seconds * 1e9));
    atomic_store(&sh->stop, 1);
    t_end = bk_now_ns();
    /* reap, bounded: holders finish their current cycle at once */
    for (i = 0, alive = c.procs; i < 3000 && alive > 0; i++) {
        alive = 0;
        for (p = 0; p < c.procs; p++) {
            if (pids[p] > 0) {
                if (waitpid(pids[p], NULL, WNOHANG) == pids[p])
                    pids[p] = 0;
                else
                    alive++;
            }
        }
        if (alive)
            bk_sleep_ns(10000000);
    }
    for (p = 0; p < c.procs; p++) {
        if (pids[p] > 0) {
            kill(pids[p], SIGKILL);
            waitpid(pids[p], NULL, 0);
            fail(sh, "a contender did not stop within 30 s");
        }
    }
    dur = (double)(t_end - t_start) / 1e9;
    bk_samples_init(&all);
    for (p = 0; p < c.procs; p++) {
        long k;
        long n = sh->count[p];
        total += n;
        sum += (double)n;
        sumsq += (double)n * (double)n;
        if (cmin < 0 || n < cmin)
            cmin = n;
        if (n > cmax)
            cmax = n;
        for (k = 0; k < sh->nsamp[p]; k++)
            bk_samples_add(&all, samples[(size_t)p * CAP + (size_t)k]);
    }
    if (sumsq > 0)
        jain = sum * sum / ((double)c.procs * sumsq);
    st = bk_stats(&all);
    if (json != NULL && (out = fopen(json, "w")) == NULL) {
        perror(json);
        return 1;
    }
    fprintf(out, "{\"tool\": \"pl_contend\", \"impl\": ");
    bk_json_str(out, c.impl);
    fprintf(out, ", \"backend\": ");
    bk_json_str(out, bname);
    fprintf(out,
            ", \"procs\": %d, \"slots\": %d, \"hold_us\": %g, \"seconds\": "
            "%.3f, \"total\": %ld, \"throughput_per_s\": %.1f, "
            "\"per_process_min\": %ld, \"per_process_max\": %ld, "
            "\"min_max_ratio\": %.4f, \"jain\": %.4f, \"max_inside\": %d, "
            "\"exclusion_ok\": %s, \"counts\": [",
            c.procs, exclusive(&c) ? 1 : c.slots, c.hold_us, dur, total,
            dur > 0 ? (double)total / dur : 0.0, cmin, cmax,
            cmax > 0 ? (double)cmin / (double)cmax : 0.0, jain,
            atomic_load(&sh->max_inside),
            atomic_load(&sh->max_inside) <= (exclusive(&c) ? 1 : c.slots)
                ? "true"
                : "false");
    for (p = 0; p < c.procs; p++)
        fprintf(out, "%s%ld", p ? ", " : "", sh->count[p]);
    fprintf(out, "], \"handoff\": ");
    bk_stats_json(out, &st);
    fprintf(out, ", \"ok\": %s, \"error\": ",
            atomic_load(&sh->errors) == 0 ? "true" : "false");
    bk_json_str(out, sh->err);
    fprintf(out, "}\n");
    if (out != stdout)
        fclose(out);
    bk_samples_free(&all);
    if (atomic_load(&sh->errors) != 0) {
        fprintf(stderr, "pl_contend %s: %s\n", c.impl, sh->err);
        return 3;
    }
    return 0;
}
