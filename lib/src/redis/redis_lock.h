/*
 * redis_lock.h -- RedisLock internals: a Redis lock bound to the holder's
 * connection.
 *
 * The promise (portalocker's): unlike key/TTL locks, the lock is freed the
 * moment its holder's connection dies, and the API is the other locks' one.
 * The design and its safety argument are in DESIGN.md; in short:
 *
 *   - Each acquire opens a subscription connection ("sub") subscribed to a
 *     channel of its own, pl:{NAME}:h:<random uuid>, to its notify channel
 *     pl:{NAME}:w:{<uuid>}:ev and, in shared mode, to pl:{NAME}:ev.
 *     CLIENT ID gives the connection's id (never reused within a server run).
 *   - ONE Lua script arbitrates every grant atomically: the lock is free when
 *     the recorded holder's channel has no subscriber (PUBSUB NUMSUB == 0:
 *     its connection is gone), or when the caller brings a dead-holder proof
 *     for exactly that (channel, client id).  A grant also requires that the
 *     caller's own channel is subscribed, so every grant is bound to a live
 *     connection.  It writes the owner record (channel, client id, token) and
 *     returns a fencing token max(INCR counter, server TIME in us), so
 *     tokens grow across restarts with or without persistence.  Records
 *     carry the server run id; one from an earlier run is dead.
 *   - Release is compare-and-delete by (channel, token) plus PUBLISH on the
 *     event channel: waiters wake by notification and re-run the script.
 *   - Waiters queue in arrival order (a list kept by the script; entries
 *     bound to their connection like grants).  Death publishes nothing, so
 *     the queue's head re-runs the script every RL_POLL_SECONDS (5 ms):
 *     that is how a SIGKILLed holder is replaced in milliseconds.  The
 *     others wait for a message ("head <their channel>", or any event for
 *     shared waiters, and for pending writers behind a shared head) or a
 *     RL_SAFETY_SECONDS re-check, at which they also judge the head: the
 *     server's load stays flat as waiters grow.  Fair mode grants in queue
 *     order.
 *   - Heartbeat: every connection PINGs its sub connection (sub.c).  Every
 *     check_interval the head asks CLIENT LIST ID <holder's id>: an empty
 *     answer proves the holder's connection is gone; an idle time of more
 *     than the holder's unavailable_timeout (not counting time the server
 *     was stalled) gets it evicted by CLIENT KILL ID <its exact id> if
 *     evict_stalled, which is again a proof.
 *   - The holder's watcher thread reads its sub connection and turns EOF,
 *     or no heartbeat answer within its deadline (half its
 *     unavailable_timeout: before any waiter may evict it), into "lost"
 *     (on_lost callback, pl_lock_check and release give PL_ELOST).  A
 *     late answer (a publisher's flood queues ahead of it) starts a probe,
 *     CLIENT LIST ID <its sub's id> on a connection of the watcher's own,
 *     whose answer counts as a heartbeat (sub.c).
 *   - Shared mode: readers in a hash; a waiting writer registers as pending
 *     writer, and new readers wait while a live pending writer exists, so
 *     writers are not starved.  Dead readers and pending writers are pruned
 *     by the same NUMSUB rule.
 *
 * Threads: the user's thread owns the object; the watcher thread exists only
 * while held and touches only the sub and probe connections (which it
 * owns).  Fork
 * (POSIX): a pthread_atfork handler closes every inherited Redis socket in
 * the child without writing on it.
 *
 * The code is split along its sections, as posix/ is:
 *   redis_lock.h   this overview, the object, what the files share
 *   script.c       the Lua script that arbitrates, EVALSHA, one acquire try
 *   conn.c         connecting, AUTH, replies and errors, the command connection
 *   sub.c          the subscription connection and the holder's watcher
 *   redis_lock.c   the lock kind: wait loop, acquire, release, check, open
 * and what they need from the OS (mutex, thread, socket waits, fork) lives
 * in one file per platform, declared at the end of this header:
 *   ../posix/redis_os.c   pthreads, poll(2), FD_CLOEXEC, pthread_atfork
 *   ../win32/redis_os.c   SRW lock, Win32 thread, WSAPoll, no inheritance
 */
#ifndef PL_REDIS_LOCK_H
#define PL_REDIS_LOCK_H

#include "hiredis_compat.h"
#include "internal.h"

#include <stdatomic.h>
#include <stddef.h>

/* Liveness poll of the queue's head: how often it re-runs the script to see
 * whether the holder's connection died (Redis announces no disconnects). */
#define RL_POLL_SECONDS 0.005
/* The other waiters wait for a message on the event channel; this safety
 * re-check (script run, and CLIENT LIST of the queue's head) bounds what a
 * lost message or a dead head costs: latency, never liveness. */
#define RL_SAFETY_SECONDS 1.0
/* Keys passed to the script: owner, readers, pending, fence, waiters,
 * queue. */
