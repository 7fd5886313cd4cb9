/*
 * platform.h -- what only some POSIX systems have, behind functions.
 *
 * The rest of lib/src/posix/ is generic POSIX (it compiles on Linux, the
 * BSDs and macOS alike); the calls below differ by system, so each has one
 * implementation per family in its own file, picked by lib/CMakeLists.txt
 * (PL_POSIX_PLATFORM), never by an #ifdef in a function body:
 *
 *   wait_linux.c  futex words, per-thread POSIX timers (timer_create with
 *                 SIGEV_THREAD_ID), /proc/self/fdinfo
 *   wait_bsd.c    the BSDs, macOS and any other POSIX system: one mutex and
 *                 condition variable with CLOCK_REALTIME deadlines, no
 *                 per-thread timers, no fdinfo
 *   fs_linux.c    __fpurge, getrandom
 *   fs_bsd.c      fpurge, getentropy
 *   fstype_*.c    pl__os_fstype() (declared in internal.h)
 *
 * ci/posix-portable.sh builds the generic files with the *_bsd.c ones
 * against glibc with the Linux-only identifiers poisoned, and runs the
 * result (PORTING.md 1.4).
 */
#ifndef PL_POSIX_PLATFORM_H
#define PL_POSIX_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- wait words (wait_*.c) -------------------------------------------------
 * A timed wait ends when a 32-bit word becomes non-zero (backend.c posts the
 * bits).  A wake that arrives after the waiter returned must be harmless.
 */

/* Wakes every thread waiting on w (after the caller changed *w). */
void pl__wait_word_wake(atomic_uint *w);
/* The word's value once non-zero, or 0 at deadline_ns (CLOCK_MONOTONIC,
 * absolute; < 0: none). */
unsigned pl__wait_word_wait(atomic_uint *w, int64_t deadline_ns);

/* ---- per-thread signal timers (wait_*.c) -----------------------------------
 * pl_set_wait_signal()'s deadline: a timer that sends a signal to one thread
 * only.  Where there is none, pl__wait_timers_available() is 0 and the
 * others fail.
 */
typedef struct pl__wait_timer pl__wait_timer_t;

int pl__wait_timers_available(void);
/* The calling thread's timer sending signo to this thread (created on first
 * use, deleted at the thread's exit), or NULL. */
pl__wait_timer_t *pl__wait_timer_get(int signo);
/* Arms tt to fire at deadline_ns (CLOCK_MONOTONIC, absolute) and then every
 * period_ns; deadline_ns < 0 disarms. */
void pl__wait_timer_set(pl__wait_timer_t *tt, int64_t deadline_ns,
                        int64_t period_ns);
/* Fires tt now, then every period_ns; 0 on success. */
int pl__wait_timer_fire(pl__wait_timer_t *tt, int64_t period_ns);

/* ---- descriptors (wait_*.c) ------------------------------------------------
 */

/* 1 if fd holds a shared flock lock now, 0 if not, -1 if this system cannot
 * tell (then the caller trusts what it recorded). */
int pl__fd_holds_shared_flock(int fd);

/* ---- C library (fs_*.c)
 * ------------------------------------------------------ */

/* Drops fp's buffered data without writing it. */
void pl__posix_fpurge(FILE *fp);
/* Up to len bytes of kernel randomness without blocking; the count or -1. */
ssize_t pl__posix_random_bytes(void *buf, size_t len);

#endif /* PL_POSIX_PLATFORM_H */
