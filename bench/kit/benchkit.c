/*
 * benchkit.c -- see benchkit.h.
 */
#include "benchkit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- clocks -------------------------------------------------------------- */

int64_t bk_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bk_sleep_ns(int64_t ns) {
    struct timespec ts;
    if (ns <= 0)
        return;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- samples ------------------------------------------------------------- */

void bk_samples_init(bk_samples_t *s) {
    s->v = NULL;
    s->n = 0;
    s->cap = 0;
}

void bk_samples_add(bk_samples_t *s, int64_t ns) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return; /* keep what we have; n stays consistent */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ns;
}

void bk_samples_free(bk_samples_t *s) {
    free(s->v);
    bk_samples_init(s);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const bk_samples_t *s, double p) {
    /* nearest rank on sorted samples */
    size_t k;
    if (s->n == 0)
        return 0;
    k = (size_t)(p * (double)(s->n - 1) + 0.5);
    if (k >= s->n)
        k = s->n - 1;
    return (double)s->v[k];
}

bk_stats_t bk_stats(bk_samples_t *s) {
    bk_stats_t st;
    double sum = 0;
    size_t i;
    memset(&st, 0, sizeof st);
    st.n = s->n;
    if (s->n == 0)
        return st;
    qsort(s->v, s->n, sizeof *s->v, cmp_i64);
    for (i = 0; i < s->n; i++)
        sum += (double)s->v[i];
    st.min = (double)s->v[0];
    st.max = (double)s->v[s->n - 1];
    st.p50 = pct(s, 0.50);
    st.p90 = pct(s, 0.90);
    st.p99 = pct(s, 0.99);
    st.mean = sum / (double)s->n;
    return st;
}

void bk_stats_json(FILE *out, const bk_stats_t *st) {
    fprintf(out,
            "{\"n\": %zu, \"min_ns\": %.0f, \"p50_ns\": %.0f, \"p90_ns\": "
            "%.0f, \"p99_ns\": %.0f, \"max_ns\": %.0f, \"mean_ns\": %.1f}",
            st->n, st->min, st->p50, st->p90, st->p99, st->max, st->mean);
}

void bk_fmt_ns(char *buf, size_t len, double ns) {
    if (ns < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.2f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, len, "%.2f ms", ns / 1e6);
    else
        snprintf(buf, len, "%.2f s", ns / 1e9);
}

void bk_stats_line(char *buf, size_t len, const bk_stats_t *st) {
    char a[32], b[32], c[32];
    bk_fmt_ns(a, sizeof a, st->p50);
    bk_fmt_ns(b, sizeof b, st->p99);
    bk_fmt_ns(c, sizeof c, st->max);
    snprintf(buf, len, "p50 %9s  p99 %9s  max %9s  (n=%zu)", a, b, c, st->n);
}

void bk_json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void bk_progress(const char *fmt, ...) {
    va_list ap;
    if (getenv("PL_BENCH_QUIET") != NULL)
        return;
    fputs("[bench] ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- raw syscalls ---------------------------------------------------------
 */

int bk_raw_open(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static int raw_fcntl(int fd, int cmd, short type) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    fl.l_pid = 0;
    return fcntl(fd, cmd, &fl);
}

int bk_raw_lock(int fd, pl_backend_t backend, int blocking) {
    int rc;
    switch (backend) {
    case PL_BACKEND_LOCKF:
        rc = raw_fcntl(fd, blocking ? F_SETLKW : F_SETLK, F_WRLCK);
        break;
    case PL_BACKEND_OFD:
        rc = raw_fcntl(fd, blocking ? F_OFD_SETLKW : F_OFD_SETLK, F_WRLCK);
        break;
    default: rc = flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB)); break;
    }
    return rc == 0 ? 0 : errno;
}

int bk_raw_unlock(int fd, pl_backend_t backend) {
    int rc;
    switch (backend) {
    case PL_BACKEND_LOCKF: rc = raw_fcntl(fd, F_SETLK, F_UNLCK); break;
    case PL_BACKEND_OFD: rc = raw_fcntl(fd, F_OFD_SETLK, F_UNLCK); break;
    default: rc = flock(fd, LOCK_UN); break;
    }
    return rc == 0 ? 0 : errno;
}

/* ---- process helpers ------------------------------------------------------
 */

/*
 * System calls in which a sleeping waiter is not yet waiting for the lock:
 * opening, closing or looking up the file.  On a network or FUSE filesystem
 * these sleep for a round trip, and a release at that moment would be a race
 * to the lock, not a handoff.  (x86_64 numbers; elsewhere only the thread
 * state is checked.)
 */
