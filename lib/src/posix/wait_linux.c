/*
 * wait_linux.c -- the Linux half of the wait engine (platform.h): futex
 * words, per-thread POSIX timers for pl_set_wait_signal(), and
 * /proc/self/fdinfo.  The BSDs, macOS and other POSIX systems: wait_bsd.c.
 */
#include "internal.h"
#include "posix/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL

/* ---- futex words -----------------------------------------------------------
 * A bare futex: the helper's wake is a single system call and the caller
 * never has to take a mutex the helper still holds (a condition variable
 * measured about 3x slower here).  Waking a futex never touches the word's
 * memory, so a wake that arrives after the waiter returned is harmless: at
 * worst a spurious wake-up of a later wait, which re-checks its word.
 *
 * The futex ABI, spelled out: musl without kernel headers has no
 * <linux/futex.h>, and these values are fixed by the kernel.
 */
#ifndef FUTEX_WAIT
# define FUTEX_WAIT 0
#endif
#ifndef FUTEX_WAKE
# define FUTEX_WAKE 1
#endif
#ifndef FUTEX_WAIT_BITSET
# define FUTEX_WAIT_BITSET 9
#endif
#ifndef FUTEX_PRIVATE_FLAG
# define FUTEX_PRIVATE_FLAG 128
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
# define FUTEX_BITSET_MATCH_ANY 0xffffffff
#endif

void pl__wait_word_wake(atomic_uint *w) {
    syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL,
            0);
}

/*
 * FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline.  The
 * timespec is the KERNEL's, never libc's struct timespec: on a 32-bit ABI
 * with a 64-bit time_t (glibc's _TIME_BITS=64, musl >= 1.2) libc's layout
 * is two 64-bit fields while SYS_futex reads two 32-bit longs, and a wait
 * of 0.5 s returned after a few milliseconds.  There futex_time64 (Linux
 * 5.1) takes 64-bit fields; SYS_futex's own timespec is two longs on every
 * ABI but x32.  Returns 0 or the errno.
 */
static int futex_wait_abs(atomic_uint *w, int64_t deadline_ns) {
    long rc;
    if (deadline_ns < 0) {
        rc = syscall(SYS_futex, w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL,
                     NULL, 0);
        return rc == 0 ? 0 : errno;
    }
#if defined(SYS_futex_time64) || (defined(__x86_64__) && defined(__ILP32__))
    {
        struct {
            long long tv_sec, tv_nsec;
        } ts64 = {deadline_ns / NS_PER_S, deadline_ns % NS_PER_S};
# ifdef SYS_futex_time64
        rc =
            syscall(SYS_futex_time64, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                    0, &ts64, NULL, FUTEX_BITSET_MATCH_ANY);
        if (rc == 0 || errno != ENOSYS)
            return rc == 0 ? 0 : errno;
            /* Linux < 5.1: the 32-bit call below */
# else /* x32: SYS_futex takes the 64-bit layout */
        rc = syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0,
                     &ts64, NULL, FUTEX_BITSET_MATCH_ANY);
        return rc == 0 ? 0 : errno;
# endif
    }
#endif
    {
        struct {
            long tv_sec, tv_nsec;
        } ts = {(long)(deadline_ns / NS_PER_S), (long)(deadline_ns % NS_PER_S)};
        rc = syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0,
                     &ts, NULL, FUTEX_BITSET_MATCH_ANY);
    }
    return rc == 0 ? 0 : errno;
}

/* An error other than a wake-up, a signal or the deadline (a kernel or an
 * emulator without the call) degrades to 1 ms naps, never to a spin. */
unsigned pl__wait_word_wait(atomic_uint *w, int64_t deadline_ns) {
    unsigned v;
    while ((v = atomic_load(w)) == 0) {
        int e = futex_wait_abs(w, deadline_ns);
        if (e == ETIMEDOUT)
            return atomic_load(w);
        if (e != 0 && e != EAGAIN && e != EINTR) {
            if (deadline_ns >= 0 && pl__os_monotonic_ns() >= deadline_ns)
                return atomic_load(w);
            pl__os_sleep(0.001);
        }
    }
    return v;
}

