/*
 * args.c -- the portalock command line, parsed without side effects.
 *
 * flock(1)'s grammar (util-linux 2.38.1 and later):
 *   portalock [options] FILE|DIRECTORY COMMAND [ARG...]
 *   portalock [options] FILE|DIRECTORY -c COMMAND
 *   portalock [options] FD
 *   portalock [options] --fd FD [-c COMMAND | COMMAND [ARG...]]
 * and portalock's additions, none of which changes a flock(1) command line:
 * "FILE -- COMMAND", -c before FILE, and the options that pick another kind
 * of lock (--semaphore, --pid, --temporary, --redis) or a backend.  As in
 * flock(1) the last of -s, -x, -e and -u wins, -w 0 means -n, and usage
 * errors exit 64.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long-only options. */
enum {
    OPT_BACKEND = 256,
    OPT_FCNTL,
    OPT_START,
    OPT_LENGTH,
    OPT_FD,
    OPT_CHECK_INTERVAL,
    OPT_SEMAPHORE,
    OPT_DIRECTORY,
    OPT_PID,
    OPT_TEMPORARY,
    OPT_VERBOSE,
    OPT_REDIS,
    OPT_ON_LOST,
    OPT_FAIR
};

/* Upper bound for -w and --check-interval: about 31 years. */
#define CLI_MAX_SECONDS 1e9

const char *cli_progname = "portalock";
FILE *cli_parse_err, *cli_parse_out;

#define ERR_STREAM (cli_parse_err != NULL ? cli_parse_err : stderr)
#define OUT_STREAM (cli_parse_out != NULL ? cli_parse_out : stdout)

static const char *const cli_usage_lines[] = {
    "[options] FILE|DIRECTORY COMMAND [ARG...]",
    "[options] FILE|DIRECTORY -c COMMAND",
    "[options] FILE [--] COMMAND [ARG...]",
    "[options] FD",
    "[options] --fd FD [-c COMMAND | COMMAND [ARG...]]",
    "probe PATH [--json]"};

static const char cli_help[] =
    "Run a command while holding a lock (a drop-in for flock(1)), or lock\n"
    "an open descriptor.\n"
    "\n"
    "Options:\n"
    "  -s, --shared                 take a shared lock\n"
    "  -x, -e, --exclusive          take an exclusive lock (default)\n"
    "  -u, --unlock                 remove a lock\n"
    "  -n, --nb, --nonblocking      fail at once instead of waiting\n"
    "  -w, --timeout, --wait SECS   wait at most SECS (0 = -n)\n"
    "  -E, --conflict-exit-code N   exit status on conflict or timeout "
    "(default 1)\n"
    "  -o, --close                  do not pass the lock descriptor to the "
    "command\n"
    "  -F, --no-fork                execute the command without forking\n"
    "  -c, --command COMMAND        run COMMAND with $SHELL -c\n"
    "      --fd N                   lock descriptor N around the command\n"
    "      --fcntl                  fcntl(F_OFD_SETLK) locks (--backend ofd)\n"
    "      --start OFFSET           first byte of the range (implies --fcntl)\n"
    "      --length N               bytes in the range (implies --fcntl;\n"
    "                               0 = to the end of the file and beyond)\n"
    "      --verbose                flock(1)'s messages; twice: also the\n"
    "                               backend, holder and probe verdict\n"
    "      --backend NAME           flock, lockf or ofd (Linux), flock or\n"
    "                               lockf (BSD, macOS), lockfileex (Windows)\n"
    "                               (default: $PORTALOCK_BACKEND, else flock)\n"
    "      --check-interval S       polling interval where the kernel cannot "
    "wait\n"
    "      --semaphore N            FILE names a semaphore with N slots "
    "(1-1000)\n"
    "      --directory DIR          directory of the semaphore's slot files\n"
    "      --pid                    PID file lock: FILE holds the holder's "
    "pid\n"
    "      --temporary              FILE exists only while the lock is held\n"
    "      --redis URL              FILE names a Redis lock at URL\n"
    "                               (redis://[[user]:password@]host[:port])\n"
    "      --on-lost warn|kill      Redis lock lost while the command runs\n"
    "                               (default warn; portalock then exits 1)\n"
    "      --fair                   Redis lock granted in arrival order\n"
    "  -h, --help                   show this help and exit\n"
    "  -V, --version                show the version and exit\n"
    "\n"
    "portalock probe PATH [--json] reports which locks work in PATH's\n"
    "directory and what they guarantee there.\n"
    "\n"
    "Exit status: the command's (128+N if it died of signal N), 1 (or -E) on\n"
    "conflict or timeout, flock(1)'s sysexits codes on its errors (64 usage,\n"
    "65 lock failed, 66 cannot open, 69 cannot run the command, 71 system\n"
    "error, 73 cannot create), 1 on other errors.  See portalock(1).\n";

