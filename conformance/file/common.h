/*
 * common.h -- helpers shared by the file-lock scenarios.
 *
 * Timing bounds used across the scenarios (the machine running them may be
 * a 2-core VM shared with sanitizer builds and other jobs, so every bound
 * is generous and the reason is written next to it):
 *   PLT_IMMEDIATE   a non-blocking answer ("at once")
 *   PLT_REPLY       how long the suite waits for a reply that must come
 */
#ifndef PLT_COMMON_H
#define PLT_COMMON_H

#include "harness.h"

#include <criterion/criterion.h>

/* "At once": one system call plus scheduling; 50 ms even under load. */
#define PLT_IMMEDIATE 0.050
/* Replies that must come: generous, a loaded CI VM can stall for seconds. */
#define PLT_REPLY 10.0

#define PLT_TEST(suite, name)                                                  \
 Test(suite, name, .init = plt_setup, .fini = plt_teardown, .timeout = 120)

/*
 * Starts the scenario: plt_begin(), and not-applicable unless the subject
 * implementation supports the backend and, if given, the kind and features
 * (comma-separated).  Returns the first subject contender.
 */
plt_proc_t *sc_begin(const char *scenario, const char *kind,
                     const char *features);
/* Backend to use for p: the suite's, or lockf for an implementation without
 * OFD in an OFD run (POSIX record locks and OFD locks conflict). */
const char *sc_backend_for(const plt_proc_t *p);
/* Not applicable unless the other side of a cross-implementation scenario
 * has the suite's backend (a Windows subject's lockfileex: the Linux
 * implementations have none; Windows against Linux on one file is
 * semantics/mixed_backends). */
void sc_need_peer_backend(const plt_proc_t *subject, const plt_proc_t *peer);
/* open id=<id> kind=<kind> path=<path> backend=... <extra>; must succeed. */
void sc_open(plt_proc_t *p, const char *id, const char *kind, const char *path,
             const char *extra);
/* acquire; returns the reply word ("acquired", "already-locked"...). */
const char *sc_acquire(plt_proc_t *p, plt_reply_t *r, const char *id,
                       const char *extra);
/* release; must succeed (precondition). */
int64_t sc_release(plt_proc_t *p, const char *id);
/* Elapsed seconds of an acquire reply (t - t0). */
double sc_elapsed(const plt_reply_t *r);
/* Contents of a file into buf (NUL-terminated); -1 if unreadable. */
long sc_read_file(const char *path, char *buf, size_t len);
int sc_exists(const char *path);

#endif
