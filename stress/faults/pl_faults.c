/*
 * pl_faults -- fault injection through the pl__sys table (lib/src/posix/
 * sys.h): every path ends in a clear error, nothing stays held, nothing
 * leaks, no partial file becomes visible.
 *
 *   pl_faults [--only NAME,...] [--rounds N] [--dir DIR] [--quick]
 *
 * Sections (each a group of named checks):
 *   sweep      every kind (Lock, RLock, TemporaryFileLock, PidFileLock,
 *              BoundedSemaphore, open_atomic) x backend x table entry x errno
 *              (EIO, ENOLCK, ENOSPC, EDQUOT, EMFILE, ENOMEM) x call position
 *              (the k-th call fails once, or every call from the k-th on).
 *              (--quick: EIO, ENOSPC, EMFILE at the first two positions.)
 *              After acquire (+ release) with the fault active: a failure
 *              carries a known code and a message; once the table is
 *              restored another process takes the lock at once, the object
 *              works again, and descriptors and threads are back where they
 *              were; the PID file / published file is absent or complete,
 *              and a ".tmp" left behind is named in the error message.
 *   eintr      half of all calls that can block (open, flock, fcntl, read,
 *              write, fsync, ftruncate, close) fail with EINTR: every
 *              operation still succeeds, also a wait for a lock another
 *              process releases; then a real signal storm (SIGUSR1 without
 *              SA_RESTART every 200us) over blocking and timed waits.
 *   enolck     ENOLCK on every lock call is a clear error; ENOLCK only on
 *              blocking calls falls back to polling and still gets the lock.
 *   enospc     ENOSPC/EDQUOT on the PID file write and on fsync, and a real
 *              EFBIG (RLIMIT_FSIZE) under open_atomic's stdio writes: a clear
 *              error naming the cause, no PID file, no published file, no
 *              temporary file.
 *   emfile     a real descriptor limit (RLIMIT_NOFILE) in a child: every
 *              kind fails with "Too many open files", nothing held.
 *   thread     pthread_create fails: a timed wait polls instead, still gets
 *              the lock when it is released and still times out on time.
 * Memory leaks are the job of the ASan and valgrind passes (ci/stress.sh).
 */
#include "portalock.h"
#include "posix/sys.h"
#include "stress_util.h"
#include "sys_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- other processes ----------------------------------------------------- */

