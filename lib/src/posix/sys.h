/*
 * sys.h -- every system call the POSIX layer makes goes through this table
 * (SQLite's aSyscall[] idea), so tests can make any of them fail.
 *
 *   pl__sys.flock = my_failing_flock;   ... test ...   pl__sys_reset();
 *
 * Only tests touch the table; it is not thread-safe to change it while the
 * library is in use on other threads.
 */
#ifndef PL_POSIX_SYS_H
#define PL_POSIX_SYS_H

#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#if __has_include(<sys/statfs.h>) /* Linux: glibc, musl */
# include <sys/statfs.h>
#else
# include <sys/mount.h> /* statfs on the BSDs and macOS */
# include <sys/param.h>
#endif

typedef struct pl__sys_table {
    int (*open)(const char *path, int flags, ...);
    int (*close)(int fd);
    int (*flock)(int fd, int op);
    int (*fcntl)(int fd, int cmd, ...);
    int (*fstat)(int fd, struct stat *st);
    int (*stat)(const char *path, struct stat *st);
    int (*ftruncate)(int fd, off_t len);
    int (*fsync)(int fd);
    int (*unlink)(const char *path);
    int (*rename)(const char *from, const char *to);
    int (*link)(const char *from, const char *to);
    int (*mkdir)(const char *path, mode_t mode);
    ssize_t (*read)(int fd, void *buf, size_t len);
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*statfs)(const char *path, struct statfs *st);
    int (*kill)(pid_t pid, int sig);
    int (*lstat)(const char *path, struct stat *st);
    int (*linkat)(int fromdir, const char *from, int todir, const char *to,
                  int flags);
    /* The timed wait's helper thread (posix/backend.c). */
    int (*pthread_create)(pthread_t *t, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg);
    int (*madvise)(void *addr, size_t len, int advice);
} pl__sys_table_t;

/* The live table; tests may replace entries. */
extern pl__sys_table_t pl__sys;
/* Restores every entry to the real system call. */
void pl__sys_reset(void);

/* Helper-thread waits (posix/backend.c) whose memory is not freed yet;
 * for tests. */
long pl__os_waiters_live(void);

#endif /* PL_POSIX_SYS_H */
