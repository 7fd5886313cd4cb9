/*
 * pl_crash -- crash consistency of open_atomic and PidFileLock: a child runs
 * the operation and SIGKILLs itself just before or just after its k-th
 * system call (through the pl__sys table), for every k; readers must only
 * ever see the old or the new complete file.
 *
 *   pl_crash [--only atomic,pidfile,leftovers] [--rounds N] [--dir DIR]
 *
 * Operations:
 *   atomic   pl_open_atomic + a 64 KiB write + pl_atomic_commit; the path
 *            goes from absent (old) to the complete payload (new).
 *   pidfile  a PidFileLock over a stale PID file left by a dead holder:
 *            acquire (publishes our PID) then release (removes it); the path
 *            holds the stale PID, our PID, or nothing.
 *
 * Every system call of the operation goes through the table, so between two
 * of them nothing visible changes: the state seen right after each kill is
 * every state a reader can ever meet.  Checks per kill point:
 *   crash.<op>.visible   the path is absent, or complete (old or new);
 *   crash.<op>.recover   afterwards the lock is free / a new open_atomic of
 *                        the path gives the right answer (PL_EEXIST once
 *                        published, else PL_OK) and the kind works again;
 * and a reader process reads the path in a loop the whole time:
 *   crash.<op>.reader    it never saw a partial or empty file.
 * The leftovers section checks what issue 9 defect 1 is about:
 *   crash.leftover.tmp   a ".tmp" file left by a killed writer is gone after
 *                        the next operation on the path (the library removes
 *                        leftovers once they are stale, 10 s: the program
 *                        ages them by an hour first);
 *   crash.leftover.nlink the published file has one link after the next
 *                        operation (a kill between link() and unlink() of
 *                        the named path leaves a second link until then).
 * It sweeps each operation twice: as the filesystem allows (O_TMPFILE on
 * ext4 and tmpfs: nothing named to leave), and with open(O_TMPFILE)
 * refused as on NFS, so that the library writes named temporary files;
 *   crash.leftover.reached  that second sweep did leave ".tmp" files for
 *                        the next operation to remove (else it tested
 *                        nothing).
 * --rounds repeats the whole sweep (the reader gets more chances).
 */
#include "portalock.h"
#include "stress_util.h"
#include "sys_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAYLOAD_LEN (64 * 1024)
#define STALE_PID   "2147483646\n" /* a PID no process has here */

typedef enum op { OP_ATOMIC, OP_PIDFILE } op_t;
static const char *const op_names[] = {"atomic", "pidfile"};

static char dir[600], path[700], stale_tmp[700];
static char payload[PAYLOAD_LEN];

/* ---- the child: run the operation, die at the chosen point --------------- */

static long kill_at;   /* 2*k = before call k, 2*k+1 = after it; -1 never */
static int no_tmpfile; /* the child refuses O_TMPFILE (ps_no_tmpfile) */
static atomic_long points;

static void observer(ps_entry_t e, int after) {
    long n = atomic_fetch_add(&points, 1);
    (void)e;
    (void)after;
    if (n == kill_at)
        ps_real.kill(getpid(), SIGKILL);
}

static int run_op(op_t op) {
    pl_error_t e;
    int rc;
    if (op == OP_ATOMIC) {
        pl_atomic_file_t *af;
        if ((rc = pl_open_atomic(&af, path, &e)) != PL_OK)
            return 10;
        if (fwrite(payload, 1, PAYLOAD_LEN, pl_atomic_fp(af)) != PAYLOAD_LEN)
            return 11;
        return pl_atomic_commit(af, &e) == PL_OK ? 0 : 12;
    } else {
        pl_lock_options_t o;
        pl_lock_t *lock;
        pl_lock_options_init(&o);
        o.timeout = 0;
        if (pl_pidfile_lock_open(&lock, path, &o) != PL_OK)
            return 10;
        rc = pl_lock_acquire(lock);
        if (rc == PL_OK)
            rc = pl_lock_release(lock);
        pl_lock_close(lock);
        return rc == PL_OK ? 0 : 11;
    }
}

/* Runs the op in a child killed at point k; returns the number of points
 * the op has when k < 0 (a clean counting run), else the wait status. */
