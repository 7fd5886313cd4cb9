/*
 * pl_cycle -- uncontended cost of one lock operation, timed one by one.
 *
 *   pl_cycle --impl IMPL [--backend flock|lockf|ofd] --target PATH
 *            [--n N] [--budget SECONDS] [--json FILE]
 *
 * IMPL:
 *   ours     pl_lock_acquire + pl_lock_release on a Lock object (the full
 *            Lock cycle: open + lock + unlock + close inside the library)
 *   raw      open + lock + unlock + close as bare syscalls (the limit)
 *   oursfd   pl_lock_fd + pl_unlock_fd on an open descriptor
 *   rawfd    lock + unlock syscalls on an open descriptor
 *   rlock    nested pl_lock_acquire + pl_lock_release on a held RLock
 *   sem      pl_semaphore_acquire + release (4 slots in PATH's directory)
 *   redis    pl_redis_lock acquire + release; --redis HOST:PORT, PATH is
 *            the channel
 *   probe    pl_probe(PATH) (PATH is a directory); also prints its verdict
 * IMPL may be a comma-separated list ("ours,raw"): the implementations then
 * take turns in blocks (so load drift hits them alike), each on its own file
 * (PATH.IMPL), and the JSON has {"results": [one object per IMPL]}.
 * Prints one JSON object (stdout, or FILE).  Exit 0 on success, 2 on a usage
 * error, 3 when the operation is not available (the JSON says why).
 */
#include "benchkit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ctx {
    const char *impl;
    pl_backend_t backend;
    const char *target;
    const char *redis;
    int fd;
    pl_lock_t *lock;
    pl_semaphore_t *sem;
    pl_probe_t probe;
    char err[400];
} ctx_t;

static int setup(ctx_t *c) {
    int rc = PL_OK;
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.backend = c->backend;
    c->fd = -1;
    if (strcmp(c->impl, "ours") == 0) {
        rc = pl_lock_open(&c->lock, c->target, &o);
    } else if (strcmp(c->impl, "rlock") == 0) {
        rc = pl_rlock_open(&c->lock, c->target, &o);
        if (rc == PL_OK && (rc = pl_lock_acquire(c->lock)) != PL_OK) {
            snprintf(c->err, sizeof c->err, "pl_lock_acquire: %s",
                     pl_lock_errmsg(c->lock));
            return -1;
        }
    } else if (strcmp(c->impl, "sem") == 0) {
        char dir[4096], name[64];
        const char *slash = strrchr(c->target, '/');
        size_t dl = slash ? (size_t)(slash - c->target) : 1;
        if (dl >= sizeof dir)
            dl = sizeof dir - 1;
        memcpy(dir, slash ? c->target : ".", dl);
        dir[dl] = '\0';
        snprintf(name, sizeof name, "plbench_sem_%ld", (long)getpid());
        o.timeout = 5;
        rc = pl_semaphore_open(&c->sem, 4, name, dir, &o);
    } else if (strcmp(c->impl, "redis") == 0) {
        pl_redis_options_t ro;
        char hostport[300], *colon;
        pl_redis_options_init(&ro);
        snprintf(hostport, sizeof hostport, "%s",
                 c->redis ? c->redis : "127.0.0.1:6379");
        colon = strrchr(hostport, ':');
        if (colon != NULL) {
            *colon = '\0';
            ro.port = atoi(colon + 1);
        }
        ro.host = hostport;
        rc = pl_redis_lock_open(&c->lock, c->target, &ro);
        if (rc == PL_OK) {
            /* one round trip to see whether the server is there at all */
            rc = pl_lock_acquire(c->lock);
            if (rc != PL_OK) {
                snprintf(c->err, sizeof c->err, "acquire: %s",
                         pl_lock_errmsg(c->lock));
                return -1;
            }
            rc = pl_lock_release(c->lock);
        }
    } else if (strcmp(c->impl, "oursfd") == 0 ||
               strcmp(c->impl, "rawfd") == 0) {
        c->fd = bk_raw_open(c->target);
        if (c->fd < 0) {
            snprintf(c->err, sizeof c->err, "open(%s): %s", c->target,
                     strerror(errno));
            return -1;
        }
    } else if (strcmp(c->impl, "raw") != 0 && strcmp(c->impl, "probe") != 0) {
        snprintf(c->err, sizeof c->err, "unknown impl %s", c->impl);
        return -2;
    }
    if (rc != PL_OK) {
        snprintf(c->err, sizeof c->err, "%s: %s%s%s", c->impl, pl_strerror(rc),
                 c->lock ? ": " : "", c->lock ? pl_lock_errmsg(c->lock) : "");
        return -1;
    }
    return 0;
}

