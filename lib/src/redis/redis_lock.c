/*
 * redis_lock.c -- RedisLock: a Redis lock bound to the holder's connection.
 *
 * The promise (portalocker's): unlike key/TTL locks, the lock is freed the
 * moment its holder's connection dies, and the API is the other locks' one.
 * The design and its safety argument are in DESIGN.md; in short:
 *
 *   - Each acquire opens a subscription connection ("sub") subscribed to a
 *     channel of its own, pl:{NAME}:h:<random uuid>, and to pl:{NAME}:ev.
 *     CLIENT ID gives the connection's id (never reused within a server run).
 *   - ONE Lua script arbitrates every grant atomically: the lock is free when
 *     the recorded holder's channel has no subscriber (PUBSUB NUMSUB == 0:
 *     its connection is gone), or when the caller brings a dead-holder proof
 *     for exactly that (channel, client id).  A grant also requires that the
 *     caller's own channel is subscribed, so every grant is bound to a live
 *     connection.  It writes the owner record (channel, client id, token) and
 *     returns a fencing token from an INCR counter that starts from the
 *     server's TIME in microseconds when missing (monotonic across restarts
 *     without persistence).
 *   - Release is compare-and-delete by (channel, token) plus PUBLISH on the
 *     event channel: waiters wake by notification and re-run the script.
 *     Death publishes nothing, so waiters also re-run the script every
 *     RL_POLL_SECONDS (5 ms): that is how a SIGKILLed holder is replaced in
 *     milliseconds.  Cost: one EVALSHA per waiter per 5 ms.
 *   - Dead-holder proof: every check_interval a waiter asks CLIENT LIST ID
 *     <holder's id>; an empty answer proves the holder's connection is gone
 *     even if a foreign subscriber keeps its channel "alive".  A stalled
 *     holder (SIGSTOP) gets "ping"s on its channel; without a "pong" for
 *     unavailable_timeout it is evicted by CLIENT KILL ID <its exact id>
 *     (never by name) if evict_stalled, which is again a proof.
 *   - The holder's watcher thread reads its sub connection: it answers pings
 *     (over the command connection, under a mutex) and turns EOF into "lost"
 *     (on_lost callback, pl_lock_check and release give PL_ELOST).
 *   - Shared mode: readers in a hash; a waiting writer registers as pending
 *     writer, and new readers wait while a live pending writer exists, so
 *     writers are not starved.  Dead readers and pending writers are pruned
 *     by the same NUMSUB rule.
 *
 * Threads: the user's thread owns the object; the watcher thread exists only
 * while held and touches only the sub connection (which it owns) and the
 * command connection under rl->mu.  Fork: a child never writes on inherited
 * sockets; it only closes its copies.
 */
#include "hiredis_compat.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

/* Liveness poll while waiting: how often a waiter re-runs the script to see
 * whether the holder's connection died (Redis announces no disconnects). */
#define RL_POLL_SECONDS 0.005
/* Longest lock name; keeps every derived name bounded. */
#define RL_NAME_MAX 256
#define RL_KEY_MAX  (RL_NAME_MAX + 16) /* "pl:{NAME}:readers" */
#define RL_CHAN_MAX (RL_KEY_MAX + 40)  /* "pl:{NAME}:h:<32 hex>" */
#define RL_ID_MAX   24

/* clang-format off */
/*
 * KEYS: 1 owner hash {chan, cid, tok}; 2 readers hash chan -> "cid tok";
 *       3 pending writers hash chan -> cid; 4 fencing counter.
 * ARGV: 1 op (acq|rel|chk|cancel); 2 mode (x|s); 3 my channel; 4 my client
 *       id; 5 my token (rel/chk) or proof channel (acq); 6 proof client id;
 *       7 event channel; 8 "1" = may register as pending writer.
 * acq returns {1, token} granted, {0, chan, cid, kind} blocked by a live
 * holder (kind x owner, s reader, p pending writer), {-1} my channel has no
 * subscriber.
 */