int cli_usage_error(const char *fmt, ...) {
    FILE *err = ERR_STREAM;
    va_list ap;
    fprintf(err, "%s: ", cli_progname);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fputc('\n', err);
    fprintf(err, "Try '%s --help' for more information.\n", cli_progname);
    return CLI_EX_USAGE;
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

/*
 * A byte count as flock(1)'s --start/--length take it: decimal digits, then
 * optionally K, M, G, T, P or E (powers of 1024, also written KiB...) or KB,
 * MB... (powers of 1000).  The result must fit an off_t (63 bits).
 */
static int cli_parse_size(const char *s, long long *out) {
    static const char units[] = "KMGTPE";
    unsigned long long v = 0, mul = 1, base = 1024;
    const char *p = s, *u;
    int power, i;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (unsigned long long)LLONG_MAX / 10 ||
            v * 10 + d > (unsigned long long)LLONG_MAX)
            return -1;
        v = v * 10 + d;
    }
    if (*p != '\0') {
        u = strchr(units, toupper((unsigned char)*p));
        if (u == NULL)
            return -1;
        power = (int)(u - units) + 1;
        p++;
        if (strcmp(p, "B") == 0)
            base = 1000;
        else if (strcmp(p, "iB") != 0 && *p != '\0')
            return -1;
        for (i = 0; i < power; i++) {
            if (mul > (unsigned long long)LLONG_MAX / base)
                return -1;
            mul *= base;
        }
        if (v != 0 && v > (unsigned long long)LLONG_MAX / mul)
            return -1;
        v *= mul;
    }
    *out = (long long)v;
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

/* ---- options ------------------------------------------------------------- */

static const cli_longopt_t cli_longopts[] = {
    {"shared", CLI_NO_ARG, 's'},
    {"exclusive", CLI_NO_ARG, 'x'},
    {"unlock", CLI_NO_ARG, 'u'},
    {"nonblocking", CLI_NO_ARG, 'n'},
    {"nonblock", CLI_NO_ARG, 'n'},
    {"nb", CLI_NO_ARG, 'n'},
    {"timeout", CLI_REQ_ARG, 'w'},
    {"wait", CLI_REQ_ARG, 'w'},
    {"conflict-exit-code", CLI_REQ_ARG, 'E'},
    {"close", CLI_NO_ARG, 'o'},
    {"no-fork", CLI_NO_ARG, 'F'},
    {"command", CLI_REQ_ARG, 'c'},
    {"fcntl", CLI_NO_ARG, OPT_FCNTL},
    {"start", CLI_REQ_ARG, OPT_START},
    {"length", CLI_REQ_ARG, OPT_LENGTH},
    {"fd", CLI_REQ_ARG, OPT_FD},
    {"verbose", CLI_NO_ARG, OPT_VERBOSE},
    {"backend", CLI_REQ_ARG, OPT_BACKEND},
    {"check-interval", CLI_REQ_ARG, OPT_CHECK_INTERVAL},
    {"semaphore", CLI_REQ_ARG, OPT_SEMAPHORE},
    {"directory", CLI_REQ_ARG, OPT_DIRECTORY},
    {"pid", CLI_NO_ARG, OPT_PID},
    {"temporary", CLI_NO_ARG, OPT_TEMPORARY},
    {"redis", CLI_REQ_ARG, OPT_REDIS},
    {"on-lost", CLI_REQ_ARG, OPT_ON_LOST},
    {"fair", CLI_NO_ARG, OPT_FAIR},
    {"help", CLI_NO_ARG, 'h'},
    {"version", CLI_NO_ARG, 'V'},
    {NULL, 0, 0}};

