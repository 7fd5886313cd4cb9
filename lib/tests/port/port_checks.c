/*
 * port_checks.c -- checks that a port of the library needs and that the
 * Criterion unit tests cannot give where Criterion does not exist for the
 * target (cross builds run under CMAKE_CROSSCOMPILING_EMULATOR, e.g.
 * qemu-user).  Plain C, one check per invocation, exit 0 = pass, 1 = fail,
 * 77 = skipped (with the reason on stderr).
 *
 *   pl_port_checks unset      PL_UNSET survives a store (x87, i686)
 *   pl_port_checks largefile  a lock file larger than 4 GiB (32-bit builds
 *                             need _FILE_OFFSET_BITS=64 in the library)
 *   pl_port_checks fork       a forked child does not own the parent's lock
 *                             (qemu-user ignores MADV_WIPEONFORK)
 *   pl_port_checks timeout B  a timed acquire on backend B lasts its timeout
 *                             (time64 futex on i686, cancellation on musl)
 *   pl_port_checks interrupt  pl_lock_interrupt() from another thread ends
 *                             a timed wait at once (the wait word's wake-up:
 *                             a futex on Linux, a condition variable in
 *                             wait_bsd.c)
 *   pl_port_checks cycle B N  prints the cost of N uncontended acquire +
 *                             release cycles of a Lock on backend B (a
 *                             measurement for conformance/PORTS.md; never
 *                             fails on speed)
 *
 * This file asks for a 64-bit off_t itself, whatever the build does, so
 * that "largefile" tests the library's setting and not its own.
 */
#define _FILE_OFFSET_BITS 64
#define _GNU_SOURCE
#include "portalock.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                       \
 do {                                                                          \
  if (!(cond)) {                                                               \
   fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
   fprintf(stderr, __VA_ARGS__);                                               \
   fputc('\n', stderr);                                                        \
   failures++;                                                                 \
  }                                                                            \
 } while (0)

static char dir[4096];

/* A private directory under $TMPDIR (or /tmp), removed at exit. */
static void make_dir(void) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/pl-port.XXXXXX",
             t != NULL && t[0] != '\0' ? t : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static const char *path_in(const char *name) {
    static char buf[4][4200];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
    return b;
}

static void cleanup(void) {
    const char *names[] = {"lock", "big", "big.lock", "timed"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_in(names[i]));
    rmdir(dir);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double stored(double v) {
    volatile double d = v;
    return d;
}

/* ---- unset --------------------------------------------------------------- */

static void check_unset(void) {
    pl_lock_options_t o;
    pl_lock_t *a = NULL;
    int rc;

    fprintf(stderr, "FLT_EVAL_METHOD %d\n", (int)FLT_EVAL_METHOD);
    pl_lock_options_init(&o);
    o.check_interval = PL_UNSET;
    CHECK(o.check_interval == PL_UNSET, "a stored PL_UNSET differs");
    CHECK(stored(PL_UNSET) == PL_UNSET, "a stored PL_UNSET differs");
    o.timeout = PL_UNSET;
    rc = pl_lock_open(&a, path_in("lock"), &o);
    CHECK(rc == PL_OK, "pl_lock_open: %s", pl_err_name(rc));
    if (rc != PL_OK)
        return;
    rc = pl_lock_acquire(a);
    CHECK(rc == PL_OK, "acquire with PL_UNSET options: %s (%s)",
          pl_err_name(rc), pl_lock_errmsg(a));
    rc = pl_lock_acquire_with(a, PL_UNSET, PL_UNSET, -1);
    CHECK(rc == PL_OK, "acquire_with(PL_UNSET): %s (%s)", pl_err_name(rc),
          pl_lock_errmsg(a));
    pl_lock_close(a);
}

/* ---- largefile ----------------------------------------------------------- */

static void check_largefile(void) {
    const char *p = path_in("big");
    pl_lock_t *a = NULL;
    int fd, rc;

    fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open: %s", strerror(errno));
    if (fd < 0)
        return;
    /* Sparse: no disk space used. */
    if (ftruncate(fd, (off_t)5 << 30) != 0) {
        fprintf(stderr, "SKIP: this filesystem refuses a 5 GiB file: %s\n",
                strerror(errno));
        close(fd);
        cleanup();
        exit(77);
    }
    close(fd);
    rc = pl_lock_open(&a, p, NULL);
    CHECK(rc == PL_OK, "pl_lock_open: %s", pl_err_name(rc));
    if (rc == PL_OK) {
        rc = pl_lock_acquire(a);
        CHECK(rc == PL_OK, "acquire of a 5 GiB file: %s (%s)", pl_err_name(rc),
              pl_lock_errmsg(a));
        pl_lock_close(a);
    }
    /* PidFileLock locks the sidecar "<path>.lock" in mode "a" and verifies
     * the locked descriptor with fstat + stat: glibc's EOVERFLOW check runs
     * in user space, so this part fails without a 64-bit off_t also under
     * qemu-user, where the open() above reaches a 64-bit kernel. */
    if (rename(p, path_in("big.lock")) != 0) {
        CHECK(0, "rename: %s", strerror(errno));
        return;
    }
    rc = pl_pidfile_lock_open(&a, p, NULL);
    CHECK(rc == PL_OK, "pl_pidfile_lock_open: %s", pl_err_name(rc));
    if (rc == PL_OK) {
        rc = pl_lock_acquire(a);
        CHECK(rc == PL_OK, "pidfile acquire with a 5 GiB sidecar: %s (%s)",
              pl_err_name(rc), pl_lock_errmsg(a));
        pl_lock_close(a);
    }
}

/* ---- fork ---------------------------------------------------------------- */

/* Exit status of a forked child running fn(lock); -1 if it crashed. */
static int in_child(int (*fn)(pl_lock_t *), pl_lock_t *lock) {
    int status;
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(lock) & 0xff);
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return (signed char)WEXITSTATUS(status);
}