static const char RL_SCRIPT[] =
"local op, mode, me = ARGV[1], ARGV[2], ARGV[3]\n"
"local function alive(ch)\n"
"  return redis.call('PUBSUB', 'NUMSUB', ch)[2] > 0\n"
"end\n"
"if op == 'rel' or op == 'chk' then\n"
"  local held = false\n"
"  if mode == 'x' then\n"
"    local o = redis.call('HMGET', KEYS[1], 'chan', 'tok')\n"
"    held = o[1] == me and o[2] == ARGV[5]\n"
"  else\n"
"    local v = redis.call('HGET', KEYS[2], me)\n"
"    held = v and string.match(v, '^%d+ (%d+)$') == ARGV[5]\n"
"  end\n"
"  if not held then return 0 end\n"
"  if op == 'chk' then\n"
"    if alive(me) then return 1 end\n"
"    return 0\n"
"  end\n"
"  if mode == 'x' then redis.call('DEL', KEYS[1])\n"
"  else redis.call('HDEL', KEYS[2], me) end\n"
"  redis.call('PUBLISH', ARGV[7], 'released')\n"
"  return 1\n"
"end\n"
"if op == 'cancel' then\n"
"  if redis.call('HDEL', KEYS[3], me) == 1 then\n"
"    redis.call('PUBLISH', ARGV[7], 'cancelled')\n"
"  end\n"
"  return 1\n"
"end\n"
"if op ~= 'acq' then return redis.error_reply('ERR portalock: bad op') end\n"
"if not alive(me) then return {-1} end\n"
"local pchan, pcid = ARGV[5], ARGV[6]\n"
"local function dead(ch, cid)\n"
"  return cid == nil or (ch == pchan and cid == pcid) or not alive(ch)\n"
"end\n"
"local function next_token()\n"
"  if redis.call('EXISTS', KEYS[4]) == 0 then\n"
"    local t = redis.call('TIME')\n"
"    redis.call('SET', KEYS[4], t[1] .. string.format('%06d', tonumber(t[2])))\n"
"  end\n"
"  return string.format('%.0f', redis.call('INCR', KEYS[4]))\n"
"end\n"
"local pruned = false\n"
"local o = redis.call('HMGET', KEYS[1], 'chan', 'cid', 'tok')\n"
"if o[1] then\n"
"  if o[1] == me then return {1, o[3]} end\n"
"  if dead(o[1], o[2]) then\n"
"    redis.call('DEL', KEYS[1]); o[1] = false; pruned = true\n"
"  end\n"
"end\n"
"local reader\n"
"local rd = redis.call('HGETALL', KEYS[2])\n"
"for i = 1, #rd, 2 do\n"
"  local cid, tok = string.match(rd[i + 1], '^(%d+) (%d+)$')\n"
"  if rd[i] == me and tok then return {1, tok} end\n"
"  if dead(rd[i], cid) then\n"
"    redis.call('HDEL', KEYS[2], rd[i]); pruned = true\n"
"  elseif not reader then reader = {rd[i], cid} end\n"
"end\n"
"local writer\n"
"local pd = redis.call('HGETALL', KEYS[3])\n"
"for i = 1, #pd, 2 do\n"
"  if pd[i] ~= me then\n"
"    if dead(pd[i], string.match(pd[i + 1], '^%d+$')) then\n"
"      redis.call('HDEL', KEYS[3], pd[i]); pruned = true\n"
"    elseif not writer then writer = {pd[i], pd[i + 1]} end\n"
"  end\n"
"end\n"
"if pruned then redis.call('PUBLISH', ARGV[7], 'pruned') end\n"
"if o[1] then return {0, o[1], o[2], 'x'} end\n"
"if mode == 'x' then\n"
"  if reader then\n"
"    if ARGV[8] == '1' then redis.call('HSET', KEYS[3], me, ARGV[4]) end\n"
"    return {0, reader[1], reader[2], 's'}\n"
"  end\n"
"  redis.call('HDEL', KEYS[3], me)\n"
"  local tok = next_token()\n"
"  redis.call('HSET', KEYS[1], 'chan', me, 'cid', ARGV[4], 'tok', tok)\n"
"  return {1, tok}\n"
"end\n"
"if writer then return {0, writer[1], writer[2], 'p'} end\n"
"local tok = next_token()\n"
"redis.call('HSET', KEYS[2], me, ARGV[4] .. ' ' .. tok)\n"
"return {1, tok}\n";
/* clang-format on */

typedef struct rl {
    pl_lock_t *lock;
    /* options; strings owned */
    char *host, *unix_socket, *username, *password;
    int port;
    double connect_timeout, command_timeout, unavailable_timeout;
    int evict_stalled, shared;
    void (*on_lost)(pl_lock_t *lock, int reason, void *arg);
    void *on_lost_arg;
    /* names derived from the lock name */
    char keys[4][RL_KEY_MAX];
    char ev_chan[RL_KEY_MAX];
    char chan_prefix[RL_KEY_MAX]; /* "pl:{NAME}:h:" */
    char client_name[RL_KEY_MAX]; /* "pl:{NAME}:" with spaces replaced */
    /* command connection, shared with the watcher under mu */
    pthread_mutex_t mu;
    redisContext *cmd;
    char sha[48];
    long conn_pid; /* process that opened the connections */
    int client_list_ok;
    /* subscription connection of the current attempt or grant */
    redisContext *sub;
    char my_chan[RL_CHAN_MAX];
    char cid[RL_ID_MAX];
    char nonce[40];
    int pong_seen;
    /* held */
    char tok[RL_ID_MAX];
    pthread_t watcher;
    int watcher_started;
    atomic_int stop;
    atomic_int lost;
} rl_t;

/* What a waiter knows about the connection that blocks it. */
typedef struct rl_wait {
    int forever;
    double deadline, next_check, check_every;
    char bchan[RL_CHAN_MAX], bcid[RL_ID_MAX];
    char bkind;
    int ping_out;
    double ping_since;
    char pchan[RL_CHAN_MAX], pcid[RL_ID_MAX]; /* proof for the next try */
    int maybe_pending;
    int evict_denied;
} rl_wait_t;

/* ---- small helpers -------------------------------------------------------
 */

