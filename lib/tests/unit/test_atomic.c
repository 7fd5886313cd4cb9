/*
 * test_atomic.c -- open_atomic: write a temporary file beside the
 * destination, then publish it without ever replacing an existing file.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

TestSuite(atomic, .init = plt_setup, .fini = plt_teardown, .timeout = 30.);

static pl_atomic_file_t *xopen_atomic(const char *path) {
    pl_atomic_file_t *af = NULL;
    pl_error_t e;
    int rc = pl_open_atomic(&af, path, &e);
    cr_assert(eq(int, rc, PL_OK), "pl_open_atomic(%s): %s (%s)", path,
              pl_err_name(rc), rc == PL_OK ? "" : e.msg);
    cr_assert(af != NULL);
    return af;
}

/* open() as libc's, except that O_TMPFILE is "not supported here": forces
 * the named temporary files of filesystems without O_TMPFILE. */
static int no_tmpfile_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, unsigned);
        va_end(ap);
    }
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return open(path, flags, mode);
}

static int named_temps;

static void force_named_temps(void) {
    named_temps = 1;
    pl__sys.open = no_tmpfile_open;
}

/* plt_sys_install, keeping force_named_temps in effect. */
static void sys_install(void) {
    plt_sys_install();
    if (named_temps)
        plt_real.open = no_tmpfile_open;
}

static void expect_same_dir(const char *a, const char *b) {
    char x[4096], y[4096];
    snprintf(x, sizeof(x), "%s", a);
    snprintf(y, sizeof(y), "%s", b);
    cr_expect(eq(str, dirname(x), dirname(y)), "%s is not beside %s", a, b);
}

/* Where the temporary file has a name (not O_TMPFILE), it is beside the
 * destination; the destination only appears at commit. */
Test(atomic, publishes_the_content) {
    const char *p = plt_path("out.txt");
    char buf[64], tmp[4096] = "";
    pl_error_t e;
    int fds = plt_count_fds();
    pl_atomic_file_t *af = xopen_atomic(p);
    if (pl_atomic_temp_path(af) != NULL) {
        snprintf(tmp, sizeof(tmp), "%s", pl_atomic_temp_path(af));
        cr_expect(ne(str, tmp, (char *)p));
        cr_expect(plt_exists(tmp), "no temporary file");
        expect_same_dir(tmp, p);
    } else {
        cr_expect(eq(int, plt_dir_entries(plt_dir), 0),
                  "an anonymous temporary file has a name");
    }
    cr_expect(eq(int, plt_exists(p), 0), "destination visible before commit");
    FILE *f = pl_atomic_fp(af);
    cr_assert(f != NULL);
    cr_expect(eq(ptr, pl_atomic_fp(af), f));
    fputs("hello", f);
    int rc = pl_atomic_commit(af, &e);
    cr_expect(eq(int, rc, PL_OK), "%s", rc == PL_OK ? "" : e.msg);
    cr_expect(eq(long, plt_read_file(p, buf, sizeof(buf)), 5L));
    cr_expect(eq(str, buf, "hello"));
    if (tmp[0] != '\0')
        cr_expect(eq(int, plt_exists(tmp), 0), "temporary file left behind");
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1));
    cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
}

Test(atomic, publishes_an_empty_file) {
    const char *p = plt_path("empty");
    struct stat st;
    pl_atomic_file_t *af = xopen_atomic(p);
    cr_expect(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    cr_assert(eq(int, stat(p, &st), 0));
    cr_expect(eq(long, (long)st.st_size, 0L));
}

Test(atomic, publishes_large_content) {
    const char *p = plt_path("big");
    struct stat st;
    static char block[4096];
    memset(block, 'z', sizeof(block));
    pl_atomic_file_t *af = xopen_atomic(p);
    for (int i = 0; i < 256; i++)
        cr_assert(eq(sz, fwrite(block, 1, sizeof(block), pl_atomic_fp(af)),
                     sizeof(block)));
    cr_expect(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    cr_assert(eq(int, stat(p, &st), 0));
    cr_expect(eq(long, (long)st.st_size, 256L * 4096L));
}

Test(atomic, existing_destination_is_eexist_at_open) {
    const char *p = plt_path("out.txt");
    pl_atomic_file_t *af = (pl_atomic_file_t *)&af;
    pl_error_t e;
    plt_write_file(p, "theirs");
    int rc = pl_open_atomic(&af, p, &e);
    cr_expect(eq(int, rc, PL_EEXIST));
    cr_expect(eq(int, e.code, PL_EEXIST));
    cr_expect(eq(ptr, af, NULL));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1), "temporary file created");
}

