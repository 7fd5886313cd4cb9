/*
 * plfwd_selftest -- checks the lock guarantees plfwd.c promises, on two
 * mounts of one backing directory (ci/fs.sh setup plfwd gives them):
 *
 *     plfwd_selftest DIR DIR2 BACKING
 *
 * Every check runs contenders as forked children that open the file on their
 * own (a new open file description and, for POSIX locks, a new owner) and
 * report ACQUIRED or BUSY through their exit status.  Prints one "ok"/"not
 * ok" line per check; exits 0 if all passed, 1 otherwise.  Times are only
 * bounded generously (the machine is shared): a blocking wait must wake
 * within 5 s of the release, an interrupted wait must end within 3 s (plfwd
 * may take up to ~1 s to abandon a wait, see plfwd.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { K_FLOCK, K_POSIX, K_OFD };
static const char *const kind_name[] = {"flock", "posix", "ofd"};

enum { ACQUIRED = 10, BUSY = 11, FAILED = 12 };

static int failures;

static void check(int ok, const char *what, const char *where) {
    printf("%s - %s (%s)\n", ok ? "ok" : "not ok", what, where);
    fflush(stdout);
    if (!ok)
        failures++;
}

static double now(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One lock attempt on fd; block = wait.  Returns 0 or -1 with errno. */
static int lock(int fd, enum kind k, int block) {
    struct flock fl;

    if (k == K_FLOCK)
        return flock(fd, LOCK_EX | (block ? 0 : LOCK_NB));
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (k == K_POSIX)
        return fcntl(fd, block ? F_SETLKW : F_SETLK, &fl);
    return fcntl(fd, block ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}

static int is_busy(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EACCES;
}

/* A child opens path and tries once: ACQUIRED, BUSY or FAILED. */
static int try_in_child(const char *path, enum kind k) {
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(path, O_RDWR);
        if (fd == -1)
            _exit(FAILED);
        if (lock(fd, k, 0) == 0)
            _exit(ACQUIRED);
        _exit(is_busy(errno) ? BUSY : FAILED);
    }
    if (pid == -1 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return FAILED;
    return WEXITSTATUS(status);
}

/* A child holds the lock on path for secs; returns its pid once held. */
static pid_t hold_in_child(const char *path, enum kind k, double secs) {
    int p[2];
    char c = 0;
    pid_t pid;

    if (pipe(p) == -1)
        return -1;
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {(time_t)secs,
                              (long)((secs - (double)(time_t)secs) * 1e9)};
        int fd = open(path, O_RDWR);
        if (fd == -1 || lock(fd, k, 1) == -1)
            _exit(FAILED);
        (void)!write(p[1], "x", 1);
        nanosleep(&ts, NULL);
        _exit(0);
    }
    close(p[1]);
    if (pid == -1 || read(p[0], &c, 1) != 1) {
        close(p[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        return -1;
    }
    close(p[0]);
    return pid;
}

static void on_alarm(int sig) {
    (void)sig;
}

int main(int argc, char *argv[]) {
    char a[4096], b[4096], s[4096], where[64];
    struct sigaction sa;
    int k;

    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR DIR2 BACKING\n", argv[0]);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: waits end with EINTR */
    sigaction(SIGALRM, &sa, NULL);

    for (k = K_FLOCK; k <= K_OFD; k++) {
        int fd;
        pid_t holder;
        double t0, dt;
        int r, e;

        snprintf(a, sizeof(a), "%s/selftest-%s", argv[1], kind_name[k]);
        snprintf(b, sizeof(b), "%s/selftest-%s", argv[2], kind_name[k]);
        snprintf(s, sizeof(s), "%s/selftest-%s", argv[3], kind_name[k]);
        snprintf(where, sizeof(where), "%s", kind_name[k]);
        fd = open(a, O_RDWR | O_CREAT, 0644);
        if (fd == -1) {
            check(0, "create the lock file through mount 1", where);
            continue;
        }
        /* Exclusion across the mounts and against the backing file. */
        check(lock(fd, k, 0) == 0, "lock through mount 1", where);
        check(try_in_child(a, k) == BUSY, "same mount excluded", where);
        check(try_in_child(b, k) == BUSY, "mount 2 excluded", where);
        check(try_in_child(s, k) == BUSY, "backing file excluded", where);
        close(fd);
        check(try_in_child(b, k) == ACQUIRED, "close released it", where);

        /* A holder on the backing file excludes both mounts. */
        holder = hold_in_child(s, k, 0.5);
        check(holder > 0 && try_in_child(a, k) == BUSY &&
                  try_in_child(b, k) == BUSY,
              "backing holder excludes both mounts", where);
        if (holder > 0)
            waitpid(holder, NULL, 0);

        /* A blocking wait through mount 1 wakes when mount 2 releases. */
        holder = hold_in_child(b, k, 0.3);
        fd = open(a, O_RDWR);
        t0 = now();
        r = holder > 0 && fd != -1 ? lock(fd, k, 1) : -1;
        dt = now() - t0;
        check(r == 0 && dt > 0.1 && dt < 5.0, "blocking wait wakes on release",
              where);
        if (holder > 0)
            waitpid(holder, NULL, 0);
        if (fd != -1)
            close(fd);

        /* An interrupted wait ends with EINTR and takes no lock. */
        holder = hold_in_child(b, k, 4.0);
        fd = open(a, O_RDWR);
        t0 = now();
        alarm(1);
        r = holder > 0 && fd != -1 ? lock(fd, k, 1) : 0;
        e = errno;
        alarm(0);
        dt = now() - t0;
        check(r == -1 && e == EINTR && dt < 3.0, "interrupted wait: EINTR",
              where);
        check(fd != -1 && lock(fd, k, 0) == -1 && is_busy(errno),
              "interrupted wait took no lock", where);
        if (holder > 0) {
            kill(holder, SIGKILL);
            waitpid(holder, NULL, 0);
        }
        if (fd != -1)
            close(fd);
    }

    /* POSIX owner semantics: per process, released by any close. */
    snprintf(a, sizeof(a), "%s/selftest-owner", argv[1]);
    snprintf(b, sizeof(b), "%s/selftest-owner", argv[2]);
    {
        int f1 = open(a, O_RDWR | O_CREAT, 0644), f2 = open(a, O_RDWR);

        check(f1 != -1 && f2 != -1 && lock(f1, K_POSIX, 0) == 0 &&
                  lock(f2, K_POSIX, 0) == 0,
              "one process's POSIX locks do not conflict", "posix");
        check(try_in_child(b, K_POSIX) == BUSY, "other process excluded",
              "posix");
        close(f2);
        check(try_in_child(b, K_POSIX) == ACQUIRED,
              "closing another descriptor releases", "posix");
        close(f1);
        f1 = open(a, O_RDWR);
        f2 = open(a, O_RDWR);
        check(f1 != -1 && f2 != -1 && lock(f1, K_OFD, 0) == 0 &&
                  lock(f2, K_OFD, 0) == -1,
              "two descriptions conflict", "ofd");
        close(f2);
        check(try_in_child(b, K_OFD) == BUSY,
              "closing another description keeps it", "ofd");
        close(f1);
    }
    printf("%s: %d check(s) failed\n", argv[0], failures);
    return failures == 0 ? 0 : 1;
}
