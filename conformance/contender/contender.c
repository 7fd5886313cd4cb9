/*
 * contender.c -- the reference contender of the conformance suite: speaks
 * portalock-conformance/1 (conformance/PROTOCOL.md) on stdin/stdout and
 * drives the portalock library.
 *
 * The suite never takes the lock under test in its own process; it starts
 * contenders like this one and choreographs them line by line.  Every reply
 * is one line, flushed at once.  Timestamps are CLOCK_MONOTONIC nanoseconds,
 * comparable across processes on Linux (Windows: see win32/os.c).
 *
 * This file is the same on every platform; what differs (clock, crash,
 * fork, plain file access) is in posix/os.c or win32/os.c behind os.h.
 *
 * Usage: pl_contender [--redis URL]
 *   --redis URL  lock "paths" are channel names and the lock objects are
 *                pl_redis_lock_open() locks on that server (kind "lock").
 *   The default backend comes from PORTALOCK_BACKEND (through the library)
 *   unless a command gives backend=.
 */
#include "os.h"
#include "portalock.h"
#include "proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJECTS 16

typedef struct obj {
    int used;
    char id[32];
    char kind[16]; /* lock rlock temporary pidfile semaphore */
    char *path;    /* lock path or Redis channel */
    char mode[8];
    int shared;
    pl_backend_t backend;
    double timeout;
    double check_interval;
    int fail_when_locked;
    unsigned maximum; /* semaphore */
    char *name;
    char *directory;
    pl_lock_t *lock;
    pl_semaphore_t *sem;
    int made_shared; /* the mode lock was created with */
} obj_t;


static obj_t objects[MAX_OBJECTS];
static char *redis_url; /* pl_redis_options_from_url keeps pointers here */
static pl_redis_options_t redis_base;
static int redis_mode;


/* Seconds; "inf", "forever" and negative numbers wait forever. */
static int parse_seconds(const char *s, double *out) {
    char *end;
    if (strcmp(s, "inf") == 0 || strcmp(s, "forever") == 0) {
        *out = -1.0;
        return 0;
    }
    *out = strtod(s, &end);
    return (*end != '\0' || end == s) ? -1 : 0;
}

static int opt_seconds(const plp_args_t *a, const char *key, double *out,
                       double dflt) {
    const char *v = plp_arg(a, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (parse_seconds(v, out) != 0) {
        plp_reply_error(PL_EINVAL, "%s=%s: not a number of seconds", key, v);
        return -1;
    }
    return 0;
}

static int opt_int(const plp_args_t *a, const char *key, long *out, long dflt) {
    const char *v = plp_arg(a, key);
    char *end;
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    *out = strtol(v, &end, 10);
    if (*end != '\0' || end == v) {
        plp_reply_error(PL_EINVAL, "%s=%s: not an integer", key, v);
        return -1;
    }
    return 0;
}

static obj_t *find_obj(const char *id) {
    int i;
    for (i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].used && strcmp(objects[i].id, id) == 0)
            return &objects[i];
    return NULL;
}

static const char *obj_id(const plp_args_t *a) {
    const char *id = plp_arg(a, "id");
    return id != NULL ? id : "0";
}

static obj_t *need_obj(const plp_args_t *a) {
    obj_t *o = find_obj(obj_id(a));
    if (o == NULL)
        plp_reply_error(PL_EINVAL, "no object id=%s (send open first)",
                        obj_id(a));
    return o;
}

static int obj_held(const obj_t *o) {
    if (o->sem != NULL)
        return pl_semaphore_slot(o->sem) >= 0;
    return pl_lock_is_held(o->lock);
}

static const char *obj_errmsg(const obj_t *o) {
    if (o->sem != NULL)
        return pl_semaphore_errmsg(o->sem);
    if (o->lock != NULL)
        return pl_lock_errmsg(o->lock);
    return "";
}

