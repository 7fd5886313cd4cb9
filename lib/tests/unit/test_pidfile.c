/*
 * test_pidfile.c -- PidFileLock (sidecar "<path>.lock", PID published in
 * path), pl_pidfile_holder and pl_pidfile_read.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(pidfile, .init = plt_setup, .fini = plt_teardown, .timeout = 30.);

static pl_lock_t *xopen_pid(const char *path, const pl_lock_options_t *o) {
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_pidfile_lock_open(&lock, path, o), PL_OK));
    return lock;
}

static const char *sidecar(const char *path) {
    static char buf[4200];
    snprintf(buf, sizeof(buf), "%s.lock", path);
    return buf;
}

Test(pidfile, publishes_the_pid_and_locks_the_sidecar) {
    const char *p = plt_path("app.pid");
    char buf[64], want[32];
    long pid = 0;
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(plt_exists(sidecar(p)), "no sidecar %s", sidecar(p));
    snprintf(want, sizeof(want), "%ld", (long)getpid());
    cr_assert(ge(long, plt_read_file(p, buf, sizeof(buf)), 0L), "no PID file");
    cr_expect(eq(str, buf, want));
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    /* Published atomically: no temporary file is left beside them. */
    cr_expect(eq(int, plt_dir_entries(plt_dir), 2));
    /* The OS lock is on the sidecar, not on the PID file. */
    cr_expect(eq(
        int,
        plt_try_other_process(sidecar(p), pl_lock_backend(lock), PL_EXCLUSIVE),
        PL_ELOCKED));
    cr_expect(eq(int,
                 plt_try_other_process(p, pl_lock_backend(lock), PL_EXCLUSIVE),
                 PL_OK),
              "the PID file itself is locked");
    pl_lock_close(lock);
}

Test(pidfile, holder_reports_this_process_while_held) {
    const char *p = plt_path("app.pid");
    pl_holder_info_t info;
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    memset(&info, 0x5a, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, (long)getpid()));
    cr_expect(eq(int, info.alive, 1));
    /* The host is recorded or left empty, never garbage. */
    char host[256] = "";
    cr_assert(eq(int, gethostname(host, sizeof(host) - 1), 0));
    cr_expect(memchr(info.host, '\0', sizeof(info.host)) != NULL);
    cr_expect(info.host[0] == '\0' || strcmp(info.host, host) == 0,
              "host \"%.255s\"", info.host);
    pl_lock_close(lock);
}

Test(pidfile, release_removes_both_files) {
    const char *p = plt_path("app.pid");
    pl_lock_t *lock = xopen_pid(p, NULL);
    int fds = plt_count_fds();
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, plt_exists(p), 0), "PID file left");
    cr_expect(eq(int, plt_exists(sidecar(p)), 0), "sidecar left");
    cr_expect(eq(int, plt_count_fds(), fds), "descriptor leaked");
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, pl_lock_close(lock), PL_OK));
    cr_expect(eq(int, plt_exists(p), 0));
    cr_expect(eq(int, plt_exists(sidecar(p)), 0));
}

Test(pidfile, no_holder_is_enoent) {
    pl_holder_info_t info;
    pl_lock_t *lock = xopen_pid(plt_path("app.pid"), NULL);
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_ENOENT));
    pl_lock_close(lock);
}

Test(pidfile, holder_of_other_kinds_is_einval) {
    pl_holder_info_t info;
    pl_lock_t *lock = NULL;
    cr_assert(eq(int, pl_lock_open(&lock, plt_path("a.lock"), NULL), PL_OK));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_EINVAL));
    pl_lock_close(lock);
    lock = xopen_pid(plt_path("app.pid"), NULL);
    cr_expect(eq(int, pl_pidfile_holder(lock, NULL), PL_EINVAL));
    cr_expect(eq(int, pl_pidfile_holder(NULL, &info), PL_EINVAL));
    pl_lock_close(lock);
}

/* A holder in another process: contention is immediate (fail_when_locked
 * defaults to 1; 250 ms bound for the shared machine) and the holder's PID
 * is reported; once it is SIGKILLed (leaving its PID file), it is dead. */
Test(pidfile, contention_reports_the_holder) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_holder_info_t info;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    long holder = (long)h.pid;
    pl_lock_t *lock = xopen_pid(p, NULL);
    double t0 = plt_now();
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ELOCKED, lock);
    cr_expect(lt(dbl, plt_now() - t0, 0.25));
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, holder));
    cr_expect(eq(int, info.alive, 1));

    plt_holder_kill(&h);
    cr_assert(plt_exists(p), "a killed holder cannot remove its PID file");
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, holder));
    cr_expect(eq(int, info.alive, 0), "a reaped process is alive");

    /* The kernel dropped the dead holder's lock: we take over and publish. */
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_OK, lock);
    long pid = 0;
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    pl_lock_close(lock);
}

