/*
 * main.c -- the portalock command: flock(1) over the portalock library.
 *
 *   portalock [options] FILE -c COMMAND
 *   portalock [options] FILE [--] COMMAND [ARG...]
 *   portalock [options] FD
 *   portalock probe PATH [--json]
 *
 * The options shared with util-linux flock(1) behave as there (-s -x -n -w
 * -E -o -u -c; -w waits in the kernel; the lock descriptor is inherited by
 * the command unless -o).  The additions pick another kind of lock
 * (--semaphore, --pid, --temporary, --redis), a backend, or report what was
 * done (--verbose).  See portalock.1 for the exit statuses.
 */
#include "cli.h"

#include "portalock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Long-only options. */
enum {
    OPT_BACKEND = 256,
    OPT_FCNTL,
    OPT_CHECK_INTERVAL,
    OPT_SEMAPHORE,
    OPT_DIRECTORY,
    OPT_PID,
    OPT_TEMPORARY,
    OPT_VERBOSE,
    OPT_REDIS,
    OPT_ON_LOST
};

/* Upper bound for -w and --check-interval: about 31 years. */
#define CLI_MAX_SECONDS 1e9
#define CLI_MAX_SLOTS   9999u

typedef struct cli_args {
    int shared, exclusive, nonblock, unlock, close_fd, verbose;
    double timeout; /* < 0: wait forever */
    int timeout_set;
    double check_interval; /* PL_UNSET: library default */
    int conflict_code;
    const char *command; /* -c */
    pl_backend_t backend;
    int backend_set;
    unsigned semaphore; /* 0: not a semaphore */
    const char *directory;
    int pidfile, temporary;
    const char *redis_url;
    int on_lost_kill;
    const char *target;  /* FILE, FD, semaphore or Redis name */
    char **cmd_argv;     /* the command, NULL-terminated */
    char *shell_argv[4]; /* for -c */
} cli_args_t;

static const char cli_short_usage[] =
    "Usage: portalock [options] FILE -c COMMAND\n"
    "       portalock [options] FILE [--] COMMAND [ARG...]\n"
    "       portalock [options] FD\n"
    "       portalock probe PATH [--json]\n";

static const char cli_help[] =
    "Run a command while holding a lock (flock(1)-compatible), or lock an\n"
    "open descriptor.\n"
    "\n"
    "Options:\n"
    "  -s, --shared                 take a shared lock\n"
    "  -x, -e, --exclusive          take an exclusive lock (default)\n"
    "  -n, --nonblock               fail at once instead of waiting\n"
    "  -w, --timeout SECONDS        wait at most SECONDS (default: forever)\n"
    "  -E, --conflict-exit-code N   exit status on conflict or timeout "
    "(default 1)\n"
    "  -o, --close                  do not pass the lock descriptor to the "
    "command\n"
    "  -u, --unlock                 unlock the descriptor FD\n"
    "  -c, --command COMMAND        run COMMAND with the shell\n"
    "      --backend NAME           flock, lockf or ofd\n"
    "                               (default: $PORTALOCK_BACKEND, else flock)\n"
    "      --fcntl                  same as --backend ofd (as flock(1))\n"
    "      --check-interval S       polling interval where the kernel cannot "
    "wait\n"
    "      --semaphore N            FILE names a semaphore with N slots\n"
    "      --directory DIR          directory of the semaphore's slot files\n"
    "      --pid                    PID file lock: FILE holds the holder's "
    "pid\n"
    "      --temporary              FILE exists only while the lock is held\n"
    "      --redis URL              FILE names a Redis lock at URL\n"
    "                               (redis://[[user]:password@]host[:port])\n"
    "      --on-lost warn|kill      Redis lock lost while the command runs\n"
    "                               (default warn; portalock then exits 1)\n"
    "      --verbose                report the wait, backend and probe "
    "verdict\n"
    "  -h, --help                   show this help and exit\n"
    "  -V, --version                show the version and exit\n"
    "\n"
    "portalock probe PATH [--json] reports which locks work in PATH's\n"
    "directory and what they guarantee there.\n"
    "\n"
    "Exit status: the command's (128+N if it died of signal N), 1 (or -E) on\n"
    "conflict or timeout, 1 on other errors, 64 on usage errors, 126/127 if\n"
    "the command cannot be executed or found.  See portalock(1).\n";

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    fputs("portalock: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(cli_short_usage, stderr);
    fputs("Try 'portalock --help' for more information.\n", stderr);
    return CLI_EX_USAGE;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cli_fmt_seconds(double seconds, char *buf, unsigned len) {
    snprintf(buf, len, seconds >= 0.1 ? "%.1f" : "%.3f", seconds);
    return buf;
}

/* ---- strict number parsing ----------------------------------------------- */

/* A finite decimal number of seconds in [0, CLI_MAX_SECONDS]: "2", "0.5",
 * "1e-3".  Rejects "", "1x", " 1", "nan", "inf", "0x10", negatives. */
static int cli_parse_seconds(const char *s, double *out) {
    const char *p;
    char *end;
    double d;

    if (s == NULL || *s == '\0')
        return -1;
    for (p = s; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p) && strchr(".eE+-", *p) == NULL)
            return -1;
    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return -1;
    errno = 0;
    d = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(d) || d < 0 ||
        d > CLI_MAX_SECONDS)
        return -1;
    *out = d;
    return 0;
}

