/*
 * fuzz_redis_url -- pl_redis_options_from_url on any string.  On success
 * every field points into the URL buffer and is well formed (a TCP URL has
 * a non-empty host and a port in 1..65535, a unix:// URL an absolute path);
 * on failure the code is PL_EINVAL with a message, or PL_ENOTSUP for a
 * Sentinel or Cluster scheme (the lock needs one standalone server).  A %00
 * escape in the user or password is refused: it would silently cut the
 * password short.
 */
#include "portalock.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, const char *buf, size_t len) {
    return p >= buf && p <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1), *orig = malloc(size + 1);
    pl_redis_options_t o;
    pl_error_t err;
    const char *at;
    size_t len;
    int rc;

    memcpy(url, data, size);
    url[size] = '\0';
    len = strlen(url);
    memcpy(orig, url, size + 1);
    pl_redis_options_init(&o);
    memset(&err, 0, sizeof(err));
    rc = pl_redis_options_from_url(&o, url, &err);
    /* PL_ENOTSUP only for a Sentinel or Cluster scheme. */
    if (rc == PL_ENOTSUP && strstr(url, "sentinel://") == NULL &&
        strstr(url, "cluster://") == NULL)
        abort();
    if (rc != PL_OK) {
        if ((rc != PL_EINVAL && rc != PL_ENOTSUP) || err.code != rc ||
            err.msg[0] == '\0' ||
            memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
            abort();
    } else {
        if (o.unix_socket != NULL) {
            if (!inside(o.unix_socket, url, len) || o.unix_socket[0] != '/')
                abort();
        } else {
            if (o.host == NULL || !inside(o.host, url, len) ||
                o.host[0] == '\0' || o.port < 1 || o.port > 65535)
                abort();
        }
        if ((o.username != NULL && !inside(o.username, url, len)) ||
            (o.password != NULL && !inside(o.password, url, len)))
            abort();
        /* No NUL smuggled into the credentials. */
        at = strrchr(orig, '@');
        if (at != NULL) {
            for (const char *p = orig; p + 2 < at; p++)
                if (p[0] == '%' && p[1] == '0' && p[2] == '0')
                    abort();
        }
    }
    free(url);
    free(orig);
    return 0;
}
