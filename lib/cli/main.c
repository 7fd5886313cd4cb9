/*
 * main.c -- the portalock command: flock(1) over the portalock library.
 *
 * The plain file and descriptor forms are util-linux flock(1), option for
 * option, message for message and exit status for exit status (util-linux
 * 2.38.1 and later; see FLOCK-COMPAT.md); they depend on the operating
 * system's files and descriptors and live in the platform's flock.c
 * (posix/, win32/).  The other kinds (--semaphore, --pid, --temporary,
 * --redis) are portalock's own, go through the library alone and are here:
 * their lock lives in this process while the command runs.  The command
 * line is parsed in args.c.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_fmt_seconds(double seconds, char *buf, unsigned len) {
    snprintf(buf, len, seconds >= 0.1 ? "%.1f" : "%.3f", seconds);
    return buf;
}

/* ---- messages ------------------------------------------------------------ */

/* Prints "NAME: TARGET: MSG", without repeating TARGET if MSG has it. */
void cli_error(const char *target, const char *msg, int rc) {
    if (msg == NULL || msg[0] == '\0')
        msg = pl_strerror(rc);
    if (target != NULL && strstr(msg, target) == NULL)
        fprintf(stderr, "%s: %s: %s\n", cli_progname, target, msg);
    else
        fprintf(stderr, "%s: %s\n", cli_progname, msg);
}

/*
 * Conflict or timeout: silent, as flock(1), unless --verbose (then
 * flock(1)'s line, and with --verbose twice what portalock knows about the
 * holder).  Returns the -E status.
 */
int cli_conflict(const cli_args_t *a, int rc, const char *holder) {
    if (a->verbose >= 1)
        fprintf(stderr, "%s: %s\n", cli_progname,
                rc == PL_ETIMEDOUT ? "timeout while waiting to get lock"
                                   : "failed to get lock");
    if (a->verbose >= 2 && holder != NULL && holder[0] != '\0')
        fprintf(stderr, "%s: %s: %s\n", cli_progname, a->target, holder);
    return a->conflict_code;
}

/* flock(1)'s --verbose lines, on stdout. */
void cli_report_took(const cli_args_t *a, double waited) {
    long long us;
    if (a->verbose < 1)
        return;
    us = (long long)(waited * 1e6);
    if (us < 0)
        us = 0;
    printf("%s: getting lock took %lld.%06lld seconds\n", cli_progname,
           us / 1000000, us % 1000000);
}

void cli_report_exec(const cli_args_t *a) {
    if (a->verbose >= 1 && a->cmd_argv != NULL)
        printf("%s: executing %s\n", cli_progname, a->cmd_argv[0]);
}

/* --verbose twice: what portalock adds (kind, backend, probe verdict). */
void cli_report_extra(const cli_args_t *a, const char *what, const char *path,
                      double waited, pl_backend_t backend) {
    char t[32];
    if (a->verbose < 2)
        return;
    fprintf(stderr, "%s: %s: %s acquired after %s s (backend %s)\n",
            cli_progname, path, what, cli_fmt_seconds(waited, t, sizeof(t)),
            pl_backend_name(backend));
    cli_probe_verdict(path);
}

const char *cli_last_sep(const char *path) {
    const char *last = NULL;
    for (; *path != '\0'; path++)
        if (strchr(cli_path_seps, *path) != NULL)
            last = path;
    return last;
}

/* Resolves the backend from --backend or PORTALOCK_BACKEND (validated). */
static int cli_resolve_backend(cli_args_t *a) {
    const char *env;
    pl_backend_t b;

    if (a->backend_set)
        return -1;
    env = getenv("PORTALOCK_BACKEND");
    if (env == NULL || env[0] == '\0') {
        a->backend = PL_BACKEND_FLOCK;
        if (!pl_backend_available(a->backend))
            a->backend = pl_default_backend();
        return -1;
    }
    if (pl_backend_from_name(env, &b) != PL_OK || b == PL_BACKEND_DEFAULT) {
        fprintf(stderr,
                "%s: PORTALOCK_BACKEND=%s: unknown backend (expected %s)\n",
                cli_progname, env, cli_backends_here());
        return CLI_EX_USAGE;
    }
    if (!pl_backend_available(b)) {
        fprintf(stderr,
                "%s: PORTALOCK_BACKEND=%s: backend not available on "
                "this platform\n",
                cli_progname, env);
        return CLI_EX_USAGE;
    }
    a->backend = b;
    return -1;
}

