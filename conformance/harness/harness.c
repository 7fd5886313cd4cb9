/*
 * harness.c -- contender processes (posix_spawn + pipes), the line protocol,
 * per-test directories.  See harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef PLT_CONTENDER_PATH
# error "PLT_CONTENDER_PATH must name the pl_contender binary"
#endif
#ifndef PLT_PYTHON_PATH
# define PLT_PYTHON_PATH "/usr/bin/python3"
#endif
#ifndef PLT_PY_CONTENDER_PATH
# define PLT_PY_CONTENDER_PATH ""
#endif
#ifndef PLT_DEFAULT_DIR
# define PLT_DEFAULT_DIR "/tmp/portalock-conformance"
#endif

static plt_proc_t *procs[PLT_MAX_PROCS];
static int nprocs;
static char test_dir[PATH_MAX];
static char test_dir2[PATH_MAX];
static char backend[32];
static char fsname[64];
static plt_proc_t
    *first; /* pre-spawned subject contender, not yet handed out */
/* Participants: subject contenders spawned in this test (A, B, A, B...),
 * and the directory prefix B's paths get instead of dir_base. */
static int subject_starts;
static char dir_base[PATH_MAX];
static char dir_b[PATH_MAX];

/* Set by the first subject contender's hello (results.c reads them). */
char plt__impl[32];
char plt__version[32];
void plt__results_reset(void);