/* Raw lock call of the backend (no library): 0, or the errno. */
static int raw_lock(int fd, pl_backend_t b, int block) {
    struct flock fl;
    int rc;
    if (b == PL_BACKEND_FLOCK)
        return flock(fd, LOCK_EX | (block ? 0 : LOCK_NB)) == 0 ? 0 : errno;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (b == PL_BACKEND_OFD)
        rc = fcntl(fd, block ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    else
        rc = fcntl(fd, block ? F_SETLKW : F_SETLK, &fl);
    return rc == 0 ? 0 : errno;
}

/* 1 if another process can lock path at once (or path is missing). */
static int free_for_others(const char *path, pl_backend_t b) {
    pid_t pid, rc;
    int status;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            _exit(errno == ENOENT ? 0 : 3);
        _exit(raw_lock(fd, b, 0) == 0 ? 0 : 1);
    }
    if (pid < 0)
        return 0;
    while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (rc != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A child that holds path for ms milliseconds; returns once it holds. */
static void reap(pid_t pid);

static pid_t hold_in_child(const char *path, pl_backend_t b, int ms) {
    ssize_t n;
    int p[2];
    char c;
    pid_t pid;
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        close(p[0]);
        if (fd < 0 || raw_lock(fd, b, 1) != 0)
            _exit(1);
        if (write(p[1], "h", 1) != 1)
            _exit(1);
        ps_sleep_us((long)ms * 1000);
        _exit(0);
    }
    close(p[1]);
    while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
        ; /* the signal storm section interrupts us too */
    if (pid < 0 || n != 1) {
        close(p[0]);
        reap(pid);
        return -1;
    }
    close(p[0]);
    return pid;
}

static void reap(pid_t pid) {
    int status;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
}

/* ---- the kinds under test ------------------------------------------------ */

typedef enum kind {
    K_LOCK,
    K_RLOCK,
    K_TEMPORARY,
    K_PIDFILE,
    K_SEMAPHORE,
    K_ATOMIC,
    K_COUNT
} kind_t;
static const char *const kind_names[K_COUNT] = {
    "lock", "rlock", "temporary", "pidfile", "semaphore", "atomic"};

static char dir[600];
static long cases;

typedef struct subject {
    kind_t kind;
    pl_backend_t backend;
    char path[700];
    pl_lock_t *lock;
    pl_semaphore_t *sem;
} subject_t;

#define SEM_N   2
#define PAYLOAD "0123456789abcdef-complete-payload\n"

static int subject_open(subject_t *s, kind_t kind, pl_backend_t backend,
                        double timeout) {
    pl_lock_options_t o;
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->backend = backend;
    snprintf(s->path, sizeof(s->path), "%s/%s.lock", dir, kind_names[kind]);
    pl_lock_options_init(&o);
    o.backend = backend;
    o.timeout = timeout;
    o.check_interval = 0.01;
    o.fail_when_locked = 0;
    switch (kind) {
    case K_LOCK: o.mode = "w"; return pl_lock_open(&s->lock, s->path, &o);
    case K_RLOCK: return pl_rlock_open(&s->lock, s->path, &o);
    case K_TEMPORARY: return pl_temporary_lock_open(&s->lock, s->path, &o);
    case K_PIDFILE: return pl_pidfile_lock_open(&s->lock, s->path, &o);
    case K_SEMAPHORE:
        return pl_semaphore_open(&s->sem, SEM_N, "faults", dir, &o);
    default: return PL_OK;
    }
}

static void subject_close(subject_t *s) {
    pl_lock_close(s->lock);
    pl_semaphore_close(s->sem);
    s->lock = NULL;
    s->sem = NULL;
}

static const char *subject_msg(const subject_t *s, const pl_error_t *e) {
    if (s->lock != NULL)
        return pl_lock_errmsg(s->lock);
    if (s->sem != NULL)
        return pl_semaphore_errmsg(s->sem);
    return e->msg;
}

/*
 * The operation under test: acquire then release (open_atomic: open, write,
 * commit).  *stage says how far it got (0 failed at acquire/open, 1 failed
 * at release/commit, 2 complete).
 */
static int subject_cycle(subject_t *s, pl_error_t *e, int *stage) {
    int rc;
    *stage = 0;
    memset(e, 0, sizeof(*e));
    if (s->kind == K_ATOMIC) {
        pl_atomic_file_t *af;
        if ((rc = pl_open_atomic(&af, s->path, e)) != PL_OK)
            return rc;
        fputs(PAYLOAD, pl_atomic_fp(af));
        *stage = 1;
        if ((rc = pl_atomic_commit(af, e)) != PL_OK)
            return rc;
        *stage = 2;
        return PL_OK;
    }
    if (s->kind == K_SEMAPHORE)
        rc = pl_semaphore_acquire(s->sem);
    else
        rc = pl_lock_acquire(s->lock);
    if (rc == PL_OK && s->kind == K_RLOCK)
        rc = pl_lock_acquire(s->lock);
    if (rc != PL_OK)
        return rc;
    *stage = 1;
    if (s->kind == K_RLOCK && (rc = pl_lock_release(s->lock)) != PL_OK)
        return rc;
    rc = s->kind == K_SEMAPHORE ? pl_semaphore_release(s->sem)
                                : pl_lock_release(s->lock);
    if (rc == PL_OK)
        *stage = 2;
    return rc;
}

/* The files another process would lock to exclude this subject. */
static int subject_free(const subject_t *s) {
    char p[800];
    switch (s->kind) {
    case K_ATOMIC: return 1;
    case K_PIDFILE:
        snprintf(p, sizeof(p), "%s.lock", s->path);
        return free_for_others(p, s->backend);
    case K_SEMAPHORE:
        for (int i = 0; i < SEM_N; i++) {
            snprintf(p, sizeof(p), "%s/faults.%02d.lock", dir, i);
            if (!free_for_others(p, s->backend))
                return 0;
        }
        return 1;
    default: return free_for_others(s->path, s->backend);
    }
}

/* Removes what a run may leave so the next case starts clean. */
static void clean_dir(void) {
    ps_rmtree(dir);
    mkdir(dir, 0755);
}

/* Every ".tmp" left in dir is named in msg. */
static int tmp_files_named(const char *msg, char *first, size_t len) {
    int n = ps_dir_count(dir, ".tmp", first, len);
    return n == 0 || (n == 1 && strstr(msg, first) != NULL);
}

static int valid_code(int rc) {
    return strcmp(pl_err_name(rc), "PL_EUNKNOWN") != 0;
}

/* The published file is absent or complete. */
static int visible_complete(const subject_t *s) {
    char buf[256] = {0};
    FILE *f;
    size_t n;
    if (s->kind == K_PIDFILE) {
        long pid;
        int rc = pl_pidfile_read(s->path, &pid, NULL);
        return rc == PL_ENOENT || (rc == PL_OK && pid == (long)getpid());
    }
    if (s->kind != K_ATOMIC)
        return 1;
    f = fopen(s->path, "r");
    if (f == NULL)
        return errno == ENOENT;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    return n == strlen(PAYLOAD) && memcmp(buf, PAYLOAD, n) == 0;
}

/* ---- sweep --------------------------------------------------------------- */

static const int sweep_errnos[] = {EIO, ENOSPC, EMFILE, ENOLCK, EDQUOT, ENOMEM};
/* --quick: the first 3 errnos and the first 2 positions of each entry. */
static size_t sweep_nerrnos = sizeof(sweep_errnos) / sizeof(sweep_errnos[0]);
static long sweep_positions = 6;

static void sweep_one(kind_t kind, pl_backend_t b, ps_entry_t en, int err,
                      long k, long times) {
    char label[200], first[256];
    subject_t s;
    pl_error_t e;
    int rc, stage, fds, threads, again;

    snprintf(label, sizeof(label), "%s/%s, %s call %ld%s failing with %s",
             kind_names[kind], pl_backend_name(b), ps_entry_names[en], k + 1,
             times < 0 ? " onwards" : "", strerror(err));
    cases++;
    clean_dir();
    fds = ps_count_fds();
    threads = ps_count_threads();
    if (subject_open(&s, kind, b, 0) != PL_OK) {
        ps_check("faults.sweep.open", 0, "%s", label);
        return;
    }
    ps_hooks_install();
    ps_fault_add(en, err, k, times, 0, 0);
    rc = subject_cycle(&s, &e, &stage);
    ps_hooks_remove();

    ps_check("faults.sweep.code", valid_code(rc), "%s: code %d", label, rc);
    if (rc != PL_OK)
        ps_check("faults.sweep.message", subject_msg(&s, &e)[0] != '\0',
                 "%s: %s without a message", label, pl_err_name(rc));
    ps_check("faults.sweep.not_held",
             s.lock == NULL || !pl_lock_is_held(s.lock), "%s: %s, still held",
             label, pl_err_name(rc));
    ps_check("faults.sweep.released", subject_free(&s),
             "%s: %s (%s), lock left behind", label, pl_err_name(rc),
             subject_msg(&s, &e));
    ps_check("faults.sweep.visible", visible_complete(&s),
             "%s: %s, a partial file is visible", label, pl_err_name(rc));
    if (en != E_UNLINK)
        ps_check("faults.sweep.tmp",
                 tmp_files_named(subject_msg(&s, &e), first, sizeof(first)),
                 "%s: %s (%s): temporary file %s left and not named", label,
                 pl_err_name(rc), subject_msg(&s, &e), first);
    /* Usable again once the fault is gone. */
    if (kind == K_ATOMIC)
        clean_dir();
    again = subject_cycle(&s, &e, &stage);
    ps_check("faults.sweep.usable", again == PL_OK, "%s: afterwards %s (%s)",
             label, pl_err_name(again), subject_msg(&s, &e));
    subject_close(&s);
    ps_check("faults.sweep.leak.fds", ps_count_fds() == fds,
             "%s: %d descriptors, %d before", label, ps_count_fds(), fds);
    ps_check("faults.sweep.leak.threads",
             ps_wait_threads(threads, 2000) == threads, "%s: %d threads", label,
             ps_count_threads());
}

static void section_sweep(void) {
    long before = cases;
    for (int kind = 0; kind < K_COUNT; kind++) {
        for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
            subject_t s;
            pl_error_t e;
            long counts[E_COUNT];
            int stage;
            if (kind == K_ATOMIC && b != PL_BACKEND_FLOCK)
                continue; /* open_atomic takes no lock */
            /* A clean run counts the calls each entry gets. */
            clean_dir();
            subject_open(&s, (kind_t)kind, (pl_backend_t)b, 0);
            ps_hooks_install();
            subject_cycle(&s, &e, &stage);
            for (int i = 0; i < E_COUNT; i++)
                counts[i] = atomic_load(&ps_calls[i]);
            ps_hooks_remove();
            subject_close(&s);
            for (int en = 0; en < E_COUNT; en++)
                for (long k = 0; k < counts[en] && k < sweep_positions; k++)
                    for (size_t x = 0; x < sweep_nerrnos; x++) {
                        sweep_one((kind_t)kind, (pl_backend_t)b, (ps_entry_t)en,
                                  sweep_errnos[x], k, 1);
                        sweep_one((kind_t)kind, (pl_backend_t)b, (ps_entry_t)en,
                                  sweep_errnos[x], k, -1);
                    }
        }
    }
    printf("faults: sweep: %ld cases\n", cases - before);
}