/* The name of the one "*.kept" file in plt_dir, or "" (static buffer). */
static const char *kept_file(void) {
    static char name[4200];
    DIR *d = opendir(plt_dir);
    struct dirent *ent;
    name[0] = '\0';
    cr_assert(d != NULL);
    while ((ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (n > 5 && strcmp(ent->d_name + n - 5, ".kept") == 0)
            snprintf(name, sizeof(name), "%s/%s", plt_dir, ent->d_name);
    }
    closedir(d);
    return name;
}

/* Someone publishes first: we never replace their file, and keep ours
 * (named in the message) so no data is lost. */
static void check_created_meanwhile(void) {
    const char *p = plt_path("out.txt");
    char buf[64];
    pl_error_t e;
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("ours", pl_atomic_fp(af));
    plt_write_file(p, "theirs");
    memset(&e, 0, sizeof(e));
    int rc = pl_atomic_commit(af, &e);
    cr_expect(eq(int, rc, PL_EEXIST));
    cr_expect(eq(int, e.code, PL_EEXIST));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "theirs"), "destination replaced");
    const char *kept = kept_file();
    cr_assert(ne(str, (char *)kept, ""), "our data was discarded (%s)", e.msg);
    cr_expect(ne(ptr, strstr(e.msg, kept), NULL),
              "message \"%s\" does not name %s", e.msg, kept);
    plt_read_file(kept, buf, sizeof(buf));
    cr_expect(eq(str, buf, "ours"));
    /* A kept file is never cleaned up, even once old and unlocked. */
    struct timespec old[2] = {{0, UTIME_OMIT}, {time(NULL) - 3600, 0}};
    cr_assert(eq(int, utimensat(AT_FDCWD, kept, old, 0), 0));
    cr_expect(eq(int, pl_open_atomic(&af, p, NULL), PL_EEXIST));
    cr_expect(plt_exists(kept), "a kept file was removed");
}

Test(atomic, destination_created_meanwhile_is_eexist_and_kept) {
    check_created_meanwhile();
}

Test(atomic, destination_created_meanwhile_is_kept_with_named_temps) {
    force_named_temps();
    check_created_meanwhile();
}

Test(atomic, abort_removes_the_temporary_file) {
    const char *p = plt_path("out.txt");
    char tmp[4096];
    int fds = plt_count_fds();
    pl_atomic_file_t *af = xopen_atomic(p);
    snprintf(tmp, sizeof(tmp), "%s", pl_atomic_temp_path(af));
    fputs("draft", pl_atomic_fp(af));
    pl_atomic_abort(af);
    cr_expect(eq(int, plt_exists(tmp), 0));
    cr_expect(eq(int, plt_exists(p), 0));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
    cr_expect(eq(int, plt_count_fds(), fds));
    pl_atomic_abort(NULL);
}

Test(atomic, creates_missing_parent_directories) {
    const char *p = plt_path("a/b/c/out.txt");
    char buf[16];
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("deep", pl_atomic_fp(af));
    cr_expect(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "deep"));
    cr_expect(eq(int, plt_dir_entries(plt_path("a/b/c")), 1));
}

Test(atomic, parent_that_is_a_file_fails) {
    pl_atomic_file_t *af = (pl_atomic_file_t *)&af;
    pl_error_t e;
    plt_write_file(plt_path("file"), "");
    int rc = pl_open_atomic(&af, plt_path("file/sub/out.txt"), &e);
    cr_expect(eq(int, rc, PL_ENOENT), "got %s", pl_err_name(rc));
    cr_expect(eq(ptr, af, NULL));
}

