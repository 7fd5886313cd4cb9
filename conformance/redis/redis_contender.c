/*
 * redis_contender.c -- pl_redis_contender: a contender for the Redis
 * conformance cases.  It speaks the portalock-conformance/1 lines the
 * generic contender speaks (hello, open, acquire, release, cycle, crash,
 * quit; see conformance/PROTOCOL.md) on pl_redis_lock_open() locks, and
 * adds what only a Redis lock has:
 *
 *   open ... [shared] [fair] [unavailable_timeout=S] [evict_stalled=0|1]
 *   acquired ... token=N           fencing token of the grant
 *   cycled ... tokens=N,N,...      one token per interval
 *   check id=X  -> checked id=X result=PL_OK|PL_ELOST|... lost=N
 *                  (lost = times the on_lost callback ran)
 *   bench id=X n=N -> bench id=X n=N p50_us=.. p99_us=..   uncontended
 *                  acquire+release latency (see DESIGN.md, measurements)
 *
 * Usage: pl_redis_contender --redis URL
 *
 * It builds wherever the library has the Redis lock (POSIX, and Windows
 * with hiredis: the Linux suite drives pl_redis_contender.exe under Wine,
 * PORTING.md); what differs per OS is behind ../contender/os.h and named
 * in hello (clock=, crash=, platform=).
 */
#include "os.h"
#include "portalock.h"
#include "proto.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJECTS 8

typedef struct obj {
    char id[32];
    pl_lock_t *lock;
    atomic_int lost; /* on_lost calls */
} obj_t;


static obj_t objects[MAX_OBJECTS];
static pl_redis_options_t base;


static obj_t *find(const plp_args_t *a, int create) {
    const char *id = plp_arg(a, "id");
    obj_t *free_slot = NULL;
    int i;
    if (id == NULL)
        id = "0";
    for (i = 0; i < MAX_OBJECTS; i++) {
        if (objects[i].lock != NULL && strcmp(objects[i].id, id) == 0)
            return create ? NULL : &objects[i];
        if (objects[i].lock == NULL && free_slot == NULL)
            free_slot = &objects[i];
    }
    if (create && free_slot != NULL)
        snprintf(free_slot->id, sizeof(free_slot->id), "%s", id);
    return create ? free_slot : NULL;
}

static void on_lost(pl_lock_t *lock, int reason, void *arg) {
    obj_t *o = arg;
    (void)lock;
    (void)reason;
    atomic_fetch_add(&o->lost, 1);
}

static void cmd_open(const plp_args_t *a) {
    pl_redis_options_t r = base;
    const char *path = plp_arg(a, "path");
    obj_t *o = find(a, 1);
    int rc;

    if (o == NULL || path == NULL) {
        plp_reply_error(PL_EINVAL, "open: need path= and a new id=");
        return;
    }
    r.timeout = plp_arg_seconds(a, "timeout", r.timeout);
    r.check_interval = plp_arg_seconds(a, "check_interval", r.check_interval);
    r.fail_when_locked = (int)plp_arg_long(a, "fail_when_locked", 0);
    r.unavailable_timeout =
        plp_arg_seconds(a, "unavailable_timeout", r.unavailable_timeout);
    r.evict_stalled = (int)plp_arg_long(a, "evict_stalled", r.evict_stalled);
    r.shared = plp_has_word(a, "shared") || plp_arg_long(a, "shared", 0) == 1;
    r.fair = plp_has_word(a, "fair") || plp_arg_long(a, "fair", 0) == 1;
    r.on_lost = on_lost;
    r.on_lost_arg = o;
    atomic_store(&o->lost, 0);
    rc = pl_redis_lock_open(&o->lock, path, &r);
    if (rc != PL_OK) {
        o->lock = NULL;
        plp_reply_error(rc, "%s", pl_strerror(rc));
        return;
    }
    plp_reply("opened id=%s t=%lld", o->id, (long long)plp_now_ns());
}

static void cmd_acquire(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    int64_t t0, t;
    int rc;
    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    t0 = plp_now_ns();
    rc = pl_lock_acquire_with(o->lock, plp_arg_seconds(a, "timeout", PL_UNSET),
                              plp_arg_seconds(a, "check_interval", PL_UNSET),
                              (int)plp_arg_long(a, "fail_when_locked", -1));
    t = plp_now_ns();
    if (rc == PL_OK)
        plp_reply("acquired id=%s t0=%lld t=%lld count=1 token=%llu", o->id,
                  (long long)t0, (long long)t,
                  (unsigned long long)pl_lock_fencing_token(o->lock));
    else if (rc == PL_ELOCKED)
        plp_reply("already-locked id=%s t0=%lld t=%lld", o->id, (long long)t0,
                  (long long)t);
    else if (rc == PL_ETIMEDOUT)
        plp_reply("timeout id=%s t0=%lld t=%lld", o->id, (long long)t0,
                  (long long)t);
    else
        plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
}

static void cmd_release(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    int64_t t = plp_now_ns();
    int rc;
    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    rc = pl_lock_release(o->lock);
    if (rc == PL_OK)
        plp_reply("released id=%s t=%lld count=0", o->id, (long long)t);
    else
        plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
}

static void cmd_check(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    int rc;
    if (o == NULL) {
        plp_reply_error(PL_EINVAL, "no such object");
        return;
    }
    rc = pl_lock_check(o->lock);
    plp_reply("checked id=%s result=%s lost=%d t=%lld", o->id, pl_err_name(rc),
              atomic_load(&o->lost), (long long)plp_now_ns());
}