/* ---- TemporaryFileLock, PidFileLock -------------------------------------- */

static int cli_open_kind_lock(const cli_args_t *a, pl_lock_t **lock) {
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.timeout = a->timeout;
    if (a->check_interval != PL_UNSET)
        o.check_interval = a->check_interval;
    o.fail_when_locked = 0; /* -w applies to every kind */
    o.flags = PL_EXCLUSIVE;
    o.backend = a->backend;
    if (a->temporary)
        return pl_temporary_lock_open(lock, a->target, &o);
    return pl_pidfile_lock_open(lock, a->target, &o);
}

static void cli_holder_text(pl_lock_t *lock, char *buf, size_t len) {
    pl_holder_info_t h;
    buf[0] = '\0';
    memset(&h, 0, sizeof(h));
    if (pl_pidfile_holder(lock, &h) != PL_OK || h.pid <= 0) {
        snprintf(buf, len, "lock is held by another owner (pid unknown)");
        return;
    }
    snprintf(buf, len, "lock is held by pid %ld (%s)%s%s", h.pid,
             h.alive > 0    ? "alive"
             : h.alive == 0 ? "not running"
             : h.local == 0 ? "unknown: another host or PID namespace"
                            : "liveness unknown",
             h.host[0] ? " on host " : "", h.host);
}

static int cli_kind_main(const cli_args_t *a) {
    pl_lock_t *lock = NULL;
    char holder[400];
    double t0, waited;
    int rc, status;

    holder[0] = '\0';
    rc = cli_open_kind_lock(a, &lock);
    if (rc != PL_OK) {
        cli_error(a->target, NULL, rc);
        return CLI_EX_FAILURE;
    }
    t0 = cli_now();
    rc = pl_lock_acquire(lock);
    waited = cli_now() - t0;
    if (PL_IS_ALREADY_LOCKED(rc)) {
        if (a->pidfile)
            cli_holder_text(lock, holder, sizeof(holder));
        status = cli_conflict(a, rc, holder);
        pl_lock_close(lock);
        return status;
    }
    if (rc != PL_OK) {
        cli_error(a->target, pl_lock_errmsg(lock), rc);
        pl_lock_close(lock);
        return CLI_EX_FAILURE;
    }
    cli_report_took(a, waited);
    cli_report_extra(a, a->temporary ? "temporary lock" : "pid file lock",
                     a->target, waited, pl_lock_backend(lock));
    cli_report_exec(a);
    status = cli_run(a->cmd_argv, -1, -1, 1);
    rc = pl_lock_release(lock);
    if (rc != PL_OK) {
        cli_error(a->target, pl_lock_errmsg(lock), rc);
        if (status == 0)
            status = CLI_EX_FAILURE;
    }
    pl_lock_close(lock);
    return status;
}

/* ---- semaphore ----------------------------------------------------------- */