Test(atomic, bad_arguments_are_einval) {
    pl_atomic_file_t *af = NULL;
    cr_expect(eq(int, pl_open_atomic(NULL, plt_path("x"), NULL), PL_EINVAL));
    cr_expect(eq(int, pl_open_atomic(&af, NULL, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_open_atomic(&af, "", NULL), PL_EINVAL));
    cr_expect(eq(int, pl_atomic_commit(NULL, NULL), PL_EINVAL));
    cr_expect(eq(ptr, pl_atomic_fp(NULL), NULL));
}

static void injected(plt_sys_t which) {
    const char *p = plt_path("out.txt");
    pl_error_t e;
    pl_atomic_file_t *af = xopen_atomic(p);
    int fds = plt_count_fds();
    fputs("data", pl_atomic_fp(af));
    sys_install();
    plt_fault(which, EIO, 0, -1, NULL);
    memset(&e, 0, sizeof(e));
    int rc = pl_atomic_commit(af, &e);
    int calls = plt_sys_calls(which);
    pl__sys_reset();
    cr_expect(ge(int, calls, 1), "%s was never called", plt_sys_name(which));
    cr_expect(eq(int, rc, PL_EOS), "%s: got %s", plt_sys_name(which),
              pl_err_name(rc));
    cr_expect(eq(int, e.code, rc));
    cr_expect(eq(int, e.os_error, EIO));
    cr_expect(plt_contains_any(e.msg, plt_sys_words(which)),
              "message \"%s\" does not name %s", e.msg, plt_sys_name(which));
    cr_expect(eq(int, plt_exists(p), 0), "published despite a failed %s",
              plt_sys_name(which));
    cr_expect(eq(int, plt_count_fds(), fds - 1), "descriptor leaked");
}

Test(atomic, fsync_failure_is_reported) {
    injected(PLT_SYS_FSYNC);
}

Test(atomic, link_failure_is_reported) {
    injected(PLT_SYS_LINKAT); /* anonymous temporary files: linkat */
}

Test(atomic, link_failure_is_reported_with_named_temps) {
    force_named_temps();
    injected(PLT_SYS_LINK);
}

Test(atomic, open_failure_is_reported) {
    pl_atomic_file_t *af = (pl_atomic_file_t *)&af;
    pl_error_t e;
    int fds = plt_count_fds();
    plt_sys_install();
    plt_fault(PLT_SYS_OPEN, EIO, 0, -1, NULL);
    int rc = pl_open_atomic(&af, plt_path("out.txt"), &e);
    pl__sys_reset();
    cr_expect(eq(int, rc, PL_EOS), "got %s", pl_err_name(rc));
    cr_expect(eq(int, e.os_error, EIO));
    cr_expect(plt_contains_any(e.msg, plt_sys_words(PLT_SYS_OPEN)), "%s",
              e.msg);
    cr_expect(eq(ptr, af, NULL));
    cr_expect(eq(int, plt_count_fds(), fds));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
}

/* A published file has ordinary permissions (0666 & ~umask, as portalocker
 * 4.1.1+), not a private temporary file's 0600. */
Test(atomic, published_file_follows_the_umask) {
    const char *p = plt_path("out.txt");
    struct stat st;
    umask(022);
    pl_atomic_file_t *af = xopen_atomic(p);
    cr_expect(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    cr_assert(eq(int, stat(p, &st), 0));
    cr_expect(eq(int, (int)(st.st_mode & 0777), 0644), "mode %#o",
              (unsigned)(st.st_mode & 0777));
}

/* Filesystems without hard links (link gives EPERM): check-then-rename. */
Test(atomic, falls_back_to_rename_without_hard_links) {
    const char *p = plt_path("out.txt");
    char buf[16];
    pl_error_t e;
    force_named_temps(); /* O_TMPFILE filesystems all have hard links */
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("fallback", pl_atomic_fp(af));
    sys_install();
    plt_fault(PLT_SYS_LINK, EPERM, 0, -1, NULL);
    int rc = pl_atomic_commit(af, &e);
    int renames = plt_sys_calls(PLT_SYS_RENAME);
    pl__sys_reset();
    cr_expect(eq(int, rc, PL_OK), "%s", rc == PL_OK ? "" : e.msg);
    cr_expect(ge(int, renames, 1));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "fallback"));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1), "temporary file left");
}

Test(atomic, rename_fallback_never_replaces) {
    const char *p = plt_path("out.txt");
    char buf[16];
    pl_error_t e;
    force_named_temps();
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("ours", pl_atomic_fp(af));
    plt_write_file(p, "theirs");
    sys_install();
    plt_fault(PLT_SYS_LINK, EPERM, 0, -1, NULL);
    int rc = pl_atomic_commit(af, &e);
    pl__sys_reset();
    cr_expect(eq(int, rc, PL_EEXIST), "got %s", pl_err_name(rc));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "theirs"));
    const char *kept = kept_file();
    cr_assert(ne(str, (char *)kept, ""), "our data was discarded (%s)", e.msg);
    plt_read_file(kept, buf, sizeof(buf));
    cr_expect(eq(str, buf, "ours"));
}

/* A relative path is fixed at open: a chdir before commit publishes into
 * the directory the temporary file is in, not into the new one. */
