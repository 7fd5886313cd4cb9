/*
 * test_kinds.c -- RLock counting, TemporaryFileLock's split-inode race
 * (portalocker #115) and PidFileLock's holder report.
 */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

PLT_TEST(kinds, rlock) {
    plt_proc_t *a = sc_begin("rlock", "rlock", NULL);
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    int i;

    plt_path(path, sizeof(path), "rlock.lock");
    sc_open(a, "r", "rlock", path, NULL);
    sc_open(b, "r", "rlock", path, NULL);
    for (i = 1; i <= 3; i++) {
        sc_acquire(a, &r, "r", "timeout=0");
        plt_check(plt_is(&r, "acquired") && plt_get_i64(&r, "count") == i,
                  "RLock acquire #%d: %s (want count=%d)", i, r.line, i);
        plt_reply_free(&r);
    }
    /* A second RLock object in the same process is another owner too
     * (flock/OFD); lockf cannot tell them apart (one owner per process). */
    sc_open(a, "r2", "rlock", path, NULL);
    sc_acquire(a, &r, "r2", "timeout=0");
    plt_observe("same_process_second_rlock", "%s", r.word);
    /* (lockf: r2 stays "held"; releasing it would unlock the process's
     * lock on the file under r as well.) */
    if (strcmp(plt_backend(), "lockf") != 0)
        plt_check(plt_is(&r, "already-locked"),
                  "second RLock object in the same process: %s", r.line);
    plt_reply_free(&r);
    for (i = 2; i >= 0; i--) {
        sc_acquire(b, &r, "r", "timeout=0");
        plt_check(plt_is(&r, "already-locked"),
                  "second RLock object (another process) while the first "
                  "is held %d deep: %s",
                  i + 1, r.line);
        plt_reply_free(&r);
        plt_cmd(a, &r, PLT_REPLY, "release id=r");
        plt_check(plt_is(&r, "released") && plt_get_i64(&r, "count") == i,
                  "RLock release to depth %d: %s", i, r.line);
        plt_reply_free(&r);
    }
    sc_acquire(b, &r, "r", "timeout=0");
    plt_check(plt_is(&r, "acquired"),
              "second RLock object after full release: %s", r.line);
    plt_reply_free(&r);
    plt_cmd(a, &r, PLT_REPLY, "release id=r");
    plt_check(plt_is(&r, "error") && strcmp(r.code, "PL_ENOTHELD") == 0,
              "RLock released more times than acquired: %s (want error "
              "PL_ENOTHELD)",
              r.line);
    plt_reply_free(&r);
    plt_finish();
}

/*
 * #115: the waiter opens the temporary lock file (old inode) before the
 * holder releases.  The holder's release unlinks the path; the waiter then
 * locks a file that no longer has a name.  Unless acquire re-checks that its
 * descriptor is still the file at the path, a third process creates a new
 * file there and "holds the lock" too.
 */