#if defined(__x86_64__)
static const long busy_syscalls[] = {2 /* open */,
                                     3 /* close */,
                                     4 /* stat */,
                                     5 /* fstat */,
                                     6 /* lstat */,
                                     21 /* access */,
                                     74 /* fsync */,
                                     77 /* ftruncate */,
                                     82 /* rename */,
                                     83 /* mkdir */,
                                     87 /* unlink */,
                                     89 /* readlink */,
                                     137 /* statfs */,
                                     138 /* fstatfs */,
                                     217 /* getdents64 */,
                                     257 /* openat */,
                                     262 /* newfstatat */,
                                     263 /* unlinkat */,
                                     269 /* faccessat */,
                                     316 /* renameat2 */,
                                     332 /* statx */,
                                     437 /* openat2 */,
                                     439 /* faccessat2 */};
#else
static const long busy_syscalls[] = {-1};
#endif

static int in_busy_syscall(const char *taskdir) {
    char p[600], buf[64];
    FILE *f;
    size_t got, i;
    long nr;
    snprintf(p, sizeof p, "%s/syscall", taskdir);
    f = fopen(p, "r");
    if (f == NULL)
        return 0;
    got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    if (buf[0] < '0' || buf[0] > '9')
        return 0; /* "running" or "-1" */
    nr = strtol(buf, NULL, 10);
    for (i = 0; i < sizeof busy_syscalls / sizeof busy_syscalls[0]; i++)
        if (busy_syscalls[i] == nr)
            return 1;
    return 0;
}

/* 1 if every thread of pid sleeps outside file set-up calls, 0 if one runs,
 * -1 if pid is gone. */
static int all_threads_asleep(pid_t pid) {
    char path[64], buf[512];
    DIR *d;
    struct dirent *e;
    int seen = 0, asleep = 1;
    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char td[400], tp[500];
        FILE *f;
        size_t got;
        const char *p;
        if (e->d_name[0] == '.')
            continue;
        snprintf(td, sizeof td, "%s/%s", path, e->d_name);
        snprintf(tp, sizeof tp, "%s/stat", td);
        f = fopen(tp, "r");
        if (f == NULL)
            continue; /* thread exited meanwhile */
        got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        p = strrchr(buf, ')'); /* comm may contain spaces */
        if (p == NULL || p[1] == '\0' || p[2] == '\0')
            continue;
        seen = 1;
        if ((p[2] != 'S' && p[2] != 'D') || in_busy_syscall(td))
            asleep = 0;
    }
    closedir(d);
    return seen ? asleep : -1;
}

int bk_wait_blocked(pid_t pid, int64_t settle_ns, int64_t max_ns) {
    int64_t deadline = bk_now_ns() + max_ns;
    while (bk_now_ns() < deadline) {
        int r = all_threads_asleep(pid);
        if (r < 0)
            return -1;
        if (r == 1) {
            bk_sleep_ns(settle_ns);
            if (all_threads_asleep(pid) == 1)
                return 0;
        } else {
            sched_yield();
        }
    }
    return -1;
}

