/*
 * fs_linux.c -- the C-library calls of fs.c that only Linux libcs (glibc,
 * musl) spell this way (platform.h; the BSDs and macOS: fs_bsd.c).
 */
#include "posix/platform.h"

#include <stdio_ext.h>
#include <sys/random.h>

void pl__posix_fpurge(FILE *fp) {
    __fpurge(fp);
}

/* getrandom(2), Linux >= 3.17: never blocks, even before the pool is
 * initialised (GRND_NONBLOCK gives EAGAIN, and fs.c falls back). */
ssize_t pl__posix_random_bytes(void *buf, size_t len) {
    return getrandom(buf, len, GRND_NONBLOCK);
}
