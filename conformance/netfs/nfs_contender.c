/*
 * nfs_contender.c -- a portalock-conformance/1 contender (PROTOCOL.md) whose
 * lock is an NFSv4 LOCK / LOCKU sent with libnfs: no kernel NFS client, the
 * server's lock manager (nfs-ganesha here) and the network are what is
 * measured.  Each lock object is its own NFS client (libnfs context, client
 * id, lease), so two objects in one process are two clients.
 *
 * Usage: pl_nfs_contender --url nfs://HOST[:PORT]/EXPORT [--root DIR]
 *                         [--renew SECONDS]
 *   --renew S   keep the lease alive after S silent seconds (default 1.5,
 *               a third of the 5 s lease ci/fs.sh configures; a Linux client
 *               renews at a third of the server's lease)
 *   --root DIR  the export's directory on the server's file system: lock
 *               paths under DIR are sent relative to it (so the suite can
 *               give the same path to a server-local contender); other
 *               paths are taken as relative to the export.
 *
 * Waiting is polling, as a real NFSv4.0 client does it (the protocol has no
 * wait; NFSv4.1 adds an optional CB_NOTIFY_LOCK hint): acquire retries LOCK
 * every check_interval until the timeout, or with poll=linux on the Linux
 * client's schedule (1 s, doubling, at most 30 s: NFS4_LOCK_MINTIMEOUT and
 * NFS4_LOCK_MAXTIMEOUT in fs/nfs/nfs4proc.c).  Replies carry polls=N.
 */
#include "nfs4client.h"
#include "portalock.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OBJECTS 8

typedef struct obj {
    char id[32];
    pln_client_t *c;
    int held;
    int shared;
    double timeout, check_interval;
    int fail_when_locked;
} obj_t;

static obj_t objects[MAX_OBJECTS];
static const char *url;
static const char *root;
static double renew_s = 1.5; /* a third of ganesha's 5 s test lease */

static obj_t *find(const plp_args_t *a, int create) {
    const char *id = plp_arg(a, "id");
    obj_t *free_slot = NULL;
    if (id == NULL)
        id = "0";
    for (int i = 0; i < MAX_OBJECTS; i++) {
        if (objects[i].c != NULL && strcmp(objects[i].id, id) == 0)
            return create ? NULL : &objects[i];
        if (objects[i].c == NULL && free_slot == NULL)
            free_slot = &objects[i];
    }
    if (create && free_slot != NULL)
        snprintf(free_slot->id, sizeof(free_slot->id), "%s", id);
    return create ? free_slot : NULL;
}

/* The path relative to the export. */
static const char *export_path(const char *path) {
    size_t n = root != NULL ? strlen(root) : 0;
    if (n > 0 && strncmp(path, root, n) == 0 && path[n] == '/')
        return path + n;
    return path;
}

static void cmd_open(const plp_args_t *a) {
    const char *path = plp_arg(a, "path"), *kind = plp_arg(a, "kind");
    obj_t *o = find(a, 1);
    char err[256];

    if (o == NULL || path == NULL) {
        plp_reply_error(PL_EINVAL, "open: need path= and a new id=");
        return;
    }
    if (kind != NULL && strcmp(kind, "lock") != 0) {
        plp_reply_error(PL_ENOTSUP, "kind %s: only lock", kind);
        return;
    }
    o->timeout = plp_arg_seconds(a, "timeout", 5.0);
    o->check_interval = plp_arg_seconds(a, "check_interval", 0.25);
    o->fail_when_locked = (int)plp_arg_long(a, "fail_when_locked", 0);
    o->shared = plp_has_word(a, "shared") || plp_arg_long(a, "shared", 0) == 1;
    o->held = 0;
    o->c = pln_connect(url, export_path(path), renew_s, err, sizeof(err));
    if (o->c == NULL) {
        plp_reply_error(strstr(err, "NOENT") != NULL ? PL_ENOENT : PL_EOS,
                        "%s: %s", path, err);
        return;
    }
    plp_reply("opened id=%s t=%lld", o->id, (long long)plp_now_ns());
}

/*
 * One acquisition: LOCK, and while denied and time is left, sleep and try
 * again.  PL_OK, PL_ELOCKED (gave up at once), PL_ETIMEDOUT, PL_EOS.
 */
