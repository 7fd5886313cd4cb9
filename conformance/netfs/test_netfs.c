/*
 * test_netfs.c -- protocol-level network filesystem locks: two clients of a
 * real lock manager (NFSv4 LOCK/LOCKU against nfs-ganesha, SMB2 LOCK against
 * samba), reached without a kernel client (this machine has none).  What is
 * measured is the server's lock manager and the network, not a kernel
 * client's cache.
 *
 * Environment (conformance/netfs/run-netfs.sh sets it from ci/fs.sh):
 *   PORTALOCK_CONTENDER     client A's contender command (the subject)
 *   PL_NETFS_CONTENDER_B    client B's (default: the same); e.g. run in the
 *                           client namespace: "ip netns exec plnA ..."
 *   PL_CONFORMANCE_DIR      a directory inside the export/share, as the
 *                           server's file system sees it
 *   PL_NETFS_LEASE          seconds a silent client keeps its locks (NFSv4
 *                           lease; bounds the dead-client scenarios)
 *   PL_NETFS_CUT, PL_NETFS_UNCUT
 *                           shell commands that take client B's network
 *                           down and up (network_cut runs only with them)
 *   PL_NETFS_LOCAL_BACKENDS server-local holders to check interop with
 *                           (default "ofd lockf flock")
 *
 * Time bounds are generous (a shared 2-core VM; the lease timer of a server
 * has its own granularity) and each says why.
 */
#include "harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY 30.0 /* a protocol round trip on a loaded VM, with retries */

static double env_seconds(const char *name, double dflt) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? strtod(v, NULL) : dflt;
}

/* Client B: PL_NETFS_CONTENDER_B, else the subject's command. */
static plt_proc_t *start_b(void) {
    static char cmd[4096];
    char *argv[40];
    int n = 0;
    const char *b = getenv("PL_NETFS_CONTENDER_B");
    if (b == NULL || b[0] == '\0')
        return plt_start("b");
    snprintf(cmd, sizeof(cmd), "%s", b);
    for (char *tok = strtok(cmd, " "); tok != NULL && n < 39;
         tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n] = NULL;
    return plt_start_argv("b", argv, 1);
}

static void open_lock(plt_proc_t *p, const char *id, const char *path) {
    plt_reply_t r;
    plt_must(p, &r, REPLY, "opened", "open id=%s kind=lock path=%s", id,
             plt_q(path));
    plt_reply_free(&r);
}

/* acquire with extra options; returns the reply word (static copy). */
static const char *acquire(plt_proc_t *p, plt_reply_t *r, const char *id,
                           const char *extra) {
    plt_cmd(p, r, REPLY + 120, "acquire id=%s %s", id, extra);
    return r->word;
}

#define NETFS_TEST(name)                                                       \
 Test(netfs, name, .init = plt_setup, .fini = plt_teardown, .timeout = 240)

/* A holds; B is refused at once (NFS4ERR_DENIED / STATUS_LOCK_NOT_GRANTED);
 * after A's release B gets it. */
NETFS_TEST(exclusion) {
    plt_proc_t *a = plt_start("a"), *b = start_b();
    char path[4096];
    plt_reply_t r;

    plt_begin("netfs_exclusion");
    plt_path(path, sizeof(path), "x.lock");
    open_lock(a, "x", path);
    open_lock(b, "x", path);
    plt_check(strcmp(acquire(a, &r, "x", "timeout=0"), "acquired") == 0,
              "A: %s", r.line);
    plt_reply_free(&r);
    plt_check(strcmp(acquire(b, &r, "x", "timeout=0"), "already-locked") == 0,
              "B while A holds: %s", r.line);
    plt_reply_free(&r);
    plt_must(a, &r, REPLY, "released", "release id=x");
    plt_reply_free(&r);
    plt_check(strcmp(acquire(b, &r, "x", "timeout=0"), "acquired") == 0,
              "B after A released: %s", r.line);
    plt_reply_free(&r);
    plt_check(strcmp(acquire(a, &r, "x", "timeout=0"), "already-locked") == 0,
              "A while B holds: %s", r.line);
    plt_reply_free(&r);
    plt_finish();
}

