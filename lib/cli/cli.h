/*
 * cli.h -- what the files of the portalock command share.
 *
 * args.c parses the command line (cli_parse_args: no side effects beyond
 * messages, so the fuzzer can call it); main.c takes the lock of the kinds
 * the library models (a TemporaryFileLock, PidFileLock, semaphore or Redis
 * lock) and hands the flock(1) forms (a file, directory or descriptor, and
 * --start/--length byte ranges) to the platform; probe_cmd.c implements
 * "portalock probe".  What depends on the operating system lives in one
 * directory per platform, picked by lib/CMakeLists.txt (never an #ifdef in
 * a function body):
 *   posix/ -- flock.c (open(2), descriptors), range.c (fcntl byte ranges),
 *             run.c (fork/exec, signals), os.c, shell.c ($SHELL -c)
 *   win32/ -- flock.c (CreateFileW), range.c (LockFileEx byte ranges),
 *             run.c (CreateProcessW, console control events), os.c
 *             (UTF-8 argv), shell.c (cmd.exe /c)
 * Locks go through the public API (portalock.h), except byte ranges, which
 * the library does not model (portalocker has none): range.c locks them
 * itself.
 */
#ifndef PL_CLI_H
#define PL_CLI_H

#include "portalock.h"

#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
# define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
# define CLI_PRINTF(f, a)
#endif

/* Exit statuses: flock(1)'s sysexits where it has one (see portalock.1). */
#define CLI_EX_FAILURE     1  /* conflict (default -E), other kinds' errors */
#define CLI_EX_USAGE       64 /* EX_USAGE: bad command line */
#define CLI_EX_DATAERR     65 /* EX_DATAERR: locking failed (bad fd...) */
#define CLI_EX_NOINPUT     66 /* EX_NOINPUT: cannot open the lock file */
#define CLI_EX_UNAVAILABLE 69 /* EX_UNAVAILABLE: command cannot be run */
#define CLI_EX_OSERR       71 /* EX_OSERR: fork, ENOMEM, ENOLCK, EMFILE */
#define CLI_EX_CANTCREAT   73 /* EX_CANTCREAT: EROFS or ENOSPC creating */

/* The semaphore sizes the library accepts (pl_semaphore_open). */
#define CLI_MAX_SLOTS 1000u

typedef enum cli_op {
    CLI_OP_EXCLUSIVE = 0, /* -x, -e (default) */
    CLI_OP_SHARED,        /* -s */
    CLI_OP_UNLOCK         /* -u */
} cli_op_t;

typedef struct cli_args {
    cli_op_t op; /* the last of -s, -x, -e, -u wins (as flock(1)) */
    int nonblock, close_fd, no_fork;
    int verbose;    /* 1: flock(1)'s messages; 2: also backend, holder */
    double timeout; /* < 0: wait forever; 0: -n or -w 0 */
    int timeout_set;
    int timeout_negative;  /* -w -N: flock(1) fails with 71 */
    double check_interval; /* PL_UNSET: library default */
    int conflict_code;
    const char *command; /* -c */
    pl_backend_t backend;
    int backend_set;
    int range_set;           /* --start or --length given */
    long long start, length; /* byte range; length 0 = to EOF and beyond */
    int use_fd, fd;          /* --fd N */
    unsigned semaphore;      /* 0: not a semaphore */
    const char *directory;
    int pidfile, temporary;
    const char *redis_url;
    int on_lost_kill;
    int fair;            /* --fair: Redis lock in arrival order */
    const char *target;  /* FILE, FD, semaphore or Redis name; NULL: --fd */
    char **cmd_argv;     /* the command, NULL-terminated; NULL: none */
    char *shell_argv[4]; /* for -c */
} cli_args_t;

