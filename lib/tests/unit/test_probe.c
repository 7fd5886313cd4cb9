/*
 * test_probe.c -- pl_probe on local filesystems and pl_probe_to_json.
 */
#include "helpers.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define PLT_EXT4_MAGIC  0xEF53u
#define PLT_TMPFS_MAGIC 0x01021994u
#define PLT_XFS_MAGIC   0x58465342u
#define PLT_BTRFS_MAGIC 0x9123683Eu

static const unsigned posix_bits = (1u << PL_BACKEND_FLOCK) |
                                   (1u << PL_BACKEND_LOCKF) |
                                   (1u << PL_BACKEND_OFD);

TestSuite(probe, .init = plt_setup, .fini = plt_teardown, .timeout = 60.);

static void probe_local_dir(const char *dir) {
    pl_probe_t pr;
    pl_error_t e;
    struct statfs sf;
    int fds = plt_count_fds();
    int entries = plt_dir_entries(dir);
    cr_assert(eq(int, statfs(dir, &sf), 0));
    memset(&pr, 0x5a, sizeof(pr));
    int rc = pl_probe(dir, &pr, &e);
    cr_assert(eq(int, rc, PL_OK), "pl_probe(%s): %s (%s)", dir, pl_err_name(rc),
              rc == PL_OK ? "" : e.msg);
    cr_expect(eq(u64, pr.fs_magic, (uint64_t)(unsigned long)sf.f_type));
    switch ((unsigned long)sf.f_type) {
    case PLT_EXT4_MAGIC: cr_expect(eq(str, pr.fstype, "ext4")); break;
    case PLT_TMPFS_MAGIC: cr_expect(eq(str, pr.fstype, "tmpfs")); break;
    case PLT_XFS_MAGIC: cr_expect(eq(str, pr.fstype, "xfs")); break;
    case PLT_BTRFS_MAGIC: cr_expect(eq(str, pr.fstype, "btrfs")); break;
    default:
        cr_expect(ne(int, (int)pr.fstype[0], 0), "empty fstype");
        cr_log_info("unrecognised filesystem magic %#lx, fstype \"%s\"",
                    (unsigned long)sf.f_type, pr.fstype);
    }
    cr_expect(memchr(pr.fstype, '\0', sizeof(pr.fstype)) != NULL,
              "fstype not terminated");
    cr_expect(eq(int, pr.is_network, 0));
    cr_expect(eq(uint, pr.backends_ok & posix_bits, posix_bits),
              "backends_ok %#x", pr.backends_ok);
    cr_expect(eq(uint, pr.backends_ok & (1u << PL_BACKEND_LOCKFILEEX), 0u));
    cr_expect(eq(uint, pr.backends_ok & (1u << PL_BACKEND_DEFAULT), 0u));
    cr_expect(eq(uint, pr.blocking_ok & posix_bits, posix_bits),
              "blocking_ok %#x", pr.blocking_ok);
    cr_expect(eq(uint, pr.blocking_ok & ~pr.backends_ok, 0u),
              "blocking without working at all");
    cr_expect(pr.cross_mount_coherent >= -1 && pr.cross_mount_coherent <= 1,
              "cross_mount_coherent %d", pr.cross_mount_coherent);
    cr_expect(memchr(pr.guarantee, '\0', sizeof(pr.guarantee)) != NULL);
    cr_expect(ne(int, (int)pr.guarantee[0], 0), "no guarantee line");
    cr_expect(eq(ptr, strchr(pr.guarantee, '\n'), NULL), "not one line");
    /* Linux keeps flock and fcntl locks apart on local filesystems (the
     * BSDs and macOS would give 1). */
    cr_expect(eq(int, pr.flock_fcntl_exclude, 0), "flock_fcntl_exclude %d",
              pr.flock_fcntl_exclude);
    cr_expect(ne(ptr, strstr(pr.guarantee, "do not exclude each other"), NULL),
              "%s", pr.guarantee);
    cr_expect(eq(int, plt_dir_entries(dir), entries), "probe left files");
    cr_expect(eq(int, plt_count_fds(), fds), "probe leaked descriptors");
}

Test(probe, local_temporary_directory) {
    probe_local_dir(plt_dir);
}

