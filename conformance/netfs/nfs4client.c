/*
 * nfs4client.c -- a whole-file NFSv4 lock through libnfs (Debian libnfs-dev
 * 4.0.0), as one NFS client: its own libnfs context, client id and lease.
 *
 * libnfs 4.0.0 gets the NFSv4.0 state sequencing wrong in three places that
 * matter for locks; each workaround below names its bug, and
 * conformance/netfs/LIBNFS-BUGS.md has the evidence (wire results and the
 * 4.0.0 source lines):
 *
 *  1. nfs_fcntl(F_UNLCK) sends LOCKU but does not store the lock stateid the
 *     server returns, so the next LOCK carries a stale one and fails with
 *     NFS4ERR_OLD_STATEID.  We lock with nfs_fcntl (it knows READ_LT) and
 *     unlock with nfs_lockf(NFS4_F_ULOCK), which does store it.
 *  2. The first LOCK of a context creates the lock owner (open_to_lock_owner)
 *     with the open owner's seqid, which libnfs never advances.  If that
 *     LOCK is denied, every later LOCK resends the same seqid and the server
 *     answers from its replay cache: NFS4ERR_DENIED forever, even once the
 *     lock is free.  We ask LOCKT first (it carries no seqid), and if the
 *     first LOCK is still denied (another client won in between) we drop the
 *     context and connect again.  After one granted LOCK the lock owner
 *     exists and denials are harmless.
 *     For the same reason a CLOSE (or another OPEN) after the first LOCK fails
 *     with NFS4ERR_BAD_SEQID, so a client never closes: pln_destroy drops the
 *     connection and the server forgets the open when the lease expires.
 *  3. struct nfs4_flock.l_len = 0 is sent as length 0 (NFS4ERR_INVAL; NFSv4
 *     says all ones means "to the end"), and the failed LOCK poisons the
 *     context as in 2.  We send UINT64_MAX.
 *  4. The synchronous API sends nothing by itself, so no RENEW: a client
 *     that is silent for a lease (a holder, or a waiter whose polls are only
 *     LOCKT, which ganesha does not count as renewal) loses all its state
 *     (NFS4ERR_EXPIRED), exactly like a dead one.  A renewer thread reads
 *     one byte through the open stateid (READ renews the lease) whenever the
 *     client has been silent for renew_s; a mutex serialises it with the
 *     caller's operations (a libnfs context is not thread-safe).
 *  Also: nfs_open2(O_RDWR | O_CREAT) on an existing file fails with
 *  NFS4ERR_EXIST, so we open first and create only on ENOENT; and every
 *  context in one process announces the same client name unless told
 *  otherwise (the second SETCLIENTID then expires the first client:
 *  NFS4ERR_EXPIRED), so each gets its own with nfs4_set_client_name.
 */
#include "nfs4client.h"

#include <sys/time.h> /* libnfs.h uses struct timeval without including it */

#include <nfsc/libnfs-raw-nfs4.h> /* NFS_V4 */
#include <nfsc/libnfs.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pln_client {
    struct nfs_context *nfs;
    struct nfsfh *fh;
    char *url, *path;
    int owner_exists; /* a LOCK was granted: the lock owner exists */
    unsigned reconnects;
    char err[256];
    /* Renewal (bug 4). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t renewer;
    int renewer_running, stopping;
    double renew_s;
    struct timespec last; /* CLOCK_MONOTONIC of the last call */
};

