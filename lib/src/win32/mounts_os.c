/*
 * mounts_os.c -- the mount holding a directory: Windows has no mount table
 * with options to read (what matters, local / remote / removable, comes from
 * GetDriveType in probe_os.c), so the mount is unknown, which the probe
 * treats as "no mount options", not as an error.
 */
#include "internal.h"
#include "mountopts.h"

#include <string.h>

int pl__os_mount(const char *dir, pl__mount_t *m) {
    (void)dir;
    memset(m, 0, sizeof(*m));
    return -1;
}