static struct timeval rl_tv(double s) {
    struct timeval tv;
    if (s < 0.001)
        s = 0.001;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void rl_random_hex(char *out, size_t bytes) {
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

static int rl_copy(char *dst, size_t len, const char *src, size_t n) {
    if (n >= len)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Maps an error reply: NOAUTH/WRONGPASS -> PL_EAUTH, NOPERM -> PL_EACCES,
 * anything else -> PL_EPROTO.  Also covers replies of the wrong type. */
static int rl_reply_error(const redisReply *r, const char *what,
                          pl_error_t *err) {
    if (!PL__REPLY_IS(r, REDIS_REPLY_ERROR))
        return pl__error_set(err, PL_EPROTO, 0,
                             "redis %s: unexpected reply type %d", what,
                             r != NULL ? r->type : -1);
    if (strncmp(r->str, "NOAUTH", 6) == 0 ||
        strncmp(r->str, "WRONGPASS", 9) == 0 ||
        strstr(r->str, "invalid password") != NULL)
        return pl__error_set(err, PL_EAUTH, 0, "redis %s: %s", what, r->str);
    if (strncmp(r->str, "NOPERM", 6) == 0)
        return pl__error_set(err, PL_EACCES, 0, "redis %s: %s", what, r->str);
    return pl__error_set(err, PL_EPROTO, 0, "redis %s: %s", what, r->str);
}

static int rl_io_error(redisContext *c, const char *what, pl_error_t *err) {
    return pl__error_set(err, PL_ECONN, 0, "redis %s: %s", what,
                         c->errstr[0] != '\0' ? c->errstr : "connection lost");
}

/* Reads one reply; PL_ECONN on I/O failure (the context is then dead). */
static int rl_get(redisContext *c, redisReply **out, const char *what,
                  pl_error_t *err) {
    void *r = NULL;
    *out = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || r == NULL)
        return rl_io_error(c, what, err);
    *out = r;
    return PL_OK;
}

/* ---- connections ---------------------------------------------------------
 */

/* Connects with both timeouts and queues AUTH (*auth = 1) if configured;
 * nothing is read yet, so callers pipeline their first commands. */
static int rl_connect(rl_t *rl, redisContext **out, int *auth,
                      pl_error_t *err) {
    struct timeval tv = rl_tv(rl->connect_timeout);
    char where[300];
    redisContext *c;

    *out = NULL;
    *auth = 0;
    rl_where(rl, where, sizeof(where));
    if (rl->unix_socket != NULL)
        c = redisConnectUnixWithTimeout(rl->unix_socket, tv);
    else
        c = redisConnectWithTimeout(rl->host, rl->port, tv);
    if (c == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "redis %s: out of memory",
                             where);
    if (c->err != 0 ||
        redisSetTimeout(c, rl_tv(rl->command_timeout)) != REDIS_OK) {
        int rc = pl__error_set(err, PL_ECONN, 0, "redis %s: connect: %s", where,
                               c->errstr);
        redisFree(c);
        return rc;
    }
    /* hiredis opens sockets without SOCK_CLOEXEC: a command the caller
     * spawns while holding must not inherit (and keep alive) the lock. */
    (void)fcntl(PL__REDIS_FD(c), F_SETFD, FD_CLOEXEC);
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

static int rl_check_auth(redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = rl_get(c, &r, "AUTH", err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = pl__error_set(err, PL_EAUTH, 0, "redis AUTH: %s", r->str);
    freeReplyObject(r);
    return rc;
}

/* Reads the SCRIPT LOAD reply into rl->sha. */
static int rl_read_sha(rl_t *rl, redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = rl_get(c, &r, "SCRIPT LOAD", err);
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING ||
        rl_copy(rl->sha, sizeof(rl->sha), r->str, r->len) != 0)
        rc = rl_reply_error(r, "SCRIPT LOAD", err);
    freeReplyObject(r);
    return rc;
}

static void rl_queue_script_load(redisContext *c) {
    const char *argv[3] = {"SCRIPT", "LOAD", RL_SCRIPT};
    redisAppendCommandArgv(c, 3, argv, NULL);
}

/* The command connection, (re)connected if needed.  Caller holds rl->mu. */
static int rl_cmd_ensure(rl_t *rl, pl_error_t *err) {
    redisContext *c;
    int auth, rc;

    if (rl->cmd != NULL && rl->cmd->err == 0)
        return PL_OK;
    if (rl->cmd != NULL) {
        redisFree(rl->cmd);
        rl->cmd = NULL;
    }
    if ((rc = rl_connect(rl, &c, &auth, err)) != PL_OK)
        return rc;
    rl_queue_script_load(c);
    if (auth)
        rc = rl_check_auth(c, err);
    if (rc == PL_OK)
        rc = rl_read_sha(rl, c, err);
    if (rc != PL_OK) {
        redisFree(c);
        return rc;
    }
    rl->cmd = c;
    return PL_OK;
}

/* One command on the command connection; caller holds rl->mu. */
static int rl_cmd_argv(rl_t *rl, int argc, const char **argv, redisReply **out,
                       pl_error_t *err) {
    int rc = rl_cmd_ensure(rl, err);
    *out = NULL;
    if (rc != PL_OK)
        return rc;
    *out = redisCommandArgv(rl->cmd, argc, argv, NULL);
    if (*out == NULL)
        return rl_io_error(rl->cmd, argv[0], err);
    return PL_OK;
}

/* EVALSHA of the lock script with our keys; reloads it after NOSCRIPT (a
 * restarted server or SCRIPT FLUSH).  Caller holds rl->mu. */
static int rl_eval_once(rl_t *rl, const char **args, redisReply **out,
                        pl_error_t *err) {
    const char *argv[16];
    int i, rc, attempt;

    argv[0] = "EVALSHA";
    argv[2] = "4";
    for (i = 0; i < 4; i++)
        argv[3 + i] = rl->keys[i];
    for (i = 0; i < 8; i++)
        argv[7 + i] = args[i];
    for (attempt = 0; attempt < 2; attempt++) {
        argv[1] = rl->sha;
        if ((rc = rl_cmd_argv(rl, 15, argv, out, err)) != PL_OK)
            return rc;
        if ((*out)->type != REDIS_REPLY_ERROR ||
            strncmp((*out)->str, "NOSCRIPT", 8) != 0)
            break;
        freeReplyObject(*out);
        *out = NULL;
        rl_queue_script_load(rl->cmd);
        if ((rc = rl_read_sha(rl, rl->cmd, err)) != PL_OK)
            return rc;
    }
    if (*out == NULL)
        return pl__error_set(err, PL_EPROTO, 0, "redis EVALSHA: NOSCRIPT");
    if ((*out)->type == REDIS_REPLY_ERROR) {
        rc = rl_reply_error(*out, "EVALSHA", err);
        freeReplyObject(*out);
        *out = NULL;
        return rc;
    }
    return PL_OK;
}

/*
 * Runs the script; after an I/O failure retries once on a fresh connection
 * (every op is safe to repeat: acq returns our own grant again, rel/chk/
 * cancel compare first; a repeated rel can only turn into PL_ELOST).
 */
static int rl_eval(rl_t *rl, const char **args, redisReply **out,
                   pl_error_t *err) {
    int rc;
    pthread_mutex_lock(&rl->mu);
    rc = rl_eval_once(rl, args, out, err);
    if (rc == PL_ECONN && rl->cmd != NULL && rl->cmd->err != 0)
        rc = rl_eval_once(rl, args, out, err);
    pthread_mutex_unlock(&rl->mu);
    return rc;
}

static int rl_eval_int(rl_t *rl, const char **args, long long *val,
                       pl_error_t *err) {
    redisReply *r;
    int rc = rl_eval(rl, args, &r, err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *val = r->integer;
    else
        rc = rl_reply_error(r, "EVALSHA", err);
    freeReplyObject(r);
    return rc;
}

/* ---- the subscription connection ----------------------------------------
 */

static void rl_sub_close(rl_t *rl) {
    if (rl->sub != NULL) {
        redisFree(rl->sub);
        rl->sub = NULL;
    }
}

/* Checks one SUBSCRIBE confirmation for channel ch. */
static int rl_read_subscribed(redisContext *c, const char *ch,
                              pl_error_t *err) {
    redisReply *r;
    int rc = rl_get(c, &r, "SUBSCRIBE", err);
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        !PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) ||
        strcmp(r->element[1]->str, ch) != 0)
        rc = r->type == REDIS_REPLY_ERROR
                 ? rl_reply_error(r, "SUBSCRIBE", err)
                 : pl__error_set(err, PL_EPROTO, 0,
                                 "redis SUBSCRIBE %s: unexpected reply", ch);
    freeReplyObject(r);
    return rc;
}

/* CLIENT ID reply into rl->cid ("0" if the ACL refuses it). */
static int rl_read_client_id(rl_t *rl, redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = rl_get(c, &r, "CLIENT ID", err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        snprintf(rl->cid, sizeof(rl->cid), "%lld", r->integer);
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0)
        snprintf(rl->cid, sizeof(rl->cid), "0");
    else
        rc = rl_reply_error(r, "CLIENT ID", err);
    freeReplyObject(r);
    return rc;
}

/*
 * Opens this attempt's subscription connection: a fresh channel name, then
 * [AUTH], CLIENT ID, CLIENT SETNAME (informational), SUBSCRIBE my channel
 * and the event channel, pipelined in one round trip.
 */
static int rl_sub_open(rl_t *rl, pl_error_t *err) {
    char uuid[33], name[RL_CHAN_MAX + 40];
    const char *id[2] = {"CLIENT", "ID"};
    const char *setname[3] = {"CLIENT", "SETNAME", name};
    const char *sub[3] = {"SUBSCRIBE", rl->my_chan, rl->ev_chan};
    redisContext *c;
    redisReply *r;
    int auth, rc;

    rl_random_hex(uuid, 16);
    snprintf(rl->my_chan, sizeof(rl->my_chan), "%s%s", rl->chan_prefix, uuid);
    snprintf(name, sizeof(name), "%s%s", rl->client_name, uuid);
    if ((rc = rl_connect(rl, &c, &auth, err)) != PL_OK)
        return rc;
    redisAppendCommandArgv(c, 2, id, NULL);
    redisAppendCommandArgv(c, 3, setname, NULL);
    redisAppendCommandArgv(c, 3, sub, NULL);
    if (auth)
        rc = rl_check_auth(c, err);
    if (rc == PL_OK)
        rc = rl_read_client_id(rl, c, err);
    if (rc == PL_OK && (rc = rl_get(c, &r, "CLIENT SETNAME", err)) == PL_OK)
        freeReplyObject(r); /* a refused name changes nothing */
    if (rc == PL_OK)
        rc = rl_read_subscribed(c, rl->my_chan, err);
    if (rc == PL_OK)
        rc = rl_read_subscribed(c, rl->ev_chan, err);
    if (rc != PL_OK) {
        redisFree(c);
        return rc;
    }
    rl->sub = c;
    rl->pong_seen = 0;
    rl->nonce[0] = '\0';
    return PL_OK;
}

/* "ping <nonce> <reply channel>" (the channel last: lock names may contain
 * spaces): answer "pong <nonce>" on the reply channel, which must be one of
 * this lock's holder channels. */
static void rl_answer_ping(rl_t *rl, const char *payload) {
    char msg[64];
    const char *nonce = payload + 5, *reply = strchr(nonce, ' ');
    const char *argv[3] = {"PUBLISH", NULL, msg};
    size_t n;
    redisReply *r;
    pl_error_t e;

    if (reply == NULL || (n = (size_t)(reply - nonce)) == 0 || n > 32)
        return;
    reply++;
    if (strncmp(reply, rl->chan_prefix, strlen(rl->chan_prefix)) != 0)
        return;
    snprintf(msg, sizeof(msg), "pong %.*s", (int)n, nonce);
    argv[1] = reply;
    pthread_mutex_lock(&rl->mu);
    /* A second try on a fresh connection if the command connection broke:
     * an unanswered ping is how a live holder gets evicted. */
    for (n = 0; n < 2; n++)
        if (rl_cmd_argv(rl, 3, argv, &r, &e) == PL_OK) {
            freeReplyObject(r);
            break;
        }
    pthread_mutex_unlock(&rl->mu);
}

/* One pubsub message on the sub connection. */
static void rl_on_message(rl_t *rl, const redisReply *r) {
    const char *ch, *payload;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        !PL__REPLY_IS(r->element[0], REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(r->element[2], REDIS_REPLY_STRING) ||
        strcmp(r->element[0]->str, "message") != 0)
        return; /* (un)subscribe confirmations and the like */
    ch = r->element[1]->str;
    payload = r->element[2]->str;
    if (strcmp(ch, rl->my_chan) != 0)
        return; /* the event channel: receiving it was the wake-up */
    if (strncmp(payload, "ping ", 5) == 0)
        rl_answer_ping(rl, payload);
    else if (strncmp(payload, "pong ", 5) == 0 && rl->nonce[0] != '\0' &&
             strcmp(payload + 5, rl->nonce) == 0)
        rl->pong_seen = 1;
}

/* Handles every reply already buffered on the sub connection. */
static int rl_sub_drain(rl_t *rl, pl_error_t *err) {
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(rl->sub->reader, &r) != REDIS_OK)
            return pl__error_set(err, PL_EPROTO, 0,
                                 "redis subscription: protocol error");
        if (r == NULL)
            return PL_OK;
        rl_on_message(rl, r);
        freeReplyObject(r);
    }
}

