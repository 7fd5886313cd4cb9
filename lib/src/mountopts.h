/*
 * mountopts.h -- what a mount's options mean for locks (mountopts.c).
 *
 * Two pure functions, so unit tests can feed them recorded lines: one finds
 * the mount holding a path in the text of /proc/self/mountinfo, the other
 * reads that mount's options (NFS nolock / local_lock= / vers= / soft,
 * CIFS nobrl / cache= / unix, the FUSE filesystems known to forward locks or
 * not) and says which backends reach the server and what to change.
 */
#ifndef PL_MOUNTOPTS_H
#define PL_MOUNTOPTS_H

#include <stddef.h>

typedef struct pl__mount {
    char fstype[64];   /* "nfs4", "cifs", "fuse.sshfs"... */
    char source[128];  /* "server:/export", "//server/share"... */
    char options[512]; /* per-mount options, ",", superblock options */
} pl__mount_t;

/*
 * Finds in text (the contents of /proc/self/mountinfo) the mount whose
 * mount point is the longest prefix of path (absolute, symlinks resolved);
 * of equal ones the last (the newest mount).  Returns 0 and fills *out, or
 * -1 if no line covers path.  Does not modify text.
 */
int pl__mountinfo_find(const char *text, const char *path, pl__mount_t *out);

typedef struct pl__mount_verdict {
    unsigned remote;   /* bits (1u << pl_backend_t): the options send these
                          backends' locks to the server (other clients see
                          them) */
    unsigned local;    /* bits: these stay in this client's kernel */
    char verdict[256]; /* one line; "" when the type has nothing to say */
    char advice[256];  /* one line; "" when nothing should change */
} pl__mount_verdict_t;

/* Reads options (comma-separated, as in pl__mount_t) for fstype. */
void pl__mount_verdict(const char *fstype, const char *options,
                       pl__mount_verdict_t *v);

#endif /* PL_MOUNTOPTS_H */
