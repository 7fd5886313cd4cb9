/*
 * pl_storm -- kill storms: many processes (and threads, where the backend
 * allows) hammer one lock while the parent SIGKILLs holders and waiters, and
 * the run proves that the lock never admitted more holders than it should.
 *
 *   pl_storm [--backend all|flock,lockf,ofd] [--kind all|lock,rlock,...]
 *            [--procs P] [--threads T] [--acquisitions N] [--kills K]
 *            [--max-seconds S] [--semaphore N] [--dir DIR] [--seed X]
 *            [--no-tmpfile]
 *
 * --no-tmpfile refuses open(O_TMPFILE) through the pl__sys table, as NFS
 * does, so PidFileLocks publish through named temporary files: the path
 * where a kill can leave a ".tmp" (storm.leak.atomic_tmp).
 *
 * One run per backend x kind.  Kinds: lock, rlock (re-entered 1-3 deep),
 * temporary (TemporaryFileLock), pidfile (PidFileLock), semaphore
 * (BoundedSemaphore of --semaphore slots), mixed (Lock objects taking shared
 * or exclusive locks at random).  lockf locks belong to the process, so its
 * runs use one thread per process.
 *
 * Each worker thread owns its lock object and loops: acquire, record the
 * interval it held the lock in memory shared with the parent, do the
 * critical work (read-modify-write a counter file; a reader checks that the
 * counter does not move under it; a PidFileLock holder reads its own PID
 * back), sleep a random hold time, record the end, release.  The parent kills
 * a worker process each time another 1/(K+1) of the acquisitions is done,
 * alternating between a process with a thread holding the lock and one with
 * a thread waiting for it, and starts a replacement.
 *
 * Oracles, checked after every run:
 *   storm.overlap      no two recorded intervals overlap where one of them is
 *                      exclusive (semaphore: no slot twice, at most N at
 *                      once).  A killed holder's interval ends at the time
 *                      taken just before kill(): the lock is certainly still
 *                      held then, so the truncated interval is a sound
 *                      under-approximation.  Timestamps are CLOCK_MONOTONIC,
 *                      which is system-wide.
 *   storm.counter      the counter file equals the completed increments, plus
 *                      at most one per holder killed mid-increment.
 *   storm.reader       a shared holder never saw the counter change.
 *   storm.pidfile      a PidFileLock holder always read its own PID.
 *   storm.errors       no acquire or release failed.  PL_ETIMEDOUT after
 *                      the acquire timeout (30 s) is a correct answer (no
 *                      lock is fair): counted and printed as timeouts.
 *   storm.leak.fds / storm.leak.threads  every worker that ended normally
 *                      had as many descriptors as it started with and one
 *                      thread.
 *   storm.released     afterwards the lock is free at once (timeout 0).
 *   storm.leak.files   afterwards the directory holds only the counter and
 *                      the lock files the kind keeps (Lock, slots).
 *   storm.leak.atomic_tmp  no ".tmp" file left by a PidFileLock killed while
 *                      publishing its PID (issue 9, defect 1): the last
 *                      acquire, after the leftovers were aged past the
 *                      library's staleness bound, must have removed them.
 *
 * Prints one line per run and one summary line; exit 0 when every check
 * passed.
 */
#include "portalock.h"
#include "stress_util.h"
#include "sys_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS   64
#define MAX_THREADS 8

typedef enum kind {
    K_LOCK,
    K_RLOCK,
    K_TEMPORARY,
    K_PIDFILE,
    K_SEMAPHORE,
    K_MIXED,
    K_COUNT
} kind_t;

static const char *const kind_names[K_COUNT] = {
    "lock", "rlock", "temporary", "pidfile", "semaphore", "mixed"};

enum thread_state { ST_IDLE, ST_WAITING, ST_HOLDING };

/* One acquisition as its holder saw it. */
typedef struct rec {
    int64_t start, end; /* 0 = not reached (killed before) */
    int32_t inst;       /* worker process instance */
    int16_t slot;       /* semaphore slot, else -1 */
    uint8_t shared;     /* 1 = shared lock */
    uint8_t bumped;     /* the counter increment is complete */
} rec_t;

typedef struct shared {
    atomic_int stop;
    atomic_long acquired; /* completed acquire..release cycles */
    atomic_long next_rec;
    atomic_long errors, reader_moved, pid_mismatch;
    atomic_long timeouts; /* PL_ETIMEDOUT after acquire_timeout */
    atomic_int leak_fds, leak_threads;
    atomic_int state[MAX_PROCS][MAX_THREADS];
    atomic_int first_error_set;
    char first_error[512];
    long rec_cap;
    rec_t rec[];
} shared_t;