/*
 * Waits up to timeout seconds (< 0: without limit) for the sub connection,
 * then handles what arrived.  PL_ECONN once the connection has ended.
 */
static int rl_sub_pump(rl_t *rl, double timeout, pl_error_t *err) {
    struct pollfd p;
    int rc, ms;

    if ((rc = rl_sub_drain(rl, err)) != PL_OK)
        return rc;
    p.fd = PL__REDIS_FD(rl->sub);
    p.events = POLLIN;
    p.revents = 0;
    ms = timeout < 0 ? -1 : (int)(timeout * 1000.0 + 0.999);
    rc = poll(&p, 1, ms);
    if (rc < 0 && errno != EINTR)
        return pl__error_set(err, PL_EOS, errno, "poll(redis subscription)");
    if (rc <= 0)
        return PL_OK;
    if (redisBufferRead(rl->sub) != REDIS_OK)
        return rl_io_error(rl->sub, "subscription", err);
    return rl_sub_drain(rl, err);
}

/* ---- the holder's watcher thread -----------------------------------------
 */

static void *rl_watch(void *arg) {
    rl_t *rl = arg;
    pl_error_t e;

    while (!atomic_load(&rl->stop))
        if (rl_sub_pump(rl, -1, &e) != PL_OK)
            break;
    if (!atomic_load(&rl->stop)) {
        atomic_store(&rl->lost, 1);
        if (rl->on_lost != NULL)
            rl->on_lost(rl->lock, PL_ELOST, rl->on_lost_arg);
    }
    return NULL;
}