Test(atomic, relative_path_is_fixed_at_open) {
    char here[4096], name[64], stray[80], buf[16];
    pl_error_t e;
    snprintf(name, sizeof(name), "pl-unit-atomic-%ld.txt", (long)getpid());
    snprintf(stray, sizeof(stray), "/%s", name);
    cr_assert(getcwd(here, sizeof(here)) != NULL);
    cr_assert(eq(int, chdir(plt_dir), 0));
    pl_atomic_file_t *af = xopen_atomic(name);
    fputs("here", pl_atomic_fp(af));
    cr_assert(eq(int, chdir("/"), 0));
    int rc = pl_atomic_commit(af, &e);
    cr_expect(eq(int, rc, PL_OK), "%s", rc == PL_OK ? "" : e.msg);
    cr_expect(eq(int, plt_exists(stray), 0), "published into the new cwd");
    plt_read_file(plt_path(name), buf, sizeof(buf));
    cr_expect(eq(str, buf, "here"));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1));
    unlink(stray);
    cr_assert(eq(int, chdir(here), 0));
}

/* ---- durability and crashes (issue 9, defect 1) -------------------------- */

/* Records the order of link/linkat and of directory fsyncs. */
static int events, link_at, dir_sync_at, dir_syncs;

static int rec_link(const char *from, const char *to) {
    int r = link(from, to);
    if (r == 0)
        link_at = ++events;
    return r;
}

static int rec_linkat(int fd1, const char *from, int fd2, const char *to,
                      int flags) {
    int r = linkat(fd1, from, fd2, to, flags);
    if (r == 0)
        link_at = ++events;
    return r;
}

static int rec_fsync(int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        dir_syncs++;
        dir_sync_at = ++events;
    }
    return fsync(fd);
}

static void check_directory_synced(void) {
    const char *p = plt_path("out.txt");
    pl_error_t e;
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("durable", pl_atomic_fp(af));
    sys_install();
    plt_real.link = rec_link;
    plt_real.linkat = rec_linkat;
    plt_real.fsync = rec_fsync;
    int rc = pl_atomic_commit(af, &e);
    pl__sys_reset();
    cr_expect(eq(int, rc, PL_OK), "%s", rc == PL_OK ? "" : e.msg);
    cr_expect(gt(int, link_at, 0), "never published by a link");
    cr_expect(ge(int, dir_syncs, 1), "the directory was never synced");
    cr_expect(gt(int, dir_sync_at, link_at),
              "the directory was synced before the link");
}

/* A published file survives a power loss only once its directory entry is
 * on disk: commit fsyncs the directory after the link (and unlink). */
Test(atomic, commit_syncs_the_directory_after_the_link) {
    check_directory_synced();
}

Test(atomic, commit_syncs_the_directory_with_named_temps) {
    force_named_temps();
    check_directory_synced();
}

static int write_then_die(void *arg) {
    pl_atomic_file_t *af = NULL;
    if (pl_open_atomic(&af, arg, NULL) != PL_OK)
        return 1;
    fputs("half", pl_atomic_fp(af));
    fflush(pl_atomic_fp(af));
    raise(SIGKILL);
    return 2;
}

/* SIGKILL before commit: with O_TMPFILE nothing at all is left. */
Test(atomic, kill_before_commit_leaves_nothing) {
    const char *p = plt_path("out.txt");
    int fd = open(plt_dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0)
        cr_skip_test("no O_TMPFILE on %s", plt_dir);
    close(fd);
    pl_atomic_file_t *af = xopen_atomic(p);
    cr_expect(eq(ptr, (void *)pl_atomic_temp_path(af), NULL),
              "O_TMPFILE works here, yet the temporary file has a name");
    pl_atomic_abort(af);
    cr_expect(
        eq(int, plt_in_child(write_then_die, (void *)p), PLT_CHILD_FAILED));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "something was left");
}

/* Sets a file's modification time `ago` seconds into the past. */
static void age(const char *path, int ago) {
    struct timespec t[2] = {{0, UTIME_OMIT}, {time(NULL) - ago, 0}};
    cr_assert(eq(int, utimensat(AT_FDCWD, path, t, 0), 0), "%s", path);
}

