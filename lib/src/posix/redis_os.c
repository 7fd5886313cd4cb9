/*
 * redis_os.c -- what the Redis lock (../redis/) needs from a POSIX system:
 * a pthread mutex and the watcher thread, poll(2) on a connection's socket,
 * shutdown(2) to wake the watcher, FD_CLOEXEC, and the fork handler that
 * closes inherited Redis sockets in a child.  Declared at the end of
 * redis/redis_lock.h; win32/redis_os.c is the Windows counterpart.
 */
#include "redis/redis_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int pl__rl_os_init(pl_error_t *err) {
    (void)err; /* sockets need no set-up here */
    return PL_OK;
}

/* ---- mutex and thread ---------------------------------------------------- */

int pl__rl_mutex_init(pl__rl_mutex_t *m) {
    pthread_mutex_t *p = malloc(sizeof(*p));
    m->impl = NULL;
    if (p == NULL)
        return PL_ENOMEM;
    if (pthread_mutex_init(p, NULL) != 0) {
        free(p);
        return PL_ENOMEM;
    }
    m->impl = p;
    return PL_OK;
}

void pl__rl_mutex_destroy(pl__rl_mutex_t *m) {
    if (m->impl != NULL) {
        pthread_mutex_destroy(m->impl);
        free(m->impl);
        m->impl = NULL;
    }
}

void pl__rl_mutex_lock(pl__rl_mutex_t *m) {
    pthread_mutex_lock(m->impl);
}

void pl__rl_mutex_unlock(pl__rl_mutex_t *m) {
    pthread_mutex_unlock(m->impl);
}

void pl__rl_mutex_reset(pl__rl_mutex_t *m) {
    pthread_mutex_init(m->impl, NULL);
}

int pl__rl_thread_start(pl__rl_thread_t *t, void *(*fn)(void *), void *arg,
                        pl_error_t *err) {
    pthread_t *p = malloc(sizeof(*p));
    int rc;
    t->impl = NULL;
    if (p == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "redis watcher: out of memory");
    rc = pthread_create(p, NULL, fn, arg);
    if (rc != 0) {
        free(p);
        return pl__error_set(err, PL_EOS, rc, "pthread_create(redis watcher)");
    }
    t->impl = p;
    return PL_OK;
}

void pl__rl_thread_join(pl__rl_thread_t *t) {
    if (t->impl != NULL) {
        pthread_join(*(pthread_t *)t->impl, NULL);
        free(t->impl);
        t->impl = NULL;
    }
}

/* ---- sockets ------------------------------------------------------------- */

void pl__rl_sock_noinherit(redisContext *c) {
    (void)fcntl(PL__REDIS_FD(c), F_SETFD, FD_CLOEXEC);
}

int pl__rl_sock_wait(redisContext *c, double timeout, pl_error_t *err) {
    struct pollfd p;
    int rc, ms;
    p.fd = PL__REDIS_FD(c);
    p.events = POLLIN;
    p.revents = 0;
    ms = timeout < 0 ? -1 : (int)(timeout * 1000.0 + 0.999);
    rc = poll(&p, 1, ms);
    if (rc < 0 && errno != EINTR)
        return pl__error_set(err, PL_EOS, errno, "poll(redis subscription)");
    return rc > 0 ? 1 : 0;
}

void pl__rl_sock_wake(redisContext *c) {
    (void)shutdown(PL__REDIS_FD(c), SHUT_RDWR);
}

int pl__rl_sock_peer(redisContext *c, char *host, size_t len) {
    struct sockaddr_storage sa;
    socklen_t n = sizeof(sa);
    if (getpeername(PL__REDIS_FD(c), (struct sockaddr *)&sa, &n) != 0)
        return -1;
    return getnameinfo((struct sockaddr *)&sa, n, host, (socklen_t)len, NULL, 0,
                       NI_NUMERICHOST) == 0
               ? 0
               : -1;
}

void pl__rl_sock_drop(redisContext *c) {
    if (PL__REDIS_FD(c) >= 0) {
        (void)close(PL__REDIS_FD(c));
        PL__REDIS_FORGET_FD(c);
    }
}

/* ---- fork ----------------------------------------------------------------
 *
 * pthread_atfork closes a child's copies of every registered object's
 * sockets at once (see "fork" in redis/conn.c): without writing on them,
 * and marking the contexts so that redisFree does not close the numbers
 * again.
 */
static pthread_mutex_t rl_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static rl_t *rl_reg_head;
static pthread_once_t rl_reg_once = PTHREAD_ONCE_INIT;

static void rl_fork_prepare(void) {
    pthread_mutex_lock(&rl_reg_mu);
}

static void rl_fork_parent(void) {
    pthread_mutex_unlock(&rl_reg_mu);
}

static void rl_fork_child(void) {
    rl_t *rl;
    for (rl = rl_reg_head; rl != NULL; rl = rl->reg_next) {
        if (rl->cmd != NULL)
            pl__rl_sock_drop(rl->cmd);
        if (rl->sub != NULL)
            pl__rl_sock_drop(rl->sub);
        if (rl->probe != NULL) /* the watcher's; it does not exist here */
            pl__rl_sock_drop(rl->probe);
    }
    pthread_mutex_unlock(&rl_reg_mu);
}

static void rl_reg_init(void) {
    (void)pthread_atfork(rl_fork_prepare, rl_fork_parent, rl_fork_child);
}

void pl__rl_register(rl_t *rl) {
    (void)pthread_once(&rl_reg_once, rl_reg_init);
    pthread_mutex_lock(&rl_reg_mu);
    rl->reg_prev = NULL;
    rl->reg_next = rl_reg_head;
    if (rl_reg_head != NULL)
        rl_reg_head->reg_prev = rl;
    rl_reg_head = rl;
    pthread_mutex_unlock(&rl_reg_mu);
}

void pl__rl_unregister(rl_t *rl) {
    pthread_mutex_lock(&rl_reg_mu);
    if (rl->reg_prev != NULL)
        rl->reg_prev->reg_next = rl->reg_next;
    else if (rl_reg_head == rl)
        rl_reg_head = rl->reg_next;
    if (rl->reg_next != NULL)
        rl->reg_next->reg_prev = rl->reg_prev;
    rl->reg_next = rl->reg_prev = NULL;
    pthread_mutex_unlock(&rl_reg_mu);
}

void pl__rl_reg_store(redisContext **slot, redisContext *c) {
    pthread_mutex_lock(&rl_reg_mu);
    *slot = c;
    pthread_mutex_unlock(&rl_reg_mu);
}
