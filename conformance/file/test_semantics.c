/*
 * test_semantics.c -- what the kernel primitives make of descriptors,
 * processes and mounts (anchors.md §1), checked per backend:
 *
 *   owner                flock / OFD: the open file description
 *                        lockf (fcntl F_SETLK): the (process, inode) pair
 *   two objects, one     flock / OFD: exclude each other
 *   process              lockf: do not (one owner) -- recorded, not failed
 *   close of another fd  flock / OFD: harmless
 *                        lockf: drops the process's lock ("close pitfall")
 *                        -- recorded, not failed
 *   fork                 the child's exit or release must not free the
 *                        parent's lock (portalock's rule; portalocker 2.2.1
 *                        releases the parent's flock in a child's unlock)
 *
 * plus 'w' mode truncation, cross-implementation exclusion and cross-mount
 * coherence.
 */
#include "common.h"

#include "portalock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int per_process_backend(const char *backend) {
    return strcmp(backend, "lockf") == 0;
}

PLT_TEST(semantics, same_process_objects) {
    plt_proc_t *a =
        sc_begin("same_process_objects", "lock", "same-process-objects");
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    int excluded;

    plt_path(path, sizeof(path), "twice.lock");
    sc_open(a, "x", "lock", path, NULL);
    sc_open(a, "y", "lock", path, NULL);
    plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=x timeout=0");
    plt_reply_free(&r);
    sc_acquire(a, &r, "y", "timeout=0");
    excluded = plt_is(&r, "already-locked");
    plt_observe("same_process_exclusion", "%s", excluded ? "yes" : "no");
    if (per_process_backend(plt_backend()))
        plt_check(excluded || plt_is(&r, "acquired"),
                  "second object in the same process: %s", r.line);
    else
        plt_check(excluded,
                  "two lock objects on one path in one process both hold "
                  "the %s lock: %s",
                  plt_backend(), r.line);
    plt_reply_free(&r);
    /* Another process is excluded either way. */
    sc_open(b, "x", "lock", path, NULL);
    sc_acquire(b, &r, "x", "timeout=0");
    plt_check(plt_is(&r, "already-locked"), "other process: %s", r.line);
    plt_reply_free(&r);
    plt_finish();
}

PLT_TEST(semantics, close_pitfall) {
    plt_proc_t *a = sc_begin("close_pitfall", "lock", "close-other");
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];
    int kept;

    plt_path(path, sizeof(path), "close.lock");
    sc_open(a, "l", "lock", path, NULL);
    plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
    plt_reply_free(&r);
    plt_must(a, &r, PLT_REPLY, "closed-other", "close-other id=l");
    plt_reply_free(&r);
    sc_open(b, "l", "lock", path, NULL);
    sc_acquire(b, &r, "l", "timeout=0");
    kept = plt_is(&r, "already-locked");
    plt_observe("close_pitfall", "%s", kept ? "absent" : "present");
    if (per_process_backend(plt_backend()))
        plt_check(kept || plt_is(&r, "acquired"), "after close: %s", r.line);
    else
        plt_check(kept,
                  "closing another descriptor of the file released the "
                  "holder's %s lock: %s",
                  plt_backend(), r.line);
    plt_reply_free(&r);
    plt_finish();
}

static void fork_case(const char *scenario, const char *action) {
    plt_proc_t *a = sc_begin(scenario, "lock", "fork");
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096];

    plt_path(path, sizeof(path), "fork.lock");
    sc_open(a, "l", "lock", path, NULL);
    plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
    plt_reply_free(&r);
    plt_must(a, &r, PLT_REPLY, "forked", "fork-child id=l action=%s", action);
    plt_observe("child_result", "%s",
                plt_get(&r, "result") ? plt_get(&r, "result") : "?");
    plt_reply_free(&r);
    sc_open(b, "l", "lock", path, NULL);
    sc_acquire(b, &r, "l", "timeout=0");
    plt_check(plt_is(&r, "already-locked"),
              "after a forked child's %s the parent's lock is gone: %s", action,
              r.line);
    plt_reply_free(&r);
    /* And the parent can still release it normally. */
    plt_cmd(a, &r, PLT_REPLY, "release id=l");
    plt_observe("parent_release", "%s", r.word);
    plt_reply_free(&r);
    plt_finish();
}

PLT_TEST(semantics, fork_child_exit) {
    fork_case("fork_child_exit", "exit");
}