/* ---- EINTR --------------------------------------------------------------- */

static const ps_entry_t blocking_entries[] = {
    E_OPEN, E_CLOSE, E_FLOCK, E_FCNTL, E_READ, E_WRITE, E_FSYNC, E_FTRUNCATE};

static volatile sig_atomic_t signals_seen;
static void on_usr1(int sig) {
    (void)sig;
    signals_seen++;
}

typedef struct storm_arg {
    pthread_t target;
    atomic_int stop;
} storm_arg_t;

static void *signal_storm(void *arg) {
    storm_arg_t *a = arg;
    while (!atomic_load(&a->stop)) {
        pthread_kill(a->target, SIGUSR1);
        ps_sleep_us(200);
    }
    return NULL;
}

static void section_eintr(int rounds) {
    long ops = 0;
    for (int kind = 0; kind < K_COUNT; kind++) {
        for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
            subject_t s;
            pl_error_t e;
            int stage, rc = PL_OK;
            if (kind == K_ATOMIC && b != PL_BACKEND_FLOCK)
                continue;
            clean_dir();
            subject_open(&s, (kind_t)kind, (pl_backend_t)b, 5);
            ps_hooks_install();
            for (size_t i = 0;
                 i < sizeof(blocking_entries) / sizeof(blocking_entries[0]);
                 i++)
                ps_fault_add(blocking_entries[i], EINTR, 0, 0, 50, 0);
            for (int r = 0; r < rounds && rc == PL_OK; r++, ops++) {
                if (kind == K_ATOMIC)
                    unlink(s.path);
                rc = subject_cycle(&s, &e, &stage);
            }
            ps_hooks_remove();
            ps_check("faults.eintr.retried", rc == PL_OK, "%s/%s: %s (%s)",
                     kind_names[kind], pl_backend_name((pl_backend_t)b),
                     pl_err_name(rc), subject_msg(&s, &e));
            subject_close(&s);
        }
    }
    /* A wait for a lock another process releases, under the EINTR storm. */
    for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
        subject_t s;
        pid_t holder;
        int64_t t0;
        int rc;
        clean_dir();
        subject_open(&s, K_LOCK, (pl_backend_t)b, 10);
        holder = hold_in_child(s.path, (pl_backend_t)b, 300);
        ps_hooks_install();
        for (size_t i = 0;
             i < sizeof(blocking_entries) / sizeof(blocking_entries[0]); i++)
            ps_fault_add(blocking_entries[i], EINTR, 0, 0, 50, 0);
        t0 = ps_now_ns();
        rc = pl_lock_acquire(s.lock);
        ps_hooks_remove();
        reap(holder);
        /* 10 s: generous against a loaded machine; the holder leaves at
         * 0.3 s. */
        ps_check("faults.eintr.wait",
                 rc == PL_OK && ps_now_ns() - t0 < 10000000000LL,
                 "%s: %s after %.2fs (%s)", pl_backend_name((pl_backend_t)b),
                 pl_err_name(rc), (double)(ps_now_ns() - t0) / 1e9,
                 pl_lock_errmsg(s.lock));
        if (rc == PL_OK)
            pl_lock_release(s.lock);
        subject_close(&s);
        ops++;
    }
    /* Real signals: blocking and timed waits, open_atomic commits. */
    {
        struct sigaction sa;
        storm_arg_t a;
        pthread_t t;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1; /* no SA_RESTART: calls see EINTR */
        sigaction(SIGUSR1, &sa, NULL);
        a.target = pthread_self();
        atomic_init(&a.stop, 0);
        pthread_create(&t, NULL, signal_storm, &a);
        for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
            for (int forever = 0; forever < 2; forever++) {
                subject_t s;
                pid_t holder;
                int64_t t0;
                int rc;
                clean_dir();
                subject_open(&s, K_LOCK, (pl_backend_t)b, forever ? -1 : 10);
                holder = hold_in_child(s.path, (pl_backend_t)b, 300);
                t0 = ps_now_ns();
                rc = pl_lock_acquire(s.lock);
                reap(holder);
                ps_check("faults.signals.wait", rc == PL_OK,
                         "%s %s wait: %s (%s)",
                         pl_backend_name((pl_backend_t)b),
                         forever ? "blocking" : "timed", pl_err_name(rc),
                         pl_lock_errmsg(s.lock));
                if (rc == PL_OK)
                    pl_lock_release(s.lock);
                /* A holder that never leaves: the deadline must still hold
                 * (0.5 s; up to 3 s late allowed on a loaded machine). */
                if (!forever) {
                    double took;
                    holder = hold_in_child(s.path, (pl_backend_t)b, 5000);
                    t0 = ps_now_ns();
                    rc = pl_lock_acquire_with(s.lock, 0.5, PL_UNSET, 0);
                    took = (double)(ps_now_ns() - t0) / 1e9;
                    ps_kill(holder, SIGKILL);
                    reap(holder);
                    ps_check("faults.signals.deadline",
                             rc == PL_ETIMEDOUT && took >= 0.45 && took < 3.5,
                             "%s: %s after %.2fs",
                             pl_backend_name((pl_backend_t)b), pl_err_name(rc),
                             took);
                }
                (void)t0;
                subject_close(&s);
                ops += 2;
            }
        }
        for (int r = 0; r < 50; r++) {
            subject_t s;
            pl_error_t e;
            int stage, rc;
            clean_dir();
            subject_open(&s, K_ATOMIC, PL_BACKEND_FLOCK, 0);
            rc = subject_cycle(&s, &e, &stage);
            ps_check("faults.signals.atomic",
                     rc == PL_OK && visible_complete(&s), "%s (%s)",
                     pl_err_name(rc), e.msg);
            ops++;
        }
        atomic_store(&a.stop, 1);
        pthread_join(t, NULL);
        signal(SIGUSR1, SIG_DFL);
    }
    printf("faults: eintr: %ld operations, %ld signals delivered\n", ops,
           (long)signals_seen);
}