static int acquire(obj_t *o, double timeout, double interval, int fwl,
                   int linux_poll, long *polls) {
    int64_t deadline = plp_now_ns() + (int64_t)(timeout * 1e9);
    double step = linux_poll ? 1.0 : interval;

    *polls = 0;
    for (;;) {
        int rc = pln_try_lock(o->c, o->shared);
        ++*polls;
        if (rc == PLN_LOCKED) {
            o->held = 1;
            return PL_OK;
        }
        if (rc == PLN_ERROR)
            return PL_EOS;
        if (timeout == 0 || fwl)
            return PL_ELOCKED;
        if (timeout > 0) {
            int64_t left = deadline - plp_now_ns();
            if (left <= 0)
                return PL_ETIMEDOUT;
            plp_sleep_s(step < (double)left / 1e9 ? step : (double)left / 1e9);
        } else {
            plp_sleep_s(step);
        }
        if (linux_poll)
            step = step * 2 > 30.0 ? 30.0 : step * 2;
    }
}

static void cmd_acquire(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    const char *poll = plp_arg(a, "poll");
    int64_t t0, t;
    long polls;
    int rc;

    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    if (o->held) {
        plp_reply_error(PL_EHELD, "already held");
        return;
    }
    if (plp_has_word(a, "shared"))
        o->shared = 1;
    else if (plp_has_word(a, "exclusive"))
        o->shared = 0;
    t0 = plp_now_ns();
    rc = acquire(o, plp_arg_seconds(a, "timeout", o->timeout),
                 plp_arg_seconds(a, "check_interval", o->check_interval),
                 (int)plp_arg_long(a, "fail_when_locked", o->fail_when_locked),
                 poll != NULL && strcmp(poll, "linux") == 0, &polls);
    t = plp_now_ns();
    if (rc == PL_OK)
        plp_reply("acquired id=%s t0=%lld t=%lld count=1 polls=%ld "
                  "reconnects=%u",
                  o->id, (long long)t0, (long long)t, polls,
                  pln_reconnects(o->c));
    else if (rc == PL_ELOCKED)
        plp_reply("already-locked id=%s t0=%lld t=%lld polls=%ld", o->id,
                  (long long)t0, (long long)t, polls);
    else if (rc == PL_ETIMEDOUT)
        plp_reply("timeout id=%s t0=%lld t=%lld polls=%ld", o->id,
                  (long long)t0, (long long)t, polls);
    else
        plp_reply_error(rc, "%s", pln_error(o->c));
}

static void cmd_release(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    int64_t t = plp_now_ns();
    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    if (!o->held) {
        plp_reply_error(PL_ENOTHELD, "not held");
        return;
    }
    if (pln_unlock(o->c) != 0) {
        plp_reply_error(PL_EOS, "%s", pln_error(o->c));
        return;
    }
    o->held = 0;
    plp_reply("released id=%s t=%lld count=0 t_done=%lld", o->id, (long long)t,
              (long long)plp_now_ns());
}

static void cmd_close(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    if (o->held)
        pln_unlock(o->c);
    pln_destroy(o->c);
    o->c = NULL;
    plp_reply("closed id=%s t=%lld", o->id, (long long)plp_now_ns());
}

/* counter=PATH: a read-modify-write of a local file (the server's view of
 * the export when the contender runs there). */
