/*
 * sys.c -- the live system-call table (see sys.h).  open and fcntl are
 * variadic in libc, so they get small wrappers that pass the optional
 * argument on; everything else points straight at libc.
 */
#include "posix/sys.h"
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef O_TMPFILE
# define PL_O_TMPFILE O_TMPFILE /* Linux only */
#else
# define PL_O_TMPFILE 0
#endif

static int sys_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | PL_O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, unsigned);
        va_end(ap);
    }
    return open(path, flags, mode);
}

/* The lock commands take a struct flock *; F_GETFL/F_GETFD take nothing;
 * the rest used here take an int. */
static int sys_fcntl(int fd, int cmd, ...) {
    va_list ap;
    int rc;
    va_start(ap, cmd);
    switch (cmd) {
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
#ifdef F_OFD_SETLK
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
#endif
        rc = fcntl(fd, cmd, va_arg(ap, struct flock *));
        break;
    case F_GETFL:
    case F_GETFD: rc = fcntl(fd, cmd); break;
    default: rc = fcntl(fd, cmd, va_arg(ap, int)); break;
    }
    va_end(ap);
    return rc;
}

/* clang-format off */
#define PL__SYS_REAL {                                                         \
    .open = sys_open, .close = close, .flock = flock, .fcntl = sys_fcntl,      \
    .fstat = fstat, .stat = stat, .ftruncate = ftruncate, .fsync = fsync,      \
    .unlink = unlink, .rename = rename, .link = link, .mkdir = mkdir,          \
    .read = read, .write = write, .statfs = statfs, .kill = kill,              \
    .lstat = lstat, .linkat = linkat,                                          \
    .pthread_create = pthread_create, .madvise = madvise }
/* clang-format on */

static const pl__sys_table_t pl__sys_real = PL__SYS_REAL;

pl__sys_table_t pl__sys = PL__SYS_REAL;

void pl__sys_reset(void) {
    pl__sys = pl__sys_real;
}

/* Cancellation state (internal.h): the thread calls, not system calls, so
 * not in the table. */
int pl__os_cancel_defer(void) {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

void pl__os_cancel_restore(int state) {
    int old;
    pthread_setcancelstate(state, &old);
}
