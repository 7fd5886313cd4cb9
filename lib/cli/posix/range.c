/*
 * range.c -- flock(1)'s --start/--length: a byte-range fcntl() lock.
 *
 * The library locks whole files (portalocker has no ranges), so the CLI
 * takes ranges itself, as util-linux flock(1) does: F_OFD_SETLK(W) (or
 * F_SETLK(W), process-owned, for the lockf backend) on [start, start+len),
 * len 0 meaning "to the end of the file and beyond".  A timeout is an
 * ITIMER_REAL whose SIGALRM handler is installed without SA_RESTART, so the
 * blocked F_*SETLKW returns EINTR at the deadline; the CLI owns its process
 * and its signals, the library never does this.  POSIX only.
 *
 * The deadline may strike before the call is entered (a -w of a few
 * microseconds, or a forwarded signal's EINTR just before it): the handler
 * only sets a flag, which the blocked call never sees.  So the timer keeps
 * firing every CLI_RANGE_RETRY_US until disarmed, and once the flag is set
 * the loop makes one last non-blocking attempt (the range may have been
 * granted at that instant) instead of blocking again.
 *
 * SIGALRM may be blocked in the mask portalock inherited: the timer's
 * signal would then stay pending and the wait never end (util-linux
 * flock(1) hangs so).  It is unblocked for the wait and blocked again
 * after; a SIGALRM already pending (blocked, so never meant for us) is
 * consumed first rather than taken for the deadline.
 */
#include "../cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

/* OFD locks (Linux >= 3.15).  Headers without them (macOS, the BSDs) get
 * process-owned F_SETLK(W) locks for every backend: the CLI holds them
 * for as long as it runs (exec keeps them), but with the descriptor form a
 * range lock ends when the CLI exits, where an OFD lock stays with the
 * descriptor.  A Linux number here would be some other command there. */
#ifdef F_OFD_SETLK
# define CLI_OFD_SETLK  F_OFD_SETLK
# define CLI_OFD_SETLKW F_OFD_SETLKW
#else
# define CLI_OFD_SETLK  F_SETLK
# define CLI_OFD_SETLKW F_SETLKW
#endif

#define CLI_RANGE_RETRY_US 10000

static volatile sig_atomic_t cli_range_expired;

static void cli_range_alarm(int sig) {
    (void)sig;
    cli_range_expired = 1;
}

int cli_lock_range(pl_fd_t fd, cli_op_t op, pl_backend_t backend,
                   long long start, long long length, double timeout,
                   int *os_error) {
    struct sigaction sa, ign, old_sa;
    struct itimerval it, old_it;
    struct flock fl;
    sigset_t alrm, old_mask;
    int ofd = backend != PL_BACKEND_LOCKF;
    int cmd, rc = PL_OK, armed = 0;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = op == CLI_OP_UNLOCK   ? F_UNLCK
                : op == CLI_OP_SHARED ? F_RDLCK
                                      : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)start;
    fl.l_len = (off_t)length;
    *os_error = 0;
    if (timeout == 0 || op == CLI_OP_UNLOCK) {
        cmd = ofd ? CLI_OFD_SETLK : F_SETLK;
    } else {
        cmd = ofd ? CLI_OFD_SETLKW : F_SETLKW;
        if (timeout > 0) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = cli_range_alarm;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = 0; /* no SA_RESTART: the wait must end */
            memset(&it, 0, sizeof(it));
            it.it_value.tv_sec = (time_t)timeout;
            it.it_value.tv_usec =
                (suseconds_t)((timeout - (double)it.it_value.tv_sec) * 1e6);
            if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
                it.it_value.tv_usec = 1;
            it.it_interval.tv_usec = CLI_RANGE_RETRY_US;
            cli_range_expired = 0;
            sigemptyset(&alrm);
            sigaddset(&alrm, SIGALRM);
            sigprocmask(SIG_BLOCK, &alrm, &old_mask);
            /* Setting SIG_IGN discards a pending SIGALRM, blocked or not
             * (POSIX; sigtimedwait would do it too, but macOS and OpenBSD
             * lack it), and records the disposition to restore. */
            memset(&ign, 0, sizeof(ign));
            ign.sa_handler = SIG_IGN;
            sigemptyset(&ign.sa_mask);
            sigaction(SIGALRM, &ign, &old_sa);
            sigaction(SIGALRM, &sa, NULL);
            if (setitimer(ITIMER_REAL, &it, &old_it) != 0) {
                *os_error = errno;
                sigaction(SIGALRM, &old_sa, NULL);
                sigprocmask(SIG_SETMASK, &old_mask, NULL);
                return PL_EOS;
            }
            sigprocmask(SIG_UNBLOCK, &alrm, NULL);
            armed = 1;
        }
    }
    for (;;) {
        int e;
        if (armed && cli_range_expired)
            cmd = ofd ? CLI_OFD_SETLK : F_SETLK; /* the last attempt */
        if (fcntl((int)fd, cmd, &fl) == 0)
            break;
        e = errno;
        if (e == EINTR)
            continue; /* the deadline, or another signal: looked at above */
        if (e == EAGAIN || e == EACCES) /* POSIX allows either */
            rc = armed ? PL_ETIMEDOUT : PL_ELOCKED;
        else {
            rc = PL_EOS;
            *os_error = e;
        }
        break;
    }
    if (armed) {
        memset(&it, 0, sizeof(it));
        setitimer(ITIMER_REAL, &it, NULL);
        sigaction(SIGALRM, &old_sa, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    }
    return rc;
}
