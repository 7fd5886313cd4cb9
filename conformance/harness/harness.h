/*
 * harness.h -- the conformance harness: contender processes driven over the
 * portalock-conformance/1 line protocol (conformance/PROTOCOL.md), per-test
 * directories, the interval oracle, verdicts and results recording.
 *
 * A scenario is one Criterion test:
 *
 *     Test(exclusivity, many_contenders, .init = plt_setup, .fini =
 * plt_teardown)
 *     {
 *         plt_proc_t *a = plt_start("a");        // the implementation under
 * test plt_reply_t r; plt_begin("exclusivity"); plt_cmd(a, &r, 5, "open path=%s
 * backend=%s", ...); plt_check(plt_is(&r, "opened"), "open: %s", r.line);
 *         ...
 *         plt_finish();                           // verdict, known file, JSON
 *     }
 *
 * plt_check() records a property violation instead of aborting, so that
 * plt_finish() can compare the outcome with the implementation's known-
 * results file (conformance/known/) and report pass / fail / expected-fail /
 * unexpected-pass.  Infrastructure problems (cannot spawn, no hello) fail the
 * test at once through cr_assert.
 *
 * Environment read by the harness:
 *   PORTALOCK_CONTENDER   "cmd args..." of the implementation under test
 *                         (split on spaces; default: our pl_contender)
 *   PL_CONFORMANCE_DIR    directory for lock files (default: a directory
 *                         under the build tree, see PLT_DEFAULT_DIR)
 *   PL_CONFORMANCE_DIR2   a second mount of the same export (cross-mount)
 *   PL_CONFORMANCE_BACKEND flock | lockf | ofd (default flock)
 *   PL_CONFORMANCE_FS     filesystem label for results (default: probed)
 *   PL_CONFORMANCE_KNOWN  known-results file (default: from hello)
 *   PL_CONFORMANCE_RESULTS append one JSON line per scenario to this file
 *   PL_CONFORMANCE_PEER   the other side of the *cross_impl scenarios:
 *                         "python" (default: portalocker, or our contender
 *                         when the subject is portalocker) or "native" (our
 *                         pl_contender built with this suite: a ported
 *                         contender against a native one on one file)
 *   PORTALOCK_CONTENDER_B "cmd args..." for every second subject contender
 *                         of a test (the 2nd, 4th...): participant B, e.g.
 *                         "ssh hostB /usr/local/libexec/portalock/pl_contender"
 *   PL_CONFORMANCE_DIR_B  where B sees PL_CONFORMANCE_DIR (its own mount of
 *                         the same export): paths sent to B are rewritten
 */
#ifndef PLT_HARNESS_H
#define PLT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PLT_PROTOCOL   "portalock-conformance/1"
#define PLT_MAX_PROCS  32
#define PLT_MAX_FIELDS 32

typedef struct plt_reply {
    char *line;      /* the raw reply line ("" if none) */
    char word[32];   /* first token: acquired, error... */
    char code[32];   /* error replies: "PL_ELOCKED"... */
    const char *msg; /* error replies: the message */
    int nfields;
    char *key[PLT_MAX_FIELDS]; /* key=value fields (into an owned copy) */
    char *val[PLT_MAX_FIELDS];
    char *parsed; /* owned copy the fields point into */
} plt_reply_t;

typedef struct plt_proc {
    pid_t pid;
    int to_child;   /* its stdin */
    int from_child; /* its stdout */
    char *buf;      /* bytes read but not yet returned */
    size_t len, cap;
    char label[32];
    int reaped;
    int status;
    /* From hello. */
    char impl[32];
    char version[32];
    char kinds[128];
    char backends[64];
    char features[512];
    long hello_pid;
    int remote_b; /* started from PORTALOCK_CONTENDER_B (paths rewritten) */
    /* hello's optional fields (PROTOCOL.md §4). */
    int clock_realtime;  /* clock=realtime: timestamps are converted to
                            CLOCK_MONOTONIC as replies arrive */
    int crash_terminate; /* crash=terminate: crash exits with status 137 */
    int wait_poll;       /* wait=poll: a blocked acquire polls */
    int windows;         /* platform=windows: pid= is a Windows process id */
} plt_proc_t;

/* Which implementation a contender runs. */
typedef enum plt_impl {
    PLT_SUBJECT = 0, /* PORTALOCK_CONTENDER, default ours */
    PLT_OURS = 1,    /* our pl_contender */
    PLT_PYTHON = 2   /* adapters/portalocker_contender.py */
} plt_impl_t;

/* ---- per-test setup (.init / .fini) -------------------------------------- */

void plt_setup(void);
void plt_teardown(void);
const char *plt_dir(void);  /* this test's private directory */
const char *plt_dir2(void); /* the same directory through PL_CONFORMANCE_DIR2,
                               NULL if not set */
const char *plt_backend(void);
const char *plt_fs(void);
/* Writes dir/name into buf (aborts the test if it does not fit). */
const char *plt_path(char *buf, size_t len, const char *name);
/* Percent-encodes a protocol value; rotating static buffers. */
const char *plt_q(const char *value);

/* ---- contenders ---------------------------------------------------------- */

