/*
 * pl_win_handoff -- the Windows handoff ratio (issue 11): the time from a
 * holder's UnlockFileEx to the return of a waiter that was blocked on the
 * same lock file, for
 *
 *   raw        a plain blocking LockFileEx on a synchronous handle (what
 *              the system does at best), and
 *   portalock  pl_lock_acquire() with a timeout, i.e. our lockfileex wait
 *              (overlapped LockFileEx + WaitForSingleObject on Windows;
 *              polling under Wine, which has no asynchronous lock wait).
 *
 * Holder and waiter are two threads with their own handles: LockFileEx locks
 * belong to the handle, so that is real contention.  The two kinds of
 * waiter alternate trial by trial, so machine load hits both alike; the
 * figure to read is the ratio of the medians (goal on real Windows: p50
 * ratio <= 1.2).  Each trial: the waiter starts waiting, the holder waits
 * --settle-ms (so the waiter is really blocked), reads the clock and
 * unlocks; the waiter reads the clock when its call returns.
 *
 *   pl_win_handoff [--trials N] [--settle-ms MS] [--dir DIR]
 *
 * Prints one line per waiter kind and the ratio:
 *   handoff waiter=raw trials=200 p50_us=... p99_us=... max_us=...
 *   handoff waiter=portalock trials=200 p50_us=... p99_us=... wait=kernel|poll
 *   ratio_p50=... ratio_p99=...
 * Exit 0, 1 when a trial failed (the message says why), 2 on bad usage.
 */
#include "portalock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define RANGE_HIGH 0xFFFF0000u /* portalocker's range, as backend.c */

typedef struct trial {
    const char *path;
    int use_portalock;
    pl_lock_t *lock;  /* portalock waiter */
    HANDLE raw;       /* raw waiter's synchronous handle */
    HANDLE started;   /* set by the waiter right before it waits */
    LARGE_INTEGER at; /* when the waiter's call returned */
    int rc;           /* 0, or what failed */
    char msg[256];
} trial_t;

static double qpc_us(LONGLONG ticks) {
    static LARGE_INTEGER f;
    if (f.QuadPart == 0)
        QueryPerformanceFrequency(&f);
    return (double)ticks * 1e6 / (double)f.QuadPart;
}

static HANDLE open_sync(const char *path) {
    return CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                       NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
}

static int raw_lock(HANDLE h, DWORD flags) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    return LockFileEx(h, flags, 0, 0, RANGE_HIGH, &ov) ? 0 : -1;
}

static void raw_unlock(HANDLE h) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    UnlockFileEx(h, 0, 0, RANGE_HIGH, &ov);
}

