/*
 * os.h -- what a contender needs from the operating system, one file per
 * platform (posix/os.c, win32/os.c; CMake picks one).  The generic code
 * (proto.c, contender.c) never tests for a platform: everything that
 * differs between POSIX and Windows is behind these functions, and the
 * differences the suite must know about are announced in hello
 * (PROTOCOL.md §4: clock=, crash=, wait=, platform=).
 */
#ifndef PL_CONTENDER_OS_H
#define PL_CONTENDER_OS_H

#include "portalock.h"

#include <stddef.h>
#include <stdint.h>

/* Called once before the first command: SIGPIPE at its default (POSIX),
 * binary stdin/stdout (Windows). */
void plc_os_serve_init(void);

/* Timestamps of the protocol, in nanoseconds (plp_now_ns). */
int64_t plc_os_now_ns(void);
/* The clock plc_os_now_ns reads, for hello's clock= field: NULL for
 * CLOCK_MONOTONIC (the protocol's default), "realtime" for nanoseconds
 * since the Unix epoch (CLOCK_REALTIME; Windows' system time). */
const char *plc_os_clock_name(void);
void plc_os_sleep_s(double seconds);

/* The process id a PidFileLock publishes (hello's pid=). */
long plc_os_pid(void);
/* hello's platform= field: NULL on POSIX, "windows" on Windows (pid= is
 * then a Windows process id, not the suite's child pid). */
const char *plc_os_platform(void);
/* Ends the process at once while it holds its locks (crash); how, for
 * hello's crash= field: NULL for SIGKILL, "terminate" for
 * TerminateProcess with exit code 137. */
void plc_os_crash(void);
const char *plc_os_crash_style(void);

/* How the library waits for a held lock here, for hello's wait= field:
 * NULL when a blocked acquire sleeps in the kernel until the release,
 * "poll" when it polls (pl_probe's blocking_ok says so: lockfileex under
 * Wine, which has no asynchronous lock wait). */
const char *plc_os_wait_style(void);

/* Extra hello features this OS offers ("fork" on POSIX; "" on Windows). */
const char *plc_os_features(void);
/*
 * fork-child: runs child(arg) in a forked child that inherits everything
 * and exits with its result; the parent waits.  Returns 0 with *pid and
 * *code (the child's result, a pl_err_t), PL_ENOTSUP where there is no
 * fork, or another pl_err_t with msg filled.
 */
int plc_os_fork_run(int (*child)(void *), void *arg, long *pid, int *code,
                    char *msg, size_t len);

/* close-other: opens path read-only through a new descriptor/handle,
 * outside the lock library, and closes it.  0, or -1 with msg filled. */
int plc_os_open_close(const char *path, char *msg, size_t len);
/* write: data through the held lock's own file (not another descriptor)
 * and flushed.  0, -1 with msg filled, or PL_ENOTHELD when not held. */
int plc_os_write_held(pl_lock_t *lock, const char *data, char *msg, size_t len);
/* cycle's counter=: read the decimal number in path (missing or empty =
 * 0) and write it back plus one.  0, or -1 with msg filled. */
int plc_os_bump_counter(const char *path, char *msg, size_t len);

#endif /* PL_CONTENDER_OS_H */