/* ---- ENOLCK -------------------------------------------------------------- */

static void section_enolck(void) {
    for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
        ps_entry_t en = b == PL_BACKEND_FLOCK ? E_FLOCK : E_FCNTL;
        subject_t s;
        pid_t holder;
        int rc, fds = ps_count_fds();
        clean_dir();
        subject_open(&s, K_LOCK, (pl_backend_t)b, 5);
        ps_hooks_install();
        ps_fault_add(en, ENOLCK, 0, -1, 0, 0);
        rc = pl_lock_acquire(s.lock);
        ps_hooks_remove();
        ps_check("faults.enolck.error",
                 rc != PL_OK && valid_code(rc) &&
                     pl_lock_os_error(s.lock) == ENOLCK &&
                     strstr(pl_lock_errmsg(s.lock), strerror(ENOLCK)) != NULL,
                 "%s: %s, os error %d, \"%s\"",
                 pl_backend_name((pl_backend_t)b), pl_err_name(rc),
                 pl_lock_os_error(s.lock), pl_lock_errmsg(s.lock));
        ps_check("faults.enolck.released",
                 !pl_lock_is_held(s.lock) && ps_count_fds() == fds &&
                     subject_free(&s),
                 "%s: held %d, fds %d/%d", pl_backend_name((pl_backend_t)b),
                 pl_lock_is_held(s.lock), ps_count_fds(), fds);
        /* Only the waiting call fails: poll instead, still get the lock. */
        holder = hold_in_child(s.path, (pl_backend_t)b, 300);
        ps_hooks_install();
        ps_fault_add(en, ENOLCK, 0, -1, 0, 1);
        rc = pl_lock_acquire(s.lock);
        ps_hooks_remove();
        reap(holder);
        ps_check("faults.enolck.poll_fallback", rc == PL_OK, "%s: %s (%s)",
                 pl_backend_name((pl_backend_t)b), pl_err_name(rc),
                 pl_lock_errmsg(s.lock));
        if (rc == PL_OK)
            pl_lock_release(s.lock);
        subject_close(&s);
    }
}