static int rl_watch_start(rl_t *rl, pl_error_t *err) {
    int rc;
    atomic_store(&rl->stop, 0);
    atomic_store(&rl->lost, 0);
    rc = pthread_create(&rl->watcher, NULL, rl_watch, rl);
    if (rc != 0)
        return pl__error_set(err, PL_EOS, rc, "pthread_create(redis watcher)");
    rl->watcher_started = 1;
    return PL_OK;
}

/* Wakes the watcher by shutting the sub socket down, joins, closes sub. */
static void rl_watch_stop(rl_t *rl) {
    if (rl->watcher_started) {
        atomic_store(&rl->stop, 1);
        shutdown(PL__REDIS_FD(rl->sub), SHUT_RDWR);
        pthread_join(rl->watcher, NULL);
        rl->watcher_started = 0;
    }
    rl_sub_close(rl);
}

/* ---- acquire -------------------------------------------------------------
 */

static const char *rl_mode(const rl_t *rl) {
    return rl->shared ? "s" : "x";
}

/* Records who blocks us; a new blocker restarts the ping clock. */
static int rl_note_blocker(rl_wait_t *w, const redisReply *r, pl_error_t *err) {
    const redisReply *ch = r->element[1], *cid = r->element[2],
                     *kind = r->element[3];
    if (!PL__REPLY_IS(ch, REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(cid, REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(kind, REDIS_REPLY_STRING))
        return pl__error_set(err, PL_EPROTO, 0,
                             "redis lock script: bad blocker reply");
    if (strcmp(ch->str, w->bchan) != 0 || strcmp(cid->str, w->bcid) != 0) {
        if (rl_copy(w->bchan, sizeof(w->bchan), ch->str, ch->len) != 0 ||
            rl_copy(w->bcid, sizeof(w->bcid), cid->str, cid->len) != 0)
            return pl__error_set(err, PL_EPROTO, 0,
                                 "redis lock script: blocker name too long");
        w->ping_out = 0;
    }
    w->bkind = kind->str[0];
    return PL_OK;
}

/* One run of the acquire script.  *granted = 1 with rl->tok set, or the
 * blocker recorded in w. */
static int rl_try(rl_t *rl, rl_wait_t *w, int may_wait, int *granted,
                  pl_error_t *err) {
    const char *args[8] = {"acq",       rl_mode(rl),
                           rl->my_chan, rl->cid,
                           w->pchan,    w->pcid[0] ? w->pcid : "0",
                           rl->ev_chan, may_wait ? "1" : "0"};
    redisReply *r;
    long long status;
    int rc = rl_eval(rl, args, &r, err);

    w->pchan[0] = w->pcid[0] = '\0';
    *granted = 0;
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        !PL__REPLY_IS(r->element[0], REDIS_REPLY_INTEGER))
        rc = rl_reply_error(r, "lock script", err);
    else if ((status = r->element[0]->integer) == 1 && r->elements == 2 &&
             PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) &&
             rl_copy(rl->tok, sizeof(rl->tok), r->element[1]->str,
                     r->element[1]->len) == 0)
        *granted = 1;
    else if (status == 0 && r->elements == 4)
        rc = rl_note_blocker(w, r, err);
    else if (status == -1)
        rc = pl__error_set(err, PL_ECONN, 0,
                           "redis lock %s: our subscription connection is "
                           "gone",
                           rl->lock->path);
    else
        rc = pl__error_set(err, PL_EPROTO, 0, "redis lock script: bad reply");
    if (rc == PL_OK && !*granted && w->bkind == 's' && may_wait)
        w->maybe_pending = 1;
    freeReplyObject(r);
    return rc;
}

