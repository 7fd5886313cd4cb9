/*
 * pl_bench -- Google Benchmark over portalock's C API, beside the raw
 * syscalls it wraps (the physical limit), in one binary.  The bodies are C
 * on the gbench.h API (bench/gbench/), as a porter's would be.
 *
 *   pl_bench [--pl_dir=DIR] [benchmark flags, e.g. --benchmark_min_time=0.1
 *            --benchmark_format=json]
 *
 * Names follow BM_<Backend>_<Op>:
 *   BM_{Flock,Lockf,Ofd}_LockUnlock   pl_lock_fd + pl_unlock_fd, open fd
 *   BM_{Flock,Lockf,Ofd}_Cycle        pl_lock_acquire + pl_lock_release on a
 *                                     Lock (open + lock + unlock + close)
 *   BM_{Flock,Lockf,Ofd}_Semaphore    pl_semaphore_acquire + release, 4 slots
 *   BM_{Flock,Lockf,Ofd}_RLockNest    nested acquire + release of a held RLock
 *   BM_Any_Probe                      pl_probe of the directory
 *   BM_Raw{Flock,Lockf,Ofd}_LockUnlock  lock + unlock syscalls, open fd
 *   BM_Raw{Flock,Lockf,Ofd}_Cycle       open + lock + unlock + close
 * UseRealTime everywhere: the work is in system calls.  Debian's
 * libbenchmark 1.7.1 prints "Library was built as DEBUG": that is the
 * library's own build type (its timing loop), not ours.
 */
#include "benchkit.h"
#include "gbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[4096];
static int g_errors; /* benchmarks that stopped with an error: exit 1 */

static void fail(plgb_state_t *st, const char *msg) {
    g_errors++;
    plgb_skip_with_error(st, msg);
}

static void lock_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s.lock", g_dir, name);
}

static pl_lock_options_t options(pl_backend_t b) {
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.backend = b;
    return o;
}

/* The benchmark's argument: the backend, as a pointer to a static table. */
static pl_backend_t backend_of(void *arg) {
    return *(const pl_backend_t *)arg;
}

static void bm_lock_unlock(plgb_state_t *st, void *arg) {
    pl_backend_t b = backend_of(arg);
    char path[4200];
    pl_error_t e;
    int fd;

    lock_path(path, sizeof(path), "lockunlock");
    if ((fd = bk_raw_open(path)) < 0) {
        fail(st, strerror(errno));
        return;
    }
    while (plgb_keep_running(st)) {
        int rc = pl_lock_fd(fd, PL_EXCLUSIVE | PL_NON_BLOCKING, b, &e);
        if (rc == PL_OK)
            rc = pl_unlock_fd(fd, b, &e);
        if (rc != PL_OK) {
            fail(st, e.msg);
            break;
        }
    }
    plgb_set_items_processed(st, plgb_iterations(st));
    close(fd);
}

static void bm_cycle(plgb_state_t *st, void *arg) {
    pl_lock_options_t o = options(backend_of(arg));
    pl_lock_t *lock = NULL;
    char path[4200];
    int rc;

    lock_path(path, sizeof(path), "cycle");
    if ((rc = pl_lock_open(&lock, path, &o)) != PL_OK) {
        fail(st, pl_strerror(rc));
        return;
    }
    while (plgb_keep_running(st)) {
        rc = pl_lock_acquire(lock);
        if (rc == PL_OK)
            rc = pl_lock_release(lock);
        if (rc != PL_OK) {
            fail(st, pl_lock_errmsg(lock));
            break;
        }
    }
    plgb_set_items_processed(st, plgb_iterations(st));
    pl_lock_close(lock);
}

static void bm_semaphore(plgb_state_t *st, void *arg) {
    pl_backend_t b = backend_of(arg);
    pl_lock_options_t o = options(b);
    pl_semaphore_t *sem = NULL;
    const char *p;
    char name[64];
    int rc;

    snprintf(name, sizeof(name), "gbsem_%s", pl_backend_name(b));
    if ((rc = pl_semaphore_open(&sem, 4, name, g_dir, &o)) != PL_OK) {
        fail(st, pl_strerror(rc));
        return;
    }
    while (plgb_keep_running(st)) {
        rc = pl_semaphore_acquire(sem);
        if (rc == PL_OK)
            rc = pl_semaphore_release(sem);
        if (rc != PL_OK) {
            fail(st, pl_semaphore_errmsg(sem));
            break;
        }
    }
    plgb_set_items_processed(st, plgb_iterations(st));
    for (unsigned i = 0; (p = pl_semaphore_slot_path(sem, i)) != NULL; i++)
        unlink(p);
    pl_semaphore_close(sem);
}