/* ---- ENOSPC / EDQUOT / EFBIG --------------------------------------------- */

static void section_enospc(void) {
    static const int errs[] = {ENOSPC, EDQUOT};
    for (size_t x = 0; x < 2; x++) {
        static const ps_entry_t where[] = {E_WRITE, E_FSYNC};
        for (size_t w = 0; w < 2; w++) {
            for (int kind = K_PIDFILE; kind <= K_ATOMIC; kind++) {
                subject_t s;
                pl_error_t e;
                char first[256];
                int rc, stage, fds = ps_count_fds();
                if (kind == K_SEMAPHORE)
                    continue;
                if (kind == K_ATOMIC && where[w] == E_WRITE)
                    continue; /* stdio writes: see the EFBIG case below */
                clean_dir();
                subject_open(&s, (kind_t)kind, PL_BACKEND_FLOCK, 0);
                ps_hooks_install();
                ps_fault_add(where[w], errs[x], 0, -1, 0, 0);
                rc = subject_cycle(&s, &e, &stage);
                ps_hooks_remove();
                ps_check("faults.enospc.error",
                         rc != PL_OK && stage == (kind == K_ATOMIC ? 1 : 0) &&
                             strstr(subject_msg(&s, &e), strerror(errs[x])) !=
                                 NULL,
                         "%s, %s failing with %s: %s stage %d (%s)",
                         kind_names[kind], ps_entry_names[where[w]],
                         strerror(errs[x]), pl_err_name(rc), stage,
                         subject_msg(&s, &e));
                ps_check("faults.enospc.nothing_visible",
                         access(s.path, F_OK) != 0 &&
                             ps_dir_count(dir, ".tmp", first, sizeof(first)) ==
                                 0,
                         "%s, %s/%s: %s exists %d, tmp %s", kind_names[kind],
                         ps_entry_names[where[w]], strerror(errs[x]), s.path,
                         access(s.path, F_OK) == 0, first);
                ps_check("faults.enospc.released",
                         subject_free(&s) && ps_count_fds() == fds &&
                             (s.lock == NULL || !pl_lock_is_held(s.lock)),
                         "%s, %s/%s", kind_names[kind],
                         ps_entry_names[where[w]], strerror(errs[x]));
                subject_close(&s);
            }
        }
    }
    /* A real failing write under stdio: RLIMIT_FSIZE gives EFBIG. */
    {
        pid_t pid;
        int status;
        clean_dir();
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            struct rlimit rl = {4096, 4096};
            pl_atomic_file_t *af;
            pl_error_t e;
            char path[700], big[8192];
            int rc;
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &rl);
            snprintf(path, sizeof(path), "%s/big", dir);
            if (pl_open_atomic(&af, path, &e) != PL_OK)
                _exit(2);
            memset(big, 'x', sizeof(big));
            fwrite(big, 1, sizeof(big), pl_atomic_fp(af));
            rc = pl_atomic_commit(af, &e);
            if (rc == PL_OK || strstr(e.msg, "write") == NULL)
                _exit(3);
            if (access(path, F_OK) == 0 ||
                ps_dir_count(dir, ".tmp", NULL, 0) != 0)
                _exit(4);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        ps_check("faults.efbig.atomic",
                 WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "open_atomic over RLIMIT_FSIZE: child status %#x (2 open, 3 "
                 "no write error, 4 file visible or tmp left)",
                 status);
    }
}

