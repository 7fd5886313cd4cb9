/*
 * fs_bsd.c -- the C-library calls of fs.c on the BSDs, macOS and other
 * POSIX systems (platform.h; Linux: fs_linux.c).  On Linux it is compiled
 * only by ci/posix-portable.sh, which checks that nothing here or in the
 * generic files is Linux-only.
 */
#include "posix/platform.h"

#include <stdio.h>
#include <unistd.h>
#if __has_include(<sys/random.h>)
# include <sys/random.h> /* getentropy on macOS */
#endif

/* fpurge(3), <stdio.h> on the BSDs and macOS (glibc and musl: __fpurge). */
void pl__posix_fpurge(FILE *fp) {
    fpurge(fp);
}

/* getentropy(3): macOS >= 10.12, FreeBSD >= 12, OpenBSD, NetBSD >= 10,
 * glibc >= 2.25; at most 256 bytes a call (fs.c loops). */
ssize_t pl__posix_random_bytes(void *buf, size_t len) {
    size_t n = len < 256 ? len : 256;
    return getentropy(buf, n) == 0 ? (ssize_t)n : -1;
}
