/*
 * runner.c -- the thin single-process test runner for the unit tests on
 * Windows (see criterion/criterion.h for why and how it differs from
 * Criterion).  The test sources are the same files Criterion runs on Linux.
 *
 *   pl_unit_lock [--filter GLOB] [--exclude FILE] [--list] [--verbose]
 *
 * --exclude names a file of "suite/test  reason" lines: tests that are
 * POSIX-only (fork, POSIX descriptors, the POSIX syscall table...).  They are
 * listed as [SKIP] with their reason, never run, and counted in the summary.
 * The last line mirrors Criterion's:
 *   [====] Synthesis: Tested: N | Passing: N | Failing: N | Crashing: 0
 * and the exit status is 1 if any test failed.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct criterion_test *tests;
static struct criterion_suite *suites;
const struct criterion_test *criterion_current_test;

static jmp_buf leave;
static int failed, skipped;
static char detail[512];

void plw_register_test(struct criterion_test *t) {
    /* mingw runs the constructors last-first: pushing each at the head
     * gives file order. */
    t->next = tests;
    tests = t;
}

void plw_register_suite(struct criterion_suite *s) {
    s->next = suites;
    suites = s;
}

static const struct criterion_suite *suite_of(const struct criterion_test *t) {
    for (const struct criterion_suite *s = suites; s != NULL; s = s->next)
        if (strcmp(s->name, t->category) == 0)
            return s;
    return NULL;
}

/* ---- assertions ---------------------------------------------------------- */

static const char *op_text(enum plw_op op) {
    static const char *const t[] = {"==", "!=", "<", "<=", ">", ">="};
    return t[op];
}

#define DECIDE(a, b, op)                                                       \
 ((op) == PLW_EQ   ? (a) == (b)                                                \
  : (op) == PLW_NE ? (a) != (b)                                                \
  : (op) == PLW_LT ? (a) < (b)                                                 \
  : (op) == PLW_LE ? (a) <= (b)                                                \
  : (op) == PLW_GT ? (a) > (b)                                                 \
                   : (a) >= (b))

int plw_cmp_i(long long a, long long b, enum plw_op op, const char *sa,
              const char *sb) {
    int ok = DECIDE(a, b, op);
    if (!ok)
        snprintf(detail, sizeof(detail), "%s %s %s: %lld vs %lld", sa,
                 op_text(op), sb, a, b);
    return ok;
}

int plw_cmp_u(unsigned long long a, unsigned long long b, enum plw_op op,
              const char *sa, const char *sb) {
    int ok = DECIDE(a, b, op);
    if (!ok)
        snprintf(detail, sizeof(detail), "%s %s %s: %llu vs %llu", sa,
                 op_text(op), sb, a, b);
    return ok;
}

int plw_cmp_d(double a, double b, enum plw_op op, const char *sa,
              const char *sb) {
    int ok = DECIDE(a, b, op);
    if (!ok)
        snprintf(detail, sizeof(detail), "%s %s %s: %g vs %g", sa, op_text(op),
                 sb, a, b);
    return ok;
}

int plw_cmp_p(const void *a, const void *b, enum plw_op op, const char *sa,
              const char *sb) {
    int ok = op == PLW_EQ ? a == b : a != b; /* only eq/ne are used */
    if (!ok)
        snprintf(detail, sizeof(detail), "%s %s %s: %p vs %p", sa, op_text(op),
                 sb, a, b);
    return ok;
}

int plw_cmp_s(const char *a, const char *b, enum plw_op op, const char *sa,
              const char *sb) {
    int c, ok;
    if (a == NULL || b == NULL) {
        snprintf(detail, sizeof(detail), "%s %s %s: NULL string", sa,
                 op_text(op), sb);
        return 0;
    }
    c = strcmp(a, b);
    ok = DECIDE(c, 0, op);
    if (!ok)
        snprintf(detail, sizeof(detail), "%s %s %s: \"%.200s\" vs \"%.200s\"",
                 sa, op_text(op), sb, a, b);
    return ok;
}

