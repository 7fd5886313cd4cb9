/*
 * pl_stress -- hammers one lock from many processes and threads and checks
 * that it never admits more holders than it should.
 *
 *   pl_stress [--procs P] [--threads T] [--seconds S] [--backend NAME]
 *             [--semaphore N] [--dir DIR]
 *
 * lockf locks belong to the process, so threads of one process do not
 * exclude each other under lockf: run it with --threads 1.
 *
 * Every thread owns its own lock object (Lock, or a semaphore over N slots)
 * and loops until the deadline: acquire, mark itself inside a shared
 * (MAP_SHARED) occupancy counter, read-modify-write a counter file, leave,
 * release.  Two oracles:
 *   - occupancy: the number of holders inside never exceeds 1 (or N);
 *   - lost updates: for a plain lock the counter file ends equal to the
 *     number of acquisitions (each one added exactly 1 under the lock).
 * A plain C program rather than a Criterion test so it can run under
 * ThreadSanitizer (Criterion cannot).  Exit 0 when both oracles hold.
 */
#include "portalock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct shared {
    atomic_int inside;        /* holders currently inside */
    atomic_int max_inside;    /* highest value seen */
    atomic_long acquisitions; /* successful acquisitions, all processes */
    atomic_long errors;       /* unexpected library errors */
} shared_t;

typedef struct config {
    int procs, threads, semaphore;
    double seconds;
    pl_backend_t backend;
    char dir[400], workdir[512], lock_path[600], counter_path[600];
    shared_t *shared;
} config_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Adds one to the decimal number in the counter file. */
static int bump_counter(const char *path) {
    char buf[32] = {0};
    long value = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0)
        value = strtol(buf, NULL, 10);
    int len = snprintf(buf, sizeof(buf), "%ld\n", value + 1);
    int rc = (pwrite(fd, buf, (size_t)len, 0) == len && ftruncate(fd, len) == 0)
                 ? 0
                 : -1;
    close(fd);
    return rc;
}

static void note_inside(shared_t *sh) {
    int in = atomic_fetch_add(&sh->inside, 1) + 1;
    int seen = atomic_load(&sh->max_inside);
    while (in > seen &&
           !atomic_compare_exchange_weak(&sh->max_inside, &seen, in))
        ;
}

static void report_error(shared_t *sh, const char *what, int rc,
                         const char *msg) {
    atomic_fetch_add(&sh->errors, 1);
    fprintf(stderr, "pl_stress[%ld]: %s: %s (%s)\n", (long)getpid(), what,
            pl_err_name(rc), msg);
}

static void *lock_worker(void *arg) {
    const config_t *cfg = arg;
    shared_t *sh = cfg->shared;
    pl_lock_options_t opts;
    pl_lock_t *lock;
    double deadline = now() + cfg->seconds;

    pl_lock_options_init(&opts);
    opts.backend = cfg->backend;
    opts.timeout = 10.0;
    int rc = pl_lock_open(&lock, cfg->lock_path, &opts);
    if (rc != PL_OK) {
        report_error(sh, "pl_lock_open", rc, pl_strerror(rc));
        return NULL;
    }
    while (now() < deadline) {
        rc = pl_lock_acquire(lock);
        if (rc != PL_OK) {
            report_error(sh, "acquire", rc, pl_lock_errmsg(lock));
            break;
        }
        note_inside(sh);
        if (bump_counter(cfg->counter_path) != 0)
            report_error(sh, "counter", PL_EOS, strerror(errno));
        usleep(50); /* a short hold, so waiters really queue up */
        atomic_fetch_add(&sh->acquisitions, 1);
        atomic_fetch_sub(&sh->inside, 1);
        rc = pl_lock_release(lock);
        if (rc != PL_OK) {
            report_error(sh, "release", rc, pl_lock_errmsg(lock));
            break;
        }
    }
    pl_lock_close(lock);
    return NULL;
}

static void *semaphore_worker(void *arg) {
    const config_t *cfg = arg;
    shared_t *sh = cfg->shared;
    pl_lock_options_t opts;
    pl_semaphore_t *sem;
    double deadline = now() + cfg->seconds;

    pl_lock_options_init(&opts);
    opts.backend = cfg->backend;
    opts.timeout = 10.0;
    opts.check_interval = 0.01;
    int rc = pl_semaphore_open(&sem, (unsigned)cfg->semaphore, "stress",
                               cfg->workdir, &opts);
    if (rc != PL_OK) {
        report_error(sh, "pl_semaphore_open", rc, pl_strerror(rc));
        return NULL;
    }
    while (now() < deadline) {
        rc = pl_semaphore_acquire(sem);
        if (rc != PL_OK) {
            report_error(sh, "semaphore acquire", rc, pl_semaphore_errmsg(sem));
            break;
        }
        note_inside(sh);
        usleep(500); /* hold long enough for the slots to fill up */
        atomic_fetch_add(&sh->acquisitions, 1);
        atomic_fetch_sub(&sh->inside, 1);
        rc = pl_semaphore_release(sem);
        if (rc != PL_OK) {
            report_error(sh, "semaphore release", rc, pl_semaphore_errmsg(sem));
            break;
        }
    }
    pl_semaphore_close(sem);
    return NULL;
}

