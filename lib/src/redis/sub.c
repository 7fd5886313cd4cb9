/*
 * sub.c -- RedisLock subscription connection (one per acquire attempt) and
 * the holder's watcher thread that reads it while held.
 */
#include "redis_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_PUMP_MAX_WAIT 86400.0 /* seconds: one day per poll at most */

/* ---- the subscription connection ----------------------------------------
 */

void pl__rl_sub_close(rl_t *rl) {
    if (rl->sub != NULL) {
        redisFree(rl->sub);
        rl->sub = NULL;
    }
}

/* Checks one SUBSCRIBE confirmation for channel ch. */
static int rl_read_subscribed(redisContext *c, const char *ch,
                              pl_error_t *err) {
    redisReply *r;
    int rc = pl__rl_get(c, &r, "SUBSCRIBE", err);
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        !PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) ||
        strcmp(r->element[1]->str, ch) != 0)
        rc = r->type == REDIS_REPLY_ERROR
                 ? pl__rl_reply_error(r, "SUBSCRIBE", err)
                 : pl__error_set(err, PL_EPROTO, 0,
                                 "redis SUBSCRIBE %s: unexpected reply", ch);
    freeReplyObject(r);
    return rc;
}

/* CLIENT ID reply into rl->cid ("0" if the ACL refuses it). */
static int rl_read_client_id(rl_t *rl, redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = pl__rl_get(c, &r, "CLIENT ID", err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        snprintf(rl->cid, sizeof(rl->cid), "%lld", r->integer);
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0)
        snprintf(rl->cid, sizeof(rl->cid), "0");
    else
        rc = pl__rl_reply_error(r, "CLIENT ID", err);
    freeReplyObject(r);
    return rc;
}

/*
 * Opens this attempt's subscription connection: a fresh channel name, then
 * [AUTH], CLIENT ID, CLIENT SETNAME (informational), SUBSCRIBE my channel,
 * my notify channel and (shared mode) the event channel, pipelined in one
 * round trip.  An exclusive waiter needs no broadcast: the script tells it
 * on its notify channel when it is the head, or a pending writer behind a
 * shared head: the only times an event can admit it (behind a writer head
 * the head takes it); a release can admit several readers, so
 * shared waiters hear every event (DESIGN.md §5).
 */
int pl__rl_sub_open(rl_t *rl, pl_error_t *err) {
    char uuid[33], name[RL_CHAN_MAX + 40];
    const char *id[2] = {"CLIENT", "ID"};
    const char *setname[3] = {"CLIENT", "SETNAME", name};
    const char *sub[4] = {"SUBSCRIBE", rl->my_chan, rl->note_chan, rl->ev_chan};
    redisContext *c;
    redisReply *r;
    int auth, rc;

    pl__rl_random_hex(uuid, 16);
    snprintf(rl->my_chan, sizeof(rl->my_chan), "%s%s", rl->chan_prefix, uuid);
    snprintf(rl->note_chan, sizeof(rl->note_chan), "%s%s}:ev", rl->note_prefix,
             uuid);
    snprintf(name, sizeof(name), "%s%s", rl->client_name, uuid);
    if ((rc = pl__rl_connect(rl, NULL, 0, &c, &auth, err)) != PL_OK)
        return rc;
    redisAppendCommandArgv(c, 2, id, NULL);
    redisAppendCommandArgv(c, 3, setname, NULL);
    redisAppendCommandArgv(c, rl->shared ? 4 : 3, sub, NULL);
    if (auth)
        rc = pl__rl_check_auth(c, err);
    if (rc == PL_OK)
        rc = rl_read_client_id(rl, c, err);
    if (rc == PL_OK && (rc = pl__rl_get(c, &r, "CLIENT SETNAME", err)) == PL_OK)
        freeReplyObject(r); /* a refused name changes nothing */
    if (rc == PL_OK)
        rc = rl_read_subscribed(c, rl->my_chan, err);
    if (rc == PL_OK)
        rc = rl_read_subscribed(c, rl->note_chan, err);
    if (rc == PL_OK && rl->shared)
        rc = rl_read_subscribed(c, rl->ev_chan, err);
    if (rc != PL_OK) {
        redisFree(c);
        return rc;
    }
    rl->sub = c;
    rl->hb_ok = pl__os_monotonic(); /* subscribed: alive after this */
    rl->hb_sent = 0;
    return PL_OK;
}

/*
 * Heartbeat: a PING on the sub connection (allowed while subscribed; the
 * reply is ["pong", ""]) every hb_every, one at a time.  It serves twice:
 *   - the server updates the connection's last interaction, which is what
 *     a waiter reads (CLIENT LIST ID <cid> idle=) before evicting: a live
 *     holder is never idle for long, and no PUBLISH of anybody else's can
 *     make it look idle (DESIGN.md 5);
 *   - its reply tells the holder the server still had this connection
 *     after hb_sent; without one for rl->deadline the holder declares
 *     itself lost, before any waiter may evict it (DESIGN.md 4.4).
 */
