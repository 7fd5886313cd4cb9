/*
 * flock.c (POSIX) -- the flock(1) forms: FILE, DIRECTORY, FD, --fd.
 *
 * The file is opened as flock(1) opens it (read-only, created if missing;
 * write-only for an exclusive fcntl lock; a directory read-only), locked
 * through the library's pl_lock_fd_timed (or range.c for --start/--length),
 * and the descriptor is inherited by the command unless -o.
 */
#include "../cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/*
 * Opens the lock file as flock(1) does: read-only (a flock() lock and a
 * shared fcntl lock need no more), write-only for an exclusive fcntl lock,
 * created (mode 0666 & ~umask) if missing, and a directory read-only.  No
 * write access is asked for where none is needed, so a file we may only
 * read, or one on a read-only file system, can still be locked (issue 9,
 * item 10).  No O_CLOEXEC: the command inherits the descriptor (and -F
 * keeps it across exec).  On failure prints flock(1)'s message and returns
 * -1 with *status set to its exit status.
 */
static int cli_open_lockfile(const char *path, int flags, int *status) {
    int fd = open(path, flags | O_NOCTTY | O_CREAT, 0666);
    int e;

    if (fd < 0 && errno == EISDIR)
        fd = open(path, O_RDONLY | O_NOCTTY);
    if (fd >= 0)
        return fd;
    e = errno;
    fprintf(stderr, "%s: cannot open lock file %s: %s\n", cli_progname, path,
            strerror(e));
    if (e == ENOMEM || e == EMFILE || e == ENFILE)
        *status = CLI_EX_OSERR;
    else if (e == EROFS || e == ENOSPC)
        *status = CLI_EX_CANTCREAT;
    else
        *status = CLI_EX_NOINPUT;
    return -1;
}

/* One lock (or unlock) call on fd; PL_OK, contention, or PL_EOS/other with
 * *os_error. */
static int cli_lock_once(const cli_args_t *a, int fd, int *os_error) {
    pl_error_t err;
    int rc;

    *os_error = 0;
    if (a->range_set)
        return cli_lock_range(fd, a->op, a->backend, a->start, a->length,
                              a->timeout, os_error);
    memset(&err, 0, sizeof(err));
    if (a->op == CLI_OP_UNLOCK)
        rc = pl_unlock_fd((pl_fd_t)fd, a->backend, &err);
    else
        rc = pl_lock_fd_timed((pl_fd_t)fd,
                              a->op == CLI_OP_SHARED ? PL_SHARED : PL_EXCLUSIVE,
                              a->backend, a->timeout, &err);
    if (rc != PL_OK && !PL_IS_ALREADY_LOCKED(rc))
        *os_error = err.os_error;
    return rc;
}

int cli_flock_main(const cli_args_t *a) {
    int fd, rc, os_error, status, flags;
    char fdname[16];
    double t0;

    flags = (a->op == CLI_OP_EXCLUSIVE && a->backend != PL_BACKEND_FLOCK)
                ? O_WRONLY
                : O_RDONLY;
    if (a->use_fd || a->target == NULL || a->cmd_argv == NULL) {
        fd = a->use_fd ? a->fd : atoi(a->target);
        snprintf(fdname, sizeof(fdname), "%d", fd);
        if (a->backend == PL_BACKEND_LOCKF && a->cmd_argv == NULL) {
            return cli_usage_error("the lockf backend cannot lock a "
                                   "descriptor for later: its locks belong "
                                   "to the process and end when %s exits",
                                   cli_progname);
        }
    } else {
        fd = cli_open_lockfile(a->target, flags, &status);
        if (fd < 0)
            return status;
    }
    t0 = cli_now();
    rc = cli_lock_once(a, fd, &os_error);
    if ((rc == PL_EOS || rc == PL_EACCES) &&
        (os_error == EIO || os_error == EBADF) && a->target != NULL &&
        a->cmd_argv != NULL && !a->use_fd && a->op != CLI_OP_SHARED &&
        access(a->target, R_OK | W_OK) == 0) {
        /* As flock(1): probably NFSv4, where flock() is emulated with
         * fcntl() and needs a writable descriptor; reopen read-write. */
        close(fd);
        fd = cli_open_lockfile(a->target, O_RDWR, &status);
        if (fd < 0)
            return status;
        rc = cli_lock_once(a, fd, &os_error);
    }
    if (PL_IS_ALREADY_LOCKED(rc))
        return cli_conflict(a, rc, "");
    if (rc != PL_OK) {
        const char *name =
            a->use_fd || a->cmd_argv == NULL ? fdname : a->target;
        if (os_error != 0)
            fprintf(stderr, "%s: %s: %s\n", cli_progname, name,
                    strerror(os_error));
        else
            cli_error(name, NULL, rc);
        return os_error == ENOLCK || os_error == ENOMEM ? CLI_EX_OSERR
                                                        : CLI_EX_DATAERR;
    }
    cli_report_took(a, cli_now() - t0);
    if (a->target != NULL && a->cmd_argv != NULL)
        cli_report_extra(a,
                         a->op == CLI_OP_UNLOCK   ? "unlock"
                         : a->op == CLI_OP_SHARED ? "shared lock"
                                                  : "exclusive lock",
                         a->target, cli_now() - t0, a->backend);
    if (a->cmd_argv == NULL)
        return 0;
    cli_report_exec(a);
    if (a->no_fork)
        return cli_exec(a->cmd_argv, fd);
    /* The command shares the lock through the descriptor, as with flock(1),
     * unless -o or the lockf backend (whose locks are the process's): then
     * portalock holds it alone and must outlive the command. */
    status = cli_run(a->cmd_argv, a->close_fd ? -1 : fd, a->close_fd ? fd : -1,
                     a->close_fd || a->backend == PL_BACKEND_LOCKF);
    /* Like flock(1), no explicit unlock: with flock and OFD locks it would
     * also end the lock that processes left running by the command hold
     * through their copy of the descriptor.  The lock ends when the last
     * copy is closed, ours at exit. */
    return status;
}