char *bk_mkdtemp(const char *base) {
    size_t len = strlen(base) + 40;
    char *p = malloc(len);
    if (p == NULL)
        return NULL;
    snprintf(p, len, "%s/portalock-bench.XXXXXX", base);
    if (mkdtemp(p) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void bk_rmdir_flat(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char p[4096];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- actors ----------------------------------------------------------------
 */

typedef struct actor_impl {
    int kind; /* 0 raw, 1 ours, 2 oursfd, 3 redis */
    pl_backend_t backend;
    const char *target;
    double wait_timeout;
    int fd;
    pl_lock_t *lock;
    char err[300];
} actor_impl_t;

static int parse_backend(const char *name, pl_backend_t *b) {
    return pl_backend_from_name(name, b) == PL_OK ? 0 : -1;
}

static int impl_setup(actor_impl_t *im, const char *spec) {
    const char *colon = strchr(spec, ':');
    size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *arg = colon ? colon + 1 : "flock";
    im->fd = -1;
    im->lock = NULL;
    im->err[0] = '\0';
    if (klen == 5 && strncmp(spec, "redis", 5) == 0) {
        pl_redis_options_t ro;
        char host[256];
        const char *pc = strrchr(arg, ':');
        int rc;
        im->kind = 3;
        pl_redis_options_init(&ro);
        if (pc == NULL || (size_t)(pc - arg) >= sizeof host) {
            snprintf(im->err, sizeof im->err, "bad redis spec %s", spec);
            return -1;
        }
        memcpy(host, arg, (size_t)(pc - arg));
        host[pc - arg] = '\0';
        ro.host = host;
        ro.port = atoi(pc + 1);
        ro.timeout = im->wait_timeout;
        rc = pl_redis_lock_open(&im->lock, im->target, &ro);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_redis_lock_open: %s",
                     pl_strerror(rc));
            return -1;
        }
        return 0;
    }
    if (parse_backend(arg, &im->backend) != 0) {
        snprintf(im->err, sizeof im->err, "unknown backend %s", arg);
        return -1;
    }
    if (klen == 3 && strncmp(spec, "raw", 3) == 0) {
        im->kind = 0;
    } else if ((klen == 4 && strncmp(spec, "ours", 4) == 0) ||
               (klen == 7 && strncmp(spec, "oursinf", 7) == 0) ||
               (klen == 7 && strncmp(spec, "ourssig", 7) == 0)) {
        pl_lock_options_t o;
        int rc;
        im->kind = 1;
        if (klen == 7 && spec[4] == 'i')
            im->wait_timeout = -1.0; /* wait forever: no deadline to watch */
        if (klen == 7 && spec[4] == 's' &&
            (rc = pl_set_wait_signal(SIGRTMIN + 1, NULL)) != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_set_wait_signal: %s",
                     pl_strerror(rc));
            return -1;
        }
        pl_lock_options_init(&o);
        o.backend = im->backend;
        o.timeout = im->wait_timeout;
        rc = pl_lock_open(&im->lock, im->target, &o);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_lock_open: %s",
                     pl_strerror(rc));
            return -1;
        }
        return 0;
    } else if (klen == 6 && strncmp(spec, "oursfd", 6) == 0) {
        im->kind = 2;
    } else if (klen == 9 && strncmp(spec, "oursfdsig", 9) == 0) {
        int rc = pl_set_wait_signal(SIGRTMIN + 1, NULL);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_set_wait_signal: %s",
                     pl_strerror(rc));
            return -1;
        }
        im->kind = 2;
    } else {
        snprintf(im->err, sizeof im->err, "unknown actor %s", spec);
        return -1;
    }
    im->fd = bk_raw_open(im->target);
    if (im->fd < 0) {
        snprintf(im->err, sizeof im->err, "open(%s): %s", im->target,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* blocking (or timed) acquire; 0 or -1 with im->err */
static int impl_acquire(actor_impl_t *im, int timed) {
    int rc;
    pl_error_t e;
    switch (im->kind) {
    case 0:
        rc = bk_raw_lock(im->fd, im->backend, 1);
        if (rc != 0) {
            snprintf(im->err, sizeof im->err, "lock: %s", strerror(rc));
            return -1;
        }
        return 0;
    case 2:
        rc = pl_lock_fd_timed((pl_fd_t)im->fd, PL_EXCLUSIVE, im->backend,
                              timed ? im->wait_timeout : -1.0, &e);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_lock_fd_timed: %s", e.msg);
            return -1;
        }
        return 0;
    default:
        rc = pl_lock_acquire_with(im->lock, timed ? im->wait_timeout : -1.0,
                                  PL_UNSET, -1);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_lock_acquire: %s",
                     pl_lock_errmsg(im->lock));
            return -1;
        }
        return 0;
    }
}

static int impl_release(actor_impl_t *im) {
    int rc;
    pl_error_t e;
    switch (im->kind) {
    case 0:
        rc = bk_raw_unlock(im->fd, im->backend);
        if (rc != 0) {
            snprintf(im->err, sizeof im->err, "unlock: %s", strerror(rc));
            return -1;
        }
        return 0;
    case 2:
        rc = pl_unlock_fd((pl_fd_t)im->fd, im->backend, &e);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_unlock_fd: %s", e.msg);
            return -1;
        }
        return 0;
    default:
        rc = pl_lock_release(im->lock);
        if (rc != PL_OK) {
            snprintf(im->err, sizeof im->err, "pl_lock_release: %s",
                     pl_lock_errmsg(im->lock));
            return -1;
        }
        return 0;
    }
}

static void impl_close(actor_impl_t *im) {
    if (im->lock != NULL)
        pl_lock_close(im->lock);
    if (im->fd >= 0)
        close(im->fd);
}