/*
 * Option scanning with GNU getopt_long's rules on every platform
 * (getopt.c): cli_getopt returns the next option's short letter or
 * cli_longopt_t.val, '?' for an unknown one (opt: the letter, or the long
 * option's val when "--name=x" gives an argument to one that takes none),
 * ':' when an argument is missing, and -1 at the end, with ind at the first
 * operand.  A '+' leading shorts stops at the first operand; without it the
 * operands are moved after the options.  bad is the argv element of the
 * last option seen (for messages), arg its argument.
 */
#define CLI_NO_ARG  0
#define CLI_REQ_ARG 1
typedef struct cli_longopt {
    const char *name;
    int has_arg; /* CLI_NO_ARG or CLI_REQ_ARG */
    int val;
} cli_longopt_t;

typedef struct cli_getopt {
    int ind;         /* next element of argv; at the end, the first operand */
    const char *arg; /* the option's argument, or NULL */
    int opt;         /* the option letter or val (for '?' and ':') */
    const char *bad; /* the element the last option came from */
    int pos;         /* position inside a cluster of short options */
    int start;       /* where the option being scanned began */
    int nonopt;      /* where the operands moved so far begin */
} cli_getopt_t;

void cli_getopt_init(cli_getopt_t *g);
int cli_getopt(cli_getopt_t *g, int argc, char **argv, const char *shorts,
               const cli_longopt_t *longs);

/* Name for messages: basename of argv[0], as flock(1) (set by main). */
extern const char *cli_progname;
/* Where cli_parse_args writes usage errors (stderr) and --help/--version
 * (stdout); NULL = those.  The argument fuzzer points both elsewhere. */
extern FILE *cli_parse_err, *cli_parse_out;

/*
 * Parses argv into a.  Returns -1 to go on, else the exit status: 0 after
 * --help/--version (printed to stdout), CLI_EX_USAGE after a usage error
 * (printed to stderr).  Touches nothing but a, stdout and stderr (argv's
 * order stays: the options end at the first operand), so it may be called
 * again.
 */
int cli_parse_args(cli_args_t *a, int argc, char **argv);

/* The names of the backends in bits (1 << pl_backend_t), in a fixed
 * order, separated by sep and, before the last one, by last; "none" for
 * none. */
void cli_backend_names(unsigned bits, const char *sep, const char *last,
                       char *buf, size_t len);
/* The backends available here, for messages: "flock, lockf or ofd" on
 * Linux, "lockfileex" on Windows. */
const char *cli_backends_here(void);

/* Prints "NAME: <message>" and a hint to stderr; returns CLI_EX_USAGE. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Formats a duration for messages: "2.0", "0.5", "0.050". */
const char *cli_fmt_seconds(double seconds, char *buf, unsigned len);

/* ---- main.c: messages shared with the platform's flock forms ------------ */

/* Prints "NAME: TARGET: MSG" (MSG NULL or "": pl_strerror(rc)), without
 * repeating TARGET if MSG has it. */
void cli_error(const char *target, const char *msg, int rc);
/* Conflict or timeout (rc): silent unless --verbose, as flock(1); with
 * --verbose twice also holder.  Returns the -E status. */
int cli_conflict(const cli_args_t *a, int rc, const char *holder);
/* flock(1)'s --verbose lines on stdout: "getting lock took", "executing". */
void cli_report_took(const cli_args_t *a, double waited);
void cli_report_exec(const cli_args_t *a);
/* --verbose twice: kind, backend and the probe's verdict, on stderr. */
void cli_report_extra(const cli_args_t *a, const char *what, const char *path,
                      double waited, pl_backend_t backend);
/* The last path separator in path (cli_path_seps), NULL if none. */
const char *cli_last_sep(const char *path);

/* ---- per platform: os.c ------------------------------------------------- */

/* The path separators: "/" (POSIX), "/\\" (Windows). */
extern const char cli_path_seps[];
/*
 * First thing in main.  POSIX: records which descriptors are open (cli_run
 * later marks close-on-exec every descriptor opened since, so that nothing
 * the library opened without FD_CLOEXEC, e.g. hiredis sockets, leaks into
 * the command).  Windows: replaces *argv with the UTF-8 arguments of the
 * wide command line (the ANSI argv of main() is lossy).
 */
