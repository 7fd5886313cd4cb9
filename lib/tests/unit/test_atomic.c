/*
 * test_atomic.c -- open_atomic: write a temporary file beside the
 * destination, then publish it without ever replacing an existing file.
 */
#include "helpers.h"

#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
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

static void expect_same_dir(const char *a, const char *b) {
    char x[4096], y[4096];
    snprintf(x, sizeof(x), "%s", a);
    snprintf(y, sizeof(y), "%s", b);
    cr_expect(eq(str, dirname(x), dirname(y)), "%s is not beside %s", a, b);
}

Test(atomic, publishes_the_content) {
    const char *p = plt_path("out.txt");
    char buf[64], tmp[4096];
    pl_error_t e;
    int fds = plt_count_fds();
    pl_atomic_file_t *af = xopen_atomic(p);
    cr_assert(pl_atomic_temp_path(af) != NULL);
    snprintf(tmp, sizeof(tmp), "%s", pl_atomic_temp_path(af));
    cr_expect(ne(str, tmp, (char *)p));
    cr_expect(plt_exists(tmp), "no temporary file");
    expect_same_dir(tmp, p);
    cr_expect(eq(int, plt_exists(p), 0), "destination visible before commit");
    FILE *f = pl_atomic_fp(af);
    cr_assert(f != NULL);
    cr_expect(eq(ptr, pl_atomic_fp(af), f));
    fputs("hello", f);
    int rc = pl_atomic_commit(af, &e);
    cr_expect(eq(int, rc, PL_OK), "%s", rc == PL_OK ? "" : e.msg);
    cr_expect(eq(long, plt_read_file(p, buf, sizeof(buf)), 5L));
    cr_expect(eq(str, buf, "hello"));
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

/* Someone publishes first: we never replace their file, and keep ours
 * (named in the message) so no data is lost. */
Test(atomic, destination_created_meanwhile_is_eexist_and_kept) {
    const char *p = plt_path("out.txt");
    char buf[64], tmp[4096];
    pl_error_t e;
    pl_atomic_file_t *af = xopen_atomic(p);
    snprintf(tmp, sizeof(tmp), "%s", pl_atomic_temp_path(af));
    fputs("ours", pl_atomic_fp(af));
    plt_write_file(p, "theirs");
    memset(&e, 0, sizeof(e));
    int rc = pl_atomic_commit(af, &e);
    cr_expect(eq(int, rc, PL_EEXIST));
    cr_expect(eq(int, e.code, PL_EEXIST));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "theirs"), "destination replaced");
    cr_expect(plt_exists(tmp), "our data was discarded");
    cr_expect(ne(ptr, strstr(e.msg, basename(tmp)), NULL),
              "message \"%s\" does not name %s", e.msg, tmp);
    if (plt_exists(tmp)) {
        plt_read_file(tmp, buf, sizeof(buf));
        cr_expect(eq(str, buf, "ours"));
    }
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
    plt_sys_install();
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
    pl_atomic_file_t *af = xopen_atomic(p);
    fputs("fallback", pl_atomic_fp(af));
    plt_sys_install();
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
    char buf[16], tmp[4096];
    pl_error_t e;
    pl_atomic_file_t *af = xopen_atomic(p);
    snprintf(tmp, sizeof(tmp), "%s", pl_atomic_temp_path(af));
    fputs("ours", pl_atomic_fp(af));
    plt_write_file(p, "theirs");
    plt_sys_install();
    plt_fault(PLT_SYS_LINK, EPERM, 0, -1, NULL);
    int rc = pl_atomic_commit(af, &e);
    pl__sys_reset();
    cr_expect(eq(int, rc, PL_EEXIST), "got %s", pl_err_name(rc));
    plt_read_file(p, buf, sizeof(buf));
    cr_expect(eq(str, buf, "theirs"));
    cr_expect(plt_exists(tmp), "our data was discarded");
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