static int one(ctx_t *c) {
    int rc;
    pl_error_t e;
    const char *impl = c->impl;
    if (strcmp(impl, "ours") == 0 || strcmp(impl, "rlock") == 0 ||
        strcmp(impl, "redis") == 0) {
        rc = pl_lock_acquire(c->lock);
        if (rc == PL_OK)
            rc = pl_lock_release(c->lock);
        if (rc != PL_OK) {
            snprintf(c->err, sizeof c->err, "%s", pl_lock_errmsg(c->lock));
            return -1;
        }
    } else if (strcmp(impl, "sem") == 0) {
        rc = pl_semaphore_acquire(c->sem);
        if (rc == PL_OK)
            rc = pl_semaphore_release(c->sem);
        if (rc != PL_OK) {
            snprintf(c->err, sizeof c->err, "%s", pl_semaphore_errmsg(c->sem));
            return -1;
        }
    } else if (strcmp(impl, "oursfd") == 0) {
        rc = pl_lock_fd((pl_fd_t)c->fd, PL_EXCLUSIVE | PL_NON_BLOCKING,
                        c->backend, &e);
        if (rc == PL_OK)
            rc = pl_unlock_fd((pl_fd_t)c->fd, c->backend, &e);
        if (rc != PL_OK) {
            snprintf(c->err, sizeof c->err, "%s", e.msg);
            return -1;
        }
    } else if (strcmp(impl, "rawfd") == 0) {
        rc = bk_raw_lock(c->fd, c->backend, 0);
        if (rc == 0)
            rc = bk_raw_unlock(c->fd, c->backend);
        if (rc != 0) {
            snprintf(c->err, sizeof c->err, "lock: %s", strerror(rc));
            return -1;
        }
    } else if (strcmp(impl, "raw") == 0) {
        int fd = bk_raw_open(c->target);
        if (fd < 0) {
            snprintf(c->err, sizeof c->err, "open: %s", strerror(errno));
            return -1;
        }
        rc = bk_raw_lock(fd, c->backend, 0);
        if (rc == 0)
            rc = bk_raw_unlock(fd, c->backend);
        close(fd);
        if (rc != 0) {
            snprintf(c->err, sizeof c->err, "lock: %s", strerror(rc));
            return -1;
        }
    } else { /* probe */
        rc = pl_probe(c->target, &c->probe, &e);
        if (rc != PL_OK) {
            snprintf(c->err, sizeof c->err, "pl_probe: %s", e.msg);
            return -1;
        }
    }
    return 0;
}

static void teardown(ctx_t *c) {
    if (strcmp(c->impl, "rlock") == 0 && c->lock != NULL)
        pl_lock_release(c->lock);
    pl_lock_close(c->lock);
    if (c->sem != NULL) {
        unsigned i;
        const char *p;
        for (i = 0; (p = pl_semaphore_slot_path(c->sem, i)) != NULL; i++)
            unlink(p);
    }
    pl_semaphore_close(c->sem);
    if (c->fd >= 0)
        close(c->fd);
}

static void usage(void) {
    fprintf(stderr, "usage: pl_cycle --impl IMPL [--backend B] --target PATH "
                    "[--n N] [--budget S] [--redis HOST:PORT] [--json FILE]\n");
}

static void print_one(FILE *out, const ctx_t *c, const char *bname, int status,
                      bk_samples_t *s) {
    bk_stats_t st = bk_stats(s);
    fprintf(out, "{\"tool\": \"pl_cycle\", \"impl\": ");
    bk_json_str(out, c->impl);
    fprintf(out, ", \"backend\": ");
    bk_json_str(out, bname);
    fprintf(out, ", \"target\": ");
    bk_json_str(out, c->target);
    fprintf(out, ", \"ok\": %s, \"error\": ", status == 0 ? "true" : "false");
    bk_json_str(out, status == 0 ? "" : c->err);
    fprintf(out, ", \"stats\": ");
    bk_stats_json(out, &st);
    if (strcmp(c->impl, "probe") == 0 && status == 0) {
        char buf[2048];
        if (pl_probe_to_json(&c->probe, buf, sizeof buf) == PL_OK)
            fprintf(out, ", \"probe\": %s", buf);
    }
    fprintf(out, "}");
}

