/*
 * libnfs_bugs.c -- shows, against a live NFSv4 server, each libnfs 4.0.0
 * locking bug that nfs4client.c works around (README.md lists them), with
 * raw libnfs calls and no workaround.  Prints one line per bug, "present"
 * or "ABSENT", and exits 1 if any is absent: then the workaround and the
 * README are out of date for this libnfs (the same rule as the suite's
 * known-results files: a listed failure that passes fails the run).
 *
 * Usage: pl_libnfs_bugs URL [LEASE] (nfs://HOST/export?version=4&nfsport=PORT)
 *   LEASE  the server's lease in seconds: also shows that an idle client is
 *          never renewed (waits 2 x LEASE + 2 s)
 * Uses the files libnfs-bugs-*.lock at the export's root.
 */
#include <sys/time.h> /* libnfs.h needs struct timeval */

#include <nfsc/libnfs-raw-nfs4.h>
#include <nfsc/libnfs.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *url;
static int absent;

static struct nfs_context *client(int unique) {
    static int serial;
    char name[64], verifier[8] = {0};
    struct nfs_context *n = nfs_init_context();
    struct nfs_url *u;
    if (n == NULL)
        return NULL;
    if (unique) {
        snprintf(name, sizeof(name), "pl-libnfs-bugs-%d-%d", (int)getpid(),
                 ++serial);
        nfs4_set_client_name(n, name);
        verifier[0] = (char)serial;
        verifier[1] = (char)getpid();
        nfs4_set_verifier(n, verifier);
    }
    nfs_set_version(n, NFS_V4);
    nfs_set_timeout(n, 10000);
    u = nfs_parse_url_dir(n, url);
    if (u == NULL || nfs_mount(n, u->server, u->path) != 0) {
        fprintf(stderr, "mount %s: %s\n", url, nfs_get_error(n));
        if (u != NULL)
            nfs_destroy_url(u);
        nfs_destroy_context(n);
        return NULL;
    }
    nfs_destroy_url(u);
    return n;
}

static struct nfsfh *open_rw(struct nfs_context *n, const char *path) {
    struct nfsfh *fh = NULL;
    if (nfs_open(n, path, O_RDWR, &fh) != 0 &&
        nfs_create(n, path, O_RDWR, 0644, &fh) != 0)
        return NULL;
    return fh;
}

static int lock(struct nfs_context *n, struct nfsfh *fh, int type,
                uint64_t len) {
    struct nfs4_flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_len = len;
    return nfs_fcntl(n, fh, NFS4_F_SETLK, &fl);
}

static void verdict(const char *bug, int present, const char *evidence) {
    printf("%-58s %s  (%s)\n", bug, present ? "present" : "ABSENT", evidence);
    absent |= !present;
}

