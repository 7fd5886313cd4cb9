/*
 * flock.c (Windows) -- flock(1)'s FILE form on Windows.
 *
 * The file is opened with CreateFileW (created if missing, read access,
 * shared for reading, writing and deletion, overlapped so that the
 * library's timed wait can block in the kernel on Windows), locked with
 * pl_lock_fd_timed (portalocker's whole-file range) or range.c
 * (--start/--length), and the handle is inherited by the command unless
 * -o: the command then shares the lock, as flock(1)'s command shares the
 * descriptor.  Differences from POSIX, all reported clearly:
 *  - no FD form (FD, --fd N): a handle number means nothing to a later
 *    command, so there is no descriptor to lock for later; a usage error
 *    (64, flock(1)'s usage status);
 *  - a directory cannot be locked (LockFileEx needs a file): 66, as for a
 *    file that cannot be opened;
 *  - -F runs the command as a child (no exec; run.c).
 * Like flock(1) there is no explicit unlock when the command shared the
 * handle (processes it left running keep the lock); with -o the lock is
 * released explicitly before portalock exits.
 */
#include "../cli.h"
#include "cli_win32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cli_open_status(DWORD e) {
    if (e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_OUTOFMEMORY ||
        e == ERROR_TOO_MANY_OPEN_FILES)
        return CLI_EX_OSERR;
    if (e == ERROR_WRITE_PROTECT || e == ERROR_DISK_FULL ||
        e == ERROR_HANDLE_DISK_FULL)
        return CLI_EX_CANTCREAT;
    return CLI_EX_NOINPUT;
}

/* Opens (creating it if missing) the lock file; on failure prints
 * flock(1)'s message and returns INVALID_HANDLE_VALUE with *status set. */
static HANDLE cli_open_lockfile(const char *path, int *status) {
    char msg[256];
    wchar_t *w = cli_win_widen(path);
    HANDLE h;
    DWORD e, attrs;

    if (w == NULL) {
        fprintf(stderr, "%s: cannot open lock file %s: not a UTF-8 path\n",
                cli_progname, path);
        *status = CLI_EX_NOINPUT;
        return INVALID_HANDLE_VALUE;
    }
    h = CreateFileW(
        w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, NULL);
    e = GetLastError();
    attrs = h == INVALID_HANDLE_VALUE ? GetFileAttributesW(w) : 0;
    free(w);
    if (h != INVALID_HANDLE_VALUE)
        return h;
    if (attrs != INVALID_FILE_ATTRIBUTES &&
        (attrs & FILE_ATTRIBUTE_DIRECTORY)) {
        fprintf(stderr,
                "%s: cannot open lock file %s: Is a directory (Windows "
                "cannot lock a directory: lock a file in it)\n",
                cli_progname, path);
        *status = CLI_EX_NOINPUT;
        return INVALID_HANDLE_VALUE;
    }
    fprintf(stderr, "%s: cannot open lock file %s: %s\n", cli_progname, path,
            cli_win_strerror(e, msg, sizeof(msg)));
    *status = cli_open_status(e);
    return INVALID_HANDLE_VALUE;
}

/* One lock (or unlock) call; PL_OK, contention, or an error with
 * *os_error (a Win32 code) when the system gave one. */
static int cli_lock_once(const cli_args_t *a, HANDLE h, int *os_error) {
    pl_error_t err;
    int rc;

    *os_error = 0;
    if (a->range_set)
        return cli_lock_range((pl_fd_t)h, a->op, a->backend, a->start,
                              a->length, a->timeout, os_error);
    memset(&err, 0, sizeof(err));
    if (a->op == CLI_OP_UNLOCK)
        rc = pl_unlock_fd((pl_fd_t)h, a->backend, &err);
    else
        rc = pl_lock_fd_timed((pl_fd_t)h,
                              a->op == CLI_OP_SHARED ? PL_SHARED : PL_EXCLUSIVE,
                              a->backend, a->timeout, &err);
    if (rc != PL_OK && !PL_IS_ALREADY_LOCKED(rc))
        *os_error = err.os_error;
    return rc;
}

int cli_flock_main(const cli_args_t *a) {
    char msg[256];
    HANDLE h;
    int rc, os_error, status;
    double t0;

    if (a->use_fd || a->target == NULL || a->cmd_argv == NULL)
        return cli_usage_error(
            "the FD form (%s) is not available on Windows: a handle number "
            "cannot be handed to a later command; give FILE and the "
            "command to run",
            a->use_fd ? "--fd N" : "a descriptor number without a command");
    h = cli_open_lockfile(a->target, &status);
    if (h == INVALID_HANDLE_VALUE)
        return status;
    t0 = cli_now();
    rc = cli_lock_once(a, h, &os_error);
    if (PL_IS_ALREADY_LOCKED(rc)) {
        CloseHandle(h);
        return cli_conflict(a, rc, "");
    }
    if (rc != PL_OK) {
        if (os_error != 0)
            fprintf(stderr, "%s: %s: %s\n", cli_progname, a->target,
                    cli_win_strerror((DWORD)os_error, msg, sizeof(msg)));
        else
            cli_error(a->target, NULL, rc);
        CloseHandle(h);
        return os_error == ERROR_NOT_ENOUGH_MEMORY ||
                       os_error == ERROR_OUTOFMEMORY
                   ? CLI_EX_OSERR
                   : CLI_EX_DATAERR;
    }
    cli_report_took(a, cli_now() - t0);
    cli_report_extra(a,
                     a->op == CLI_OP_UNLOCK   ? "unlock"
                     : a->op == CLI_OP_SHARED ? "shared lock"
                                              : "exclusive lock",
                     a->target, cli_now() - t0, a->backend);
    cli_report_exec(a);
    if (a->no_fork)
        status = cli_exec(a->cmd_argv, (pl_fd_t)h);
    else
        status = cli_run(a->cmd_argv, a->close_fd ? PL_INVALID_FD : (pl_fd_t)h,
                         PL_INVALID_FD, 1);
    if (a->close_fd && a->op != CLI_OP_UNLOCK) {
        /* The lock was ours alone: release it before the handle goes. */
        if (a->range_set)
            cli_lock_range((pl_fd_t)h, CLI_OP_UNLOCK, a->backend, a->start,
                           a->length, 0, &os_error);
        else
            pl_unlock_fd((pl_fd_t)h, a->backend, NULL);
    }
    CloseHandle(h);
    return status;
}
