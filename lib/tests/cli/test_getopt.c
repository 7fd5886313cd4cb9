/*
 * test_getopt.c -- lib/cli/getopt.c against glibc's getopt_long, the
 * scanner flock(1) uses: both parse the same random command lines (in-order
 * "+" mode, as the lock command does, and permuting mode, as "probe" does),
 * and every step must agree: the option returned, its argument, the
 * offending option for '?' and ':', where the operands start, and the
 * final order of argv.  Built where the C library is glibc.
 *
 *   pl_test_getopt [ROUNDS] [SEED]
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS  10
#define MAX_STEPS 64

/* Elements the command lines are drawn from: clusters, attached and
 * separate arguments, abbreviations (unique, ambiguous, and ambiguous in
 * name only), "--", "-", operands and unknown options. */
static const char *const pool[] = {
    "-s",   "-x",     "-w",       "5",          "-sw3",   "-xs",
    "-w2",  "--wait", "--wait=2", "--wa",       "--wai=", "--n",
    "--no", "--nb",   "--non",    "--shared=1", "--",     "-",
    "a",    "b",      "-Q",       "--bogus",    "-sQ",    "--shared",
    "--s",  "-:",     "--=x",     "---",        "-+",     "--no-f"};
#define POOL ((int)(sizeof(pool) / sizeof(pool[0])))

static const cli_longopt_t ours_long[] = {{"shared", CLI_NO_ARG, 's'},
                                          {"wait", CLI_REQ_ARG, 'w'},
                                          {"nonblocking", CLI_NO_ARG, 'n'},
                                          {"nonblock", CLI_NO_ARG, 'n'},
                                          {"nb", CLI_NO_ARG, 'n'},
                                          {"no-fork", CLI_NO_ARG, 'F'},
                                          {NULL, 0, 0}};
static const struct option glibc_long[] = {
    {"shared", no_argument, NULL, 's'},
    {"wait", required_argument, NULL, 'w'},
    {"nonblocking", no_argument, NULL, 'n'},
    {"nonblock", no_argument, NULL, 'n'},
    {"nb", no_argument, NULL, 'n'},
    {"no-fork", no_argument, NULL, 'F'},
    {NULL, 0, NULL, 0}};

typedef struct step {
    int c, opt;
    char arg[32];
} step_t;

typedef struct run {
    step_t steps[MAX_STEPS];
    int n, ind;
    const char *argv[MAX_ARGS + 2];
} run_t;

static void record(step_t *s, int c, const char *arg, int opt) {
    s->c = c;
    /* optopt is only meaningful for '?' and ':'. */
    s->opt = c == '?' || c == ':' ? opt : 0;
    snprintf(s->arg, sizeof(s->arg), "%s", arg != NULL ? arg : "(null)");
}

static void run_glibc(run_t *r, int argc, char **argv, const char *shorts) {
    int c;
    optind = 0; /* full re-initialisation */
    opterr = 0;
    r->n = 0;
    while ((c = getopt_long(argc, argv, shorts, glibc_long, NULL)) != -1 &&
           r->n < MAX_STEPS)
        record(&r->steps[r->n++], c, optarg, optopt);
    r->ind = optind;
    memcpy(r->argv, argv, sizeof(char *) * (size_t)(argc + 1));
}

static void run_ours(run_t *r, int argc, char **argv, const char *shorts) {
    cli_getopt_t g;
    int c;
    cli_getopt_init(&g);
    r->n = 0;
    while ((c = cli_getopt(&g, argc, argv, shorts, ours_long)) != -1 &&
           r->n < MAX_STEPS)
        record(&r->steps[r->n++], c, g.arg, g.opt);
    r->ind = g.ind;
    memcpy(r->argv, argv, sizeof(char *) * (size_t)(argc + 1));
}

static void show(const char *what, char **argv, int argc) {
    int i;
    fprintf(stderr, "%s:", what);
    for (i = 1; i < argc; i++)
        fprintf(stderr, " '%s'", argv[i]);
    fprintf(stderr, "\n");
}

static int same(const run_t *a, const run_t *b, int argc) {
    int i;
    if (a->n != b->n || a->ind != b->ind)
        return 0;
    for (i = 0; i < a->n; i++)
        if (a->steps[i].c != b->steps[i].c ||
            a->steps[i].opt != b->steps[i].opt ||
            strcmp(a->steps[i].arg, b->steps[i].arg) != 0)
            return 0;
    for (i = 0; i <= argc; i++)
        if (a->argv[i] != b->argv[i])
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    static const char *const modes[] = {"+:sxw:", ":sxw:"};
    long rounds = argc > 1 ? atol(argv[1]) : 200000;
    unsigned seed = argc > 2 ? (unsigned)atol(argv[2]) : 1u;
    long r, fails = 0, checks = 0;
    int m;

    srand(seed);
    for (r = 0; r < rounds && fails < 5; r++) {
        char *v1[MAX_ARGS + 2], *v2[MAX_ARGS + 2];
        int n = 1 + rand() % MAX_ARGS, i;
        run_t a, b;

        v1[0] = v2[0] = (char *)"prog";
        for (i = 1; i <= n; i++)
            v1[i] = (char *)pool[rand() % POOL];
        v1[n + 1] = NULL;
        for (m = 0; m < 2; m++) {
            memcpy(v2, v1, sizeof(v1));
            {
                char *g[MAX_ARGS + 2];
                memcpy(g, v1, sizeof(v1));
                run_glibc(&a, n + 1, g, modes[m]);
            }
            run_ours(&b, n + 1, v2, modes[m]);
            checks++;
            if (!same(&a, &b, n + 1)) {
                int k;
                fails++;
                fprintf(stderr, "MISMATCH (mode \"%s\")\n", modes[m]);
                show("  argv", v1, n + 1);
                for (k = 0; k < a.n || k < b.n; k++)
                    fprintf(stderr,
                            "  step %d: glibc c=%d opt=%d arg=%s | ours c=%d "
                            "opt=%d arg=%s\n",
                            k, k < a.n ? a.steps[k].c : -1,
                            k < a.n ? a.steps[k].opt : -1,
                            k < a.n ? a.steps[k].arg : "-",
                            k < b.n ? b.steps[k].c : -1,
                            k < b.n ? b.steps[k].opt : -1,
                            k < b.n ? b.steps[k].arg : "-");
                fprintf(stderr, "  ind: glibc %d ours %d\n", a.ind, b.ind);
                show("  glibc argv", (char **)a.argv, n + 1);
                show("  ours argv ", (char **)b.argv, n + 1);
            }
        }
    }
    printf("getopt: %ld command lines, %ld differ from glibc\n", checks, fails);
    return fails == 0 ? 0 : 1;
}