/* (Re)creates the library object in the wanted mode.  Only when not held. */
static int obj_make(obj_t *o, int shared) {
    pl_lock_options_t opts;
    int rc;

    if (o->lock != NULL || o->sem != NULL) {
        if (o->made_shared == shared)
            return PL_OK;
        pl_lock_close(o->lock);
        o->lock = NULL;
    }
    pl_lock_options_init(&opts);
    opts.mode = o->mode[0] != '\0' ? o->mode : NULL;
    opts.backend = o->backend;
    if (o->timeout != PL_UNSET)
        opts.timeout = o->timeout;
    if (o->check_interval != PL_UNSET)
        opts.check_interval = o->check_interval;
    opts.fail_when_locked = o->fail_when_locked;
    opts.flags = (shared ? PL_SHARED : PL_EXCLUSIVE) | PL_NON_BLOCKING;

    if (redis_mode) {
        pl_redis_options_t r = redis_base;
        if (o->timeout != PL_UNSET)
            r.timeout = o->timeout;
        if (o->check_interval != PL_UNSET)
            r.check_interval = o->check_interval;
        if (o->fail_when_locked >= 0)
            r.fail_when_locked = o->fail_when_locked;
        r.shared = shared;
        rc = pl_redis_lock_open(&o->lock, o->path, &r);
    } else if (strcmp(o->kind, "lock") == 0) {
        rc = pl_lock_open(&o->lock, o->path, &opts);
    } else if (strcmp(o->kind, "rlock") == 0) {
        rc = pl_rlock_open(&o->lock, o->path, &opts);
    } else if (strcmp(o->kind, "temporary") == 0) {
        rc = pl_temporary_lock_open(&o->lock, o->path, &opts);
    } else if (strcmp(o->kind, "pidfile") == 0) {
        rc = pl_pidfile_lock_open(&o->lock, o->path, &opts);
    } else {
        rc = pl_semaphore_open(&o->sem, o->maximum, o->name, o->directory,
                               &opts);
    }
    if (rc == PL_OK)
        o->made_shared = shared;
    return rc;
}

static void obj_free(obj_t *o) {
    pl_lock_close(o->lock);
    pl_semaphore_close(o->sem);
    free(o->path);
    free(o->name);
    free(o->directory);
    memset(o, 0, sizeof(*o));
}

static char *dup_or_null(const char *s) {
    char *d;
    if (s == NULL)
        return NULL;
    d = malloc(strlen(s) + 1);
    if (d != NULL)
        strcpy(d, s);
    return d;
}

/* ---- commands ------------------------------------------------------------ */

/* hello's optional fields for what differs from the protocol's defaults
 * (clock=, crash=, wait=, platform=; PROTOCOL.md §4). */
static void os_hello_fields(char *buf, size_t len) {
    const char *clock = plc_os_clock_name();
    const char *crash = plc_os_crash_style();
    const char *wait = plc_os_wait_style();
    const char *platform = plc_os_platform();
    size_t n = 0;
    buf[0] = '\0';
    if (clock != NULL)
        n += (size_t)snprintf(buf + n, len - n, " clock=%s", clock);
    if (crash != NULL && n < len)
        n += (size_t)snprintf(buf + n, len - n, " crash=%s", crash);
    if (wait != NULL && n < len)
        n += (size_t)snprintf(buf + n, len - n, " wait=%s", wait);
    if (platform != NULL && n < len)
        snprintf(buf + n, len - n, " platform=%s", platform);
}