PLT_TEST(kinds, temporary_split_inode) {
    plt_proc_t *h = sc_begin("temporary_split_inode", "temporary", NULL);
    plt_proc_t *w = plt_start("w");
    plt_proc_t *t = plt_start("t");
    plt_reply_t r;
    char path[4096];
    int got;

    plt_path(path, sizeof(path), "temp.lock");
    sc_open(h, "t", "temporary", path, NULL);
    plt_must(h, &r, PLT_REPLY, "acquired", "acquire id=t timeout=0");
    plt_reply_free(&r);
    plt_check(sc_exists(path), "temporary lock file missing while held");
    sc_open(w, "t", "temporary", path,
            "timeout=10 check_interval=0.01 fail_when_locked=0");
    plt_send(w, "acquire id=t");
    /* Wait until the waiter has the old inode open.  A Windows contender
     * under Wine opens files through wineserver, so its own /proc/<pid>/fd
     * does not show them: give it 1 s instead (its acquire opens the file
     * before the first attempt, one server call; Wine start-up is over by
     * now, hello came back). */
    if (w->windows) {
        plt_sleep(1.0);
        got = 1;
    } else {
        got = plt_wait_fd_open(plt_host_pid(w), path, 5);
    }
    if (got < 0)
        plt_not_applicable("no /proc/<pid>/fd here: cannot see when the "
                           "waiter has the file open");
    plt_check(got == 1, "waiter never opened %s (cannot stage the race)", path);
    got = plt_recv(w, &r, 0.05);
    plt_check(got == 0, "waiter answered while the lock was held: %s", r.line);
    plt_reply_free(&r);
    sc_release(h, "t");
    got = plt_recv(w, &r, PLT_REPLY);
    if (!plt_check(got == 1 && plt_is(&r, "acquired"), "waiter: %s",
                   got == 1 ? r.line : "no reply")) {
        /* Nobody holds it now; the rest would only repeat the failure. */
        plt_reply_free(&r);
        plt_finish();
        return;
    }
    plt_reply_free(&r);
    /* At most one holder: a third contender must be refused. */
    sc_open(t, "t", "temporary", path, NULL);
    sc_acquire(t, &r, "t", "timeout=0");
    plt_check(plt_is(&r, "already-locked"),
              "third contender while the waiter holds: %s (two holders of "
              "one TemporaryFileLock)",
              r.line);
    plt_reply_free(&r);
    /* The waiter's descriptor is the file at the path, not the unlinked
     * old inode ("(deleted)" in /proc). */
    if (w->windows)
        /* No /proc view of a Windows process's handles: the file at the
         * path must at least exist while the waiter holds it. */
        plt_check(sc_exists(path), "%s is gone while the waiter holds it",
                  path);
    else
        plt_check(plt_wait_fd_open(plt_host_pid(w), path, 0.2) == 1,
                  "the waiter holds a file that is not %s (old, unlinked "
                  "inode)",
                  path);
    plt_finish();
}

PLT_TEST(kinds, pidfile_holder) {
    plt_proc_t *h = sc_begin("pidfile_holder", "pidfile", "holder,crash");
    plt_proc_t *c = plt_start("c");
    plt_reply_t r;
    char path[4096];

    plt_path(path, sizeof(path), "app.pid");
    sc_open(h, "p", "pidfile", path, NULL);
    plt_must(h, &r, PLT_REPLY, "acquired", "acquire id=p timeout=0");
    plt_reply_free(&r);
    sc_open(c, "p", "pidfile", path, NULL);
    sc_acquire(c, &r, "p", "timeout=0");
    plt_check(plt_is(&r, "already-locked"), "pidfile held elsewhere: %s",
              r.line);
    plt_reply_free(&r);
    plt_cmd(c, &r, PLT_REPLY, "holder id=p");
    plt_check(plt_is(&r, "holder") && plt_get_i64(&r, "pid") == h->hello_pid &&
                  plt_get_i64(&r, "alive") == 1,
              "holder report while %ld holds: %s", (long)h->hello_pid, r.line);
    plt_reply_free(&r);

    plt_send(h, "crash");
    plt_wait_exit(h, 10);
    plt_cmd(c, &r, PLT_REPLY, "holder id=p");
    plt_check((plt_is(&r, "holder") && plt_get_i64(&r, "pid") == h->hello_pid &&
               plt_get_i64(&r, "alive") == 0) ||
                  (plt_is(&r, "error") && strcmp(r.code, "PL_ENOENT") == 0),
              "holder report after %ld was killed: %s (want alive=0)",
              (long)h->hello_pid, r.line);
    plt_reply_free(&r);
    sc_acquire(c, &r, "p", "timeout=2 fail_when_locked=0");
    plt_check(plt_is(&r, "acquired"), "pidfile after the holder died: %s",
              r.line);
    plt_reply_free(&r);
    plt_cmd(c, &r, PLT_REPLY, "holder id=p");
    plt_check(plt_is(&r, "holder") && plt_get_i64(&r, "pid") == c->hello_pid &&
                  plt_get_i64(&r, "alive") == 1,
              "holder report of the new holder %ld: %s", (long)c->hello_pid,
              r.line);
    plt_reply_free(&r);
    sc_release(c, "p");
    plt_check(!sc_exists(path), "PID file %s left after release", path);
    plt_finish();
}