static int child_run(op_t op, long k, long *npoints) {
    int p[2], status;
    pid_t pid;
    long n = 0;
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        kill_at = k;
        ps_hooks_install();
        ps_no_tmpfile = no_tmpfile;
        ps_hook_observer = observer;
        status = run_op(op);
        ps_hook_observer = NULL;
        n = atomic_load(&points);
        ps_hooks_remove();
        if (write(p[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
            _exit(20);
        _exit(status);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    if (read(p[0], &n, sizeof(n)) != (ssize_t)sizeof(n))
        n = -1;
    close(p[0]);
    waitpid(pid, &status, 0);
    if (npoints != NULL)
        *npoints = n;
    return status;
}

/* ---- what a reader may see ----------------------------------------------- */

enum seen { SEEN_ABSENT, SEEN_OLD, SEEN_NEW, SEEN_BAD };

static char bad_example[128];

static int classify(op_t op) {
    static char buf[PAYLOAD_LEN + 16];
    ssize_t n, got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SEEN_ABSENT : SEEN_BAD;
    while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    close(fd);
    buf[got] = '\0';
    if (op == OP_ATOMIC) {
        if (got == PAYLOAD_LEN && memcmp(buf, payload, PAYLOAD_LEN) == 0)
            return SEEN_NEW;
    } else {
        char *end;
        long v;
        if (strcmp(buf, STALE_PID) == 0)
            return SEEN_OLD;
        v = strtol(buf, &end, 10);
        if (got > 0 && v > 0 && (*end == '\0' || strcmp(end, "\n") == 0))
            return SEEN_NEW;
    }
    snprintf(bad_example, sizeof(bad_example), "%zd bytes: \"%.40s\"", got,
             buf);
    return SEEN_BAD;
}

/* A reader process: classifies the path in a loop until stopped. */
typedef struct reader_stats {
    atomic_int stop;
    atomic_long reads, bad;
    char example[128];
} reader_stats_t;

static pid_t start_reader(op_t op, reader_stats_t *rs) {
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        while (!atomic_load(&rs->stop)) {
            if (classify(op) == SEEN_BAD && atomic_fetch_add(&rs->bad, 1) == 0)
                memcpy(rs->example, bad_example, sizeof(rs->example));
            atomic_fetch_add(&rs->reads, 1);
        }
        _exit(0);
    }
    return pid;
}

/* ---- the sweep ----------------------------------------------------------- */

static void reset_state(op_t op) {
    ps_rmtree(dir);
    mkdir(dir, 0755);
    if (op == OP_PIDFILE) {
        /* Written aside and renamed in: the reader must never see our own
         * half-written setup. */
        FILE *f = fopen(stale_tmp, "w");
        if (f != NULL) {
            fputs(STALE_PID, f);
            fclose(f);
            rename(stale_tmp, path);
        }
    }
}

/* After a kill: the lock and the path work again. */
static int recover(op_t op, char *why, size_t len) {
    pl_error_t e;
    int rc;
    if (op == OP_ATOMIC) {
        pl_atomic_file_t *af = NULL;
        int published = classify(op) == SEEN_NEW;
        rc = pl_open_atomic(&af, path, &e);
        if (published && rc == PL_EEXIST)
            return 1;
        if (!published && rc == PL_OK) {
            /* the same payload: the reader is still watching */
            fwrite(payload, 1, PAYLOAD_LEN, pl_atomic_fp(af));
            rc = pl_atomic_commit(af, &e);
            if (rc == PL_OK)
                return 1;
        }
        pl_atomic_abort(af);
        snprintf(why, len, "published %d, open_atomic %s (%s)", published,
                 pl_err_name(rc), e.msg);
        return 0;
    } else {
        pl_lock_options_t o;
        pl_lock_t *lock;
        long pid = 0;
        pl_lock_options_init(&o);
        o.timeout = 0;
        if (pl_pidfile_lock_open(&lock, path, &o) != PL_OK)
            return 0;
        rc = pl_lock_acquire(lock);
        if (rc == PL_OK && pl_pidfile_read(path, &pid, NULL) == PL_OK &&
            pid == (long)getpid())
            rc = pl_lock_release(lock);
        else if (rc == PL_OK)
            rc = PL_EINVAL;
        snprintf(why, len, "acquire/release %s (%s), pid file %ld",
                 pl_err_name(rc), pl_lock_errmsg(lock), pid);
        pl_lock_close(lock);
        return rc == PL_OK;
    }
}

static long leftover_tmp, leftover_kept, leftover_nlink;

static void sweep(op_t op, int strict_leftovers) {
    reader_stats_t *rs = ps_shared_alloc(sizeof(*rs));
    long npoints = 0, k;
    char name[64], why[512], first[256];
    int status;
    pid_t reader;

    leftover_tmp = leftover_kept = leftover_nlink = 0;
    reset_state(op);
    status = child_run(op, -1, &npoints);
    ps_check("crash.clean_run", WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "%s: clean run status %#x", op_names[op], status);
    reader = start_reader(op, rs);
    for (k = 0; k <= npoints; k++) {
        int seen;
        reset_state(op);
        status = child_run(op, k, NULL);
        if (k < npoints)
            ps_check("crash.killed",
                     WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                     "%s: point %ld: child status %#x", op_names[op], k,
                     status);
        seen = classify(op);
        snprintf(name, sizeof(name), "crash.%s.visible", op_names[op]);
        ps_check(name, seen != SEEN_BAD, "killed at point %ld of %ld: %s", k,
                 npoints, bad_example);
        if (op == OP_PIDFILE && k == npoints)
            ps_check(name, seen == SEEN_ABSENT,
                     "the complete run left the PID file");
        /* A leftover may stay until the next operation on the path finds
         * it stale (older than the library's bound, 10 s): age it, so the
         * recovery below must remove it. */
        if (ps_backdate(dir, ".tmp", 3600) > 0)
            leftover_tmp++;
        if (op == OP_ATOMIC && seen == SEEN_NEW) {
            struct stat st;
            if (stat(path, &st) == 0 && st.st_nlink != 1)
                leftover_nlink++;
        }
        snprintf(name, sizeof(name), "crash.%s.recover", op_names[op]);
        ps_check(name, recover(op, why, sizeof(why)), "killed at point %ld: %s",
                 k, why);
        if (op == OP_ATOMIC && strict_leftovers) {
            struct stat st;
            if (stat(path, &st) == 0 && st.st_nlink != 1)
                ps_check("crash.leftover.nlink", 0,
                         "killed at point %ld of %ld: published file still "
                         "has %lu links after the next open_atomic (issue "
                         "9, defect 1)",
                         k, npoints, (unsigned long)st.st_nlink);
        }
        if (ps_dir_count(dir, ".tmp", first, sizeof(first)) > 0) {
            leftover_kept++;
            if (strict_leftovers)
                ps_check("crash.leftover.tmp", 0,
                         "%s killed at point %ld of %ld: %s is still there "
                         "after the next %s (an hour old; issue 9, defect 1)",
                         op_names[op], k, npoints, first,
                         op == OP_ATOMIC ? "open_atomic" : "acquire/release");
        }
    }
    atomic_store(&rs->stop, 1);
    waitpid(reader, &status, 0);
    snprintf(name, sizeof(name), "crash.%s.reader", op_names[op]);
    ps_check(name, atomic_load(&rs->bad) == 0,
             "a reader saw a partial file %ld times of %ld, e.g. %s",
             atomic_load(&rs->bad), atomic_load(&rs->reads), rs->example);
    if (strict_leftovers && no_tmpfile)
        ps_check("crash.leftover.reached", leftover_tmp > 0,
                 "%s without O_TMPFILE: no kill left a .tmp file",
                 op_names[op]);
    printf("crash: %s%s: %ld kill points, %ld concurrent reads, %ld bad; "
           "%ld kills left a .tmp (%ld still there after the next "
           "operation), %ld a second link\n",
           op_names[op], no_tmpfile ? " (no O_TMPFILE)" : "", npoints + 1,
           atomic_load(&rs->reads), atomic_load(&rs->bad), leftover_tmp,
           leftover_kept, leftover_nlink);
    ps_shared_free(rs, sizeof(*rs));
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"only", required_argument, NULL, 'o'},
        {"rounds", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0}};
    const char *only = NULL, *base = NULL;
    char top[512];
    int rounds = 1, c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': only = optarg; break;
        case 'r':
            rounds = (int)ps_parse_long("--rounds", optarg, 1, 100000);
            break;
        case 'd': base = optarg; break;
        default:
            fprintf(stderr, "usage: pl_crash [--only atomic,pidfile,leftovers]"
                            " [--rounds N] [--dir DIR]\n");
            return 64;
        }
    }
    for (int i = 0; i < PAYLOAD_LEN; i++)
        payload[i] = (char)('a' + i % 26);
    if (ps_workdir(top, sizeof(top), base, "pl_crash") != 0) {
        perror("pl_crash: mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/d", top);
    snprintf(path, sizeof(path), "%s/published", dir);
    snprintf(stale_tmp, sizeof(stale_tmp), "%s/stale", top);
    for (int r = 0; r < rounds; r++) {
        if (only == NULL || strstr(only, "atomic") != NULL)
            sweep(OP_ATOMIC, 0);
        if (only == NULL || strstr(only, "pidfile") != NULL)
            sweep(OP_PIDFILE, 0);
        if (only != NULL && strstr(only, "leftovers") != NULL) {
            for (no_tmpfile = 0; no_tmpfile <= 1; no_tmpfile++) {
                sweep(OP_ATOMIC, 1);
                sweep(OP_PIDFILE, 1);
            }
            no_tmpfile = 0;
        }
    }
    ps_rmtree(top);
    return ps_checks_summary("pl_crash") == 0 ? 0 : 1;
}
