/*
 * wait_bsd.c -- the wait engine's platform half on the BSDs, macOS and any
 * other POSIX system (platform.h; Linux: wait_linux.c).  Only POSIX calls,
 * so it also compiles against glibc: ci/posix-portable.sh builds and runs
 * it there with the Linux-only identifiers poisoned.
 *
 * WAIT WORDS.  One process-wide mutex + condition variable.  Its deadline is
 * CLOCK_REALTIME, converted from the monotonic deadline before every wait:
 * pthread_condattr_setclock(CLOCK_MONOTONIC) is missing on macOS, and one
 * portable path is better than a per-system one that nothing here runs.
 * The costs, compared with Linux's futex:
 *   - a wake-up broadcasts to every waiting thread of the process, each
 *     re-checks its own word and sleeps again (waits are per lock object,
 *     so this is a handful of threads, not a hot loop);
 *   - the waker takes the mutex, so a woken waiter may first wait for it;
 *   - the wall clock stepped FORWARD during a wait ends the sleep early; the
 *     monotonic deadline is re-checked, so the wait goes on.  Stepped BACK
 *     by d seconds, it ends up to d seconds late (a handoff is not delayed:
 *     the helper's broadcast still wakes the waiter at once).
 *
 * PER-THREAD TIMERS (pl_set_wait_signal): there is no portable way to send
 * a timer's signal to one thread (SIGEV_THREAD_ID is Linux's), so there are
 * none: pl_set_wait_signal() answers PL_ENOTSUP and waits use the helper
 * thread.
 *
 * FDINFO: no /proc/self/fdinfo; backend.c trusts its own marks.
 */
#include "internal.h"
#include "posix/platform.h"

#include <pthread.h>
#include <time.h>

#define NS_PER_S 1000000000LL

static pthread_mutex_t word_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t word_cv = PTHREAD_COND_INITIALIZER;

/* The waiter checks its word under word_mu before sleeping, and the waker
 * changed the word before taking word_mu here: no wake-up is lost. */
void pl__wait_word_wake(atomic_uint *w) {
    (void)w;
    pthread_mutex_lock(&word_mu);
    pthread_cond_broadcast(&word_cv);
    pthread_mutex_unlock(&word_mu);
}

unsigned pl__wait_word_wait(atomic_uint *w, int64_t deadline_ns) {
    unsigned v;

    pthread_mutex_lock(&word_mu);
    while ((v = atomic_load(w)) == 0) {
        struct timespec now, ts;
        int64_t left, at;

        if (deadline_ns < 0) {
            pthread_cond_wait(&word_cv, &word_mu);
            continue;
        }
        left = deadline_ns - pl__os_monotonic_ns();
        if (left <= 0)
            break;
        clock_gettime(CLOCK_REALTIME, &now);
        at = (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec + left;
        ts.tv_sec = (time_t)(at / NS_PER_S);
        ts.tv_nsec = (long)(at % NS_PER_S);
        pthread_cond_timedwait(&word_cv, &word_mu, &ts);
    }
    pthread_mutex_unlock(&word_mu);
    return v;
}

int pl__wait_timers_available(void) {
    return 0;
}

pl__wait_timer_t *pl__wait_timer_get(int signo) {
    (void)signo;
    return NULL;
}

void pl__wait_timer_set(pl__wait_timer_t *tt, int64_t deadline_ns,
                        int64_t period_ns) {
    (void)tt, (void)deadline_ns, (void)period_ns;
}

int pl__wait_timer_fire(pl__wait_timer_t *tt, int64_t period_ns) {
    (void)tt, (void)period_ns;
    return -1;
}

int pl__fd_holds_shared_flock(int fd) {
    (void)fd;
    return -1;
}
