/*
 * ofd_poll.c -- an LD_PRELOAD shim for the valgrind section of
 * ci/stress.sh only: turns fcntl(F_OFD_SETLKW) into F_OFD_SETLK retried
 * every millisecond.
 *
 * Why: valgrind 3.19 (Debian 12) does not mark F_OFD_SETLKW as a blocking
 * system call (it does for F_SETLKW), so it runs it holding its big lock:
 * while one thread waits for an OFD lock, every other thread of the process
 * stops (the caller never reaches its deadline, nothing releases).  Natively
 * and under ASan/TSan the kernel's wait is used and tested; under memcheck
 * this shim keeps the library's code paths (helper thread, deadline,
 * cancellation, signal mode) and only replaces the kernel's queue by a
 * poll, which valgrind schedules (nanosleep blocks properly).
 *
 * Semantics kept: success, the error of the non-blocking call when it is not
 * contention, EINTR when a signal interrupts the sleep (the signal wait mode
 * relies on it), and asynchronous cancellation inside nanosleep.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

/* Not <fcntl.h>: with _FILE_OFFSET_BITS=64 it renames fcntl to fcntl64,
 * and both symbols must be defined here.  The values are Linux's, the same
 * on every architecture. */
#define F_OFD_SETLK  37
#define F_OFD_SETLKW 38

/* Exported whatever the build's default visibility. */
#define SHIM __attribute__((visibility("default")))
SHIM int fcntl(int fd, int cmd, ...);
SHIM int fcntl64(int fd, int cmd, ...);

typedef int (*fcntl_fn)(int, int, ...);

static int call(const char *sym, int fd, int cmd, void *arg) {
    fcntl_fn real = (fcntl_fn)(uintptr_t)dlsym(RTLD_NEXT, sym);
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (cmd != F_OFD_SETLKW)
        return real(fd, cmd, arg);
    for (;;) {
        struct timespec ms = {0, 1000000};
        int rc = real(fd, F_OFD_SETLK, arg);
        if (rc == 0 || (errno != EAGAIN && errno != EACCES))
            return rc;
        if (nanosleep(&ms, NULL) != 0 && errno == EINTR)
            return -1;
    }
}

/* Every fcntl command takes at most one argument, an int or a pointer. */
#define ONE_ARG(cmd, arg)                                                      \
 do {                                                                          \
  va_list ap;                                                                  \
  va_start(ap, cmd);                                                           \
  arg = va_arg(ap, void *);                                                    \
  va_end(ap);                                                                  \
 } while (0)

int fcntl(int fd, int cmd, ...) {
    void *arg;
    ONE_ARG(cmd, arg);
    return call("fcntl", fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
    void *arg;
    ONE_ARG(cmd, arg);
    return call("fcntl64", fd, cmd, arg);
}
