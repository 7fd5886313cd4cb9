/*
 * mounts_os.c -- the mount holding a directory and its options, from
 * /proc/self/mountinfo (Linux); mountopts.c parses the text.  Where the file
 * does not exist (other POSIX systems) the mount is unknown, not an error.
 */
#include "internal.h"
#include "mountopts.h"
#include "posix/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole of /proc/self/mountinfo, malloc'd and NUL-terminated; NULL if
 * it cannot be read (bounded at 16 MiB). */
static char *read_mountinfo(void) {
    size_t len = 0, cap = 16384;
    char *buf = malloc(cap), *bigger;
    ssize_t n;
    int fd;

    if (buf == NULL)
        return NULL;
    fd = pl__sys.open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            if (cap >= (16u << 20) || (bigger = realloc(buf, cap * 2)) == NULL)
                break;
            buf = bigger;
            cap *= 2;
        }
        n = pl__sys.read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    pl__sys.close(fd);
    buf[len] = '\0';
    return buf;
}

int pl__os_mount(const char *dir, pl__mount_t *m) {
    char real[PATH_MAX], *text;
    int rc;

    memset(m, 0, sizeof(*m));
    if (realpath(dir, real) == NULL)
        return -1;
    if ((text = read_mountinfo()) == NULL)
        return -1;
    rc = pl__mountinfo_find(text, real, m);
    free(text);
    return rc;
}
