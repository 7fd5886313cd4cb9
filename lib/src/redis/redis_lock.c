/*
 * redis_lock.c -- RedisLock, the lock kind: the wait loop (proof, idle
 * check, eviction, reconnect), acquire, release, check, fork and open.  The
 * overview is in redis_lock.h, the design and its safety argument in
 * DESIGN.md.
 */
#include "redis_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the wait loop -------------------------------------------------------
 */

/* CLIENT KILL ID <exact id> on the command connection of generation gen,
 * so never on a restarted server (ids restart from 1 there). */
static int rl_evict(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    const char *argv[4] = {"CLIENT", "KILL", "ID", w->bcid};
    redisReply *r = NULL;
    int rc = PL_OK;

    pl__rl_mutex_lock(&rl->mu);
    if (rl->cmd != NULL && rl->cmd->err == 0 && rl->cmd_gen == w->bgen) {
        r = redisCommandArgv(rl->cmd, 4, argv, NULL);
        if (r == NULL)
            rc = pl__rl_io_error(rl->cmd, "CLIENT KILL", err);
    }
    pl__rl_mutex_unlock(&rl->mu);
    if (r == NULL)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER ||
        (r->type == REDIS_REPLY_ERROR && strstr(r->str, "No such") != NULL)) {
        strcpy(w->pchan, w->bchan);
        strcpy(w->pcid, w->bcid);
        w->evicted = 1;
    } else {
        w->evict_denied = 1; /* e.g. NOPERM: keep waiting */
    }
    freeReplyObject(r);
    return PL_OK;
}

/*
 * Every check_interval: CLIENT LIST ID <blocker's id>, on the same command
 * connection that learnt the id (so the same server run).
 *   - empty: that connection has ended -> proof for the next try;
 *   - idle= at least ceil(max(my, its unavailable_timeout)) + 1 seconds
 *     (the server counts whole seconds), the answer came fast, and no reply
 *     was slow for that long either (time the server or we were stalled
 *     does not count against the blocker) -> evict it.
 * A live holder or pending writer pings its own connection several times
 * per unavailable_timeout, and nobody else can make it look idle.
 */
static int rl_judge(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    const char *argv[4] = {"CLIENT", "LIST", "ID", w->bcid};
    redisReply *r = NULL;
    double t0, t1, need, lease;
    int rc = PL_OK;

    if (!rl->client_list_ok || strcmp(w->bcid, "0") == 0)
        return PL_OK;
    pl__rl_mutex_lock(&rl->mu);
    t0 = pl__os_monotonic();
    if (rl->cmd != NULL && rl->cmd->err == 0 && rl->cmd_gen == w->bgen) {
        r = redisCommandArgv(rl->cmd, 4, argv, NULL);
        if (r == NULL)
            rc = pl__rl_io_error(rl->cmd, "CLIENT LIST", err);
    }
    t1 = pl__os_monotonic();
    pl__rl_mutex_unlock(&rl->mu);
    if (r == NULL)
        return rc; /* a stale id (new connection): the next try renews it */
    if (t1 - t0 > RL_SLOW_SECONDS)
        w->slow_at = t1;
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
        rl->client_list_ok = 0; /* no rights (ACL) or an old server */
    } else if (r->len == 0) {
        strcpy(w->pchan, w->bchan);
        strcpy(w->pcid, w->bcid);
    } else if (rl->evict_stalled && !w->evict_denied) {
        size_t n = 0, un = strlen(rl->chan_prefix);
        const char *idle, *name = pl__rl_field(r->str, "name", &n);
        const char *uuid = strlen(w->bchan) > un ? w->bchan + un : "";
        lease = rl->unavailable_timeout > w->blease ? rl->unavailable_timeout
                                                    : w->blease;
        need = (double)(long)lease + (lease > (double)(long)lease) + 1.0;
        /* The name (when the ACL let it be set) must be the blocker's:
         * one more guard against killing an unrelated connection. */
        if (name != NULL && n > 0 &&
            (n < strlen(uuid) ||
             strncmp(name + n - strlen(uuid), uuid, strlen(uuid)) != 0))
            need = 1e300;
        idle = pl__rl_field(r->str, "idle", &n);
        if (idle != NULL && strtod(idle, NULL) >= need &&
            t1 - w->slow_at >= need) {
            freeReplyObject(r);
            return rl_evict(rl, w, err);
        }
    }
    freeReplyObject(r);
    return PL_OK;
}

static int rl_timed_out(rl_t *rl, const rl_wait_t *w, pl_error_t *err) {
    const char *lost =
        w->evict_denied || !rl->evict_stalled || !rl->client_list_ok
            ? "; it was not evicted (eviction disabled, or CLIENT LIST/KILL "
              "refused)"
            : "";
    if (w->mkind == 'q')
        return pl__error_set(err, PL_ETIMEDOUT, 0,
                             "redis lock %s: still waiting in line behind "
                             "earlier waiters (fair mode; first in line: "
                             "client id %s)%s",
                             rl->lock->path, w->mcid, lost);
    return pl__error_set(err, PL_ETIMEDOUT, 0,
                         "redis lock %s: still held (%s, client id %s)%s",
                         rl->lock->path,
                         w->mkind == 'x'   ? "exclusive"
                         : w->mkind == 's' ? "shared"
                                           : "pending writer",
                         w->mcid, lost);
}

