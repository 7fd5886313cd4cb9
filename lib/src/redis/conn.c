/*
 * conn.c -- RedisLock connections: connect, AUTH, replies and errors, and the
 * command connection (shared with the watcher under rl->mu).
 */
#include "redis_lock.h"

#include <stdio.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------
 */

struct timeval pl__rl_tv(double s) {
    struct timeval tv;
    if (s < 0.001)
        s = 0.001;
    tv.tv_sec = (long)s; /* time_t on POSIX, long on Windows */
    tv.tv_usec = (long)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

void pl__rl_random_hex(char *out, size_t bytes) {
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[32];
    size_t i;
    if (bytes > sizeof(buf))
        bytes = sizeof(buf);
    pl__os_random(buf, bytes);
    for (i = 0; i < bytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * bytes] = '\0';
}

static void rl_where(const rl_t *rl, char *buf, size_t len) {
    if (rl->unix_socket != NULL)
        snprintf(buf, len, "unix:%s", rl->unix_socket);
    else
        snprintf(buf, len, "%s:%d", rl->host, rl->port);
}

int pl__rl_copy(char *dst, size_t len, const char *src, size_t n) {
    if (n >= len)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Maps an error reply: NOAUTH/WRONGPASS -> PL_EAUTH, NOPERM -> PL_EACCES,
 * anything else -> PL_EPROTO.  Also covers replies of the wrong type. */
int pl__rl_reply_error(const redisReply *r, const char *what, pl_error_t *err) {
    if (!PL__REPLY_IS(r, REDIS_REPLY_ERROR))
        return pl__error_set(err, PL_EPROTO, 0,
                             "redis %s: unexpected reply type %d", what,
                             r != NULL ? r->type : -1);
    if (strncmp(r->str, "NOAUTH", 6) == 0 ||
        strncmp(r->str, "WRONGPASS", 9) == 0 ||
        strstr(r->str, "invalid password") != NULL)
        return pl__error_set(err, PL_EAUTH, 0, "redis %s: %s", what, r->str);
    /* The server is full: a connection problem the operator can fix
     * (maxclients), not a credentials or protocol one. */
    if (strstr(r->str, "max number of clients") != NULL)
        return pl__error_set(err, PL_ECONN, 0,
                             "redis %s: %s (the server's maxclients is "
                             "reached)",
                             what, r->str);
    if (strncmp(r->str, "NOPERM", 6) == 0)
        return pl__error_set(err, PL_EACCES, 0, "redis %s: %s", what, r->str);
    /* NOPERM inside the lock script (Redis 7 words it like this); the
     * reply names the script by sha only, never its source. */
    if (strstr(r->str, "can't run this command") != NULL ||
        strstr(r->str, "no permissions") != NULL)
        return pl__error_set(err, PL_EACCES, 0,
                             "redis %s: the ACL user lacks a right the lock "
                             "needs (see DESIGN.md section 8): %.160s",
                             what, r->str);
    return pl__error_set(err, PL_EPROTO, 0, "redis %s: %.200s", what, r->str);
}

int pl__rl_io_error(redisContext *c, const char *what, pl_error_t *err) {
    return pl__error_set(err, PL_ECONN, 0, "redis %s: %s", what,
                         c->errstr[0] != '\0' ? c->errstr : "connection lost");
}

/* Reads one reply; PL_ECONN on I/O failure (the context is then dead). */
int pl__rl_get(redisContext *c, redisReply **out, const char *what,
               pl_error_t *err) {
    void *r = NULL;
    *out = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || r == NULL)
        return pl__rl_io_error(c, what, err);
    *out = r;
    return PL_OK;
}

/* ---- connections ---------------------------------------------------------
 */

/* The value of "field=" in one CLIENT LIST line (length in *n), or NULL. */
const char *pl__rl_field(const char *line, const char *field, size_t *n) {
    size_t len = strlen(field);
    const char *p = line;
    while ((p = strstr(p, field)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[len] == '=') {
            p += len + 1;
            *n = strcspn(p, " \r\n");
            return p;
        }
        p += len;
    }
    return NULL;
}

/* The run_id in an INFO server reply into run ("-" if none). */
void pl__rl_info_run(const char *info, char *run, size_t len) {
    const char *p = strstr(info, "run_id:");
    size_t n = p != NULL ? strspn(p + 7, "0123456789abcdef") : 0;
    if (n > 0 && n < len)
        snprintf(run, len, "%.*s", (int)n, p + 7);
    else
        snprintf(run, len, "-");
}

/* An INFO the server refused (ACL NOPERM, or renamed away): fine, the run
 * id is then unknown ("-").  Any other error is a real one. */
int pl__rl_info_refused(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "NOPERM", 6) == 0 ||
            strstr(r->str, "unknown command") != NULL);
}

