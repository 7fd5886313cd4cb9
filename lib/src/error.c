/*
 * error.c -- the error table (PL_ERR_MAP), pl_strerror, pl_err_name, and the
 * helpers that fill a pl_error_t.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* clang-format off */
const char *pl_strerror(int err) {
    switch (err) {
    case PL_OK: return "success";
#define PL_ERR_STR(name, code, msg)                                            \
    case PL_##name: return msg;
        PL_ERR_MAP(PL_ERR_STR)
#undef PL_ERR_STR
    default: return "unknown error";
    }
}

const char *pl_err_name(int err) {
    switch (err) {
    case PL_OK: return "PL_OK";
#define PL_ERR_NAME(name, code, msg)                                           \
    case PL_##name: return "PL_" #name;
        PL_ERR_MAP(PL_ERR_NAME)
#undef PL_ERR_NAME
    default: return "PL_EUNKNOWN";
    }
}
/* clang-format on */

const char *pl_version(void) {
    return PL_VERSION_STRING;
}

int pl__error_vset(pl_error_t *err, int code, int os_error, const char *fmt,
                   va_list ap) {
    if (err == NULL)
        return code;
    err->code = code;
    err->os_error = os_error;
    err->msg[0] = '\0';
    if (fmt != NULL)
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    size_t n = strlen(err->msg);
    if (os_error != 0 && n + 3 < sizeof(err->msg)) {
        char os[128];
        pl__os_strerror(os_error, os, sizeof(os));
        snprintf(err->msg + n, sizeof(err->msg) - n, "%s%s", n > 0 ? ": " : "",
                 os);
    } else if (n == 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", pl_strerror(code));
    }
    return code;
}

int pl__error_set(pl_error_t *err, int code, int os_error, const char *fmt,
                  ...) {
    va_list ap;
    va_start(ap, fmt);
    pl__error_vset(err, code, os_error, fmt, ap);
    va_end(ap);
    return code;
}