/* How often a waiter that is not the queue's head PINGs its subscription
 * connection: often enough that it never looks idle to a waiter judging
 * it (that needs more than its unavailable_timeout), rarely enough that
 * many waiters cost the server little. */
static double rl_waiter_hb(const rl_t *rl) {
    return rl->unavailable_timeout / 2;
}

/*
 * Between two tries: heartbeat, proof or eviction, then wait.  The queue's
 * head re-runs the script every RL_POLL_SECONDS (a dead holder publishes
 * nothing) and judges the holder every check_interval; every other waiter
 * sleeps until a message concerns it (on its notify channel: "head <its
 * channel>", or an event while it is a pending writer behind a shared
 * head; a shared waiter: any event) or the RL_SAFETY_SECONDS re-check, at
 * which it also judges the head (DESIGN.md §5).
 */
static int rl_wait_step(rl_t *rl, rl_wait_t *w, pl_error_t *err) {
    double now = pl__os_monotonic(), end;
    double every = w->head ? w->check_every : RL_SAFETY_SECONDS;
    int rc = PL_OK;

    if (!w->forever && now >= w->deadline)
        return rl_timed_out(rl, w, err);
    if (w->next_check > now + every)
        w->next_check = now + every; /* just became the head */
    if (now >= w->next_check) {
        w->next_check = now + every;
        if ((rc = rl_judge(rl, w, err)) != PL_OK || w->pchan[0] != '\0')
            return rc;
    }
    end = w->head ? now + RL_POLL_SECONDS : w->next_check;
    if (end > w->next_check)
        end = w->next_check;
    if (!w->forever && end > w->deadline)
        end = w->deadline;
    rl->woken = 0;
    do {
        double hb = w->head ? rl->hb_every : rl_waiter_hb(rl), until = end;
        if (rl->hb_sent == 0 && now - rl->hb_ok >= hb &&
            (rc = pl__rl_heartbeat(rl, now, err)) != PL_OK)
            return rc;
        if (rl->hb_sent == 0 && rl->hb_ok + hb < until)
            until = rl->hb_ok + hb;
        rc = pl__rl_sub_pump(rl, until > now ? until - now : 0, err);
        now = pl__os_monotonic();
    } while (rc == PL_OK && !rl->woken && now < end);
    return rc;
}