void plw_fail(int fatal, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    const char *base = strrchr(file, '/');
    fprintf(stderr, "[----] %s:%d: %s", base != NULL ? base + 1 : file, line,
            fatal ? "Assertion failed" : "Expectation failed");
    if (detail[0] != '\0')
        fprintf(stderr, ": %s", detail);
    if (fmt != NULL && fmt[0] != '\0') {
        fprintf(stderr, "\n[----]   ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "\n");
    detail[0] = '\0';
    failed = 1;
    if (fatal)
        longjmp(leave, 1);
}

void plw_skip(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[SKIP] %s::%s: ", criterion_current_test->category,
            criterion_current_test->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    skipped = 1;
    longjmp(leave, 1);
}

void plw_log(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[----] ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* ---- selection ----------------------------------------------------------- */

/* Glob with '*' and '?' over "suite/test". */
static int glob(const char *p, const char *s) {
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*')
        return glob(p + 1, s) || (*s != '\0' && glob(p, s + 1));
    if (*s != '\0' && (*p == '?' || *p == *s))
        return glob(p + 1, s + 1);
    return 0;
}

typedef struct exclusion {
    char pattern[160];
    char reason[400];
} exclusion_t;

static exclusion_t *exclusions;
static size_t n_exclusions;

static void load_exclusions(const char *path) {
    FILE *f = fopen(path, "r");
    char line[600];
    if (f == NULL) {
        fprintf(stderr, "runner: cannot read %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *sp;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        exclusions =
            realloc(exclusions, (n_exclusions + 1) * sizeof(*exclusions));
        if (exclusions == NULL)
            exit(2);
        sp = strpbrk(p, " \t");
        if (sp != NULL)
            *sp++ = '\0';
        while (sp != NULL && (*sp == ' ' || *sp == '\t'))
            sp++;
        snprintf(exclusions[n_exclusions].pattern,
                 sizeof(exclusions[0].pattern), "%s", p);
        snprintf(exclusions[n_exclusions].reason, sizeof(exclusions[0].reason),
                 "%s", sp != NULL && *sp != '\0' ? sp : "(no reason given)");
        n_exclusions++;
    }
    fclose(f);
}

static const char *excluded(const char *full) {
    for (size_t i = 0; i < n_exclusions; i++)
        if (glob(exclusions[i].pattern, full))
            return exclusions[i].reason;
    return NULL;
}

/* ---- running ------------------------------------------------------------- */

/* 1 passed, 0 failed, -1 skipped. */
static int run_one(const struct criterion_test *t,
                   const struct criterion_suite *s) {
    void (*init)(void) = t->data.init != NULL ? t->data.init
                         : s != NULL          ? s->data.init
                                              : NULL;
    void (*fini)(void) = t->data.fini != NULL ? t->data.fini
                         : s != NULL          ? s->data.fini
                                              : NULL;
    volatile int stage = 0;

    criterion_current_test = t;
    failed = skipped = 0;
    detail[0] = '\0';
    if (setjmp(leave) == 0) {
        if (init != NULL)
            init();
        stage = 1;
        t->test();
    }
    if (stage == 1 && fini != NULL && setjmp(leave) == 0)
        fini();
    criterion_current_test = NULL;
    if (skipped && !failed)
        return -1;
    return !failed;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    int list = 0, verbose = 0;
    int tested = 0, passing = 0, failing = 0, n_skipped = 0, n_excluded = 0;

    setvbuf(stdout, NULL, _IONBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strncmp(argv[i], "--filter=", 9) == 0)
            filter = argv[i] + 9;
        else if (strcmp(argv[i], "--exclude") == 0 && i + 1 < argc)
            load_exclusions(argv[++i]);
        else if (strcmp(argv[i], "--list") == 0)
            list = 1;
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--filter GLOB] [--exclude FILE] [--list] "
                    "[--verbose]\n",
                    argv[0]);
            return 2;
        }
    }
    for (const struct criterion_test *t = tests; t != NULL; t = t->next) {
        const struct criterion_suite *s = suite_of(t);
        char full[256];
        const char *why;
        int r;

        snprintf(full, sizeof(full), "%s/%s", t->category, t->name);
        if (filter != NULL && !glob(filter, full))
            continue;
        if (t->data.disabled || (s != NULL && s->data.disabled))
            continue;
        if ((why = excluded(full)) != NULL) {
            fprintf(stderr, "[SKIP] %s::%s: excluded on Windows: %s\n",
                    t->category, t->name, why);
            n_excluded++;
            continue;
        }
        if (list) {
            printf("%s\n", full);
            continue;
        }
        if (verbose)
            fprintf(stderr, "[RUN ] %s::%s\n", t->category, t->name);
        r = run_one(t, s);
        if (r < 0) {
            n_skipped++;
            continue;
        }
        tested++;
        if (r) {
            passing++;
            if (verbose)
                fprintf(stderr, "[PASS] %s::%s\n", t->category, t->name);
        } else {
            failing++;
            fprintf(stderr, "[FAIL] %s::%s\n", t->category, t->name);
        }
    }
    if (list)
        return 0;
    fprintf(stderr,
            "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
            "Crashing: 0 | Skipped: %d | Excluded: %d \n",
            tested, passing, failing, n_skipped, n_excluded);
    /* Nothing run and nothing excluded: the filter matched nothing. */
    return failing > 0 || (tested + n_skipped + n_excluded == 0) ? 1 : 0;
}