int main(int argc, char **argv) {
    struct nfs_context *a, *b, *c;
    struct nfsfh *fa, *fb, *fc, *fx;
    char ev[256];
    int rc;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: pl_libnfs_bugs URL [LEASE]\n");
        return 2;
    }
    url = argv[1];

    /* 5: one client name per process */
    a = client(0);
    b = client(0);
    if (a == NULL || b == NULL)
        return 2;
    rc = nfs_open(a, "/libnfs-bugs-5.lock", O_RDWR, &fx) != 0 &&
                 nfs_create(a, "/libnfs-bugs-5.lock", O_RDWR, 0644, &fx) != 0
             ? -1
             : 0;
    snprintf(ev, sizeof(ev), "first client's open after a second mount: %s",
             rc ? nfs_get_error(a) : "ok");
    verdict("5 two contexts share one client id", strstr(ev, "EXPIRED") != NULL,
            ev);
    nfs_destroy_context(a);
    nfs_destroy_context(b);

    a = client(1);
    b = client(1);
    c = client(1);
    if (a == NULL || b == NULL || c == NULL)
        return 2;
    fa = open_rw(a, "/libnfs-bugs-1.lock");
    fb = open_rw(b, "/libnfs-bugs-1.lock");
    fc = open_rw(c, "/libnfs-bugs-3.lock");
    if (fa == NULL || fb == NULL || fc == NULL) {
        fprintf(stderr, "open: %s\n", nfs_get_error(fa == NULL ? a : b));
        return 2;
    }

    /* 1: fcntl unlock forgets the new stateid */
    lock(a, fa, F_WRLCK, UINT64_MAX);
    lock(a, fa, F_UNLCK, UINT64_MAX);
    rc = lock(a, fa, F_WRLCK, UINT64_MAX);
    snprintf(ev, sizeof(ev), "LOCK after fcntl F_UNLCK: %s",
             rc ? nfs_get_error(a) : "granted");
    verdict("1 LOCK after nfs_fcntl(F_UNLCK): OLD_STATEID",
            strstr(ev, "OLD_STATEID") != NULL, ev);

    /* 2: first LOCK denied poisons the context; a (held or not, its stateid
     * is stale) is replaced by a fresh client d that holds the lock. */
    {
        struct nfs_context *d = client(1);
        struct nfsfh *fd = d != NULL ? open_rw(d, "/libnfs-bugs-2.lock") : NULL;
        struct nfsfh *fe;
        struct nfs_context *e = client(1);
        if (fd == NULL || e == NULL ||
            (fe = open_rw(e, "/libnfs-bugs-2.lock")) == NULL)
            return 2;
        lock(d, fd, F_WRLCK, UINT64_MAX);
        lock(e, fe, F_WRLCK, UINT64_MAX); /* denied: e's first LOCK */
        nfs_lockf(d, fd, NFS4_F_ULOCK, UINT64_MAX);
        rc = lock(e, fe, F_WRLCK, UINT64_MAX);
        snprintf(ev, sizeof(ev), "retry after the holder unlocked: %s",
                 rc ? nfs_get_error(e) : "granted");
        verdict("2 first LOCK denied: the retry is denied forever",
                strstr(ev, "DENIED") != NULL, ev);
        rc = nfs_close(d, fd);
        snprintf(ev, sizeof(ev), "CLOSE after a LOCK: %s",
                 rc ? nfs_get_error(d) : "ok");
        verdict("2b CLOSE after the first LOCK: BAD_SEQID",
                strstr(ev, "BAD_SEQID") != NULL, ev);
        nfs_destroy_context(d);
        nfs_destroy_context(e);
    }

    /* 3: l_len 0 */
    rc = lock(c, fc, F_WRLCK, 0);
    snprintf(ev, sizeof(ev), "l_len=0: %s", rc ? nfs_get_error(c) : "granted");
    verdict("3 struct nfs4_flock.l_len = 0 refused: INVAL",
            strstr(ev, "INVAL") != NULL, ev);

    /* 4: O_CREAT on an existing file */
    rc = nfs_open2(b, "/libnfs-bugs-1.lock", O_RDWR | O_CREAT, 0644, &fx);
    snprintf(ev, sizeof(ev), "nfs_open2(O_RDWR|O_CREAT) existing: %s",
             rc ? nfs_get_error(b) : "ok");
    verdict("4 O_CREAT on an existing file: EXIST", strstr(ev, "EXIST") != NULL,
            ev);

    /* 6: no renewal: c sits idle for two leases, then its LOCK */
    if (argc == 3) {
        double lease = atof(argv[2]);
        usleep((useconds_t)((2 * lease + 2) * 1e6));
        rc = lock(c, fc, F_WRLCK, UINT64_MAX);
        snprintf(ev, sizeof(ev), "LOCK after %.0f idle seconds: %s",
                 2 * lease + 2, rc ? nfs_get_error(c) : "granted");
        verdict("6 the sync API never renews the lease: EXPIRED",
                strstr(ev, "EXPIRED") != NULL, ev);
    }

    nfs_destroy_context(a);
    nfs_destroy_context(b);
    nfs_destroy_context(c);
    printf("%s\n", absent ? "some bugs are ABSENT: update nfs4client.c and "
                            "conformance/netfs/README.md"
                          : "all present: the workarounds are needed");
    return absent ? 1 : 0;
}