static int cli_semaphore_main(const cli_args_t *a) {
    pl_lock_options_t o;
    pl_semaphore_t *sem = NULL;
    char holder[64];
    double t0, waited;
    int rc, status;

    pl_lock_options_init(&o);
    o.timeout = a->timeout;
    if (a->check_interval != PL_UNSET)
        o.check_interval = a->check_interval;
    o.fail_when_locked = 0;
    o.backend = a->backend;
    rc = pl_semaphore_open(&sem, a->semaphore, a->target, a->directory, &o);
    if (rc != PL_OK) {
        cli_error(a->target, NULL, rc);
        return CLI_EX_FAILURE;
    }
    t0 = cli_now();
    rc = pl_semaphore_acquire(sem);
    waited = cli_now() - t0;
    if (PL_IS_ALREADY_LOCKED(rc)) {
        snprintf(holder, sizeof(holder), "all %u slots are held", a->semaphore);
        status = cli_conflict(a, rc, holder);
        pl_semaphore_close(sem);
        return status;
    }
    if (rc != PL_OK) {
        cli_error(a->target, pl_semaphore_errmsg(sem), rc);
        pl_semaphore_close(sem);
        return CLI_EX_FAILURE;
    }
    cli_report_took(a, waited);
    if (a->verbose >= 2) {
        int slot = pl_semaphore_slot(sem);
        const char *path = pl_semaphore_slot_path(sem, (unsigned)slot);
        char what[64];
        snprintf(what, sizeof(what), "slot %d of %u", slot, a->semaphore);
        cli_report_extra(a, what, path != NULL ? path : a->target, waited,
                         a->backend);
    }
    cli_report_exec(a);
    /* The slot's descriptor is private to the library: never inherited. */
    status = cli_run(a->cmd_argv, -1, -1, 1);
    rc = pl_semaphore_release(sem);
    if (rc != PL_OK) {
        cli_error(a->target, pl_semaphore_errmsg(sem), rc);
        if (status == 0)
            status = CLI_EX_FAILURE;
    }
    pl_semaphore_close(sem);
    return status;
}

/* ---- Redis --------------------------------------------------------------- */

static atomic_int cli_redis_lost;