Test(pidfile, holder_removes_its_pid_file_on_release) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_holder_info_t info;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ELOCKED, lock);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    cr_expect(eq(int, plt_exists(p), 0));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_ENOENT));
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_OK, lock);
    pl_lock_close(lock);
}

/* fail_when_locked 0: waits the timeout, then PL_ETIMEDOUT.  Bounds: never
 * early (5 ms slack), late by up to 500 ms on the shared machine. */
Test(pidfile, waiting_contender_times_out) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_lock_options_t o;
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    pl_lock_options_init(&o);
    o.timeout = 0.3;
    o.fail_when_locked = 0;
    pl_lock_t *lock = xopen_pid(p, &o);
    double t0 = plt_now();
    PLT_EXPECT_RC(pl_lock_acquire(lock), PL_ETIMEDOUT, lock);
    double dt = plt_now() - t0;
    cr_expect(ge(dbl, dt, 0.295), "%.3f s", dt);
    cr_expect(lt(dbl, dt, 0.8), "%.3f s", dt);
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    pl_lock_close(lock);
}

/* ---- pl_pidfile_read ----------------------------------------------------- */

Test(pidfile, read_accepts_a_positive_decimal) {
    const char *p = plt_path("x.pid");
    long pid = 0;
    pl_error_t e;
    plt_write_file(p, "42");
    cr_expect(eq(int, pl_pidfile_read(p, &pid, &e), PL_OK));
    cr_expect(eq(long, pid, 42L));
    plt_write_file(p, "4194304");
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, 4194304L));
}

Test(pidfile, read_rejects_anything_else) {
    static const char *const bad[] = {
        "",   "12x", "-5", " 42",  "0",   "+7",
        "x1", "4 2", "00", "0x10", "1.5", "99999999999999999999999"};
    const char *p = plt_path("x.pid");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long pid = 12345;
        pl_error_t e;
        memset(&e, 0, sizeof(e));
        plt_write_file(p, bad[i]);
        int rc = pl_pidfile_read(p, &pid, &e);
        cr_expect(ne(int, rc, PL_OK), "\"%s\" accepted as %ld", bad[i], pid);
        cr_expect(ne(int, rc, PL_ENOENT), "\"%s\"", bad[i]);
        cr_expect(eq(int, e.code, rc), "\"%s\"", bad[i]);
        cr_expect(ne(int, (int)e.msg[0], 0), "\"%s\": no message", bad[i]);
    }
}

Test(pidfile, read_of_a_missing_file_is_enoent) {
    long pid = 0;
    pl_error_t e;
    int rc = pl_pidfile_read(plt_path("none.pid"), &pid, &e);
    cr_expect(eq(int, rc, PL_ENOENT));
    cr_expect(eq(int, e.code, PL_ENOENT));
    cr_expect(eq(int, e.os_error, ENOENT));
    cr_expect(eq(int, pl_pidfile_read(NULL, &pid, NULL), PL_EINVAL));
    cr_expect(
        eq(int, pl_pidfile_read(plt_path("none.pid"), NULL, NULL), PL_EINVAL));
}

Test(pidfile, descriptor_is_close_on_exec) {
    pl_lock_t *lock = xopen_pid(plt_path("app.pid"), NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_cloexec(pl_lock_fileno(lock)), 1));
    pl_lock_close(lock);
}

Test(pidfile, forked_child_leaves_the_parents_files) {
    const char *p = plt_path("app.pid");
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_in_child(plt_child_release, lock), PL_EFORKED));
    cr_expect(plt_exists(p));
    cr_expect(plt_exists(sidecar(p)));
    long pid = 0;
    cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK));
    cr_expect(eq(long, pid, (long)getpid()));
    pl_lock_close(lock);
}

/* As for TemporaryFileLock: a relative path is fixed at open (portalocker
 * 4.1.1+ makes it absolute), so a chdir while held changes nothing. */
Test(pidfile, relative_path_survives_chdir) {
    char here[4096];
    pl_lock_t *lock = NULL;
    cr_assert(getcwd(here, sizeof(here)) != NULL);
    cr_assert(eq(int, chdir(plt_dir), 0));
    cr_assert(eq(int, pl_pidfile_lock_open(&lock, "rel.pid", NULL), PL_OK));
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_assert(eq(int, chdir("/"), 0));
    pl_holder_info_t info;
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "files left behind");
    pl_lock_close(lock);
    cr_assert(eq(int, chdir(here), 0));
}

/* The sidecar is unlinked on release while held, so waiting contenders race
 * exactly as with TemporaryFileLock.  Every acquire syncs the PID file and
 * its directory (durable publication): 120 s for sanitizer builds on a
 * loaded machine. */
