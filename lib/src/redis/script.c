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
 *       4 fencing counter; 5 waiters hash chan -> "cid run u mode";
 *       6 the waiter queue (list of channels, arrival order).
 * ARGV: 1 op (acq|rel|chk|cancel); 2 mode (x|s); 3 my channel; 4 my client
 *       id; 5 my token (rel/chk) or proof channel (acq); 6 proof client id;
 *       7 event channel; 8 "1" = may wait (queue me, register me as pending
 *       writer); 9 the server's run id as my command connection saw it ("-"
 *       unknown); 10 my unavailable_timeout in ms (recorded: waiters never
 *       evict me sooner than that, DESIGN.md §4.4); 11 "1" = fair mode.
 * acq returns {1, token} granted, {0, chan, cid, kind, u, head, hchan,
 * hcid, hu} blocked by a live holder (kind x owner, s reader, p pending
 * writer, q the queue's head in fair mode; u its recorded
 * unavailable_timeout in ms; head 1 = I am the queue's head, else hchan,
 * hcid, hu name the head), {-1} my channel has no subscriber.
 * A record written in an earlier server run (run id differs, both known)
 * is dead: its connection ended with that run, and its client id may now
 * name an unrelated connection.  Queue entries are pruned by the same rules
 * when they reach the head.  Events (released, cancelled, pruned) are
 * published on the event channel, which only shared waiters subscribe to,
 * and on the notify channel of the queue's live head (dead entries before
 * it are popped first: a release must not go to a killed waiter while the
 * live one behind it sleeps until its re-check) and, unless that head is
 * a writer (it takes what one release can give a writer), of each pending
 * writer: pl:{NAME}:w:{<uuid>}:ev for the holder channel pl:{NAME}:h:<uuid>
 * (inside the ACL example's "&pl:{*}:ev").  A new head is told "head
 * <channel>" on its notify channel.  So an event wakes only the processes
 * it concerns (DESIGN.md §5).
 */
static const char RL_SCRIPT[] =
"local op, mode, me, run = ARGV[1], ARGV[2], ARGV[3], ARGV[9]\n"
"local function alive(ch)\n"
"  return redis.call('PUBSUB', 'NUMSUB', ch)[2] > 0\n"
"end\n"
"local qhead_changed = false\n"
"local function qhead(pchan, pcid)\n"
"  for _ = 1, 100000 do\n"
"    local h = redis.call('LINDEX', KEYS[6], 0)\n"
"    if not h or h == me then return h end\n"
"    local v = redis.call('HGET', KEYS[5], h)\n"
"    local cid, r, u, m\n"
"    if v then cid, r, u, m = string.match(v, '^(%d+) (%S+) (%d+) (%a)$') end\n"
"    if cid and not (h == pchan and cid == pcid) and\n"
"       not (r ~= '-' and run ~= '-' and r ~= run) and alive(h) then\n"
"      return h, cid, u, m\n"
"    end\n"
"    redis.call('LPOP', KEYS[6]); redis.call('HDEL', KEYS[5], h)\n"
"    qhead_changed = true\n"
"  end\n"
"end\n"
"local function qleave()\n"
"  if redis.call('HDEL', KEYS[5], me) == 0 then return end\n"
"  if redis.call('LINDEX', KEYS[6], 0) == me then\n"
"    redis.call('LPOP', KEYS[6]); qhead_changed = true\n"
"  else\n"
"    redis.call('LREM', KEYS[6], 1, me)\n"
"  end\n"
"end\n"
"local function tell(ch, msg)\n"
"  if not ch or ch == me then return end\n"
"  local w, n = string.gsub(ch, ':h:(%x+)$', ':w:{%1}:ev')\n"
"  if n == 1 then redis.call('PUBLISH', w, msg) end\n"
"end\n"
"local function notify(msg)\n"
"  redis.call('PUBLISH', ARGV[7], msg)\n"
"  local h, _, _, m = qhead('', '')\n"
"  tell(h, msg)\n"
"  if m == 'x' then return end\n"
"  local pd = redis.call('HGETALL', KEYS[3])\n"
"  for i = 1, #pd, 2 do tell(pd[i], msg) end\n"
"end\n"
"local function qnotify()\n"
"  if not qhead_changed then return end\n"
"  local h = qhead('', '')\n"
"  if h and h ~= me then tell(h, 'head ' .. h) end\n"
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
"  notify('released')\n"
"  return 1\n"
"end\n"
"if op == 'cancel' then\n"
"  if redis.call('HDEL', KEYS[3], me) == 1 then\n"
"    notify('cancelled')\n"
"  end\n"
"  qleave()\n"
"  qnotify()\n"
"  return 1\n"
"end\n"
;
/* The acquire half (C99 caps one string literal at 4095 bytes). */
static const char RL_SCRIPT_ACQ[] =
"if op ~= 'acq' then return redis.error_reply('ERR portalock: bad op') end\n"
"if not alive(me) then return {-1} end\n"
"local pchan, pcid = ARGV[5], ARGV[6]\n"
"local wait, fair = ARGV[8] == '1', ARGV[11] == '1'\n"
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
"if pruned then notify('pruned') end\n"
"local hc, hcid, hu = qhead(pchan, pcid)\n"
"local queued = hc == me or redis.call('HEXISTS', KEYS[5], me) == 1\n"
"local turn = true\n"
"if fair and hc and hc ~= me then\n"
"  if mode == 'x' then turn = false\n"
"  else\n"
"    local q = redis.call('LRANGE', KEYS[6], 0, -1)\n"
"    for i = 1, #q do\n"
"      if q[i] == me then break end\n"
"      local v = redis.call('HGET', KEYS[5], q[i])\n"
"      if v and string.match(v, ' x$') then turn = false; break end\n"
"    end\n"
"  end\n"
"end\n"
"local function blocked(ch, cid, kind, u)\n"
"  if wait and not queued then\n"
"    redis.call('RPUSH', KEYS[6], me)\n"
"    redis.call('HSET', KEYS[5], me,\n"
"               ARGV[4] .. ' ' .. run .. ' ' .. ARGV[10] .. ' ' .. mode)\n"
"    queued = true\n"
"    if not hc then hc = me end\n"
"  end\n"
"  qnotify()\n"
"  if hc == me or not hc then return {0, ch, cid, kind, u, 1, '', '0', '0'} end\n"
"  return {0, ch, cid, kind, u, 0, hc, hcid, hu or '0'}\n"
"end\n"
"if not turn then return blocked(hc, hcid, 'q', hu or '0') end\n"
"if o[1] then return blocked(o[1], o[2], 'x', o[5] or '0') end\n"
"if mode == 'x' then\n"
"  if reader then\n"
"    if wait then\n"
"      redis.call('HSET', KEYS[3], me, ARGV[4] .. ' ' .. run .. ' ' .. ARGV[10])\n"
"    end\n"
"    return blocked(reader[1], reader[2], 's', reader[3])\n"
"  end\n"
"  redis.call('HDEL', KEYS[3], me)\n"
"  qleave()\n"
"  local tok = next_token()\n"
"  redis.call('HSET', KEYS[1], 'chan', me, 'cid', ARGV[4], 'tok', tok,\n"
"             'run', run, 'u', ARGV[10])\n"
"  qnotify()\n"
"  return {1, tok}\n"
"end\n"
"if writer and not fair then\n"
"  return blocked(writer[1], writer[2], 'p', writer[3])\n"
"end\n"
"qleave()\n"
"local tok = next_token()\n"
"redis.call('HSET', KEYS[2], me,\n"
"           ARGV[4] .. ' ' .. tok .. ' ' .. run .. ' ' .. ARGV[10])\n"
"qnotify()\n"
"return {1, tok}\n";
/* clang-format on */

void pl__rl_queue_script_load(redisContext *c) {
    char script[sizeof(RL_SCRIPT) + sizeof(RL_SCRIPT_ACQ)];
    const char *argv[3] = {"SCRIPT", "LOAD", script};
    memcpy(script, RL_SCRIPT, sizeof(RL_SCRIPT) - 1);
    memcpy(script + sizeof(RL_SCRIPT) - 1, RL_SCRIPT_ACQ,
           sizeof(RL_SCRIPT_ACQ));
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
    const char *argv[3 + RL_NKEYS + 11];
    int i, rc, attempt;

    argv[0] = "EVALSHA";
    argv[2] = RL_NKEYS_STR;
    for (i = 0; i < RL_NKEYS; i++)
        argv[3 + i] = rl->keys[i];
    for (i = 0; i < 8; i++)
        argv[3 + RL_NKEYS + i] = args[i];
    argv[3 + RL_NKEYS + 9] = rl->lease_ms;
    argv[3 + RL_NKEYS + 10] = rl->fair ? "1" : "0";
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rc = pl__rl_cmd_ensure(rl, err)) != PL_OK)
            return rc;
        /* the run id of the very connection that runs the script */
        argv[1] = rl->sha;
        argv[3 + RL_NKEYS + 8] = rl->run;
        if ((rc = pl__rl_cmd_argv(rl, 3 + RL_NKEYS + 11, argv, out, err)) !=
            PL_OK)
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