static DWORD WINAPI waiter(LPVOID arg) {
    trial_t *t = arg;
    SetEvent(t->started);
    if (t->use_portalock) {
        int rc = pl_lock_acquire(t->lock);
        QueryPerformanceCounter(&t->at);
        if (rc != PL_OK) {
            t->rc = -1;
            snprintf(t->msg, sizeof(t->msg), "pl_lock_acquire: %s",
                     pl_lock_errmsg(t->lock));
            return 0;
        }
        pl_lock_release(t->lock);
    } else {
        int rc = raw_lock(t->raw, LOCKFILE_EXCLUSIVE_LOCK);
        QueryPerformanceCounter(&t->at);
        if (rc != 0) {
            t->rc = -1;
            snprintf(t->msg, sizeof(t->msg), "LockFileEx: error %lu",
                     (unsigned long)GetLastError());
            return 0;
        }
        raw_unlock(t->raw);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p) {
    int i = (int)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* One handoff; the holder's handle h holds the lock on entry and again on
 * return.  Returns microseconds, or -1 with t->msg. */
static double one(HANDLE h, trial_t *t, DWORD settle_ms) {
    LARGE_INTEGER released;
    HANDLE th;
    t->rc = 0;
    ResetEvent(t->started);
    th = CreateThread(NULL, 0, waiter, t, 0, NULL);
    if (th == NULL) {
        snprintf(t->msg, sizeof(t->msg), "CreateThread: error %lu",
                 (unsigned long)GetLastError());
        return -1;
    }
    WaitForSingleObject(t->started, INFINITE);
    Sleep(settle_ms);
    QueryPerformanceCounter(&released);
    raw_unlock(h);
    WaitForSingleObject(th, INFINITE);
    CloseHandle(th);
    if (t->rc != 0)
        return -1;
    if (raw_lock(h, LOCKFILE_EXCLUSIVE_LOCK) != 0) {
        snprintf(t->msg, sizeof(t->msg), "holder re-lock: error %lu",
                 (unsigned long)GetLastError());
        return -1;
    }
    return qpc_us(t->at.QuadPart - released.QuadPart);
}

static void print_row(const char *who, double *v, int n, const char *extra) {
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf(
        "handoff waiter=%s trials=%d p50_us=%.1f p99_us=%.1f max_us=%.1f%s\n",
        who, n, pct(v, n, 0.5), pct(v, n, 0.99), v[n - 1], extra);
}

int main(int argc, char **argv) {
    int trials = 200, i;
    DWORD settle = 20;
    char dir[MAX_PATH] = "", path[MAX_PATH + 64], extra[64];
    double *raw_us, *our_us;
    pl_lock_options_t o;
    pl_probe_t probe;
    trial_t t;
    HANDLE h;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc)
            trials = atoi(argv[++i]);
        else if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc)
            settle = (DWORD)atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: pl_win_handoff [--trials N] "
                            "[--settle-ms MS] [--dir DIR]\n");
            return 2;
        }
    }
    if (trials < 1 || trials > 100000) {
        fprintf(stderr, "pl_win_handoff: --trials 1..100000\n");
        return 2;
    }
    if (dir[0] == '\0' && GetTempPathA(sizeof(dir), dir) == 0)
        snprintf(dir, sizeof(dir), ".");
    snprintf(path, sizeof(path), "%s\\pl-win-handoff-%lu.lock", dir,
             (unsigned long)GetCurrentProcessId());
    raw_us = calloc((size_t)trials, sizeof(double));
    our_us = calloc((size_t)trials, sizeof(double));
    memset(&t, 0, sizeof(t));
    t.path = path;
    t.started = CreateEventA(NULL, TRUE, FALSE, NULL);
    h = open_sync(path);
    t.raw = open_sync(path);
    pl_lock_options_init(&o);
    o.timeout = 30;
    o.check_interval = 0.25; /* portalocker's default */
    o.backend = PL_BACKEND_LOCKFILEEX;
    if (raw_us == NULL || our_us == NULL || t.started == NULL ||
        h == INVALID_HANDLE_VALUE || t.raw == INVALID_HANDLE_VALUE ||
        pl_lock_open(&t.lock, path, &o) != PL_OK) {
        fprintf(stderr, "pl_win_handoff: setup failed for %s (error %lu)\n",
                path, (unsigned long)GetLastError());
        return 1;
    }
    if (raw_lock(h, LOCKFILE_EXCLUSIVE_LOCK) != 0) {
        fprintf(stderr, "pl_win_handoff: first lock failed (error %lu)\n",
                (unsigned long)GetLastError());
        return 1;
    }
    for (i = 0; i < trials; i++) {
        /* Alternate which kind goes first, so neither always follows the
         * other. */
        int k;
        for (k = 0; k < 2; k++) {
            int ours = (i + k) % 2;
            double us;
            t.use_portalock = ours;
            us = one(h, &t, settle);
            if (us < 0) {
                fprintf(stderr, "pl_win_handoff: trial %d (%s): %s\n", i + 1,
                        ours ? "portalock" : "raw", t.msg);
                return 1;
            }
            (ours ? our_us : raw_us)[i] = us;
        }
    }
    raw_unlock(h);
    CloseHandle(h);
    CloseHandle(t.raw);
    pl_lock_close(t.lock);
    DeleteFileA(path);
    snprintf(extra, sizeof(extra), " wait=%s",
             pl_probe(dir, &probe, NULL) == PL_OK &&
                     (probe.blocking_ok & (1u << PL_BACKEND_LOCKFILEEX))
                 ? "kernel"
                 : "poll");
    print_row("raw", raw_us, trials, "");
    print_row("portalock", our_us, trials, extra);
    printf("ratio_p50=%.2f ratio_p99=%.2f\n",
           pct(our_us, trials, 0.5) / pct(raw_us, trials, 0.5),
           pct(our_us, trials, 0.99) / pct(raw_us, trials, 0.99));
    free(raw_us);
    free(our_us);
    return 0;
}
