/*
 * redis_lock.c -- RedisLock, the lock kind: the wait loop (proof, ping,
 * eviction), acquire, release, check, fork and open.  The overview is in
 * redis_lock.h, the design and its safety argument in DESIGN.md.
 */
#include "redis_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the wait loop -------------------------------------------------------
 */

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
    if ((rc = pl__rl_cmd_simple(rl, 4, argv, &r, err)) != PL_OK)
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

    pl__rl_random_hex(rl->nonce, 8);
    rl->pong_seen = 0;
    snprintf(msg, sizeof(msg), "ping %s %s", rl->nonce, rl->my_chan);
    if ((rc = pl__rl_cmd_simple(rl, 3, argv, &r, err)) != PL_OK)
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
    if ((rc = pl__rl_cmd_simple(rl, 4, argv, &r, err)) != PL_OK)
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
    return pl__rl_sub_pump(rl, slice > 0 ? slice : 0, err);
}

/* Undo a failed attempt: withdraw a pending-writer entry, close sub. */
static void rl_abandon(rl_t *rl, const rl_wait_t *w) {
    if (w->maybe_pending) {
        const char *args[8] = {"cancel", "x", rl->my_chan, rl->cid,
                               "",       "0", rl->ev_chan, "0"};
        long long v;
        pl_error_t e;
        (void)pl__rl_eval_int(rl, args, &v, &e);
    }
    pl__rl_sub_close(rl);
}

/* Release a grant we cannot keep (the watcher could not start). */
static void rl_ungrant(rl_t *rl) {
    const char *args[8] = {
        "rel", pl__rl_mode(rl), rl->my_chan, rl->cid, rl->tok,
        "0",   rl->ev_chan,     "0"};
    long long v;
    pl_error_t e;
    (void)pl__rl_eval_int(rl, args, &v, &e);
}

/* In a forked child: drop the inherited connections without writing. */
static void rl_drop_inherited(rl_t *rl) {
    pl__rl_sub_close(rl); /* redisFree only closes our copy of the socket */
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
    rc = pl__rl_cmd_ensure(rl, &e);
    pthread_mutex_unlock(&rl->mu);
    if (rc == PL_OK)
        rc = pl__rl_sub_open(rl, &e);
    if (rc != PL_OK)
        return pl__lock_fail_from(lock, &e);
    for (;;) {
        if ((rc = pl__rl_try(rl, &w, may_wait, &granted, &e)) != PL_OK ||
            granted)
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
    if (rc == PL_OK && (rc = pl__rl_watch_start(rl, &e)) != PL_OK)
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
    const char *args[8] = {
        "rel", pl__rl_mode(rl), rl->my_chan, rl->cid, rl->tok,
        "0",   rl->ev_chan,     "0"};
    int was_lost = atomic_load(&rl->lost);
    long long held = 0;
    pl_error_t e;
    int rc = pl__rl_eval_int(rl, args, &held, &e);

    pl__rl_watch_stop(rl);
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
    const char *args[8] = {
        "chk", pl__rl_mode(rl), rl->my_chan, rl->cid, rl->tok,
        "0",   rl->ev_chan,     "0"};
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
    if ((rc = pl__rl_eval_int(rl, args, &held, &e)) != PL_OK)
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
    pl__rl_sub_close(rl);
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