/* Both clients cycle; no two [acquired, released] intervals overlap (one
 * kernel, so one CLOCK_MONOTONIC for both, also across namespaces) and the
 * counter read-modify-written under the lock loses no update. */
NETFS_TEST(cycle_exclusive) {
    enum { N = 30 };
    plt_proc_t *p[2] = {plt_start("a"), start_b()};
    plt_interval_t iv[2 * N], x, y;
    char path[4096], counter[4096], buf[64];
    int total = 0;

    plt_begin("netfs_cycle_exclusive");
    plt_path(path, sizeof(path), "c.lock");
    plt_path(counter, sizeof(counter), "counter");
    for (int i = 0; i < 2; i++)
        open_lock(p[i], "c", path);
    for (int i = 0; i < 2; i++)
        plt_send(p[i],
                 "cycle id=c n=%d hold=0.002 timeout=60 "
                 "check_interval=0.005 counter=%s",
                 N, plt_q(counter));
    for (int i = 0; i < 2; i++) {
        plt_reply_t r;
        int got = plt_recv(p[i], &r, 240);
        if (plt_check(got == 1 && plt_is(&r, "cycled"), "cycle %d: %s", i,
                      got == 1 ? r.line : "no reply")) {
            int k = plt_parse_intervals(plt_get(&r, "intervals"), iv + total,
                                        2 * N - total, i);
            plt_check(k == N, "%d intervals from %d", k, i);
            total += k > 0 ? k : 0;
        }
        plt_reply_free(&r);
    }
    plt_check(!plt_find_overlap(iv, total, &x, &y),
              "overlap: [%lld,%lld] (client %d) and [%lld,%lld] (client %d)",
              (long long)x.a, (long long)x.b, x.who, (long long)y.a,
              (long long)y.b, y.who);
    buf[0] = '\0';
    FILE *f = fopen(counter, "r");
    if (f != NULL) {
        if (fgets(buf, sizeof(buf), f) == NULL)
            buf[0] = '\0';
        fclose(f);
    }
    plt_check(atoi(buf) == 2 * N, "counter %s, expected %d", buf, 2 * N);
    plt_finish();
}

/*
 * Handoff as a client does it: the protocol has no wait (an NFSv4.0 client
 * and this SMB client poll), so B retries every check_interval; A releases;
 * handoff = B's acquired - A's release call.  B must never get the lock
 * before A's release.  Bound: interval + 2 s of scheduling on a loaded VM.
 */
static void handoff(const char *scenario, const char *opts, double interval,
                    double bound) {
    plt_proc_t *a = plt_start("a"), *b = start_b();
    char path[4096];
    plt_reply_t r, rb;
    int64_t rel;

    plt_begin(scenario);
    if (strstr(opts, "poll=") != NULL && !plt_has(a, "features", "poll"))
        plt_not_applicable("the client has no poll= schedule (feature poll)");
    plt_path(path, sizeof(path), "h.lock");
    open_lock(a, "h", path);
    open_lock(b, "h", path);
    plt_must(a, &r, REPLY, "acquired", "acquire id=h timeout=0");
    plt_reply_free(&r);
    plt_send(b, "acquire id=h timeout=60 %s", opts);
    plt_sleep(0.3);
    plt_must(a, &r, REPLY, "released", "release id=h");
    rel = plt_get_i64(&r, "t");
    plt_reply_free(&r);
    if (plt_check(plt_recv(b, &rb, 90) == 1 && plt_is(&rb, "acquired"), "B: %s",
                  rb.line)) {
        double h = (double)(plt_get_i64(&rb, "t") - rel) / 1e9;
        plt_check(h >= 0, "B acquired %.6f s before A's release", -h);
        plt_check(h < bound, "handoff %.3f s > %.1f s", h, bound);
        plt_measure("handoff_s", h);
        plt_measure("poll_interval_s", interval);
        plt_observe("polls", "%s",
                    plt_get(&rb, "polls") ? plt_get(&rb, "polls") : "?");
    }
    plt_reply_free(&rb);
    plt_finish();
}