#define RL_NKEYS     6
#define RL_NKEYS_STR "6"
/* Longest lock name; keeps every derived name bounded. */
#define RL_NAME_MAX 256
#define RL_KEY_MAX  (RL_NAME_MAX + 16) /* "pl:{NAME}:readers" */
#define RL_CHAN_MAX (RL_KEY_MAX + 40)  /* "pl:{NAME}:w:{<32 hex>}:ev" */
#define RL_ID_MAX   24

/* A reply slower than this means the server (or we) stalled: the waiter
 * does not judge a blocker's idle time across it (DESIGN.md §5). */
#define RL_SLOW_SECONDS 0.1
/* Reconnect backoff of a waiter with time left (first and largest step). */
#define RL_BACKOFF_MIN 0.01
#define RL_BACKOFF_MAX 1.0

/* A mutex and a thread, the platform's own objects behind a pointer
 * (redis_os.c), so this header names no OS type. */
typedef struct pl__rl_mutex {
    void *impl;
} pl__rl_mutex_t;
typedef struct pl__rl_thread {
    void *impl;
} pl__rl_thread_t;

typedef struct rl {
    pl_lock_t *lock;
    /* options; strings owned */
    char *host, *unix_socket, *username, *password;
    int port;
    double connect_timeout, command_timeout, unavailable_timeout;
    int evict_stalled, shared, fair;
    void (*on_lost)(pl_lock_t *lock, int reason, void *arg);
    void *on_lost_arg;
    /* names derived from the lock name */
    char keys[RL_NKEYS][RL_KEY_MAX];
    char ev_chan[RL_KEY_MAX];
    char chan_prefix[RL_KEY_MAX]; /* "pl:{NAME}:h:" */
    char note_prefix[RL_KEY_MAX]; /* "pl:{NAME}:w:{" */
    char client_name[RL_KEY_MAX]; /* "pl:{NAME}:" with spaces replaced */
    char lease_ms[RL_ID_MAX];     /* unavailable_timeout in ms, recorded */
    /* command connection, shared with the watcher under mu */
    pl__rl_mutex_t mu;
    redisContext *cmd;
    char sha[48];
    char run[48];          /* server run_id seen by cmd ("-" unknown) */
    unsigned long cmd_gen; /* bumped on every (re)connect of cmd */
    long conn_pid;         /* process that opened the connections */
    int client_list_ok;
    /* subscription connection of the current attempt or grant */
    redisContext *sub;
    char my_chan[RL_CHAN_MAX];
    /* this attempt's notify channel, pl:{NAME}:w:{<uuid>}:ev: the script
     * publishes there the events that concern this waiter (a release when
     * it is the head, or a pending writer behind a shared head; "head ..."
     * when it becomes the head), so a release does not wake every waiter */
    char note_chan[RL_CHAN_MAX];
    char cid[RL_ID_MAX];
    /* heartbeat on sub (PING; its reply proves the server still had this
     * connection after hb_sent); hb_sent 0 = none outstanding */
    double hb_sent, hb_ok, hb_every, deadline;
    /* a message that concerns this waiter arrived (anything on its notify
     * channel; on the event channel, which only shared waiters hear, every
     * event) */
    int woken;
    /* the watcher's liveness probe (sub.c): a connection of its own on
     * which it asks CLIENT LIST ID <cid> when a heartbeat answer is late;
     * opened by the watcher thread when first needed, closed at release */
    redisContext *probe;
    double probe_last;  /* when the last probe was started */
    int probe_off;      /* refused or unverifiable: not asked again */
    char grant_run[48]; /* the server run id at the grant ("-" unknown) */
    /* held */
    char tok[RL_ID_MAX];
    pl__rl_thread_t watcher;
    int watcher_started;
    atomic_int stop;
    atomic_int lost;
    /* fork registry (posix/redis_os.c) */
    struct rl *reg_next, *reg_prev;
} rl_t;

/* What a waiter knows about the connection that blocks it.  The queue's
 * head watches the holder (b* = the blocker); every other waiter watches
 * the head (b* = the head, kind 'q'), at the RL_SAFETY_SECONDS pace. */
typedef struct rl_wait {
    int forever;
    double deadline, next_check, check_every;
    int head;   /* 1 = we are the queue's head (or not queued) */
    int queued; /* we may have a queue entry (withdrawn on failure) */
    char bchan[RL_CHAN_MAX], bcid[RL_ID_MAX];
    char bkind;
    char mkind, mcid[RL_ID_MAX]; /* the lock's blocker, for messages */
    double blease;               /* blocker's recorded unavailable_timeout */
    unsigned long bgen;          /* cmd generation of the try that named it */
    double slow_at;              /* last time a reply was slow (a stall) */
    char pchan[RL_CHAN_MAX], pcid[RL_ID_MAX]; /* proof for the next try */
    int maybe_pending;
    int evict_denied;
    int evicted; /* we ran CLIENT KILL on the blocker */
} rl_wait_t;

