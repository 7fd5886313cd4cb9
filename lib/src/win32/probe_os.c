/*
 * probe_os.c -- the Windows half of pl_probe(): which volume a directory is
 * on (GetVolumeInformation for the filesystem name, GetDriveType for local,
 * remote or removable), and whether LockFileEx works there and can wait in
 * the kernel, tested on a temporary file from two handles.
 */
#include "win32/win32.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- which directory ----------------------------------------------------- */

static int is_sep(char c) {
    return c == '/' || c == '\\';
}

static int dir_attrs(const char *path, DWORD *attrs) {
    wchar_t *w = pl__win_path(path, NULL);
    if (w == NULL)
        return 0;
    *attrs = GetFileAttributesW(w);
    free(w);
    return *attrs != INVALID_FILE_ATTRIBUTES;
}

int pl__os_probe_dir(const char *path, char **dir, pl_error_t *err) {
    size_t n = strlen(path);
    DWORD a;
    char *d;

    if (dir_attrs(path, &a) && (a & FILE_ATTRIBUTE_DIRECTORY)) {
        d = malloc(n + 1);
        if (d == NULL)
            return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", path);
        memcpy(d, path, n + 1);
        *dir = d;
        return PL_OK;
    }
    /* A file, or a name not created yet: its directory. */
    while (n > 0 && is_sep(path[n - 1]))
        n--;
    while (n > 0 && !is_sep(path[n - 1]))
        n--;
    while (n > 1 && is_sep(path[n - 1]) && path[n - 2] != ':')
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
    if (!dir_attrs(d, &a) || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
        DWORD e = dir_attrs(d, &a) ? ERROR_DIRECTORY : GetLastError();
        int rc = pl__error_set(err, pl__code_from_os((int)e), (int)e,
                               "probe(%s): %s", path, d);
        free(d);
        return rc;
    }
    *dir = d;
    return PL_OK;
}

/* ---- filesystem type ----------------------------------------------------- */

/*
 * The name the generic probe classifies: the volume's filesystem in lower
 * case ("ntfs", "refs", "exfat"; FAT and FAT32 as "vfat"), except that a
 * remote drive is "smb" whatever the server reports (its locks are the
 * server's).  fs_magic is the GetDriveType value (DRIVE_FIXED 3, DRIVE_REMOTE
 * 4, DRIVE_REMOVABLE 2...), statfs having no equivalent.
 */
int pl__os_fstype(const char *dir, char *name, size_t len, uint64_t *magic,
                  pl_error_t *err) {
    wchar_t *w = pl__win_path(dir, err), root[MAX_PATH + 8], fs[64];
    UINT type;
    char lower[64];
    size_t i;

    if (w == NULL)
        return err != NULL ? err->code : PL_EINVAL;
    if (!GetVolumePathNameW(w, root, MAX_PATH + 8)) {
        DWORD e = GetLastError();
        free(w);
        return pl__win_fail(err, e, "GetVolumePathName", dir);
    }
    free(w);
    type = GetDriveTypeW(root);
    *magic = type;
    if (type == DRIVE_REMOTE) {
        snprintf(name, len, "smb");
        return PL_OK;
    }
    if (!pl__sys.GetVolumeInformationW(root, NULL, 0, NULL, NULL, NULL, fs,
                                       64)) {
        DWORD e = GetLastError();
        return pl__win_fail(err, e, "GetVolumeInformation", dir);
    }
    if (WideCharToMultiByte(CP_UTF8, 0, fs, -1, lower, (int)sizeof(lower), NULL,
                            NULL) <= 0)
        snprintf(lower, sizeof(lower), "unknown");
    for (i = 0; lower[i] != '\0'; i++)
        lower[i] = (char)tolower((unsigned char)lower[i]);
    if (strcmp(lower, "fat") == 0 || strcmp(lower, "fat32") == 0)
        snprintf(name, len, "vfat");
    else if (strcmp(lower, "cdfs") == 0)
        snprintf(name, len, "iso9660");
    else
        snprintf(name, len, "%s", lower);
    return PL_OK;
}

/* ---- lock tests ---------------------------------------------------------- */

typedef struct releaser {
    pl_fd_t fd;
} releaser_t;

static DWORD WINAPI release_later(LPVOID arg) {
    releaser_t *r = arg;
    Sleep(2);
    pl__os_unlock(r->fd, PL_BACKEND_LOCKFILEEX, NULL);
    return 0;
}

/* fd1 holds; a kernel wait on fd2 (another handle) must wake when another
 * thread releases fd1 after ~2 ms.  Under Wine the wait reports ENOTSUP. */
static int blocking_works(pl_fd_t fd1, pl_fd_t fd2) {
    releaser_t r = {fd1};
    HANDLE t = CreateThread(NULL, 0, release_later, &r, 0, NULL);
    int rc;
    if (t == NULL)
        return 0;
    rc = pl__os_lock_kernel_wait(fd2, PL_EXCLUSIVE, PL_BACKEND_LOCKFILEEX, 1.0,
                                 NULL);
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    if (rc == PL_OK)
        pl__os_unlock(fd2, PL_BACKEND_LOCKFILEEX, NULL);
    return rc == PL_OK;
}

int pl__os_probe_locks(const char *dir, unsigned *backends_ok,
                       unsigned *blocking_ok, pl_error_t *err) {
    const pl_backend_t b = PL_BACKEND_LOCKFILEEX;
    size_t n = strlen(dir);
    char *base = malloc(n + sizeof("\\portalock-probe"));
    char *tmp = NULL;
    pl_fd_t fd0, fd1, fd2;
    int rc;

    *backends_ok = *blocking_ok = 0;
    if (base == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "probe(%s)", dir);
    memcpy(base, dir, n);
    strcpy(base + n, n > 0 && is_sep(dir[n - 1]) ? "portalock-probe"
                                                 : "\\portalock-probe");
    rc = pl__os_create_temp(base, 0600, &tmp, &fd0, err);
    free(base);
    if (rc != PL_OK)
        return rc;
    pl__os_close(fd0, NULL); /* the lock handles are overlapped ones */
    rc = pl__os_open_lockfile(tmp, "r+", 0600, &fd1, err);
    if (rc == PL_OK) {
        rc = pl__os_open_lockfile(tmp, "r+", 0600, &fd2, err);
        if (rc == PL_OK) {
            if (pl__os_lock(fd1, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL) ==
                PL_OK) {
                int r2 =
                    pl__os_lock(fd2, PL_EXCLUSIVE | PL_NON_BLOCKING, b, NULL);
                if (r2 == PL_OK)
                    pl__os_unlock(fd2, b, NULL);
                else if (r2 == PL_ELOCKED) {
                    *backends_ok |= 1u << b;
                    if (blocking_works(fd1, fd2))
                        *blocking_ok |= 1u << b;
                }
                pl__os_unlock(fd1, b, NULL);
            }
            pl__os_close(fd2, NULL);
        }
        pl__os_close(fd1, NULL);
    }
    pl__os_unlink(tmp, NULL);
    free(tmp);
    return rc;
}