Test(probe, tmpfs_dev_shm) {
    struct statfs sf;
    if (statfs("/dev/shm", &sf) != 0 ||
        (unsigned long)sf.f_type != PLT_TMPFS_MAGIC)
        cr_skip_test("/dev/shm is not a tmpfs here");
    const char *dir = plt_mkdtemp_in("/dev/shm");
    probe_local_dir(dir);
    pl_probe_t pr;
    cr_assert(eq(int, pl_probe(dir, &pr, NULL), PL_OK));
    cr_expect(eq(str, pr.fstype, "tmpfs"));
    cr_expect(eq(u64, pr.fs_magic, (uint64_t)PLT_TMPFS_MAGIC));
}

Test(probe, file_path_probes_its_directory) {
    const char *f = plt_path("some-file");
    pl_probe_t a, b;
    plt_write_file(f, "keep me");
    cr_assert(eq(int, pl_probe(f, &a, NULL), PL_OK));
    cr_assert(eq(int, pl_probe(plt_dir, &b, NULL), PL_OK));
    cr_expect(eq(str, a.fstype, b.fstype));
    cr_expect(eq(uint, a.backends_ok, b.backends_ok));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 1));
    char buf[16];
    plt_read_file(f, buf, sizeof(buf));
    cr_expect(eq(str, buf, "keep me"), "the probe touched the file");
}

Test(probe, missing_path_is_enoent) {
    pl_probe_t pr;
    pl_error_t e;
    int rc = pl_probe(plt_path("no/such/dir"), &pr, &e);
    cr_expect(eq(int, rc, PL_ENOENT), "got %s", pl_err_name(rc));
    cr_expect(eq(int, e.code, PL_ENOENT));
    cr_expect(ne(int, (int)e.msg[0], 0));
}

