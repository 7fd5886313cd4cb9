/*
 * nfs4client.h -- one NFSv4 client (one libnfs context, its own client id
 * and lease) holding one open file and taking whole-file LOCK / LOCKU on it,
 * with the workarounds libnfs 4.0.0 needs (nfs4client.c, LIBNFS-BUGS.md).
 */
#ifndef PL_NFS4CLIENT_H
#define PL_NFS4CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pln_client pln_client_t;

/* Results of pln_try_lock. */
#define PLN_LOCKED 0  /* the server granted the lock */
#define PLN_DENIED 1  /* NFS4ERR_DENIED: another client holds a conflict */
#define PLN_ERROR  -1 /* anything else (message in pln_error) */

/*
 * Connects to url ("nfs://host[:port]/export", port = NFSv4 port, no
 * portmapper) as a new client and opens path (relative to the export;
 * created if missing).  A thread keeps the lease alive when the client has
 * been silent for renew_s seconds (0: never, like a client that stopped).
 * NULL on failure with the reason in err.
 */
pln_client_t *pln_connect(const char *url, const char *path, double renew_s,
                          char *err, size_t errlen);
/* One LOCK (no waiting): shared = READ_LT, else WRITE_LT, whole file. */
int pln_try_lock(pln_client_t *c, int shared);
/* LOCKU of the whole file; 0 or PLN_ERROR. */
int pln_unlock(pln_client_t *c);
/* LOCKT: PLN_LOCKED if a lock could be granted now, PLN_DENIED if not. */
int pln_test(pln_client_t *c, int shared);
const char *pln_error(const pln_client_t *c);
/* Reconnections forced by the "first LOCK denied" bug so far. */
unsigned pln_reconnects(const pln_client_t *c);
/* Drops the client without CLOSE (see nfs4client.c); its state on the
 * server goes when the lease expires. */
void pln_destroy(pln_client_t *c);

#endif /* PL_NFS4CLIENT_H */
