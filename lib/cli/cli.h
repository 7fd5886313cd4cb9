/*
 * cli.h -- what the files of the portalock command share.
 *
 * main.c parses the command line and takes the lock (Lock, TemporaryFileLock,
 * PidFileLock, semaphore, Redis, or a bare descriptor), run.c runs the
 * command while the lock is held, probe_cmd.c implements "portalock probe" and
 * the --verbose verdict.  Only the public API (portalock.h) is used.
 */
#ifndef PL_CLI_H
#define PL_CLI_H

/* Exit statuses (see EXIT STATUS in portalock.1). */
#define CLI_EX_FAILURE  1   /* conflict (default), timeout, OS error */
#define CLI_EX_USAGE    64  /* bad command line or configuration (sysexits) */
#define CLI_EX_NOEXEC   126 /* command found but not executable */
#define CLI_EX_NOTFOUND 127 /* command not found */

/* Prints "portalock: <message>" and the short usage to stderr; returns 64. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds from CLOCK_MONOTONIC. */
double cli_now(void);
/* Formats a duration for messages: "2.0", "0.5", "0.050". */
const char *cli_fmt_seconds(double seconds, char *buf, unsigned len);

/*
 * Records which descriptors are open (call first thing in main).  cli_run
 * later marks close-on-exec every descriptor opened since, so that nothing
 * the library opened without FD_CLOEXEC (e.g. hiredis sockets, which would
 * keep a Redis lock's connection alive) leaks into the command.
 */
void cli_fds_snapshot(void);

/*
 * Runs argv (argv[0] is looked up in PATH) in a child process and waits for
 * it, forwarding SIGTERM, SIGINT and SIGHUP.  keep_fd >= 0 is inherited by
 * the command (its FD_CLOEXEC is cleared in the child only); -1 = none.
 * Returns the command's exit status, 128+N if it died of signal N, 126/127
 * if it could not be executed, 1 if fork failed.
 */
int cli_run(char *const *argv, int keep_fd);
/*
 * Asks that the running command (or the next one started by cli_run) get
 * sig.  Safe to call from any thread and from a signal handler.
 */
void cli_request_kill(int sig);

/* The command for -c: {$SHELL or /bin/sh, "-c", command} on POSIX,
 * {%ComSpec% or cmd.exe, "/c", command} on Windows. */
void cli_shell_argv(char *argv[4], const char *command);
/*
 * FD form: 0 if fd is an open descriptor that can be locked; otherwise
 * prints why and returns the exit status (Windows: a usage error, there is
 * no FD form there).
 */
int cli_fd_check(int fd, const char *name);

/* "portalock probe PATH [--json]": argv[0] is "probe". */
int cli_probe_main(int argc, char **argv);
/* --verbose: prints the probe's one-line verdict for lock_path's directory. */
void cli_probe_verdict(const char *lock_path);

#endif /* PL_CLI_H */