NETFS_TEST(handoff_poll_10ms) {
    handoff("netfs_handoff_poll_10ms", "check_interval=0.01", 0.01, 2.5);
}

/* The Linux NFSv4.0 client's schedule (1 s, doubling): A held 0.3 s, so B's
 * second try at ~1 s gets it; bound 1 s + 2 s of load. */
NETFS_TEST(handoff_linux_schedule) {
    handoff("netfs_handoff_linux_schedule", "poll=linux", 1.0, 3.5);
}

/*
 * Server-local holders: the server maps protocol locks onto fcntl/OFD locks
 * of the backing file (ganesha's VFS FSAL; samba with posix locking = yes),
 * so a local lockf or OFD holder excludes the network client and the other
 * way round; flock is a separate lock space on Linux, so a local flock
 * holder does not (observed and recorded, and checked as documented).
 */
static void interop(const char *backend) {
    plt_proc_t *b = start_b();
    plt_proc_t *local = plt_start_impl("local", PLT_OURS, 0);
    char path[4096], scen[64];
    const char *want_local =
        strcmp(backend, "flock") == 0 ? "acquired" : "already-locked";
    const char *list = getenv("PL_NETFS_LOCAL_BACKENDS");
    plt_reply_t r;

    snprintf(scen, sizeof(scen), "netfs_server_local_%s", backend);
    plt_begin(scen);
    if (list != NULL && strstr(list, backend) == NULL)
        plt_not_applicable("PL_NETFS_LOCAL_BACKENDS=%s", list);
    plt_path(path, sizeof(path), "i.lock");
    plt_must(local, &r, REPLY, "opened",
             "open id=l kind=lock path=%s backend=%s", plt_q(path), backend);
    plt_reply_free(&r);
    open_lock(b, "i", path);
    plt_must(local, &r, REPLY, "acquired", "acquire id=l timeout=0");
    plt_reply_free(&r);
    plt_check(strcmp(acquire(b, &r, "i", "timeout=0"), want_local) == 0,
              "network client while a local %s lock is held: %s (want %s)",
              backend, r.line, want_local);
    if (plt_is(&r, "acquired")) {
        plt_reply_free(&r);
        plt_must(b, &r, REPLY, "released", "release id=i");
    }
    plt_reply_free(&r);
    plt_must(local, &r, REPLY, "released", "release id=l");
    plt_reply_free(&r);
    plt_must(b, &r, REPLY, "acquired", "acquire id=i timeout=0");
    plt_reply_free(&r);
    plt_cmd(local, &r, REPLY, "acquire id=l timeout=0");
    plt_check(strcmp(r.word, want_local) == 0,
              "local %s while the network client holds: %s (want %s)", backend,
              r.line, want_local);
    plt_reply_free(&r);
    plt_finish();
}

NETFS_TEST(server_local_ofd) {
    interop("ofd");
}
NETFS_TEST(server_local_lockf) {
    interop("lockf");
}
NETFS_TEST(server_local_flock) {
    interop("flock");
}

/*
 * A client dies (SIGKILL) holding the lock.  NFSv4: nothing tells the
 * server, the lock lives until the lease expires (PL_NETFS_LEASE; ganesha
 * reaps expired clients on its own tick, so up to about twice that).  SMB:
 * the kernel closes the dead process's TCP connection and the server drops
 * the session's locks at once.  Measured: kill -> the other client's poll
 * (every 0.1 s) succeeds.  Bound: 3 x lease + 10 s.
 */