/* Every backend, in the order messages name them. */
static const pl_backend_t cli_all_backends[] = {
    PL_BACKEND_FLOCK, PL_BACKEND_LOCKF, PL_BACKEND_OFD, PL_BACKEND_LOCKFILEEX};
#define CLI_NBACKENDS (sizeof(cli_all_backends) / sizeof(cli_all_backends[0]))

void cli_backend_names(unsigned bits, const char *sep, const char *last,
                       char *buf, size_t len) {
    size_t i, k = 0, n = 0, used = 0;
    for (i = 0; i < CLI_NBACKENDS; i++)
        n += (bits & (1u << cli_all_backends[i])) != 0;
    buf[0] = '\0';
    for (i = 0; i < CLI_NBACKENDS; i++) {
        int w;
        if (!(bits & (1u << cli_all_backends[i])))
            continue;
        w = snprintf(buf + used, len - used, "%s%s",
                     k == 0      ? ""
                     : k + 1 < n ? sep
                                 : last,
                     pl_backend_name(cli_all_backends[i]));
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        k++;
    }
    if (used == 0)
        snprintf(buf, len, "none");
}

const char *cli_backends_here(void) {
    static char buf[64];
    unsigned bits = 0;
    size_t i;
    for (i = 0; i < CLI_NBACKENDS; i++)
        if (pl_backend_available(cli_all_backends[i]))
            bits |= 1u << cli_all_backends[i];
    cli_backend_names(bits, ", ", " or ", buf, sizeof(buf));
    return buf;
}

