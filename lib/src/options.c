/*
 * options.c -- option defaults, mode and flag checks, backend names and the
 * process default backend, and the Redis option parser (pure parsing, built
 * with or without hiredis so the CLI can parse URLs either way).
 */
#include "internal.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void pl_lock_options_init(pl_lock_options_t *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->mode = NULL;
    opts->timeout = 5.0;
    opts->check_interval = 0.25;
    opts->fail_when_locked = -1;
    opts->flags = 0;
    opts->backend = PL_BACKEND_DEFAULT;
    opts->file_perms = 0;
}

/* v arrives as a double argument, so it is rounded to double whatever
 * FLT_EVAL_METHOD is; the casts round the literals the same way. */
int pl__is_unset(double v) {
    return v == (double)PL_UNSET || v == (double)-1e300;
}

/*
 * Python's open() modes that make sense for a lock file: one of r, a, w,
 * then '+' and 'b' in any order, each at most once.  'x' and 't' are refused.
 */
int pl__mode_normalise(const char *mode, char out[4]) {
    int plus = 0, binary = 0;
    const char *p;

    if (mode == NULL)
        mode = "a";
    if (mode[0] != 'r' && mode[0] != 'a' && mode[0] != 'w')
        return PL_EINVAL;
    for (p = mode + 1; *p != '\0'; p++) {
        if (*p == '+' && !plus)
            plus = 1;
        else if (*p == 'b' && !binary)
            binary = 1;
        else
            return PL_EINVAL;
    }
    out[0] = mode[0];
    out[1] = plus ? '+' : '\0';
    out[2] = '\0';
    out[3] = '\0';
    return PL_OK;
}

int pl__flags_check(unsigned flags, pl_error_t *err) {
    unsigned kind = flags & (PL_SHARED | PL_EXCLUSIVE);

    if (flags & ~(PL_SHARED | PL_EXCLUSIVE | PL_NON_BLOCKING))
        return pl__error_set(err, PL_EINVAL, 0,
                             "flags 0x%x: unknown bits (PL_SHARED, "
                             "PL_EXCLUSIVE, PL_NON_BLOCKING only)",
                             flags);
    if (kind == (PL_SHARED | PL_EXCLUSIVE))
        return pl__error_set(err, PL_EINVAL, 0,
                             "flags 0x%x: PL_SHARED and PL_EXCLUSIVE together",
                             flags);
    if (kind == 0)
        return pl__error_set(err, PL_EINVAL, 0,
                             "flags 0x%x: need PL_SHARED or PL_EXCLUSIVE",
                             flags);
    return PL_OK;
}

/* ---- backends ------------------------------------------------------------ */

static const char *const backend_names[] = {"default", "flock", "lockf", "ofd",
                                            "lockfileex"};

const char *pl_backend_name(pl_backend_t backend) {
    if ((unsigned)backend < sizeof(backend_names) / sizeof(backend_names[0]))
        return backend_names[backend];
    return "unknown";
}

int pl_backend_from_name(const char *name, pl_backend_t *out) {
    unsigned i;

    if (name == NULL || out == NULL)
        return PL_EINVAL;
    for (i = 0; i < sizeof(backend_names) / sizeof(backend_names[0]); i++) {
        if (strcmp(name, backend_names[i]) == 0) {
            *out = (pl_backend_t)i;
            return PL_OK;
        }
    }
    if (strcmp(name, "fcntl") == 0) {
        *out = PL_BACKEND_LOCKF;
        return PL_OK;
    }
    return PL_EINVAL;
}

int pl_backend_available(pl_backend_t backend) {
    if (backend == PL_BACKEND_DEFAULT)
        return 1;
    return pl__os_backend_available(backend);
}

/* 0 = not set by pl_set_default_backend(). */
static _Atomic int default_backend_set;

pl_backend_t pl_default_backend(void) {
    int b = atomic_load_explicit(&default_backend_set, memory_order_relaxed);
    return b != 0 ? (pl_backend_t)b : pl__os_native_default_backend();
}

int pl_set_default_backend(pl_backend_t backend) {
    if (backend != PL_BACKEND_DEFAULT && !pl__os_backend_available(backend))
        return PL_ENOTSUP;
    /* PL_BACKEND_DEFAULT goes back to PORTALOCK_BACKEND / the native one. */
    atomic_store_explicit(&default_backend_set, (int)backend,
                          memory_order_relaxed);
    return PL_OK;
}

pl_backend_t pl__backend_resolve(pl_backend_t backend) {
    return backend == PL_BACKEND_DEFAULT ? pl_default_backend() : backend;
}

/* ---- Redis options --------------------------------------------------------
 * Only parsing lives here; the lock itself is redis/redis_lock.c (hiredis) or
 * redis/redis_none.c (PL_ENOTSUP). */

void pl_redis_options_init(pl_redis_options_t *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->host = "127.0.0.1";
    opts->port = 6379;
    opts->connect_timeout = 1.0;
    opts->command_timeout = 2.0;
    opts->timeout = 5.0;
    opts->check_interval = 0.25;
    opts->fail_when_locked = 0;
    opts->shared = 0;
    opts->unavailable_timeout = 1.0;
    opts->evict_stalled = 1;
    opts->fair = 0;
}