/* The one "*.tmp" file in plt_dir, or "" (static buffer). */
static const char *temp_file(void) {
    static char name[4200];
    DIR *d = opendir(plt_dir);
    struct dirent *ent;
    name[0] = '\0';
    cr_assert(d != NULL);
    while ((ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (n > 4 && strcmp(ent->d_name + n - 4, ".tmp") == 0)
            snprintf(name, sizeof(name), "%s/%s", plt_dir, ent->d_name);
    }
    closedir(d);
    return name;
}

/* Named temporary files (no O_TMPFILE): the one a killed writer left is
 * removed by the next pl_open_atomic of the path once it is old enough to
 * be sure nobody is about to mark it; a live writer's never is. */
Test(atomic, kill_before_commit_leftover_is_cleaned_later) {
    const char *p = plt_path("out.txt");
    char left[4200];
    force_named_temps();
    cr_expect(
        eq(int, plt_in_child(write_then_die, (void *)p), PLT_CHILD_FAILED));
    snprintf(left, sizeof(left), "%s", temp_file());
    cr_assert(ne(str, left, ""), "the killed writer left no temporary file");

    /* Young: could be a writer that has not marked it yet. */
    pl_atomic_file_t *af = xopen_atomic(p);
    cr_expect(plt_exists(left), "a fresh temporary file was removed");
    pl_atomic_abort(af);

    /* A live writer's file, however old, stays. */
    af = xopen_atomic(p);
    char live[4200];
    snprintf(live, sizeof(live), "%s", pl_atomic_temp_path(af));
    age(live, 3600);
    age(left, 3600);
    pl_atomic_file_t *af2 = xopen_atomic(p);
    cr_expect(eq(int, plt_exists(left), 0), "the dead writer's file is left");
    cr_expect(plt_exists(live), "a live writer's file was removed");
    pl_atomic_abort(af2);
    fputs("done", pl_atomic_fp(af));
    cr_expect(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1));
}

static int link_then_die(const char *from, const char *to) {
    int r = link(from, to);
    raise(SIGKILL);
    return r;
}

static int publish_then_die(void *arg) {
    pl_atomic_file_t *af = NULL;
    if (pl_open_atomic(&af, arg, NULL) != PL_OK)
        return 1;
    fputs("whole", pl_atomic_fp(af));
    pl__sys.link = link_then_die;
    pl_atomic_commit(af, NULL);
    return 2;
}

/* Named temporary files: a crash between link and unlink leaves the
 * published file with a second name (link count 2); the next open of the
 * path repairs it at once, whatever its age. */
Test(atomic, kill_between_link_and_unlink_is_repaired) {
    const char *p = plt_path("out.txt");
    struct stat st;
    char buf[16];
    force_named_temps();
    cr_expect(
        eq(int, plt_in_child(publish_then_die, (void *)p), PLT_CHILD_FAILED));
    cr_assert(eq(int, stat(p, &st), 0), "not published");
    cr_assert(eq(long, (long)st.st_nlink, 2L), "no second link to repair");
    pl_atomic_file_t *af = NULL;
    cr_expect(eq(int, pl_open_atomic(&af, p, NULL), PL_EEXIST));
    cr_assert(eq(int, stat(p, &st), 0));
    cr_expect(eq(long, (long)st.st_nlink, 1L), "link count not repaired");
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "whole"));
}

/* The published file's permissions are a parameter (perms & ~umask), and
 * only permission bits are taken. */
Test(atomic, permissions_parameter_sets_the_final_mode) {
    static const unsigned want[][2] = {
        {0600, 0600}, {0640, 0640}, {0755, 0755}, {06777, 0777}};
    umask(0);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        for (int named = 0; named < 2; named++) {
            char name[32];
            struct stat st;
            pl_atomic_file_t *af = NULL;
            pl_error_t e;
            if (named)
                force_named_temps();
            snprintf(name, sizeof(name), "f%zu.%d", i, named);
            int rc = pl_open_atomic_perms(&af, plt_path(name), want[i][0], &e);
            cr_assert(eq(int, rc, PL_OK), "%s", e.msg);
            cr_assert(eq(int, pl_atomic_commit(af, NULL), PL_OK));
            cr_assert(eq(int, stat(plt_path(name), &st), 0));
            cr_expect(eq(int, (int)(st.st_mode & 07777), (int)want[i][1]),
                      "perms %#o%s: mode %#o", want[i][0],
                      named ? " (named)" : "", (unsigned)(st.st_mode & 07777));
        }
        pl__sys_reset();
        named_temps = 0;
    }
    umask(022);
    pl_atomic_file_t *af = NULL;
    struct stat st;
    cr_assert(
        eq(int, pl_open_atomic_perms(&af, plt_path("u"), 0666, NULL), PL_OK));
    cr_assert(eq(int, pl_atomic_commit(af, NULL), PL_OK));
    cr_assert(eq(int, stat(plt_path("u"), &st), 0));
    cr_expect(eq(int, (int)(st.st_mode & 0777), 0644), "umask not applied");
}