/* A command on the command connection whose reply we only classify. */
static int rl_cmd_simple(rl_t *rl, int argc, const char **argv,
                         redisReply **out, pl_error_t *err) {
    int rc;
    pthread_mutex_lock(&rl->mu);
    rc = rl_cmd_argv(rl, argc, argv, out, err);
    pthread_mutex_unlock(&rl->mu);
    return rc;
}

/*
 * Dead-holder proof: CLIENT LIST ID <id> is empty once that connection is
 * gone (ids are never reused within a server run).  Sets the proof in w.
 */
static int rl_prove_dead(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    const char *argv[4] = {"CLIENT", "LIST", "ID", w->bcid};
    redisReply *r;
    int rc;

    if (!rl->client_list_ok || strcmp(w->bcid, "0") == 0)
        return PL_OK;
    if ((rc = rl_cmd_simple(rl, 4, argv, &r, err)) != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        if (r->len == 0) {
            strcpy(w->pchan, w->bchan);
            strcpy(w->pcid, w->bcid);
        }
    } else {
        rl->client_list_ok = 0; /* no rights (ACL) or an old server */
    }
    freeReplyObject(r);
    return PL_OK;
}

static int rl_ping(rl_t *rl, rl_wait_t *w, double now, pl_error_t *err) {
    char msg[RL_CHAN_MAX + 64];
    const char *argv[3] = {"PUBLISH", w->bchan, msg};
    redisReply *r;
    int rc;

    rl_random_hex(rl->nonce, 8);
    rl->pong_seen = 0;
    snprintf(msg, sizeof(msg), "ping %s %s", rl->nonce, rl->my_chan);
    if ((rc = rl_cmd_simple(rl, 3, argv, &r, err)) != PL_OK)
        return rc;
    freeReplyObject(r);
    w->ping_out = 1;
    w->ping_since = now;
    return PL_OK;
}

/* The blocker did not answer for unavailable_timeout: CLIENT KILL ID with
 * its exact id, which makes it provably dead. */
static int rl_evict(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    const char *argv[4] = {"CLIENT", "KILL", "ID", w->bcid};
    redisReply *r;
    int rc;

    w->ping_out = 0;
    if (!rl->evict_stalled || w->evict_denied || strcmp(w->bcid, "0") == 0)
        return PL_OK;
    if ((rc = rl_cmd_simple(rl, 4, argv, &r, err)) != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER ||
        (r->type == REDIS_REPLY_ERROR && strstr(r->str, "No such") != NULL)) {
        strcpy(w->pchan, w->bchan);
        strcpy(w->pcid, w->bcid);
    } else {
        w->evict_denied = 1; /* e.g. NOPERM: keep waiting */
    }
    freeReplyObject(r);
    return PL_OK;
}

static int rl_timed_out(rl_t *rl, const rl_wait_t *w, pl_error_t *err) {
    return pl__error_set(
        err, PL_ETIMEDOUT, 0, "redis lock %s: still held (%s, client id %s)%s",
        rl->lock->path,
        w->bkind == 'x'   ? "exclusive"
        : w->bkind == 's' ? "shared"
                          : "pending "
                            "writer",
        w->bcid,
        w->ping_out || w->evict_denied ? "; it did not answer pings and was "
                                         "not evicted"
                                       : "");
}

/* Between two tries: proof, ping, eviction, then wait for a notification
 * or the next liveness poll. */
