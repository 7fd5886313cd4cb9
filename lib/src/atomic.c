/*
 * atomic.c -- open_atomic: write a new file beside its final name, then
 * publish it under that name in one atomic step that never replaces an
 * existing file, durably (see pl__os_atomic_publish).
 *
 * The temporary file is anonymous where the platform allows (Linux
 * O_TMPFILE), so a process killed before commit leaves nothing; elsewhere it
 * is a named file that the next pl_open_atomic of the same path removes once
 * its creator is gone (pl__os_clean_temps).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pl_atomic_file {
    char *path; /* final name */
    char *tmp;  /* temporary name, same directory; NULL if anonymous */
    pl_fd_t fd;
    FILE *fp; /* over fd; owns it */
};

static void af_free(pl_atomic_file_t *af) {
    free(af->path);
    free(af->tmp);
    free(af);
}

static int open_atomic_abs(pl_atomic_file_t **out, const char *path,
                           unsigned perms, pl_error_t *err);

int pl_open_atomic(pl_atomic_file_t **out, const char *path, pl_error_t *err) {
    return pl_open_atomic_perms(out, path, 0, err);
}

int pl_open_atomic_perms(pl_atomic_file_t **out, const char *path,
                         unsigned perms, pl_error_t *err) {
    char *abs;
    int rc;

    if (out == NULL || path == NULL || path[0] == '\0')
        return pl__error_set(err, PL_EINVAL, 0, "open_atomic: no path");
    *out = NULL;
    if (perms == 0)
        perms = 0666;
    /* Absolute from here on, so a chdir() before commit changes nothing and
     * messages name the temporary file usably. */
    if ((rc = pl__os_abspath(path, &abs, err)) != PL_OK)
        return rc;
    rc = open_atomic_abs(out, abs, perms & 0777, err);
    free(abs);
    return rc;
}

static int open_atomic_abs(pl_atomic_file_t **out, const char *path,
                           unsigned perms, pl_error_t *err) {
    pl_atomic_file_t *af;
    int rc;

    /* Leftovers of processes that died before publishing this path. */
    pl__os_clean_temps(path);
    /* Anything at path, even a dangling symbolic link, would make the
     * publication fail: refuse now, before the caller writes anything. */
    if ((rc = pl__os_check_absent(path, err)) != PL_OK)
        return rc;
    if ((rc = pl__os_mkdirs_parent(path, err)) != PL_OK)
        return rc;
    af = calloc(1, sizeof(*af));
    if (af == NULL || (af->path = malloc(strlen(path) + 1)) == NULL) {
        free(af);
        return pl__error_set(err, PL_ENOMEM, 0, "open_atomic(%s)", path);
    }
    strcpy(af->path, path);
    rc = pl__os_atomic_create(path, perms, &af->tmp, &af->fd, err);
    if (rc != PL_OK) {
        af_free(af);
        return rc;
    }
    af->fp = pl__os_fdopen(af->fd, "w+");
    if (af->fp == NULL) {
        rc = pl__error_set(err, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "fdopen(temporary file for %s)",
                           af->path);
        pl__os_close(af->fd, NULL);
        if (af->tmp != NULL)
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
 * fflush + fsync, publish, fclose.  If the data could not be written the
 * temporary file is removed (it is incomplete); if only the publication
 * failed the data is kept under a name given in the message.
 */
int pl_atomic_commit(pl_atomic_file_t *af, pl_error_t *err) {
    char *kept = NULL;
    int rc = PL_OK;

    if (af == NULL)
        return pl__error_set(err, PL_EINVAL, 0, "open_atomic: NULL file");
    /* A write through pl_atomic_fp() that failed earlier (EFBIG, ENOSPC
     * while stdio flushed a full buffer) leaves only the error flag: the
     * data is incomplete, so it must not be published. */
    if (ferror(af->fp))
        rc = pl__error_set(err, PL_EOS, 0,
                           "write(temporary file for %s): an earlier write "
                           "failed; nothing published",
                           af->path);
    else if (fflush(af->fp) != 0)
        rc = pl__error_set(err, pl__code_from_os(pl__os_crt_error()),
                           pl__os_crt_error(), "write(temporary file for %s)",
                           af->path);
    if (rc == PL_OK) {
        rc = af->tmp != NULL ? pl__os_fsync(af->fd, af->tmp, err)
                             : pl__os_fsync(af->fd, af->path, err);
    }
    if (rc == PL_OK) {
        rc = pl__os_atomic_publish(af->fd, af->tmp, af->path, &kept, err);
        free(kept);
    } else if (af->tmp != NULL) {
        pl__os_unlink(af->tmp, NULL);
    }
    /* The data is synced and published (or kept) by now: a failing close
     * changes nothing about it. */
    fclose(af->fp);
    af_free(af);
    return rc;
}

void pl_atomic_abort(pl_atomic_file_t *af) {
    if (af == NULL)
        return;
    if (af->tmp != NULL)
        pl__os_unlink(af->tmp, NULL);
    fclose(af->fp);
    af_free(af);
}