static void cmd_hello(void) {
    char backends[64] = "";
    char extra[128];
    pl_backend_t b;
    if (redis_mode) {
        plp_reply("hello protocol=%s impl=portalock version=%s pid=%ld "
                  "kinds=lock backends=redis "
                  "features=shared,cycle,counter,crash,same-process-objects",
                  PLP_PROTOCOL, pl_version(), plc_os_pid());
        return;
    }
    for (b = PL_BACKEND_FLOCK; b <= PL_BACKEND_LOCKFILEEX; b++) {
        if (!pl_backend_available(b))
            continue;
        if (backends[0] != '\0')
            strcat(backends, ",");
        strcat(backends, pl_backend_name(b));
    }
    os_hello_fields(extra, sizeof(extra));
    plp_reply("hello protocol=%s impl=portalock version=%s pid=%ld "
              "kinds=lock,rlock,temporary,pidfile,semaphore backends=%s "
              "features=shared,cycle,counter,crash,close-other,write,holder,"
              "same-process-objects,w-mode%s%s",
              PLP_PROTOCOL, pl_version(), plc_os_pid(), backends,
              plc_os_features(), extra);
}

static void cmd_open(const plp_args_t *a) {
    const char *id = obj_id(a);
    const char *kind = plp_arg(a, "kind");
    const char *path = plp_arg(a, "path");
    const char *mode = plp_arg(a, "mode");
    const char *backend = plp_arg(a, "backend");
    const char *v;
    obj_t *o = NULL;
    long maximum, fwl;
    double timeout, ci;
    int i, rc;

    if (kind == NULL)
        kind = "lock";
    if (strcmp(kind, "lock") != 0 && strcmp(kind, "rlock") != 0 &&
        strcmp(kind, "temporary") != 0 && strcmp(kind, "pidfile") != 0 &&
        strcmp(kind, "semaphore") != 0) {
        plp_reply_error(PL_EINVAL, "unknown kind '%s'", kind);
        return;
    }
    if (redis_mode && strcmp(kind, "lock") != 0) {
        plp_reply_error(PL_ENOTSUP, "kind '%s' is not available with --redis",
                        kind);
        return;
    }
    if (strcmp(kind, "semaphore") != 0 && path == NULL) {
        plp_reply_error(PL_EINVAL, "open: path= is required");
        return;
    }
    if (strlen(id) >= sizeof(o->id)) {
        plp_reply_error(PL_EINVAL, "id too long");
        return;
    }
    if (find_obj(id) != NULL) {
        plp_reply_error(PL_EINVAL, "object id=%s is already open", id);
        return;
    }
    if (opt_seconds(a, "timeout", &timeout, PL_UNSET) != 0 ||
        opt_seconds(a, "check_interval", &ci, PL_UNSET) != 0 ||
        opt_int(a, "fail_when_locked", &fwl, -1) != 0 ||
        opt_int(a, "maximum", &maximum, 1) != 0)
        return;
    if (maximum < 1 || maximum > 99) {
        plp_reply_error(PL_EINVAL, "maximum=%ld out of range 1..99", maximum);
        return;
    }
    for (i = 0; i < MAX_OBJECTS; i++)
        if (!objects[i].used) {
            o = &objects[i];
            break;
        }
    if (o == NULL) {
        plp_reply_error(PL_ENOMEM, "too many objects (max %d)", MAX_OBJECTS);
        return;
    }
    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%s", id);
    snprintf(o->kind, sizeof(o->kind), "%s", kind);
    if (mode != NULL) {
        if (strlen(mode) >= sizeof(o->mode)) {
            plp_reply_error(PL_EINVAL, "mode=%s: invalid", mode);
            return;
        }
        snprintf(o->mode, sizeof(o->mode), "%s", mode);
    }
    o->backend = PL_BACKEND_DEFAULT;
    if (backend != NULL && !redis_mode &&
        pl_backend_from_name(backend, &o->backend) != PL_OK) {
        plp_reply_error(PL_EINVAL, "unknown backend '%s'", backend);
        return;
    }
    if (o->backend != PL_BACKEND_DEFAULT && !pl_backend_available(o->backend)) {
        plp_reply_error(PL_ENOTSUP, "backend '%s' is not available here",
                        backend);
        return;
    }
    o->timeout = timeout;
    o->check_interval = ci;
    o->fail_when_locked = (int)fwl;
    o->maximum = (unsigned)maximum;
    o->path = dup_or_null(path);
    o->name = dup_or_null(plp_arg(a, "name"));
    o->directory = dup_or_null(plp_arg(a, "directory"));
    v = plp_arg(a, "shared");
    o->shared = plp_has_word(a, "shared") || (v != NULL && strcmp(v, "1") == 0);
    o->used = 1;
    rc = obj_make(o, o->shared);
    if (rc != PL_OK) {
        plp_reply_error(rc, "open %s %s: %s", kind, path != NULL ? path : "",
                        pl_strerror(rc));
        obj_free(o);
        return;
    }
    plp_reply("opened id=%s t=%lld", o->id, (long long)plp_now_ns());
}