static int rl_wait_step(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    double now = pl__os_monotonic(), slice = RL_POLL_SECONDS;
    int rc;

    if (!w->forever && now >= w->deadline)
        return rl_timed_out(rl, w, err);
    if (now >= w->next_check) {
        w->next_check = now + w->check_every;
        if ((rc = rl_prove_dead(rl, w, err)) != PL_OK || w->pchan[0] != '\0')
            return rc;
        if (!w->ping_out && (rc = rl_ping(rl, w, now, err)) != PL_OK)
            return rc;
    }
    if (w->ping_out && rl->pong_seen)
        w->ping_out = 0;
    if (w->ping_out && now - w->ping_since >= rl->unavailable_timeout)
        if ((rc = rl_evict(rl, w, err)) != PL_OK || w->pchan[0] != '\0')
            return rc;
    if (!w->forever && w->deadline - now < slice)
        slice = w->deadline - now;
    if (w->next_check - now < slice)
        slice = w->next_check - now;
    return rl_sub_pump(rl, slice > 0 ? slice : 0, err);
}

/* Undo a failed attempt: withdraw a pending-writer entry, close sub. */
static void rl_abandon(rl_t *rl, const rl_wait_t *w) {
    if (w->maybe_pending) {
        const char *args[8] = {"cancel", "x", rl->my_chan, rl->cid,
                               "",       "0", rl->ev_chan, "0"};
        long long v;
        pl_error_t e;
        (void)rl_eval_int(rl, args, &v, &e);
    }
    rl_sub_close(rl);
}

/* Release a grant we cannot keep (the watcher could not start). */
static void rl_ungrant(rl_t *rl) {
    const char *args[8] = {"rel",   rl_mode(rl), rl->my_chan, rl->cid,
                           rl->tok, "0",         rl->ev_chan, "0"};
    long long v;
    pl_error_t e;
    (void)rl_eval_int(rl, args, &v, &e);
}

/* In a forked child: drop the inherited connections without writing. */
static void rl_drop_inherited(rl_t *rl) {
    rl_sub_close(rl); /* redisFree only closes our copy of the socket */
    if (rl->cmd != NULL) {
        redisFree(rl->cmd);
        rl->cmd = NULL;
    }
    rl->watcher_started = 0; /* the thread exists only in the parent */
    pthread_mutex_init(&rl->mu, NULL);
    rl->conn_pid = pl__os_getpid();
}

static int rl_acquire(pl_lock_t *lock, double timeout, double check_interval,
                      int fail_when_locked) {
    rl_t *rl = lock->impl;
    rl_wait_t w;
    pl_error_t e;
    int rc, granted = 0, may_wait = !fail_when_locked && timeout != 0;
    double now = pl__os_monotonic();

    if (rl->conn_pid != pl__os_getpid())
        rl_drop_inherited(rl);
    memset(&w, 0, sizeof(w));
    w.forever = timeout < 0;
    w.deadline = now + (timeout > 0 ? timeout : 0);
    w.check_every =
        check_interval > RL_POLL_SECONDS ? check_interval : RL_POLL_SECONDS;
    w.next_check = now + w.check_every;
    pthread_mutex_lock(&rl->mu);
    rc = rl_cmd_ensure(rl, &e);
    pthread_mutex_unlock(&rl->mu);
    if (rc == PL_OK)
        rc = rl_sub_open(rl, &e);
    if (rc != PL_OK)
        return pl__lock_fail_from(lock, &e);
    for (;;) {
        if ((rc = rl_try(rl, &w, may_wait, &granted, &e)) != PL_OK || granted)
            break;
        if (!may_wait) {
            rc = pl__error_set(&e, PL_ELOCKED, 0,
                               "redis lock %s: held by another owner",
                               lock->path);
            break;
        }
        if ((rc = rl_wait_step(rl, &w, &e)) != PL_OK)
            break;
    }
    if (rc == PL_OK && (rc = rl_watch_start(rl, &e)) != PL_OK)
        rl_ungrant(rl);
    if (rc != PL_OK) {
        rl_abandon(rl, &w);
        return pl__lock_fail_from(lock, &e);
    }
    lock->fencing_token = strtoull(rl->tok, NULL, 10);
    return PL_OK;
}

/* ---- release, check, fork, destroy ---------------------------------------
 */

static int rl_release(pl_lock_t *lock) {
    rl_t *rl = lock->impl;
    const char *args[8] = {"rel",   rl_mode(rl), rl->my_chan, rl->cid,
                           rl->tok, "0",         rl->ev_chan, "0"};
    int was_lost = atomic_load(&rl->lost);
    long long held = 0;
    pl_error_t e;
    int rc = rl_eval_int(rl, args, &held, &e);

    rl_watch_stop(rl);
    if (was_lost || (rc == PL_OK && held != 1))
        return pl__lock_fail(lock, PL_ELOST, 0,
                             "redis lock %s: lost before release (connection "
                             "closed, evicted or server restarted)",
                             lock->path);
    if (rc != PL_OK)
        return pl__lock_fail(lock, rc, 0,
                             "%s (the lock was freed by closing the "
                             "subscription connection)",
                             e.msg);
    return PL_OK;
}