typedef struct config {
    unsigned backends; /* bit per pl_backend_t */
    unsigned kinds;    /* bit per kind_t */
    int procs, threads, semaphore;
    long acquisitions, kills;
    double max_seconds, acquire_timeout;
    const char *dir;
    uint64_t seed;
    int no_tmpfile;
} config_t;

/* What one run (backend x kind) needs; the workers read it after fork. */
typedef struct run {
    const config_t *cfg;
    pl_backend_t backend;
    kind_t kind;
    int threads;
    char workdir[512];
    char lock_path[600], counter_path[600];
    shared_t *sh;
    size_t sh_len;
} run_t;

typedef struct totals {
    int runs;
    long acquisitions, kills_holding, kills_waiting, kills_other;
    long overlaps, lost, errors, leaks, timeouts;
} totals_t;

/* ---- the worker side ----------------------------------------------------- */

typedef struct worker_ctx {
    const run_t *run;
    int slot, tid, inst;
    ps_rng_t rng;
} worker_ctx_t;

static void note_error(shared_t *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_error(shared_t *sh, const char *fmt, ...) {
    atomic_fetch_add(&sh->errors, 1);
    if (atomic_exchange(&sh->first_error_set, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->first_error, sizeof(sh->first_error), fmt, ap);
        va_end(ap);
    }
}

static long read_counter(const char *path) {
    char buf[32] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    return n >= 0 ? strtol(buf, NULL, 10) : -1;
}

static int write_counter(const char *path, long v) {
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", v);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int rc;
    if (fd < 0)
        return -1;
    rc = pwrite(fd, buf, (size_t)len, 0) == len ? 0 : -1;
    close(fd);
    return rc;
}

/* Mostly short holds so waiters queue up, sometimes long ones. */
static void random_hold(ps_rng_t *rng) {
    unsigned r = ps_rng_below(rng, 100);
    if (r < 40)
        return;
    if (r < 85)
        ps_sleep_us((long)ps_rng_below(rng, 60));
    else if (r < 97)
        ps_sleep_us(100 + (long)ps_rng_below(rng, 400));
    else
        ps_sleep_us(1000 + (long)ps_rng_below(rng, 2000));
}

typedef struct objects {
    pl_lock_t *lock, *shared_lock; /* shared_lock: mixed only */
    pl_semaphore_t *sem;
} objects_t;

static int open_objects(const run_t *run, objects_t *o) {
    pl_lock_options_t opts;
    int rc;

    memset(o, 0, sizeof(*o));
    pl_lock_options_init(&opts);
    opts.backend = run->backend;
    opts.timeout = run->cfg->acquire_timeout;
    opts.check_interval = 0.005;
    opts.fail_when_locked = 0;
    switch (run->kind) {
    case K_LOCK: return pl_lock_open(&o->lock, run->lock_path, &opts);
    case K_RLOCK: return pl_rlock_open(&o->lock, run->lock_path, &opts);
    case K_TEMPORARY:
        return pl_temporary_lock_open(&o->lock, run->lock_path, &opts);
    case K_PIDFILE:
        return pl_pidfile_lock_open(&o->lock, run->lock_path, &opts);
    case K_SEMAPHORE:
        return pl_semaphore_open(&o->sem, (unsigned)run->cfg->semaphore,
                                 "storm", run->workdir, &opts);
    case K_MIXED:
        opts.mode = "a+"; /* lockf's shared lock needs a readable fd */
        opts.flags = PL_EXCLUSIVE;
        if ((rc = pl_lock_open(&o->lock, run->lock_path, &opts)) != PL_OK)
            return rc;
        opts.flags = PL_SHARED;
        return pl_lock_open(&o->shared_lock, run->lock_path, &opts);
    default: return PL_EINVAL;
    }
}

static void close_objects(objects_t *o) {
    pl_lock_close(o->lock);
    pl_lock_close(o->shared_lock);
    pl_semaphore_close(o->sem);
}

static void *worker_thread(void *arg) {
    worker_ctx_t *c = arg;
    const run_t *run = c->run;
    shared_t *sh = run->sh;
    atomic_int *state = &sh->state[c->slot][c->tid];
    objects_t o;
    int rc;

    if ((rc = open_objects(run, &o)) != PL_OK) {
        note_error(sh, "open %s: %s", kind_names[run->kind], pl_err_name(rc));
        close_objects(&o);
        return NULL;
    }
    while (!atomic_load(&sh->stop)) {
        int shared = run->kind == K_MIXED && ps_rng_below(&c->rng, 3) != 0;
        pl_lock_t *lock = shared ? o.shared_lock : o.lock;
        int depth =
            run->kind == K_RLOCK ? 1 + (int)ps_rng_below(&c->rng, 3) : 1;
        long idx;
        rec_t *r;

        atomic_store(state, ST_WAITING);
        if (run->kind == K_SEMAPHORE)
            rc = pl_semaphore_acquire(o.sem);
        else
            rc = pl_lock_acquire(lock);
        for (int d = 1; rc == PL_OK && d < depth; d++)
            rc = pl_lock_acquire(lock);
        if (rc == PL_ETIMEDOUT && !pl_lock_is_held(lock)) {
            /* A correct answer, not a broken promise: no lock is fair, and
             * a waiter can lose every race for acquire_timeout seconds on a
             * loaded machine.  Counted and printed; the thread goes on. */
            atomic_store(state, ST_IDLE);
            atomic_fetch_add(&sh->timeouts, 1);
            continue;
        }
        if (rc != PL_OK) {
            atomic_store(state, ST_IDLE);
            note_error(sh, "%s/%s acquire: %s (%s)",
                       pl_backend_name(run->backend), kind_names[run->kind],
                       pl_err_name(rc),
                       run->kind == K_SEMAPHORE ? pl_semaphore_errmsg(o.sem)
                                                : pl_lock_errmsg(lock));
            break;
        }
        atomic_store(state, ST_HOLDING);
        idx = atomic_fetch_add(&sh->next_rec, 1);
        r = idx < sh->rec_cap ? &sh->rec[idx] : NULL;
        if (r != NULL) {
            r->inst = c->inst;
            r->shared = (uint8_t)shared;
            r->slot =
                (int16_t)(run->kind == K_SEMAPHORE ? pl_semaphore_slot(o.sem)
                                                   : -1);
            r->start = ps_now_ns();
        } else {
            atomic_store(&sh->stop, 1);
        }
        if (run->kind == K_SEMAPHORE) {
            random_hold(&c->rng);
        } else if (shared) {
            long before = read_counter(run->counter_path);
            random_hold(&c->rng);
            if (read_counter(run->counter_path) != before)
                atomic_fetch_add(&sh->reader_moved, 1);
        } else {
            long v = read_counter(run->counter_path);
            if (run->kind == K_PIDFILE) {
                long pid = 0;
                if (pl_pidfile_read(run->lock_path, &pid, NULL) != PL_OK ||
                    pid != (long)getpid())
                    atomic_fetch_add(&sh->pid_mismatch, 1);
            }
            random_hold(&c->rng);
            if (v < 0 || write_counter(run->counter_path, v + 1) != 0)
                note_error(sh, "counter file: %s", strerror(errno));
            else if (r != NULL)
                r->bumped = 1;
        }
        if (r != NULL)
            r->end = ps_now_ns();
        for (int d = 0; rc == PL_OK && d < depth; d++) {
            if (d == depth - 1 && run->kind == K_RLOCK &&
                pl_lock_count(lock) != 1)
                note_error(sh, "rlock count %d before the last release",
                           pl_lock_count(lock));
            rc = run->kind == K_SEMAPHORE ? pl_semaphore_release(o.sem)
                                          : pl_lock_release(lock);
        }
        atomic_store(state, ST_IDLE);
        if (rc != PL_OK) {
            note_error(sh, "%s/%s release: %s (%s)",
                       pl_backend_name(run->backend), kind_names[run->kind],
                       pl_err_name(rc),
                       run->kind == K_SEMAPHORE ? pl_semaphore_errmsg(o.sem)
                                                : pl_lock_errmsg(lock));
            break;
        }
        atomic_fetch_add(&sh->acquired, 1);
    }
    close_objects(&o);
    return NULL;
}

/* A worker process: its threads, then the leak probes. */
static void *nothing(void *arg) {
    return arg;
}

static int worker_main(const run_t *run, int slot, int inst) {
    worker_ctx_t ctx[MAX_THREADS];
    pthread_t tids[MAX_THREADS], t;
    int fds = ps_count_fds(), n = 0, left, threads;

    /* The baseline after one thread has come and gone, so that a runtime
     * which starts its own thread lazily (ThreadSanitizer's background
     * thread) already has it. */
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    threads = ps_wait_threads(1, 200);

    for (int i = 0; i < run->threads; i++) {
        ctx[i].run = run;
        ctx[i].slot = slot;
        ctx[i].tid = i;
        ctx[i].inst = inst;
        ps_rng_seed(&ctx[i].rng,
                    run->cfg->seed ^ ((uint64_t)inst << 20) ^ (uint64_t)i);
        if (pthread_create(&tids[i], NULL, worker_thread, &ctx[i]) != 0) {
            note_error(run->sh, "pthread_create failed");
            break;
        }
        n++;
    }
    for (int i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    /* The timed wait detaches its helper once it has reported: give it a
     * moment to finish. */
    left = ps_wait_threads(threads, 2000);
    if (left != threads) {
        atomic_fetch_add(&run->sh->leak_threads, 1);
        note_error(run->sh, "worker ended with %d threads, started with %d",
                   left, threads);
    }
    if (ps_count_fds() != fds) {
        atomic_fetch_add(&run->sh->leak_fds, 1);
        note_error(run->sh, "worker ended with %d descriptors, started with %d",
                   ps_count_fds(), fds);
    }
    return 0;
}

/* ---- the parent side ----------------------------------------------------- */

static pid_t spawn_worker(const run_t *run, int slot, int inst) {
    pid_t pid;
    for (int t = 0; t < MAX_THREADS; t++)
        atomic_store(&run->sh->state[slot][t], ST_IDLE);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0)
        _exit(worker_main(run, slot, inst));
    return pid;
}

/* The slot to kill: one with a thread in `want`, else any; *what gets the
 * state found. */
static int pick_victim(const run_t *run, ps_rng_t *rng, int want, int *what) {
    int procs = run->cfg->procs,
        start = (int)ps_rng_below(rng, (unsigned)procs);
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < procs; k++) {
            int s = (start + k) % procs, found = ST_IDLE;
            for (int t = 0; t < run->threads; t++) {
                int st = atomic_load(&run->sh->state[s][t]);
                if (st == ST_HOLDING || (st == ST_WAITING && found == ST_IDLE))
                    found = st;
            }
            if (pass == 1 || found == want) {
                *what = found;
                return s;
            }
        }
    }
    *what = ST_IDLE;
    return start;
}