static void cli_on_lost(pl_lock_t *lock, int reason, void *arg) {
    const cli_args_t *a = arg;
    char msg[512];
    int n;
    (void)lock;
    if (atomic_exchange(&cli_redis_lost, 1) != 0)
        return;
    n = snprintf(
        msg, sizeof(msg), "%s: %s: the Redis lock was lost%s%s%s; %s\n",
        cli_progname, a->target, reason != PL_ELOST ? " (" : "",
        reason != PL_ELOST ? pl_strerror(reason) : "",
        reason != PL_ELOST ? ")" : "",
        a->on_lost_kill ? "sending SIGTERM to the command"
                        : "the command keeps running, portalock will exit 1");
    if (n > 0)
        cli_write_stderr(msg,
                         (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (a->on_lost_kill)
        cli_request_kill(SIGTERM);
}

/*
 * Did we hold the lock for the whole run?  pl_lock_check may say PL_ECONN
 * (Redis unreachable): that is not an answer, so ask again until the
 * holder's own deadline (half of unavailable_timeout, after which the
 * library declares the lock lost, DESIGN.md 4.4) has passed plus one
 * command_timeout; still no answer counts as lost.
 */
static int cli_redis_check(pl_lock_t *lock, const pl_redis_options_t *ro) {
    double until =
        cli_now() + ro->unavailable_timeout / 2 + ro->command_timeout;
    int rc;
    while ((rc = pl_lock_check(lock)) == PL_ECONN && cli_now() < until &&
           !atomic_load(&cli_redis_lost))
        cli_sleep(0.05);
    return rc;
}

static int cli_redis_main(const cli_args_t *a) {
    pl_redis_options_t ro;
    pl_error_t err;
    pl_lock_t *lock = NULL;
    char *url;
    double t0, waited;
    int rc, status;

    url = malloc(strlen(a->redis_url) + 1);
    if (url == NULL) {
        fprintf(stderr, "%s: out of memory\n", cli_progname);
        return CLI_EX_FAILURE;
    }
    strcpy(url, a->redis_url);
    pl_redis_options_init(&ro);
    memset(&err, 0, sizeof(err));
    rc = pl_redis_options_from_url(&ro, url, &err);
    if (rc != PL_OK) {
        /* The library's message, not the URL: it may carry a password. */
        status = cli_usage_error("invalid --redis URL: %s",
                                 err.msg[0] ? err.msg : pl_strerror(rc));
        free(url);
        return status;
    }
    ro.timeout = a->timeout;
    if (a->check_interval != PL_UNSET)
        ro.check_interval = a->check_interval;
    ro.fail_when_locked = 0;
    ro.shared = a->op == CLI_OP_SHARED;
    ro.fair = a->fair;
    ro.on_lost = cli_on_lost;
    ro.on_lost_arg = (void *)a;
    rc = pl_redis_lock_open(&lock, a->target, &ro);
    if (rc != PL_OK) {
        if (rc == PL_ENOTSUP)
            fprintf(stderr,
                    "%s: this portalock was built without Redis support "
                    "(hiredis)\n",
                    cli_progname);
        else
            cli_error(a->target, NULL, rc);
        free(url);
        return CLI_EX_FAILURE;
    }
    t0 = cli_now();
    rc = pl_lock_acquire(lock);
    waited = cli_now() - t0;
    if (PL_IS_ALREADY_LOCKED(rc)) {
        status = cli_conflict(a, rc, "");
        pl_lock_close(lock);
        free(url);
        return status;
    }
    if (rc != PL_OK) {
        const char *msg = pl_lock_errmsg(lock);
        /* Not the URL: it may carry a password. */
        fprintf(stderr, "%s: %s: %s\n", cli_progname, a->target,
                msg[0] ? msg : pl_strerror(rc));
        pl_lock_close(lock);
        free(url);
        return CLI_EX_FAILURE;
    }
    cli_report_took(a, waited);
    if (a->verbose >= 2) {
        char t[32];
        fprintf(stderr,
                "%s: %s: %s Redis lock acquired after %s s "
                "(fencing token %llu)\n",
                cli_progname, a->target,
                a->op == CLI_OP_SHARED ? "shared" : "exclusive",
                cli_fmt_seconds(waited, t, sizeof(t)),
                (unsigned long long)pl_lock_fencing_token(lock));
    }
    if (atomic_load(&cli_redis_lost)) {
        fprintf(stderr,
                "%s: %s: lock lost before the command "
                "started; not running it\n",
                cli_progname, a->target);
        pl_lock_close(lock);
        free(url);
        return CLI_EX_FAILURE;
    }
    cli_report_exec(a);
    status = cli_run(a->cmd_argv, -1, -1, 1);
    if (!atomic_load(&cli_redis_lost) && cli_redis_check(lock, &ro) != PL_OK)
        atomic_store(&cli_redis_lost, 1);
    if (atomic_load(&cli_redis_lost)) {
        fprintf(stderr,
                "%s: %s: the lock was lost while the command ran "
                "(command status %d); exiting 1\n",
                cli_progname, a->target, status);
        status = CLI_EX_FAILURE;
    }
    rc = pl_lock_close(lock);
    if (rc != PL_OK && rc != PL_ELOST && !atomic_load(&cli_redis_lost)) {
        fprintf(stderr, "%s: %s: release failed: %s\n", cli_progname, a->target,
                pl_strerror(rc));
        if (status == 0)
            status = CLI_EX_FAILURE;
    }
    free(url);
    return status;
}

int main(int argc, char **argv) {
    cli_args_t args;
    int rc;

    cli_os_init(&argc, &argv);
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0')
        cli_progname = cli_os_progname(argv[0]);
    if (argc >= 2 && strcmp(argv[1], "probe") == 0)
        return cli_probe_main(argc - 1, argv + 1);
    rc = cli_parse_args(&args, argc, argv);
    if (rc >= 0)
        return rc;
    if (args.timeout_negative && args.timeout < 0) {
        fprintf(stderr, "%s: cannot set up timer: %s\n", cli_progname,
                strerror(EINVAL));
        return CLI_EX_OSERR;
    }
    cli_os_timed_waits(args.timeout);
    if (args.redis_url != NULL)
        return cli_redis_main(&args);
    rc = cli_resolve_backend(&args);
    if (rc >= 0)
        return rc;
    if (args.semaphore > 0)
        return cli_semaphore_main(&args);
    if (args.pidfile || args.temporary)
        return cli_kind_main(&args);
    return cli_flock_main(&args);
}