static void cmd_cycle(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    long n = plp_arg_long(a, "n", 1), i;
    double hold = plp_arg_seconds(a, "hold", 0), timeout;
    char *iv, *tk;
    size_t li = 0, lt = 0, cap;
    int rc;

    if (o == NULL || n < 1 || n > 100000) {
        plp_reply_error(PL_EINVAL, "cycle: bad id or n");
        return;
    }
    timeout = plp_arg_seconds(a, "timeout", PL_UNSET);
    cap = (size_t)n * 44 + 64;
    iv = malloc(cap);
    tk = malloc(cap);
    if (iv == NULL || tk == NULL) {
        free(iv);
        free(tk);
        plp_reply_error(PL_ENOMEM, "cycle: out of memory");
        return;
    }
    iv[0] = tk[0] = '\0';
    for (i = 0; i < n; i++) {
        int64_t ta, tr;
        rc = pl_lock_acquire_with(o->lock, timeout, PL_UNSET, -1);
        if (rc != PL_OK) {
            plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
            goto out;
        }
        ta = plp_now_ns();
        lt += (size_t)snprintf(
            tk + lt, cap - lt, "%s%llu", i > 0 ? "," : "",
            (unsigned long long)pl_lock_fencing_token(o->lock));
        plp_sleep_s(hold);
        tr = plp_now_ns();
        if ((rc = pl_lock_release(o->lock)) != PL_OK) {
            plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
            goto out;
        }
        li += (size_t)snprintf(iv + li, cap - li, "%s%lld:%lld",
                               i > 0 ? "," : "", (long long)ta, (long long)tr);
    }
    plp_reply("cycled id=%s n=%ld intervals=%s tokens=%s t=%lld", o->id, n, iv,
              tk, (long long)plp_now_ns());
out:
    free(iv);
    free(tk);
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static void cmd_bench(const plp_args_t *a) {
    obj_t *o = find(a, 0);
    long n = plp_arg_long(a, "n", 1000), i;
    int64_t *d;
    if (o == NULL || n < 10 || n > 1000000) {
        plp_reply_error(PL_EINVAL, "bench: bad id or n");
        return;
    }
    d = malloc((size_t)n * sizeof(*d));
    if (d == NULL) {
        plp_reply_error(PL_ENOMEM, "bench: out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        int64_t t0 = plp_now_ns();
        int rc = pl_lock_acquire_with(o->lock, 5, PL_UNSET, -1);
        if (rc == PL_OK)
            rc = pl_lock_release(o->lock);
        if (rc != PL_OK) {
            plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
            free(d);
            return;
        }
        d[i] = plp_now_ns() - t0;
    }
    qsort(d, (size_t)n, sizeof(*d), cmp_i64);
    plp_reply("bench id=%s n=%ld p50_us=%.1f p99_us=%.1f", o->id, n,
              (double)d[n / 2] / 1e3, (double)d[n * 99 / 100] / 1e3);
    free(d);
}

static void close_all(void) {
    int i;
    for (i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].lock != NULL) {
            pl_lock_close(objects[i].lock);
            objects[i].lock = NULL;
        }
}

/* hello's optional fields where the OS differs from the protocol's
 * defaults (PROTOCOL.md §4); wait= is about file locks and not said. */
static void hello(void) {
    const char *clock = plc_os_clock_name();
    const char *crash = plc_os_crash_style();
    const char *platform = plc_os_platform();
    plp_reply("hello protocol=%s impl=portalock version=%s pid=%ld "
              "kinds=lock backends=redis "
              "features=shared,cycle,crash,token,check,lost,bench%s%s%s%s%s%s",
              PLP_PROTOCOL, pl_version(), plc_os_pid(),
              clock != NULL ? " clock=" : "", clock != NULL ? clock : "",
              crash != NULL ? " crash=" : "", crash != NULL ? crash : "",
              platform != NULL ? " platform=" : "",
              platform != NULL ? platform : "");
}

static int dispatch(char *line) {
    plp_args_t a;
    plp_split_args(line, &a);
    if (a.n == 0)
        plp_reply_error(PL_EINVAL, "empty command");
    else if (strcmp(a.key[0], "hello") == 0)
        hello();
    else if (strcmp(a.key[0], "open") == 0)
        cmd_open(&a);
    else if (strcmp(a.key[0], "acquire") == 0)
        cmd_acquire(&a);
    else if (strcmp(a.key[0], "release") == 0)
        cmd_release(&a);
    else if (strcmp(a.key[0], "check") == 0)
        cmd_check(&a);
    else if (strcmp(a.key[0], "cycle") == 0)
        cmd_cycle(&a);
    else if (strcmp(a.key[0], "bench") == 0)
        cmd_bench(&a);
    else if (strcmp(a.key[0], "crash") == 0) {
        fflush(stdout);
        plc_os_crash(); /* SIGKILL; TerminateProcess on Windows */
    } else if (strcmp(a.key[0], "quit") == 0) {
        close_all();
        plp_reply("bye t=%lld", (long long)plp_now_ns());
        return 1;
    } else
        plp_reply_error(PL_EINVAL, "unknown command");
    return 0;
}

int main(int argc, char **argv) {
    static char url[1024];
    pl_error_t err;

    if (argc != 3 || strcmp(argv[1], "--redis") != 0 ||
        strlen(argv[2]) >= sizeof(url)) {
        fprintf(stderr, "usage: pl_redis_contender --redis URL\n");
        return 2;
    }
    strcpy(url, argv[2]);
    pl_redis_options_init(&base);
    if (pl_redis_options_from_url(&base, url, &err) != PL_OK) {
        fprintf(stderr, "pl_redis_contender: %s\n", err.msg);
        return 2;
    }
    plp_serve(dispatch);
    close_all();
    return 0;
}