/* Undo a failed attempt: withdraw a pending-writer entry, close sub. */
static void rl_abandon(rl_t *rl, const rl_wait_t *w) {
    if ((w->maybe_pending || w->queued) && rl->sub != NULL) {
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

/* Opens (or reopens) the command and subscription connections. */
static int rl_open_conns(rl_t *rl, pl_error_t *err) {
    int rc;
    pl__rl_mutex_lock(&rl->mu);
    rc = pl__rl_cmd_ensure(rl, err);
    pl__rl_mutex_unlock(&rl->mu);
    if (rc == PL_OK)
        rc = pl__rl_sub_open(rl, err);
    return rc;
}

/*
 * A waiter with time left whose connection broke (server restart, a stall
 * longer than command_timeout, maxclients): back off, reconnect, and go on
 * waiting with a new subscription; everything known about the blocker is
 * forgotten (it may belong to an earlier server run).  Only the deadline
 * ends the wait.  Returns PL_OK once reconnected.
 */
static int rl_reconnect(rl_t *rl, rl_wait_t *w, double *backoff,
                        pl_error_t *err) {
    int rc = PL_ECONN;
    for (;;) {
        double now = pl__os_monotonic(), nap = *backoff;
        if (!w->forever && now + nap >= w->deadline)
            return rc; /* err holds the last cause */
        pl__rl_sub_close(rl);
        pl__os_sleep(nap);
        *backoff = nap * 2 > RL_BACKOFF_MAX ? RL_BACKOFF_MAX : nap * 2;
        if ((rc = rl_open_conns(rl, err)) == PL_OK) {
            w->bchan[0] = w->bcid[0] = w->pchan[0] = w->pcid[0] = '\0';
            w->bgen = 0;
            w->maybe_pending = 0; /* those entries died with the old sub */
            w->queued = 0;
            w->head = 1;
            w->evict_denied = 0;
            return PL_OK;
        }
        if (rc != PL_ECONN)
            return rc;
    }
}

static int rl_acquire(pl_lock_t *lock, double timeout, double check_interval,
                      int fail_when_locked) {
    rl_t *rl = lock->impl;
    rl_wait_t w;
    pl_error_t e;
    int rc, granted = 0, may_wait = !fail_when_locked && timeout != 0;
    double now = pl__os_monotonic(), backoff = RL_BACKOFF_MIN, t0 = now;

    if (rl->conn_pid != pl__os_getpid())
        pl__rl_drop_inherited(rl);
    memset(&w, 0, sizeof(w));
    w.forever = timeout < 0;
    w.deadline = now + (timeout > 0 ? timeout : 0);
    w.check_every =
        check_interval > RL_POLL_SECONDS ? check_interval : RL_POLL_SECONDS;
    w.next_check = now + w.check_every;
    w.slow_at = now;
    w.head = 1;
    if ((rc = rl_open_conns(rl, &e)) != PL_OK)
        return pl__lock_fail_from(lock, &e);
    for (;;) {
        t0 = pl__os_monotonic();
        rc = pl__rl_try(rl, &w, may_wait, &granted, &e);
        now = pl__os_monotonic();
        if (now - t0 > RL_SLOW_SECONDS)
            w.slow_at = now;
        if (rc == PL_OK && granted)
            break;
        if (rc == PL_OK && !may_wait) {
            rc = pl__error_set(&e, PL_ELOCKED, 0,
                               "redis lock %s: held by another owner",
                               lock->path);
            break;
        }
        if (rc == PL_OK)
            rc = rl_wait_step(rl, &w, &e);
        if (rc == PL_ECONN && may_wait)
            rc = rl_reconnect(rl, &w, &backoff, &e);
        if (rc != PL_OK)
            break;
    }
    if (rc == PL_OK) {
        /* The script saw our subscription alive after t0. */
        if (t0 > rl->hb_ok)
            rl->hb_ok = t0;
        strcpy(rl->grant_run, rl->run); /* for the watcher's probe */
        if ((rc = pl__rl_watch_start(rl, &e)) != PL_OK)
            rl_ungrant(rl);
    }
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
    pl__rl_drop_inherited(lock->impl);
}

static void rl_free(rl_t *rl) {
    if (rl == NULL)
        return;
    pl__rl_unregister(rl);
    if (rl->conn_pid != pl__os_getpid())
        pl__rl_drop_inherited(rl); /* a child: never write on them */
    pl__rl_sub_close(rl);
    if (rl->cmd != NULL)
        redisFree(rl->cmd);
    pl__rl_mutex_destroy(&rl->mu);
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

/* Seconds a Redis option may give: finite (so every conversion to
 * milliseconds or a timeval is defined, with room in an int) and, for
 * unavailable_timeout, long enough for a holder to confirm its grant at all
 * (its deadline is half of it, its heartbeat an eighth). */
#define RL_MAX_SECONDS     1e6
#define RL_MIN_UNAVAILABLE 0.01

static int rl_options_ok(const pl_redis_options_t *o) {
    if (o->unix_socket == NULL &&
        (o->host == NULL || o->port <= 0 || o->port > 65535))
        return 0;
    if (!(o->connect_timeout > 0 && o->connect_timeout <= RL_MAX_SECONDS) ||
        !(o->command_timeout > 0 && o->command_timeout <= RL_MAX_SECONDS) ||
        !(o->unavailable_timeout >= RL_MIN_UNAVAILABLE &&
          o->unavailable_timeout <= RL_MAX_SECONDS) ||
        !(o->check_interval >= 0) || o->timeout != o->timeout)
        return 0;
    return o->password != NULL || o->username == NULL;
}

static void rl_names(rl_t *rl, const char *name) {
    static const char *suffix[RL_NKEYS] = {"owner", "readers", "pending",
                                           "fence", "waiters", "queue"};
    char *p;
    int i;
    for (i = 0; i < RL_NKEYS; i++)
        snprintf(rl->keys[i], sizeof(rl->keys[i]), "pl:{%s}:%s", name,
                 suffix[i]);
    snprintf(rl->ev_chan, sizeof(rl->ev_chan), "pl:{%s}:ev", name);
    snprintf(rl->chan_prefix, sizeof(rl->chan_prefix), "pl:{%s}:h:", name);
    snprintf(rl->note_prefix, sizeof(rl->note_prefix), "pl:{%s}:w:{", name);
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
    if (pl__rl_mutex_init(&rl->mu) != PL_OK) {
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
    rl->fair = o->fair != 0;
    rl->on_lost = o->on_lost;
    rl->on_lost_arg = o->on_lost_arg;
    rl->client_list_ok = 1;
    /* The holder's own deadline: half of its unavailable_timeout, which is
     * recorded with the grant so no waiter evicts it sooner (DESIGN.md
     * 4.4); heartbeats four times per deadline. */
    rl->deadline = o->unavailable_timeout / 2;
    rl->hb_every = rl->deadline / 4;
    snprintf(rl->lease_ms, sizeof(rl->lease_ms), "%.0f",
             o->unavailable_timeout * 1000.0 + 0.5);
    strcpy(rl->run, "-");
    rl->conn_pid = pl__os_getpid();
    rl_names(rl, name);
    pl__rl_register(rl);
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