Test(probe, bad_arguments_are_einval) {
    pl_probe_t pr;
    char buf[64];
    cr_expect(eq(int, pl_probe(NULL, &pr, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_probe(plt_dir, NULL, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_probe_to_json(NULL, buf, sizeof(buf)), PL_EINVAL));
}

static const char *const json_keys[] = {
    "\"fstype\"",      "\"fs_magic\"",           "\"is_network\"",
    "\"backends_ok\"", "\"blocking_ok\"",        "\"cross_mount_coherent\"",
    "\"guarantee\"",   "\"flock_fcntl_exclude\""};

Test(probe, json_has_every_field_and_is_valid) {
    pl_probe_t pr;
    char buf[4096];
    cr_assert(eq(int, pl_probe(plt_dir, &pr, NULL), PL_OK));
    cr_assert(eq(int, pl_probe_to_json(&pr, buf, sizeof(buf)), PL_OK));
    size_t n = strlen(buf);
    cr_assert(gt(sz, n, 2));
    cr_expect(eq(chr, buf[0], '{'));
    cr_expect(eq(chr, buf[n - 1], '}'), "trailing characters: \"%s\"", buf);
    cr_expect(plt_json_valid(buf), "invalid JSON: %s", buf);
    for (size_t i = 0; i < sizeof(json_keys) / sizeof(json_keys[0]); i++)
        cr_expect(ne(ptr, strstr(buf, json_keys[i]), NULL), "%s missing in %s",
                  json_keys[i], buf);
    char quoted[128];
    snprintf(quoted, sizeof(quoted), "\"%s\"", pr.fstype);
    cr_expect(ne(ptr, strstr(buf, quoted), NULL), "fstype value in %s", buf);
}

Test(probe, json_escapes_strings) {
    pl_probe_t pr;
    char buf[4096];
    memset(&pr, 0, sizeof(pr));
    snprintf(pr.fstype, sizeof(pr.fstype), "we\"ird\\fs");
    snprintf(pr.guarantee, sizeof(pr.guarantee),
             "line one\nline \"two\"\ttab \x01 ctrl \\ end");
    pr.fs_magic = 0xFFFFFFFFFFFFFFFFull;
    pr.is_network = -1;
    pr.cross_mount_coherent = -1;
    pr.backends_ok = 0xE;
    pr.blocking_ok = 0x2;
    cr_assert(eq(int, pl_probe_to_json(&pr, buf, sizeof(buf)), PL_OK));
    cr_expect(plt_json_valid(buf), "invalid JSON: %s", buf);
    cr_expect(ne(ptr, strstr(buf, "we\\\"ird\\\\fs"), NULL), "%s", buf);
    /* A newline and a tab may be written as \n or \u000a, \t or \u0009. */
    cr_expect(strstr(buf, "line one\\nline") != NULL ||
                  strstr(buf, "line one\\u000aline") != NULL ||
                  strstr(buf, "line one\\u000Aline") != NULL,
              "%s", buf);
    cr_expect(strstr(buf, "\\\"two\\\"\\t") != NULL ||
                  strstr(buf, "\\\"two\\\"\\u0009") != NULL,
              "%s", buf);
    cr_expect(ne(ptr, strstr(buf, "\\u0001"), NULL), "%s", buf);
    cr_expect(ne(ptr, strstr(buf, "18446744073709551615"), NULL),
              "fs_magic must be exact: %s", buf);
    for (const char *c = buf; *c != '\0'; c++)
        cr_expect(ge(int, (int)(unsigned char)*c, 0x20),
                  "raw control character at %ld", (long)(c - buf));
}

Test(probe, json_needs_room_for_the_terminator) {
    pl_probe_t pr;
    char buf[4096], small[4096];
    cr_assert(eq(int, pl_probe(plt_dir, &pr, NULL), PL_OK));
    cr_assert(eq(int, pl_probe_to_json(&pr, buf, sizeof(buf)), PL_OK));
    size_t n = strlen(buf);
    cr_expect(eq(int, pl_probe_to_json(&pr, small, n), PL_EINVAL));
    cr_expect(eq(int, pl_probe_to_json(&pr, small, 1), PL_EINVAL));
    cr_expect(eq(int, pl_probe_to_json(&pr, small, 0), PL_EINVAL));
    cr_expect(eq(int, pl_probe_to_json(&pr, NULL, 0), PL_EINVAL));
    memset(small, 'x', sizeof(small));
    cr_expect(eq(int, pl_probe_to_json(&pr, small, n + 1), PL_OK));
    cr_expect(eq(str, small, buf));
}

Test(probe, statfs_failure_is_reported) {
    pl_probe_t pr;
    pl_error_t e;
    plt_sys_install();
    plt_fault(PLT_SYS_STATFS, EIO, 0, -1, NULL);
    int rc = pl_probe(plt_dir, &pr, &e);
    int calls = plt_sys_calls(PLT_SYS_STATFS);
    pl__sys_reset();
    cr_expect(ge(int, calls, 1), "statfs never called");
    cr_expect(eq(int, rc, PL_EOS), "got %s", pl_err_name(rc));
    cr_expect(eq(int, e.os_error, EIO));
    cr_expect(ne(ptr, strstr(e.msg, "statfs"), NULL), "%s", e.msg);
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
}

/* A backend that fails in the probe is reported as not working, and the
 * probe still cleans up. */
Test(probe, failing_backend_is_not_ok) {
    pl_probe_t pr;
    plt_sys_install();
    plt_fault(PLT_SYS_FLOCK, ENOLCK, 0, -1, NULL);
    int rc = pl_probe(plt_dir, &pr, NULL);
    pl__sys_reset();
    cr_assert(eq(int, rc, PL_OK), "got %s", pl_err_name(rc));
    cr_expect(eq(uint, pr.backends_ok & (1u << PL_BACKEND_FLOCK), 0u),
              "backends_ok %#x", pr.backends_ok);
    cr_expect(eq(uint, pr.blocking_ok & (1u << PL_BACKEND_FLOCK), 0u));
    cr_expect(eq(uint, pr.backends_ok & (1u << PL_BACKEND_OFD),
                 1u << PL_BACKEND_OFD));
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
}

static int probe_as_nobody(void *arg) {
    pl_probe_t pr;
    if (setgid(65534) != 0 || setuid(65534) != 0 || geteuid() == 0)
        return PLT_CHILD_NO_SETUID;
    return pl_probe(arg, &pr, NULL);
}

/* Where no temporary file can be created nothing can be probed: an error,
 * not "no backend works". */
Test(probe, unwritable_directory_is_eacces) {
    const char *ro = plt_path("ro");
    cr_assert(eq(int, chmod(plt_dir, 0755), 0));
    cr_assert(eq(int, mkdir(ro, 0555), 0));
    cr_assert(eq(int, chmod(ro, 0555), 0));
    int rc = plt_in_child(probe_as_nobody, (void *)ro);
    if (rc == PLT_CHILD_NO_SETUID)
        cr_skip_test("cannot switch to uid 65534 to test permissions");
    cr_expect(eq(int, rc, PL_EACCES), "got %s", pl_err_name(rc));
}