static int child_release(pl_lock_t *lock) {
    return pl_lock_release(lock);
}

static int child_try_other(pl_lock_t *lock) {
    pl_lock_options_t o;
    pl_lock_t *b = NULL;
    int rc;
    pl_lock_options_init(&o);
    o.timeout = 0;
    o.fail_when_locked = 1;
    if (pl_lock_open(&b, pl_lock_path(lock), &o) != PL_OK)
        return 99;
    rc = pl_lock_acquire(b);
    pl_lock_close(b);
    return rc;
}

static void check_fork(void) {
    pl_lock_t *a = NULL;
    int rc = pl_lock_open(&a, path_in("lock"), NULL);
    CHECK(rc == PL_OK, "pl_lock_open: %s", pl_err_name(rc));
    if (rc != PL_OK)
        return;
    rc = pl_lock_acquire(a);
    CHECK(rc == PL_OK, "acquire: %s", pl_err_name(rc));
    rc = in_child(child_release, a);
    CHECK(rc == PL_EFORKED,
          "child release gave %s, not PL_EFORKED: the child took the "
          "parent's PID for its own",
          rc == -1 ? "a crash" : pl_err_name(rc));
    rc = in_child(child_try_other, a);
    CHECK(rc == PL_ELOCKED,
          "a new object in a child got %s: the parent's "
          "lock was released",
          rc == -1 ? "a crash" : pl_err_name(rc));
    rc = pl_lock_release(a);
    CHECK(rc == PL_OK, "parent release: %s", pl_err_name(rc));
    pl_lock_close(a);
}

/* ---- timeout ------------------------------------------------------------- */

static void check_timeout(const char *backend_name) {
    pl_backend_t b;
    pl_lock_options_t o;
    pl_lock_t *holder = NULL, *waiter = NULL;
    int pipefd[2], rc, status;
    char c = 0;
    pid_t pid;
    double t0, took;

    if (pl_backend_from_name(backend_name, &b) != PL_OK) {
        fprintf(stderr, "unknown backend %s\n", backend_name);
        exit(1);
    }
    if (!pl_backend_available(b)) {
        fprintf(stderr, "SKIP: backend %s not available here\n", backend_name);
        cleanup();
        exit(77);
    }
    pl_lock_options_init(&o);
    o.backend = b;
    o.timeout = 0;
    if (pipe(pipefd) != 0)
        exit(1);
    /* The holder is another process: lockf locks belong to a process. */
    pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        if (pl_lock_open(&holder, path_in("timed"), &o) != PL_OK ||
            pl_lock_acquire(holder) != PL_OK)
            _exit(2);
        c = 'h';
        if (write(pipefd[1], &c, 1) != 1)
            _exit(3);
        sleep(30); /* killed by the parent long before */
        _exit(0);
    }
    close(pipefd[1]);
    CHECK(pid > 0 && read(pipefd[0], &c, 1) == 1 && c == 'h',
          "the holder did not start");
    close(pipefd[0]);
    if (c == 'h') {
        o.timeout = 0.5;
        o.fail_when_locked = 0;
        rc = pl_lock_open(&waiter, path_in("timed"), &o);
        CHECK(rc == PL_OK, "open: %s", pl_err_name(rc));
        t0 = now();
        rc = pl_lock_acquire(waiter);
        took = now() - t0;
        CHECK(rc == PL_ETIMEDOUT, "acquire against a holder gave %s (%s)",
              pl_err_name(rc), pl_lock_errmsg(waiter));
        /* Lower bound: the wait must not end early (the i686 time64 bug
         * returned after 0.006-0.31 s).  Upper bound generous (10x):
         * emulation and a loaded machine are slow, but a wait that ignores
         * its deadline runs into the holder's 30 s. */
        CHECK(took >= 0.45 && took < 5.0, "%s: a 0.5 s timeout took %.3f s",
              backend_name, took);
        fprintf(stderr, "%s: 0.5 s timeout took %.3f s\n", backend_name, took);
        pl_lock_close(waiter);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
}

