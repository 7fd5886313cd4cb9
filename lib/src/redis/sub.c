/*
 * sub.c -- RedisLock subscription connection (one per acquire attempt) and
 * the holder's watcher thread that reads it while held.
 */
#include "redis_lock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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
 * [AUTH], CLIENT ID, CLIENT SETNAME (informational), SUBSCRIBE my channel
 * and the event channel, pipelined in one round trip.
 */
int pl__rl_sub_open(rl_t *rl, pl_error_t *err) {
    char uuid[33], name[RL_CHAN_MAX + 40];
    const char *id[2] = {"CLIENT", "ID"};
    const char *setname[3] = {"CLIENT", "SETNAME", name};
    const char *sub[3] = {"SUBSCRIBE", rl->my_chan, rl->ev_chan};
    redisContext *c;
    redisReply *r;
    int auth, rc;

    pl__rl_random_hex(uuid, 16);
    snprintf(rl->my_chan, sizeof(rl->my_chan), "%s%s", rl->chan_prefix, uuid);
    snprintf(name, sizeof(name), "%s%s", rl->client_name, uuid);
    if ((rc = pl__rl_connect(rl, &c, &auth, err)) != PL_OK)
        return rc;
    redisAppendCommandArgv(c, 2, id, NULL);
    redisAppendCommandArgv(c, 3, setname, NULL);
    redisAppendCommandArgv(c, 3, sub, NULL);
    if (auth)
        rc = pl__rl_check_auth(c, err);
    if (rc == PL_OK)
        rc = rl_read_client_id(rl, c, err);
    if (rc == PL_OK && (rc = pl__rl_get(c, &r, "CLIENT SETNAME", err)) == PL_OK)
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
        if (pl__rl_cmd_argv(rl, 3, argv, &r, &e) == PL_OK) {
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
int pl__rl_sub_pump(rl_t *rl, double timeout, pl_error_t *err) {
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
        return pl__rl_io_error(rl->sub, "subscription", err);
    return rl_sub_drain(rl, err);
}

/* ---- the holder's watcher thread -----------------------------------------
 */

static void *rl_watch(void *arg) {
    rl_t *rl = arg;
    pl_error_t e;

    while (!atomic_load(&rl->stop))
        if (pl__rl_sub_pump(rl, -1, &e) != PL_OK)
            break;
    if (!atomic_load(&rl->stop)) {
        atomic_store(&rl->lost, 1);
        if (rl->on_lost != NULL)
            rl->on_lost(rl->lock, PL_ELOST, rl->on_lost_arg);
    }
    return NULL;
}

int pl__rl_watch_start(rl_t *rl, pl_error_t *err) {
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
void pl__rl_watch_stop(rl_t *rl) {
    if (rl->watcher_started) {
        atomic_store(&rl->stop, 1);
        shutdown(PL__REDIS_FD(rl->sub), SHUT_RDWR);
        pthread_join(rl->watcher, NULL);
        rl->watcher_started = 0;
    }
    pl__rl_sub_close(rl);
}
