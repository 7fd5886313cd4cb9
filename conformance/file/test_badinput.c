/*
 * test_badinput.c -- bad lock paths through the protocol and through the
 * portalock CLI: a missing directory, a directory as the lock path, a
 * read-only directory and a file without permission (as uid 65534 via
 * setpriv, since root bypasses both), a name longer than NAME_MAX.  Each
 * must give a clear error (the right code, a message naming the file) and
 * create nothing.
 *
 * The CLI is a drop-in for flock(1), so it answers as flock(1) does: a lock
 * file that cannot be opened exits 66 (EX_NOINPUT, "cannot open lock file
 * F: ..."); a directory is opened read-only and locked, so with flock the
 * command runs, while an exclusive fcntl lock (lockf, OFD) needs a
 * descriptor open for writing and the lock call fails with EBADF: exit 65
 * (EX_DATAERR), as flock(1) --fcntl does.
 */
#include "common.h"

#include "portalock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef PLT_CLI_PATH
# define PLT_CLI_PATH ""
#endif

typedef struct bad_case {
    const char *name;
    char path[4096];
    const char *want; /* PL_E... */
    int want_errno;   /* what the filesystem itself must say */
    int as_nobody;
    int cli_exit; /* the CLI's exit status, as flock(1) gives it */
} bad_case_t;

/*
 * What the filesystem answers for the case, without the lock library: the
 * errno of a plain open(), as root or as uid 65534 in a forked child.  A
 * network or FUSE filesystem may not enforce permissions for the local uid
 * (sshfs acts as the server-side user) or may report another errno; then the
 * case says nothing about the implementation and is not run.  A file the
 * probe managed to create is removed again.
 */
static int fs_errno(const bad_case_t *c) {
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (c->as_nobody ? O_CREAT : 0);
    struct stat before;
    int existed = lstat(c->path, &before) == 0;
    int status, e;
    pid_t pid;

    if (!c->as_nobody) {
        int fd = open(c->path, flags, 0644);
        if (fd < 0)
            return errno;
        close(fd);
        return 0;
    }
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(255);
        fd = open(c->path, flags, 0644);
        _exit(fd < 0 ? (errno & 0xff) : 0);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    e = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    if (e == 0 && !existed)
        unlink(c->path);
    return e;
}