PLT_TEST(semantics, fork_child_release) {
    fork_case("fork_child_release", "release");
}

PLT_TEST(semantics, w_mode_truncates_after_lock) {
    plt_proc_t *a = sc_begin("w_mode", "lock", "write,w-mode");
    plt_proc_t *b = plt_start("b");
    plt_reply_t r;
    char path[4096], buf[256];

    plt_path(path, sizeof(path), "data.lock");
    sc_open(a, "l", "lock", path, "mode=a");
    plt_must(a, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
    plt_reply_free(&r);
    plt_must(a, &r, PLT_REPLY, "written", "write id=l data=HOLDERDATA");
    plt_reply_free(&r);
    sc_open(b, "l", "lock", path, "mode=w");
    sc_acquire(b, &r, "l", "timeout=0");
    plt_check(plt_is(&r, "already-locked"), "'w' contender: %s", r.line);
    plt_reply_free(&r);
    plt_check(sc_read_file(path, buf, sizeof(buf)) >= 0 &&
                  strcmp(buf, "HOLDERDATA") == 0,
              "a losing 'w' contender changed the holder's data to '%s'", buf);
    sc_release(a, "l");
    plt_check(sc_read_file(path, buf, sizeof(buf)) >= 0 &&
                  strcmp(buf, "HOLDERDATA") == 0,
              "data after release: '%s'", buf);
    sc_acquire(b, &r, "l", "timeout=2");
    plt_check(plt_is(&r, "acquired"), "'w' contender after release: %s",
              r.line);
    plt_reply_free(&r);
    plt_check(sc_read_file(path, buf, sizeof(buf)) == 0,
              "'w' holder did not truncate once it held the lock: '%s'", buf);
    plt_finish();
}

/* A holder of one implementation excludes a contender of the other. */
PLT_TEST(semantics, cross_impl) {
    plt_proc_t *s = sc_begin("cross_impl", "lock", NULL);
    plt_proc_t *o, *pair[2];
    plt_reply_t r;
    char path[4096];
    int i;

    o = plt_start_impl("other", plt_peer_impl(s), 0);
    if (strcmp(s->impl, o->impl) == 0 && !plt_peer_is_native())
        plt_not_applicable("subject and other side are both %s", s->impl);
    sc_need_peer_backend(s, o);
    plt_observe("pair", "%s/%s+%s/%s", s->impl, sc_backend_for(s), o->impl,
                sc_backend_for(o));
    plt_path(path, sizeof(path), "cross.lock");
    pair[0] = s;
    pair[1] = o;
    for (i = 0; i < 2; i++)
        sc_open(pair[i], "l", "lock", path, NULL);
    for (i = 0; i < 2; i++) {
        plt_proc_t *holder = pair[i], *other = pair[1 - i];
        plt_must(holder, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
        plt_reply_free(&r);
        sc_acquire(other, &r, "l", "timeout=0");
        plt_check(plt_is(&r, "already-locked"),
                  "%s holds (%s), %s (%s) tries: %s", holder->impl,
                  sc_backend_for(holder), other->impl, sc_backend_for(other),
                  r.line);
        plt_reply_free(&r);
        sc_release(holder, "l");
        sc_acquire(other, &r, "l", "timeout=0");
        plt_check(plt_is(&r, "acquired"), "%s after %s released: %s",
                  other->impl, holder->impl, r.line);
        plt_reply_free(&r);
        sc_release(other, "l");
    }
    plt_finish();
}

/*
 * Two lock families on one file: the subject on the suite's backend, our
 * native pl_contender on PL_CONFORMANCE_PEER_BACKEND (flock, lockf, ofd).
 * Each side holds in turn while the other tries.  The verdict is recorded
 * ("exclusion" both / one-way / none) and must be what is known:
 *
 *   - one family (lockf and OFD are both fcntl record locks): exclusion;
 *   - flock against the fcntl family: whatever pl_probe() says for the
 *     directory (flock_fcntl_exclude: independent on Linux local
 *     filesystems, one lock manager on NFS and the BSDs; -1 = unknown, the
 *     verdict is then only recorded);
 *   - lockfileex of a Windows subject: the suite runs on Linux, so that is
 *     Wine, whose wineserver keeps a process's LockFileEx locks as fcntl
 *     F_SETLK locks on its own descriptor of the file (the range mapped to
 *     Unix offsets): the fcntl family.  So Wine's LockFileEx and native
 *     lockf / OFD exclude each other in both directions, and flock is
 *     independent of them on a local filesystem.  A change in Wine shows
 *     here as a failure.
 */
#define MIXED_CYCLES 40

static const char *lock_family(const plt_proc_t *p, const char *backend) {
    if (strcmp(backend, "flock") == 0)
        return "flock";
    if (strcmp(backend, "lockf") == 0 || strcmp(backend, "ofd") == 0)
        return "fcntl";
    if (strcmp(backend, "lockfileex") == 0 && p->windows)
        return "fcntl"; /* Wine: wineserver's F_SETLK */
    return backend;
}

PLT_TEST(semantics, mixed_backends) {
    plt_proc_t *s = sc_begin("mixed_backends", "lock", NULL);
    const char *pb = getenv("PL_CONFORMANCE_PEER_BACKEND");
    plt_proc_t *o, *pair[2];
    const char *be[2];
    plt_reply_t r;
    pl_probe_t probe;
    char path[4096];
    int excluded[2] = {0, 0};
    int expect, i;

    if (pb == NULL || pb[0] == '\0')
        plt_not_applicable("PL_CONFORMANCE_PEER_BACKEND is not set (the "
                           "mixed run names the native side's backend)");
    o = plt_start_impl("native", PLT_OURS, 0);
    if (!plt_has(o, "backends", pb))
        plt_not_applicable("the native contender has no %s backend "
                           "(backends=%s)",
                           pb, o->backends);
    pair[0] = s;
    pair[1] = o;
    be[0] = plt_backend();
    be[1] = pb;
    plt_observe("pair", "%s%s/%s+%s/%s", s->impl, s->windows ? "(windows)" : "",
                be[0], o->impl, be[1]);
    plt_path(path, sizeof(path), "mixed.lock");
    for (i = 0; i < 2; i++) {
        plt_must(pair[i], &r, PLT_REPLY, "opened",
                 "open id=l kind=lock path=%s backend=%s", plt_q(path), be[i]);
        plt_reply_free(&r);
    }
    for (i = 0; i < 2; i++) {
        plt_proc_t *h = pair[i], *w = pair[1 - i];
        plt_must(h, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
        plt_reply_free(&r);
        sc_acquire(w, &r, "l", "timeout=0");
        excluded[i] = plt_is(&r, "already-locked");
        plt_check(excluded[i] || plt_is(&r, "acquired"), "%s/%s tries: %s",
                  w->label, be[1 - i], r.line);
        plt_reply_free(&r);
        if (!excluded[i])
            sc_release(w, "l");
        sc_release(h, "l");
    }
    plt_observe("subject_holds_other_excluded", "%s",
                excluded[0] ? "yes" : "no");
    plt_observe("other_holds_subject_excluded", "%s",
                excluded[1] ? "yes" : "no");
    plt_observe("exclusion", "%s",
                excluded[0] && excluded[1]   ? "both"
                : excluded[0] || excluded[1] ? "one-way"
                                             : "none");
    cr_assert(pl_probe(plt_dir(), &probe, NULL) == PL_OK);
    if (strcmp(lock_family(s, be[0]), lock_family(o, be[1])) == 0)
        expect = 1;
    else
        expect = probe.flock_fcntl_exclude;
    plt_observe("expected", "%s",
                expect == 1   ? "both"
                : expect == 0 ? "none"
                              : "unknown (pl_probe: flock_fcntl_exclude=-1)");
    if (expect == 1 && excluded[0] && excluded[1]) {
        /* Both at once, many times: no overlap of the holding intervals
         * (timestamps of both platforms on one clock: a Windows side's are
         * converted from clock=realtime) and no lost counter update. */
        plt_interval_t iv[2 * MIXED_CYCLES], x, y;
        char counter[4096], buf[64];
        int total = 0;
        int64_t sent = plt_now_ns();
        plt_path(counter, sizeof(counter), "mixed.counter");
        for (i = 0; i < 2; i++)
            plt_send(pair[i],
                     "cycle id=l n=%d hold=0.0005 timeout=60 "
                     "check_interval=0.001 counter=%s",
                     MIXED_CYCLES, plt_q(counter));
        for (i = 0; i < 2; i++) {
            int k = -1;
            if (plt_recv(pair[i], &r, 120) == 1 && plt_is(&r, "cycled"))
                k = plt_parse_intervals(plt_get(&r, "intervals"), iv + total,
                                        MIXED_CYCLES, i);
            plt_check(k == MIXED_CYCLES, "%s cycle: %s", pair[i]->label,
                      r.line);
            if (k > 0) {
                plt_check_on_clock(pair[i], iv + total, k, sent, plt_now_ns());
                total += k;
            }
            plt_reply_free(&r);
        }
        plt_check(!plt_find_overlap(iv, total, &x, &y),
                  "%s and %s held at once: [%lld,%lld] and [%lld,%lld]",
                  pair[x.who]->label, pair[y.who]->label, (long long)x.a,
                  (long long)x.b, (long long)y.a, (long long)y.b);
        plt_check(sc_read_file(counter, buf, sizeof(buf)) >= 0 &&
                      atol(buf) == 2 * MIXED_CYCLES,
                  "counter is %s after %d locked increments (lost updates)",
                  buf, 2 * MIXED_CYCLES);
    }
    if (expect >= 0)
        plt_check(excluded[0] == expect && excluded[1] == expect,
                  "%s/%s holding excludes %s/%s: %s; the other way: %s "
                  "(expected: %s)",
                  s->impl, be[0], o->impl, be[1], excluded[0] ? "yes" : "no",
                  excluded[1] ? "yes" : "no", expect ? "both" : "neither");
    plt_finish();
}

/*
 * Two mounts of one export are two clients.  A coherent filesystem (a lock
 * forwarded to one server-side file) excludes across them; sshfs keeps locks
 * in each client's kernel and does not.  Not coherent is reported as
 * "not-coherent" when pl_probe() says so too (cross_mount_coherent = 0):
 * the library warned, the filesystem cannot do better.  If the probe
 * claimed otherwise, it is a failure.
 */
PLT_TEST(semantics, cross_mount) {
    plt_proc_t *a = sc_begin("cross_mount", "lock", NULL);
    plt_proc_t *b;
    plt_reply_t r;
    char p1[4096], p2[4096];
    pl_probe_t probe;
    int excluded[2] = {0, 0};
    int i;

    if (plt_dir2() == NULL)
        plt_not_applicable("PL_CONFORMANCE_DIR2 is not set (one mount only)");
    b = plt_start("b");
    plt_path(p1, sizeof(p1), "mount.lock");
    snprintf(p2, sizeof(p2), "%s/mount.lock", plt_dir2());
    sc_open(a, "l", "lock", p1, NULL);
    sc_open(b, "l", "lock", p2, NULL);
    for (i = 0; i < 2; i++) {
        plt_proc_t *h = i == 0 ? a : b, *o = i == 0 ? b : a;
        plt_must(h, &r, PLT_REPLY, "acquired", "acquire id=l timeout=0");
        plt_reply_free(&r);
        sc_acquire(o, &r, "l", "timeout=0");
        excluded[i] = plt_is(&r, "already-locked");
        plt_check(excluded[i] || plt_is(&r, "acquired"), "mount %d: %s", 2 - i,
                  r.line);
        plt_reply_free(&r);
        if (!excluded[i])
            sc_release(o, "l");
        sc_release(h, "l");
    }
    cr_assert(pl_probe(plt_dir(), &probe, NULL) == PL_OK);
    plt_observe("probe_cross_mount_coherent", "%d", probe.cross_mount_coherent);
    plt_observe("probe_fstype", "%s", probe.fstype);
    plt_observe("coherent", "%s",
                excluded[0] && excluded[1]   ? "yes"
                : excluded[0] || excluded[1] ? "one-way"
                                             : "no");
    if (!(excluded[0] && excluded[1])) {
        if (probe.cross_mount_coherent == 0)
            plt_set_verdict("not-coherent",
                            "two mounts do not exclude each other; "
                            "pl_probe reports cross_mount_coherent=0");
        else
            plt_check(0,
                      "two mounts of one export do not exclude each other, "
                      "but pl_probe reports cross_mount_coherent=%d (%s)",
                      probe.cross_mount_coherent, probe.guarantee);
    } else {
        plt_check(probe.cross_mount_coherent != 0,
                  "mounts exclude each other but pl_probe says they do not "
                  "(%s)",
                  probe.guarantee);
    }
    plt_finish();
}