/* One acquire with the per-call overrides; returns the library code. */
static int do_acquire(obj_t *o, double timeout, double ci, int fwl) {
    if (o->sem != NULL)
        return pl_semaphore_acquire_with(o->sem, timeout, ci, fwl);
    return pl_lock_acquire_with(o->lock, timeout, ci, fwl);
}

static int do_release(obj_t *o) {
    if (o->sem != NULL)
        return pl_semaphore_release(o->sem);
    return pl_lock_release(o->lock);
}

static int obj_count(const obj_t *o) {
    if (o->sem != NULL)
        return pl_semaphore_slot(o->sem) >= 0 ? 1 : 0;
    return pl_lock_count(o->lock);
}

/* Reads the acquire overrides and the mode word; -1 after an error reply. */
static int acquire_params(const plp_args_t *a, obj_t *o, double *timeout,
                          double *ci, int *fwl) {
    long f;
    int shared = o->made_shared;
    if (opt_seconds(a, "timeout", timeout, PL_UNSET) != 0 ||
        opt_seconds(a, "check_interval", ci, PL_UNSET) != 0 ||
        opt_int(a, "fail_when_locked", &f, -1) != 0)
        return -1;
    *fwl = (int)f;
    if (plp_has_word(a, "shared"))
        shared = 1;
    else if (plp_has_word(a, "exclusive"))
        shared = 0;
    if (shared != o->made_shared) {
        int rc;
        if (o->sem != NULL) {
            plp_reply_error(PL_EINVAL, "a semaphore has no shared mode");
            return -1;
        }
        if (obj_held(o)) {
            plp_reply_error(PL_EHELD,
                            "id=%s is held in the other mode; release first",
                            o->id);
            return -1;
        }
        rc = obj_make(o, shared);
        if (rc != PL_OK) {
            plp_reply_error(rc, "reopen in %s mode: %s",
                            shared ? "shared" : "exclusive", pl_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void cmd_acquire(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    double timeout, ci;
    int fwl, rc;
    int64_t t0, t;

    if (o == NULL || acquire_params(a, o, &timeout, &ci, &fwl) != 0)
        return;
    t0 = plp_now_ns();
    rc = do_acquire(o, timeout, ci, fwl);
    t = plp_now_ns();
    if (rc == PL_OK)
        plp_reply("acquired id=%s t0=%lld t=%lld count=%d", o->id,
                  (long long)t0, (long long)t, obj_count(o));
    else if (rc == PL_ELOCKED)
        plp_reply("already-locked id=%s t0=%lld t=%lld", o->id, (long long)t0,
                  (long long)t);
    else if (rc == PL_ETIMEDOUT)
        plp_reply("timeout id=%s t0=%lld t=%lld", o->id, (long long)t0,
                  (long long)t);
    else
        plp_reply_error(rc, "%s", obj_errmsg(o));
}

static void cmd_release(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    int64_t t;
    int rc;
    if (o == NULL)
        return;
    t = plp_now_ns();
    rc = do_release(o);
    if (rc == PL_OK)
        plp_reply("released id=%s t=%lld count=%d", o->id, (long long)t,
                  obj_count(o));
    else
        plp_reply_error(rc, "%s", obj_errmsg(o));
}

static void cmd_close(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    char id[32];
    if (o == NULL)
        return;
    snprintf(id, sizeof(id), "%s", o->id);
    obj_free(o);
    plp_reply("closed id=%s t=%lld", id, (long long)plp_now_ns());
}

static void cmd_cycle(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    const char *counter;
    double timeout, ci, hold;
    long n, i;
    int fwl, rc;
    char *out, err[512];
    size_t cap, len;

    if (o == NULL || acquire_params(a, o, &timeout, &ci, &fwl) != 0 ||
        opt_int(a, "n", &n, 1) != 0 || opt_seconds(a, "hold", &hold, 0) != 0)
        return;
    if (n < 1 || n > 100000) {
        plp_reply_error(PL_EINVAL, "n=%ld out of range 1..100000", n);
        return;
    }
    counter = plp_arg(a, "counter");
    cap = (size_t)n * 44 + 128;
    out = malloc(cap);
    if (out == NULL) {
        plp_reply_error(PL_ENOMEM, "cycle: out of memory");
        return;
    }
    len = (size_t)snprintf(out, cap, "cycled id=%s n=%ld intervals=", o->id, n);
    for (i = 0; i < n; i++) {
        int64_t ta, tr;
        rc = do_acquire(o, timeout, ci, fwl);
        if (rc != PL_OK) {
            plp_reply_error(rc, "cycle %ld/%ld: acquire: %s", i + 1, n,
                            obj_errmsg(o));
            free(out);
            return;
        }
        ta = plp_now_ns();
        if (counter != NULL &&
            plc_os_bump_counter(counter, err, sizeof(err)) != 0) {
            do_release(o);
            plp_reply_error(PL_EOS, "cycle %ld/%ld: counter: %s", i + 1, n,
                            err);
            free(out);
            return;
        }
        plp_sleep_s(hold);
        tr = plp_now_ns();
        rc = do_release(o);
        if (rc != PL_OK) {
            plp_reply_error(rc, "cycle %ld/%ld: release: %s", i + 1, n,
                            obj_errmsg(o));
            free(out);
            return;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%lld:%lld",
                                i > 0 ? "," : "", (long long)ta, (long long)tr);
    }
    snprintf(out + len, cap - len, " t=%lld", (long long)plp_now_ns());
    plp_reply("%s", out);
    free(out);
}

static void cmd_holder(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    pl_holder_info_t info;
    int rc;
    if (o == NULL)
        return;
    if (o->lock == NULL || strcmp(o->kind, "pidfile") != 0) {
        plp_reply_error(PL_EINVAL, "holder: id=%s is not a pidfile lock",
                        o->id);
        return;
    }
    rc = pl_pidfile_holder(o->lock, &info);
    if (rc != PL_OK) {
        plp_reply_error(rc, "%s", pl_lock_errmsg(o->lock));
        return;
    }
    plp_reply("holder id=%s pid=%ld alive=%d t=%lld", o->id, info.pid,
              info.alive, (long long)plp_now_ns());
}

/* What a forked child does with the inherited object (fork-child). */
typedef struct fork_job {
    obj_t *o;
    const char *action;
} fork_job_t;

static int fork_child_body(void *arg) {
    fork_job_t *j = arg;
    if (strcmp(j->action, "release") == 0)
        return do_release(j->o);
    if (strcmp(j->action, "close") == 0)
        return j->o->sem != NULL ? pl_semaphore_close(j->o->sem)
                                 : pl_lock_close(j->o->lock);
    return PL_OK; /* exit */
}

static void cmd_fork_child(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    const char *action = plp_arg(a, "action");
    fork_job_t job;
    char msg[256];
    long pid;
    int rc, code;
    if (o == NULL)
        return;
    if (action == NULL)
        action = "exit";
    if (strcmp(action, "exit") != 0 && strcmp(action, "release") != 0 &&
        strcmp(action, "close") != 0) {
        plp_reply_error(PL_EINVAL, "fork-child: action=%s (exit|release|close)",
                        action);
        return;
    }
    job.o = o;
    job.action = action;
    fflush(stdout);
    rc = plc_os_fork_run(fork_child_body, &job, &pid, &code, msg, sizeof(msg));
    if (rc != PL_OK) {
        plp_reply_error(rc, "%s", msg);
        return;
    }
    plp_reply("forked id=%s pid=%ld action=%s result=%s t=%lld", o->id, pid,
              action, code == 0 ? "PL_OK" : pl_err_name(code),
              (long long)plp_now_ns());
}

static void cmd_close_other(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    const char *path;
    char msg[512];
    if (o == NULL)
        return;
    path = o->lock != NULL ? pl_lock_path(o->lock) : o->path;
    if (plc_os_open_close(path, msg, sizeof(msg)) != 0) {
        plp_reply_error(PL_EOS, "%s", msg);
        return;
    }
    plp_reply("closed-other id=%s t=%lld", o->id, (long long)plp_now_ns());
}

static void cmd_write(const plp_args_t *a) {
    obj_t *o = need_obj(a);
    const char *data = plp_arg(a, "data");
    char msg[512];
    int rc;
    if (o == NULL)
        return;
    if (data == NULL)
        data = "";
    rc = plc_os_write_held(o->lock, data, msg, sizeof(msg));
    if (rc == PL_ENOTHELD) {
        plp_reply_error(PL_ENOTHELD, "write: id=%s holds no file", o->id);
        return;
    }
    if (rc != 0) {
        plp_reply_error(PL_EOS, "%s", msg);
        return;
    }
    plp_reply("written id=%s bytes=%lu t=%lld", o->id,
              (unsigned long)strlen(data), (long long)plp_now_ns());
}

static void close_all(void) {
    int i;
    for (i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].used)
            obj_free(&objects[i]);
}

static int dispatch(char *line) {
    plp_args_t a;
    const char *c;
    plp_split_args(line, &a);
    if (a.n == 0) {
        plp_reply_error(PL_EINVAL, "empty command");
        return 0;
    }
    c = a.key[0];
    if (strcmp(c, "hello") == 0)
        cmd_hello();
    else if (strcmp(c, "open") == 0)
        cmd_open(&a);
    else if (strcmp(c, "acquire") == 0)
        cmd_acquire(&a);
    else if (strcmp(c, "release") == 0)
        cmd_release(&a);
    else if (strcmp(c, "close") == 0)
        cmd_close(&a);
    else if (strcmp(c, "cycle") == 0)
        cmd_cycle(&a);
    else if (strcmp(c, "holder") == 0)
        cmd_holder(&a);
    else if (strcmp(c, "fork-child") == 0)
        cmd_fork_child(&a);
    else if (strcmp(c, "close-other") == 0)
        cmd_close_other(&a);
    else if (strcmp(c, "write") == 0)
        cmd_write(&a);
    else if (strcmp(c, "crash") == 0)
        plc_os_crash();
    else if (strcmp(c, "quit") == 0) {
        close_all();
        plp_reply("bye t=%lld", (long long)plp_now_ns());
        return 1;
    } else
        plp_reply_error(PL_EINVAL, "unknown command '%s'", c);
    return 0;
}

int main(int argc, char **argv) {
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            pl_error_t err;
            redis_url = dup_or_null(argv[++i]);
            pl_redis_options_init(&redis_base);
            if (redis_url == NULL ||
                pl_redis_options_from_url(&redis_base, redis_url, &err) !=
                    PL_OK) {
                fprintf(stderr, "pl_contender: --redis %s: %s\n", argv[i],
                        redis_url != NULL ? err.msg : "out of memory");
                return 2;
            }
            redis_mode = 1;
        } else {
            fprintf(stderr,
                    "usage: pl_contender [--redis URL]\n"
                    "speaks %s on stdin/stdout (see conformance/PROTOCOL.md)\n",
                    PLP_PROTOCOL);
            return 2;
        }
    }
    plp_serve(dispatch);
    close_all();
    free(redis_url);
    return 0;
}
