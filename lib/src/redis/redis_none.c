/*
 * redis_none.c -- the Redis lock in a build without hiredis: opening one
 * fails with PL_ENOTSUP.  pl_redis_options_init and
 * pl_redis_options_from_url live in options.c and work in every build.
 */
#include "internal.h"

int pl_redis_lock_open(pl_lock_t **out, const char *channel,
                       const pl_redis_options_t *opts) {
    (void)channel;
    (void)opts;
    if (out != NULL)
        *out = NULL;
    return PL_ENOTSUP; /* built without hiredis (PL_WITH_REDIS=OFF or
                          hiredis not found at configure time) */
}
