/*
 * fuzz_proto -- the contender command parser of portalock-conformance/1
 * (conformance/contender/proto.c): plp_split_args on any line, checked
 * against the grammar of conformance/PROTOCOL.md.  Tokens are split on
 * spaces and tabs; a value's %XX escapes (two hex digits) are decoded and
 * nothing else is.
 */
#include "proto.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference decoder: %XX with two hex digits only. */
static size_t decode_ref(const char *s, char *out) {
    size_t n = 0;
    while (*s != '\0') {
        if (s[0] == '%' && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], '\0'};
            out[n++] = (char)strtol(hex, NULL, 16);
            s += 3;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *line = malloc(size + 1), *copy = malloc(size + 1),
         *want = malloc(size + 1);
    char *save = NULL, *tok;
    plp_args_t a;
    int i = 0;

    memcpy(line, data, size);
    line[size] = '\0';
    memcpy(copy, line, size + 1);
    plp_split_args(line, &a);
    if (a.n < 0 || a.n > PLP_MAX_ARGS)
        abort();
    /* Token by token against the reference split of the same line. */
    for (tok = strtok_r(copy, " \t", &save); tok != NULL && i < a.n;
         tok = strtok_r(NULL, " \t", &save), i++) {
        char *eq = strchr(tok, '=');
        if (eq != NULL)
            *eq = '\0';
        if (strcmp(a.key[i], tok) != 0)
            abort();
        if ((eq == NULL) != (a.val[i] == NULL))
            abort();
        if (eq != NULL) {
            size_t n = decode_ref(eq + 1, want);
            /* A decoded %00 ends the C string early; compare up to it. */
            if (strncmp(a.val[i], want, n) != 0)
                abort();
        }
    }
    if (i != a.n)
        abort();
    /* The lookups never read outside the parsed tokens. */
    (void)plp_arg(&a, "path");
    (void)plp_has_word(&a, "shared");
    free(line);
    free(copy);
    free(want);
    return 0;
}