#define MAXIMPL 6
#define BLOCKS  20

int main(int argc, char **argv) {
    ctx_t c[MAXIMPL];
    bk_samples_t s[MAXIMPL];
    int status[MAXIMPL];
    char targets[MAXIMPL][4096], impls[256];
    const char *impl_arg = "ours", *target = NULL, *redis = NULL;
    long n = 20000;
    double budget = 2.0;
    const char *json = NULL, *bname = "flock";
    FILE *out = stdout;
    pl_backend_t backend;
    int i, k, nimpl = 0, bad = 0;
    int64_t start;
    char *tok, *save = NULL;

    for (i = 1; i < argc; i += 2) { /* --option value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--impl") == 0)
            impl_arg = v;
        else if (strcmp(a, "--backend") == 0)
            bname = v;
        else if (strcmp(a, "--target") == 0)
            target = v;
        else if (strcmp(a, "--n") == 0)
            n = atol(v);
        else if (strcmp(a, "--budget") == 0)
            budget = atof(v);
        else if (strcmp(a, "--redis") == 0)
            redis = v;
        else if (strcmp(a, "--json") == 0)
            json = v;
        else {
            usage();
            return 2;
        }
    }
    if (target == NULL || n <= 0 ||
        pl_backend_from_name(bname, &backend) != PL_OK ||
        strlen(impl_arg) >= sizeof impls) {
        usage();
        return 2;
    }
    /* "ours,raw": measured in alternating blocks, each on its own file */
    snprintf(impls, sizeof impls, "%s", impl_arg);
    memset(c, 0, sizeof c);
    for (tok = strtok_r(impls, ",", &save); tok != NULL && nimpl < MAXIMPL;
         tok = strtok_r(NULL, ",", &save)) {
        ctx_t *x = &c[nimpl];
        x->impl = tok;
        x->backend = backend;
        x->redis = redis;
        if (strchr(impl_arg, ',') != NULL && strcmp(tok, "probe") != 0)
            snprintf(targets[nimpl], sizeof targets[nimpl], "%.4000s.%s",
                     target, tok);
        else
            snprintf(targets[nimpl], sizeof targets[nimpl], "%s", target);
        x->target = targets[nimpl];
        bk_samples_init(&s[nimpl]);
        status[nimpl] = setup(x);
        if (status[nimpl] == -2) {
            fprintf(stderr, "pl_cycle: %s\n", x->err);
            return 2;
        }
        /* warm-up: page cache, dentry, allocator */
        for (i = 0; i < 20 && status[nimpl] == 0; i++)
            status[nimpl] = one(x);
        nimpl++;
    }
    if (nimpl == 0) {
        usage();
        return 2;
    }
    start = bk_now_ns();
    for (i = 0; i < BLOCKS * 100; i++) {
        long per = n / BLOCKS > 0 ? n / BLOCKS : 1;
        int active = 0;
        if (budget > 0 && (double)(bk_now_ns() - start) / 1e9 >= budget)
            break;
        for (k = 0; k < nimpl; k++) {
            ctx_t *x = &c[(i + k) % nimpl]; /* rotate who goes first */
            bk_samples_t *sx = &s[(i + k) % nimpl];
            int *st = &status[(i + k) % nimpl];
            long j;
            for (j = 0; j < per && *st == 0 && (long)sx->n < n; j++) {
                int64_t t0 = bk_now_ns();
                *st = one(x);
                bk_samples_add(sx, bk_now_ns() - t0);
            }
            if (*st == 0 && (long)sx->n < n)
                active = 1;
        }
        if (!active)
            break;
    }
    if (json != NULL && (out = fopen(json, "w")) == NULL) {
        perror(json);
        return 2;
    }
    if (nimpl == 1) {
        print_one(out, &c[0], bname, status[0], &s[0]);
    } else {
        fprintf(out, "{\"tool\": \"pl_cycle\", \"results\": [");
        for (k = 0; k < nimpl; k++) {
            if (k)
                fputs(", ", out);
            print_one(out, &c[k], bname, status[k], &s[k]);
        }
        fprintf(out, "]}");
    }
    fputc('\n', out);
    if (out != stdout)
        fclose(out);
    for (k = 0; k < nimpl; k++) {
        if (status[k] != 0) {
            fprintf(stderr, "pl_cycle %s: %s\n", c[k].impl, c[k].err);
            bad = 1;
        }
        teardown(&c[k]);
        bk_samples_free(&s[k]);
    }
    return bad ? 3 : 0;
}
