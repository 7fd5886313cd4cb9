/*
 * run.c -- run the command while the parent holds the lock.
 *
 * Like flock(1): fork, exec in the child, wait in the parent, and only then
 * let the caller release the lock.  The parent forwards SIGTERM, SIGINT and
 * SIGHUP to the child instead of dying from them, so the lock is released
 * only after the command has finished.  The signals are blocked across
 * fork() so that none is lost between the fork and the installation of the
 * forwarding handlers, and the child restores the original mask before
 * exec.  The child may run while another thread of ours exists (the Redis
 * lock's watcher), so between fork and exec it only makes async-signal-safe
 * calls.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Descriptors below this are tracked by cli_fds_snapshot. */
#define CLI_FD_SCAN 1024

static unsigned char cli_fds_before[CLI_FD_SCAN / 8];
static int cli_fds_taken;
static atomic_int cli_child;    /* running command's pid, 0 if none */
static atomic_int cli_kill_sig; /* signal requested by cli_request_kill */
static const int cli_forwarded[] = {SIGTERM, SIGINT, SIGHUP};
#define CLI_NFORWARDED (sizeof(cli_forwarded) / sizeof(cli_forwarded[0]))

static void cli_forward(int sig) {
    int saved = errno;
    int pid = atomic_load(&cli_child);
    if (pid > 0)
        kill((pid_t)pid, sig);
    errno = saved;
}

void cli_fds_snapshot(void) {
    int fd;
    for (fd = 0; fd < CLI_FD_SCAN; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            cli_fds_before[fd / 8] |= (unsigned char)(1u << (fd % 8));
    cli_fds_taken = 1;
}

/* Marks close-on-exec the descriptors opened since cli_fds_snapshot(). */
static void cli_fds_cloexec_new(void) {
    int fd, fl;
    if (!cli_fds_taken)
        return;
    for (fd = 3; fd < CLI_FD_SCAN; fd++) {
        if (cli_fds_before[fd / 8] & (1u << (fd % 8)))
            continue;
        fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
}

void cli_shell_argv(char *argv[4], const char *command) {
    const char *sh = getenv("SHELL");
    argv[0] = (char *)(sh != NULL && sh[0] != '\0' ? sh : "/bin/sh");
    argv[1] = (char *)"-c";
    argv[2] = (char *)command;
    argv[3] = NULL;
}

int cli_fd_check(int fd, const char *name) {
    if (fcntl(fd, F_GETFD) < 0) {
        fprintf(stderr, "portalock: %s: %s\n", name, strerror(errno));
        return CLI_EX_FAILURE;
    }
    return 0;
}

void cli_request_kill(int sig) {
    int pid;
    atomic_store(&cli_kill_sig, sig);
    pid = atomic_load(&cli_child);
    if (pid > 0)
        kill((pid_t)pid, sig);
}

/* write(2) a few strings to stderr; async-signal-safe. */
static void cli_write_err(const char *a, const char *b, const char *c) {
    const char *parts[3];
    size_t i;
    parts[0] = a;
    parts[1] = b;
    parts[2] = c;
    for (i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        const char *p = parts[i];
        while (len > 0) {
            ssize_t n = write(STDERR_FILENO, p, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            p += n;
            len -= (size_t)n;
        }
    }
}

static void cli_child_exec(char *const *argv, int keep_fd,
                           const sigset_t *mask) {
    int e;
    if (keep_fd >= 0) {
        int fl = fcntl(keep_fd, F_GETFD);
        if (fl >= 0)
            fcntl(keep_fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    /* The forwarding handlers are installed only in the parent, after the
     * fork: the child still has the original dispositions. */
    sigprocmask(SIG_SETMASK, mask, NULL);
    execvp(argv[0], argv);
    e = errno;
    cli_write_err("portalock: ", argv[0], ": ");
    cli_write_err(strerror(e), "\n", "");
    _exit(e == ENOENT || e == ENOTDIR ? CLI_EX_NOTFOUND : CLI_EX_NOEXEC);
}

int cli_run(char *const *argv, int keep_fd) {
    struct sigaction sa, old_sa[CLI_NFORWARDED];
    sigset_t block, old_mask;
    pid_t pid;
    int status = 0, failed = 0, e, sig;
    size_t i;

    cli_fds_cloexec_new();
    /* flock(1) does the same: with SIGCHLD ignored waitpid() would fail. */
    signal(SIGCHLD, SIG_DFL);
    sigemptyset(&block);
    for (i = 0; i < CLI_NFORWARDED; i++)
        sigaddset(&block, cli_forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old_mask);

    pid = fork();
    if (pid < 0) {
        e = errno;
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        cli_write_err("portalock: fork: ", strerror(e), "\n");
        return CLI_EX_FAILURE;
    }
    if (pid == 0)
        cli_child_exec(argv, keep_fd, &old_mask);

    atomic_store(&cli_child, (int)pid);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_forward;
    sa.sa_mask = block;
    sa.sa_flags = SA_RESTART;
    for (i = 0; i < CLI_NFORWARDED; i++)
        sigaction(cli_forwarded[i], &sa, &old_sa[i]);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    /* A kill requested before the child existed (e.g. a Redis lock lost
     * between acquire and fork). */
    sig = atomic_load(&cli_kill_sig);
    if (sig != 0)
        kill(pid, sig);

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            e = errno;
            cli_write_err("portalock: waitpid: ", strerror(e), "\n");
            failed = 1;
            break;
        }
    }
    sigprocmask(SIG_BLOCK, &block, NULL);
    atomic_store(&cli_child, 0);
    for (i = 0; i < CLI_NFORWARDED; i++)
        sigaction(cli_forwarded[i], &old_sa[i], NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    if (failed)
        return CLI_EX_FAILURE;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return CLI_EX_FAILURE;
}