int bk_actor_main(const char *spec, const char *target, double wait_timeout,
                  FILE *in, FILE *out) {
    actor_impl_t im;
    char line[256];
    memset(&im, 0, sizeof im);
    im.target = target;
    im.wait_timeout = wait_timeout;
    if (impl_setup(&im, spec) != 0) {
        /* answer every command with the setup error so the coordinator can
         * report it */
        while (fgets(line, sizeof line, in) != NULL) {
            if (strncmp(line, "quit", 4) == 0)
                break;
            fprintf(out, "err %s\n", im.err);
            fflush(out);
        }
        impl_close(&im);
        return 1;
    }
    while (fgets(line, sizeof line, in) != NULL) {
        if (strncmp(line, "acquire", 7) == 0) {
            if (impl_acquire(&im, 0) == 0)
                fprintf(out, "held\n");
            else
                fprintf(out, "err %s\n", im.err);
        } else if (strncmp(line, "release", 7) == 0) {
            int64_t t0 = bk_now_ns();
            if (impl_release(&im) == 0)
                fprintf(out, "released %lld\n", (long long)t0);
            else
                fprintf(out, "err %s\n", im.err);
        } else if (strncmp(line, "wait", 4) == 0) {
            int64_t t1;
            fprintf(out, "ready\n");
            fflush(out);
            if (impl_acquire(&im, 1) != 0) {
                fprintf(out, "err %s\n", im.err);
            } else {
                t1 = bk_now_ns();
                if (impl_release(&im) == 0)
                    fprintf(out, "acq %lld\n", (long long)t1);
                else
                    fprintf(out, "err %s\n", im.err);
            }
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            fprintf(out, "err unknown command\n");
        }
        fflush(out);
    }
    impl_close(&im);
    return 0;
}

int bk_actor_start(bk_actor_t *a, const char *spec, const char *target,
                   double wait_timeout, char *err, size_t errlen) {
    int to_child[2], from_child[2];
    pid_t pid;
    memset(a, 0, sizeof *a);
    snprintf(a->spec, sizeof a->spec, "%s", spec);
    if (pipe2(to_child, O_CLOEXEC) != 0)
        return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
    if (pipe2(from_child, O_CLOEXEC) != 0) {
        close(to_child[0]);
        close(to_child[1]);
        return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        return -1;
    }
    if (pid == 0) {
        /* an actor never outlives its coordinator (kept across exec) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(to_child[1]);
        close(from_child[0]);
        if (strncmp(spec, "cmd:", 4) == 0) {
            /* external driver: stdin/stdout are the protocol */
            char *cmd;
            size_t len = strlen(spec) + strlen(target) + 64;
            char tmo[32];
            cmd = malloc(len);
            if (cmd == NULL)
                _exit(127);
            snprintf(tmo, sizeof tmo, "%g", wait_timeout);
            setenv("PL_BENCH_WAIT_TIMEOUT", tmo, 1);
            snprintf(cmd, len, "exec %s \"$0\"", spec + 4);
            dup2(to_child[0], 0);
            dup2(from_child[1], 1);
            execl("/bin/sh", "sh", "-c", cmd, target, (char *)NULL);
            _exit(127);
        } else {
            FILE *in = fdopen(to_child[0], "r");
            FILE *out = fdopen(from_child[1], "w");
            if (in == NULL || out == NULL)
                _exit(127);
            _exit(bk_actor_main(spec, target, wait_timeout, in, out));
        }
    }
    close(to_child[0]);
    close(from_child[1]);
    a->pid = pid;
    a->in = fdopen(to_child[1], "w");
    a->out = fdopen(from_child[0], "r");
    if (a->in == NULL || a->out == NULL) {
        snprintf(err, errlen, "fdopen: %s", strerror(errno));
        bk_actor_kill(a);
        return -1;
    }
    setvbuf(a->out, NULL, _IONBF, 0);
    return 0;
}

int bk_actor_read(bk_actor_t *a, char *buf, size_t len, double timeout_s) {
    struct pollfd pfd;
    size_t n;
    int rc;
    /* a->out is unbuffered, so poll() sees every byte not yet read */
    pfd.fd = fileno(a->out);
    pfd.events = POLLIN;
    do {
        rc = poll(&pfd, 1, (int)(timeout_s * 1000));
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0)
        return -1;
    if (fgets(buf, (int)len, a->out) == NULL)
        return -1;
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return 0;
}

int bk_actor_cmd(bk_actor_t *a, const char *cmd, char *buf, size_t len,
                 double timeout_s) {
    if (fprintf(a->in, "%s\n", cmd) < 0 || fflush(a->in) != 0)
        return -1;
    return bk_actor_read(a, buf, len, timeout_s);
}