/* Connects with both timeouts (each at most limit seconds, if limit > 0)
 * and queues AUTH (*auth = 1) if configured; nothing is read yet, so
 * callers pipeline their first commands.  host: a numeric address to use
 * instead of the configured server (same port), or NULL. */
int pl__rl_connect(rl_t *rl, const char *host, double limit, redisContext **out,
                   int *auth, pl_error_t *err) {
    double ct =
        limit > 0 && limit < rl->connect_timeout ? limit : rl->connect_timeout;
    double mt =
        limit > 0 && limit < rl->command_timeout ? limit : rl->command_timeout;
    struct timeval tv = pl__rl_tv(ct);
    char where[300];
    redisContext *c;
    int rc;

    *out = NULL;
    *auth = 0;
    rl_where(rl, where, sizeof(where));
    if ((rc = pl__rl_os_init(err)) != PL_OK)
        return rc;
    if (rl->unix_socket != NULL)
        c = redisConnectUnixWithTimeout(rl->unix_socket, tv);
    else
        c = redisConnectWithTimeout(host != NULL ? host : rl->host, rl->port,
                                    tv);
    if (c == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "redis %s: out of memory",
                             where);
    if (c->err != 0 || redisSetTimeout(c, pl__rl_tv(mt)) != REDIS_OK) {
        rc = pl__error_set(err, PL_ECONN, 0, "redis %s: connect: %s", where,
                           c->errstr);
        redisFree(c);
        return rc;
    }
    /* hiredis opens sockets inheritable: a command the caller spawns
     * while holding must not inherit (and keep alive) the lock. */
    pl__rl_sock_noinherit(c);
    if (rl->unix_socket == NULL)
        (void)redisEnableKeepAlive(c); /* half-open TCP is found eventually */
    if (rl->password != NULL) {
        const char *argv[3] = {"AUTH", rl->username, rl->password};
        if (rl->username != NULL)
            redisAppendCommandArgv(c, 3, argv, NULL);
        else {
            argv[1] = rl->password;
            redisAppendCommandArgv(c, 2, argv, NULL);
        }
        *auth = 1;
    }
    *out = c;
    return PL_OK;
}

int pl__rl_check_auth(redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = pl__rl_get(c, &r, "AUTH", err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR &&
        strstr(r->str, "max number of clients") != NULL)
        rc = pl__rl_reply_error(r, "AUTH", err); /* full, not refused */
    else if (r->type == REDIS_REPLY_ERROR)
        rc = pl__error_set(err, PL_EAUTH, 0, "redis AUTH: %s", r->str);
    freeReplyObject(r);
    return rc;
}


/*
 * INFO server reply: the run id (recorded with every grant so a record or
 * a client id from an earlier server run is never trusted, DESIGN.md 4.2)
 * and redis_mode: the lock needs one standalone node, so Cluster (even a
 * single node owning every slot) and Sentinel are refused.  A refused INFO
 * (ACL) leaves the run id unknown ("-").
 */