/* ---- EMFILE -------------------------------------------------------------- */

static void section_emfile(void) {
    for (int kind = 0; kind < K_COUNT; kind++) {
        for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
            pid_t pid;
            int status;
            subject_t s;
            if (kind == K_ATOMIC && b != PL_BACKEND_FLOCK)
                continue;
            clean_dir();
            subject_open(&s, (kind_t)kind, (pl_backend_t)b, 0);
            fflush(stdout);
            pid = fork();
            if (pid == 0) {
                struct rlimit rl;
                pl_error_t e;
                int stage, rc;
                rl.rlim_cur = rl.rlim_max = (rlim_t)ps_count_fds() + 16;
                /* valgrind refuses a new limit; then fill its own (about
                 * a thousand). */
                if (setrlimit(RLIMIT_NOFILE, &rl) != 0 &&
                    (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur > 65536))
                    _exit(2);
                /* Fill every free descriptor: no open() can succeed now. */
                while (dup(0) >= 0)
                    ;
                if (errno != EMFILE)
                    _exit(2);
                rc = subject_cycle(&s, &e, &stage);
                if (rc == PL_OK)
                    _exit(3);
                if (strstr(subject_msg(&s, &e), strerror(EMFILE)) == NULL) {
                    fprintf(stderr, "emfile: %s\n", subject_msg(&s, &e));
                    _exit(4);
                }
                if (s.lock != NULL && pl_lock_is_held(s.lock))
                    _exit(5);
                _exit(0);
            }
            waitpid(pid, &status, 0);
            ps_check("faults.emfile",
                     WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                         subject_free(&s),
                     "%s/%s: child status %#x (3 succeeded, 4 message without "
                     "the cause, 5 still held)",
                     kind_names[kind], pl_backend_name((pl_backend_t)b),
                     status);
            subject_close(&s);
        }
    }
}