Test(pidfile, processes_never_overlap, .timeout = 120.) {
    for (int b = 0; b < PLT_N_BACKENDS; b++) {
        plt_race_t r = plt_race(PLT_PIDFILE, plt_path("race.pid"),
                                plt_backends[b], 3, 100);
        cr_expect(eq(int, r.failures, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.overlaps, 0), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, r.acquired, 300), "%s",
                  pl_backend_name(plt_backends[b]));
        cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "files left");
    }
}

/* ---- liveness: zombies, other hosts and namespaces (issue 9, defect 8) --- */

/* A holder that exited but was not reaped yet still answers kill(pid, 0);
 * it holds nothing: not alive. */
Test(pidfile, zombie_holder_is_not_alive) {
    const char *p = plt_path("app.pid");
    char stat_path[64], buf[512], pidtext[32];
    pl_holder_info_t info;
    pid_t z = fork();
    cr_assert(z >= 0);
    if (z == 0)
        _exit(0);
    snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", (long)z);
    for (int i = 0; i < 200; i++) { /* until it is a zombie: 2 s at most */
        char *rp;
        if (plt_read_file(stat_path, buf, sizeof(buf)) > 0 &&
            (rp = strrchr(buf, ')')) != NULL && rp[2] == 'Z')
            break;
        plt_sleep_ms(10);
    }
    cr_assert(eq(int, kill(z, 0), 0), "the zombie is already gone");
    snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)z);
    plt_write_file(p, pidtext);
    pl_lock_t *lock = xopen_pid(p, NULL);
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, (long)z));
    cr_expect(eq(int, info.alive, 0), "a zombie is reported alive");
    pl_lock_close(lock);
    waitpid(z, NULL, 0);
}

/* This process's PID namespace as the library records it. */
static void my_pidns(char *buf, size_t len) {
    struct stat st;
    cr_assert(eq(int, stat("/proc/self/ns/pid", &st), 0));
    snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
}

/* A PID file naming this (very much alive) process, with a record saying
 * it was written on `host` in PID namespace `ns`. */
static pl_holder_info_t holder_recorded_as(const char *host, const char *ns) {
    const char *p = plt_path("app.pid");
    char text[512];
    pl_holder_info_t info;
    snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    plt_write_file(p, text);
    snprintf(text, sizeof(text),
             "portalock-holder 1\npid %ld\nhost %s\npidns %s\nend\n",
             (long)getpid(), host, ns);
    plt_write_file(sidecar(p), text);
    pl_lock_t *lock = xopen_pid(p, NULL);
    memset(&info, 0x5a, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    pl_lock_close(lock);
    return info;
}

/* The PID was recorded on another host: a local kill(pid, 0) would judge
 * an unrelated process, so liveness is unknown. */
Test(pidfile, holder_on_another_host_is_unknown) {
    char ns[64];
    my_pidns(ns, sizeof(ns));
    pl_holder_info_t info = holder_recorded_as("elsewhere.invalid", ns);
    cr_expect(eq(long, info.pid, (long)getpid()));
    cr_expect(eq(int, info.alive, -1), "judged by a local kill()");
    cr_expect(eq(int, info.local, 0));
    cr_expect(eq(str, info.host, "elsewhere.invalid"));
}

/* The same host, another PID namespace (a container): unknown as well. */
Test(pidfile, holder_in_another_pid_namespace_is_unknown) {
    char host[256] = "";
    cr_assert(eq(int, gethostname(host, sizeof(host) - 1), 0));
    pl_holder_info_t info = holder_recorded_as(host, "0:1");
    cr_expect(eq(int, info.alive, -1), "judged by a local kill()");
    cr_expect(eq(int, info.local, 0));
    cr_expect(eq(str, info.host, host));
    char ns[64];
    my_pidns(ns, sizeof(ns));
    info = holder_recorded_as(host, ns);
    cr_expect(eq(int, info.alive, 1), "our own record is judged locally");
    cr_expect(eq(int, info.local, 1));
}

/* A holder records its host and namespace; a contender reads them back.
 * Without a record (a Python holder) the PID is judged locally. */
Test(pidfile, holder_records_host_and_namespace) {
    const char *p = plt_path("app.pid");
    plt_obj_hold_t hold = {PLT_PIDFILE, p, {0}, NULL};
    plt_holder_t h;
    pl_holder_info_t info;
    char host[256] = "", text[512], want[64];
    pl_lock_options_init(&hold.opts);
    cr_assert(eq(int, gethostname(host, sizeof(host) - 1), 0));
    cr_assert(eq(
        int, plt_holder_start(&h, plt_obj_acquire, plt_obj_release, &hold, -1),
        PL_OK));
    plt_read_file(sidecar(p), text, sizeof(text));
    snprintf(want, sizeof(want), "pid %ld\n", (long)h.pid);
    cr_expect(ne(ptr, strstr(text, want), NULL), "sidecar: \"%s\"", text);
    pl_lock_t *lock = xopen_pid(p, NULL);
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(long, info.pid, (long)h.pid));
    cr_expect(eq(int, info.alive, 1));
    cr_expect(eq(int, info.local, 1));
    cr_expect(eq(str, info.host, host));
    cr_expect(eq(int, plt_holder_finish(&h), PL_OK));
    /* Python's PidFileLock writes no record. */
    snprintf(text, sizeof(text), "%ld", (long)getpid());
    plt_write_file(p, text);
    memset(&info, 0, sizeof(info));
    cr_expect(eq(int, pl_pidfile_holder(lock, &info), PL_OK));
    cr_expect(eq(int, info.local, -1));
    cr_expect(eq(int, info.alive, 1));
    pl_lock_close(lock);
}