static int bump(const char *path) {
    char buf[32] = {0};
    long v;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ssize_t n;
    if (fd < 0)
        return -1;
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    v = n > 0 ? strtol(buf, NULL, 10) : 0;
    n = snprintf(buf, sizeof(buf), "%ld\n", v + 1);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static void cmd_cycle(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    long n = plp_arg_long(a, "n", 1), i, polls;
    double hold = plp_arg_seconds(a, "hold", 0);
    double timeout = plp_arg_seconds(a, "timeout", o != NULL ? o->timeout : 5);
    double interval = plp_arg_seconds(a, "check_interval",
                                      o != NULL ? o->check_interval : 0.25);
    const char *counter = plp_arg(a, "counter");
    size_t li = 0, cap;
    char *iv;
    int rc;

    if (o == NULL || n < 1 || n > 100000 || o->held) {
        plp_reply_error(PL_EINVAL, "cycle: bad id or n, or held");
        return;
    }
    cap = (size_t)n * 44 + 64;
    if ((iv = malloc(cap)) == NULL) {
        plp_reply_error(PL_ENOMEM, "cycle: out of memory");
        return;
    }
    iv[0] = '\0';
    for (i = 0; i < n; i++) {
        int64_t ta, tr;
        rc = acquire(o, timeout, interval, 0, 0, &polls);
        if (rc != PL_OK) {
            plp_reply_error(rc, "cycle %ld/%ld: %s", i + 1, n,
                            rc == PL_EOS ? pln_error(o->c) : pl_strerror(rc));
            free(iv);
            return;
        }
        ta = plp_now_ns();
        if (counter != NULL && bump(counter) != 0) {
            plp_reply_error(PL_EOS, "cycle %ld/%ld: counter %s: %s", i + 1, n,
                            counter, strerror(errno));
            free(iv);
            return;
        }
        plp_sleep_s(hold);
        tr = plp_now_ns();
        if (pln_unlock(o->c) != 0) {
            plp_reply_error(PL_EOS, "cycle %ld/%ld: %s", i + 1, n,
                            pln_error(o->c));
            free(iv);
            return;
        }
        o->held = 0;
        li += (size_t)snprintf(iv + li, cap - li, "%s%lld:%lld",
                               i > 0 ? "," : "", (long long)ta, (long long)tr);
    }
    plp_reply("cycled id=%s n=%ld intervals=%s t=%lld", o->id, n, iv,
              (long long)plp_now_ns());
    free(iv);
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* bench n=N: N uncontended LOCK + LOCKU round trips (p50/p99 in us), and
 * N LOCKT alone. */
static void cmd_bench(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    long n = plp_arg_long(a, "n", 200), i;
    int64_t *d, *t;
    if (o == NULL || n < 10 || n > 1000000 || o->held) {
        plp_reply_error(PL_EINVAL, "bench: bad id or n, or held");
        return;
    }
    d = malloc((size_t)n * sizeof(*d));
    t = malloc((size_t)n * sizeof(*t));
    if (d == NULL || t == NULL) {
        free(d);
        free(t);
        plp_reply_error(PL_ENOMEM, "bench: out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        int64_t t0 = plp_now_ns(), t1;
        int rc = pln_try_lock(o->c, o->shared);
        if (rc == PLN_LOCKED)
            rc = pln_unlock(o->c);
        t1 = plp_now_ns();
        if (rc == 0)
            rc = pln_test(o->c, 0) == PLN_LOCKED ? 0 : -1;
        if (rc != 0) {
            plp_reply_error(rc == PLN_DENIED ? PL_ELOCKED : PL_EOS,
                            "bench %ld/%ld: %s", i + 1, n, pln_error(o->c));
            free(d);
            free(t);
            return;
        }
        d[i] = t1 - t0;
        t[i] = plp_now_ns() - t1;
    }
    qsort(d, (size_t)n, sizeof(*d), cmp_i64);
    qsort(t, (size_t)n, sizeof(*t), cmp_i64);
    plp_reply("bench id=%s n=%ld p50_us=%.1f p99_us=%.1f lockt_p50_us=%.1f "
              "lockt_p99_us=%.1f",
              o->id, n, (double)d[n / 2] / 1e3, (double)d[n * 99 / 100] / 1e3,
              (double)t[n / 2] / 1e3, (double)t[n * 99 / 100] / 1e3);
    free(d);
    free(t);
}

static void close_all(void) {
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].c != NULL) {
            if (objects[i].held)
                pln_unlock(objects[i].c);
            pln_destroy(objects[i].c);
            objects[i].c = NULL;
        }
}

static int dispatch(char *line) {
    plp_args_t a;
    plp_split_args(line, &a);
    if (a.n == 0)
        plp_reply_error(PL_EINVAL, "empty command");
    else if (strcmp(a.key[0], "hello") == 0)
        plp_reply("hello protocol=%s impl=libnfs-nfs4 version=4.0.0 pid=%ld "
                  "kinds=lock backends=nfs4 features=shared,cycle,counter,"
                  "crash,bench,poll",
                  PLP_PROTOCOL, (long)getpid());
    else if (strcmp(a.key[0], "open") == 0)
        cmd_open(&a);
    else if (strcmp(a.key[0], "acquire") == 0)
        cmd_acquire(&a);
    else if (strcmp(a.key[0], "release") == 0)
        cmd_release(&a);
    else if (strcmp(a.key[0], "close") == 0)
        cmd_close(&a);
    else if (strcmp(a.key[0], "cycle") == 0)
        cmd_cycle(&a);
    else if (strcmp(a.key[0], "bench") == 0)
        cmd_bench(&a);
    else if (strcmp(a.key[0], "crash") == 0) {
        fflush(stdout);
        kill(getpid(), SIGKILL);
    } else if (strcmp(a.key[0], "quit") == 0) {
        close_all();
        plp_reply("bye t=%lld", (long long)plp_now_ns());
        return 1;
    } else
        plp_reply_error(PL_EINVAL, "unknown command '%s'", a.key[0]);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            root = argv[++i];
        else if (strcmp(argv[i], "--renew") == 0 && i + 1 < argc)
            renew_s = strtod(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: pl_nfs_contender --url "
                            "nfs://HOST[:PORT]/EXPORT [--root DIR] "
                            "[--renew SECONDS]\n");
            return 2;
        }
    }
    if (url == NULL) {
        fprintf(stderr, "pl_nfs_contender: --url is required\n");
        return 2;
    }
    plp_serve(dispatch);
    close_all();
    return 0;
}