/* Plain decimal digits only, value in [min, max]. */
static int cli_parse_uint(const char *s, unsigned long min, unsigned long max,
                          unsigned long *out) {
    const char *p;
    char *end;
    unsigned long v;

    if (s == NULL || *s == '\0' || strlen(s) > 10)
        return -1;
    for (p = s; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int cli_is_number(const char *s) {
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- messages ------------------------------------------------------------ */

/* Prints "portalock: NAME: MSG", without repeating NAME if MSG has it. */
static void cli_error(const char *name, const char *msg, int rc) {
    if (msg == NULL || msg[0] == '\0')
        msg = pl_strerror(rc);
    if (name != NULL && strstr(msg, name) == NULL)
        fprintf(stderr, "portalock: %s: %s\n", name, msg);
    else
        fprintf(stderr, "portalock: %s\n", msg);
}

/* Conflict or timeout: one line, then the -E status. */
static int cli_conflict(const cli_args_t *a, const char *name, int rc,
                        const char *holder) {
    char t[32];
    if (rc == PL_ETIMEDOUT && a->timeout > 0)
        fprintf(stderr, "portalock: %s: timed out after %s s%s%s\n", name,
                cli_fmt_seconds(a->timeout, t, sizeof(t)),
                holder[0] ? "; " : "", holder);
    else
        fprintf(stderr, "portalock: %s: %s\n", name,
                holder[0] ? holder : "lock is held by another owner");
    return a->conflict_code;
}

/* ---- option parsing ------------------------------------------------------ */

static const struct option cli_longopts[] = {
    {"shared", no_argument, NULL, 's'},
    {"exclusive", no_argument, NULL, 'x'},
    {"nonblock", no_argument, NULL, 'n'},
    {"nb", no_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 'w'},
    {"wait", required_argument, NULL, 'w'},
    {"conflict-exit-code", required_argument, NULL, 'E'},
    {"close", no_argument, NULL, 'o'},
    {"unlock", no_argument, NULL, 'u'},
    {"command", required_argument, NULL, 'c'},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"fcntl", no_argument, NULL, OPT_FCNTL},
    {"check-interval", required_argument, NULL, OPT_CHECK_INTERVAL},
    {"semaphore", required_argument, NULL, OPT_SEMAPHORE},
    {"directory", required_argument, NULL, OPT_DIRECTORY},
    {"pid", no_argument, NULL, OPT_PID},
    {"temporary", no_argument, NULL, OPT_TEMPORARY},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"on-lost", required_argument, NULL, OPT_ON_LOST},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static int cli_set_backend(cli_args_t *a, const char *name) {
    pl_backend_t b;
    if (pl_backend_from_name(name, &b) != PL_OK)
        return cli_usage_error(
            "unknown backend '%s' (expected flock, lockf or ofd)", name);
    if (!pl_backend_available(b))
        return cli_usage_error("backend '%s' is not available on this "
                               "platform",
                               name);
    if (a->backend_set && a->backend != b)
        return cli_usage_error("conflicting backends given");
    a->backend = b;
    a->backend_set = 1;
    return 0;
}

/* Returns -1 to go on, else the exit status (0 for --help/--version). */
static int cli_parse(cli_args_t *a, int argc, char **argv) {
    unsigned long u;
    int c, nrest, kinds;
    char **rest;

    memset(a, 0, sizeof(*a));
    a->timeout = -1;
    a->check_interval = PL_UNSET;
    a->conflict_code = 1;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:sexnw:E:ouc:hV", cli_longopts,
                            NULL)) != -1) {
        switch (c) {
        case 's': a->shared = 1; break;
        case 'x':
        case 'e': a->exclusive = 1; break;
        case 'n': a->nonblock = 1; break;
        case 'w':
            if (cli_parse_seconds(optarg, &a->timeout) != 0)
                return cli_usage_error(
                    "invalid timeout '%s' (expected seconds >= 0)", optarg);
            a->timeout_set = 1;
            break;
        case 'E':
            if (cli_parse_uint(optarg, 0, 255, &u) != 0)
                return cli_usage_error(
                    "invalid exit code '%s' (expected 0 to 255)", optarg);
            a->conflict_code = (int)u;
            break;
        case 'o': a->close_fd = 1; break;
        case 'u': a->unlock = 1; break;
        case 'c':
            if (a->command != NULL)
                return cli_usage_error("-c given more than once");
            a->command = optarg;
            break;
        case OPT_BACKEND:
            if ((c = cli_set_backend(a, optarg)) != 0)
                return c;
            break;
        case OPT_FCNTL:
            if ((c = cli_set_backend(a, "ofd")) != 0)
                return c;
            break;
        case OPT_CHECK_INTERVAL:
            if (cli_parse_seconds(optarg, &a->check_interval) != 0)
                return cli_usage_error(
                    "invalid check interval '%s' (expected seconds >= 0)",
                    optarg);
            break;
        case OPT_SEMAPHORE:
            if (cli_parse_uint(optarg, 1, CLI_MAX_SLOTS, &u) != 0)
                return cli_usage_error(
                    "invalid semaphore size '%s' (expected 1 to %u)", optarg,
                    CLI_MAX_SLOTS);
            a->semaphore = (unsigned)u;
            break;
        case OPT_DIRECTORY:
            if (optarg[0] == '\0')
                return cli_usage_error("empty --directory");
            a->directory = optarg;
            break;
        case OPT_PID: a->pidfile = 1; break;
        case OPT_TEMPORARY: a->temporary = 1; break;
        case OPT_VERBOSE: a->verbose = 1; break;
        case OPT_REDIS:
            if (optarg[0] == '\0')
                return cli_usage_error("empty --redis URL");
            a->redis_url = optarg;
            break;
        case OPT_ON_LOST:
            if (strcmp(optarg, "kill") == 0)
                a->on_lost_kill = 1;
            else if (strcmp(optarg, "warn") == 0)
                a->on_lost_kill = 0;
            else
                return cli_usage_error(
                    "invalid --on-lost '%s' (expected warn or kill)", optarg);
            break;
        case 'h':
            fputs(cli_short_usage, stdout);
            fputc('\n', stdout);
            fputs(cli_help, stdout);
            return fflush(stdout) == 0 ? 0 : CLI_EX_FAILURE;
        case 'V':
            printf("portalock %s\n", PL_VERSION_STRING);
            return fflush(stdout) == 0 ? 0 : CLI_EX_FAILURE;
        case ':':
            return cli_usage_error("option '%s' requires an argument",
                                   argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256 && isprint(optopt) &&
                strncmp(argv[optind - 1], "--", 2) != 0)
                return cli_usage_error("invalid option -- '%c'", optopt);
            return cli_usage_error("unrecognized option '%s'",
                                   argv[optind - 1]);
        }
    }

    if (a->shared && a->exclusive)
        return cli_usage_error("-s and -x exclude each other");
    kinds =
        (a->semaphore > 0) + a->pidfile + a->temporary + (a->redis_url != NULL);
    if (kinds > 1)
        return cli_usage_error("--semaphore, --pid, --temporary and --redis "
                               "exclude each other");
    if (a->shared && (a->semaphore || a->pidfile || a->temporary))
        return cli_usage_error("-s cannot be used with --semaphore, --pid or "
                               "--temporary");
    if (a->directory != NULL && a->semaphore == 0)
        return cli_usage_error("--directory needs --semaphore");
    if (a->redis_url != NULL && a->backend_set)
        return cli_usage_error("--backend does not apply to --redis");
    if (a->on_lost_kill && a->redis_url == NULL)
        return cli_usage_error("--on-lost needs --redis");
    if (a->nonblock)
        a->timeout = 0;

    rest = argv + optind;
    nrest = argc - optind;
    if (nrest == 0)
        return cli_usage_error("missing FILE or FD");
    a->target = rest[0];
    if (a->target[0] == '\0')
        return cli_usage_error("empty FILE");
    if (nrest >= 2) {
        if (a->command != NULL)
            return cli_usage_error("give the command either with -c or after "
                                   "FILE, not both");
        if (strcmp(rest[1], "-c") == 0 || strcmp(rest[1], "--command") == 0) {
            if (nrest != 3)
                return cli_usage_error("%s requires exactly one command "
                                       "argument",
                                       rest[1]);
            a->command = rest[2];
        } else if (strcmp(rest[1], "--") == 0) {
            if (nrest < 3)
                return cli_usage_error("missing command after --");
            a->cmd_argv = rest + 2;
        } else {
            a->cmd_argv = rest + 1;
        }
    }
    if (a->command != NULL) {
        cli_shell_argv(a->shell_argv, a->command);
        a->cmd_argv = a->shell_argv;
    }
    if (a->cmd_argv == NULL) {
        if (!cli_is_number(a->target))
            return cli_usage_error("%s: missing command (use -c COMMAND or "
                                   "-- COMMAND); a bare argument must be a "
                                   "descriptor number",
                                   a->target);
        if (kinds > 0)
            return cli_usage_error("--semaphore, --pid, --temporary and "
                                   "--redis need a command");
    } else if (a->unlock) {
        return cli_usage_error("-u only applies to a descriptor (FD form)");
    }
    return -1;
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
    if (pl_backend_from_name(env, &b) != PL_OK) {
        fprintf(stderr,
                "portalock: PORTALOCK_BACKEND=%s: unknown backend (expected "
                "flock, lockf or ofd)\n",
                env);
        return CLI_EX_USAGE;
    }
    if (!pl_backend_available(b)) {
        fprintf(stderr,
                "portalock: PORTALOCK_BACKEND=%s: backend not available on "
                "this platform\n",
                env);
        return CLI_EX_USAGE;
    }
    a->backend = b;
    return -1;
}

