/*
 * atomic.c -- open_atomic: write a new file under a temporary name in the
 * same directory, then publish it under its final name without ever
 * replacing an existing file (link(2), or check-then-rename where hard links
 * are not supported; see pl__os_publish_noreplace).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pl_atomic_file {
    char *path; /* final name */
    char *tmp;  /* temporary name, same directory */
    pl_fd_t fd;
    FILE *fp; /* over fd; owns it */
};

static void af_free(pl_atomic_file_t *af) {
    free(af->path);
    free(af->tmp);
    free(af);
}

static int open_atomic_abs(pl_atomic_file_t **out, const char *path,
                           pl_error_t *err);

int pl_open_atomic(pl_atomic_file_t **out, const char *path, pl_error_t *err) {
    char *abs;
    int rc;

    if (out == NULL || path == NULL || path[0] == '\0')
        return pl__error_set(err, PL_EINVAL, 0, "open_atomic: no path");
    *out = NULL;
    /* Absolute from here on, so a chdir() before commit changes nothing and
     * messages name the temporary file usably. */
    if ((rc = pl__os_abspath(path, &abs, err)) != PL_OK)
        return rc;
    rc = open_atomic_abs(out, abs, err);
    free(abs);
    return rc;
}

static int open_atomic_abs(pl_atomic_file_t **out, const char *path,
                           pl_error_t *err) {
    pl_atomic_file_t *af;
    int rc;

    if (pl__os_exists(path))
        return pl__error_set(err, PL_EEXIST, 0, "%s: file already exists",
                             path);
    if ((rc = pl__os_mkdirs_parent(path, err)) != PL_OK)
        return rc;
    af = calloc(1, sizeof(*af));
    if (af == NULL || (af->path = malloc(strlen(path) + 1)) == NULL) {
        free(af);
        return pl__error_set(err, PL_ENOMEM, 0, "open_atomic(%s)", path);
    }
    strcpy(af->path, path);
    rc = pl__os_create_temp(path, 0666, &af->tmp, &af->fd, err);
    if (rc != PL_OK) {
        af_free(af);
        return rc;
    }
    af->fp = pl__os_fdopen(af->fd, "w+");
    if (af->fp == NULL) {
        rc = pl__error_set(err, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "fdopen(%s)", af->tmp);
        pl__os_close(af->fd, NULL);
        pl__os_unlink(af->tmp, NULL);
        af_free(af);
        return rc;
    }
    *out = af;
    return PL_OK;
}

FILE *pl_atomic_fp(pl_atomic_file_t *af) {
    return af != NULL ? af->fp : NULL;
}

const char *pl_atomic_temp_path(const pl_atomic_file_t *af) {
    return af != NULL ? af->tmp : NULL;
}

/*
 * fflush + fsync + fclose, then publish.  If the data could not be written
 * the temporary file is removed (it is incomplete); if only the publication
 * failed it is kept and named in the message.
 */
int pl_atomic_commit(pl_atomic_file_t *af, pl_error_t *err) {
    int rc = PL_OK;

    if (af == NULL)
        return pl__error_set(err, PL_EINVAL, 0, "open_atomic: NULL file");
    /* A write through pl_atomic_fp() that failed earlier (EFBIG, ENOSPC
     * while stdio flushed a full buffer) leaves only the error flag: the
     * data is incomplete, so it must not be published. */
    if (ferror(af->fp))
        rc = pl__error_set(err, PL_EOS, 0,
                           "write(%s): an earlier write failed; "
                           "nothing published",
                           af->tmp);
    else if (fflush(af->fp) != 0)
        rc = pl__error_set(err, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "write(%s)", af->tmp);
    if (rc == PL_OK)
        rc = pl__os_fsync(af->fd, af->tmp, err);
    if (fclose(af->fp) != 0 && rc == PL_OK)
        rc = pl__error_set(err, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "close(%s)", af->tmp);
    if (rc != PL_OK)
        pl__os_unlink(af->tmp, NULL);
    else
        rc = pl__os_publish_noreplace(af->tmp, af->path, err);
    af_free(af);
    return rc;
}

void pl_atomic_abort(pl_atomic_file_t *af) {
    if (af == NULL)
        return;
    fclose(af->fp);
    pl__os_unlink(af->tmp, NULL);
    af_free(af);
}
