/*
 * range.c (Windows) -- flock(1)'s --start/--length: a LockFileEx byte range.
 *
 * The library locks portalocker's fixed range (offset 0, length
 * 0xFFFF0000_00000000); --start/--length lock [start, start+length) of the
 * same file instead, with LockFileEx (shared or exclusive) on the handle
 * flock.c opened; length 0 means to the end of the file and beyond, here
 * up to offset 2^64-1.  All LockFileEx locks are one family: a range
 * excludes an overlapping range or whole-file lock of another handle,
 * whichever portalock (or portalocker) took it.  A wait polls with
 * LOCKFILE_FAIL_IMMEDIATELY, from 1 ms doubling to 50 ms: a timed kernel
 * wait needs the library's overlapped-I/O machinery, which serves its own
 * range only, and Wine cannot wait there anyway.  Unlocking a range that is
 * not locked is not an error, as with F_UNLCK.
 */
#include "../cli.h"
#include "cli_win32.h"

#include <stdint.h>
#include <string.h>

#define CLI_RANGE_MAX_STEP 0.05

/* One LOCKFILE_FAIL_IMMEDIATELY attempt; 0 or the Win32 error.  The handle
 * is opened for overlapped I/O: a request may report ERROR_IO_PENDING and
 * then completes at once either way. */
static DWORD try_range(HANDLE h, DWORD flags, OVERLAPPED *ov, DWORD lo,
                       DWORD hi) {
    DWORD n;
    if (LockFileEx(h, flags | LOCKFILE_FAIL_IMMEDIATELY, 0, lo, hi, ov))
        return 0;
    if (GetLastError() != ERROR_IO_PENDING)
        return GetLastError();
    if (GetOverlappedResult(h, ov, &n, TRUE))
        return 0;
    return GetLastError();
}

int cli_lock_range(pl_fd_t fd, cli_op_t op, pl_backend_t backend,
                   long long start, long long length, double timeout,
                   int *os_error) {
    HANDLE h = (HANDLE)fd;
    OVERLAPPED ov;
    uint64_t len;
    DWORD lo, hi, e, flags;
    double deadline = timeout > 0 ? cli_now() + timeout : 0, step = 0.001;

    (void)backend; /* lockfileex: the only backend */
    *os_error = 0;
    len = length != 0 ? (uint64_t)length : UINT64_MAX - (uint64_t)start;
    lo = (DWORD)(len & 0xFFFFFFFFu);
    hi = (DWORD)(len >> 32);
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)((uint64_t)start & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)((uint64_t)start >> 32);
    if (op == CLI_OP_UNLOCK) {
        if (UnlockFileEx(h, 0, lo, hi, &ov) ||
            GetLastError() == ERROR_NOT_LOCKED)
            return PL_OK;
        *os_error = (int)GetLastError();
        return PL_EOS;
    }
    flags = op == CLI_OP_SHARED ? 0 : LOCKFILE_EXCLUSIVE_LOCK;
    for (;;) {
        double left;
        e = try_range(h, flags, &ov, lo, hi);
        if (e == 0)
            return PL_OK;
        if (e != ERROR_LOCK_VIOLATION) {
            *os_error = (int)e;
            return PL_EOS;
        }
        if (timeout == 0)
            return PL_ELOCKED;
        left = timeout > 0 ? deadline - cli_now() : step;
        if (left <= 0)
            return PL_ETIMEDOUT;
        cli_sleep(step < left ? step : left);
        if (step < CLI_RANGE_MAX_STEP)
            step *= 2;
    }
}