static void cli_report_acquired(const cli_args_t *a, const char *what,
                                const char *path, double waited,
                                pl_backend_t backend) {
    char t[32];
    if (!a->verbose)
        return;
    fprintf(stderr, "portalock: %s: %s acquired after %s s (backend %s)\n",
            path, what, cli_fmt_seconds(waited, t, sizeof(t)),
            pl_backend_name(backend));
    cli_probe_verdict(path);
}

/* ---- FD form ------------------------------------------------------------- */

static int cli_fd_main(const cli_args_t *a) {
    unsigned long u;
    pl_error_t err;
    char name[32];
    double t0;
    int fd, rc;

    if (cli_parse_uint(a->target, 0, 2147483647ul, &u) != 0)
        return cli_usage_error("bad file descriptor '%s'", a->target);
    fd = (int)u;
    snprintf(name, sizeof(name), "fd %d", fd);
    if ((rc = cli_fd_check(fd, name)) != 0)
        return rc;
    if (a->backend == PL_BACKEND_LOCKF)
        return cli_usage_error("the lockf backend cannot lock a descriptor "
                               "for later: its locks belong to the process "
                               "and end when portalock exits");
    memset(&err, 0, sizeof(err));
    if (a->unlock) {
        rc = pl_unlock_fd((pl_fd_t)fd, a->backend, &err);
        if (rc != PL_OK) {
            cli_error(name, err.msg, rc);
            return CLI_EX_FAILURE;
        }
        return 0;
    }
    t0 = cli_now();
    rc = pl_lock_fd_timed((pl_fd_t)fd, a->shared ? PL_SHARED : PL_EXCLUSIVE,
                          a->backend, a->timeout, &err);
    if (PL_IS_ALREADY_LOCKED(rc))
        return cli_conflict(a, name, rc, "");
    if (rc != PL_OK) {
        cli_error(name, err.msg, rc);
        return CLI_EX_FAILURE;
    }
    if (a->verbose) {
        char t[32];
        fprintf(stderr,
                "portalock: %s: %s lock acquired after %s s "
                "(backend %s)\n",
                name, a->shared ? "shared" : "exclusive",
                cli_fmt_seconds(cli_now() - t0, t, sizeof(t)),
                pl_backend_name(a->backend));
    }
    return 0;
}