static double since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) +
           (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void *renew_loop(void *arg) {
    pln_client_t *c = arg;
    char byte;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        struct timespec until;
        double left = c->renew_s - since(&c->last);
        if (left <= 0) {
            if (c->nfs != NULL && c->fh != NULL)
                nfs_pread(c->nfs, c->fh, 0, 1, &byte); /* READ renews */
            clock_gettime(CLOCK_MONOTONIC, &c->last);
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)left;
        until.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &until);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Every libnfs call of the caller runs between enter and leave; renewed
 * says it certainly renewed the lease (a granted LOCK, a LOCKU), so the
 * renewer can wait: LOCKT and denied LOCKs do not count. */
static void enter(pln_client_t *c) {
    pthread_mutex_lock(&c->mu);
}
static void leave(pln_client_t *c, int renewed) {
    if (renewed)
        clock_gettime(CLOCK_MONOTONIC, &c->last);
    pthread_mutex_unlock(&c->mu);
}

static unsigned client_serial;

static void set_err(pln_client_t *c, const char *what) {
    snprintf(c->err, sizeof(c->err), "%s: %s", what,
             c->nfs != NULL ? nfs_get_error(c->nfs) : "no context");
}

static void drop(pln_client_t *c) {
    if (c->nfs != NULL)
        nfs_destroy_context(c->nfs); /* no CLOSE: bug 2 */
    c->nfs = NULL;
    c->fh = NULL;
    c->owner_exists = 0;
}

/* A new context: unique client name and verifier, mount, open/create. */
static int attach(pln_client_t *c) {
    struct nfs_url *u;
    char name[128], host[64] = "host";
    char verifier[8];
    struct timespec ts;
    unsigned serial = ++client_serial;

    c->nfs = nfs_init_context();
    if (c->nfs == NULL) {
        snprintf(c->err, sizeof(c->err), "nfs_init_context failed");
        return -1;
    }
    gethostname(host, sizeof(host) - 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof(name), "portalock-%s-%ld-%u-%ld", host,
             (long)getpid(), serial, (long)ts.tv_nsec);
    nfs4_set_client_name(c->nfs, name);
    for (size_t i = 0; i < sizeof(verifier); i++)
        verifier[i] = (char)((unsigned long)ts.tv_nsec >> (i * 3) ^
                             (unsigned long)getpid() >> i ^ serial);
    nfs4_set_verifier(c->nfs, verifier);
    if (nfs_set_version(c->nfs, NFS_V4) != 0) {
        set_err(c, "nfs_set_version(4)");
        return -1;
    }
    nfs_set_timeout(c->nfs, 10000); /* a cut network fails the call */
    u = nfs_parse_url_dir(c->nfs, c->url);
    if (u == NULL) {
        set_err(c, "url");
        return -1;
    }
    if (nfs_mount(c->nfs, u->server, u->path) != 0) {
        nfs_destroy_url(u);
        set_err(c, "mount");
        return -1;
    }
    nfs_destroy_url(u);
    if (nfs_open(c->nfs, c->path, O_RDWR, &c->fh) != 0 &&
        nfs_create(c->nfs, c->path, O_RDWR, 0644, &c->fh) != 0 &&
        nfs_open(c->nfs, c->path, O_RDWR, &c->fh) != 0) {
        set_err(c, c->path);
        return -1;
    }
    return 0;
}

pln_client_t *pln_connect(const char *url, const char *path, double renew_s,
                          char *err, size_t errlen) {
    pln_client_t *c = calloc(1, sizeof(*c));
    size_t pl = strlen(path);

    if (c != NULL) {
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        c->renew_s = renew_s;
    }
    if (c == NULL || (c->url = strdup(url)) == NULL ||
        (c->path = malloc(pl + 2)) == NULL) {
        snprintf(err, errlen, "out of memory");
        pln_destroy(c);
        return NULL;
    }
    /* libnfs wants paths relative to the export with a leading '/'. */
    snprintf(c->path, pl + 2, "%s%s", path[0] == '/' ? "" : "/", path);
    if (attach(c) != 0) {
        snprintf(err, errlen, "%s", c->err);
        pln_destroy(c);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &c->last);
    if (renew_s > 0 && pthread_create(&c->renewer, NULL, renew_loop, c) == 0)
        c->renewer_running = 1;
    return c;
}

static int denied(pln_client_t *c) {
    return strstr(nfs_get_error(c->nfs), "NFS4ERR_DENIED") != NULL;
}

static int test_locked(pln_client_t *c) {
    if (c->nfs == NULL && attach(c) != 0)
        return PLN_ERROR;
    if (nfs_lockf(c->nfs, c->fh, NFS4_F_TEST, UINT64_MAX) == 0)
        return PLN_LOCKED;
    if (denied(c))
        return PLN_DENIED;
    set_err(c, "LOCKT");
    return PLN_ERROR;
}

/*
 * NFS4ERR_EXPIRED on LOCKT or LOCK: either this client's lease ran out, or
 * (observed with ganesha 4.3) the conflicting lock belongs to a client whose
 * lease ran out and that the server has not reaped yet.  A fresh client
 * cures the first and sees the same answer until the reaping in the second;
 * the caller treats it as "not granted yet".
 */
static int expired(pln_client_t *c) {
    if (strstr(c->err, "NFS4ERR_EXPIRED") == NULL)
        return 0;
    drop(c);
    c->reconnects++;
    if (attach(c) != 0)
        return 0;
    return 1;
}

int pln_test(pln_client_t *c, int shared) {
    int rc;
    (void)shared; /* nfs_lockf only knows write locks: test for one */
    enter(c);
    rc = test_locked(c);
    leave(c, 0);
    return rc;
}

static int try_lock_locked(pln_client_t *c, int shared) {
    struct nfs4_flock fl;
    int rc;

    if (c->nfs == NULL && attach(c) != 0)
        return PLN_ERROR;
    if (!c->owner_exists && !shared) {
        rc = test_locked(c); /* bug 2: no seqid spent on a denial */
        if (rc == PLN_ERROR && expired(c))
            return PLN_DENIED;
        if (rc != PLN_LOCKED)
            return rc;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = shared ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = UINT64_MAX; /* bug 3 */
    if (nfs_fcntl(c->nfs, c->fh, NFS4_F_SETLK, &fl) == 0) {
        c->owner_exists = 1;
        return PLN_LOCKED;
    }
    if (denied(c)) {
        if (!c->owner_exists) { /* bug 2: this context is poisoned */
            drop(c);
            c->reconnects++;
            if (attach(c) != 0)
                return PLN_ERROR;
        }
        return PLN_DENIED;
    }
    set_err(c, "LOCK");
    return expired(c) ? PLN_DENIED : PLN_ERROR;
}

int pln_try_lock(pln_client_t *c, int shared) {
    int rc;
    enter(c);
    rc = try_lock_locked(c, shared);
    leave(c, rc == PLN_LOCKED);
    return rc;
}

int pln_unlock(pln_client_t *c) {
    int rc = 0;
    enter(c);
    if (c->nfs == NULL) {
        snprintf(c->err, sizeof(c->err), "LOCKU: not connected");
        rc = PLN_ERROR;
    } else if (nfs_lockf(c->nfs, c->fh, NFS4_F_ULOCK, UINT64_MAX) != 0) {
        set_err(c, "LOCKU"); /* bug 1: nfs_lockf stores the new stateid */
        rc = PLN_ERROR;
    }
    leave(c, rc == 0);
    return rc;
}

const char *pln_error(const pln_client_t *c) {
    return c->err;
}

unsigned pln_reconnects(const pln_client_t *c) {
    return c->reconnects;
}

void pln_destroy(pln_client_t *c) {
    if (c == NULL)
        return;
    if (c->renewer_running) {
        pthread_mutex_lock(&c->mu);
        c->stopping = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->renewer, NULL);
    }
    drop(c);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->url);
    free(c->path);
    free(c);
}