typedef struct interval {
    int64_t start, end;
    int shared, slot;
} interval_t;

static int by_start(const void *a, const void *b) {
    const interval_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Counts intervals that overlap an earlier-starting one where either is
 * exclusive (sorted by start: keep the latest end of all intervals and of
 * the exclusive ones seen so far).
 */
static long count_overlaps(interval_t *iv, long n, int64_t *example_ns) {
    int64_t end_all = INT64_MIN, end_excl = INT64_MIN;
    long bad = 0;
    for (long i = 0; i < n; i++) {
        if (iv[i].start < end_excl ||
            (!iv[i].shared && iv[i].start < end_all)) {
            if (bad++ == 0)
                *example_ns = iv[i].start;
        }
        if (iv[i].end > end_all)
            end_all = iv[i].end;
        if (!iv[i].shared && iv[i].end > end_excl)
            end_excl = iv[i].end;
    }
    return bad;
}

/* Most intervals open at once (semaphore bound). */
static int max_concurrent(const interval_t *iv, long n) {
    int64_t *ends = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    long heap = 0;
    int best = 0;
    /* Simple O(n * open) sweep: the open set is at most a few entries. */
    for (long i = 0; i < n; i++) {
        long w = 0;
        for (long j = 0; j < heap; j++)
            if (ends[j] > iv[i].start)
                ends[w++] = ends[j];
        heap = w;
        ends[heap++] = iv[i].end;
        if (heap > best)
            best = (int)heap;
    }
    free(ends);
    return best;
}

static void cleanup_check(const run_t *run) {
    pl_lock_options_t opts;
    pl_lock_t *lock = NULL;
    pl_semaphore_t *sem = NULL;
    int rc;
    char first[256];
    int n, tmp, ok_files;

    pl_lock_options_init(&opts);
    opts.backend = run->backend;
    opts.timeout = 0;
    /* Leftovers of killed writers may stay until an operation finds them
     * stale (10 s): age them, so this last acquire must clean them up. */
    ps_backdate(run->workdir, ".tmp", 3600);
    if (run->kind == K_SEMAPHORE) {
        /* Every slot must be free: hold all of them at once. */
        pl_semaphore_t *all[100];
        int got = 0;
        rc = PL_OK;
        for (int i = 0; i < run->cfg->semaphore && rc == PL_OK; i++) {
            rc = pl_semaphore_open(&all[i], (unsigned)run->cfg->semaphore,
                                   "storm", run->workdir, &opts);
            if (rc == PL_OK && (rc = pl_semaphore_acquire(all[i])) == PL_OK)
                got = i + 1;
            else if (rc == PL_OK)
                pl_semaphore_close(all[i]);
        }
        ps_check("storm.released", rc == PL_OK, "%s/semaphore: slot %d: %s",
                 pl_backend_name(run->backend), got, pl_err_name(rc));
        for (int i = 0; i < got; i++)
            pl_semaphore_close(all[i]);
        (void)sem;
    } else {
        if (run->kind == K_TEMPORARY)
            rc = pl_temporary_lock_open(&lock, run->lock_path, &opts);
        else if (run->kind == K_PIDFILE)
            rc = pl_pidfile_lock_open(&lock, run->lock_path, &opts);
        else
            rc = pl_lock_open(&lock, run->lock_path, &opts);
        if (rc == PL_OK)
            rc = pl_lock_acquire(lock);
        ps_check("storm.released", rc == PL_OK, "%s/%s: %s (%s)",
                 pl_backend_name(run->backend), kind_names[run->kind],
                 pl_err_name(rc), lock != NULL ? pl_lock_errmsg(lock) : "-");
        if (rc == PL_OK)
            rc = pl_lock_release(lock);
        pl_lock_close(lock);
    }
    /* What may stay: the counter, the Lock file, the semaphore slots. */
    n = ps_dir_count(run->workdir, ".tmp", first, sizeof(first));
    ps_check("storm.leak.atomic_tmp", n == 0,
             "%s/%s: %d temporary file(s) left after a last acquire, e.g. %s "
             "(issue 9, defect 1: a PidFileLock killed while publishing its "
             "PID)",
             pl_backend_name(run->backend), kind_names[run->kind], n, first);
    tmp = n;
    ok_files = access(run->counter_path, F_OK) == 0;
    if (run->kind == K_LOCK || run->kind == K_RLOCK || run->kind == K_MIXED)
        ok_files += access(run->lock_path, F_OK) == 0;
    if (run->kind == K_SEMAPHORE)
        ok_files += ps_dir_count(run->workdir, "storm.", NULL, 0);
    n = ps_dir_count(run->workdir, NULL, first, sizeof(first)) - tmp;
    ps_check("storm.leak.files", n == ok_files,
             "%s/%s: %d file(s) left besides the %d expected (e.g. %s)",
             pl_backend_name(run->backend), kind_names[run->kind], n - ok_files,
             ok_files, first);
}

static void analyse(const run_t *run, const int64_t *kill_ns, long kills,
                    double seconds, long kills_by_state[3], totals_t *tot) {
    shared_t *sh = run->sh;
    long nrec = atomic_load(&sh->next_rec), n = 0, bumped = 0, slack = 0;
    long overlaps = 0, lost = 0;
    interval_t *iv;
    int64_t example = 0;
    long counter = read_counter(run->counter_path);
    int over_bound = 0;

    if (nrec > sh->rec_cap)
        nrec = sh->rec_cap;
    iv = malloc(sizeof(*iv) * (size_t)(nrec > 0 ? nrec : 1));
    for (long i = 0; i < nrec; i++) {
        rec_t *r = &sh->rec[i];
        int64_t end = r->end;
        if (r->start == 0)
            continue; /* killed before it noted the start */
        if (end == 0) {
            end = kill_ns[r->inst]; /* killed while holding */
            if (end == 0) {
                note_error(sh, "interval without an end from a live worker");
                continue;
            }
        }
        if (!r->shared && run->kind != K_SEMAPHORE) {
            if (r->bumped)
                bumped++;
            else if (kill_ns[r->inst] != 0)
                slack++;
        }
        if (end <= r->start)
            continue; /* noted after the kill was sent */
        iv[n].start = r->start;
        iv[n].end = end;
        iv[n].shared = r->shared;
        iv[n].slot = r->slot;
        n++;
    }
    qsort(iv, (size_t)n, sizeof(*iv), by_start);
    if (run->kind == K_SEMAPHORE) {
        /* Each slot is an exclusive lock; all slots together bound N. */
        interval_t *one = malloc(sizeof(*one) * (size_t)(n > 0 ? n : 1));
        int peak = max_concurrent(iv, n);
        for (int s = 0; s < run->cfg->semaphore; s++) {
            long m = 0;
            for (long i = 0; i < n; i++)
                if (iv[i].slot == s)
                    one[m++] = iv[i];
            overlaps += count_overlaps(one, m, &example);
        }
        free(one);
        over_bound = peak > run->cfg->semaphore;
        ps_check("storm.semaphore_bound", !over_bound,
                 "%s: %d holders at once, bound %d",
                 pl_backend_name(run->backend), peak, run->cfg->semaphore);
    } else {
        overlaps = count_overlaps(iv, n, &example);
    }
    free(iv);
    ps_check("storm.overlap", overlaps == 0,
             "%s/%s: %ld overlapping intervals (first at %lld ns)",
             pl_backend_name(run->backend), kind_names[run->kind], overlaps,
             (long long)example);
    if (run->kind != K_SEMAPHORE) {
        lost = counter < bumped ? bumped - counter : 0;
        ps_check("storm.counter",
                 counter >= bumped && counter <= bumped + slack,
                 "%s/%s: counter file %ld, %ld completed increments, %ld "
                 "holders killed mid-increment",
                 pl_backend_name(run->backend), kind_names[run->kind], counter,
                 bumped, slack);
    }
    ps_check("storm.reader", atomic_load(&sh->reader_moved) == 0,
             "%s/%s: a shared holder saw the counter change %ld times",
             pl_backend_name(run->backend), kind_names[run->kind],
             atomic_load(&sh->reader_moved));
    ps_check("storm.pidfile", atomic_load(&sh->pid_mismatch) == 0,
             "%s: the PID file named another process %ld times",
             pl_backend_name(run->backend), atomic_load(&sh->pid_mismatch));
    ps_check("storm.errors", atomic_load(&sh->errors) == 0,
             "%s/%s: %ld errors, first: %s", pl_backend_name(run->backend),
             kind_names[run->kind], atomic_load(&sh->errors), sh->first_error);
    ps_check("storm.leak.fds", atomic_load(&sh->leak_fds) == 0,
             "%s/%s: %d workers leaked descriptors",
             pl_backend_name(run->backend), kind_names[run->kind],
             atomic_load(&sh->leak_fds));
    ps_check("storm.leak.threads", atomic_load(&sh->leak_threads) == 0,
             "%s/%s: %d workers leaked threads", pl_backend_name(run->backend),
             kind_names[run->kind], atomic_load(&sh->leak_threads));
    ps_check("storm.kills", kills >= run->cfg->kills,
             "%s/%s: only %ld of %ld kills", pl_backend_name(run->backend),
             kind_names[run->kind], kills, run->cfg->kills);

    printf("storm: backend=%s kind=%s procs=%d threads=%d: %ld acquisitions "
           "in %.1fs, %ld kills (%ld holding, %ld waiting, %ld idle), "
           "%ld overlaps, counter %ld/%ld, %ld errors, %ld timeouts\n",
           pl_backend_name(run->backend), kind_names[run->kind],
           run->cfg->procs, run->threads, atomic_load(&sh->acquired), seconds,
           kills, kills_by_state[ST_HOLDING], kills_by_state[ST_WAITING],
           kills_by_state[ST_IDLE], overlaps, counter, bumped,
           atomic_load(&sh->errors), atomic_load(&sh->timeouts));
    fflush(stdout);
    tot->runs++;
    tot->acquisitions += atomic_load(&sh->acquired);
    tot->kills_holding += kills_by_state[ST_HOLDING];
    tot->kills_waiting += kills_by_state[ST_WAITING];
    tot->kills_other += kills_by_state[ST_IDLE];
    tot->overlaps += overlaps + over_bound;
    tot->lost += lost;
    tot->errors += atomic_load(&sh->errors);
    tot->timeouts += atomic_load(&sh->timeouts);
    tot->leaks += atomic_load(&sh->leak_fds) + atomic_load(&sh->leak_threads);
}

static void one_run(const config_t *cfg, pl_backend_t backend, kind_t kind,
                    totals_t *tot) {
    run_t run;
    pid_t pids[MAX_PROCS];
    int insts[MAX_PROCS];
    long max_inst = cfg->procs + cfg->kills + 8, kills = 0;
    long kills_by_state[3] = {0, 0, 0};
    int64_t *kill_ns = calloc((size_t)max_inst + 1, sizeof(int64_t));
    int next_inst = 1, failed_spawn = 0, hung = 0, crashed = 0;
    int64_t t0 = ps_now_ns(), deadline;
    ps_rng_t rng;
    long cap = cfg->acquisitions * 2 + 20000;
    int failed_before = ps_checks_failed();

    memset(&run, 0, sizeof(run));
    run.cfg = cfg;
    run.backend = backend;
    run.kind = kind;
    run.threads = backend == PL_BACKEND_LOCKF ? 1 : cfg->threads;
    ps_rng_seed(&rng, cfg->seed ^ ((uint64_t)backend << 8) ^ (uint64_t)kind);
    if (ps_workdir(run.workdir, sizeof(run.workdir), cfg->dir, "pl_storm") !=
        0) {
        perror("pl_storm: mkdtemp");
        exit(1);
    }
    snprintf(run.lock_path, sizeof(run.lock_path), "%s/lock", run.workdir);
    snprintf(run.counter_path, sizeof(run.counter_path), "%s/counter",
             run.workdir);
    run.sh_len = sizeof(shared_t) + sizeof(rec_t) * (size_t)cap;
    run.sh = ps_shared_alloc(run.sh_len);
    run.sh->rec_cap = cap;

    for (int s = 0; s < cfg->procs; s++) {
        insts[s] = next_inst++;
        pids[s] = spawn_worker(&run, s, insts[s]);
        if (pids[s] < 0)
            failed_spawn++;
    }
    deadline = t0 + (int64_t)(cfg->max_seconds * 1e9);
    /* Kill each time another 1/(K+1) of the acquisitions is done. */
    while (ps_now_ns() < deadline) {
        long done = atomic_load(&run.sh->acquired);
        int status;
        pid_t p;
        if (done >= cfg->acquisitions && kills >= cfg->kills)
            break;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int s = 0; s < cfg->procs; s++) {
                if (pids[s] != p)
                    continue;
                crashed++;
                note_error(run.sh, "worker %d ended on its own (status %#x)",
                           (int)p, status);
                insts[s] = next_inst < max_inst ? next_inst++ : insts[s];
                pids[s] = spawn_worker(&run, s, insts[s]);
            }
        }
        if (kills < cfg->kills &&
            done >= (kills + 1) * cfg->acquisitions / (cfg->kills + 1) &&
            next_inst < max_inst) {
            int what, s;
            s = pick_victim(&run, &rng, kills % 2 ? ST_WAITING : ST_HOLDING,
                            &what);
            kill_ns[insts[s]] = ps_now_ns(); /* before kill(): still held */
            ps_kill(pids[s], SIGKILL);
            waitpid(pids[s], &status, 0);
            kills++;
            kills_by_state[what]++;
            insts[s] = next_inst++;
            pids[s] = spawn_worker(&run, s, insts[s]);
            continue;
        }
        ps_sleep_us(300);
    }
    atomic_store(&run.sh->stop, 1);
    /* Workers finish their current cycle; a waiter may wait its timeout. */
    deadline = ps_now_ns() + (int64_t)((cfg->acquire_timeout + 20) * 1e9);
    for (int s = 0; s < cfg->procs; s++) {
        int status = 0;
        pid_t p;
        while ((p = waitpid(pids[s], &status, WNOHANG)) == 0 &&
               ps_now_ns() < deadline)
            ps_sleep_us(2000);
        if (p == 0) {
            hung++;
            ps_kill(pids[s], SIGKILL);
            waitpid(pids[s], &status, 0);
        } else if (p > 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            crashed++;
        }
    }
    ps_check("storm.spawn", failed_spawn == 0, "%d forks failed", failed_spawn);
    ps_check("storm.hang", hung == 0, "%s/%s: %d workers did not stop",
             pl_backend_name(backend), kind_names[kind], hung);
    ps_check("storm.worker_exit", crashed == 0,
             "%s/%s: %d workers died on their own", pl_backend_name(backend),
             kind_names[kind], crashed);
    ps_check("storm.acquisitions",
             atomic_load(&run.sh->acquired) >= cfg->acquisitions,
             "%s/%s: %ld of %ld acquisitions within %.0fs",
             pl_backend_name(backend), kind_names[kind],
             atomic_load(&run.sh->acquired), cfg->acquisitions,
             cfg->max_seconds);
    analyse(&run, kill_ns, kills, (double)(ps_now_ns() - t0) / 1e9,
            kills_by_state, tot);
    cleanup_check(&run);
    if (ps_checks_failed() == failed_before)
        ps_rmtree(run.workdir);
    else
        fprintf(stderr, "pl_storm: files kept in %s\n", run.workdir);
    ps_shared_free(run.sh, run.sh_len);
    free(kill_ns);
}