static void actor_close_files(bk_actor_t *a) {
    if (a->in != NULL)
        fclose(a->in);
    if (a->out != NULL)
        fclose(a->out);
    a->in = NULL;
    a->out = NULL;
}

void bk_actor_kill(bk_actor_t *a) {
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
    }
    actor_close_files(a);
}

void bk_actor_stop(bk_actor_t *a) {
    int i;
    if (a->pid <= 0) {
        actor_close_files(a);
        return;
    }
    if (a->in != NULL) {
        fprintf(a->in, "quit\n");
        fflush(a->in);
    }
    for (i = 0; i < 200; i++) {
        if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
            a->pid = 0;
            break;
        }
        bk_sleep_ns(10000000);
    }
    bk_actor_kill(a);
}

/* ---- handoff ----------------------------------------------------------------
 */

static int64_t parse_ts(const char *line, const char *word) {
    size_t wl = strlen(word);
    if (strncmp(line, word, wl) != 0 || line[wl] != ' ')
        return -1;
    return strtoll(line + wl + 1, NULL, 10);
}

int bk_handoff_run(const bk_handoff_cfg_t *cfg, bk_handoff_result_t *r) {
    bk_actor_t h, w;
    char line[512], err[300];
    size_t i;
    int64_t start = bk_now_ns(), last_progress = start;
    unsigned seed = (unsigned)start;
    int ok = -1;

    memset(r, 0, sizeof *r);
    bk_samples_init(&r->samples);
    if (bk_actor_start(&w, cfg->waiter, cfg->target, cfg->wait_timeout, err,
                       sizeof err) != 0) {
        snprintf(r->error, sizeof r->error, "waiter: %.200s", err);
        return -1;
    }
    memset(&h, 0, sizeof h);
    for (i = 0; i < cfg->rounds; i++) {
        int64_t t0, t1;
        if (cfg->budget_s > 0 && i > 0 &&
            (double)(bk_now_ns() - start) / 1e9 > cfg->budget_s)
            break;
        if (h.pid == 0 &&
            bk_actor_start(&h, cfg->holder,
                           cfg->holder_target ? cfg->holder_target
                                              : cfg->target,
                           cfg->wait_timeout, err, sizeof err) != 0) {
            snprintf(r->error, sizeof r->error, "holder: %.200s", err);
            goto out;
        }
        if (bk_actor_cmd(&h, "acquire", line, sizeof line, 60) != 0 ||
            strcmp(line, "held") != 0) {
            snprintf(r->error, sizeof r->error, "holder %s: %s", cfg->holder,
                     line[0] ? line : "no answer");
            goto out;
        }
        line[0] = '\0';
        if (bk_actor_cmd(&w, "wait", line, sizeof line, 60) != 0 ||
            strcmp(line, "ready") != 0) {
            snprintf(r->error, sizeof r->error, "waiter %s: %s", cfg->waiter,
                     line[0] ? line : "no answer");
            goto out;
        }
        if (bk_wait_blocked(w.pid, cfg->settle_ns, 2000000000) != 0)
            r->not_blocked++;
        if (cfg->jitter_ns > 0)
            bk_sleep_ns((int64_t)(rand_r(&seed) % 1000000) * cfg->jitter_ns /
                        1000000);
        line[0] = '\0';
        if (cfg->kill_holder) {
            t0 = bk_now_ns();
            kill(h.pid, SIGKILL);
        } else {
            if (bk_actor_cmd(&h, "release", line, sizeof line, 60) != 0 ||
                (t0 = parse_ts(line, "released")) < 0) {
                snprintf(r->error, sizeof r->error, "holder release: %s",
                         line[0] ? line : "no answer");
                goto out;
            }
        }
        line[0] = '\0';
        if (bk_actor_read(&w, line, sizeof line, cfg->wait_timeout + 30) != 0 ||
            (t1 = parse_ts(line, "acq")) < 0) {
            snprintf(r->error, sizeof r->error, "waiter %s: %s", cfg->waiter,
                     line[0] ? line : "no answer");
            goto out;
        }
        if (cfg->kill_holder)
            bk_actor_kill(&h);
        if (t1 < t0)
            r->early++;
        else
            bk_samples_add(&r->samples, t1 - t0);
        if (bk_now_ns() - last_progress > 2000000000LL) {
            last_progress = bk_now_ns();
            bk_progress("%s: %zu/%zu handoffs", cfg->label ? cfg->label : "",
                        i + 1, cfg->rounds);
        }
    }
    ok = 0;
out:
    if (h.pid != 0)
        bk_actor_stop(&h);
    bk_actor_stop(&w);
    return ok;
}
