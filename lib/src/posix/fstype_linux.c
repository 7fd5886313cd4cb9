/*
 * fstype_linux.c -- pl__os_fstype() on Linux: the statfs f_type magic,
 * refined from /proc/self/mountinfo for FUSE ("fuse.sshfs") and the ext
 * family.  The BSDs and macOS name the type in statfs itself
 * (fstype_bsd.c).
 */
#include "internal.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- filesystem type ----------------------------------------------------- */

static const struct {
    uint64_t magic;
    const char *name;
} fs_magics[] = {
    {0xEF53, "ext4"}, /* ext2/3/4 share it; mountinfo tells which */
    {0x01021994, "tmpfs"},    {0x58465342, "xfs"},
    {0x9123683E, "btrfs"},    {0x794C7630, "overlay"},
    {0x6969, "nfs"},          {0x517B, "smb"},
    {0xFF534D42, "cifs"},     {0xFE534D42, "smb2"},
    {0x65735546, "fuse"},     {0x01021997, "9p"},
    {0x00C36400, "ceph"},     {0x5346414F, "afs"},
    {0x6B414653, "afs"}, /* kAFS */
    {0x73757245, "coda"},     {0x858458F6, "ramfs"},
    {0xF2F52010, "f2fs"},     {0x2FC12FC1, "zfs"},
    {0x3153464A, "jfs"},      {0x52654973, "reiserfs"},
    {0x4d44, "vfat"},         {0x2011BAB0, "exfat"},
    {0x5346544E, "ntfs"},     {0x7366746E, "ntfs3"},
    {0x4244, "hfs"},          {0x482B, "hfsplus"},
    {0x73717368, "squashfs"}, {0x9660, "iso9660"},
    {0x9FA0, "proc"},         {0x62656572, "sysfs"},
    {0xCA451A4E, "bcachefs"}, {0x3434, "nilfs2"},
    {0x0BD00BD0, "lustre"},   {0x01161970, "gfs2"},
    {0x7461636F, "ocfs2"},    {0x47504653, "gpfs"},
    {0x00BAD1DE, "vboxsf"},   {0x786F4256, "vboxsf"},
};

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s) {
    char *w = s;
    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
            s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

/* Length of mount point mp if it contains path (equal, or a prefix ending
 * at '/'), else 0. */
static size_t mount_covers(const char *mp, const char *path) {
    size_t n = strlen(mp);
    if (strcmp(mp, "/") == 0)
        return 1;
    if (strncmp(mp, path, n) != 0 || (path[n] != '\0' && path[n] != '/'))
        return 0;
    return n;
}

/*
 * One mountinfo line: "id parent maj:min root mountpoint opts [tags] -
 * fstype source superopts".  If its mount point covers path better than
 * *best_len, copies its fstype into name.
 */
static void mountinfo_line(char *line, const char *path, size_t *best_len,
                           char *name, size_t len) {
    char *f[5], *sep, *fstype, *sp;
    int i;

    for (i = 0, sp = line; i < 5; i++) {
        f[i] = sp;
        sp = strchr(sp, ' ');
        if (sp == NULL)
            return;
        *sp++ = '\0';
    }
    sep = strstr(sp, " - ");
    if (sep == NULL)
        return;
    fstype = sep + 3;
    if ((sp = strchr(fstype, ' ')) != NULL)
        *sp = '\0';
    unescape(f[4]);
    size_t n = mount_covers(f[4], path);
    if (n > 0 && n >= *best_len) { /* later lines are newer mounts */
        *best_len = n;
        snprintf(name, len, "%s", fstype);
    }
}

/* The fstype of the mount holding dir, from /proc/self/mountinfo; 0 if
 * found. */
static int mountinfo_fstype(const char *dir, char *name, size_t len) {
    char real[PATH_MAX], buf[8192], line[4096];
    size_t best = 0, ll = 0;
    ssize_t n;
    int fd;

    if (realpath(dir, real) == NULL)
        return -1;
    fd = pl__sys.open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((n = pl__sys.read(fd, buf, sizeof(buf))) > 0 ||
           (n < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (ll + 1 < sizeof(line))
                    line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            mountinfo_line(line, real, &best, name, len);
            ll = 0;
        }
    }
    pl__sys.close(fd);
    return best > 0 ? 0 : -1;
}

int pl__os_fstype(const char *dir, char *name, size_t len, uint64_t *magic,
                  pl_error_t *err) {
    struct statfs st;
    const char *known = NULL;

    if (pl__sys.statfs(dir, &st) != 0)
        return pl__error_set(err, pl__code_from_os(errno), errno, "statfs(%s)",
                             dir);
    *magic = (uint64_t)(unsigned long)st.f_type & 0xFFFFFFFFu;
    for (size_t i = 0; i < sizeof(fs_magics) / sizeof(fs_magics[0]); i++)
        if (fs_magics[i].magic == *magic)
            known = fs_magics[i].name;
    /* FUSE ("fuse.sshfs"), the ext family and unknown magics: ask
     * mountinfo; keep the magic's name if that fails. */
    if (known != NULL && *magic != 0xEF53 && *magic != 0x65735546) {
        snprintf(name, len, "%s", known);
        return PL_OK;
    }
    if (mountinfo_fstype(dir, name, len) == 0 &&
        (known == NULL || strncmp(name, known, 3) == 0 || *magic == 0xEF53))
        return PL_OK;
    if (known != NULL)
        snprintf(name, len, "%s", known);
    else
        snprintf(name, len, "unknown(0x%llx)", (unsigned long long)*magic);
    return PL_OK;
}