static void bm_rlock_nest(plgb_state_t *st, void *arg) {
    pl_lock_options_t o = options(backend_of(arg));
    pl_lock_t *lock = NULL;
    char path[4200];
    int rc;

    lock_path(path, sizeof(path), "rlock");
    rc = pl_rlock_open(&lock, path, &o);
    if (rc == PL_OK)
        rc = pl_lock_acquire(lock); /* depth 1, held across the loop */
    if (rc != PL_OK) {
        fail(st, lock != NULL ? pl_lock_errmsg(lock) : pl_strerror(rc));
        pl_lock_close(lock);
        return;
    }
    while (plgb_keep_running(st)) {
        rc = pl_lock_acquire(lock); /* depth 2 */
        if (rc == PL_OK)
            rc = pl_lock_release(lock); /* back to 1 */
        if (rc != PL_OK || pl_lock_count(lock) != 1) {
            fail(st, pl_lock_errmsg(lock));
            break;
        }
    }
    pl_lock_release(lock);
    plgb_set_items_processed(st, plgb_iterations(st));
    pl_lock_close(lock);
}

static void bm_probe(plgb_state_t *st, void *arg) {
    pl_probe_t p;
    pl_error_t e;
    (void)arg;
    memset(&p, 0, sizeof(p));
    while (plgb_keep_running(st)) {
        if (pl_probe(g_dir, &p, &e) != PL_OK) {
            fail(st, e.msg);
            break;
        }
    }
    plgb_set_label(st, p.fstype);
    plgb_set_items_processed(st, plgb_iterations(st));
}

static void bm_raw_lock_unlock(plgb_state_t *st, void *arg) {
    pl_backend_t b = backend_of(arg);
    char path[4200];
    int fd;

    lock_path(path, sizeof(path), "rawlockunlock");
    if ((fd = bk_raw_open(path)) < 0) {
        fail(st, strerror(errno));
        return;
    }
    while (plgb_keep_running(st)) {
        int rc = bk_raw_lock(fd, b, 0);
        if (rc == 0)
            rc = bk_raw_unlock(fd, b);
        if (rc != 0) {
            fail(st, strerror(rc));
            break;
        }
    }
    plgb_set_items_processed(st, plgb_iterations(st));
    close(fd);
}

static void bm_raw_cycle(plgb_state_t *st, void *arg) {
    pl_backend_t b = backend_of(arg);
    char path[4200];

    lock_path(path, sizeof(path), "rawcycle");
    while (plgb_keep_running(st)) {
        int rc, fd = bk_raw_open(path);
        if (fd < 0) {
            fail(st, strerror(errno));
            break;
        }
        rc = bk_raw_lock(fd, b, 0);
        if (rc == 0)
            rc = bk_raw_unlock(fd, b);
        close(fd);
        if (rc != 0) {
            fail(st, strerror(rc));
            break;
        }
    }
    plgb_set_items_processed(st, plgb_iterations(st));
}

static void reg(const char *prefix, const char *backend, const char *op,
                plgb_fn fn, const pl_backend_t *b) {
    char name[128];
    snprintf(name, sizeof(name), "%s%s_%s", prefix, backend, op);
    plgb_use_real_time(plgb_register(name, fn, (void *)b));
}

static void register_all(void) {
    static const pl_backend_t backends[] = {PL_BACKEND_FLOCK, PL_BACKEND_LOCKF,
                                            PL_BACKEND_OFD};
    static const char *const names[] = {"Flock", "Lockf", "Ofd"};
    /* Each raw row next to the row it limits, so that drift in the
     * machine's load hits both alike (run.py also interleaves repetitions
     * randomly). */
    for (int i = 0; i < 3; i++) {
        const pl_backend_t *b = &backends[i];
        if (!pl_backend_available(*b))
            continue;
        reg("BM_Raw", names[i], "LockUnlock", bm_raw_lock_unlock, b);
        reg("BM_", names[i], "LockUnlock", bm_lock_unlock, b);
        reg("BM_Raw", names[i], "Cycle", bm_raw_cycle, b);
        reg("BM_", names[i], "Cycle", bm_cycle, b);
        reg("BM_", names[i], "Semaphore", bm_semaphore, b);
        reg("BM_", names[i], "RLockNest", bm_rlock_nest, b);
    }
    plgb_use_real_time(plgb_register("BM_Any_Probe", bm_probe, NULL));
}

int main(int argc, char **argv) {
    const char *base = NULL;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    char *dir;
    int n = 0;

    if (args == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--pl_dir=", 9) == 0)
            base = argv[i] + 9;
        else
            args[n++] = argv[i];
    }
    if (base == NULL || base[0] == '\0') {
        base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = "/tmp";
    }
    dir = bk_mkdtemp(base);
    if (dir == NULL || strlen(dir) >= sizeof(g_dir)) {
        perror("pl_bench: mkdtemp");
        free(args);
        return 1;
    }
    strcpy(g_dir, dir);
    free(dir);
    plgb_initialize(&n, args);
    if (plgb_report_unrecognized(n, args)) {
        bk_rmdir_flat(g_dir);
        free(args);
        return 1;
    }
    plgb_add_context("portalock", pl_version());
    plgb_add_context("pl_dir", g_dir);
    register_all();
    plgb_run();
    plgb_shutdown();
    bk_rmdir_flat(g_dir);
    free(args);
    if (g_errors != 0) {
        fprintf(stderr, "pl_bench: %d benchmark(s) failed\n", g_errors);
        return 1;
    }
    return 0;
}