static int rl_check(pl_lock_t *lock) {
    rl_t *rl = lock->impl;
    const char *args[8] = {"chk",   rl_mode(rl), rl->my_chan, rl->cid,
                           rl->tok, "0",         rl->ev_chan, "0"};
    long long held = 0;
    pl_error_t e;
    int rc;

    if (lock->owner_pid != pl__os_getpid())
        return pl__lock_fail(lock, PL_EFORKED, 0,
                             "redis lock %s: held by process %ld (fork)",
                             lock->path, lock->owner_pid);
    if (atomic_load(&rl->lost))
        return pl__lock_fail(lock, PL_ELOST, 0,
                             "redis lock %s: the holder's connection ended",
                             lock->path);
    if ((rc = rl_eval_int(rl, args, &held, &e)) != PL_OK)
        return pl__lock_fail_from(lock, &e);
    if (held != 1) {
        atomic_store(&rl->lost, 1);
        return pl__lock_fail(lock, PL_ELOST, 0,
                             "redis lock %s: the server no longer records "
                             "this holder",
                             lock->path);
    }
    return PL_OK;
}

static void rl_forget(pl_lock_t *lock) {
    rl_drop_inherited(lock->impl);
}

static void rl_free(rl_t *rl) {
    if (rl == NULL)
        return;
    rl_sub_close(rl);
    if (rl->cmd != NULL)
        redisFree(rl->cmd);
    pthread_mutex_destroy(&rl->mu);
    free(rl->host);
    free(rl->unix_socket);
    free(rl->username);
    free(rl->password);
    free(rl);
}

static void rl_destroy(pl_lock_t *lock) {
    rl_free(lock->impl);
    lock->impl = NULL;
}

static const pl__lock_ops_t rl_ops = {"redis",   rl_acquire, rl_release,
                                      rl_forget, rl_check,   rl_destroy};

/* ---- open ----------------------------------------------------------------
 */

static int rl_dup(char **dst, const char *src) {
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = malloc(strlen(src) + 1);
    if (*dst == NULL)
        return -1;
    strcpy(*dst, src);
    return 0;
}

static int rl_options_ok(const pl_redis_options_t *o) {
    if (o->unix_socket == NULL &&
        (o->host == NULL || o->port <= 0 || o->port > 65535))
        return 0;
    if (!(o->connect_timeout > 0) || !(o->command_timeout > 0) ||
        !(o->unavailable_timeout > 0) || !(o->check_interval >= 0) ||
        o->timeout != o->timeout)
        return 0;
    return o->password != NULL || o->username == NULL;
}

static void rl_names(rl_t *rl, const char *name) {
    static const char *suffix[4] = {"owner", "readers", "pending", "fence"};
    char *p;
    int i;
    for (i = 0; i < 4; i++)
        snprintf(rl->keys[i], sizeof(rl->keys[i]), "pl:{%s}:%s", name,
                 suffix[i]);
    snprintf(rl->ev_chan, sizeof(rl->ev_chan), "pl:{%s}:ev", name);
    snprintf(rl->chan_prefix, sizeof(rl->chan_prefix), "pl:{%s}:h:", name);
    snprintf(rl->client_name, sizeof(rl->client_name), "pl:{%s}:", name);
    for (p = rl->client_name; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127)
            *p = '_'; /* CLIENT SETNAME refuses spaces */
}

static int rl_new(rl_t **out, const char *name, const pl_redis_options_t *o) {
    rl_t *rl = calloc(1, sizeof(*rl));
    *out = NULL;
    if (rl == NULL)
        return PL_ENOMEM;
    if (pthread_mutex_init(&rl->mu, NULL) != 0) {
        free(rl);
        return PL_ENOMEM;
    }
    if (rl_dup(&rl->host, o->unix_socket != NULL ? NULL : o->host) != 0 ||
        rl_dup(&rl->unix_socket, o->unix_socket) != 0 ||
        rl_dup(&rl->username, o->username) != 0 ||
        rl_dup(&rl->password, o->password) != 0) {
        rl_free(rl);
        return PL_ENOMEM;
    }
    rl->port = o->port;
    rl->connect_timeout = o->connect_timeout;
    rl->command_timeout = o->command_timeout;
    rl->unavailable_timeout = o->unavailable_timeout;
    rl->evict_stalled = o->evict_stalled;
    rl->shared = o->shared != 0;
    rl->on_lost = o->on_lost;
    rl->on_lost_arg = o->on_lost_arg;
    rl->client_list_ok = 1;
    rl->conn_pid = pl__os_getpid();
    rl_names(rl, name);
    *out = rl;
    return PL_OK;
}

int pl_redis_lock_open(pl_lock_t **out, const char *channel,
                       const pl_redis_options_t *opts) {
    pl_redis_options_t o;
    pl_lock_options_t lo;
    pl_lock_t *lock;
    rl_t *rl;
    int rc;

    if (out == NULL)
        return PL_EINVAL;
    *out = NULL;
    if (channel == NULL || channel[0] == '\0' || strlen(channel) > RL_NAME_MAX)
        return PL_EINVAL;
    if (opts != NULL)
        o = *opts;
    else
        pl_redis_options_init(&o);
    if (!rl_options_ok(&o))
        return PL_EINVAL;
    pl_lock_options_init(&lo);
    lo.timeout = o.timeout;
    lo.check_interval = o.check_interval;
    lo.fail_when_locked = o.fail_when_locked != 0;
    lo.flags = (o.shared ? PL_SHARED : PL_EXCLUSIVE) | PL_NON_BLOCKING;
    if ((rc = pl__lock_new(&lock, &rl_ops, channel, &lo, 0)) != PL_OK)
        return rc;
    if ((rc = rl_new(&rl, channel, &o)) != PL_OK) {
        pl_lock_close(lock); /* impl is NULL: frees the generic part */
        return rc;
    }
    rl->lock = lock;
    lock->impl = rl;
    *out = lock;
    return PL_OK;
}