static int dir_is_empty(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", path);
    return system(cmd) == 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/* Builds the cases; returns their number. */
static int make_cases(bad_case_t *c) {
    char ro[4096], secret[4096], adir[4096], longname[NAME_MAX + 40];
    int n = 0, fd;

    memset(c, 0, 5 * sizeof(*c));
    plt_path(adir, sizeof(adir), "adir");
    cr_assert(mkdir(adir, 0755) == 0);
    plt_path(ro, sizeof(ro), "ro");
    cr_assert(mkdir(ro, 0755) == 0 && chmod(ro, 0555) == 0);
    plt_path(secret, sizeof(secret), "secret.lock");
    fd = open(secret, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert(chmod(secret, 0600) == 0);
    memset(longname, 'n', NAME_MAX + 10);
    strcpy(longname + NAME_MAX + 10, ".lock");

    c[n].name = "missing directory";
    plt_path(c[n].path, sizeof(c[n].path), "missing/sub/x.lock");
    c[n].want_errno = ENOENT;
    c[n].cli_exit = 66;
    c[n++].want = "PL_ENOENT";
    c[n].name = "directory as lock path";
    plt_path(c[n].path, sizeof(c[n].path), "adir");
    c[n].want_errno = EISDIR;
    c[n].cli_exit = strcmp(plt_backend(), "flock") == 0 ? 0 : 65;
    c[n++].want = "PL_EISDIR";
    c[n].name = "name longer than NAME_MAX";
    plt_path(c[n].path, sizeof(c[n].path), longname);
    c[n].want_errno = ENAMETOOLONG;
    c[n].cli_exit = 66;
    c[n++].want = "PL_ENAMETOOLONG";
    c[n].name = "read-only directory (uid 65534)";
    plt_path(c[n].path, sizeof(c[n].path), "ro/x.lock");
    c[n].as_nobody = 1;
    c[n].want_errno = EACCES;
    c[n].cli_exit = 66;
    c[n++].want = "PL_EACCES";
    c[n].name = "file without permission (uid 65534)";
    plt_path(c[n].path, sizeof(c[n].path), "secret.lock");
    c[n].as_nobody = 1;
    c[n].want_errno = EACCES;
    c[n].cli_exit = 66;
    c[n++].want = "PL_EACCES";
    return n;
}

/* Records and reports a case the filesystem cannot stage; 1 if it applies. */
static int applies(const bad_case_t *c) {
    int e = fs_errno(c);
    if (e == c->want_errno)
        return 1;
    plt_observe(c->name, "not run: %s itself answers %s to open(), not %s",
                plt_fs(), e == 0 ? "success" : strerror(e),
                strerror(c->want_errno));
    fprintf(stderr,
            "[conformance] %s: %s: not run: the filesystem answers "
            "%s, not %s\n",
            plt_fs(), c->name, e == 0 ? "success" : strerror(e),
            strerror(c->want_errno));
    return 0;
}

/* Nothing was created or changed by a failed attempt. */
static void check_nothing_created(const bad_case_t *c, const char *who) {
    char p[4096];
    struct stat st;
    plt_check(!sc_exists(plt_path(p, sizeof(p), "missing")),
              "%s: %s created the missing directory", c->name, who);
    plt_check(stat(plt_path(p, sizeof(p), "adir"), &st) == 0 &&
                  S_ISDIR(st.st_mode) &&
                  dir_is_empty(plt_path(p, sizeof(p), "adir")),
              "%s: %s changed the directory used as a path", c->name, who);
    plt_check(dir_is_empty(plt_path(p, sizeof(p), "ro")),
              "%s: %s created a file in the read-only directory", c->name, who);
    plt_check(stat(plt_path(p, sizeof(p), "secret.lock"), &st) == 0 &&
                  st.st_uid == 0 && (st.st_mode & 07777) == 0600 &&
                  st.st_size == 0,
              "%s: %s changed the protected file", c->name, who);
}

PLT_TEST(badinput, protocol) {
    plt_proc_t *a = sc_begin("bad_input", "lock", NULL);
    plt_proc_t *nobody = NULL;
    bad_case_t c[8];
    char why[512];
    int n, i, nobody_ok;

    n = make_cases(c);
    if (a->windows)
        /* Wine runs only as the owner of its prefix ("is not owned by
         * you"), and Windows has ACLs, not uid 65534. */
        snprintf(why, sizeof(why),
                 "the subject is a Windows program (platform=windows): under "
                 "Wine it cannot run as another user than its prefix's "
                 "owner");
    nobody_ok =
        !a->windows && plt_nobody_can_run(PLT_SUBJECT, why, sizeof(why));
    if (!nobody_ok)
        fprintf(stderr,
                "[conformance] bad_input: the uid 65534 cases are "
                "not run: %s\n",
                why);
    for (i = 0; i < n; i++) {
        plt_proc_t *p = a;
        plt_reply_t r;
        char id[16];
        if (c[i].as_nobody) {
            if (!nobody_ok) {
                plt_observe(c[i].name, "not run: %s", why);
                continue;
            }
            if (nobody == NULL)
                nobody = plt_start_impl("nobody", PLT_SUBJECT, 1);
            p = nobody;
        }
        if (!applies(&c[i]))
            continue;
        snprintf(id, sizeof(id), "b%d", i);
        plt_cmd(p, &r, PLT_REPLY, "open id=%s kind=lock path=%s backend=%s", id,
                plt_q(c[i].path), plt_backend());
        if (plt_is(&r, "opened")) {
            plt_reply_free(&r);
            plt_cmd(p, &r, PLT_REPLY, "acquire id=%s timeout=0", id);
        }
        plt_observe(c[i].name, "%s", r.line);
        if (plt_check(plt_is(&r, "error") && strcmp(r.code, c[i].want) == 0,
                      "%s: %s (want error %s)", c[i].name, r.line, c[i].want) &&
            strcmp(c[i].want, "PL_ENAMETOOLONG") != 0)
            plt_check(strstr(r.msg, base_name(c[i].path)) != NULL,
                      "%s: the message does not name the file: %s", c[i].name,
                      r.msg);
        plt_reply_free(&r);
        check_nothing_created(&c[i], a->impl);
    }
    plt_finish();
}

/* Whether uid 65534 may access path (mode as for access()). */
static int nobody_access(const char *path, int mode) {
    int status;
    pid_t pid;
    if (geteuid() != 0)
        return 0;
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        _exit(access(path, mode) == 0 ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Runs the CLI; returns the wait status, stderr into err. */
static int run_cli(char *const argv[], int as_nobody, char *err, size_t len) {
    char errpath[4096];
    char *full[32];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int n = 0, i, status = -1;
    long got;

    plt_path(errpath, sizeof(errpath), "cli.stderr");
    if (as_nobody) {
        full[n++] = "/usr/bin/setpriv";
        full[n++] = "--reuid=65534";
        full[n++] = "--regid=65534";
        full[n++] = "--clear-groups";
    }
    for (i = 0; argv[i] != NULL && n < 31; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errpath,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    cr_assert(posix_spawn(&pid, full[0], &fa, NULL, full, environ) == 0,
              "cannot run %s", full[0]);
    posix_spawn_file_actions_destroy(&fa);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    got = sc_read_file(errpath, err, len);
    if (got < 0)
        err[0] = '\0';
    unlink(errpath);
    return status;
}

PLT_TEST(badinput, cli) {
    plt_proc_t *a = sc_begin("bad_input_cli", NULL, NULL);
    bad_case_t c[8];
    char marker[4096], err[4096];
    int n, i;

    if (strcmp(a->impl, "portalock") != 0)
        plt_not_applicable("the CLI is portalock's, the subject is %s",
                           a->impl);
    if (PLT_CLI_PATH[0] == '\0' || access(PLT_CLI_PATH, X_OK) != 0)
        plt_not_applicable("the portalock CLI is not built (%s)", PLT_CLI_PATH);
    {
        /* The CLI run is the suite's own (native) one, whatever the
         * contender: it cannot take a backend of another platform (a
         * Windows subject's lockfileex; portalock.exe is tested by
         * ci/windows.sh). */
        pl_backend_t b;
        if (pl_backend_from_name(plt_backend(), &b) != PL_OK ||
            !pl_backend_available(b))
            plt_not_applicable("the native CLI (%s) has no %s backend",
                               PLT_CLI_PATH, plt_backend());
    }
    n = make_cases(c);
    plt_path(marker, sizeof(marker), "ran");
    for (i = 0; i < n; i++) {
        char *argv[] = {PLT_CLI_PATH, "-n",
                        "--backend",  (char *)plt_backend(),
                        c[i].path,    "/usr/bin/touch",
                        marker,       NULL};
        int status;
        if (c[i].as_nobody &&
            (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0 ||
             !nobody_access(PLT_CLI_PATH, X_OK) ||
             !nobody_access(plt_dir(), X_OK))) {
            plt_observe(c[i].name,
                        "not run: uid 65534 cannot run %s here "
                        "(not root, no setpriv, or no access)",
                        PLT_CLI_PATH);
            continue;
        }
        if (!applies(&c[i]))
            continue;
        status = run_cli(argv, c[i].as_nobody, err, sizeof(err));
        err[strcspn(err, "\n")] = '\0';
        plt_observe(c[i].name, "exit %d: %s",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
        plt_check(WIFEXITED(status) && WEXITSTATUS(status) == c[i].cli_exit,
                  "%s: portalock exited with status 0x%x (want %d, as "
                  "flock(1)): %s",
                  c[i].name, status, c[i].cli_exit, err);
        if (c[i].cli_exit == 0) {
            /* A directory locked as flock(1) locks it: the command ran. */
            plt_check(sc_exists(marker), "%s: the command did not run",
                      c[i].name);
        } else {
            plt_check(strncmp(err, "portalock: ", 11) == 0 && strlen(err) > 11,
                      "%s: no clear message on stderr: '%s'", c[i].name, err);
            if (strcmp(c[i].want, "PL_ENAMETOOLONG") != 0)
                plt_check(strstr(err, base_name(c[i].path)) != NULL,
                          "%s: the message does not name the file: %s",
                          c[i].name, err);
            plt_check(!sc_exists(marker),
                      "%s: the command ran without the lock", c[i].name);
        }
        unlink(marker);
        check_nothing_created(&c[i], "portalock CLI");
    }
    plt_finish();
}
