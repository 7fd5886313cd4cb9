/*
 * no-linux.h -- forced in front of every C file (gcc -include) by
 * ci/posix-portable.sh: turns glibc into a libc without Linux's extras, so
 * that the generic POSIX files plus the *_bsd.c platform files (what macOS
 * and the BSDs compile; PORTING.md 1.4) are proved free of them.
 *
 *   - the system headers the library, the CLI, the contender and the port
 *     checks include are included first (their include guards then skip
 *     them), after which
 *   - Linux-only functions are poisoned (any later use is a hard error),
 *   - Linux-only feature macros are undefined, as on the systems that lack
 *     the feature (the code must test for them, never assume them), and
 *   - the macros that name Linux (__linux__, linux, __gnu_linux__) are
 *     removed and poisoned: generic code may not test for the system.
 *
 * glibc lacks two BSD spellings the *_bsd.c files use; they are mapped to
 * glibc's own so that the result links and runs (ci/ports.sh runs it):
 * fpurge (BSD <stdio.h>) is glibc's __fpurge.
 */
#ifndef PL_CI_NO_LINUX_H
#define PL_CI_NO_LINUX_H

/* Every file of the build either defines it or needs nothing beyond it;
 * the headers below are read once, so it must be set before them. */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* BSD spellings glibc lacks. */
#define fpurge(fp) __fpurge(fp)

/* Features only Linux has: absent, as on macOS and the BSDs. */
#undef O_TMPFILE
#undef MADV_WIPEONFORK
#undef F_OFD_GETLK
#undef F_OFD_SETLK
#undef F_OFD_SETLKW
#undef SIGEV_THREAD_ID
#undef SYS_futex
#undef SYS_futex_time64
#undef SYS_gettid
#undef GRND_NONBLOCK

/* Linux-only (or glibc-only) calls. */
#pragma GCC poison syscall __fpurge getrandom timer_create timer_settime
#pragma GCC poison timer_delete timer_gettime pthread_condattr_setclock
#pragma GCC poison pipe2 dup3 accept4 memfd_create eventfd signalfd
#pragma GCC poison epoll_create epoll_create1 epoll_ctl epoll_wait gettid
#pragma GCC poison sched_getcpu prctl renameat2 copy_file_range
#pragma GCC poison ppoll pthread_tryjoin_np pthread_timedjoin_np
#pragma GCC poison get_nprocs sysinfo statx fallocate
/* POSIX, but missing on macOS and OpenBSD. */
#pragma GCC poison sigtimedwait sigwaitinfo

/* Generic code tests for features, never for the system. */
#undef __linux__
#undef __linux
#undef linux
#undef __gnu_linux__
#pragma GCC poison __linux__ __linux linux __gnu_linux__

#endif /* PL_CI_NO_LINUX_H */