int pl__rl_heartbeat(rl_t *rl, double now, pl_error_t *err) {
    const char *argv[1] = {"PING"};
    int done = 0;

    if (rl->hb_sent != 0 || now - rl->hb_ok < rl->hb_every)
        return PL_OK;
    redisAppendCommandArgv(rl->sub, 1, argv, NULL);
    while (!done)
        if (redisBufferWrite(rl->sub, &done) != REDIS_OK)
            return pl__rl_io_error(rl->sub, "subscription heartbeat", err);
    rl->hb_sent = now;
    return PL_OK;
}

/* One reply on the sub connection: a heartbeat answer or a message.
 * Anything published on our own channel is ignored (no one can make us do
 * work or look dead by publishing there).  A message on our notify channel
 * wakes us (the script sends there only what concerns us: at worst a
 * forged one costs a script run).  Only shared waiters subscribe to the
 * event channel, and every event there concerns them, except "head
 * <channel>" naming another waiter (sent there by earlier versions).  A
 * holder ignores them all. */
static void rl_on_reply(rl_t *rl, const redisReply *r) {
    const char *ch, *m;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        !PL__REPLY_IS(r->element[0], REDIS_REPLY_STRING))
        return;
    if (r->elements == 2 && strcmp(r->element[0]->str, "pong") == 0 &&
        rl->hb_sent != 0) {
        if (rl->hb_sent > rl->hb_ok)
            rl->hb_ok = rl->hb_sent;
        rl->hb_sent = 0;
        return;
    }
    if (r->elements != 3 || strcmp(r->element[0]->str, "message") != 0 ||
        !PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(r->element[2], REDIS_REPLY_STRING))
        return;
    ch = r->element[1]->str;
    m = r->element[2]->str;
    if (strcmp(ch, rl->note_chan) == 0)
        rl->woken = 1;
    else if (strcmp(ch, rl->ev_chan) == 0)
        rl->woken |=
            strncmp(m, "head ", 5) != 0 || strcmp(m + 5, rl->my_chan) == 0;
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
        rl_on_reply(rl, r);
        freeReplyObject(r);
    }
}

/*
 * Waits up to timeout seconds (< 0: without limit) for the sub connection,
 * then handles what arrived.  PL_ECONN once the connection has ended.
 */
int pl__rl_sub_pump(rl_t *rl, double timeout, pl_error_t *err) {
    int rc;

    if ((rc = rl_sub_drain(rl, err)) != PL_OK)
        return rc;
    /* The platforms poll in int milliseconds: a longer wait (an acquire
     * timeout of years) is made in steps; every caller loops to its own
     * deadline. */
    if (timeout > RL_PUMP_MAX_WAIT)
        timeout = RL_PUMP_MAX_WAIT;
    rc = pl__rl_sock_wait(rl->sub, timeout, err);
    if (rc <= 0)
        return rc; /* PL_OK (0): nothing arrived; or the wait failed */
    if (redisBufferRead(rl->sub) != REDIS_OK)
        return pl__rl_io_error(rl->sub, "subscription", err);
    return rl_sub_drain(rl, err);
}

/* ---- the liveness probe --------------------------------------------------
 *
 * The heartbeat's answer on sub queues behind everything published to our
 * channel before it: a publisher's flood, drained by a holder short of CPU,
 * delays it past the deadline although the connection is fine (issue 8
 * item 4; test flood_on_starved_holder_keeps_lock).  So when an answer is
 * late, the watcher asks the server itself, on a connection of its own
 * that nobody else writes to: CLIENT LIST ID <our sub's id>.
 *   - Listed, at server time T >= s (s: when we sent the question): the
 *     connection existed at T, so nobody was granted before T (a grant
 *     needs it gone, DESIGN.md 4.2).  Its idle= i (whole seconds, as
 *     waiters read it) bounds any eviction to after s - i + U, exactly as
 *     an answered heartbeat sent at s - i would: hb_ok = s - i.
 *   - Not listed: the connection is gone; we say lost at once.
 * Trusted only for our own connection: the line must carry our id, and our
 * name (client name + channel uuid) or, if the ACL refused the name, the
 * probe must reach the server run that granted (INFO run_id).  Anything
 * it cannot verify, a refused CLIENT LIST, or no answer within the time
 * left, gives no credit: the deadline then decides as before.
 */

/* The pointer is changed through the fork registry (pl__rl_reg_store), so
 * a fork by another thread sees it either set to a live context or NULL,
 * never a freed one (its atfork handler closes the child's copy of the
 * socket it names). */