static int rl_read_info(rl_t *rl, redisContext *c, pl_error_t *err) {
    redisReply *r;
    const char *p;
    int rc = pl__rl_get(c, &r, "INFO", err);
    if (rc != PL_OK)
        return rc;
    strcpy(rl->run, "-");
    if (r->type == REDIS_REPLY_STRING) {
        if ((p = strstr(r->str, "redis_mode:")) != NULL &&
            strncmp(p + 11, "standalone", 10) != 0) {
            size_t n = strcspn(p + 11, "\r\n");
            rc = pl__error_set(
                err, PL_ENOTSUP, 0,
                "redis lock %s: the server runs in %.*s mode; the lock needs "
                "one standalone Redis (PUBSUB NUMSUB and client ids are "
                "node-local, so a Cluster or a Sentinel-managed failover "
                "could grant it twice)",
                rl->lock->path, (int)(n < 16 ? n : 16), p + 11);
        } else {
            pl__rl_info_run(r->str, rl->run, sizeof(rl->run));
        }
    } else if (!pl__rl_info_refused(r)) {
        rc = pl__rl_reply_error(r, "INFO", err); /* refused INFO is fine */
    }
    freeReplyObject(r);
    return rc;
}

/* The command connection, (re)connected if needed.  Caller holds rl->mu.
 * One round trip: [AUTH], INFO server, SCRIPT LOAD. */
int pl__rl_cmd_ensure(rl_t *rl, pl_error_t *err) {
    const char *info[2] = {"INFO", "server"};
    redisContext *c;
    int auth, rc;

    if (rl->cmd != NULL && rl->cmd->err == 0)
        return PL_OK;
    if (rl->cmd != NULL) {
        redisFree(rl->cmd);
        rl->cmd = NULL;
    }
    rl->cmd_gen++; /* whatever a waiter learnt on the old one is stale */
    if ((rc = pl__rl_connect(rl, NULL, 0, &c, &auth, err)) != PL_OK)
        return rc;
    redisAppendCommandArgv(c, 2, info, NULL);
    pl__rl_queue_script_load(c);
    if (auth)
        rc = pl__rl_check_auth(c, err);
    if (rc == PL_OK)
        rc = rl_read_info(rl, c, err);
    if (rc == PL_OK)
        rc = pl__rl_read_sha(rl, c, err);
    if (rc != PL_OK) {
        redisFree(c);
        return rc;
    }
    rl->cmd = c;
    return PL_OK;
}

/* One command on the command connection; caller holds rl->mu. */
int pl__rl_cmd_argv(rl_t *rl, int argc, const char **argv, redisReply **out,
                    pl_error_t *err) {
    int rc = pl__rl_cmd_ensure(rl, err);
    *out = NULL;
    if (rc != PL_OK)
        return rc;
    *out = redisCommandArgv(rl->cmd, argc, argv, NULL);
    if (*out == NULL)
        return pl__rl_io_error(rl->cmd, argv[0], err);
    return PL_OK;
}

/* A command on the command connection whose reply we only classify. */
int pl__rl_cmd_simple(rl_t *rl, int argc, const char **argv, redisReply **out,
                      pl_error_t *err) {
    int rc;
    pl__rl_mutex_lock(&rl->mu);
    rc = pl__rl_cmd_argv(rl, argc, argv, out, err);
    pl__rl_mutex_unlock(&rl->mu);
    return rc;
}

/* ---- fork ----------------------------------------------------------------
 *
 * A child forked while a lock object has connections inherits their
 * sockets; kept open they keep a dead parent's subscription (and so its
 * lock) alive.  The platform closes the child's copies at fork time
 * (posix/redis_os.c: pthread_atfork, pl__rl_register), without writing
 * anything on them (a write could release the parent's lock, portalocker
 * #140), and marks the contexts so redisFree does not close the numbers
 * again.  The object itself is tidied on its next use (conn_pid differs)
 * or by pl_lock_close.
 */

/* In a forked child: drop the inherited connections without writing (the
 * atfork handler already closed their sockets). */
void pl__rl_drop_inherited(rl_t *rl) {
    if (rl->cmd != NULL)
        pl__rl_sock_drop(rl->cmd);
    if (rl->sub != NULL)
        pl__rl_sock_drop(rl->sub);
    if (rl->probe != NULL)
        pl__rl_sock_drop(rl->probe);
    pl__rl_probe_close(rl);
    pl__rl_sub_close(rl);
    if (rl->cmd != NULL) {
        redisFree(rl->cmd);
        rl->cmd = NULL;
    }
    rl->watcher_started = 0; /* the thread exists only in the parent */
    pl__rl_mutex_reset(&rl->mu);
    rl->conn_pid = pl__os_getpid();
}
