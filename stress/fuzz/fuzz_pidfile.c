/*
 * fuzz_pidfile -- pl_pidfile_read on any file content (a memfd, read back
 * through /proc/self/fd): it accepts exactly a positive decimal of at most
 * 10 digits below 2^31, optionally followed by one newline, and returns
 * that number; anything else is PL_EINVAL.
 */
#include "portalock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long reference(const uint8_t *d, size_t n) {
    long v = 0;
    if (n > 0 && d[n - 1] == '\n')
        n--;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        v = v * 10 + (d[i] - '0');
    }
    return v > 0 && v <= 0x7fffffffL ? v : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    pl_error_t err;
    long pid = -7, want = reference(data, size);
    int rc;

    if (fd < 0) {
        fd = memfd_create("fuzz_pidfile", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 ||
        (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    rc = pl_pidfile_read(path, &pid, &err);
    if (want > 0 ? (rc != PL_OK || pid != want)
                 : (rc != PL_EINVAL || pid != 0 || err.msg[0] == '\0'))
        abort();
    return 0;
}