/* ---- file locks: Lock, TemporaryFileLock, PidFileLock -------------------- */

static int cli_open_file_lock(const cli_args_t *a, const char *mode,
                              pl_lock_t **lock) {
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.mode = mode;
    o.timeout = a->timeout;
    if (a->check_interval != PL_UNSET)
        o.check_interval = a->check_interval;
    o.fail_when_locked = 0; /* -w applies to every kind */
    o.flags = a->shared ? PL_SHARED : PL_EXCLUSIVE;
    o.backend = a->backend;
    if (a->temporary)
        return pl_temporary_lock_open(lock, a->target, &o);
    if (a->pidfile)
        return pl_pidfile_lock_open(lock, a->target, &o);
    return pl_lock_open(lock, a->target, &o);
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
                            : "liveness unknown",
             h.host[0] ? " on host " : "", h.host);
}

/* A lock deliberately left to the kernel to end (see cli_file_main); kept
 * reachable (volatile: the store must not be optimised away) so that leak
 * checkers do not report it. */
static pl_lock_t *volatile cli_kept_lock;

static int cli_file_main(const cli_args_t *a) {
    /* "a+": created if missing, never truncated, readable (shared fcntl
     * locks need read access) and writable (exclusive ones need write). */
    const char *mode = (a->temporary || a->pidfile) ? NULL : "a+";
    pl_lock_t *lock = NULL;
    char holder[400];
    double t0, waited;
    int rc, status, inherit;

    holder[0] = '\0';
    rc = cli_open_file_lock(a, mode, &lock);
    if (rc != PL_OK) {
        cli_error(a->target, NULL, rc);
        return CLI_EX_FAILURE;
    }
    t0 = cli_now();
    rc = pl_lock_acquire(lock);
    if (rc == PL_EACCES && mode != NULL &&
        (a->shared || pl_lock_backend(lock) == PL_BACKEND_FLOCK)) {
        /* Like flock(1), which opens read-only: a readable file that we may
         * not write can still carry a flock() or shared lock. */
        pl_lock_t *ro = NULL;
        if (cli_open_file_lock(a, "r", &ro) == PL_OK) {
            int rc2 = pl_lock_acquire(ro);
            if (rc2 == PL_OK || PL_IS_ALREADY_LOCKED(rc2)) {
                pl_lock_close(lock);
                lock = ro;
                rc = rc2;
            } else {
                pl_lock_close(ro);
            }
        }
    }
    waited = cli_now() - t0;
    if (PL_IS_ALREADY_LOCKED(rc)) {
        if (a->pidfile)
            cli_holder_text(lock, holder, sizeof(holder));
        status = cli_conflict(a, a->target, rc, holder);
        pl_lock_close(lock);
        return status;
    }
    if (rc != PL_OK) {
        cli_error(a->target, pl_lock_errmsg(lock), rc);
        pl_lock_close(lock);
        return CLI_EX_FAILURE;
    }
    cli_report_acquired(a,
                        a->temporary ? "temporary lock"
                        : a->pidfile ? "pid file lock"
                        : a->shared  ? "shared lock"
                                     : "exclusive lock",
                        a->target, waited, pl_lock_backend(lock));
    inherit = !a->close_fd && !a->temporary && !a->pidfile;
    status = cli_run(a->cmd_argv, inherit ? (int)pl_lock_fileno(lock) : -1);
    if (inherit) {
        /* Like flock(1), no explicit unlock: with flock and OFD locks it
         * would also end the lock that processes left running by the
         * command hold through their copy of the descriptor.  The lock ends
         * when the last copy is closed, ours at exit.  (With lockf the lock
         * is the process's and ends at our exit anyway.) */
        cli_kept_lock = lock;
        return status;
    }
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
        status = cli_conflict(a, a->target, rc, holder);
        pl_semaphore_close(sem);
        return status;
    }
    if (rc != PL_OK) {
        cli_error(a->target, pl_semaphore_errmsg(sem), rc);
        pl_semaphore_close(sem);
        return CLI_EX_FAILURE;
    }
    if (a->verbose) {
        int slot = pl_semaphore_slot(sem);
        const char *path = pl_semaphore_slot_path(sem, (unsigned)slot);
        char what[64];
        snprintf(what, sizeof(what), "slot %d of %u", slot, a->semaphore);
        cli_report_acquired(a, what, path != NULL ? path : a->target, waited,
                            a->backend);
    }
    /* The slot's descriptor is private to the library: never inherited. */
    status = cli_run(a->cmd_argv, -1);
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
        msg, sizeof(msg), "portalock: %s: the Redis lock was lost%s%s%s; %s\n",
        a->target, reason != PL_ELOST ? " (" : "",
        reason != PL_ELOST ? pl_strerror(reason) : "",
        reason != PL_ELOST ? ")" : "",
        a->on_lost_kill ? "sending SIGTERM to the command"
                        : "the command keeps running, portalock will exit 1");
    if (n > 0)
        (void)!write(STDERR_FILENO, msg,
                     (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (a->on_lost_kill)
        cli_request_kill(SIGTERM);
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
        fprintf(stderr, "portalock: out of memory\n");
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
    ro.shared = a->shared;
    ro.on_lost = cli_on_lost;
    ro.on_lost_arg = (void *)a;
    rc = pl_redis_lock_open(&lock, a->target, &ro);
    if (rc != PL_OK) {
        if (rc == PL_ENOTSUP)
            fprintf(stderr, "portalock: this portalock was built without "
                            "Redis support (hiredis)\n");
        else
            cli_error(a->target, NULL, rc);
        free(url);
        return CLI_EX_FAILURE;
    }
    t0 = cli_now();
    rc = pl_lock_acquire(lock);
    waited = cli_now() - t0;
    if (PL_IS_ALREADY_LOCKED(rc)) {
        status = cli_conflict(a, a->target, rc, "");
        pl_lock_close(lock);
        free(url);
        return status;
    }
    if (rc != PL_OK) {
        const char *msg = pl_lock_errmsg(lock);
        /* Not the URL: it may carry a password. */
        fprintf(stderr, "portalock: %s: %s\n", a->target,
                msg[0] ? msg : pl_strerror(rc));
        pl_lock_close(lock);
        free(url);
        return CLI_EX_FAILURE;
    }
    if (a->verbose) {
        char t[32];
        fprintf(stderr,
                "portalock: %s: %s Redis lock acquired after %s s "
                "(fencing token %llu)\n",
                a->target, a->shared ? "shared" : "exclusive",
                cli_fmt_seconds(waited, t, sizeof(t)),
                (unsigned long long)pl_lock_fencing_token(lock));
    }
    if (atomic_load(&cli_redis_lost)) {
        fprintf(stderr,
                "portalock: %s: lock lost before the command "
                "started; not running it\n",
                a->target);
        pl_lock_close(lock);
        free(url);
        return CLI_EX_FAILURE;
    }
    status = cli_run(a->cmd_argv, -1);
    if (!atomic_load(&cli_redis_lost) && pl_lock_check(lock) == PL_ELOST)
        atomic_store(&cli_redis_lost, 1);
    if (atomic_load(&cli_redis_lost)) {
        fprintf(stderr,
                "portalock: %s: the lock was lost while the command ran "
                "(command status %d); exiting 1\n",
                a->target, status);
        status = CLI_EX_FAILURE;
    }
    rc = pl_lock_close(lock);
    if (rc != PL_OK && rc != PL_ELOST && !atomic_load(&cli_redis_lost)) {
        fprintf(stderr, "portalock: %s: release failed: %s\n", a->target,
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

    cli_fds_snapshot();
    if (argc >= 2 && strcmp(argv[1], "probe") == 0)
        return cli_probe_main(argc - 1, argv + 1);
    rc = cli_parse(&args, argc, argv);
    if (rc >= 0)
        return rc;
    if (args.redis_url != NULL)
        return cli_redis_main(&args);
    rc = cli_resolve_backend(&args);
    if (rc >= 0)
        return rc;
    if (args.cmd_argv == NULL)
        return cli_fd_main(&args);
    if (args.semaphore > 0)
        return cli_semaphore_main(&args);
    return cli_file_main(&args);
}
