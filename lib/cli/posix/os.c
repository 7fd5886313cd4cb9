/*
 * os.c (POSIX) -- the portalock command's small platform services: start-up,
 * program name, clock, sleep, stderr.
 */
#include "../cli.h"
#include "cli_posix.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cli_path_seps[] = "/";

void cli_os_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    cli_fds_snapshot();
}

void cli_os_timed_waits(double timeout) {
    /* We own the process and its signals, as flock(1) does: timed waits
     * block in the kernel in this thread and SIGALRM ends them.  Only
     * for a -w wait, as flock(1) catches SIGALRM only then: without -w a
     * SIGALRM must end portalock (128+14), not be swallowed by the wait
     * signal's handler while it waits or while its command runs. */
    if (timeout > 0)
        pl_set_wait_signal(SIGALRM, NULL);
}

const char *cli_os_progname(const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    return slash != NULL ? slash + 1 : argv0;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_sleep(double seconds) {
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void cli_write_stderr(const char *msg, size_t len) {
    (void)!write(STDERR_FILENO, msg, len);
}