/* ---- options ------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: pl_storm [--backend all|flock,lockf,ofd] "
            "[--kind all|lock,rlock,temporary,pidfile,semaphore,mixed]\n"
            "                [--procs P] [--threads T] [--acquisitions N] "
            "[--kills K]\n"
            "                [--max-seconds S] [--semaphore N] [--dir DIR] "
            "[--seed X]\n"
            "                [--no-tmpfile]\n");
}

static int parse_list(const char *arg, unsigned *out, int backends) {
    char buf[256], *save = NULL, *tok;
    snprintf(buf, sizeof(buf), "%s", arg);
    *out = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        if (strcmp(tok, "all") == 0) {
            *out |= backends
                        ? (1u << PL_BACKEND_FLOCK) | (1u << PL_BACKEND_LOCKF) |
                              (1u << PL_BACKEND_OFD)
                        : (1u << K_COUNT) - 1;
            continue;
        }
        if (backends) {
            pl_backend_t b;
            if (pl_backend_from_name(tok, &b) == PL_OK &&
                b != PL_BACKEND_DEFAULT) {
                *out |= 1u << b;
                found = 1;
            }
        } else {
            for (int k = 0; k < K_COUNT; k++)
                if (strcmp(tok, kind_names[k]) == 0) {
                    *out |= 1u << k;
                    found = 1;
                }
        }
        if (!found) {
            fprintf(stderr, "pl_storm: unknown %s '%s'\n",
                    backends ? "backend" : "kind", tok);
            return -1;
        }
    }
    return *out != 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, config_t *cfg) {
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, 'b'},
        {"kind", required_argument, NULL, 'k'},
        {"procs", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"acquisitions", required_argument, NULL, 'n'},
        {"kills", required_argument, NULL, 'K'},
        {"max-seconds", required_argument, NULL, 's'},
        {"semaphore", required_argument, NULL, 'm'},
        {"dir", required_argument, NULL, 'd'},
        {"seed", required_argument, NULL, 'S'},
        {"no-tmpfile", no_argument, NULL, 'T'},
        {NULL, 0, NULL, 0}};
    int c;

    memset(cfg, 0, sizeof(*cfg));
    parse_list("all", &cfg->backends, 1);
    parse_list("all", &cfg->kinds, 0);
    cfg->procs = 16;
    cfg->threads = 2;
    cfg->acquisitions = 10000;
    cfg->kills = 100;
    cfg->max_seconds = 300;
    cfg->acquire_timeout = 30;
    cfg->semaphore = 3;
    cfg->seed = (uint64_t)ps_now_ns() ^ (uint64_t)getpid();
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (parse_list(optarg, &cfg->backends, 1) != 0)
                return -1;
            break;
        case 'k':
            if (parse_list(optarg, &cfg->kinds, 0) != 0)
                return -1;
            break;
        case 'p':
            cfg->procs = (int)ps_parse_long("--procs", optarg, 1, MAX_PROCS);
            break;
        case 't':
            cfg->threads =
                (int)ps_parse_long("--threads", optarg, 1, MAX_THREADS);
            break;
        case 'n':
            cfg->acquisitions =
                ps_parse_long("--acquisitions", optarg, 1, 100000000);
            break;
        case 'K':
            cfg->kills = ps_parse_long("--kills", optarg, 0, 1000000);
            break;
        case 's':
            cfg->max_seconds =
                ps_parse_double("--max-seconds", optarg, 1, 86400);
            break;
        case 'm':
            cfg->semaphore = (int)ps_parse_long("--semaphore", optarg, 1, 99);
            break;
        case 'd': cfg->dir = optarg; break;
        case 'S':
            cfg->seed = (uint64_t)ps_parse_long("--seed", optarg, 0, LONG_MAX);
            break;
        case 'T': cfg->no_tmpfile = 1; break;
        default: return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv) {
    config_t cfg;
    totals_t tot;
    int64_t t0 = ps_now_ns();

    if (parse_args(argc, argv, &cfg) != 0) {
        usage();
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.no_tmpfile) { /* before any thread or worker exists */
        ps_hooks_install();
        ps_no_tmpfile = 1;
    }
    memset(&tot, 0, sizeof(tot));
    printf("storm: seed %llu\n", (unsigned long long)cfg.seed);
    for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
        if (!(cfg.backends & (1u << b)))
            continue;
        if (!pl_backend_available((pl_backend_t)b)) {
            ps_check("storm.backend", 0, "backend %s not available here",
                     pl_backend_name((pl_backend_t)b));
            continue;
        }
        for (int k = 0; k < K_COUNT; k++)
            if (cfg.kinds & (1u << k))
                one_run(&cfg, (pl_backend_t)b, (kind_t)k, &tot);
    }
    printf("storm summary: %d runs, %ld acquisitions, %ld kills (%ld of "
           "holders, %ld of waiters, %ld idle), %ld overlaps, %ld lost "
           "updates, %ld errors, %ld timeouts, %ld leaks, %.0fs\n",
           tot.runs, tot.acquisitions,
           tot.kills_holding + tot.kills_waiting + tot.kills_other,
           tot.kills_holding, tot.kills_waiting, tot.kills_other, tot.overlaps,
           tot.lost, tot.errors, tot.timeouts, tot.leaks,
           (double)(ps_now_ns() - t0) / 1e9);
    return ps_checks_summary("pl_storm") == 0 ? 0 : 1;
}
