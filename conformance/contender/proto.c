/*
 * proto.c -- see proto.h.
 */
#include "proto.h"

#include "os.h"
#include "portalock.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t plp_now_ns(void) {
    return plc_os_now_ns();
}

void plp_sleep_s(double s) {
    plc_os_sleep_s(s);
}

/* Decodes %XX in place (values may carry spaces and '=' that way).  Only
 * two hex digits make an escape: strtol alone also took "%+1", "% 1" and
 * "%-f" (sign and blank) for one. */
static void percent_decode(char *s) {
    char *w = s;
    while (*s != '\0') {
        if (s[0] == '%' && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], '\0'};
            *w++ = (char)strtol(hex, NULL, 16);
            s += 3;
            continue;
        }
        *w++ = *s++;
    }
    *w = '\0';
}

/* The next space- or tab-separated token of *s (terminated in place), NULL
 * at the end (strtok_r is not in every C library). */
static char *next_token(char **s) {
    char *tok = *s + strspn(*s, " \t");
    if (*tok == '\0')
        return NULL;
    *s = tok + strcspn(tok, " \t");
    if (**s != '\0')
        *(*s)++ = '\0';
    return tok;
}

void plp_split_args(char *line, plp_args_t *a) {
    char *tok;
    a->n = 0;
    while (a->n < PLP_MAX_ARGS && (tok = next_token(&line)) != NULL) {
        char *eq = strchr(tok, '=');
        if (eq != NULL) {
            *eq = '\0';
            percent_decode(eq + 1);
            a->val[a->n] = eq + 1;
        } else {
            a->val[a->n] = NULL;
        }
        a->key[a->n] = tok;
        a->n++;
    }
}

const char *plp_arg(const plp_args_t *a, const char *key) {
    int i;
    for (i = 1; i < a->n; i++)
        if (a->val[i] != NULL && strcmp(a->key[i], key) == 0)
            return a->val[i];
    return NULL;
}

double plp_arg_seconds(const plp_args_t *a, const char *key, double dflt) {
    const char *v = plp_arg(a, key);
    if (v == NULL)
        return dflt;
    if (strcmp(v, "inf") == 0 || strcmp(v, "forever") == 0)
        return -1.0;
    return strtod(v, NULL);
}

long plp_arg_long(const plp_args_t *a, const char *key, long dflt) {
    const char *v = plp_arg(a, key);
    return v != NULL ? strtol(v, NULL, 10) : dflt;
}

int plp_has_word(const plp_args_t *a, const char *word) {
    int i;
    for (i = 1; i < a->n; i++)
        if (a->val[i] == NULL && strcmp(a->key[i], word) == 0)
            return 1;
    return 0;
}

void plp_reply(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void plp_reply_error(int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    size_t i;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (i = 0; msg[i] != '\0'; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    plp_reply("error %s %s", pl_err_name(code), msg[0] != '\0' ? msg : "-");
}

/* One line of any length from f into *buf (grown as needed), without its
 * line ending; -1 at EOF or when out of memory (getline is POSIX only). */
static long read_line(FILE *f, char **buf, size_t *cap) {
    size_t len = 0;
    if (*buf == NULL) {
        *cap = 4096;
        if ((*buf = malloc(*cap)) == NULL)
            return -1;
    }
    for (;;) {
        if (fgets(*buf + len, (int)(*cap - len), f) == NULL) {
            if (len == 0)
                return -1;
            break; /* a last line without "\n" */
        }
        len += strlen(*buf + len);
        if (len > 0 && (*buf)[len - 1] == '\n')
            break;
        if (*cap - len < 2) {
            char *nb = realloc(*buf, *cap * 2);
            if (nb == NULL)
                return -1;
            *buf = nb;
            *cap *= 2;
        }
    }
    while (len > 0 && ((*buf)[len - 1] == '\n' || (*buf)[len - 1] == '\r'))
        (*buf)[--len] = '\0';
    return (long)len;
}

void plp_serve(int (*dispatch)(char *line)) {
    char *line = NULL;
    size_t cap = 0;

    plc_os_serve_init();
    while (read_line(stdin, &line, &cap) >= 0)
        if (dispatch(line))
            break;
    free(line);
}
