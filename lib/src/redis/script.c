/*
 * script.c -- RedisLock arbitration: the one Lua script that decides every
 * grant (see DESIGN.md §3), running it (EVALSHA, reloaded after NOSCRIPT),
 * and one acquire try.
 */
#include "redis_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/*
 * KEYS: 1 owner hash {chan, cid, tok, run, u}; 2 readers hash chan ->
 *       "cid tok run u"; 3 pending writers hash chan -> "cid run u";
 *       4 fencing counter.
 * ARGV: 1 op (acq|rel|chk|cancel); 2 mode (x|s); 3 my channel; 4 my client
 *       id; 5 my token (rel/chk) or proof channel (acq); 6 proof client id;
 *       7 event channel; 8 "1" = may register as pending writer; 9 the
 *       server's run id as my command connection saw it ("-" unknown);
 *       10 my unavailable_timeout in ms (recorded: waiters never evict me
 *       sooner than that, DESIGN.md §4.4).
 * acq returns {1, token} granted, {0, chan, cid, kind, u} blocked by a live
 * holder (kind x owner, s reader, p pending writer; u its recorded
 * unavailable_timeout in ms), {-1} my channel has no subscriber.
 * A record written in an earlier server run (run id differs, both known)
 * is dead: its connection ended with that run, and its client id may now
 * name an unrelated connection.
 */
static const char RL_SCRIPT[] =
"local op, mode, me, run = ARGV[1], ARGV[2], ARGV[3], ARGV[9]\n"
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
"    held = v and string.match(v, '^%d+ (%d+)') == ARGV[5]\n"
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
"local function dead(ch, cid, r)\n"
"  if cid == nil or (ch == pchan and cid == pcid) then return true end\n"
"  if r and r ~= '-' and run ~= '-' and r ~= run then return true end\n"
"  return not alive(ch)\n"
"end\n"
"local function next_token()\n"
"  local t = redis.call('TIME')\n"
"  local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
"  local v = redis.call('INCR', KEYS[4])\n"
"  if v < floor then\n"
"    v = floor\n"
"    redis.call('SET', KEYS[4], string.format('%.0f', v))\n"
"  end\n"
"  return string.format('%.0f', v)\n"
"end\n"
"local pruned = false\n"
"local o = redis.call('HMGET', KEYS[1], 'chan', 'cid', 'tok', 'run', 'u')\n"
"if o[1] then\n"
"  if o[1] == me then return {1, o[3]} end\n"
"  if dead(o[1], o[2], o[4] or '-') then\n"
"    redis.call('DEL', KEYS[1]); o[1] = false; pruned = true\n"
"  end\n"
"end\n"
"local reader\n"
"local rd = redis.call('HGETALL', KEYS[2])\n"
"for i = 1, #rd, 2 do\n"
"  local cid, tok, r, u = string.match(rd[i + 1], '^(%d+) (%d+) (%S+) (%d+)$')\n"
"  if rd[i] == me and tok then return {1, tok} end\n"
"  if dead(rd[i], cid, r) then\n"
"    redis.call('HDEL', KEYS[2], rd[i]); pruned = true\n"
"  elseif not reader then reader = {rd[i], cid, u} end\n"
"end\n"
"local writer\n"
"local pd = redis.call('HGETALL', KEYS[3])\n"
"for i = 1, #pd, 2 do\n"
"  if pd[i] ~= me then\n"
"    local cid, r, u = string.match(pd[i + 1], '^(%d+) (%S+) (%d+)$')\n"
"    if dead(pd[i], cid, r) then\n"
"      redis.call('HDEL', KEYS[3], pd[i]); pruned = true\n"
"    elseif not writer then writer = {pd[i], cid, u} end\n"
"  end\n"
"end\n"
"if pruned then redis.call('PUBLISH', ARGV[7], 'pruned') end\n"
"if o[1] then return {0, o[1], o[2], 'x', o[5] or '0'} end\n"
"if mode == 'x' then\n"
"  if reader then\n"
"    if ARGV[8] == '1' then\n"
"      redis.call('HSET', KEYS[3], me, ARGV[4] .. ' ' .. run .. ' ' .. ARGV[10])\n"
"    end\n"
"    return {0, reader[1], reader[2], 's', reader[3]}\n"
"  end\n"
"  redis.call('HDEL', KEYS[3], me)\n"
"  local tok = next_token()\n"
"  redis.call('HSET', KEYS[1], 'chan', me, 'cid', ARGV[4], 'tok', tok,\n"
"             'run', run, 'u', ARGV[10])\n"
"  return {1, tok}\n"
"end\n"
"if writer then return {0, writer[1], writer[2], 'p', writer[3]} end\n"
"local tok = next_token()\n"
"redis.call('HSET', KEYS[2], me,\n"
"           ARGV[4] .. ' ' .. tok .. ' ' .. run .. ' ' .. ARGV[10])\n"
"return {1, tok}\n";
/* clang-format on */

void pl__rl_queue_script_load(redisContext *c) {
    const char *argv[3] = {"SCRIPT", "LOAD", RL_SCRIPT};
    redisAppendCommandArgv(c, 3, argv, NULL);
}

/* Reads the SCRIPT LOAD reply into rl->sha. */
int pl__rl_read_sha(rl_t *rl, redisContext *c, pl_error_t *err) {
    redisReply *r;
    int rc = pl__rl_get(c, &r, "SCRIPT LOAD", err);
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING ||
        pl__rl_copy(rl->sha, sizeof(rl->sha), r->str, r->len) != 0)
        rc = pl__rl_reply_error(r, "SCRIPT LOAD", err);
    freeReplyObject(r);
    return rc;
}

