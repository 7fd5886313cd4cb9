/*
 * fuzz_mode_flags -- mode and flag parsing: the first four bytes are a flags
 * word for pl__flags_check, the rest a mode string for pl__mode_normalise,
 * pl_lock_open (which must refuse exactly the modes the parser refuses) and
 * pl_backend_from_name.  Checked against the documented rules: a mode is
 * one of r, a, w followed by '+' and 'b' in any order, each at most once;
 * flags are exactly one of PL_SHARED/PL_EXCLUSIVE plus optionally
 * PL_NON_BLOCKING.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int mode_ok(const char *m, char *plus) {
    int p = 0, b = 0;
    if (m[0] != 'r' && m[0] != 'a' && m[0] != 'w')
        return 0;
    for (const char *c = m + 1; *c != '\0'; c++) {
        if (*c == '+' && !p)
            p = 1;
        else if (*c == 'b' && !b)
            b = 1;
        else
            return 0;
    }
    *plus = (char)p;
    return 1;
}

static int flags_ok(unsigned f) {
    unsigned kind = f & (PL_SHARED | PL_EXCLUSIVE);
    return !(f & ~(PL_SHARED | PL_EXCLUSIVE | PL_NON_BLOCKING)) &&
           (kind == PL_SHARED || kind == PL_EXCLUSIVE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned flags = 0;
    char *mode, out[4], plus = 0;
    pl_lock_options_t o;
    pl_lock_t *lock = NULL;
    pl_backend_t b;
    pl_error_t err;
    int rc, want;

    if (size >= 4) {
        memcpy(&flags, data, 4);
        data += 4;
        size -= 4;
    }
    mode = malloc(size + 1);
    memcpy(mode, data, size);
    mode[size] = '\0';

    rc = pl__flags_check(flags, &err);
    if ((rc == PL_OK) != flags_ok(flags) ||
        (rc != PL_OK && (rc != PL_EINVAL || err.msg[0] == '\0')))
        abort();

    want = mode_ok(mode, &plus);
    memset(out, 'x', sizeof(out));
    rc = pl__mode_normalise(mode, out);
    if ((rc == PL_OK) != want)
        abort();
    if (rc == PL_OK &&
        (out[0] != mode[0] || out[1] != (plus ? '+' : '\0') || out[2] != '\0'))
        abort();

    pl_lock_options_init(&o);
    o.mode = mode;
    o.flags = flags;
    o.timeout = 0;
    rc = pl_lock_open(&lock, "/nonexistent-dir/fuzz.lock", &o);
    /* pl_lock_open reads flags 0 as PL_EXCLUSIVE | PL_NON_BLOCKING. */
    if (want && (flags == 0 || flags_ok(flags)) ? rc != PL_OK : rc != PL_EINVAL)
        abort();
    pl_lock_close(lock);

    rc = pl_backend_from_name(mode, &b);
    if (rc == PL_OK && strcmp(pl_backend_name(b), mode) != 0 &&
        strcmp(mode, "fcntl") != 0)
        abort();
    free(mode);
    return 0;
}