void pl__rl_probe_close(rl_t *rl) {
    redisContext *c = rl->probe;
    if (c != NULL) {
        pl__rl_reg_store(&rl->probe, NULL);
        redisFree(c);
    }
}

/* Opens the probe connection within budget seconds: [AUTH], INFO server
 * (the run id).  Over TCP it connects to the address sub is connected to,
 * by number: a name lookup can block for longer than any budget (glibc:
 * 5 s x 2 attempts when a partition cuts off the DNS server too), and the
 * watcher must say lost by its deadline (ctest
 * conformance.redis.partition_dns).  Not opened (no error: retried next time)
 * if the server cannot be reached in time; switched off for this hold if it is
 * another server run than the one that granted (a restart ended our connection
 * anyway: sub sees EOF). */
static void rl_probe_open(rl_t *rl, double budget) {
    const char *info[2] = {"INFO", "server"};
    char run[48], peer[128];
    double end = pl__os_monotonic() + budget;
    redisContext *c;
    redisReply *r;
    pl_error_t e;
    int auth;

    if (rl->unix_socket == NULL &&
        pl__rl_sock_peer(rl->sub, peer, sizeof(peer)) != 0)
        return; /* not connected any more: the next read says so */
    if (pl__rl_connect(rl, rl->unix_socket == NULL ? peer : NULL, budget, &c,
                       &auth, &e) != PL_OK)
        return;
    /* What is left after connecting bounds the replies, so opening takes
     * about the budget, not a connect plus a read timeout. */
    budget = end - pl__os_monotonic();
    if (budget < RL_SLOW_SECONDS / 10 ||
        redisSetTimeout(c, pl__rl_tv(budget)) != REDIS_OK) {
        redisFree(c);
        return;
    }
    redisAppendCommandArgv(c, 2, info, NULL);
    if ((auth && pl__rl_check_auth(c, &e) != PL_OK) ||
        pl__rl_get(c, &r, "INFO", &e) != PL_OK) {
        redisFree(c);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        pl__rl_info_run(r->str, run, sizeof(run));
    } else if (pl__rl_info_refused(r)) {
        strcpy(run, "-");
    } else {
        /* maxclients (the server closes it), LOADING...: this connection
         * tells nothing, and must not make us forget the granting run
         * (test probe_refused_at_maxclients_keeps_run_check) */
        freeReplyObject(r);
        redisFree(c);
        return;
    }
    freeReplyObject(r);
    if (strcmp(run, "-") != 0 && strcmp(rl->grant_run, "-") != 0 &&
        strcmp(run, rl->grant_run) != 0) {
        rl->probe_off = 1;
        redisFree(c);
        return;
    }
    if (strcmp(run, "-") == 0)
        strcpy(rl->grant_run, "-"); /* the name must then vouch */
    /* A fork before this line leaves the child a socket nobody names (it
     * closes at exec or exit; it holds no subscription, so no lock). */
    pl__rl_reg_store(&rl->probe, c);
}

/* What the answer to CLIENT LIST ID <cid> (asked at s) tells: PL_ELOST if
 * our connection is gone, else PL_OK, with hb_ok advanced if it is ours. */
static int rl_probe_answer(rl_t *rl, const redisReply *r, double s) {
    const char *uuid = rl->my_chan + strlen(rl->chan_prefix), *v;
    size_t n = 0, nl = strlen(rl->client_name), nu = strlen(uuid);
    double idle;

    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
        rl->probe_off = 1; /* NOPERM, or a server without CLIENT LIST ID */
        return PL_OK;
    }
    if (r->len == 0)
        return PL_ELOST;
    if ((v = pl__rl_field(r->str, "id", &n)) == NULL || n != strlen(rl->cid) ||
        strncmp(v, rl->cid, n) != 0)
        return PL_OK;
    v = pl__rl_field(r->str, "name", &n);
    if (v != NULL && n > 0) {
        if (n != nl + nu || strncmp(v, rl->client_name, nl) != 0 ||
            strncmp(v + nl, uuid, nu) != 0)
            return PL_OK; /* not ours: no credit */
    } else if (strcmp(rl->grant_run, "-") == 0) {
        rl->probe_off = 1; /* neither name nor run id to check */
        return PL_OK;
    }
    if ((v = pl__rl_field(r->str, "idle", &n)) == NULL)
        return PL_OK;
    idle = strtod(v, NULL);
    if (idle >= 0 && s - idle > rl->hb_ok)
        rl->hb_ok = s - idle;
    return PL_OK;
}

/* Asks the server whether our sub connection lives, within budget seconds
 * (the time left before the deadline).  PL_ELOST: it is gone. */