/* EVALSHA of the lock script with our keys; reloads it after NOSCRIPT (a
 * restarted server or SCRIPT FLUSH).  Caller holds rl->mu. */
static int rl_eval_once(rl_t *rl, const char **args, redisReply **out,
                        pl_error_t *err) {
    const char *argv[17];
    int i, rc, attempt;

    argv[0] = "EVALSHA";
    argv[2] = "4";
    for (i = 0; i < 4; i++)
        argv[3 + i] = rl->keys[i];
    for (i = 0; i < 8; i++)
        argv[7 + i] = args[i];
    argv[16] = rl->lease_ms;
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rc = pl__rl_cmd_ensure(rl, err)) != PL_OK)
            return rc;
        /* the run id of the very connection that runs the script */
        argv[1] = rl->sha;
        argv[15] = rl->run;
        if ((rc = pl__rl_cmd_argv(rl, 17, argv, out, err)) != PL_OK)
            return rc;
        if ((*out)->type != REDIS_REPLY_ERROR ||
            strncmp((*out)->str, "NOSCRIPT", 8) != 0)
            break;
        freeReplyObject(*out);
        *out = NULL;
        pl__rl_queue_script_load(rl->cmd);
        if ((rc = pl__rl_read_sha(rl, rl->cmd, err)) != PL_OK)
            return rc;
    }
    if (*out == NULL)
        return pl__error_set(err, PL_EPROTO, 0, "redis EVALSHA: NOSCRIPT");
    if ((*out)->type == REDIS_REPLY_ERROR) {
        rc = pl__rl_reply_error(*out, "EVALSHA", err);
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
int pl__rl_eval(rl_t *rl, const char **args, redisReply **out,
                pl_error_t *err) {
    int rc;
    pl__rl_mutex_lock(&rl->mu);
    rc = rl_eval_once(rl, args, out, err);
    if (rc == PL_ECONN && rl->cmd != NULL && rl->cmd->err != 0)
        rc = rl_eval_once(rl, args, out, err);
    pl__rl_mutex_unlock(&rl->mu);
    return rc;
}

int pl__rl_eval_int(rl_t *rl, const char **args, long long *val,
                    pl_error_t *err) {
    redisReply *r;
    int rc = pl__rl_eval(rl, args, &r, err);
    if (rc != PL_OK)
        return rc;
    if (r->type == REDIS_REPLY_INTEGER)
        *val = r->integer;
    else
        rc = pl__rl_reply_error(r, "EVALSHA", err);
    freeReplyObject(r);
    return rc;
}

/* ---- acquire -------------------------------------------------------------
 */

const char *pl__rl_mode(const rl_t *rl) {
    return rl->shared ? "s" : "x";
}

/* Records who blocks us, its recorded unavailable_timeout, and on which
 * command connection we learnt it (gen): a CLIENT KILL or a proof is only
 * ever made on that same connection, so never across a server restart. */
static int rl_note_blocker(rl_wait_t *w, const redisReply *r, unsigned long gen,
                           pl_error_t *err) {
    const redisReply *ch = r->element[1], *cid = r->element[2],
                     *kind = r->element[3], *lease = r->element[4];
    if (!PL__REPLY_IS(ch, REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(cid, REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(kind, REDIS_REPLY_STRING) ||
        !PL__REPLY_IS(lease, REDIS_REPLY_STRING))
        return pl__error_set(err, PL_EPROTO, 0,
                             "redis lock script: bad blocker reply");
    if (strcmp(ch->str, w->bchan) != 0 || strcmp(cid->str, w->bcid) != 0) {
        if (pl__rl_copy(w->bchan, sizeof(w->bchan), ch->str, ch->len) != 0 ||
            pl__rl_copy(w->bcid, sizeof(w->bcid), cid->str, cid->len) != 0)
            return pl__error_set(err, PL_EPROTO, 0,
                                 "redis lock script: blocker name too long");
        w->evict_denied = 0;
    }
    w->blease = strtod(lease->str, NULL) / 1000.0;
    w->bgen = gen;
    w->bkind = kind->str[0];
    return PL_OK;
}

/* One run of the acquire script.  *granted = 1 with rl->tok set, or the
 * blocker recorded in w. */
int pl__rl_try(rl_t *rl, rl_wait_t *w, int may_wait, int *granted,
               pl_error_t *err) {
    const char *args[8] = {"acq",       pl__rl_mode(rl),
                           rl->my_chan, rl->cid,
                           w->pchan,    w->pcid[0] ? w->pcid : "0",
                           rl->ev_chan, may_wait ? "1" : "0"};
    redisReply *r;
    long long status;
    int rc = pl__rl_eval(rl, args, &r, err);

    w->pchan[0] = w->pcid[0] = '\0';
    *granted = 0;
    if (rc != PL_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        !PL__REPLY_IS(r->element[0], REDIS_REPLY_INTEGER))
        rc = pl__rl_reply_error(r, "lock script", err);
    else if ((status = r->element[0]->integer) == 1 && r->elements == 2 &&
             PL__REPLY_IS(r->element[1], REDIS_REPLY_STRING) &&
             pl__rl_copy(rl->tok, sizeof(rl->tok), r->element[1]->str,
                         r->element[1]->len) == 0)
        *granted = 1;
    else if (status == 0 && r->elements == 5)
        rc = rl_note_blocker(w, r, rl->cmd_gen, err);
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
