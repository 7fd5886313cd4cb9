/*
 * redis_os.c -- what the Redis lock (../redis/) needs from Windows:
 * Winsock set up once (WSAStartup), an SRW lock and a Win32 thread for the
 * holder's watcher, WSAPoll on a connection's socket, shutdown(SD_BOTH) to
 * wake the watcher, and a socket handle that child processes do not
 * inherit.  Windows has no fork, so there is no fork registry.  TCP
 * keepalive needs nothing here: hiredis' redisEnableKeepAlive sets
 * SIO_KEEPALIVE_VALS on Windows.  Declared at the end of
 * redis/redis_lock.h; posix/redis_os.c is the POSIX counterpart.
 */
#include "redis/redis_lock.h" /* winsock2.h first (hiredis_compat.h) */
#include "win32/win32.h"

#include <ws2tcpip.h>

#include <stdlib.h>

/* hiredis keeps the SOCKET in c->fd (a redisFD, as wide as SOCKET). */
#define RL_SOCKET(c) ((SOCKET)(c)->fd)

/* ---- Winsock, once per process -------------------------------------------
 * Never undone with WSACleanup: a lock object may live until exit. */
static INIT_ONCE rl_wsa_once = INIT_ONCE_STATIC_INIT;
static int rl_wsa_error;

static BOOL CALLBACK rl_wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    WSADATA data;
    (void)once;
    (void)param;
    (void)ctx;
    rl_wsa_error = WSAStartup(MAKEWORD(2, 2), &data);
    return TRUE;
}

int pl__rl_os_init(pl_error_t *err) {
    (void)InitOnceExecuteOnce(&rl_wsa_once, rl_wsa_start, NULL, NULL);
    if (rl_wsa_error != 0)
        return pl__error_set(err, PL_EOS, rl_wsa_error,
                             "WSAStartup(2.2) for the redis lock");
    return PL_OK;
}

/* ---- mutex and thread ---------------------------------------------------- */

int pl__rl_mutex_init(pl__rl_mutex_t *m) {
    SRWLOCK *l = malloc(sizeof(*l));
    m->impl = l;
    if (l == NULL)
        return PL_ENOMEM;
    InitializeSRWLock(l);
    return PL_OK;
}

void pl__rl_mutex_destroy(pl__rl_mutex_t *m) {
    free(m->impl); /* an SRW lock needs no clean-up */
    m->impl = NULL;
}

void pl__rl_mutex_lock(pl__rl_mutex_t *m) {
    AcquireSRWLockExclusive(m->impl);
}

void pl__rl_mutex_unlock(pl__rl_mutex_t *m) {
    ReleaseSRWLockExclusive(m->impl);
}

void pl__rl_mutex_reset(pl__rl_mutex_t *m) {
    InitializeSRWLock(m->impl); /* only after fork, which Windows lacks */
}

typedef struct rl_thread {
    HANDLE h;
    void *(*fn)(void *);
    void *arg;
} rl_thread_t;

static DWORD WINAPI rl_thread_main(LPVOID p) {
    rl_thread_t *t = p;
    (void)t->fn(t->arg);
    return 0;
}

int pl__rl_thread_start(pl__rl_thread_t *t, void *(*fn)(void *), void *arg,
                        pl_error_t *err) {
    rl_thread_t *th = malloc(sizeof(*th));
    t->impl = NULL;
    if (th == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "redis watcher: out of memory");
    th->fn = fn;
    th->arg = arg;
    th->h = CreateThread(NULL, 0, rl_thread_main, th, 0, NULL);
    if (th->h == NULL) {
        DWORD e = GetLastError();
        free(th);
        return pl__error_set(err, PL_EOS, (int)e,
                             "CreateThread(redis watcher)");
    }
    t->impl = th;
    return PL_OK;
}

void pl__rl_thread_join(pl__rl_thread_t *t) {
    rl_thread_t *th = t->impl;
    if (th != NULL) {
        (void)WaitForSingleObject(th->h, INFINITE);
        (void)CloseHandle(th->h);
        free(th);
        t->impl = NULL;
    }
}

/* ---- sockets ------------------------------------------------------------- */

void pl__rl_sock_noinherit(redisContext *c) {
    (void)SetHandleInformation((HANDLE)RL_SOCKET(c), HANDLE_FLAG_INHERIT, 0);
}

int pl__rl_sock_wait(redisContext *c, double timeout, pl_error_t *err) {
    WSAPOLLFD p;
    int rc, ms;
    p.fd = RL_SOCKET(c);
    p.events = POLLRDNORM; /* WSAPoll refuses POLLPRI, so not POLLIN */
    p.revents = 0;
    ms = timeout < 0 ? -1 : (int)(timeout * 1000.0 + 0.999);
    rc = WSAPoll(&p, 1, ms);
    if (rc == SOCKET_ERROR) {
        int e = WSAGetLastError();
        if (e == WSAEINTR)
            return 0;
        return pl__error_set(err, PL_EOS, e, "WSAPoll(redis subscription)");
    }
    /* POLLHUP / POLLERR come without POLLRDNORM: readable too (the read
     * then sees EOF or the error). */
    return rc > 0 ? 1 : 0;
}

void pl__rl_sock_wake(redisContext *c) {
    (void)shutdown(RL_SOCKET(c), SD_BOTH);
}

int pl__rl_sock_peer(redisContext *c, char *host, size_t len) {
    struct sockaddr_storage sa;
    int n = (int)sizeof(sa);
    if (getpeername(RL_SOCKET(c), (struct sockaddr *)&sa, &n) != 0)
        return -1;
    return getnameinfo((struct sockaddr *)&sa, n, host, (DWORD)len, NULL, 0,
                       NI_NUMERICHOST) == 0
               ? 0
               : -1;
}

void pl__rl_sock_drop(redisContext *c) {
    if (c->fd != REDIS_INVALID_FD) {
        (void)closesocket(RL_SOCKET(c));
        c->fd = REDIS_INVALID_FD;
    }
}

/* ---- fork ----------------------------------------------------------------
 * No fork on Windows: nothing is inherited behind the library's back (the
 * sockets are not inheritable, pl__rl_sock_noinherit), so no registry. */

void pl__rl_register(rl_t *rl) {
    (void)rl;
}

void pl__rl_unregister(rl_t *rl) {
    (void)rl;
}

void pl__rl_reg_store(redisContext **slot, redisContext *c) {
    *slot = c; /* no fork here: a plain store */
}