void cli_os_init(int *argc, char ***argv);
/* Once the arguments are parsed: for a finite wait (timeout > 0) POSIX
 * makes the library's timed waits block in this thread, ended by SIGALRM
 * (pl_set_wait_signal), as flock(1) catches SIGALRM only with -w.  Windows:
 * nothing. */
void cli_os_timed_waits(double timeout);
/* The name for messages from argv[0]: its base name (Windows: without
 * ".exe"). */
const char *cli_os_progname(const char *argv0);
/* Seconds from a monotonic clock. */
double cli_now(void);
/* Sleeps about seconds. */
void cli_sleep(double seconds);
/* Writes len bytes to stderr; async-signal-safe (POSIX), any thread. */
void cli_write_stderr(const char *msg, size_t len);

/* ---- per platform: shell.c ---------------------------------------------- */

/* The command for -c: {$SHELL or /bin/sh, "-c", command} on POSIX,
 * {%ComSpec% or cmd.exe, "/c", command} on Windows (run.c then builds
 * cmd.exe's own command line). */
void cli_shell_argv(char *argv[4], const char *command);

/* ---- per platform: flock.c ---------------------------------------------- */

/*
 * The flock(1) forms: FILE or DIRECTORY with a command, FD, --fd N (FD
 * forms: POSIX only; a usage error on Windows).  Returns the exit status.
 */
int cli_flock_main(const cli_args_t *a);

/* ---- per platform: run.c ------------------------------------------------ */

/*
 * Runs argv (argv[0] is looked up in PATH) in a child process and waits for
 * it.  keep_fd >= 0 is inherited by the command (its FD_CLOEXEC is cleared
 * in the child only; Windows: the handle is made inheritable for the
 * CreateProcess call only); close_fd >= 0 is closed in the child (-o with
 * --fd; PL_INVALID_FD on Windows).
 * forward = 0: signals keep their dispositions, as in flock(1) (the lock is
 * the command's too, through keep_fd).  forward = 1: the lock lives only in
 * this process, so portalock outlives the command: it catches SIGTERM,
 * SIGINT and SIGHUP and passes on those the command did not get (see
 * run.c).  Returns the command's exit status, 128+N if it died of signal N,
 * CLI_EX_UNAVAILABLE if it could not be executed, CLI_EX_OSERR if fork
 * failed.
 */
int cli_run(char *const *argv, pl_fd_t keep_fd, pl_fd_t close_fd, int forward);
/* -F: replaces portalock with argv (keep_fd stays open); returns only on
 * failure, with the exit status to use.  Windows has no exec: the command
 * runs as with cli_run (keep_fd inherited) and its status is returned. */
int cli_exec(char *const *argv, pl_fd_t keep_fd);
/*
 * Asks that the running command (or the next one started by cli_run) get
 * sig.  Safe to call from any thread and from a signal handler.
 */
void cli_request_kill(int sig);

/* ---- per platform: range.c ---------------------------------------------- */

/*
 * Locks (op CLI_OP_SHARED/EXCLUSIVE) or unlocks the byte range [start,
 * start+length) of fd (length 0: to the end of the file and beyond): with
 * fcntl() on POSIX (OFD locks, or process-owned ones for the lockf
 * backend), with LockFileEx on Windows.  timeout < 0 waits forever, 0
 * tries once.  Returns PL_OK, PL_ELOCKED, PL_ETIMEDOUT, or PL_EOS with
 * *os_error set (errno / GetLastError()).
 */
int cli_lock_range(pl_fd_t fd, cli_op_t op, pl_backend_t backend,
                   long long start, long long length, double timeout,
                   int *os_error);

/* "portalock probe PATH [--json]": argv[0] is "probe". */
int cli_probe_main(int argc, char **argv);
/* --verbose --verbose: prints the probe's one-line verdict for lock_path's
 * directory. */
void cli_probe_verdict(const char *lock_path);

#endif /* PL_CLI_H */