/* ---- checks at open (issue 9, defect 6) ---------------------------------- */

/* A dangling symbolic link at the destination makes link() fail at commit:
 * refused at open, before anything is written. */
Test(atomic, dangling_symlink_is_refused_at_open) {
    const char *p = plt_path("out.txt");
    pl_atomic_file_t *af = (pl_atomic_file_t *)&af;
    pl_error_t e;
    cr_assert(eq(int, symlink(plt_path("nowhere"), p), 0));
    int rc = pl_open_atomic(&af, p, &e);
    cr_expect(eq(int, rc, PL_EEXIST), "got %s", pl_err_name(rc));
    cr_expect(eq(ptr, af, NULL));
    cr_expect(ne(ptr, strstr(e.msg, "symbolic link"), NULL), "%s", e.msg);
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1), "temporary file created");
    if (rc == PL_OK)
        pl_atomic_abort(af);
}

/* Errors that say nothing about existence are reported as themselves. */
Test(atomic, stat_errors_are_not_eexist) {
    static const struct {
        int err, want;
    } cases[] = {{EACCES, PL_EACCES}, {ELOOP, PL_EOS}, {EIO, PL_EOS}};
    const char *p = plt_path("out.txt");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_atomic_file_t *af = NULL;
        pl_error_t e;
        sys_install();
        plt_fault(PLT_SYS_STAT, cases[i].err, 0, -1, "out.txt");
        plt_fault(PLT_SYS_LSTAT, cases[i].err, 0, -1, "out.txt");
        int rc = pl_open_atomic(&af, p, &e);
        pl__sys_reset();
        cr_expect(eq(int, rc, cases[i].want), "%s: got %s",
                  strerror(cases[i].err), pl_err_name(rc));
        if (rc != PL_OK)
            cr_expect(eq(int, e.os_error, cases[i].err), "%s", e.msg);
        else
            pl_atomic_abort(af);
    }
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
}

/* The real ones: a symlink loop in the path, a name too long. */
Test(atomic, real_stat_errors_are_not_eexist) {
    pl_atomic_file_t *af = NULL;
    char longname[300];
    pl_error_t e;
    cr_assert(eq(int, symlink(plt_path("b"), plt_path("a")), 0));
    cr_assert(eq(int, symlink(plt_path("a"), plt_path("b")), 0));
    int rc = pl_open_atomic(&af, plt_path("a/out.txt"), &e);
    cr_expect(eq(int, rc, PL_EOS), "loop: got %s", pl_err_name(rc));
    cr_expect(eq(int, e.os_error, ELOOP), "%s", e.msg);
    memset(longname, 'n', 256);
    longname[256] = '\0';
    rc = pl_open_atomic(&af, plt_path(longname), &e);
    cr_expect(eq(int, rc, PL_ENAMETOOLONG), "long: got %s", pl_err_name(rc));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 2));
}

/* ---- long names (issue 9, defect 7) -------------------------------------- */

/* Every name a Lock accepts (up to 255 bytes) works: the temporary name
 * is shortened to fit. */
Test(atomic, longest_names_work) {
    for (int named = 0; named < 2; named++) {
        for (int len = 236; len <= 255; len += 19) {
            char name[256], buf[16];
            pl_atomic_file_t *af = NULL;
            pl_error_t e;
            if (named)
                force_named_temps();
            memset(name, named ? 'm' : 'a', (size_t)len);
            name[len] = '\0';
            int rc = pl_open_atomic(&af, plt_path(name), &e);
            cr_assert(eq(int, rc, PL_OK), "%d bytes%s: %s", len,
                      named ? " (named)" : "", e.msg);
            if (pl_atomic_temp_path(af) != NULL)
                cr_expect(le(sz, strlen(strrchr(pl_atomic_temp_path(af), '/')),
                             (size_t)256));
            fputs("long", pl_atomic_fp(af));
            rc = pl_atomic_commit(af, &e);
            cr_expect(eq(int, rc, PL_OK), "%d bytes: %s", len, e.msg);
            plt_read_file(plt_path(name), buf, sizeof(buf));
            cr_expect(eq(str, buf, "long"));
        }
    }
    cr_expect(eq(int, plt_dir_entries(plt_dir), 4));
}