/* ---- conn.c -------------------------------------------------------------- */
void pl__rl_random_hex(char *out, size_t bytes);
int pl__rl_copy(char *dst, size_t len, const char *src, size_t n);
int pl__rl_reply_error(const redisReply *r, const char *what, pl_error_t *err);
int pl__rl_io_error(redisContext *c, const char *what, pl_error_t *err);
int pl__rl_get(redisContext *c, redisReply **out, const char *what,
               pl_error_t *err);
struct timeval pl__rl_tv(double seconds);
const char *pl__rl_field(const char *line, const char *field, size_t *n);
void pl__rl_info_run(const char *info, char *run, size_t len);
int pl__rl_info_refused(const redisReply *r);
int pl__rl_connect(rl_t *rl, const char *host, double limit, redisContext **out,
                   int *auth, pl_error_t *err);
int pl__rl_check_auth(redisContext *c, pl_error_t *err);
int pl__rl_cmd_ensure(rl_t *rl, pl_error_t *err);
int pl__rl_cmd_argv(rl_t *rl, int argc, const char **argv, redisReply **out,
                    pl_error_t *err);
int pl__rl_cmd_simple(rl_t *rl, int argc, const char **argv, redisReply **out,
                      pl_error_t *err);
void pl__rl_drop_inherited(rl_t *rl);

/* ---- script.c ------------------------------------------------------------ */
void pl__rl_queue_script_load(redisContext *c);
int pl__rl_read_sha(rl_t *rl, redisContext *c, pl_error_t *err);
int pl__rl_eval(rl_t *rl, const char **args, redisReply **out, pl_error_t *err);
int pl__rl_eval_int(rl_t *rl, const char **args, long long *val,
                    pl_error_t *err);
const char *pl__rl_mode(const rl_t *rl);
int pl__rl_try(rl_t *rl, rl_wait_t *w, int may_wait, int *granted,
               pl_error_t *err);

/* ---- sub.c --------------------------------------------------------------- */
void pl__rl_sub_close(rl_t *rl);
int pl__rl_sub_open(rl_t *rl, pl_error_t *err);
int pl__rl_sub_pump(rl_t *rl, double timeout, pl_error_t *err);
int pl__rl_watch_start(rl_t *rl, pl_error_t *err);
void pl__rl_watch_stop(rl_t *rl);
void pl__rl_probe_close(rl_t *rl);
int pl__rl_heartbeat(rl_t *rl, double now, pl_error_t *err);

/* ---- platform: posix/redis_os.c, win32/redis_os.c -----------------------
 * Everything above is generic; these are the OS calls it makes. */

/* Once per process before the first connection (Windows: WSAStartup). */
int pl__rl_os_init(pl_error_t *err);
/* PL_OK or PL_ENOMEM. */
int pl__rl_mutex_init(pl__rl_mutex_t *m);
void pl__rl_mutex_destroy(pl__rl_mutex_t *m);
void pl__rl_mutex_lock(pl__rl_mutex_t *m);
void pl__rl_mutex_unlock(pl__rl_mutex_t *m);
/* In a forked child: the mutex as new (a thread of the parent that does not
 * exist here may have held it). */
void pl__rl_mutex_reset(pl__rl_mutex_t *m);
/* Runs fn(arg) in a new thread; PL_EOS with the reason if it cannot. */
int pl__rl_thread_start(pl__rl_thread_t *t, void *(*fn)(void *), void *arg,
                        pl_error_t *err);
void pl__rl_thread_join(pl__rl_thread_t *t);
/* A new connection's socket is not inherited by child processes (hiredis
 * opens it inheritable): a command the caller spawns while holding must
 * not keep the lock alive. */
void pl__rl_sock_noinherit(redisContext *c);
/* Waits up to timeout seconds (< 0: no limit) until c's socket is readable
 * (data, EOF or an error to read): 1 readable, 0 not (timeout or signal),
 * PL_EOS with err filled if the wait itself failed. */
int pl__rl_sock_wait(redisContext *c, double timeout, pl_error_t *err);
/* Shuts c's socket down both ways, so a thread in pl__rl_sock_wait on it
 * returns (readable: EOF); the socket stays open until redisFree. */
void pl__rl_sock_wake(redisContext *c);
/* The numeric address (no name lookup) of the peer of c's TCP socket into
 * host: 0, or -1 if it has none. */
int pl__rl_sock_peer(redisContext *c, char *host, size_t len);
/* Closes c's socket without writing on it and makes redisFree skip it (a
 * forked child's copy of the parent's connection). */
void pl__rl_sock_drop(redisContext *c);
/* Fork registry: objects whose sockets a forked child closes at once
 * (POSIX pthread_atfork; nothing to do where there is no fork). */
void pl__rl_register(rl_t *rl);
void pl__rl_unregister(rl_t *rl);
/* *slot = c, atomically with respect to fork (under the registry's lock on
 * POSIX): for a connection pointer that a thread other than the object's
 * owner changes (the watcher's probe). */
void pl__rl_reg_store(redisContext **slot, redisContext *c);

#endif /* PL_REDIS_LOCK_H */