/* ---- interrupt --------------------------------------------------------- */

struct interrupter {
    pl_lock_t *lock;
    double at; /* when pl_lock_interrupt() was called */
    int rc;
};

static void *interrupt_later(void *arg) {
    struct interrupter *in = arg;
    struct timespec ts = {0, 300000000}; /* 0.3 s: the waiter is waiting */
    nanosleep(&ts, NULL);
    in->at = now();
    in->rc = pl_lock_interrupt(in->lock);
    return NULL;
}

static void check_interrupt(void) {
    pl_lock_options_t o;
    pl_lock_t *holder = NULL, *waiter = NULL;
    struct interrupter in;
    pthread_t t;
    double t0, took;
    int rc;

    /* flock: two objects of one process exclude each other. */
    pl_lock_options_init(&o);
    o.backend = PL_BACKEND_FLOCK;
    o.timeout = 0;
    if (pl_lock_open(&holder, path_in("lock"), &o) != PL_OK ||
        pl_lock_acquire(holder) != PL_OK) {
        CHECK(0, "cannot take the holder's lock");
        return;
    }
    o.timeout = 20;
    o.fail_when_locked = 0;
    rc = pl_lock_open(&waiter, path_in("lock"), &o);
    CHECK(rc == PL_OK, "open: %s", pl_err_name(rc));
    if (rc != PL_OK)
        return;
    in.lock = waiter;
    in.at = 0;
    in.rc = -1;
    if (pthread_create(&t, NULL, interrupt_later, &in) != 0) {
        CHECK(0, "pthread_create");
        return;
    }
    t0 = now();
    rc = pl_lock_acquire(waiter);
    took = now() - t0;
    pthread_join(t, NULL);
    CHECK(in.rc == PL_OK, "pl_lock_interrupt: %s", pl_err_name(in.rc));
    CHECK(rc == PL_EINTR, "an interrupted wait gave %s (%s)", pl_err_name(rc),
          pl_lock_errmsg(waiter));
    /* Generous bound (emulation, a loaded machine); a lost wake-up runs
     * into the 20 s timeout. */
    CHECK(in.at > 0 && t0 + took - in.at < 5.0,
          "the wait ended %.3f s after the interrupt", t0 + took - in.at);
    fprintf(stderr, "interrupted after %.3f s (interrupt at %.3f s)\n", took,
            in.at - t0);
    pl_lock_close(waiter);
    pl_lock_close(holder);
}

/* ---- cycle (a measurement, not a check) --------------------------------- */

static void measure_cycle(const char *backend_name, long n) {
    pl_lock_options_t o;
    pl_lock_t *a = NULL;
    double t0, took;
    long i;

    pl_lock_options_init(&o);
    if (pl_backend_from_name(backend_name, &o.backend) != PL_OK || n <= 0 ||
        pl_lock_open(&a, path_in("lock"), &o) != PL_OK) {
        CHECK(0, "cannot set up %s x %ld", backend_name, n);
        return;
    }
    t0 = now();
    for (i = 0; i < n; i++) {
        int rc = pl_lock_acquire(a);
        if (rc == PL_OK)
            rc = pl_lock_release(a);
        if (rc != PL_OK) {
            CHECK(0, "cycle %ld: %s", i, pl_err_name(rc));
            break;
        }
    }
    took = now() - t0;
    printf("cycle backend=%s n=%ld ns_per_cycle=%.0f\n", backend_name, n,
           took * 1e9 / (double)n);
    pl_lock_close(a);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: pl_port_checks unset|largefile|fork|interrupt|"
                        "timeout BACKEND|cycle BACKEND N\n");
        return 2;
    }
    make_dir();
    if (strcmp(argv[1], "unset") == 0)
        check_unset();
    else if (strcmp(argv[1], "largefile") == 0)
        check_largefile();
    else if (strcmp(argv[1], "fork") == 0)
        check_fork();
    else if (strcmp(argv[1], "interrupt") == 0)
        check_interrupt();
    else if (strcmp(argv[1], "timeout") == 0 && argc == 3)
        check_timeout(argv[2]);
    else if (strcmp(argv[1], "cycle") == 0 && argc == 4)
        measure_cycle(argv[2], atol(argv[3]));
    else {
        fprintf(stderr, "unknown check %s\n", argv[1]);
        cleanup();
        return 2;
    }
    cleanup();
    if (failures == 0)
        fprintf(stderr, "%s: pass\n", argv[1]);
    return failures == 0 ? 0 : 1;
}
