/*
 * posix/os.c -- the contender's operating-system layer on POSIX (os.h):
 * CLOCK_MONOTONIC timestamps, crash by SIGKILL, fork-child with fork(),
 * counters and close-other through plain descriptors.
 */
#include "os.h"

#include "portalock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void plc_os_serve_init(void) {
    signal(SIGPIPE, SIG_DFL);
}

int64_t plc_os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *plc_os_clock_name(void) {
    return NULL; /* CLOCK_MONOTONIC: system-wide on Linux */
}

void plc_os_sleep_s(double s) {
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long plc_os_pid(void) {
    return (long)getpid();
}

const char *plc_os_platform(void) {
    return NULL;
}

void plc_os_crash(void) {
    fflush(stdout);
    kill(getpid(), SIGKILL);
    _exit(137); /* not reached */
}

const char *plc_os_crash_style(void) {
    return NULL; /* SIGKILL, the protocol's default */
}

const char *plc_os_features(void) {
    return ",fork";
}

int plc_os_fork_run(int (*child)(void *), void *arg, long *pid, int *code,
                    char *msg, size_t len) {
    pid_t p;
    int status;
    fflush(stdout);
    p = fork();
    if (p < 0) {
        snprintf(msg, len, "fork: %s", strerror(errno));
        return PL_EOS;
    }
    if (p == 0) {
        int rc = child(arg);
        _exit(rc < 0 ? -rc : rc);
    }
    while (waitpid(p, &status, 0) < 0 && errno == EINTR)
        ;
    *pid = (long)p;
    *code = WIFEXITED(status) ? -WEXITSTATUS(status) : PL_EOS;
    return PL_OK;
}

int plc_os_open_close(const char *path, char *msg, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, len, "open(%s): %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

int plc_os_bump_counter(const char *path, char *err, size_t errlen) {
    char buf[32];
    ssize_t got;
    long long v = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int len;
    if (fd < 0) {
        snprintf(err, errlen, "open(%s): %s", path, strerror(errno));
        return -1;
    }
    got = pread(fd, buf, sizeof(buf) - 1, 0);
    if (got < 0) {
        snprintf(err, errlen, "read(%s): %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    buf[got] = '\0';
    if (got > 0)
        v = strtoll(buf, NULL, 10);
    len = snprintf(buf, sizeof(buf), "%lld\n", v + 1);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        snprintf(err, errlen, "write(%s): %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

const char *plc_os_wait_style(void) {
    return NULL; /* flock, lockf and OFD waits sleep in the kernel */
}

int plc_os_write_held(pl_lock_t *lock, const char *data, char *msg,
                      size_t len) {
    FILE *f = lock != NULL ? pl_lock_file(lock) : NULL;
    size_t n = strlen(data);
    if (f == NULL)
        return PL_ENOTHELD;
    if (fwrite(data, 1, n, f) != n || fflush(f) != 0) {
        snprintf(msg, len, "write: %s", strerror(errno));
        return -1;
    }
    return 0;
}