/* ---- pthread_create ------------------------------------------------------ */

static void section_thread(void) {
    for (int b = PL_BACKEND_FLOCK; b <= PL_BACKEND_OFD; b++) {
        subject_t s;
        pid_t holder;
        int rc, fds, threads;
        double took;
        int64_t t0;
        clean_dir();
        subject_open(&s, K_LOCK, (pl_backend_t)b, 10);
        fds = ps_count_fds();
        threads = ps_count_threads();
        holder = hold_in_child(s.path, (pl_backend_t)b, 300);
        ps_hooks_install();
        ps_fault_add(E_PTHREAD_CREATE, EAGAIN, 0, -1, 0, 0);
        rc = pl_lock_acquire(s.lock);
        ps_hooks_remove();
        reap(holder);
        ps_check("faults.thread.poll", rc == PL_OK, "%s: %s (%s)",
                 pl_backend_name((pl_backend_t)b), pl_err_name(rc),
                 pl_lock_errmsg(s.lock));
        if (rc == PL_OK)
            pl_lock_release(s.lock);
        holder = hold_in_child(s.path, (pl_backend_t)b, 5000);
        ps_hooks_install();
        ps_fault_add(E_PTHREAD_CREATE, EAGAIN, 0, -1, 0, 0);
        t0 = ps_now_ns();
        rc = pl_lock_acquire_with(s.lock, 0.5, PL_UNSET, 0);
        took = (double)(ps_now_ns() - t0) / 1e9;
        ps_hooks_remove();
        ps_kill(holder, SIGKILL);
        reap(holder);
        /* 0.5 s deadline; up to 3 s late allowed on a loaded machine. */
        ps_check("faults.thread.deadline",
                 rc == PL_ETIMEDOUT && took >= 0.45 && took < 3.5,
                 "%s: %s after %.2fs", pl_backend_name((pl_backend_t)b),
                 pl_err_name(rc), took);
        ps_check(
            "faults.thread.leaks",
            ps_count_fds() == fds && ps_wait_threads(threads, 2000) == threads,
            "%s: fds %d/%d threads %d/%d", pl_backend_name((pl_backend_t)b),
            ps_count_fds(), fds, ps_count_threads(), threads);
        subject_close(&s);
    }
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"only", required_argument, NULL, 'o'},
        {"rounds", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'd'},
        {"quick", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0}};
    const char *only = NULL, *base = NULL;
    char top[512];
    int rounds = 200, c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': only = optarg; break;
        case 'r':
            rounds = (int)ps_parse_long("--rounds", optarg, 1, 1000000);
            break;
        case 'd': base = optarg; break;
        case 'q':
            sweep_nerrnos = 3;
            sweep_positions = 2;
            break;
        default:
            fprintf(stderr, "usage: pl_faults [--only sweep,eintr,enolck,"
                            "enospc,emfile,thread] [--rounds N] [--dir DIR] "
                            "[--quick]\n");
            return 64;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (ps_workdir(top, sizeof(top), base, "pl_faults") != 0) {
        perror("pl_faults: mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/d", top);
    mkdir(dir, 0755);
#define SECTION(name, call)                                                    \
 if (only == NULL || strstr(only, name) != NULL)                               \
 call
    SECTION("sweep", section_sweep());
    SECTION("eintr", section_eintr(rounds));
    SECTION("enolck", section_enolck());
    SECTION("enospc", section_enospc());
    SECTION("emfile", section_emfile());
    SECTION("thread", section_thread());
    ps_rmtree(top);
    return ps_checks_summary("pl_faults") == 0 ? 0 : 1;
}