static int rl_reply_str(const redisReply *r) {
    return PL__REPLY_IS(r, REDIS_REPLY_STRING);
}

/* Records who blocks us and whom we watch: the queue's head watches the
 * blocker, every other waiter the head (kind 'q').  Also its recorded
 * unavailable_timeout, and on which command connection we learnt it (gen):
 * a CLIENT KILL or a proof is only ever made on that same connection, so
 * never across a server restart. */
static int rl_note_blocker(rl_wait_t *w, const redisReply *r, unsigned long gen,
                           pl_error_t *err) {
    const redisReply *const *e = (const redisReply *const *)r->element;
    const redisReply *ch, *cid, *lease;
    int head = PL__REPLY_IS(e[5], REDIS_REPLY_INTEGER) && e[5]->integer == 1;
    int i;

    for (i = 1; i < 9; i++)
        if (i != 5 && !rl_reply_str(e[i]))
            return pl__error_set(err, PL_EPROTO, 0,
                                 "redis lock script: bad blocker reply");
    ch = head ? e[1] : e[6];
    cid = head ? e[2] : e[7];
    lease = head ? e[4] : e[8];
    if (pl__rl_copy(w->mcid, sizeof(w->mcid), e[2]->str, e[2]->len) != 0)
        return pl__error_set(err, PL_EPROTO, 0,
                             "redis lock script: blocker name too long");
    w->mkind = e[3]->str[0];
    if (strcmp(ch->str, w->bchan) != 0 || strcmp(cid->str, w->bcid) != 0) {
        if (pl__rl_copy(w->bchan, sizeof(w->bchan), ch->str, ch->len) != 0 ||
            pl__rl_copy(w->bcid, sizeof(w->bcid), cid->str, cid->len) != 0)
            return pl__error_set(err, PL_EPROTO, 0,
                                 "redis lock script: blocker name too long");
        w->evict_denied = 0;
    }
    w->blease = strtod(lease->str, NULL) / 1000.0;
    w->bgen = gen;
    w->bkind = head ? e[3]->str[0] : 'q';
    w->head = head;
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
    else if (status == 0 && r->elements == 9)
        rc = rl_note_blocker(w, r, rl->cmd_gen, err);
    else if (status == -1)
        rc = pl__error_set(err, PL_ECONN, 0,
                           "redis lock %s: our subscription connection is "
                           "gone",
                           rl->lock->path);
    else
        rc = pl__error_set(err, PL_EPROTO, 0, "redis lock script: bad reply");
    if (rc == PL_OK && !*granted && may_wait) {
        w->queued = 1;
        if (w->mkind == 's')
            w->maybe_pending = 1;
    }
    freeReplyObject(r);
    return rc;
}