static int rl_probe(rl_t *rl, double now, double budget) {
    const char *argv[4] = {"CLIENT", "LIST", "ID", rl->cid};
    redisReply *r;
    double s;
    int rc;

    rl->probe_last = now;
    if (strcmp(rl->cid, "0") == 0) {
        rl->probe_off = 1; /* CLIENT ID was refused: no id to ask about */
        return PL_OK;
    }
    if (budget < RL_SLOW_SECONDS / 10)
        return PL_OK; /* too late to ask; the deadline decides */
    if (rl->probe == NULL)
        rl_probe_open(rl, budget);
    s = pl__os_monotonic();
    budget -= s - now;
    if (rl->probe == NULL || budget < RL_SLOW_SECONDS / 10)
        return PL_OK;
    (void)redisSetTimeout(rl->probe, pl__rl_tv(budget));
    r = redisCommandArgv(rl->probe, 4, argv, NULL);
    if (r == NULL) {
        pl__rl_probe_close(rl); /* no answer in time: reopened next time */
        return PL_OK;
    }
    rc = rl_probe_answer(rl, r, s);
    freeReplyObject(r);
    return rc;
}

/* ---- the holder's watcher thread -----------------------------------------
 */

/*
 * Reads sub while held: EOF or an error means the server closed the
 * connection (lost); no heartbeat answer (or probe credit) for
 * rl->deadline means we can no longer know that we hold it (partition, or
 * a server stall we cannot tell from one), so we say lost before any
 * waiter may evict us.  An answer later than hb_every starts the probe,
 * repeated every hb_every while it stays late.  The connection stays open
 * until release: nobody else is granted while it lives.
 */
static void *rl_watch(void *arg) {
    rl_t *rl = arg;
    pl_error_t e;
    /* From the grant on (the thread itself may start late). */
    double fresh_after = 0, grace_until = 0, last = rl->hb_ok, planned = 0;

    while (!atomic_load(&rl->stop)) {
        double now = pl__os_monotonic(), left, wait, probe_at;
        /* Overslept (the process was stopped or starved): we could not
         * have said "lost" in time anyway, so instead of guessing, ask: a
         * heartbeat sent after waking and answered within the deadline
         * proves the connection (and so the grant) survived the gap. */
        if (now - last > planned + RL_SLOW_SECONDS &&
            now - rl->hb_ok >= rl->deadline) {
            fresh_after = now;
            grace_until = now + rl->deadline;
        }
        left = rl->hb_ok + rl->deadline - now;
        if (left <= 0 && (now >= grace_until || rl->hb_ok >= fresh_after))
            break;
        if (left <= 0)
            left = grace_until - now;
        if (pl__rl_heartbeat(rl, now, &e) != PL_OK)
            break;
        probe_at = rl->hb_sent > rl->probe_last ? rl->hb_sent : rl->probe_last;
        probe_at += rl->hb_every;
        if (rl->hb_sent != 0 && !rl->probe_off && now >= probe_at) {
            if (rl_probe(rl, now, left) != PL_OK)
                break;
            last = pl__os_monotonic(); /* busy, not asleep */
            planned = 0;
            continue;
        }
        wait = rl->hb_sent != 0 ? left : rl->hb_ok + rl->hb_every - now;
        if (rl->hb_sent != 0 && !rl->probe_off && probe_at - now < wait)
            wait = probe_at - now;
        if (wait > left)
            wait = left;
        planned = wait > 0 ? wait : 0;
        last = now;
        if (pl__rl_sub_pump(rl, planned, &e) != PL_OK)
            break;
    }
    if (!atomic_load(&rl->stop)) {
        atomic_store(&rl->lost, 1);
        if (rl->on_lost != NULL)
            rl->on_lost(rl->lock, PL_ELOST, rl->on_lost_arg);
    }
    return NULL;
}

int pl__rl_watch_start(rl_t *rl, pl_error_t *err) {
    int rc;
    rl->probe_last = 0;
    rl->probe_off = 0;
    atomic_store(&rl->stop, 0);
    atomic_store(&rl->lost, 0);
    rc = pl__rl_thread_start(&rl->watcher, rl_watch, rl, err);
    if (rc != PL_OK)
        return rc;
    rl->watcher_started = 1;
    return PL_OK;
}

/* Wakes the watcher by shutting the sub socket down, joins, closes sub
 * and the probe connection.  A watcher in the middle of a probe finishes
 * it first (at most the time that was left before its deadline). */
void pl__rl_watch_stop(rl_t *rl) {
    if (rl->watcher_started) {
        atomic_store(&rl->stop, 1);
        pl__rl_sock_wake(rl->sub);
        pl__rl_thread_join(&rl->watcher);
        rl->watcher_started = 0;
    }
    pl__rl_probe_close(rl);
    pl__rl_sub_close(rl);
}