NETFS_TEST(dead_client_sigkill) {
    double lease = env_seconds("PL_NETFS_LEASE", 0);
    plt_proc_t *a = plt_start("a"), *b = start_b();
    char path[4096];
    plt_reply_t r;
    int64_t t_kill;

    plt_begin("netfs_dead_client_sigkill");
    plt_path(path, sizeof(path), "d.lock");
    open_lock(a, "d", path);
    open_lock(b, "d", path);
    plt_must(a, &r, REPLY, "acquired", "acquire id=d timeout=0");
    plt_reply_free(&r);
    t_kill = plt_now_ns();
    plt_send(a, "crash");
    plt_wait_exit(a, 10);
    plt_cmd(b, &r, 3 * lease + 60,
            "acquire id=d timeout=%.0f check_interval=0.1", 3 * lease + 10);
    if (plt_check(plt_is(&r, "acquired"), "B after A died: %s", r.line)) {
        double s = (double)(plt_get_i64(&r, "t") - t_kill) / 1e9;
        plt_measure("survival_s", s);
        plt_measure("lease_s", lease);
        plt_check(s < 3 * lease + 10, "the lock survived %.1f s", s);
    }
    plt_reply_free(&r);
    plt_finish();
}

/*
 * Client B loses the network while holding (PL_NETFS_CUT, B running in
 * its own namespace): the process lives but cannot renew.  Measured: cut ->
 * A's poll succeeds (NFSv4: the lease expires; SMB has no lease, so the
 * lock outlives a short cut: recorded as "still held after the window");
 * then B's network comes back and B's release is recorded (a lost lock must not
 * be reported as released silently: an error or a success are both observed,
 * the measurement is the point).
 */
NETFS_TEST(network_cut) {
    double lease = env_seconds("PL_NETFS_LEASE", 0);
    /* How long A tries: 3 leases + 30 s (the server's reaper tick, a loaded
     * VM); without a lease (SMB) PL_NETFS_CUT_WINDOW, default 20 s. */
    double window =
        lease > 0 ? 3 * lease + 30 : env_seconds("PL_NETFS_CUT_WINDOW", 20);
    const char *cut = getenv("PL_NETFS_CUT"), *uncut = getenv("PL_NETFS_UNCUT");
    plt_proc_t *a, *b;
    char path[4096];
    plt_reply_t r;
    int64_t t_cut;
    int rc;

    plt_begin("netfs_network_cut");
    if (cut == NULL || cut[0] == '\0' || uncut == NULL)
        plt_not_applicable("PL_NETFS_CUT/PL_NETFS_UNCUT not set (no namespace "
                           "client)");
    a = plt_start("a");
    b = start_b();
    plt_path(path, sizeof(path), "n.lock");
    open_lock(a, "n", path);
    open_lock(b, "n", path);
    plt_must(b, &r, REPLY, "acquired", "acquire id=n timeout=0");
    plt_reply_free(&r);
    t_cut = plt_now_ns();
    rc = system(cut);
    cr_assert(rc == 0, "%s failed", cut);
    plt_cmd(a, &r, window + 60, "acquire id=n timeout=%.0f check_interval=0.1",
            window);
    rc = system(uncut);
    if (lease == 0 && plt_is(&r, "timeout")) {
        /* No lease: the server keeps the session (and its locks) until its
         * TCP connection fails, which a short cut does not cause. */
        plt_measure("survival_min_s", window);
        plt_observe("survival", "still held after %.0f s (no lease)", window);
    } else if (plt_check(plt_is(&r, "acquired"),
                         "A after B's network was cut: %s", r.line)) {
        double s = (double)(plt_get_i64(&r, "t") - t_cut) / 1e9;
        plt_measure("survival_s", s);
        plt_measure("lease_s", lease);
    }
    plt_reply_free(&r);
    cr_assert(rc == 0, "%s failed", uncut);
    plt_cmd(b, &r, 90, "release id=n");
    plt_observe("b_release_after_cut", "%s", r.line);
    plt_reply_free(&r);
    plt_finish();
}
