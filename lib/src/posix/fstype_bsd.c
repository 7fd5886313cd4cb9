/*
 * fstype_bsd.c -- pl__os_fstype() on the BSDs and macOS: statfs names the
 * filesystem itself (f_fstypename: "apfs", "ufs", "zfs", "nfs", "smbfs",
 * "msdos", "macfuse"...), so there is neither a magic-number table nor a
 * mount table to read (Linux: fstype_linux.c).  fs_magic reports f_type,
 * which is a per-boot index there, not a stable magic.
 *
 * Not compiled on Linux; its only check here is by construction (PORTING.md
 * and the macOS workflow say what runs where).
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <stdio.h>

int pl__os_fstype(const char *dir, char *name, size_t len, uint64_t *magic,
                  pl_error_t *err) {
    struct statfs st;

    if (pl__sys.statfs(dir, &st) != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno, "statfs(%s)",
                             dir);
    *magic = (uint64_t)st.f_type;
    if (st.f_fstypename[0] != '\0')
        snprintf(name, len, "%.*s", (int)sizeof(st.f_fstypename),
                 st.f_fstypename);
    else
        snprintf(name, len, "unknown");
    return PL_OK;
}
