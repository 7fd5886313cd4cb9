/*
 * getopt.c -- command-line option scanning with GNU getopt_long's rules,
 * for every platform.  The CLI parses flock(1)'s command line exactly as
 * util-linux does (through glibc's getopt_long), but MSVC has no
 * <getopt.h>, and glibc's scanner keeps its state in globals that must be
 * reset between calls.  This one keeps it in a cli_getopt_t.
 *
 * The rules kept (they are what scripts written for flock(1) rely on):
 *   - short options cluster ("-sn"), and take their argument attached
 *     ("-w5") or as the next element ("-w 5");
 *   - long options take it as "--name=value" or as the next element, and
 *     may be abbreviated to any unambiguous prefix ("--nonb"); an exact
 *     name wins over prefixes, and prefixes that all mean the same option
 *     are not ambiguous;
 *   - "--" ends the options; "-" alone is an operand;
 *   - with a leading '+' in the short-option string scanning stops at the
 *     first operand (the command of "portalock FILE cmd -x" keeps its -x);
 *     without it operands are moved after the options ("probe PATH
 *     --json"), keeping both in their order;
 *   - a missing argument returns ':' (the caller's string starts with ':'
 *     in GNU's terms; here always), anything unknown '?'.
 */
#include "cli.h"

#include <string.h>

void cli_getopt_init(cli_getopt_t *g) {
    memset(g, 0, sizeof(*g));
    g->ind = 1;
}

static void reverse(char **argv, int a, int b) { /* [a, b) */
    while (a < --b) {
        char *t = argv[a];
        argv[a++] = argv[b];
        argv[b] = t;
    }
}

/* Swaps the blocks [a, b) and [b, c) of argv, each keeping its order. */
static void rotate(char **argv, int a, int b, int c) {
    reverse(argv, a, b);
    reverse(argv, b, c);
    reverse(argv, a, c);
}

static int is_option(const char *s) {
    return s[0] == '-' && s[1] != '\0';
}

static int long_option(cli_getopt_t *g, int argc, char **argv,
                       const cli_longopt_t *longs) {
    const char *name = argv[g->ind] + 2, *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const cli_longopt_t *found = NULL, *o;
    int ambiguous = 0;

    g->bad = argv[g->ind];
    g->opt = 0;
    g->ind++;
    for (o = longs; o != NULL && o->name != NULL; o++) {
        if (strncmp(o->name, name, len) != 0)
            continue;
        if (strlen(o->name) == len) { /* exact: wins */
            found = o;
            ambiguous = 0;
            break;
        }
        if (found == NULL)
            found = o;
        else if (found->has_arg != o->has_arg || found->val != o->val)
            ambiguous = 1;
    }
    if (found == NULL || ambiguous)
        return '?';
    g->opt = found->val;
    if (eq != NULL) {
        if (found->has_arg == CLI_NO_ARG)
            return '?'; /* "--shared=x" */
        g->arg = eq + 1;
    } else if (found->has_arg == CLI_REQ_ARG) {
        if (g->ind >= argc)
            return ':';
        g->arg = argv[g->ind++];
    }
    return found->val;
}

static int short_option(cli_getopt_t *g, int argc, char **argv,
                        const char *shorts) {
    const char *elem = argv[g->ind];
    char c = elem[g->pos];
    const char *spec = c != ':' && c != '+' ? strchr(shorts, c) : NULL;

    g->bad = elem;
    g->opt = (unsigned char)c;
    g->pos++;
    if (elem[g->pos] == '\0') { /* the cluster is used up */
        g->ind++;
        g->pos = 0;
    }
    if (spec == NULL)
        return '?';
    if (spec[1] != ':')
        return (unsigned char)c;
    if (g->pos != 0) { /* "-w5": the rest of the element */
        g->arg = elem + g->pos;
        g->ind++;
        g->pos = 0;
    } else if (g->ind < argc) { /* "-w 5" */
        g->arg = argv[g->ind++];
    } else {
        return ':';
    }
    return (unsigned char)c;
}

/*
 * Without '+', the operands skipped so far form one block [nonopt, ind)
 * just before the element being scanned; each option (with a separate
 * argument, if any) is swapped in front of the block once it is used up,
 * so at the end argv holds the options, then the operands in order, and
 * ind points at the first operand.
 */
int cli_getopt(cli_getopt_t *g, int argc, char **argv, const char *shorts,
               const cli_longopt_t *longs) {
    int in_order = shorts[0] == '+', c;

    g->arg = NULL;
    if (g->pos == 0) {
        if (g->nonopt == 0)
            g->nonopt = g->ind;
        while (!in_order && g->ind < argc && !is_option(argv[g->ind]))
            g->ind++; /* the block grows */
        if (g->ind >= argc || !is_option(argv[g->ind])) {
            g->ind = g->nonopt;
            return -1;
        }
        if (strcmp(argv[g->ind], "--") == 0) {
            /* "--" goes before the block; what follows it is operands. */
            rotate(argv, g->nonopt, g->ind, g->ind + 1);
            g->ind = g->nonopt + 1;
            return -1;
        }
        g->start = g->ind;
        if (argv[g->ind][1] == '-')
            c = long_option(g, argc, argv, longs);
        else {
            g->pos = 1;
            c = short_option(g, argc, argv, shorts);
        }
    } else {
        c = short_option(g, argc, argv, shorts);
    }
    if (g->pos == 0 && g->nonopt < g->start) { /* used up: before the block */
        rotate(argv, g->nonopt, g->start, g->ind);
        g->nonopt += g->ind - g->start;
    } else if (g->pos == 0) {
        g->nonopt = g->ind;
    }
    return c;
}
