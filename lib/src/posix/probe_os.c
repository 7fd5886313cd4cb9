/*
 * probe_os.c -- the POSIX half of pl_probe(): which directory to probe, and
 * which lock backends really work there, tested on a temporary file from
 * two descriptors.  The filesystem type is per system: fstype_linux.c
 * (statfs f_type magic and /proc/self/mountinfo), fstype_bsd.c (statfs
 * f_fstypename: the BSDs and macOS).
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- which directory ----------------------------------------------------- */

int pl__os_probe_dir(const char *path, char **dir, pl_error_t *err) {
    struct stat st;
    size_t n = strlen(path);
    char *d;
    int e = 0;

    if (pl__sys.stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        d = malloc(n + 1);
        if (d == NULL)
            return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", path);
        memcpy(d, path, n + 1);
        *dir = d;
        return PL_OK;
    }
    /* A file, or a name not created yet: its directory. */
    while (n > 0 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    d = malloc(n + 2);
    if (d == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", path);
    if (n == 0)
        strcpy(d, ".");
    else {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    if (pl__sys.stat(d, &st) != 0)
        e = errno;
    else if (!S_ISDIR(st.st_mode))
        e = ENOTDIR;
    if (e != 0) {
        int rc = pl__error_set(err, pl__code_from_os(e), e, "probe(%s): %s",
                               path, d);
        free(d);
        return rc;
    }
    *dir = d;
    return PL_OK;
}

/* ---- lock tests ---------------------------------------------------------- */

typedef struct releaser {
    pl_fd_t fd;
    pl_backend_t backend;
} releaser_t;

static void *release_later(void *arg) {
    releaser_t *r = arg;
    pl__os_sleep(0.002);
    pl__os_unlock(r->fd, r->backend, NULL);
    return NULL;
}

/*
 * flock/OFD: fd1 holds; a kernel wait on fd2 (another description) must
 * wake when another thread releases fd1 after ~2 ms.  lockf is per process,
 * so a second descriptor here can never be excluded: only check that
 * F_SETLKW works on an uncontended file.
 */
static int blocking_works(pl_fd_t fd1, pl_fd_t fd2, pl_backend_t b) {
    releaser_t r = {fd1, b};
    pthread_t t;
    int rc;

    if (b == PL_BACKEND_LOCKF) {
        struct flock fl;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        pl__os_unlock(fd1, b, NULL);
        do
            rc = pl__sys.fcntl((int)fd1, F_SETLKW, &fl);
        while (rc != 0 && errno == EINTR);
        return rc == 0; /* the caller unlocks fd1 */
    }
    if (pthread_create(&t, NULL, release_later, &r) != 0)
        return 0;
    rc = pl__os_lock_kernel_wait(fd2, PL_EXCLUSIVE, b, 1.0, NULL);
    pthread_join(t, NULL);
    pl__os_unlock(fd2, b, NULL);
    return rc == PL_OK;
}

/* Bit (1u << b) in *ok if b locks here (and excludes a second description
 * for flock/OFD); in *blocking if it can also wait in the kernel. */
static void probe_backend(pl_fd_t fd1, pl_fd_t fd2, pl_backend_t b,
                          unsigned *ok, unsigned *blocking) {
    int excl;

    if (pl__os_lock(fd1, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL) != PL_OK)
        return;
    if (b == PL_BACKEND_LOCKF) {
        excl = 1;
    } else {
        int rc = pl__os_lock(fd2, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL);
        excl = rc == PL_ELOCKED;
        if (rc == PL_OK)
            pl__os_unlock(fd2, b, NULL);
    }
    if (excl) {
        *ok |= 1u << b;
        if (blocking_works(fd1, fd2, b))
            *blocking |= 1u << b;
    }
    pl__os_unlock(fd1, b, NULL);
}

int pl__os_probe_locks(const char *dir, unsigned *backends_ok,
                       unsigned *blocking_ok, pl_error_t *err) {
    static const pl_backend_t backends[] = {PL_BACKEND_FLOCK, PL_BACKEND_LOCKF,
                                            PL_BACKEND_OFD};
    size_t n = strlen(dir);
    char *base = malloc(n + sizeof("/portalock-probe"));
    char *tmp = NULL;
    pl_fd_t fd1, fd2;
    int rc;

    *backends_ok = *blocking_ok = 0;
    if (base == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", dir);
    memcpy(base, dir, n);
    strcpy(base + n,
           n > 0 && dir[n - 1] == '/' ? "portalock-probe" : "/portalock-probe");
    rc = pl__os_create_temp(base, 0600, &tmp, &fd1, err);
    free(base);
    if (rc != PL_OK)
        return rc;
    rc = pl__os_open_lockfile(tmp, "r+", 0600, &fd2, err);
    if (rc == PL_OK) {
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
            if (pl__os_backend_available(backends[i]))
                probe_backend(fd1, fd2, backends[i], backends_ok, blocking_ok);
        pl__os_close(fd2, NULL);
    }
    pl__os_close(fd1, NULL);
    pl__os_unlink(tmp, NULL);
    free(tmp);
    return rc;
}