/* Decodes %XX escapes in place (user and password may need them).  %00 is
 * refused: the decoded NUL would silently cut the string short. */
static int percent_decode(char *s) {
    char *w = s;
    for (; *s != '\0'; s++) {
        if (*s == '%') {
            char hex[3];
            if (!isxdigit((unsigned char)s[1]) ||
                !isxdigit((unsigned char)s[2]))
                return -1;
            hex[0] = s[1];
            hex[1] = s[2];
            hex[2] = '\0';
            if (strtol(hex, NULL, 16) == 0)
                return -1;
            *w++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return 0;
}

static int parse_port(const char *s, int *port) {
    long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (int)v;
    return 0;
}

/* "[user]:password@" in front of the host, if any. */
static int parse_userinfo(pl_redis_options_t *opts, char *userinfo,
                          pl_error_t *err) {
    char *colon = strchr(userinfo, ':');
    if (colon == NULL) /* "redis://secret@host": a password, like redis-cli */
        return pl__error_set(err, PL_EINVAL, 0,
                             "redis URL: write the password as "
                             "redis://:password@host");
    *colon = '\0';
    if (percent_decode(userinfo) != 0 || percent_decode(colon + 1) != 0)
        return pl__error_set(err, PL_EINVAL, 0,
                             "redis URL: bad %%-escape in user or password");
    opts->username = userinfo[0] != '\0' ? userinfo : NULL;
    opts->password = colon[1] != '\0' ? colon + 1 : NULL;
    return PL_OK;
}

/* "host", "host:port", "[v6]" or "[v6]:port"; an optional "/" or "/db" path
 * follows (db 0 only: the lock uses database 0). */
static int parse_hostport(pl_redis_options_t *opts, char *hp, pl_error_t *err) {
    char *slash, *port = NULL;

    slash = strchr(hp, '/');
    if (slash != NULL) {
        if (slash[1] != '\0' && strcmp(slash + 1, "0") != 0)
            return pl__error_set(err, PL_EINVAL, 0,
                                 "redis URL: only database 0 is supported "
                                 "(got \"%s\")",
                                 slash);
        *slash = '\0';
    }
    if (hp[0] == '[') {
        char *close = strchr(hp, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return pl__error_set(err, PL_EINVAL, 0,
                                 "redis URL: bad [IPv6] host");
        *close = '\0';
        if (close[1] == ':')
            port = close + 2;
        hp++;
    } else {
        port = strchr(hp, ':');
        if (port != NULL)
            *port++ = '\0';
    }
    if (hp[0] == '\0')
        return pl__error_set(err, PL_EINVAL, 0, "redis URL: empty host");
    opts->host = hp;
    opts->port = 6379;
    if (port != NULL && parse_port(port, &opts->port) != 0)
        return pl__error_set(err, PL_EINVAL, 0,
                             "redis URL: bad port \"%s\" (1..65535)", port);
    return PL_OK;
}

int pl_redis_options_from_url(pl_redis_options_t *opts, char *url,
                              pl_error_t *err) {
    char *rest, *at;
    int rc;

    if (opts == NULL || url == NULL)
        return pl__error_set(err, PL_EINVAL, 0, "redis URL: NULL argument");
    if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        at = strrchr(rest, '@'); /* unix://:password@/path */
        if (at != NULL) {
            *at = '\0';
            if ((rc = parse_userinfo(opts, rest, err)) != PL_OK)
                return rc;
            rest = at + 1;
        } else {
            opts->username = NULL;
            opts->password = NULL;
        }
        if (rest[0] != '/')
            return pl__error_set(err, PL_EINVAL, 0,
                                 "redis URL: unix:// needs an absolute path "
                                 "(unix:///path/to/sock)");
        opts->unix_socket = rest;
        return PL_OK;
    }
    if (strncmp(url, "redis+sentinel://", 17) == 0 ||
        strncmp(url, "redis-sentinel://", 17) == 0 ||
        strncmp(url, "sentinel://", 11) == 0 ||
        strncmp(url, "redis+cluster://", 16) == 0 ||
        strncmp(url, "redis-cluster://", 16) == 0)
        return pl__error_set(
            err, PL_ENOTSUP, 0,
            "redis URL: Sentinel and Cluster are not supported: the lock "
            "needs one standalone Redis (PUBSUB NUMSUB and client ids are "
            "node-local, so a failover or another node could grant it "
            "twice); give the primary as redis://host:port");
    if (strncmp(url, "redis://", 8) != 0)
        return pl__error_set(
            err, PL_EINVAL, 0,
            "redis URL \"%.64s\": expected redis://host[:port] "
            "or unix:///path",
            url);
    rest = url + 8;
    opts->unix_socket = NULL;
    opts->username = NULL;
    opts->password = NULL;
    at = strrchr(rest, '@');
    if (at != NULL) {
        *at = '\0';
        if ((rc = parse_userinfo(opts, rest, err)) != PL_OK)
            return rc;
        rest = at + 1;
    }
    return parse_hostport(opts, rest, err);
}