static int cli_set_backend(cli_args_t *a, pl_backend_t b, const char *name) {
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

/*
 * --fcntl, and the backend --start/--length imply: byte-range locks, OFD
 * where the platform has them (flock(1)'s choice), else LockFileEx (Windows,
 * whose only backend takes ranges), else the usage error for "ofd".
 */
static int cli_set_range_backend(cli_args_t *a) {
    if (!pl_backend_available(PL_BACKEND_OFD) &&
        pl_backend_available(PL_BACKEND_LOCKFILEEX))
        return cli_set_backend(a, PL_BACKEND_LOCKFILEEX, "lockfileex");
    return cli_set_backend(a, PL_BACKEND_OFD, "ofd");
}

static int cli_help_out(void) {
    FILE *out = OUT_STREAM;
    size_t i;
    for (i = 0; i < sizeof(cli_usage_lines) / sizeof(cli_usage_lines[0]); i++)
        fprintf(out, "%s %s %s\n", i == 0 ? "Usage:" : "      ", cli_progname,
                cli_usage_lines[i]);
    fputc('\n', out);
    fputs(cli_help, out);
    return fflush(out) == 0 ? 0 : CLI_EX_FAILURE;
}

/* One option; returns 0 to go on, else the exit status. */
static int cli_option(cli_args_t *a, int c, const cli_getopt_t *g) {
    const char *arg = g->arg;

    unsigned long u;
    pl_backend_t b;

    switch (c) {
    case 's': a->op = CLI_OP_SHARED; break;
    case 'x':
    case 'e': a->op = CLI_OP_EXCLUSIVE; break;
    case 'u': a->op = CLI_OP_UNLOCK; break;
    case 'n': a->nonblock = 1; break;
    case 'o': a->close_fd = 1; break;
    case 'F': a->no_fork = 1; break;
    case 'w':
        /* flock(1) takes "-w -1" and then fails to arm its timer (71). */
        a->timeout_negative =
            arg[0] == '-' && cli_parse_seconds(arg + 1, &a->timeout) == 0;
        if (a->timeout_negative)
            a->timeout = a->timeout > 0 ? -1 : 0;
        else if (cli_parse_seconds(arg, &a->timeout) != 0)
            return cli_usage_error("invalid timeout '%s' (expected seconds "
                                   ">= 0)",
                                   arg);
        a->timeout_set = 1;
        break;
    case 'E':
        if (cli_parse_uint(arg, 0, 255, &u) != 0)
            return cli_usage_error("invalid exit code '%s' (allowed values: "
                                   "0-255)",
                                   arg);
        a->conflict_code = (int)u;
        break;
    case 'c':
        if (a->command != NULL)
            return cli_usage_error("-c given more than once");
        a->command = arg;
        break;
    case OPT_FCNTL: return cli_set_range_backend(a);
    case OPT_START:
    case OPT_LENGTH:
        if (cli_parse_size(arg, c == OPT_START ? &a->start : &a->length) != 0)
            return cli_usage_error(
                "invalid %s '%s'",
                c == OPT_START ? "start offset" : "length of lock range", arg);
        a->range_set = 1;
        break;
    case OPT_FD:
        if (cli_parse_uint(arg, 0, INT_MAX, &u) != 0)
            return cli_usage_error("invalid file descriptor '%s'", arg);
        a->use_fd = 1;
        a->fd = (int)u;
        break;
    case OPT_VERBOSE: a->verbose++; break;
    case OPT_BACKEND:
        if (pl_backend_from_name(arg, &b) != PL_OK || b == PL_BACKEND_DEFAULT)
            return cli_usage_error("unknown backend '%s' (expected %s)", arg,
                                   cli_backends_here());
        return cli_set_backend(a, b, arg);
    case OPT_CHECK_INTERVAL:
        if (cli_parse_seconds(arg, &a->check_interval) != 0)
            return cli_usage_error(
                "invalid check interval '%s' (expected seconds >= 0)", arg);
        break;
    case OPT_SEMAPHORE:
        if (cli_parse_uint(arg, 1, CLI_MAX_SLOTS, &u) != 0)
            return cli_usage_error(
                "invalid semaphore size '%s' (expected 1 to %u)", arg,
                CLI_MAX_SLOTS);
        a->semaphore = (unsigned)u;
        break;
    case OPT_DIRECTORY:
        if (arg[0] == '\0')
            return cli_usage_error("empty --directory");
        a->directory = arg;
        break;
    case OPT_PID: a->pidfile = 1; break;
    case OPT_TEMPORARY: a->temporary = 1; break;
    case OPT_REDIS:
        if (arg[0] == '\0')
            return cli_usage_error("empty --redis URL");
        a->redis_url = arg;
        break;
    case OPT_ON_LOST:
        if (strcmp(arg, "kill") == 0)
            a->on_lost_kill = 1;
        else if (strcmp(arg, "warn") == 0)
            a->on_lost_kill = 0;
        else
            return cli_usage_error(
                "invalid --on-lost '%s' (expected warn or kill)", arg);
        break;
    case OPT_FAIR: a->fair = 1; break;
    case 'h': return cli_help_out();
    case 'V':
        if (strcmp(cli_progname, "portalock") == 0)
            fprintf(OUT_STREAM, "portalock %s\n", PL_VERSION_STRING);
        else
            fprintf(OUT_STREAM, "%s (portalock) %s\n", cli_progname,
                    PL_VERSION_STRING);
        return fflush(OUT_STREAM) == 0 ? 0 : CLI_EX_FAILURE;
    case ':':
        return cli_usage_error("option '%s' requires an argument", g->bad);
    default:
        if (g->opt > 0 && g->opt < 256 && isprint(g->opt) &&
            strncmp(g->bad, "--", 2) != 0)
            return cli_usage_error("invalid option -- '%c'", g->opt);
        return cli_usage_error("unrecognized option '%s'", g->bad);
    }
    return 0;
}

/* Combinations; returns 0 to go on, else the exit status. */
static int cli_check_combinations(cli_args_t *a) {
    int kinds =
        (a->semaphore > 0) + a->pidfile + a->temporary + (a->redis_url != NULL);

    if (a->no_fork && a->close_fd)
        return cli_usage_error("the --no-fork and --close options are "
                               "incompatible");
    if (kinds > 1)
        return cli_usage_error("--semaphore, --pid, --temporary and --redis "
                               "exclude each other");
    if (kinds > 0 && a->op == CLI_OP_UNLOCK)
        return cli_usage_error("-u cannot be used with --semaphore, --pid, "
                               "--temporary or --redis");
    if (kinds > 0 && a->no_fork)
        return cli_usage_error("--no-fork cannot be used with --semaphore, "
                               "--pid, --temporary or --redis: their lock "
                               "lives in portalock's process");
    if (kinds > 0 && a->use_fd)
        return cli_usage_error("--fd cannot be used with --semaphore, --pid, "
                               "--temporary or --redis");
    if (kinds > 0 && a->range_set)
        return cli_usage_error("--start and --length apply to plain file "
                               "locks only");
    if (a->op == CLI_OP_SHARED && (a->semaphore || a->pidfile || a->temporary))
        return cli_usage_error("-s cannot be used with --semaphore, --pid or "
                               "--temporary");
    if (a->directory != NULL && a->semaphore == 0)
        return cli_usage_error("--directory needs --semaphore");
    if (a->redis_url != NULL && a->backend_set)
        return cli_usage_error("--backend does not apply to --redis");
    if (a->on_lost_kill && a->redis_url == NULL)
        return cli_usage_error("--on-lost needs --redis");
    if (a->fair && a->redis_url == NULL)
        return cli_usage_error("--fair needs --redis");
    if (a->range_set) {
        /* As flock(1): --start/--length imply --fcntl (OFD).  The lockf
         * backend also takes ranges; flock(2) has none. */
        if (a->backend_set && a->backend == PL_BACKEND_FLOCK)
            return cli_usage_error("--start and --length need fcntl locks "
                                   "(--fcntl, --backend ofd or lockf)");
        if (!a->backend_set) {
            int rc = cli_set_range_backend(a);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* The operands after the options: FILE/FD and the command. */
static int cli_operands(cli_args_t *a, char **rest, int nrest) {
    if (a->use_fd) {
        /* --fd N [-c COMMAND | COMMAND [ARG...]] */
        if (a->command != NULL && nrest > 0)
            return cli_usage_error("-c requires exactly one command argument");
        if (nrest > 0 && strcmp(rest[0], "--") == 0) {
            rest++;
            nrest--;
        }
        if (a->command == NULL && nrest == 0)
            return cli_usage_error("missing command");
        if (a->command == NULL)
            a->cmd_argv = rest;
        return 0;
    }
    if (nrest == 0)
        return cli_usage_error("missing file descriptor, file or directory");
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
    if (a->command == NULL && a->cmd_argv == NULL) {
        /* The FD form: lock (or unlock) a descriptor and exit. */
        if (!cli_is_number(a->target) || strlen(a->target) > 10 ||
            strtoull(a->target, NULL, 10) > INT_MAX)
            return cli_usage_error("invalid file descriptor '%s'", a->target);
        if (a->semaphore || a->pidfile || a->temporary || a->redis_url)
            return cli_usage_error("--semaphore, --pid, --temporary and "
                                   "--redis need a command");
    }
    return 0;
}

int cli_parse_args(cli_args_t *a, int argc, char **argv) {
    cli_getopt_t g;
    int c, rc;

    memset(a, 0, sizeof(*a));
    a->op = CLI_OP_EXCLUSIVE;
    a->timeout = -1;
    a->check_interval = PL_UNSET;
    a->conflict_code = 1;
    a->fd = -1;

    if (argc < 2)
        return cli_usage_error("not enough arguments");
    cli_getopt_init(&g);
    while ((c = cli_getopt(&g, argc, argv, "+:sexnoFuw:E:c:hV",
                           cli_longopts)) != -1) {
        if ((rc = cli_option(a, c, &g)) != 0 || c == 'h' || c == 'V')
            return rc;
    }
    if ((rc = cli_check_combinations(a)) != 0)
        return rc;
    if (a->nonblock || (a->timeout_set && a->timeout == 0)) {
        a->nonblock = 1;
        a->timeout = 0;
    }
    if ((rc = cli_operands(a, argv + g.ind, argc - g.ind)) != 0)
        return rc;
    if (a->command != NULL) {
        cli_shell_argv(a->shell_argv, a->command); /* posix/ or win32/ */
        a->cmd_argv = a->shell_argv;
    }
    return -1;
}