/* ---- per-thread timers -----------------------------------------------------
 * timer_create with SIGEV_THREAD_ID: the signal goes to the thread that
 * waits and to no other.  One timer per thread, created on its first timed
 * wait in the signal mode and deleted at its exit.
 */
#ifndef sigev_notify_thread_id /* glibc < 2.35 */
# define sigev_notify_thread_id _sigev_un._tid
#endif

struct pl__wait_timer {
    int ready;
    int signo;
    timer_t id;
};

static _Thread_local pl__wait_timer_t tl_timer;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;
static pthread_key_t timer_key; /* only for its destructor */
static int timer_key_ok;

int pl__wait_timers_available(void) {
    return 1;
}

static void timer_at_exit(void *unused) {
    (void)unused;
    if (tl_timer.ready)
        timer_delete(tl_timer.id);
    tl_timer.ready = 0;
}

/* Timers are not inherited: a forked child starts without one. */
static void timer_after_fork(void) {
    tl_timer.ready = 0;
}

static void timer_setup(void) {
    timer_key_ok = pthread_key_create(&timer_key, timer_at_exit) == 0;
    pthread_atfork(NULL, NULL, timer_after_fork);
}

pl__wait_timer_t *pl__wait_timer_get(int signo) {
    struct sigevent sev;

    if (tl_timer.ready && tl_timer.signo == signo)
        return &tl_timer;
    pthread_once(&timer_once, timer_setup);
    if (!timer_key_ok)
        return NULL;
    if (tl_timer.ready) {
        timer_delete(tl_timer.id);
        tl_timer.ready = 0;
    }
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &tl_timer.id) != 0)
        return NULL;
    tl_timer.ready = 1;
    tl_timer.signo = signo;
    pthread_setspecific(timer_key, &tl_timer);
    return &tl_timer;
}

void pl__wait_timer_set(pl__wait_timer_t *tt, int64_t deadline_ns,
                        int64_t period_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (deadline_ns >= 0) {
        its.it_value.tv_sec = (time_t)(deadline_ns / NS_PER_S);
        its.it_value.tv_nsec = (long)(deadline_ns % NS_PER_S);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; /* 0 would disarm */
        its.it_interval.tv_sec = (time_t)(period_ns / NS_PER_S);
        its.it_interval.tv_nsec = (long)(period_ns % NS_PER_S);
    }
    timer_settime(tt->id, TIMER_ABSTIME, &its, NULL);
}

int pl__wait_timer_fire(pl__wait_timer_t *tt, int64_t period_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_nsec = 1;
    its.it_interval.tv_sec = (time_t)(period_ns / NS_PER_S);
    its.it_interval.tv_nsec = (long)(period_ns % NS_PER_S);
    return timer_settime(tt->id, 0, &its, NULL) == 0 ? 0 : -1;
}

/* ---- /proc/self/fdinfo ------------------------------------------------------
 * About 3 us idle, 18 us measured on the loaded test machine: backend.c
 * asks only for descriptors it marked.
 */
int pl__fd_holds_shared_flock(int fd) {
    char path[64], buf[2048];
    ssize_t n;
    int pfd;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    pfd = open(path, O_RDONLY | O_CLOEXEC);
    if (pfd < 0)
        return -1; /* no procfs */
    n = read(pfd, buf, sizeof(buf) - 1);
    close(pfd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "lock:\t1: FLOCK  ADVISORY  READ 1234 fe:00:5310961 0 EOF" */
    for (char *l = strstr(buf, "FLOCK"); l != NULL;
         l = strstr(l + 5, "FLOCK")) {
        char *eol = strchr(l, '\n');
        char *rd = strstr(l, "READ");
        if (rd != NULL && (eol == NULL || rd < eol))
            return 1;
    }
    return 0;
}