/* ---- pl_lock_check (issue 9, defect 11b) --------------------------------- */

/* Someone removes the PID file's sidecar and locks a new one: the first
 * holder's lock excludes nobody any more, and pl_lock_check says so. */
Test(pidfile, check_reports_a_lost_lock) {
    const char *p = plt_path("app.pid");
    pl_lock_t *lock = xopen_pid(p, NULL), *other = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    PLT_EXPECT_RC(pl_lock_check(lock), PL_OK, lock);
    cr_assert(eq(int, unlink(sidecar(p)), 0));
    PLT_ASSERT_RC(pl_lock_acquire(other), PL_OK, other);
    PLT_EXPECT_RC(pl_lock_check(lock), PL_ELOST, lock);
    PLT_EXPECT_RC(pl_lock_check(other), PL_OK, other);
    pl_lock_close(other);
    pl_lock_close(lock);
}

/* ---- long names and leftovers (issue 9, defects 7 and 1) ----------------- */

/* Every name a Lock accepts works, up to 255 bytes: the sidecar of a name
 * too long for ".lock" gets a shortened, hashed name. */
Test(pidfile, longest_names_work) {
    for (int len = 245; len <= 255; len += 5) {
        char name[256];
        long pid = 0;
        memset(name, 'p', (size_t)len);
        name[len] = '\0';
        const char *p = plt_path(name);
        pl_lock_t *lock = xopen_pid(p, NULL), *other = xopen_pid(p, NULL);
        PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
        cr_expect(eq(int, pl_pidfile_read(p, &pid, NULL), PL_OK), "%d", len);
        cr_expect(eq(long, pid, (long)getpid()));
        cr_expect(eq(int, plt_dir_entries(plt_dir), 2), "%d", len);
        PLT_EXPECT_RC(pl_lock_acquire(other), PL_ELOCKED, other);
        PLT_EXPECT_RC(pl_lock_release(lock), PL_OK, lock);
        cr_expect(eq(int, plt_dir_entries(plt_dir), 0), "%d: files left", len);
        pl_lock_close(other);
        pl_lock_close(lock);
    }
}

/* A holder killed while publishing its PID (no O_TMPFILE) leaves its
 * temporary file; the next holder removes it once it is old enough. */
Test(pidfile, acquire_removes_a_dead_holders_temporary_file) {
    const char *p = plt_path("app.pid");
    const char *left = plt_path(".app.pid.0123456789ab.tmp");
    struct timespec old[2] = {{0, UTIME_OMIT}, {0, 0}};
    plt_write_file(left, "123");
    old[1].tv_sec = time(NULL) - 3600;
    cr_assert(eq(int, utimensat(AT_FDCWD, left, old, 0), 0));
    pl_lock_t *lock = xopen_pid(p, NULL);
    PLT_ASSERT_RC(pl_lock_acquire(lock), PL_OK, lock);
    cr_expect(eq(int, plt_exists(left), 0), "the leftover is still there");
    pl_lock_close(lock);
    cr_expect(eq(int, plt_dir_entries(plt_dir), 0));
}

static int pid_dir_syncs;

static int count_dir_fsync(int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        pid_dir_syncs++;
    return fsync(fd);
}

/* The published PID survives a power loss: the directory is synced. */
Test(pidfile, publication_syncs_the_directory) {
    pl_lock_t *lock = xopen_pid(plt_path("app.pid"), NULL);
    plt_sys_install();
    plt_real.fsync = count_dir_fsync;
    int rc = pl_lock_acquire(lock);
    pl__sys_reset();
    PLT_EXPECT_RC(rc, PL_OK, lock);
    cr_expect(ge(int, pid_dir_syncs, 1), "the directory was never synced");
    pl_lock_close(lock);
}
