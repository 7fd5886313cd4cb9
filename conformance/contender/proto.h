/*
 * proto.h -- the line plumbing every C contender of portalock-conformance/1
 * shares (conformance/PROTOCOL.md): reading a command into words and
 * key=value tokens, %XX decoding, one-line replies, the monotonic clock.
 * The contenders (contender.c, redis/redis_contender.c) keep only their
 * commands.
 */
#ifndef PL_CONTENDER_PROTO_H
#define PL_CONTENDER_PROTO_H

#include <stdint.h>

#define PLP_PROTOCOL "portalock-conformance/1"
#define PLP_MAX_ARGS 32

/* One command: key[0] is the verb; val[i] is NULL for a bare word. */
typedef struct plp_args {
    int n;
    char *key[PLP_MAX_ARGS];
    char *val[PLP_MAX_ARGS];
} plp_args_t;

/* The protocol's timestamps in nanoseconds: CLOCK_MONOTONIC (system-wide on
 * Linux), or what plc_os_clock_name() names (os.h). */
int64_t plp_now_ns(void);
void plp_sleep_s(double seconds);

/* Splits line in place; values are %XX-decoded. */
void plp_split_args(char *line, plp_args_t *a);
/* The value of key=..., NULL if absent. */
const char *plp_arg(const plp_args_t *a, const char *key);
/* 1 if the bare word is present. */
int plp_has_word(const plp_args_t *a, const char *word);
/* key=SECONDS as a double, dflt if absent; "inf" and "forever" give -1
 * (wait forever).  No validation: for contenders that trust the harness. */
double plp_arg_seconds(const plp_args_t *a, const char *key, double dflt);
/* key=N as a long, dflt if absent (no validation). */
long plp_arg_long(const plp_args_t *a, const char *key, long dflt);

/* Writes one reply line and flushes. */
void plp_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "error <PL_CODE> <message>", the message folded onto one line. */
void plp_reply_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Reads commands from stdin until EOF or until dispatch returns nonzero
 * (quit), one line each with its line ending stripped.  On POSIX SIGPIPE is
 * reset to its default so a suite that died cannot leave us blocked writing
 * a reply (plc_os_serve_init).
 */
void plp_serve(int (*dispatch)(char *line));

#endif /* PL_CONTENDER_PROTO_H */