/* Spawns a contender of the subject implementation and says hello. */
plt_proc_t *plt_start(const char *label);
/* Any implementation; as_nobody runs it through setpriv as uid/gid 65534. */
plt_proc_t *plt_start_impl(const char *label, plt_impl_t impl, int as_nobody);
/* An explicit argv (NULL-terminated); hello is sent when hello != 0. */
plt_proc_t *plt_start_argv(const char *label, char *const argv[], int hello);
/* Whether uid 65534 can run the implementation's contender (setpriv, the
 * binary and the test directory reachable); else 0 and the reason. */
int plt_nobody_can_run(plt_impl_t impl, char *why, size_t len);
/* Whether the Python portalocker adapter can run here (else prints why). */
int plt_python_available(void);
/* The other side of a cross-implementation scenario for this subject (see
 * PL_CONFORMANCE_PEER); plt_not_applicable() with the reason when it cannot
 * run. */
plt_impl_t plt_peer_impl(const plt_proc_t *subject);
/* 1 when PL_CONFORMANCE_PEER=native: subject and peer may both be
 * "portalock" (different builds). */
int plt_peer_is_native(void);

/* Sends one command line (printf-style, no newline). 0 ok, -1 dead pipe. */
int plt_send(plt_proc_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Waits up to timeout seconds for one reply: 1 got, 0 timeout, -1 EOF. */
int plt_recv(plt_proc_t *p, plt_reply_t *r, double timeout);
/* plt_send + plt_recv; returns 1 on a reply, else 0/-1 (r->word = ""). */
int plt_cmd(plt_proc_t *p, plt_reply_t *r, double timeout, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Like plt_cmd, but the reply's word must be "want" (else the scenario is
 * failed with the reply and the test aborted: a precondition). */
void plt_must(plt_proc_t *p, plt_reply_t *r, double timeout, const char *want,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void plt_reply_free(plt_reply_t *r);

int plt_is(const plt_reply_t *r, const char *word);
const char *plt_get(const plt_reply_t *r, const char *key);
int64_t plt_get_i64(const plt_reply_t *r, const char *key); /* 0 if absent */
/* Capability test: list is "kinds", "backends" or "features". */
int plt_has(const plt_proc_t *p, const char *list, const char *item);

/* The process id of p on the suite's machine, for /proc: hello's pid (a
 * wrapper such as setpriv may sit between), or the spawned child's when
 * hello's pid is not one of ours (platform=windows: a Windows process id
 * under Wine, whose Linux process is the child the suite spawned). */
pid_t plt_host_pid(const plt_proc_t *p);
/* 1 if status is how p ends after "crash": SIGKILL, or exit status 137
 * for a contender that says crash=terminate (Windows' TerminateProcess). */
int plt_crashed(const plt_proc_t *p, int status);

/* Waits for exit (SIGKILL after timeout); returns the wait status. */
int plt_wait_exit(plt_proc_t *p, double timeout);
void plt_kill(plt_proc_t *p);
/* 1 once pid has a descriptor open on path (via /proc), 0 after timeout,
 * -1 where there is no /proc/<pid>/fd (macOS, the BSDs). */
int plt_wait_fd_open(pid_t pid, const char *path, double timeout);

int64_t plt_now_ns(void); /* CLOCK_MONOTONIC, comparable with contenders */
void plt_sleep(double seconds);

/* ---- oracle -------------------------------------------------------------- */

typedef struct plt_interval {
    int64_t a, b; /* [acquired, released], CLOCK_MONOTONIC ns */
    int who;      /* contender index */
} plt_interval_t;

/* Parses "a:b,a:b,..." appending to iv; returns the number parsed or -1. */
int plt_parse_intervals(const char *s, plt_interval_t *iv, int max, int who);
/* Largest number of intervals open at one instant (touching = not open). */
int plt_max_concurrency(const plt_interval_t *iv, int n);
/* First pair of overlapping intervals (sorted by start): 1 found, 0 none. */
int plt_find_overlap(const plt_interval_t *iv, int n, plt_interval_t *x,
                     plt_interval_t *y);

/* Clock check: every interval of p (n of them) lies in [from, to] of the
 * suite's CLOCK_MONOTONIC (from = before the command was sent, to = after
 * its reply came), within PLT_CLOCK_SLACK.  Records a violation naming p's
 * clock otherwise.  A participant B (another host) is not checked: its
 * clock is not the suite's (PROTOCOL.md §6).  Returns 1 if all lie inside. */
#define PLT_CLOCK_SLACK 0.050 /* s: clock=realtime conversion error is us */
int plt_check_on_clock(const plt_proc_t *p, const plt_interval_t *iv, int n,
                       int64_t from, int64_t to);

/* ---- verdicts and results ------------------------------------------------ */

void plt_begin(const char *scenario);
/* Records a violation when cond is false; returns cond. */
int plt_check(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void plt_measure(const char *key, double value);
void plt_observe(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A verdict other than pass/fail, e.g. "not-coherent" (test passes). */
void plt_set_verdict(const char *verdict, const char *reason);
/* Records not-applicable with the reason, prints it and skips the test. */
void plt_not_applicable(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* Computes the verdict, consults the known file, writes the JSON line and
 * fails the test on fail / unexpected-pass. */
void plt_finish(void);

#endif /* PLT_HARNESS_H */