int64_t plt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void plt_sleep(double seconds) {
    struct timespec ts;
    if (seconds <= 0)
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int mkdir_p(const char *path, mode_t mode) {
    char tmp[PATH_MAX];
    char *p;
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

void plt_setup(void) {
    const char *base = env_or("PL_CONFORMANCE_DIR", PLT_DEFAULT_DIR);
    const char *base2 = env_or("PL_CONFORMANCE_DIR2", NULL);
    static char real[PATH_MAX], real2[PATH_MAX];
    char leaf[256];
    struct stat st;

    signal(SIGPIPE, SIG_IGN);
    plt__results_reset();
    snprintf(backend, sizeof(backend), "%s",
             env_or("PL_CONFORMANCE_BACKEND", "flock"));
    snprintf(leaf, sizeof(leaf), "%s.%s.%ld", criterion_current_test->category,
             criterion_current_test->name, (long)getpid());
    cr_assert(mkdir_p(base, 0755) == 0, "cannot create %s: %s", base,
              strerror(errno));
    /* Symlinks resolved: scenarios compare paths with /proc/<pid>/fd. */
    if (realpath(base, real) != NULL)
        base = real;
    if (base2 != NULL && realpath(base2, real2) != NULL)
        base2 = real2;
    cr_assert(snprintf(test_dir, sizeof(test_dir), "%s/%s", base, leaf) <
              (int)sizeof(test_dir));
    cr_assert(mkdir(test_dir, 0755) == 0 || errno == EEXIST,
              "cannot create %s: %s", test_dir, strerror(errno));
    subject_starts = 0;
    snprintf(dir_base, sizeof(dir_base), "%s", base);
    snprintf(dir_b, sizeof(dir_b), "%s", env_or("PL_CONFORMANCE_DIR_B", ""));
    if (dir_b[0] != '\0' && env_or("PORTALOCK_CONTENDER_B", NULL) != NULL) {
        char seen[PATH_MAX + 256];
        snprintf(seen, sizeof(seen), "%s/%s", dir_b, leaf);
        /* B's mount may show the new directory late (caches). */
        for (int i = 0; i < 100 && stat(seen, &st) != 0; i++)
            plt_sleep(0.02);
    }
    /* Let unprivileged contenders (uid 65534) traverse and use it. */
    chmod(test_dir, 0777);
    test_dir2[0] = '\0';
    if (base2 != NULL) {
        cr_assert(snprintf(test_dir2, sizeof(test_dir2), "%s/%s", base2, leaf) <
                  (int)sizeof(test_dir2));
        /* The second mount may show the new directory late (caches). */
        for (int i = 0; i < 100 && stat(test_dir2, &st) != 0; i++)
            plt_sleep(0.02);
    }
    fsname[0] = '\0';
    if (getenv("PL_CONFORMANCE_FS") != NULL)
        snprintf(fsname, sizeof(fsname), "%s", getenv("PL_CONFORMANCE_FS"));
    first = NULL;
    first = plt_start_impl("subject", PLT_SUBJECT, 0);
    snprintf(plt__impl, sizeof(plt__impl), "%s", first->impl);
    snprintf(plt__version, sizeof(plt__version), "%s", first->version);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void plt_teardown(void) {
    int64_t deadline = plt_now_ns() + 5000000000LL;
    int i;
    /* EOF on stdin: every contender releases what it holds and exits 0.
     * Close all first, so that waiters get their locks and see EOF too. */
    for (i = 0; i < nprocs; i++) {
        close(procs[i]->to_child);
        procs[i]->to_child = -1;
    }
    for (i = 0; i < nprocs; i++) {
        plt_proc_t *p = procs[i];
        if (!p->reaped) {
            double left = (double)(deadline - plt_now_ns()) / 1e9;
            int st = plt_wait_exit(p, left > 0.1 ? left : 0.1);
            /* A contender that exits by itself must exit cleanly (this also
             * catches sanitizer reports at exit); one still busy after the
             * deadline was SIGKILLed above and is not judged. */
            cr_expect(!WIFEXITED(st) || WEXITSTATUS(st) == 0,
                      "contender %s (pid %ld) exited with status %d on EOF",
                      p->label, (long)p->pid, WEXITSTATUS(st));
            cr_expect(!WIFSIGNALED(st) || WTERMSIG(st) == SIGKILL,
                      "contender %s (pid %ld) died of signal %d", p->label,
                      (long)p->pid, WTERMSIG(st));
        }
        close(p->from_child);
        free(p->buf);
        free(p);
    }
    nprocs = 0;
    first = NULL;
    if (test_dir[0] != '\0' && getenv("PL_CONFORMANCE_KEEP") == NULL)
        nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    test_dir[0] = '\0';
}

const char *plt_dir(void) {
    return test_dir;
}
const char *plt_dir2(void) {
    return test_dir2[0] != '\0' ? test_dir2 : NULL;
}
const char *plt_backend(void) {
    return backend;
}

const char *plt_fs(void) {
    if (fsname[0] == '\0') {
        /* Not given: name it after what the library's probe sees. */
        extern int plt__probe_fstype(const char *dir, char *out, size_t len);
        if (plt__probe_fstype(test_dir, fsname, sizeof(fsname)) != 0)
            snprintf(fsname, sizeof(fsname), "unknown");
    }
    return fsname;
}

const char *plt_path(char *buf, size_t len, const char *name) {
    int n = snprintf(buf, len, "%s/%s", test_dir, name);
    cr_assert(n > 0 && (size_t)n < len, "path too long: %s/%s", test_dir, name);
    return buf;
}

const char *plt_q(const char *value) {
    static char ring[8][4 * PATH_MAX];
    static int next;
    char *out = ring[next];
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)value;
    next = (next + 1) % 8;
    for (; *s != '\0' && o + 4 < sizeof(ring[0]); s++) {
        if (*s <= ' ' || *s == '%' || *s == '=' || *s >= 0x7f) {
            snprintf(out + o, 4, "%%%02X", *s);
            o += 3;
        } else {
            out[o++] = (char)*s;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- spawning ------------------------------------------------------------ */

static int split_cmd(char *cmd, char **argv, int max) {
    int n = 0;
    char *save = NULL;
    char *tok;
    for (tok = strtok_r(cmd, " \t", &save); tok != NULL && n < max - 1;
         tok = strtok_r(NULL, " \t", &save))
        argv[n++] = tok;
    argv[n] = NULL;
    return n;
}

static void parse_hello(plt_proc_t *p, const plt_reply_t *r) {
    const char *v;
#define HELLO_FIELD(name)                                                      \
 if ((v = plt_get(r, #name)) != NULL)                                          \
 snprintf(p->name, sizeof(p->name), "%s", v)
    HELLO_FIELD(impl);
    HELLO_FIELD(version);
    HELLO_FIELD(kinds);
    HELLO_FIELD(backends);
    HELLO_FIELD(features);
#undef HELLO_FIELD
    p->hello_pid = (long)plt_get_i64(r, "pid");
    v = plt_get(r, "clock");
    p->clock_realtime = v != NULL && strcmp(v, "realtime") == 0;
    v = plt_get(r, "crash");
    p->crash_terminate = v != NULL && strcmp(v, "terminate") == 0;
    v = plt_get(r, "wait");
    p->wait_poll = v != NULL && strcmp(v, "poll") == 0;
    v = plt_get(r, "platform");
    p->windows = v != NULL && strcmp(v, "windows") == 0;
}

int plt_check_on_clock(const plt_proc_t *p, const plt_interval_t *iv, int n,
                       int64_t from, int64_t to) {
    const int64_t slack = (int64_t)(PLT_CLOCK_SLACK * 1e9);
    int i;
    if (p->remote_b)
        return 1;
    for (i = 0; i < n; i++)
        if (iv[i].a < from - slack || iv[i].b > to + slack || iv[i].b < iv[i].a)
            return plt_check(0,
                             "contender %s: interval [%lld,%lld] is not "
                             "within [%lld,%lld] of the suite's clock (%s): "
                             "its timestamps are on another clock",
                             p->label, (long long)iv[i].a, (long long)iv[i].b,
                             (long long)from, (long long)to,
                             p->clock_realtime ? "converted from clock=realtime"
                                               : "CLOCK_MONOTONIC");
    return 1;
}

pid_t plt_host_pid(const plt_proc_t *p) {
    return p->windows ? p->pid : (pid_t)p->hello_pid;
}

int plt_crashed(const plt_proc_t *p, int status) {
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return 1;
    return p->crash_terminate && WIFEXITED(status) &&
           WEXITSTATUS(status) == 137;
}

/*
 * clock=realtime contenders (Windows under Wine: no clock there follows
 * CLOCK_MONOTONIC) report nanoseconds since the Unix epoch.  Their t=, t0=
 * and intervals= values are rewritten in place to this machine's
 * CLOCK_MONOTONIC, with the offset between the two clocks read as the reply
 * arrives (microseconds of error; NTP slews by at most 0.5 ms/s).  A
 * monotonic value is never longer than the realtime one it replaces, so the
 * rewrite fits.
 */
static int64_t realtime_offset_ns(void) {
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return ((int64_t)rt.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
           (rt.tv_nsec - mono.tv_nsec);
}

static void to_monotonic(char *v, int64_t offset) {
    char *w = v;
    const char *r = v;
    while (*r != '\0') {
        if (*r >= '0' && *r <= '9') {
            char *end, num[32];
            long long t = strtoll(r, &end, 10);
            int n = snprintf(num, sizeof(num), "%lld",
                             t >= offset ? t - (long long)offset : t);
            /* Never longer than the digits it replaces (t >= offset). */
            if (n > 0 && n <= end - r) {
                memcpy(w, num, (size_t)n);
                w += n;
            } else {
                memmove(w, r, (size_t)(end - r));
                w += end - r;
            }
            r = end;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

static void reply_to_monotonic(plt_reply_t *r) {
    int64_t offset = realtime_offset_ns();
    int i;
    for (i = 0; i < r->nfields; i++)
        if (strcmp(r->key[i], "t") == 0 || strcmp(r->key[i], "t0") == 0 ||
            strcmp(r->key[i], "intervals") == 0)
            to_monotonic(r->val[i], offset);
}

/* pipe2() is missing on macOS: pipe + FD_CLOEXEC.  Not atomic with respect
 * to a fork in another thread, which the suite never does while spawning. */
static int pipe_cloexec(int fds[2]) {
    if (pipe(fds) != 0)
        return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    return 0;
}

/* Spawns argv with pipes on its stdin and stdout (stderr is inherited). */
static plt_proc_t *spawn_contender(const char *label, char *const argv[]) {
    int in[2], out[2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t def;
    plt_proc_t *p;
    int rc;

    cr_assert(pipe_cloexec(in) == 0 && pipe_cloexec(out) == 0, "pipe: %s",
              strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawnattr_init(&attr);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    p = calloc(1, sizeof(*p));
    cr_assert(p != NULL);
    rc = posix_spawn(&p->pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        free(p);
        cr_assert_fail("cannot start contender %s: %s", argv[0], strerror(rc));
    }
    p->to_child = in[1];
    p->from_child = out[0];
    snprintf(p->label, sizeof(p->label), "%s", label);
    return p;
}

/* Ends a contender that never answered hello and says how it ended. */
static void discard_unstarted(plt_proc_t *p, int got, char *why, size_t len) {
    int status;
    kill(p->pid, SIGKILL);
    status = plt_wait_exit(p, 5);
    snprintf(why, len, "%s; %s %d", got == 0 ? "no reply in 20 s" : "EOF",
             WIFSIGNALED(status) ? "killed by signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    close(p->to_child);
    close(p->from_child);
    free(p->buf);
    free(p);
}

/* PL_CONFORMANCE_START_RETRIES=N: a contender that dies or hangs before it
 * answers hello is started again, up to N times, and each retry is said on
 * stderr.  For launchers whose own start-up fails now and then (Wine: an
 * occasional internal error from wineserver before our program runs;
 * ci/windows.sh sets 2).  Unset (0) everywhere else: a contender that
 * cannot say hello fails the test.  Only the start is retried, never a
 * command of the protocol. */
static int start_retries(void) {
    const char *v = getenv("PL_CONFORMANCE_START_RETRIES");
    int n = v != NULL ? atoi(v) : 0;
    return n < 0 ? 0 : n > 10 ? 10 : n;
}

plt_proc_t *plt_start_argv(const char *label, char *const argv[], int hello) {
    int attempt, retries = start_retries();
    char why[128] = "";
    plt_proc_t *p;
    plt_reply_t r;
    int got;

    cr_assert(nprocs < PLT_MAX_PROCS, "too many contenders");
    for (attempt = 0;; attempt++) {
        p = spawn_contender(label, argv);
        if (!hello)
            break;
        got = plt_cmd(p, &r, 20, "hello %s", PLT_PROTOCOL);
        if (got == 1 && plt_is(&r, "hello"))
            break;
        if (got == 1) {
            /* It runs and answered something else: not a start-up failure. */
            cr_assert_fail("contender %s (%s) did not answer hello: %s", label,
                           argv[0], r.line);
        }
        plt_reply_free(&r);
        discard_unstarted(p, got, why, sizeof(why));
        cr_assert(
            attempt<retries, "contender %s (%s) did not answer hello (%s)%s",
                    label, argv[0], why, retries> 0
                ? ", the last of its tries"
                : "");
        fprintf(stderr,
                "[conformance] contender %s (%s) did not answer hello (%s); "
                "starting it again (PL_CONFORMANCE_START_RETRIES=%d)\n",
                label, argv[0], why, retries);
    }
    procs[nprocs++] = p;
    if (hello) {
        cr_assert(plt_get(&r, "protocol") != NULL &&
                      strcmp(plt_get(&r, "protocol"), PLT_PROTOCOL) == 0,
                  "contender %s speaks %s, not %s", argv[0],
                  plt_get(&r, "protocol") ? plt_get(&r, "protocol") : "?",
                  PLT_PROTOCOL);
        parse_hello(p, &r);
        plt_reply_free(&r);
    }
    return p;
}

int plt_python_available(void) {
    static int known = -1;
    if (known < 0) {
        known =
            access(PLT_PYTHON_PATH, X_OK) == 0 &&
            PLT_PY_CONTENDER_PATH[0] != '\0' &&
            system(PLT_PYTHON_PATH " -c 'import portalocker' 2>/dev/null") == 0;
        if (!known)
            fprintf(stderr,
                    "[conformance] %s with portalocker is not "
                    "available\n",
                    PLT_PYTHON_PATH);
    }
    return known;
}

int plt_peer_is_native(void) {
    const char *v = getenv("PL_CONFORMANCE_PEER");
    return v != NULL && strcmp(v, "native") == 0;
}

plt_impl_t plt_peer_impl(const plt_proc_t *subject) {
    if (plt_peer_is_native())
        return PLT_OURS;
    if (strcmp(subject->impl, "portalocker") == 0)
        return PLT_OURS;
    if (!plt_python_available())
        plt_not_applicable("needs %s with python3-portalocker",
                           PLT_PYTHON_PATH);
    return PLT_PYTHON;
}

/* The command line of an implementation's contender (static storage). */
static int impl_argv(plt_impl_t impl, int as_nobody, char **argv, int max) {
    static char cmd[4096];
    int n = 0;
    if (as_nobody) {
        argv[n++] = "/usr/bin/setpriv";
        argv[n++] = "--reuid=65534";
        argv[n++] = "--regid=65534";
        argv[n++] = "--clear-groups";
    }
    if (impl == PLT_PYTHON) {
        argv[n++] = PLT_PYTHON_PATH;
        argv[n++] = PLT_PY_CONTENDER_PATH;
        argv[n] = NULL;
    } else if (impl == PLT_SUBJECT && getenv("PORTALOCK_CONTENDER") != NULL &&
               getenv("PORTALOCK_CONTENDER")[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "%s", getenv("PORTALOCK_CONTENDER"));
        n += split_cmd(cmd, argv + n, max - n);
    } else {
        argv[n++] = PLT_CONTENDER_PATH;
        argv[n] = NULL;
    }
    return n;
}

plt_proc_t *plt_start_impl(const char *label, plt_impl_t impl, int as_nobody) {
    char *argv[40];
    plt_proc_t *p;

    if (impl == PLT_SUBJECT && first != NULL && !as_nobody) {
        p = first;
        first = NULL;
        snprintf(p->label, sizeof(p->label), "%s", label);
        return p;
    }
    if (impl == PLT_SUBJECT && !as_nobody && subject_starts++ % 2 == 1 &&
        env_or("PORTALOCK_CONTENDER_B", NULL) != NULL) {
        static char cmd[4096];
        snprintf(cmd, sizeof(cmd), "%s", getenv("PORTALOCK_CONTENDER_B"));
        split_cmd(cmd, argv, 40);
        p = plt_start_argv(label, argv, 1);
        p->remote_b = 1;
        return p;
    }
    impl_argv(impl, as_nobody, argv, 40);
    return plt_start_argv(label, argv, 1);
}

int plt_nobody_can_run(plt_impl_t impl, char *why, size_t len) {
    char *argv[40];
    int n = impl_argv(impl, 0, argv, 40);
    int i, status;
    pid_t pid;

    if (geteuid() != 0) {
        snprintf(why, len, "the suite is not root (cannot become uid 65534)");
        return 0;
    }
    if (access("/usr/bin/setpriv", X_OK) != 0) {
        snprintf(why, len, "/usr/bin/setpriv (util-linux) is missing");
        return 0;
    }
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        for (i = 0; i < n; i++)
            if (argv[i][0] == '/' && access(argv[i], i == 0 ? X_OK : R_OK) != 0)
                _exit(1 + i);
        _exit(access(test_dir, X_OK) == 0 ? 0 : 99);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) >= 1 &&
        WEXITSTATUS(status) <= n)
        snprintf(why, len, "uid 65534 cannot reach %s",
                 argv[WEXITSTATUS(status) - 1]);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 99)
        snprintf(why, len, "uid 65534 cannot reach %s", test_dir);
    else
        snprintf(why, len, "cannot become uid 65534");
    return 0;
}

plt_proc_t *plt_start(const char *label) {
    return plt_start_impl(label, PLT_SUBJECT, 0);
}

/* ---- line I/O ------------------------------------------------------------ */

/* line with every (encoded) dir_base replaced by dir_b, for participant B;
 * a new malloc'd buffer with room for the newline (line freed unless it is
 * stack). */
static char *rewrite_for_b(char *line, char *stack, int *n) {
    char from[PATH_MAX * 3], to[PATH_MAX * 3], *out, *w;
    const char *r = line, *hit;
    size_t fl, tl, count = 0;

    snprintf(from, sizeof(from), "%s", plt_q(dir_base));
    snprintf(to, sizeof(to), "%s", plt_q(dir_b));
    fl = strlen(from);
    tl = strlen(to);
    line[*n] = '\0';
    for (hit = strstr(r, from); hit != NULL; hit = strstr(hit + fl, from))
        count++;
    out = malloc((size_t)*n + count * (tl + 1) + 2);
    cr_assert(out != NULL);
    for (w = out; (hit = strstr(r, from)) != NULL; r = hit + fl) {
        memcpy(w, r, (size_t)(hit - r));
        w += hit - r;
        memcpy(w, to, tl);
        w += tl;
    }
    strcpy(w, r);
    *n = (int)strlen(out);
    if (line != stack)
        free(line);
    return out;
}

int plt_send(plt_proc_t *p, const char *fmt, ...) {
    char stack[8192];
    char *line = stack;
    va_list ap;
    int n;
    size_t off = 0;

    va_start(ap, fmt);
    n = vsnprintf(stack, sizeof(stack) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(stack) - 1) {
        line = malloc((size_t)n + 2);
        cr_assert(line != NULL);
        va_start(ap, fmt);
        vsnprintf(line, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (p->remote_b && dir_b[0] != '\0')
        line = rewrite_for_b(line, stack, &n);
    line[n] = '\n';
    while (off < (size_t)n + 1) {
        ssize_t w = write(p->to_child, line + off, (size_t)n + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (line != stack)
                free(line);
            return -1;
        }
        off += (size_t)w;
    }
    if (line != stack)
        free(line);
    return 0;
}

void plt_reply_free(plt_reply_t *r) {
    free(r->line);
    free(r->parsed);
    memset(r, 0, sizeof(*r));
}

static void reply_empty(plt_reply_t *r) {
    memset(r, 0, sizeof(*r));
    r->line = calloc(1, 1);
    r->parsed = calloc(1, 1);
    r->msg = "";
}

static void reply_parse(plt_reply_t *r, char *line) {
    char *save = NULL;
    char *tok;
    memset(r, 0, sizeof(*r));
    r->line = line;
    r->parsed = strdup(line);
    cr_assert(r->parsed != NULL);
    r->msg = "";
    tok = strtok_r(r->parsed, " ", &save);
    if (tok == NULL)
        return;
    snprintf(r->word, sizeof(r->word), "%s", tok);
    if (strcmp(r->word, "error") == 0) {
        /* error CODE message... : the message is everything after CODE. */
        const char *rest = line + strlen("error");
        while (*rest == ' ')
            rest++;
        snprintf(r->code, sizeof(r->code), "%.*s", (int)strcspn(rest, " "),
                 rest);
        rest += strcspn(rest, " ");
        while (*rest == ' ')
            rest++;
        r->msg = rest;
        return;
    }
    while ((tok = strtok_r(NULL, " ", &save)) != NULL &&
           r->nfields < PLT_MAX_FIELDS) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        r->key[r->nfields] = tok;
        r->val[r->nfields] = eq + 1;
        r->nfields++;
    }
}

int plt_recv(plt_proc_t *p, plt_reply_t *r, double timeout) {
    int64_t deadline = plt_now_ns() + (int64_t)(timeout * 1e9);
    for (;;) {
        char *nl = p->len > 0 ? memchr(p->buf, '\n', p->len) : NULL;
        struct pollfd pfd;
        int64_t left;
        int prc;
        ssize_t got;

        if (nl != NULL) {
            size_t n = (size_t)(nl - p->buf);
            char *line = malloc(n + 1);
            cr_assert(line != NULL);
            memcpy(line, p->buf, n);
            line[n] = '\0';
            if (n > 0 && line[n - 1] == '\r')
                line[n - 1] = '\0';
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            reply_parse(r, line);
            if (p->clock_realtime)
                reply_to_monotonic(r);
            return 1;
        }
        left = deadline - plt_now_ns();
        if (left <= 0) {
            reply_empty(r);
            return 0;
        }
        pfd.fd = p->from_child;
        pfd.events = POLLIN;
        prc = poll(&pfd, 1, (int)(left / 1000000 + 1));
        if (prc < 0 && errno == EINTR)
            continue;
        if (prc <= 0)
            continue;
        if (p->cap - p->len < 65536) {
            size_t cap = p->cap == 0 ? 131072 : p->cap * 2;
            char *nb = realloc(p->buf, cap);
            cr_assert(nb != NULL);
            p->buf = nb;
            p->cap = cap;
        }
        got = read(p->from_child, p->buf + p->len, p->cap - p->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            reply_empty(r);
            return -1;
        }
        p->len += (size_t)got;
    }
}

int plt_cmd(plt_proc_t *p, plt_reply_t *r, double timeout, const char *fmt,
            ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (plt_send(p, "%s", line) != 0) {
        reply_empty(r);
        return -1;
    }
    return plt_recv(p, r, timeout);
}

void plt_must(plt_proc_t *p, plt_reply_t *r, double timeout, const char *want,
              const char *fmt, ...) {
    char line[8192];
    va_list ap;
    int got;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    got = plt_cmd(p, r, timeout, "%s", line);
    if (got == 1 && plt_is(r, want))
        return;
    plt_check(0, "%s: '%s' -> %s (wanted %s)", p->label, line,
              got == 1   ? r->line
              : got == 0 ? "no reply (timeout)"
                         : "EOF",
              want);
    plt_finish(); /* records the failure (or the expected failure) */
    cr_skip_test("precondition failed: %s", line);
}

int plt_is(const plt_reply_t *r, const char *word) {
    return strcmp(r->word, word) == 0;
}

const char *plt_get(const plt_reply_t *r, const char *key) {
    int i;
    for (i = 0; i < r->nfields; i++)
        if (strcmp(r->key[i], key) == 0)
            return r->val[i];
    return NULL;
}

int64_t plt_get_i64(const plt_reply_t *r, const char *key) {
    const char *v = plt_get(r, key);
    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

int plt_has(const plt_proc_t *p, const char *list, const char *item) {
    const char *s = strcmp(list, "kinds") == 0      ? p->kinds
                    : strcmp(list, "backends") == 0 ? p->backends
                                                    : p->features;
    size_t n = strlen(item);
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        if (len == n && strncmp(s, item, n) == 0)
            return 1;
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

int plt_wait_exit(plt_proc_t *p, double timeout) {
    int64_t deadline = plt_now_ns() + (int64_t)(timeout * 1e9);
    if (p->reaped)
        return p->status;
    for (;;) {
        pid_t w = waitpid(p->pid, &p->status, WNOHANG);
        if (w == p->pid || (w < 0 && errno == ECHILD)) {
            p->reaped = 1;
            return p->status;
        }
        if (plt_now_ns() > deadline) {
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
                ;
            p->reaped = 1;
            return p->status;
        }
        plt_sleep(0.005);
    }
}

void plt_kill(plt_proc_t *p) {
    if (!p->reaped) {
        kill(p->pid, SIGKILL);
        plt_wait_exit(p, 5);
    }
}

int plt_wait_fd_open(pid_t pid, const char *path, double timeout) {
    int64_t deadline = plt_now_ns() + (int64_t)(timeout * 1e9);
    char dir[64], link[PATH_MAX + 64], target[PATH_MAX];
    snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
    do {
        DIR *d = opendir(dir);
        struct dirent *e;
        if (d == NULL) /* -1: no /proc here (macOS, the BSDs) */
            return access("/proc/self/fd", F_OK) == 0 ? 0 : -1;
        while ((e = readdir(d)) != NULL) {
            ssize_t n;
            if (e->d_name[0] == '.')
                continue;
            snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
            n = readlink(link, target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, path) == 0) {
                closedir(d);
                return 1;
            }
        }
        closedir(d);
        plt_sleep(0.002);
    } while (plt_now_ns() < deadline);
    return 0;
}