static int run_process(config_t *cfg) {
    pthread_t tids[64];
    int n = cfg->threads;
    void *(*fn)(void *) = cfg->semaphore > 0 ? semaphore_worker : lock_worker;

    for (int i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, fn, cfg) != 0) {
            n = i;
            atomic_fetch_add(&cfg->shared->errors, 1);
            break;
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: pl_stress [--procs P] [--threads T] [--seconds S]"
                    " [--backend flock|lockf|ofd] [--semaphore N]"
                    " [--dir DIR]\n");
}

static int parse_args(int argc, char **argv, config_t *cfg) {
    static const struct option longopts[] = {
        {"procs", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"backend", required_argument, NULL, 'b'},
        {"semaphore", required_argument, NULL, 'm'},
        {"dir", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0}};
    int c;

    cfg->procs = 4;
    cfg->threads = 2;
    cfg->seconds = 2.0;
    cfg->semaphore = 0;
    cfg->backend = PL_BACKEND_DEFAULT;
    snprintf(cfg->dir, sizeof(cfg->dir), "%s",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': cfg->procs = atoi(optarg); break;
        case 't': cfg->threads = atoi(optarg); break;
        case 's': cfg->seconds = atof(optarg); break;
        case 'm': cfg->semaphore = atoi(optarg); break;
        case 'd': snprintf(cfg->dir, sizeof(cfg->dir), "%s", optarg); break;
        case 'b':
            if (pl_backend_from_name(optarg, &cfg->backend) != PL_OK) {
                fprintf(stderr, "pl_stress: unknown backend '%s'\n", optarg);
                return -1;
            }
            break;
        default: return -1;
        }
    }
    if (optind != argc || cfg->procs < 1 || cfg->procs > 64 ||
        cfg->threads < 1 || cfg->threads > 64 || cfg->seconds <= 0 ||
        cfg->seconds > 3600 || cfg->semaphore < 0 || cfg->semaphore > 99)
        return -1;
    return 0;
}

int main(int argc, char **argv) {
    config_t cfg;

    if (parse_args(argc, argv, &cfg) != 0) {
        usage();
        return 64;
    }
    /* A private directory so parallel runs never share files. */
    snprintf(cfg.workdir, sizeof(cfg.workdir), "%s/pl_stress.XXXXXX", cfg.dir);
    if (mkdtemp(cfg.workdir) == NULL) {
        perror("pl_stress: mkdtemp");
        return 1;
    }
    snprintf(cfg.lock_path, sizeof(cfg.lock_path), "%s/lock", cfg.workdir);
    snprintf(cfg.counter_path, sizeof(cfg.counter_path), "%s/counter",
             cfg.workdir);
    cfg.shared = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (cfg.shared == MAP_FAILED) {
        perror("pl_stress: mmap");
        return 1;
    }
    memset(cfg.shared, 0, sizeof(shared_t));

    pid_t pids[64];
    for (int i = 0; i < cfg.procs; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(run_process(&cfg));
        if (pids[i] < 0) {
            perror("pl_stress: fork");
            return 1;
        }
    }
    int crashed = 0;
    for (int i = 0; i < cfg.procs; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            crashed++;
    }

    long acquisitions = atomic_load(&cfg.shared->acquisitions);
    long errors = atomic_load(&cfg.shared->errors);
    int max_inside = atomic_load(&cfg.shared->max_inside);
    int bound = cfg.semaphore > 0 ? cfg.semaphore : 1;
    long counter = -1;
    FILE *f = fopen(cfg.counter_path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &counter) != 1)
            counter = -1;
        fclose(f);
    }
    int pass = 0, fail = 0;
#define CHECK(cond, ...)                                                       \
 do {                                                                          \
  if (cond) {                                                                  \
   pass++;                                                                     \
  } else {                                                                     \
   fail++;                                                                     \
   fprintf(stderr, "pl_stress: FAIL: " __VA_ARGS__);                           \
   fputc('\n', stderr);                                                        \
  }                                                                            \
 } while (0)
    CHECK(crashed == 0, "%d worker processes crashed", crashed);
    CHECK(errors == 0, "%ld library errors", errors);
    CHECK(acquisitions > 0, "no acquisition at all");
    CHECK(max_inside <= bound, "%d holders inside at once (bound %d)",
          max_inside, bound);
    if (cfg.semaphore == 0)
        CHECK(counter == acquisitions,
              "counter file %ld != %ld acquisitions (lost updates)", counter,
              acquisitions);
    else
        CHECK(max_inside == bound || cfg.procs * cfg.threads < bound,
              "semaphore never reached %d concurrent holders (max %d)", bound,
              max_inside);
    printf("pl_stress: %s backend=%s procs=%d threads=%d seconds=%.1f: "
           "%ld acquisitions (%.0f/s), max inside %d of %d\n",
           cfg.semaphore > 0 ? "semaphore" : "lock",
           pl_backend_name(cfg.backend != PL_BACKEND_DEFAULT
                               ? cfg.backend
                               : pl_default_backend()),
           cfg.procs, cfg.threads, cfg.seconds, acquisitions,
           (double)acquisitions / cfg.seconds, max_inside, bound);
    printf("stress: %d passed, %d failed\n", pass, fail);

    /* Best-effort cleanup of the private directory. */
    char path[700];
    unlink(cfg.counter_path);
    unlink(cfg.lock_path);
    for (int i = 0; i < bound && cfg.semaphore > 0; i++) {
        snprintf(path, sizeof(path), "%s/stress.%02d.lock", cfg.workdir, i);
        unlink(path);
    }
    rmdir(cfg.workdir);
    return fail == 0 ? 0 : 1;
}
